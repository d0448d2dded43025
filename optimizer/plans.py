"""Departure plans: the driver's "ready by HH:MM with N kWh", kept in the state database.

The Enlighten cloud reports neither when the car will leave nor how much it needs (the charger
has no state-of-charge reading), so this is the one input only the driver can give. `evopt
plan set` writes it, the service attaches it to the charger's view every tick
(:func:`with_plans`, pure), and policies that honour plans (``excess_solar`` with
``departure: meet``) wait for the sun only as long as the plan still can be met.

A plan is for one charger (or every charger, key ``*``) and ends by itself at its ready-by
time, so a plan set tonight for tomorrow's trip never lingers into the next day.

With ``plans: auto`` a plugged-in charger without such a plan gets one learned from its
session history (:func:`learn_habits`, :mod:`optimizer.forecast.habits`): what similar
plug-ins needed (:meth:`Habits.expect`), fixed at the plug-in, marked ``learned`` so reasons
say where it came from. A learned departure is an estimate: once it has passed with the car
still plugged in and short of the plan's energy, the plan moves on an hour at a time
(:func:`overdue`), so the charge goes on toward the expected need instead of stopping.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from optimizer.decisions.store import DecisionStore, parse_utc, utc_text
from optimizer.engine.snapshot import DeparturePlan, Snapshot
from optimizer.enlighten.errors import ParseError
from optimizer.enlighten.models import ChargingSession, parse_session_history_page
from optimizer.forecast.habits import Habits, HabitSettings, PastSession, habits_at
from optimizer.timespec import parse_clock

_LOGGER = logging.getLogger(__name__)

__all__ = [
    "ALL_CHARGERS",
    "MET_KWH",
    "PLANS_KEY",
    "HabitCache",
    "clear_plan",
    "learn_habits",
    "learned_from",
    "learned_plan",
    "load_plans",
    "overdue",
    "parse_ready_by",
    "past_sessions",
    "save_plan",
    "with_plans",
]

PLANS_KEY = "departure_plans"
ALL_CHARGERS = "*"
MAX_AHEAD = timedelta(days=7)
OVERDUE_STEP = timedelta(hours=1)
OVERDUE = "past its departure: the rest now"
MET_KWH = 0.05  # under this short, a plan is met (the simulator's rounding)
# A met learned plan whose car still takes energy asks this much more (:func:`overdue`): about
# an hour at a 32 A charger's full power; 5 kWh measured on seattle's Mar-Jun (unmet 3.2 ->
# 2.3 %, share 0.284 -> 0.278, docs/planner.md).
MORE_STEP_KWH = 5.0
MORE = "met with the car still taking: more"


def parse_ready_by(text: str, *, now: datetime, timezone: str) -> datetime:
    """``HH:MM`` (the next such local time) or an ISO date-time (local unless it has an offset).

    Raises ValueError naming what would be valid; a time in the past or more than a week ahead
    is refused, since it is almost surely a typo.
    """
    zone = ZoneInfo(timezone)
    local_now = now.astimezone(zone)
    if ":" in text and "T" not in text and "-" not in text:
        minutes = parse_clock(text) % (24 * 60)
        at = local_now.replace(hour=minutes // 60, minute=minutes % 60, second=0, microsecond=0)
        if at <= local_now:
            at += timedelta(days=1)
    else:
        try:
            at = datetime.fromisoformat(text)
        except ValueError as err:
            raise ValueError(
                f"{text!r} is neither HH:MM nor a date-time like 2025-06-01T15:30"
            ) from err
        if at.tzinfo is None:
            at = at.replace(tzinfo=zone)
    at = at.astimezone(UTC)
    if at <= now:
        raise ValueError(f"{text!r} is in the past")
    if at - now > MAX_AHEAD:
        raise ValueError(f"{text!r} is more than {MAX_AHEAD.days} days ahead")
    return at


def _decode(raw: Any) -> dict[str, DeparturePlan]:
    """The stored plans; a damaged entry is skipped rather than stopping the service."""
    plans: dict[str, DeparturePlan] = {}
    if not isinstance(raw, dict):
        return plans
    for key, value in raw.items():
        try:
            plans[str(key)] = DeparturePlan(
                ready_by=parse_utc(str(value["ready_by"])), energy_kwh=float(value["energy_kwh"])
            )
        except (KeyError, TypeError, ValueError):
            continue
    return plans


def load_plans(store: DecisionStore) -> dict[str, DeparturePlan]:
    """Every stored plan by charger serial (``*``: every charger), expired ones included."""
    return _decode(store.load_state(PLANS_KEY))


def _encode(plans: dict[str, DeparturePlan]) -> dict[str, Any]:
    return {
        key: {"ready_by": utc_text(plan.ready_by), "energy_kwh": plan.energy_kwh}
        for key, plan in sorted(plans.items())
    }


def save_plan(store: DecisionStore, sn: str | None, plan: DeparturePlan, *, now: datetime) -> None:
    """Set the plan of one charger (``sn``) or of all (None); it replaces an earlier one."""
    plans = {k: p for k, p in load_plans(store).items() if p.ready_by > now}  # drop expired
    key = sn or ALL_CHARGERS
    if key == ALL_CHARGERS:
        plans = {}
    plans[key] = plan
    store.save_state(PLANS_KEY, _encode(plans), updated_at=now)


def clear_plan(store: DecisionStore, sn: str | None, *, now: datetime) -> int:
    """Remove one charger's plan (or every plan, with None); how many were removed."""
    plans = load_plans(store)
    kept = {k: p for k, p in plans.items() if sn is not None and k != sn}
    store.save_state(PLANS_KEY, _encode(kept), updated_at=now)
    return len(plans) - len(kept)


def with_plans(
    snapshot: Snapshot,
    plans: dict[str, DeparturePlan],
    *,
    learned: Mapping[str, Habits] | None = None,
    plugged_at: Mapping[str, datetime] | None = None,
    asked: Mapping[str, float] | None = None,
) -> Snapshot:
    """The snapshot with each charger's plan attached: its own, else the all-chargers one;
    plans whose ready-by has passed are left out. With ``learned`` habits (``plans: auto``;
    by serial, ``*`` for every charger), a plugged-in charger left without a plan gets the
    learned one for its plug-in (``plugged_at`` by serial, :meth:`HabitCache.plugged_at`;
    else now), moved on by :func:`overdue` past its departure, with the steps ``asked`` so
    far in this plug-in (by serial, :meth:`HabitCache.asked`): a manual plan always wins."""
    if not plans and not learned:
        return snapshot
    chargers = []
    for view in snapshot.chargers:
        plan = plans.get(view.sn) or plans.get(ALL_CHARGERS)
        if plan is not None and plan.ready_by <= snapshot.now:
            plan = None
        if plan is None and learned and view.plugged_in:
            habits = learned.get(view.sn) or learned.get(ALL_CHARGERS)
            since = (plugged_at or {}).get(view.sn, snapshot.now)
            if habits is not None:
                plan = overdue(
                    learned_plan(habits, since),
                    snapshot.now,
                    view.session_kwh or 0,
                    drawing=view.drawing,
                    asked=(asked or {}).get(view.sn, 0.0),
                )
        chargers.append(replace(view, plan=plan) if plan != view.plan else view)
    return replace(snapshot, chargers=tuple(chargers))


def learned_plan(
    habits: Habits, plugged_at: datetime, *, last_end: datetime | None = None
) -> DeparturePlan:
    """The plan the habits give a car plugged in at ``plugged_at``
    (:meth:`optimizer.forecast.habits.Habits.expect`), saying what it was learned from."""
    expected = habits.expect(plugged_at, last_end=last_end)
    return DeparturePlan(
        ready_by=expected.ready_by.astimezone(UTC),
        energy_kwh=round(expected.energy_kwh, 1),
        learned=expected.source,
    )


def _asking_more(learned: str) -> str:
    """A learned plan's source with the "more" step said once (:func:`overdue`)."""
    return learned if MORE in learned else f"{learned}; {MORE}"


def overdue(
    plan: DeparturePlan,
    now: datetime,
    delivered_kwh: float,
    *,
    taking: bool | None = None,
    drawing: bool = False,
    asked: float = 0.0,
) -> DeparturePlan:
    """A learned plan whose departure has passed with the car still plugged in and short of
    its energy: the rest by the next whole hour after the learned departure that is still
    ahead. The departure was an estimate and the car is still here, so charging goes on
    toward the expected need rather than stopping; the ready-by moves only once an hour, so
    the plan (and the planner's kept plan) does not change every tick. A plan set by the
    driver, one still ahead, one met, or one for a car that takes nothing more (``taking``
    False: full; the replay knows it, live the car just draws nothing) is returned as it is.

    **Met with the car drawing** (``drawing``: live, the connector reads CHARGING; the replay,
    a MANUAL charger that is on and a car not yet full, the same fact): the learned energy
    was an estimate too, and a car that draws beyond it is not full (a car back from a trip
    takes 54 kWh where the commute's 10 were asked), so the plan asks :data:`MORE_STEP_KWH`
    more by the same ready-by, a step at a time (the plan changes only when a step is
    reached, not every tick). Past the ready-by, a met plan whose car still draws moves on
    the same way as a short one, an hour at a time, asking the next step: the car stayed
    and is not full (seattle's Friday before a trip: 36.5 kWh taken, 21 asked, the plan met
    at 06:55 and the car there until 07:46). Only what the charger shows counts: a car that
    is stopped says nothing of whether it is full, live or replayed alike.

    ``asked``: the most a step asked earlier in this plug-in (the caller keeps it,
    :meth:`HabitCache.asked`, the replay's charger): once asked, a step stays asked, or the
    planner, pausing before the ready-by, would read a car no longer drawing, drop the step
    and leave the car at the learned energy (seattle's Friday: the step came at 06:00 for a
    06:54 ready-by, the planner paused until its last slots and never resumed)."""
    if plan.learned is not None and asked > plan.energy_kwh:
        plan = replace(plan, energy_kwh=asked, learned=_asking_more(plan.learned))
    short = delivered_kwh < plan.energy_kwh - MET_KWH
    if plan.learned is not None and not short and drawing:
        steps = int((delivered_kwh - plan.energy_kwh + MET_KWH) // MORE_STEP_KWH) + 1
        more = steps * MORE_STEP_KWH
        ready_by = plan.ready_by
        if ready_by <= now:  # met by its departure and still drawing: on by the hour
            ready_by += ((now - ready_by) // OVERDUE_STEP + 1) * OVERDUE_STEP
        return replace(
            plan,
            ready_by=ready_by,
            energy_kwh=plan.energy_kwh + more,
            learned=_asking_more(plan.learned),
        )
    if plan.learned is None or plan.ready_by > now or not short or taking is False:
        return plan
    steps = (now - plan.ready_by) // OVERDUE_STEP + 1
    learned = plan.learned if plan.learned.endswith(OVERDUE) else f"{plan.learned}; {OVERDUE}"
    return replace(plan, ready_by=plan.ready_by + steps * OVERDUE_STEP, learned=learned)


def past_sessions(sessions: Iterable[ChargingSession]) -> list[PastSession]:
    """Finished sessions with an energy, each once (pages overlap at their days' edges)."""
    seen: set[str] = set()
    out: list[PastSession] = []
    for session in sessions:
        if session.id in seen or session.ended_at is None or session.energy_kwh is None:
            continue
        seen.add(session.id)
        active = session.active_charge_time_s
        out.append(
            PastSession(
                session.started_at,
                session.ended_at,
                session.energy_kwh,
                None if active is None else float(active),
            )
        )
    return out


def learn_habits(
    store: DecisionStore,
    site_id: int,
    *,
    now: datetime,
    timezone: str,
    settings: HabitSettings,
) -> dict[str, Habits]:
    """Each charger's habits from the session history `evopt history fetch` stored.

    A damaged page is skipped with a warning (the service never stops on bad history); a
    charger with no usable session is left out.
    """
    # A day before the look-back's first end: the store keeps sessions by local day.
    start = (settings.since(now) - timedelta(days=1)).astimezone(ZoneInfo(timezone)).date()
    by_charger: dict[str, list[ChargingSession]] = {}
    for sn, page in store.load_history_sessions_by_charger(site_id, start=start):
        try:
            by_charger.setdefault(sn, []).extend(parse_session_history_page(page).sessions)
        except ParseError as err:
            _LOGGER.warning("skipping a stored session page of charger %s: %s", sn, err)
    learned: dict[str, Habits] = {}
    for sn, sessions in by_charger.items():
        habits = habits_at(past_sessions(sessions), now, timezone=timezone, settings=settings)
        if habits.sessions:
            learned[sn] = habits
    return learned


def learned_from(
    store: DecisionStore,
    site_id: int,
    serials: Iterable[str],
    *,
    now: datetime,
    timezone: str,
    settings: HabitSettings,
) -> dict[str, dict[str, Any]]:
    """What each charger's learned plans have to go on, for `evopt status`: the days of the
    look-back stored, the sessions its habits come from, and when the newest stored day was
    fetched (UTC text, None before any), so a homeowner sees whether the service keeps the
    history (``plans: auto``) and how much it has learned from."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    first = today - timedelta(days=settings.days - 1)
    learned = learn_habits(store, site_id, now=now, timezone=timezone, settings=settings)
    out: dict[str, dict[str, Any]] = {}
    for sn in serials:
        days = {
            day: at
            for day, at in store.history_session_days(site_id, sn).items()
            if first <= day <= today
        }
        habits = learned.get(sn)
        out[sn] = {
            "days_stored": len(days),
            "days": settings.days,
            "sessions": habits.sessions if habits is not None else 0,
            "fetched_at": utc_text(max(days.values())) if days else None,
        }
    return out


# How far ahead of the service's clock a status's plg_in_at may be and still be the plug-in:
# the charger's report and the host's clock differ by seconds, not minutes.
PLUG_SKEW = timedelta(minutes=5)


class HabitCache:
    """The service's learned habits, relearned at most every :attr:`EVERY` (a habit changes
    slowly) and after the history changed (:meth:`forget`: `plans: auto` keeps it stored,
    optimizer/service/sessions.py).

    A database that cannot be read leaves the last habits in place (or none) with one warning:
    a learned plan is a convenience, and its absence must never fail a tick.
    """

    EVERY = timedelta(hours=1)

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._at: datetime | None = None
        self._habits: dict[str, Habits] = {}
        self._plugged: dict[str, datetime] = {}
        self._asked: dict[str, tuple[datetime, float]] = {}  # by serial: (plug-in, kWh)

    def plugged_at(self, snapshot: Snapshot) -> dict[str, datetime]:
        """When each plugged-in charger's car was plugged in (by serial): a learned plan is
        made for its plug-in and stays that plan as the session goes on, rather than drifting
        with every tick's "now".

        The status's ``plg_in_at`` says so, and survives a restart of the service (a plan made
        from the restart's tick would ask for the whole stay again from then). Without it, or
        with one in the future (a clock that is off: trusting it would plan a stay that has
        not begun), the first tick that saw the car plugged in stands for it.
        """
        for view in snapshot.chargers:
            if not view.plugged_in:
                self._plugged.pop(view.sn, None)
                continue
            reported = view.plugged_in_at
            if reported is not None and reported <= snapshot.now + PLUG_SKEW:
                self._plugged[view.sn] = min(reported, snapshot.now)
            else:
                self._plugged.setdefault(view.sn, snapshot.now)
        return dict(self._plugged)

    def asked(self) -> dict[str, float]:
        """The most a learned plan's "more" step asked (:func:`overdue`) in each charger's
        plug-in (by serial), kept by :meth:`remember`: a step once asked stays asked while
        the car is plugged in, whether or not it draws at this tick."""
        return {
            sn: kwh for sn, (since, kwh) in self._asked.items() if self._plugged.get(sn) == since
        }

    def remember(self, snapshot: Snapshot) -> None:
        """Keep the steps the snapshot's learned plans ask (after :func:`with_plans`); a new
        plug-in (or an unplugged charger) starts again from none."""
        for view in snapshot.chargers:
            since = self._plugged.get(view.sn)
            kept = self._asked.get(view.sn)
            if since is None or (kept is not None and kept[0] != since):
                self._asked.pop(view.sn, None)
                kept = None
            plan = view.plan
            if since is None or plan is None or plan.learned is None or MORE not in plan.learned:
                continue
            if kept is None or plan.energy_kwh > kept[1]:
                self._asked[view.sn] = (since, plan.energy_kwh)

    def forget(self) -> None:
        """Learn again at the next :meth:`get`: the stored history has changed."""
        self._at = None

    def get(
        self,
        store: DecisionStore,
        site_id: int,
        *,
        now: datetime,
        timezone: str,
        settings: HabitSettings,
    ) -> dict[str, Habits]:
        key = (site_id, timezone, settings)
        fresh = self._at is not None and timedelta(0) <= now - self._at < self.EVERY
        if key == self._key and fresh:
            return self._habits
        try:
            self._habits = learn_habits(
                store, site_id, now=now, timezone=timezone, settings=settings
            )
        except (sqlite3.Error, ValueError) as err:
            _LOGGER.warning("cannot learn departure habits (plans: auto): %s", err)
        self._key, self._at = key, now
        return self._habits
