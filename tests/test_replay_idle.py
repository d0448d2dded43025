"""The 15-minute replay's idle reuse (issue 16): reusing a settled evaluation at idle ticks
gives exactly the replay that evaluates every tick, on the sample's seasons, with plans, a
home battery and the example rules."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cache, partial
from pathlib import Path
from typing import Any
from unittest.mock import patch
from zoneinfo import ZoneInfo

import pytest

from optimizer.config import Config, load_config
from optimizer.engine.loader import load_config_rules
from optimizer.engine.rules import PolicyBase
from optimizer.enlighten.models import parse_lifetime_energy, parse_session_history_page
from optimizer.limits import Limits
from optimizer.simulate.idle import Idle
from optimizer.simulate.replay import ReplayResult, replay
from optimizer.simulate.sample import TIMEZONE, sample_paths
from optimizer.simulate.series import SiteSeries, series_from_history
from tests.records import same_as_reference, write_record

GOLDEN = Path(__file__).parent / "fixtures" / "simulate_golden"
RECORDS = Path(__file__).parent / "fixtures" / "replay_idle"
BATTERY = (
    "  battery:\n    capacity_kwh: 10\n    max_power_kw: 5\n    round_trip_efficiency: 0.9\n"
    "    reserve_pct: 10\n    initial_soc_pct: 50\n"
)


@cache
def _history() -> tuple[object, tuple[object, ...]]:
    energy_path, pages = sample_paths()
    energy = parse_lifetime_energy(json.loads(energy_path.read_text()), timezone=TIMEZONE)
    sessions = tuple(
        s for p in pages for s in parse_session_history_page(json.loads(p.read_text())).sessions
    )
    return energy, sessions


def _config(tmp: Path, *, battery: bool) -> Config:
    text = (GOLDEN / "config.yaml").read_text(encoding="utf-8")
    text = text.replace("  - rules/*.yaml", f"  - {GOLDEN / 'rules' / '*.yaml'}")
    if battery:
        text = text.replace("  max_current: 32\n", "  max_current: 32\n" + BATTERY)
    path = tmp / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def _series(config: Config, first: tuple[int, int], last: tuple[int, int]) -> SiteSeries:
    energy, sessions = _history()
    zone = ZoneInfo(TIMEZONE)
    return series_from_history(
        energy,  # type: ignore[arg-type]
        list(sessions),  # type: ignore[arg-type]
        tariffs=config.tariffs,
        timezone=TIMEZONE,
        start=datetime(2025, *first, tzinfo=zone),
        end=datetime(2025, *last, tzinfo=zone),
    )


PERIODS = [
    ((1, 6), (1, 16), False, False),  # winter: the battery rule of apr-sep sits out
    ((3, 5), (3, 15), True, True),  # the clocks change on 9 March; a battery; plans
    ((6, 10), (6, 20), True, False),  # summer sun, long surplus
    ((10, 25), (11, 5), False, True),  # the clocks go back; the seasonal rule switches
]


def _period_run(
    tmp: Path, first: tuple[int, int], last: tuple[int, int], battery: bool, plans: bool
) -> tuple[SiteSeries, Config, list[PolicyBase], dict[str, Any], Path]:
    """The period's series, config, example rules, replay options and record."""
    config = _config(tmp, battery=battery)
    series = _series(config, first, last)
    margin = {"plan_margin": series.starts[1] - series.starts[0]} if plans else {}
    name = f"{first[0]}-{first[1]}_{last[0]}-{last[1]}_{battery:d}{plans:d}.sha256"
    return series, config, list(load_config_rules(config).enabled), margin, RECORDS / name


@pytest.mark.parametrize(("first", "last", "battery", "plans"), PERIODS)
def test_idle_reuse_changes_nothing(
    tmp_path: Path,
    first: tuple[int, int],
    last: tuple[int, int],
    battery: bool,
    plans: bool,
) -> None:
    series, config, policies, margin, record = _period_run(tmp_path, first, last, battery, plans)
    result = replay_both(series, config, policies, record, **margin)
    assert result.decisions > 0
    assert sum(result.ev_kwh) > 0


def _told(decided: Sequence[Any]) -> list[tuple[str, str, str]]:
    return [(d.target, d.action, repr(d.params)) for d in decided]


@contextmanager
def recording(log: list[tuple[object, ...]]) -> Iterator[None]:
    """Each tick's decisions (its time, then target, action and parameters) noted in ``log``:
    ``Idle.decide``'s, and the kept ones of a tick with no car a replay counts without a
    snapshot (``Idle.repeats``)."""
    decide, repeats = Idle.decide, Idle.repeats

    def deciding(self: Idle, snapshot: Any, *args: Any, **kwargs: Any) -> Any:
        decided, returned = decide(self, snapshot, *args, **kwargs)
        log.append((snapshot.now, _told(decided)))
        return decided, returned

    def repeating(self: Idle, *args: Any, **kwargs: Any) -> bool:
        found = repeats(self, *args, **kwargs)
        if found:
            log.append((kwargs["now"], _told(self.decided)))
        return found

    with patch.object(Idle, "decide", deciding), patch.object(Idle, "repeats", repeating):
        yield


def _replay_logged(
    series: SiteSeries,
    config: Config,
    policies: Sequence[PolicyBase],
    *,
    skip: bool,
    **extra: Any,
) -> tuple[list[tuple[object, ...]], ReplayResult]:
    """Each tick's decisions (its time, then target, action and parameters) and the result."""
    log: list[tuple[object, ...]] = []
    with recording(log):
        result = replay(
            series,
            policies,
            config=config,
            limits=Limits(6, 32, 1),
            voltage_v=240.0,
            skip_idle=skip,
            **extra,
        )
    return log, result


def replay_both(
    series: SiteSeries,
    config: Config,
    policies: Sequence[PolicyBase],
    record: Path | None = None,
    **extra: Any,
) -> ReplayResult:
    """The replay that evaluates every tick and the one that reuses settled ones: the same
    decisions at every tick (target, action, parameters: a stop that comes late to a full car
    changes no energy) and the same result. With a ``record`` of the one that evaluates every
    tick (tests/records.py), that one replays only where the record differs."""
    reused = _replay_logged(series, config, policies, skip=True, **extra)
    every = partial(_replay_logged, series, config, policies, skip=False, **extra)
    if record is None:
        assert every() == reused
    else:
        rerecord = "python -m tests.test_replay_idle"
        same_as_reference(reused, record, every, rerecord)
    return reused[1]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        for period in PERIODS:
            series, config, policies, margin, path = _period_run(Path(scratch), *period)
            write_record(path, _replay_logged(series, config, policies, skip=False, **margin))
