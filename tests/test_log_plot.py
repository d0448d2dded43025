"""`evopt log plot --day`: a day the service really logged against the fake cloud, drawn."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import matplotlib.pyplot as plt
import pytest

from optimizer.cli import main
from optimizer.decisions import DecisionStore, review
from optimizer.simulate import dayplot
from optimizer.simulate.dayplot import day_bounds, day_points, draw_day, with_buckets
from optimizer.simulate.series import BUCKET
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


def test_log_plot_of_a_simulated_day_draws_the_replay_s_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A simulation logs a dozen decisions a day (the ones that say something new), so the
    day's surplus and levels come from the replay's own figures (``simulation_days``)."""
    golden = Path(__file__).parent / "fixtures" / "simulate_golden"
    config = tmp_path / "config.yaml"
    text = (golden / "config.yaml").read_text(encoding="utf-8")
    text = text.replace("  - rules/*.yaml", f"  - {golden / 'rules' / '*.yaml'}")
    config.write_text(text + f"service:\n  database: {tmp_path / 'decisions.db'}\n", "utf-8")
    week = ["--from", "2025-06-07", "--to", "2025-06-11"]
    assert main(["--config", str(config), "simulate", "--sample", *week]) == 0
    capsys.readouterr()
    day = date(2025, 6, 9)
    out = tmp_path / "day.png"
    drawn_points: list[Any] = []

    def drawing(points: Any, *args: Any, **kwargs: Any) -> Any:
        drawn_points.extend(points)
        return draw_day(points, *args, **kwargs)

    monkeypatch.setattr(dayplot, "draw_day", drawing)
    args = ["--config", str(config), "log", "plot", "--day", day.isoformat(), "--simulation"]
    assert main([*args, "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "and 96 simulated buckets of charger SIM0001" in said
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    zone = ZoneInfo("America/New_York")  # the sample's own zone
    start, end = day_bounds(day, zone)
    with DecisionStore.open_readonly(tmp_path / "simulations.db") as store:
        rows = review.query(
            store, since=start.astimezone(UTC), until=end.astimezone(UTC), limit=None
        )
        runs = sorted({row.run_id for row in rows})
        buckets = store.simulation_buckets(runs, "SIM0001", start, end)
    assert len(rows) < 40  # the log alone: too few to draw a day from
    assert [at for at, _, _ in buckets] == [start + i * BUCKET for i in range(96)]
    # The figures are the surplus each tick read: a logged decision's, at its tick.
    read = {at: watts for at, watts, _ in buckets}
    for row in rows:
        watts = row.inputs.get("surplus_w")
        assert watts is None or read[row.ts] == round(watts), row.ts
    points = with_buckets(day_points(rows), buckets)
    assert points == drawn_points  # what the command drew
    assert len(points) >= 96
    fig = draw_day(points, day, zone, charger="SIM0001")
    try:
        ax, amps_axis = fig.axes
        surplus = [v for v in ax.get_lines()[0].get_ydata() if not math.isnan(v)]
        assert len(surplus) >= 96
        assert max(surplus) == max(w for _, w, _ in buckets if w is not None) / 1000
        lines = {line.get_label(): list(line.get_ydata()) for line in amps_axis.get_lines()}
        drawn = [a for _, _, a in buckets if a is not None]
        assert drawn  # the car charged that day
        assert max(v for v in lines["amps observed"] if not math.isnan(v)) == max(drawn)
    finally:
        plt.close(fig)
    # A second run of the same name replaces the day's figures with its decisions.
    assert main(["--config", str(config), "simulate", "--sample", *week]) == 0
    capsys.readouterr()
    with DecisionStore.open_readonly(tmp_path / "simulations.db") as store:
        count = store.db.execute("SELECT count(*) FROM simulation_days").fetchone()[0]
    assert count == 5  # the five local days, once
