"""Departure plans: the driver's "ready by HH:MM with N kWh", kept in the state database.

The Enlighten cloud reports neither when the car will leave nor how much it needs (the charger
has no state-of-charge reading), so this is the one input only the driver can give. `evopt
plan set` writes it, the service attaches it to the charger's view every tick
(:func:`with_plans`, pure), and policies that honour plans (``excess_solar`` with
``departure: meet``) wait for the sun only as long as the plan still can be met.

A plan is for one charger (or every charger, key ``*``) and ends by itself at its ready-by
time, so a plan set tonight for tomorrow's trip never lingers into the next day.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from optimizer.decisions.store import DecisionStore, parse_utc, utc_text
from optimizer.engine.snapshot import DeparturePlan, Snapshot
from optimizer.timespec import parse_clock

__all__ = [
    "ALL_CHARGERS",
    "PLANS_KEY",
    "clear_plan",
    "load_plans",
    "parse_ready_by",
    "save_plan",
    "with_plans",
]

PLANS_KEY = "departure_plans"
ALL_CHARGERS = "*"
MAX_AHEAD = timedelta(days=7)


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


def with_plans(snapshot: Snapshot, plans: dict[str, DeparturePlan]) -> Snapshot:
    """The snapshot with each charger's plan attached: its own, else the all-chargers one;
    plans whose ready-by has passed are left out."""
    if not plans:
        return snapshot
    chargers = []
    for view in snapshot.chargers:
        plan = plans.get(view.sn) or plans.get(ALL_CHARGERS)
        if plan is not None and plan.ready_by <= snapshot.now:
            plan = None
        chargers.append(replace(view, plan=plan) if plan != view.plan else view)
    return replace(snapshot, chargers=tuple(chargers))
