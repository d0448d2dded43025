"""`evopt plan set|show|clear`: the driver's departure plan ("ready by 15:30 with 12 kWh").

Local only: the plan is written to the state database that the service reads every tick, so
no cloud request is made and the running service picks it up at its next poll.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from optimizer.cli.context import Context
from optimizer.cli.output import print_json, print_table
from optimizer.decisions.store import DecisionStore
from optimizer.engine.snapshot import DeparturePlan
from optimizer.enlighten.errors import EnlightenError
from optimizer.plans import ALL_CHARGERS, clear_plan, load_plans, parse_ready_by, save_plan

__all__ = ["MAX_ENERGY_KWH", "PlanUsageError", "energy_type", "plan_clear", "plan_set", "plan_show"]

MAX_ENERGY_KWH = 250.0  # more than any car's battery: anything above is a typo


class PlanUsageError(EnlightenError):
    """A ``--by`` that parses but cannot be a departure (past, too far ahead): exit 2."""

    exit_code = 2
    hint = "give --by as HH:MM (the next such time) or a date-time within the next 7 days"


def energy_type(text: str) -> float:
    """``--energy``: kWh, above 0 and at most :data:`MAX_ENERGY_KWH` (exit 2 otherwise)."""
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of kWh") from err
    if not 0 < value <= MAX_ENERGY_KWH:
        raise argparse.ArgumentTypeError(f"{text!r}: expected kWh above 0 and at most 250")
    return value


def _now() -> datetime:
    return datetime.now(UTC)


def _zone(ctx: Context) -> str:
    return ctx.config.site.timezone or "UTC"


async def plan_set(ctx: Context) -> int:
    args = ctx.args
    now = _now()
    try:
        ready_by = parse_ready_by(args.by, now=now, timezone=_zone(ctx))
    except ValueError as err:
        raise PlanUsageError(f"--by: {err}") from err
    plan = DeparturePlan(ready_by=ready_by, energy_kwh=args.energy)
    with DecisionStore(ctx.config.database_path) as store:
        save_plan(store, args.charger, plan, now=now)
    local = ready_by.astimezone(ZoneInfo(_zone(ctx)))
    who = f"charger {args.charger}" if args.charger else "every charger"
    if args.json:
        print_json({"charger": args.charger or ALL_CHARGERS} | plan.to_json())
    else:
        print(
            f"Plan for {who}: {args.energy:g} kWh since plug-in by {local:%a %Y-%m-%d %H:%M}; "
            "the service uses it from its next poll."
        )
    return 0


async def plan_show(ctx: Context) -> int:
    now = _now()
    path = ctx.config.database_path
    plans = {}
    if path.is_file():
        with DecisionStore(path) as store:
            plans = load_plans(store)
    zone = ZoneInfo(_zone(ctx))
    rows = [
        (sn, plan.ready_by.astimezone(zone), plan.energy_kwh, plan.ready_by > now)
        for sn, plan in sorted(plans.items())
        if ctx.args.charger is None or sn in (ctx.args.charger, ALL_CHARGERS)
    ]
    if ctx.args.json:
        print_json(
            [
                {"charger": sn, "ready_by": at.isoformat(), "energy_kwh": kwh, "active": active}
                for sn, at, kwh, active in rows
            ]
        )
    elif rows:
        print_table(("charger", "ready_by", "energy_kwh", "active"), rows)
    else:
        print("No departure plan; set one with `evopt plan set --by HH:MM --energy KWH`.")
    return 0


async def plan_clear(ctx: Context) -> int:
    path = ctx.config.database_path
    removed = 0
    if path.is_file():
        with DecisionStore(path) as store:
            removed = clear_plan(store, ctx.args.charger, now=_now())
    if ctx.args.json:
        print_json({"removed": removed})
    else:
        print(f"Removed {removed} plan{'s' if removed != 1 else ''}.")
    return 0
