"""The 15-minute replay's idle reuse (issue 16): reusing a settled evaluation at idle ticks
gives exactly the replay that evaluates every tick, on the sample's seasons, with plans, a
home battery and the example rules."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import cache
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

GOLDEN = Path(__file__).parent / "fixtures" / "simulate_golden"
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


@pytest.mark.parametrize(
    ("first", "last", "battery", "plans"),
    [
        ((1, 6), (1, 16), False, False),  # winter: the battery rule of apr-sep sits out
        ((3, 5), (3, 15), True, True),  # the clocks change on 9 March; a battery; plans
        ((6, 10), (6, 20), True, False),  # summer sun, long surplus
        ((10, 25), (11, 5), False, True),  # the clocks go back; the seasonal rule switches
    ],
)
def test_idle_reuse_changes_nothing(
    tmp_path: Path,
    first: tuple[int, int],
    last: tuple[int, int],
    battery: bool,
    plans: bool,
) -> None:
    config = _config(tmp_path, battery=battery)
    series = _series(config, first, last)
    policies = load_config_rules(config).enabled
    margin = {"plan_margin": series.starts[1] - series.starts[0]} if plans else {}
    runs = replay_both(series, config, policies, **margin)
    assert runs[0].decisions > 0
    assert sum(runs[0].ev_kwh) > 0


def _recording(real: Any, log: list[tuple[object, ...]]) -> Any:
    """``Idle.decide`` that also notes each tick's decisions in ``log``."""

    def recording(self: Idle, snapshot: Any, *args: Any, **kwargs: Any) -> Any:
        decided, returned = real(self, snapshot, *args, **kwargs)
        log.append((snapshot.now, [(d.target, d.action, repr(d.params)) for d in decided]))
        return decided, returned

    return recording


def replay_both(
    series: SiteSeries, config: Config, policies: Sequence[PolicyBase], **extra: Any
) -> list[ReplayResult]:
    """The replay that evaluates every tick and the one that reuses settled ones: the same
    decisions at every tick (target, action, parameters: a stop that comes late to a full car
    changes no energy) and the same result."""
    runs: list[ReplayResult] = []
    logs: list[list[tuple[object, ...]]] = []
    real = Idle.decide
    for skip in (False, True):
        log: list[tuple[object, ...]] = []
        with patch.object(Idle, "decide", _recording(real, log)):
            runs.append(
                replay(
                    series,
                    policies,
                    config=config,
                    limits=Limits(6, 32, 1),
                    voltage_v=240.0,
                    skip_idle=skip,
                    **extra,
                )
            )
        logs.append(log)
    assert logs[1] == logs[0]
    assert runs[1] == runs[0]
    return runs
