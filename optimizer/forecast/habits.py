"""When the car usually leaves and how much it takes, learned from session history.

Why: a departure plan lets a solar policy wait for the sun without leaving the car short, but
nobody sets a plan every day. The charger's own session history says when each session ended
(the car left) and how much energy it took, so the habit can be learned (docs/forecast.md).

The rule, per departure (a session's end, in the site's local time):

* **Groups.** A session belongs to the day type of its end: weekday, Saturday or Sunday. When
  one weekday alone has at least ``per_day_min`` sessions, that weekday gets its own habit
  (Mondays may differ from Fridays); otherwise the group's habit serves it.
* **Conservative quantiles.** The leave time is an early quantile of the end times
  (``leave_quantile``, default 0.1: the car was gone by then on only one day in ten), and
  the energy a high one of the sessions' energy (``energy_quantile``, default 0.9): a plan
  that is ready too early or asks too much costs a little grid energy; one that is ready too
  late or asks too little leaves the driver short, which is worse.
* **Enough data.** Below ``min_sessions`` sessions in a group no habit is claimed.
* **Causal.** :func:`habits_at` uses only sessions that ended before ``now`` and within the
  last ``days``; sessions without an end or energy are skipped.

Leave times are minutes after local midnight, not wrapped around it: a car that leaves at
00:10 on some days and 23:50 on others has no useful habit anyway.

A plan for one plug-in (:meth:`Habits.expect`) asks more of the history than the day's habit:

* **When it leaves**: the ``leave_quantile`` of how long similar plug-ins stayed (plugged in
  within +-2 h of the same clock time, on the same kind of day: weekday or weekend), counted
  from this plug-in. A car plugged in at 18:00 and one plugged in at 09:00 leave at different
  times even on the same weekday; the day's habit cannot tell them apart. Fewer than
  ``min_sessions`` similar plug-ins: those at a similar clock time on any day, else the stays
  of all sessions.
* **How much it takes**: the ``energy_quantile`` of the energy of sessions that followed a
  similar time away (the time since the last session ended, within a factor of 1.5, else the
  ``min_sessions`` nearest ones): a car back after two days on the road needs more than one
  back from the school run.
* **No history yet**: a full car at once (150 kWh, ready in 12 h): with nothing to learn from,
  charging promptly is the only plan that never leaves the driver short.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from math import log
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "DAY_NAMES",
    "NO_HISTORY",
    "Expectation",
    "Habit",
    "HabitSettings",
    "Habits",
    "PastSession",
    "habits_at",
    "next_departure",
]

DAY_NAMES = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")
GROUPS = ("weekdays", "Saturdays", "Sundays")
NO_HISTORY = "no history yet: a full car at once"
NO_HISTORY_KWH = 150.0  # more than any car takes: the car stops drawing when full
NO_HISTORY_READY = timedelta(hours=12)
SIMILAR_CLOCK_MIN = 120  # plug-ins within +-2 h of the same clock time are alike
AWAY_FACTOR = 1.5  # times away within this factor of each other are alike
AWAY_FLOOR_H = 1.0  # below an hour away, the time away says nothing more


@dataclass(frozen=True)
class PastSession:
    """One finished session: plugged in, left, took this much."""

    started_at: datetime
    ended_at: datetime
    energy_kwh: float


@dataclass(frozen=True)
class HabitSettings:
    """The learning rule's knobs (config ``habits:``, docs/forecast.md)."""

    leave_quantile: float = 0.1
    energy_quantile: float = 0.9
    min_sessions: int = 5
    per_day_min: int = 8
    days: int = 90


@dataclass(frozen=True)
class Habit:
    """The car's habit on one kind of day: gone by ``leave_minute`` with ``energy_kwh``."""

    label: str  # "weekdays", "Saturdays", "Mondays", ...
    leave_minute: int  # minutes after local midnight
    energy_kwh: float
    sessions: int

    @property
    def leave_text(self) -> str:
        return f"{self.leave_minute // 60:02d}:{self.leave_minute % 60:02d}"

    def to_json(self) -> dict[str, Any]:
        return {
            "days": self.label,
            "leave_by": self.leave_text,
            "energy_kwh": round(self.energy_kwh, 1),
            "sessions": self.sessions,
        }


@dataclass(frozen=True)
class Expectation:
    """What one plug-in is expected to need: ready by ``ready_by`` with ``energy_kwh``;
    ``source`` says what it was learned from (for reasons)."""

    ready_by: datetime
    energy_kwh: float
    source: str


@dataclass(frozen=True)
class Habits:
    """A habit (or None) per weekday, Monday first; shared groups hold the same object.

    ``history`` keeps the sessions learned from (oldest end first) for :meth:`expect`."""

    by_weekday: tuple[Habit | None, ...]
    timezone: str
    sessions: int  # sessions the learning saw
    history: tuple[PastSession, ...] = ()
    settings: HabitSettings = HabitSettings()

    def on(self, day: date) -> Habit | None:
        return self.by_weekday[day.weekday()]

    def expect(self, plugged_at: datetime, *, last_end: datetime | None = None) -> Expectation:
        """The plan for a car plugged in at ``plugged_at`` (module docstring): when it leaves,
        from similar plug-ins; how much it takes, from sessions after a similar time away
        (``last_end``: when the previous session ended; None: the latest in the history)."""
        past = [s for s in self.history if s.ended_at < plugged_at]
        if not past:
            return Expectation(plugged_at + NO_HISTORY_READY, NO_HISTORY_KWH, NO_HISTORY)
        ready_by, leave_source = _leave(self, past, plugged_at)
        if last_end is None:
            last_end = past[-1].ended_at
        energy, energy_source = _energy(past, plugged_at - last_end, self.settings)
        return Expectation(ready_by, energy, f"{leave_source}; {energy_source}")

    def distinct(self) -> list[Habit]:
        seen: list[Habit] = []
        for habit in self.by_weekday:
            if habit is not None and habit not in seen:
                seen.append(habit)
        return seen

    def to_json(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "sessions": self.sessions,
            "habits": [habit.to_json() for habit in self.distinct()],
            "by_weekday": {
                DAY_NAMES[i]: None if h is None else h.label for i, h in enumerate(self.by_weekday)
            },
        }


def _quantile(values: Sequence[float], q: float) -> float:
    """numpy's default (linear) quantile, in plain Python: the service imports this module,
    and loading numpy for it would slow every start (issue 16)."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _day_kind(local: datetime) -> str:
    return "weekend" if local.weekday() >= 5 else "weekday"


def _clock(local: datetime) -> int:
    return local.hour * 60 + local.minute


def _clock_gap(a: int, b: int) -> int:
    """Minutes between two clock times, around midnight (23:30 and 00:30 are an hour apart)."""
    gap = abs(a - b) % (24 * 60)
    return min(gap, 24 * 60 - gap)


def _leave(habits: Habits, past: list[PastSession], plugged_at: datetime) -> tuple[datetime, str]:
    """The departure: the early quantile of the stays of plug-ins at a similar clock time on
    the same kind of day, else on any day, else of every session; with what it came from.

    Not the day's habit: a Saturday 10:00 plug-in planned for Monday's usual departure left
    the car short whenever weekend daytime sessions were too few to learn from (measured on
    the bundled histories, docs/forecast.md); the stays of all sessions err early instead."""
    zone = ZoneInfo(habits.timezone)
    local = plugged_at.astimezone(zone)
    kind, clock = _day_kind(local), _clock(local)
    near: list[tuple[bool, float]] = []  # (same kind of day, stay in seconds)
    for session in past:
        started = session.started_at.astimezone(zone)
        if _clock_gap(_clock(started), clock) <= SIMILAR_CLOCK_MIN:
            stay = (session.ended_at - session.started_at).total_seconds()
            near.append((_day_kind(started) == kind, stay))
    low, high = (clock - SIMILAR_CLOCK_MIN) % 1440, (clock + SIMILAR_CLOCK_MIN) % 1440
    hours = f"{low // 60:02d}:{low % 60:02d}-{high // 60:02d}:{high % 60:02d}"
    same = [stay for alike, stay in near if alike]
    quantile, enough = habits.settings.leave_quantile, habits.settings.min_sessions
    if len(same) >= enough:
        stays, text = same, f"{kind} plug-ins {hours}"
    elif len(near) >= enough:
        stays, text = [stay for _, stay in near], f"plug-ins {hours}"
    else:
        stays = [(s.ended_at - s.started_at).total_seconds() for s in past]
        text = "all plug-ins"
    ready_by = plugged_at + timedelta(seconds=_quantile(stays, quantile))
    # Whole minutes, floored: earlier is the safe side.
    return ready_by.replace(second=0, microsecond=0), f"{text}, {len(stays)} sessions"


def _away_h(gap: timedelta) -> float:
    return max(AWAY_FLOOR_H, gap.total_seconds() / 3600)


def _energy(past: list[PastSession], away: timedelta, settings: HabitSettings) -> tuple[float, str]:
    """The high quantile of the energy of sessions after a similar time away, else of the
    nearest ones; with what it came from."""
    ordered = sorted(past, key=lambda s: s.started_at)
    hours = _away_h(away)
    # Each session's time away: since the previous one ended (the first has none known).
    aways = [
        (abs(log(_away_h(cur.started_at - prev.ended_at) / hours)), cur.energy_kwh)
        for prev, cur in pairwise(ordered)
    ]
    alike = [kwh for distance, kwh in aways if distance <= log(AWAY_FACTOR)]
    if len(alike) < settings.min_sessions:
        nearest = sorted(aways)[: settings.min_sessions]
        alike = [kwh for _, kwh in nearest] or [s.energy_kwh for s in past]
    energy = _quantile(alike, settings.energy_quantile)
    return energy, f"after {hours:.0f} h away, {len(alike)} sessions"


def _habit(label: str, ends: list[tuple[int, float]], settings: HabitSettings) -> Habit:
    minutes = [m for m, _ in ends]
    energies = [e for _, e in ends]
    leave = int(_quantile(minutes, settings.leave_quantile))  # floor: earlier is the safe side
    return Habit(
        label=label,
        leave_minute=leave,
        energy_kwh=_quantile(energies, settings.energy_quantile),
        sessions=len(ends),
    )


def habits_at(
    sessions: Iterable[PastSession],
    now: datetime,
    *,
    timezone: str,
    settings: HabitSettings | None = None,
) -> Habits:
    """The habits as known at ``now``: from sessions that ended before it (module docstring)."""
    settings = settings or HabitSettings()
    zone = ZoneInfo(timezone)
    since = now - timedelta(days=settings.days)
    per_day: list[list[tuple[int, float]]] = [[] for _ in range(7)]
    kept: list[PastSession] = []
    for session in sessions:
        if not since <= session.ended_at < now or not session.energy_kwh >= 0:
            continue  # later (no peeking), too old, or without a real energy (NaN)
        local = session.ended_at.astimezone(zone)
        per_day[local.weekday()].append((local.hour * 60 + local.minute, session.energy_kwh))
        kept.append(session)
    seen = len(kept)
    groups = {
        "weekdays": [e for d in range(5) for e in per_day[d]],
        "Saturdays": per_day[5],
        "Sundays": per_day[6],
    }
    shared = {
        label: _habit(label, ends, settings) if len(ends) >= settings.min_sessions else None
        for label, ends in groups.items()
    }
    by_weekday: list[Habit | None] = []
    for day in range(7):
        group = GROUPS[0] if day < 5 else GROUPS[day - 4]
        if day < 5 and len(per_day[day]) >= max(settings.per_day_min, settings.min_sessions):
            by_weekday.append(_habit(DAY_NAMES[day], per_day[day], settings))
        else:
            by_weekday.append(shared[group])
    return Habits(
        by_weekday=tuple(by_weekday),
        timezone=timezone,
        sessions=seen,
        history=tuple(sorted(kept, key=lambda s: s.ended_at)),
        settings=settings,
    )


def next_departure(
    habits: Habits, now: datetime, *, min_lead: timedelta = timedelta(minutes=30)
) -> tuple[datetime, Habit] | None:
    """The first habitual departure at least ``min_lead`` after ``now`` within a week, with
    its habit; None when no day has one. A car still plugged in past today's usual time is
    planned for the next day with a habit, never for a time already gone."""
    zone = ZoneInfo(habits.timezone)
    today = now.astimezone(zone).date()
    for ahead in range(8):
        day = today + timedelta(days=ahead)
        habit = habits.on(day)
        if habit is None:
            continue
        at = datetime.combine(
            day, time(habit.leave_minute // 60, habit.leave_minute % 60), tzinfo=zone
        )
        if at - now >= min_lead:
            return at, habit
    return None
