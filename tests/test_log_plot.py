"""`evopt log plot --day`: a day the service really logged against the fake cloud, drawn."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, date
from pathlib import Path
from zoneinfo import ZoneInfo

import matplotlib.pyplot as plt
import pytest

from optimizer.cli import main
from optimizer.decisions import DecisionStore, review
from optimizer.simulate.dayplot import day_bounds, day_points, draw_day
from tests.test_service import ALWAYS_16, World, midday  # noqa: F401 - the fixture

DAY = date(2025, 1, 15)  # MIDDAY's local day in Melbourne
ZONE = ZoneInfo("Australia/Melbourne")


async def _logged_afternoon(world: World) -> Path:
    """Half an hour of the service charging at 16 A; returns the config file."""
    config = world.config(ALWAYS_16)
    assert await world.service(config).run(max_ticks=60) == 0
    assert config.source is not None
    return config.source


async def test_log_plot_draws_a_day_the_service_logged(
    midday: World,  # noqa: F811 - the fixture
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = await _logged_afternoon(midday)
    monkeypatch.chdir(midday.tmp)
    args = ["--config", str(config), "log", "plot", "--day", DAY.isoformat()]
    assert await asyncio.to_thread(main, args) == 0
    out = capsys.readouterr().out
    png = midday.tmp / f"evopt-{DAY.isoformat()}.png"  # the default name
    assert f"plot: evopt-{DAY.isoformat()}.png" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    other = midday.tmp / "day.png"
    assert (
        await asyncio.to_thread(main, [*args, "--out", str(other), "--charger", "EV9876543210"])
        == 0
    )
    assert other.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # What the picture holds, read from the figure the command draws.
    start, end = day_bounds(DAY, ZONE)
    with DecisionStore.open_readonly(midday.database) as store:
        rows = review.query(
            store, since=start.astimezone(UTC), until=end.astimezone(UTC), limit=None
        )
    points = day_points(rows)
    fig = draw_day(points, DAY, ZONE, charger="EV9876543210")
    try:
        ax, amps_axis = fig.axes
        labels = [text.get_text() for text in ax.get_legend().get_texts()]
        assert {"surplus kW", "amps observed", "amps commanded", "command: start"} <= set(labels)
        assert [x for x in labels if x.startswith("policy ")] == ["policy always-16"]
        surplus = [v for v in ax.get_lines()[0].get_ydata() if not math.isnan(v)]
        assert surplus
        assert max(surplus) > 0
        lines = {line.get_label(): list(line.get_ydata()) for line in amps_axis.get_lines()}
        assert max(v for v in lines["amps commanded"] if not math.isnan(v)) == 16
        assert 16 in lines["amps observed"]  # the charger followed
        starts = [c for c in amps_axis.collections if c.get_label() == "command: start"]
        assert next(list(xy) for xy in starts[0].get_offsets())[1] == 16
    finally:
        plt.close(fig)


async def test_log_plot_of_a_day_without_decisions_is_an_error(
    midday: World,  # noqa: F811 - the fixture
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = await _logged_afternoon(midday)
    args = ["--config", str(config), "log", "plot", "--day", "2025-01-10"]
    assert await asyncio.to_thread(main, [*args, "--out", str(midday.tmp / "x.png")]) == 1
    err = capsys.readouterr().err
    assert "no decisions on 2025-01-10" in err
    assert "Traceback" not in err
    assert not (midday.tmp / "x.png").exists()
    bad = ["--config", str(config), "log", "plot", "--day", "15/01/2025"]
    with pytest.raises(SystemExit) as exit_info:
        main(bad)
    assert exit_info.value.code == 2
    assert "is not a day" in capsys.readouterr().err
