"""Departure plans learned causally for a replay (`evopt simulate --plans learned`).

The live service with ``plans: auto`` gives a car without a manual plan the plan its habits
suggest for its plug-in (optimizer/plans.py). The replay does the same, and learns each day's
habits only from sessions that ended before that day began, so no session's own departure
leaks into its plan: the figures are what a driver who never types a plan would have had.
Every session gets a plan: before any history, the "no history yet" one (a full car at once).
The time away that picks the energy is known at the plug-in (the previous session had ended).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, time
from typing import overload
from zoneinfo import ZoneInfo

from optimizer.engine.snapshot import DeparturePlan
from optimizer.enlighten.models import ChargingSession
from optimizer.forecast.habits import Habits, HabitSettings, PastSession, habits_at
from optimizer.plans import learned_plan, past_sessions
from optimizer.simulate.series import Session, SiteSeries

__all__ = ["LearnedPlans", "learned_plans", "series_plans", "within"]


class LearnedPlans(Sequence[DeparturePlan]):
    """One plan per session, in the sessions' order, each worked out when first read.

    Habits are learned once per local day, at its midnight, from the sessions that had ended
    by then: the series' own and ``history`` (sessions known from before the replayed period,
    e.g. the rest of the history file); the plan is :meth:`Habits.expect` at the plug-in, ready
    by ``end`` at the latest (:func:`within`). Worked out when read, a replay in two processes
    learns each half's plans in the process that replays it, not all of them before the fork
    (0.22 s of the sample year's serial start). Every session gets a plan: before any history,
    "no history yet" (a full car at once)."""

    def __init__(
        self,
        sessions: Sequence[Session],
        *,
        timezone: str,
        settings: HabitSettings | None = None,
        history: Sequence[PastSession] = (),
        end: datetime | None = None,
    ) -> None:
        self.sessions, self.timezone, self.settings, self.end = sessions, timezone, settings, end
        self.zone = ZoneInfo(timezone)
        known = {(s.started_at, s.ended_at): s for s in history}
        for s in sessions:
            known.setdefault((s.start, s.end), PastSession(s.start, s.end, s.energy_kwh))
        self.past = sorted(known.values(), key=lambda s: s.ended_at)
        self.ends = [s.ended_at for s in self.past]
        self.by_day: dict[date, Habits] = {}
        self.plans: list[DeparturePlan | None] = [None] * len(sessions)
        self.lookback = settings or HabitSettings()  # habits_at's window

    def __len__(self) -> int:
        return len(self.sessions)

    @overload
    def __getitem__(self, index: int) -> DeparturePlan: ...

    @overload
    def __getitem__(self, index: slice) -> list[DeparturePlan]: ...

    def __getitem__(self, index: int | slice) -> DeparturePlan | list[DeparturePlan]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        plan = self.plans[index]
        if plan is None:
            plan = self.plans[index] = self._plan(self.sessions[index])
        return plan

    def _plan(self, session: Session) -> DeparturePlan:
        day = session.start.astimezone(self.zone).date()
        habits = self.by_day.get(day)
        if habits is None:
            midnight = datetime.combine(day, time(0), tzinfo=self.zone)
            # Only the sessions habits_at keeps (ended in its window before midnight): the
            # same habits without a scan of the whole history for every day planned.
            since = self.lookback.since(midnight)
            window = self.past[bisect_left(self.ends, since) : bisect_left(self.ends, midnight)]
            habits = habits_at(window, midnight, timezone=self.timezone, settings=self.settings)
            self.by_day[day] = habits
        before = bisect_right(self.ends, session.start)  # those ended at the plug-in
        last_end = self.ends[before - 1] if before else None
        plan = learned_plan(habits, session.start, last_end=last_end)
        return plan if self.end is None else within(plan, self.end)


def learned_plans(
    sessions: Sequence[Session],
    *,
    timezone: str,
    settings: HabitSettings | None = None,
    history: Sequence[PastSession] = (),
) -> list[DeparturePlan | None]:
    """Every session's plan at once (:class:`LearnedPlans`), in the sessions' order."""
    return list(LearnedPlans(sessions, timezone=timezone, settings=settings, history=history))


def series_plans(
    series: SiteSeries, *, known: Sequence[ChargingSession], settings: HabitSettings
) -> LearnedPlans:
    """`--plans learned` for a replayed period: the series' sessions planned with ``known``,
    every session the history holds (those before the period too: the service with
    ``plans: auto`` had learned from them by then), each ready by the period's end at the
    latest. The CLI and the benchmarks share it; plans are worked out as they are read."""
    return LearnedPlans(
        series.sessions,
        timezone=series.timezone,
        settings=settings,
        history=past_sessions(known),
        end=series.end,
    )


def within(plan: DeparturePlan, end: datetime) -> DeparturePlan:
    """``plan`` ready by ``end`` at the latest: a replay is judged by what its period allows,
    as the exact plans of `--plans` are (optimizer/simulate/replay.py): a session still
    plugged in at the period's end (the year's last) would otherwise be planned for a
    departure the replay never reaches, and its energy counted unmet, the plan's fault or not.
    The replay knows its own end, not the session's, so nothing leaks into the plan."""
    return plan if plan.ready_by <= end else replace(plan, ready_by=end)
