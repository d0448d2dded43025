"""Departure plans learned causally for a replay (`evopt simulate --plans learned`).

The live service with ``plans: auto`` gives a car without a manual plan the plan its habits
suggest (optimizer/plans.py). The replay does the same, and learns each day's habits only from
sessions that ended before that day began, so no session's own departure leaks into its plan:
the figures are what a driver who never types a plan would have had.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from optimizer.engine.snapshot import DeparturePlan
from optimizer.forecast.habits import Habits, HabitSettings, PastSession, habits_at
from optimizer.plans import learned_plan
from optimizer.simulate.series import Session

__all__ = ["learned_plans"]


def learned_plans(
    sessions: Sequence[Session], *, timezone: str, settings: HabitSettings | None = None
) -> list[DeparturePlan | None]:
    """One plan per session (None while no habit is known yet), in the sessions' order.

    Habits are learned once per local day, at its midnight, from the sessions that had ended
    by then; the plan is the next habitual departure after the plug-in, as the service picks
    it at the plug-in.
    """
    zone = ZoneInfo(timezone)
    past = [PastSession(s.start, s.end, s.energy_kwh) for s in sessions]
    by_day: dict[date, Habits] = {}
    plans: list[DeparturePlan | None] = []
    for session in sessions:
        day = session.start.astimezone(zone).date()
        habits = by_day.get(day)
        if habits is None:
            midnight = datetime.combine(day, time(0), tzinfo=zone)
            habits = habits_at(past, midnight, timezone=timezone, settings=settings)
            by_day[day] = habits
        plans.append(learned_plan(habits, session.start) if habits.sessions else None)
    return plans
