"""Departure plans learned causally for a replay (`evopt simulate --plans learned`).

The live service with ``plans: auto`` gives a car without a manual plan the plan its habits
suggest for its plug-in (optimizer/plans.py). The replay does the same, and learns each day's
habits only from sessions that ended before that day began, so no session's own departure
leaks into its plan: the figures are what a driver who never types a plan would have had.
Every session gets a plan: before any history, the "no history yet" one (a full car at once).
The time away that picks the energy is known at the plug-in (the previous session had ended).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from optimizer.engine.snapshot import DeparturePlan
from optimizer.enlighten.models import ChargingSession
from optimizer.forecast.habits import Habits, HabitSettings, PastSession, habits_at
from optimizer.plans import learned_plan, past_sessions
from optimizer.simulate.series import Session, SiteSeries

__all__ = ["learned_plans", "series_plans", "within"]


def learned_plans(
    sessions: Sequence[Session],
    *,
    timezone: str,
    settings: HabitSettings | None = None,
    history: Sequence[PastSession] = (),
) -> list[DeparturePlan | None]:
    """One plan per session, in the sessions' order (never None: the type is the replay's).

    Habits are learned once per local day, at its midnight, from the sessions that had ended
    by then: the series' own and ``history`` (sessions known from before the replayed period,
    e.g. the rest of the history file); the plan is :meth:`Habits.expect` at the plug-in.
    """
    zone = ZoneInfo(timezone)
    known = {(s.started_at, s.ended_at): s for s in history}
    for s in sessions:
        known.setdefault((s.start, s.end), PastSession(s.start, s.end, s.energy_kwh))
    past = sorted(known.values(), key=lambda s: s.ended_at)
    ends = [s.ended_at for s in past]
    by_day: dict[date, Habits] = {}
    plans: list[DeparturePlan | None] = []
    for session in sessions:
        day = session.start.astimezone(zone).date()
        habits = by_day.get(day)
        if habits is None:
            midnight = datetime.combine(day, time(0), tzinfo=zone)
            habits = habits_at(past, midnight, timezone=timezone, settings=settings)
            by_day[day] = habits
        before = bisect_right(ends, session.start)  # the sessions that had ended at the plug-in
        last_end = ends[before - 1] if before else None
        plans.append(learned_plan(habits, session.start, last_end=last_end))
    return plans


def series_plans(
    series: SiteSeries, *, known: Sequence[ChargingSession], settings: HabitSettings
) -> list[DeparturePlan | None]:
    """`--plans learned` for a replayed period: the series' sessions planned with ``known``,
    every session the history holds (those before the period too: the service with
    ``plans: auto`` had learned from them by then). The CLI and the benchmarks share it."""
    plans = learned_plans(
        series.sessions,
        timezone=series.timezone,
        settings=settings,
        history=past_sessions(known),
    )
    end = series.end
    if end is None:
        return plans
    return [None if p is None else within(p, end) for p in plans]


def within(plan: DeparturePlan, end: datetime) -> DeparturePlan:
    """``plan`` ready by ``end`` at the latest: a replay is judged by what its period allows,
    as the exact plans of `--plans` are (optimizer/simulate/replay.py): a session still
    plugged in at the period's end (the year's last) would otherwise be planned for a
    departure the replay never reaches, and its energy counted unmet, the plan's fault or not.
    The replay knows its own end, not the session's, so nothing leaks into the plan."""
    return plan if plan.ready_by <= end else replace(plan, ready_by=end)
