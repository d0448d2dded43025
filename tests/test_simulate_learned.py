"""`evopt simulate --plans learned`: plans as `plans: auto` would give them, learned causally."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.cli import main
from optimizer.forecast.habits import NO_HISTORY, HabitSettings, PastSession, habits_at
from optimizer.plans import learned_plan
from optimizer.simulate.learned import LearnedPlans, learned_plans
from optimizer.simulate.series import Session
from tests.test_plans import sample_simulate

TZ = "Australia/Melbourne"
MONDAY = datetime(2025, 3, 2, 21, 0, tzinfo=UTC)  # Monday 08:00 in Melbourne (UTC+11)


def commuter(days: int, *, leave_h: float = 7.5, kwh: float = 10.0) -> list[Session]:
    """Evening plug-ins (18:00 local), gone by ``leave_h`` local the next morning."""
    sessions = []
    for day in range(days):
        plug = MONDAY + timedelta(days=day, hours=10)  # 18:00 local
        leave = MONDAY + timedelta(days=day + 1, hours=leave_h - 8)
        sessions.append(Session(plug, leave, kwh + day % 3))
    return sessions


def test_every_session_gets_a_plan_learned_from_what_had_ended_before_its_day() -> None:
    sessions = commuter(20)
    plans = learned_plans(sessions, timezone=TZ, settings=HabitSettings(min_sessions=5))
    # A session's own departure is the next morning: by the midnight that starts its day, no
    # session had ended for the first two plug-ins: a full car at once.
    for plan, session in zip(plans[:2], sessions, strict=False):
        assert plan is not None
        assert plan.learned == NO_HISTORY
        assert plan.ready_by == session.start + timedelta(hours=12)
        assert plan.energy_kwh == 150.0
    # Then every plug-in has a plan; from the 9th on, five weekday evening plug-ins (Monday to
    # Friday) had ended: their stays (13.5 h) give the departure, exactly the real one.
    assert all(plan is not None and plan.learned != NO_HISTORY for plan in plans[2:])
    for plan, session in zip(plans[8:], sessions[8:], strict=True):
        assert plan is not None
        assert plan.learned is not None
        if session.start.astimezone(ZoneInfo(TZ)).weekday() < 5:
            assert plan.learned.startswith("weekday plug-ins 16:00-20:00")
            assert plan.ready_by == session.end
        assert plan.energy_kwh >= 11.0  # a high quantile of 10, 11, 12 kWh


def test_plans_are_learned_when_read_and_the_same_in_any_order() -> None:
    """A replay in two processes reads each half's plans in its own process: a plan read out
    of order, alone, is the one all of them read in order give."""
    sessions = commuter(20)
    settings = HabitSettings(min_sessions=5)
    every = learned_plans(sessions, timezone=TZ, settings=settings)
    lazy = LearnedPlans(sessions, timezone=TZ, settings=settings)
    assert lazy[15] == every[15]
    assert sum(plan is not None for plan in lazy.plans) == 1  # only that one learned
    assert len(lazy.by_day) == 1
    assert [lazy[i] for i in reversed(range(len(lazy)))] == every[::-1]
    assert lazy[3:6] == every[3:6]


def test_history_before_the_period_is_learned_from() -> None:
    sessions = commuter(30)
    early = [PastSession(s.start, s.end, s.energy_kwh) for s in sessions[:20]]
    alone = learned_plans(sessions[20:], timezone=TZ)
    told = learned_plans(sessions[20:], timezone=TZ, history=early)
    assert alone[0] is not None
    assert alone[0].learned == NO_HISTORY
    assert told[0] is not None
    assert told[0].learned != NO_HISTORY
    assert told == learned_plans(sessions, timezone=TZ)[20:]


@settings(max_examples=40, deadline=None)
@given(cut=st.integers(1, 25), shift=st.floats(-3, 3), extra=st.floats(0, 20))
def test_later_sessions_never_change_an_earlier_plan(cut: int, shift: float, extra: float) -> None:
    """No peeking: rewriting every session from ``cut`` on changes no plan before it."""
    sessions = commuter(30)
    changed = sessions[:cut] + [
        Session(s.start, s.end + timedelta(hours=shift), s.energy_kwh + extra)
        for s in sessions[cut:]
    ]
    mine = learned_plans(sessions, timezone=TZ)
    theirs = learned_plans(changed, timezone=TZ)
    assert mine[:cut] == theirs[:cut]


@pytest.mark.parametrize(
    "window",
    [
        # June: 23 sessions, planned from January on (the history before --from counts).
        pytest.param(("--from", "2025-06-01", "--to", "2025-06-30"), id="june"),
        # The whole year: three times the CPU of the rest of this file; `make soak`.
        pytest.param((), id="year", marks=pytest.mark.soak),
    ],
)
def test_simulate_plans_learned_on_the_sample(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, window: tuple[str, ...]
) -> None:
    args = [*sample_simulate(tmp_path), *window, "--json", "--no-log"]
    assert main([*args, "--plans", "learned"]) == 0
    learned = json.loads(capsys.readouterr().out)
    plans = learned["departure_plans"]
    assert plans["learned"] is True
    assert plans["sessions_with_plan"] == plans["sessions"]  # "no history yet" plans too
    assert learned["ev_solar_kwh"] <= learned["baselines"]["optimal"]["ev_solar_kwh"] + 1e-6
    assert main([*args]) == 0
    without = json.loads(capsys.readouterr().out)
    assert without["departure_plans"] is None
    assert learned["ev_solar_kwh"] != without["ev_solar_kwh"]  # the plans steered the policy


def test_a_period_later_in_the_history_learns_from_the_sessions_before_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`--from` picks what is replayed, not what had been learned by then: the service with
    `plans: auto` would know January to May by June, so the first June plug-in has a habit."""
    window = ("--from", "2025-06-01", "--to", "2025-06-02")
    assert main([*sample_simulate(tmp_path), *window, "--json", "--plans", "learned"]) == 0
    capsys.readouterr()
    with sqlite3.connect(tmp_path / "state" / "simulations.db") as db:
        reasons = [r for (r,) in db.execute("SELECT reason FROM decisions ORDER BY id")]
        unplanned = db.execute(
            "SELECT count(*) FROM decisions WHERE inputs LIKE ?", (f"%{NO_HISTORY}%",)
        ).fetchone()[0]
    learned = [r for r in reasons if r.startswith("learned plan:")]
    assert learned, reasons[:3]
    assert "sessions" in learned[0]  # a habit of earlier plug-ins, not the no-history plan
    assert unplanned == 0


def test_each_day_learns_from_the_window_of_the_whole_history() -> None:
    """LearnedPlans hands habits_at only the sessions of its window: the plans are the ones
    the whole history gives (a window of two weeks over two months of sessions)."""
    sessions = commuter(60, leave_h=7.0) + commuter(20, leave_h=9.0, kwh=4.0)[::3]
    sessions.sort(key=lambda s: s.start)
    settings = HabitSettings(min_sessions=3, days=14)
    lazy = LearnedPlans(sessions, timezone=TZ, settings=settings)
    zone = ZoneInfo(TZ)
    for index, session in enumerate(sessions):
        midnight = datetime.combine(session.start.astimezone(zone).date(), time(0), tzinfo=zone)
        habits = habits_at(lazy.past, midnight, timezone=TZ, settings=settings)
        ended = [s.ended_at for s in lazy.past if s.ended_at <= session.start]
        whole = learned_plan(habits, session.start, last_end=max(ended) if ended else None)
        assert lazy[index] == whole
