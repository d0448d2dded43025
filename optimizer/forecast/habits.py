"""When the car usually leaves and how much it takes, learned from session history.

Why: a departure plan lets a solar policy wait for the sun without leaving the car short, but
nobody sets a plan every day. The charger's own session history says when each session ended
(the car left) and how much energy it took, so the habit can be learned (docs/forecast.md).

The rule, per departure (a session's end, in the site's local time):

* **Groups.** A session belongs to the day type of its end: weekday, Saturday or Sunday. When
  one weekday alone has at least ``per_day_min`` sessions, that weekday gets its own habit
  (Mondays may differ from Fridays); otherwise the group's habit serves it.
* **Conservative quantiles.** The leave time is an early quantile of the end times
  (``leave_quantile``, default 0.2: the car was gone by then on only one day in five), and
  the energy a high one of the sessions' energy (``energy_quantile``, default 0.8): a plan
  that is ready too early or asks too much costs a little grid energy; one that is ready too
  late or asks too little leaves the driver short, which is worse.
* **Enough data.** Below ``min_sessions`` sessions in a group no habit is claimed.
* **Causal.** :func:`habits_at` uses only sessions that ended before ``now`` and within the
  last ``days``; sessions without an end or energy are skipped.

Leave times are minutes after local midnight, not wrapped around it: a car that leaves at
00:10 on some days and 23:50 on others has no useful habit anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "DAY_NAMES",
    "Habit",
    "HabitSettings",
    "Habits",
    "PastSession",
    "habits_at",
    "next_departure",
]

DAY_NAMES = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")
GROUPS = ("weekdays", "Saturdays", "Sundays")


@dataclass(frozen=True)
class PastSession:
    """One finished session: plugged in, left, took this much."""

    started_at: datetime
    ended_at: datetime
    energy_kwh: float


@dataclass(frozen=True)
class HabitSettings:
    """The learning rule's knobs (config ``habits:``, docs/forecast.md)."""

    leave_quantile: float = 0.2
    energy_quantile: float = 0.8
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
class Habits:
    """A habit (or None) per weekday, Monday first; shared groups hold the same object."""

    by_weekday: tuple[Habit | None, ...]
    timezone: str
    sessions: int  # sessions the learning saw

    def on(self, day: date) -> Habit | None:
        return self.by_weekday[day.weekday()]

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
    seen = 0
    for session in sessions:
        if not since <= session.ended_at < now or not session.energy_kwh >= 0:
            continue  # later (no peeking), too old, or without a real energy (NaN)
        local = session.ended_at.astimezone(zone)
        per_day[local.weekday()].append((local.hour * 60 + local.minute, session.energy_kwh))
        seen += 1
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
    return Habits(by_weekday=tuple(by_weekday), timezone=timezone, sessions=seen)


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
