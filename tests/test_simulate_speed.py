"""The work issue 16 took out of a replay stays out: counted, not timed (the times are
`make bench`'s; docs/performance.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from optimizer import sun
from optimizer.config import Config
from optimizer.engine.decision import Decision, EngineSettings, Memory
from optimizer.engine.loader import load_rules
from optimizer.engine.snapshot import Snapshot
from optimizer.limits import Limits
from optimizer.simulate import idle
from optimizer.simulate.replay import replay
from optimizer.simulate.report import build_report
from optimizer.simulate.series import BUCKET, Session, SiteSeries

RULES = sorted((Path(__file__).parent / "fixtures" / "simulate_golden" / "rules").glob("*.yaml"))
T0 = datetime(2025, 3, 1, 5, tzinfo=UTC)  # local midnight in New York
DAYS = 30


def month() -> SiteSeries:
    """A month with an evening session every other day and a sunny middle of each day."""
    n = DAYS * 96
    pv = [max(0.0, 1 - abs(i % 96 - 52) / 24) * 1.4 for i in range(n)]
    sessions = tuple(
        Session(T0 + (day * 96 + 72) * BUCKET, T0 + (day * 96 + 100) * BUCKET, 12.0)
        for day in range(0, DAYS - 2, 2)
    )
    return SiteSeries(
        starts=tuple(T0 + i * BUCKET for i in range(n)),
        pv_kwh=tuple(pv),
        house_kwh=(0.25,) * n,
        missing=(False,) * n,
        import_price=(0.2,) * n,
        export_price=0.04,
        timezone="America/New_York",
        sessions=sessions,
    )


def config() -> Config:
    return Config.model_validate(
        {
            "site": {"latitude": 36.1, "longitude": -79.95, "timezone": "America/New_York"},
            "tariffs": {
                "import_price": 0.2,
                "windows": {"off_peak": {"price": 0.09, "times": "23:00-07:00"}},
            },
        }
    )


def test_idle_ticks_do_not_run_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Most ticks without a car reuse the last settled evaluation."""
    calls = 0
    real = idle.evaluate

    def counted(
        snapshot: Snapshot, policies: Any, memory: Memory, *, settings: EngineSettings
    ) -> tuple[list[Decision], Memory]:
        nonlocal calls
        calls += 1
        return real(snapshot, policies, memory, settings=settings)

    monkeypatch.setattr(idle, "evaluate", counted)
    series = month()
    policies = load_rules(RULES, tariffs=None).enabled
    plugged = sum(series.session_index(i) >= 0 for i in range(len(series.starts)))
    replay(series, policies, config=config(), limits=Limits(6, 32, 1), voltage_v=240.0)
    idle_ticks = len(series.starts) - plugged
    assert calls - plugged < idle_ticks / 3, (calls, plugged, idle_ticks)


def test_the_per_day_report_looks_at_each_session_a_bounded_number_of_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Linear in the period: not every session for every day (x70 over ten years)."""
    series = month()
    looked = 0
    real = SiteSeries.window

    def window(self: SiteSeries, session: Session) -> range:
        nonlocal looked
        looked += 1
        return real(self, session)

    monkeypatch.setattr(SiteSeries, "window", window)
    ev = tuple(0.5 if series.session_index(i) >= 0 else 0.0 for i in range(len(series.starts)))
    report = build_report(
        series, ev, commands=0, limits=Limits(6, 32, 1), voltage_v=240.0, with_baselines=False
    )
    assert len(report.per_day) >= DAYS  # 31 local days: the clocks go forward on 9 March
    assert looked <= 4 * len(series.sessions), looked


def test_sunrise_and_sunset_are_worked_out_once_a_day() -> None:
    sun.day_events.cache_clear()
    start = datetime(2025, 6, 1, 4, tzinfo=UTC)
    for minute in range(0, 24 * 60, 15):
        sun.sun_at(
            start + timedelta(minutes=minute),
            latitude=36.1,
            longitude=-79.95,
            timezone="America/New_York",
        )
    assert sun.day_events.cache_info().misses == 1
