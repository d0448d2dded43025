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

* **When it leaves**: the ``leave_quantile`` of when similar plug-ins left (plugged in within
  +-2 h of the same clock time, on the same kind of day: weekday or weekend), counted from
  this plug-in: by the end's clock time for those that stayed overnight, by the stay for
  those that left the same day; those on the same weekday count :data:`SAME_WEEKDAY_WEIGHT`
  times. A car plugged in at 18:00 and one plugged in at 09:00 leave at different times even
  on the same weekday; the day's habit cannot tell them apart. Fewer than ``min_sessions``
  similar plug-ins: those at a similar clock time on any day, else the stays of all
  sessions, no later than the shortest similar one.
* **How much it takes**: the ``energy_quantile`` of the energy of sessions that followed a
  similar time away (the time since the last session ended, within a factor of 1.5, else the
  ``min_sessions`` nearest ones, the most they took after :data:`LONG_AWAY_H` away, a full
  car after :data:`TRIP_AWAY_H`): a car back after two days on the road needs more than one
  back from the school run. A full car
  after an absence longer than any before (by the factor), or when the last session charged
  at full power all its stay (it left short).
* **No history yet**, or fewer than ``min_sessions`` sessions: a full car at once (150 kWh,
  ready in 12 h): with nothing to learn from, charging promptly is the only plan that never
  leaves the driver short.
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
    "possible",
]

DAY_NAMES = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")
GROUPS = ("weekdays", "Saturdays", "Sundays")
NO_HISTORY = "no history yet: a full car at once"
FULL_CAR = "a full car"
LEFT_CHARGING = "the last session charged at full power until it left"
LEFT_CHARGING_SHARE = 0.95  # of the highest power any session took energy at
# Where the history says how long a session drew, "until it left" is at least this share of
# its stay: a car that stopped drawing well before it left was full, however fast it filled
# (a trip's return drawing 3.1 h of its 3.7 h is 83 %; a short stay topped up in 49 of 90
# minutes, 54 %, is not).
LEFT_ACTIVE_SHARE = 0.75
NO_HISTORY_KWH = 150.0  # more than any car takes: the car stops drawing when full
NO_HISTORY_READY = timedelta(hours=12)
SIMILAR_CLOCK_MIN = 120  # plug-ins within +-2 h of the same clock time are alike
AWAY_FACTOR = 1.5  # times away within this factor of each other are alike
AWAY_FLOOR_H = 1.0  # below an hour away, the time away says nothing more
# After this long away with too few sessions after a similar absence, the most any of the
# nearest took (:func:`_energy`): the nearest are the shorter absences, which took less.
LONG_AWAY_H = 48.0
# After this long away with too few sessions after a similar absence, a full car: a trip,
# whose need the car's battery bounds, not the sessions after shorter absences (phoenix's
# returns after 4-5 days took 67.5 kWh, gone at 05:00 for the next shift).
TRIP_AWAY_H = 96.0
# A similar plug-in on the same weekday counts this many times in the departure's quantile
# (:func:`_leave`): 5 measured on the bundled histories (docs/planner.md, "Learned plans").
SAME_WEEKDAY_WEIGHT = 5
ANCHORED_FLOOR_S = 1800.0  # a re-anchored departure is at least half an hour after the plug-in
# The most any IQ EV Charger delivers: three phases of 32 A at 230 V (22.08 kW; one phase of
# 48 A at 240 V is 11.5). A session record above it over its stay is a glitch (:func:`possible`).
MAX_CHARGER_KW = 22.1
SLACK_KWH = 0.5  # rounding in the record's energy (0.01 kWh) and its times (whole seconds)
ACTIVE_SLACK_S = 300.0  # the drawing time may be counted a little past the unplug


@dataclass(frozen=True)
class PastSession:
    """One finished session: plugged in, left, took this much."""

    started_at: datetime
    ended_at: datetime
    energy_kwh: float
    # How long it drew (the history's ``activeChargeTime``); None where a source lacks it.
    active_s: float | None = None


@dataclass(frozen=True)
class HabitSettings:
    """The learning rule's knobs (config ``habits:``, docs/forecast.md)."""

    leave_quantile: float = 0.1
    energy_quantile: float = 0.9
    min_sessions: int = 5
    per_day_min: int = 8
    days: int = 90

    def since(self, now: datetime) -> datetime:
        """The earliest session end the habits at ``now`` learn from: the look-back's one
        definition, so the replay's pre-filtered window (optimizer/simulate/learned.py) and
        the stored history the service loads (optimizer/plans.py) cannot drift from it."""
        return now - timedelta(days=self.days)


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
        if len(past) < self.settings.min_sessions:
            # As a habit is claimed only from min_sessions: a stay or two says too little
            # (seattle's second session ever, a Saturday charge of 3 h, was planned from the
            # first one's overnight stay and got nothing).
            source = f"only {len(past)} sessions yet: {FULL_CAR} at once"
            return Expectation(plugged_at + NO_HISTORY_READY, NO_HISTORY_KWH, source)
        ready_by, leave_source = _leave(self, past, plugged_at)
        if last_end is None:
            last_end = past[-1].ended_at
        energy, energy_source = _energy(past, plugged_at - last_end, self.settings)
        if past[-1].ended_at == last_end and _left_charging(past):
            energy, energy_source = NO_HISTORY_KWH, f"{LEFT_CHARGING}: {FULL_CAR}"
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


def _signed_gap(a: int, b: int) -> int:
    """Minutes from clock time ``b`` to ``a``, around midnight, in -720..720."""
    return (a - b + 720) % (24 * 60) - 720


def _leave(habits: Habits, past: list[PastSession], plugged_at: datetime) -> tuple[datetime, str]:
    """The departure: the early quantile of when plug-ins at a similar clock time on the same
    kind of day left, else on any day, else of every session's stay; with what it came from.

    A similar plug-in that stayed overnight says when this one leaves by its end's clock
    time (its end moved by the minutes between the two plug-ins' clock times): a commuter
    leaves at 07:00 whether home at 17:30 or 19:00, and the stay counted from the earlier
    plug-in planned the later one for 07:30. One that left the same day says it by its stay:
    a weekend afternoon's charge lasts its few hours whenever it began.

    Plug-ins on the same weekday count :data:`SAME_WEEKDAY_WEIGHT` times: a weekly roster
    (a shift worker's Sunday-night plug-in before Monday's early shift, where the week's
    other late plug-ins leave at noon) shows in the weekday, not in the clock time. With
    fewer than ``min_sessions`` similar plug-ins, the stays of all sessions, but no later
    than the shortest similar stay there was (a Saturday 11:00 plug-in whose two like it
    stayed 4 h was planned for 23:00 by the commuter's overnight stays).

    Not the day's habit: a Saturday 10:00 plug-in planned for Monday's usual departure left
    the car short whenever weekend daytime sessions were too few to learn from (measured on
    the bundled histories, docs/forecast.md); the stays of all sessions err early instead."""
    zone = ZoneInfo(habits.timezone)
    local = plugged_at.astimezone(zone)
    kind, clock, weekday = _day_kind(local), _clock(local), local.weekday()
    # (same kind of day, weight, stay in seconds, its departure counted from this plug-in)
    near: list[tuple[bool, int, float, float]] = []
    for session in past:
        started = session.started_at.astimezone(zone)
        gap = _signed_gap(_clock(started), clock)
        if abs(gap) <= SIMILAR_CLOCK_MIN:
            stay = (session.ended_at - session.started_at).total_seconds()
            overnight = session.ended_at.astimezone(zone).date() > started.date()
            departure = max(stay + gap * 60, ANCHORED_FLOOR_S) if overnight else stay
            weight = SAME_WEEKDAY_WEIGHT if started.weekday() == weekday else 1
            near.append((_day_kind(started) == kind, weight, stay, departure))
    low, high = (clock - SIMILAR_CLOCK_MIN) % 1440, (clock + SIMILAR_CLOCK_MIN) % 1440
    hours = f"{low // 60:02d}:{low % 60:02d}-{high // 60:02d}:{high % 60:02d}"
    same = [n for n in near if n[0]]
    quantile, enough = habits.settings.leave_quantile, habits.settings.min_sessions
    if len(same) >= enough or len(near) >= enough:
        if len(same) >= enough:
            alike, text = same, f"{kind} plug-ins {hours}"
        else:
            alike, text = near, f"plug-ins {hours}"
        departures = [d for _, weight, _, d in alike for _ in range(weight)]
        seconds = _quantile(departures, quantile)
        count = len(alike)
        on_day = sum(weight > 1 for _, weight, _, _ in alike)
        if on_day:
            text += f" ({on_day} on {DAY_NAMES[weekday]})"
    else:
        stays = [(s.ended_at - s.started_at).total_seconds() for s in past]
        seconds = _quantile(stays, quantile)
        text, count = "all plug-ins", len(stays)
        if near:
            seconds = min(seconds, *(stay for _, _, stay, _ in near))
            text += f" (at most the shortest of {len(near)} at {hours})"
    ready_by = plugged_at + timedelta(seconds=seconds)
    # Whole minutes, floored: earlier is the safe side.
    return ready_by.replace(second=0, microsecond=0), f"{text}, {count} sessions"


def _left_charging(past: list[PastSession]) -> bool:
    """Whether the last session (``past[-1]``) charged at full power until it left, so the car
    most likely left short of full; unless most sessions do, when that is just the car's
    usual short stay.

    The sign is its average over the stay against the highest average any session took
    energy at. Where the history says how long each session drew (``active_s``), that sign
    must also hold while it drew: for :data:`LEFT_ACTIVE_SHARE` of its stay, and at the
    highest power any session drew at. Without those, a short stay filled fast, or a session
    the service itself kept on a weak sun until the car left (live, its own sessions are the
    history), passed for a car that left short, and the next plug-in was asked a full car at
    full power.
    """
    if len(past) < 2:
        return False
    powers = [_average_kw(s) for s in past]
    top = max(powers)
    near_top = sum(p >= LEFT_CHARGING_SHARE * top for p in powers)
    if not (top > 0 and powers[-1] >= LEFT_CHARGING_SHARE * top and near_top * 4 <= len(past)):
        return False
    last = past[-1]
    if last.active_s is None:
        return True
    stay_s = (last.ended_at - last.started_at).total_seconds()
    drawing = [_drawing_kw(s) for s in past if s.active_s is not None]
    return last.active_s >= LEFT_ACTIVE_SHARE * stay_s and _drawing_kw(
        last
    ) >= LEFT_CHARGING_SHARE * max(drawing)


def _average_kw(session: PastSession) -> float:
    hours = (session.ended_at - session.started_at).total_seconds() / 3600
    return session.energy_kwh / hours if hours >= AWAY_FLOOR_H else 0.0


def _drawing_kw(session: PastSession) -> float:
    """The power while it drew; none below a minute's drawing (a figure that says nothing)."""
    active_s = session.active_s or 0.0
    return session.energy_kwh * 3600 / active_s if active_s >= 60 else 0.0


def _away_h(gap: timedelta) -> float:
    return max(AWAY_FLOOR_H, gap.total_seconds() / 3600)


def _energy(past: list[PastSession], away: timedelta, settings: HabitSettings) -> tuple[float, str]:
    """The high quantile of the energy of sessions after a similar time away, else the most
    any of the nearest took (after :data:`LONG_AWAY_H`) or a full car (after
    :data:`TRIP_AWAY_H`); a full car after an absence longer than any before; with what it
    came from."""
    ordered = sorted(past, key=lambda s: s.started_at)
    hours = _away_h(away)
    # Each session's time away: since the previous one ended (the first has none known).
    away_h = [_away_h(cur.started_at - prev.ended_at) for prev, cur in pairwise(ordered)]
    aways = [
        (abs(log(h / hours)), cur.energy_kwh) for h, cur in zip(away_h, ordered[1:], strict=True)
    ]
    if away_h and hours > max(away_h) * AWAY_FACTOR:
        return NO_HISTORY_KWH, f"after {hours:.0f} h away, longer than any before: {FULL_CAR}"
    alike = [kwh for distance, kwh in aways if distance <= log(AWAY_FACTOR)]
    quantile = settings.energy_quantile
    if len(alike) < settings.min_sessions:
        nearest = sorted(aways)[: settings.min_sessions]
        alike = [kwh for _, kwh in nearest] or [s.energy_kwh for s in past]
        if hours >= TRIP_AWAY_H:
            return NO_HISTORY_KWH, f"after {hours:.0f} h away, few like it: {FULL_CAR}"
        if hours >= LONG_AWAY_H:
            quantile = 1.0
    energy = _quantile(alike, quantile)
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


def possible(session: PastSession) -> bool:
    """Whether a charger could have made this record: a real energy, at most what
    :data:`MAX_CHARGER_KW` delivers over its stay (and over the time it drew, when known),
    ending after it began. One impossible record (a glitch in Wh read as kWh: 12,000 kWh)
    would otherwise be "the most the nearest took" or the fastest session ever, and steer
    every plan after it."""
    stay_h = (session.ended_at - session.started_at).total_seconds() / 3600
    if not (stay_h > 0 and 0 <= session.energy_kwh <= MAX_CHARGER_KW * stay_h + SLACK_KWH):
        return False
    active = session.active_s
    return active is None or (
        0 <= active <= stay_h * 3600 + ACTIVE_SLACK_S
        and session.energy_kwh <= MAX_CHARGER_KW * active / 3600 + SLACK_KWH
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
    since = settings.since(now)
    per_day: list[list[tuple[int, float]]] = [[] for _ in range(7)]
    kept: list[PastSession] = []
    for session in sessions:
        if not since <= session.ended_at < now or not possible(session):
            continue  # later (no peeking), too old, or a record no charger could make
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
