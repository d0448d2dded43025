"""`evopt plan set|show|clear|learn`: the driver's departure plan ("ready by 15:30 with 12 kWh").

Local only: the plan is written to the state database that the service reads every tick, so
no cloud request is made and the running service picks it up at its next poll. `learn` shows
the departure habits learned from session history (what ``plans: auto`` turns into plans).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from optimizer.cli.context import Context
from optimizer.cli.output import print_json, print_table
from optimizer.cli.simulate import InputError, expand_sessions, read_json
from optimizer.decisions.store import DecisionStore
from optimizer.enlighten.errors import EnlightenError, ParseError
from optimizer.enlighten.models import ChargingSession, parse_session_history_page
from optimizer.forecast.habits import Habits, habits_at
from optimizer.plans import ALL_CHARGERS, learn_habits, learned_plan, load_plans, past_sessions
from optimizer.steer import (
    CommandError,
    clear_departure,
    departure_plan,
    set_departure,
)

__all__ = [
    "PlanUsageError",
    "plan_clear",
    "plan_learn",
    "plan_set",
    "plan_show",
]


class PlanUsageError(EnlightenError):
    """A ``--by`` that parses but cannot be a departure (past, too far ahead): exit 2."""

    exit_code = 2
    hint = "give --by as HH:MM (the next such time) or a date-time within the next 7 days"


def _now() -> datetime:
    return datetime.now(UTC)


def _zone(ctx: Context) -> str:
    return ctx.config.site.timezone or "UTC"


async def plan_set(ctx: Context) -> int:
    """Through optimizer/steer.py, as Home Assistant's plan entities: the plan is stored and
    the service records it in the decision log as the user's command at its next tick."""
    args = ctx.args
    now = _now()
    try:  # before the database is opened: a refused value leaves nothing behind
        plan = departure_plan(ctx.config, by=args.by, energy_kwh=args.energy, now=now)
    except CommandError as err:
        raise PlanUsageError(str(err)) from err
    with DecisionStore(ctx.config.database_path) as store:
        set_departure(store, ctx.config, charger_sn=args.charger, plan=plan, now=now, source="cli")
    local = plan.ready_by.astimezone(ZoneInfo(_zone(ctx)))
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
            action = clear_departure(
                store, ctx.config, charger_sn=ctx.args.charger, now=_now(), source="cli"
            )
            removed = int(action.params["removed"])
    if ctx.args.json:
        print_json({"removed": removed})
    else:
        print(f"Removed {removed} plan{'s' if removed != 1 else ''}.")
    return 0


def _file_habits(ctx: Context, at: datetime | None) -> tuple[dict[str, Habits], datetime]:
    """Habits from ``--sessions`` files (Enlighten's session-history pages); without ``--at``
    as of just after the newest session, so an old export still shows its habits."""
    sessions: list[ChargingSession] = []
    for path in expand_sessions(ctx.args.sessions):
        try:
            sessions.extend(parse_session_history_page(read_json(path)).sessions)
        except ParseError as err:
            raise InputError(f"{path}: {err}") from err
    past = past_sessions(sessions)
    if at is None:
        ends = [s.ended_at for s in past]
        at = max(ends) + timedelta(seconds=1) if ends else _now()
    settings = ctx.config.habits.settings()
    habits = habits_at(past, at, timezone=_zone(ctx), settings=settings)
    return ({ALL_CHARGERS: habits} if habits.sessions else {}), at


def _stored_habits(ctx: Context, at: datetime | None) -> tuple[dict[str, Habits], datetime]:
    at = at or _now()
    path = ctx.config.database_path
    site_id = ctx.chosen_site_id()
    fetch_hint = (
        "run `evopt history fetch` first (with `plans: auto` the service fetches it itself), "
        "or pass --sessions FILE"
    )
    if not path.is_file():
        raise InputError(f"no session history: no database at {path}", hint=fetch_hint)
    with DecisionStore(path) as store:
        if site_id is None:
            sites = store.history_sites()
            if len(sites) != 1:
                raise InputError(
                    f"{path} holds history of {len(sites)} sites; say which with --site ID",
                    hint=fetch_hint,
                )
            site_id = sites[0]
        learned = learn_habits(
            store, site_id, now=at, timezone=_zone(ctx), settings=ctx.config.habits.settings()
        )
    return learned, at


async def plan_learn(ctx: Context) -> int:
    """The habits per charger, and the plan ``plans: auto`` would give a plug-in now."""
    at: datetime | None = None
    if ctx.args.at is not None:
        try:
            at = datetime.fromisoformat(ctx.args.at)
        except ValueError as err:
            raise PlanUsageError(f"--at: {ctx.args.at!r} is not a date-time") from err
        if at.tzinfo is None:
            at = at.replace(tzinfo=ZoneInfo(_zone(ctx)))
    learned, at = _file_habits(ctx, at) if ctx.args.sessions else _stored_habits(ctx, at)
    if ctx.args.charger is not None:
        learned = {sn: h for sn, h in learned.items() if sn in (ctx.args.charger, ALL_CHARGERS)}
    zone = ZoneInfo(_zone(ctx))
    chargers = []
    for sn, habits in sorted(learned.items()):
        plan = learned_plan(habits, at)
        chargers.append(
            {"charger": sn}
            | habits.to_json()
            | {
                "next_plan": None
                if plan is None
                else {
                    "ready_by": plan.ready_by.astimezone(zone).isoformat(),
                    "energy_kwh": plan.energy_kwh,
                    "learned": plan.learned,
                }
            }
        )
    if ctx.args.json:
        settings = ctx.config.habits
        print_json(
            {
                "at": at.astimezone(zone).isoformat(),
                "plans": ctx.config.plans,
                "settings": settings.model_dump(),
                "chargers": chargers,
            }
        )
        return 0
    if not any(item["habits"] for item in chargers):
        print(
            f"No departure habit yet: fewer than {ctx.config.habits.min_sessions} finished "
            f"sessions of a day type in the {ctx.config.habits.days} days before "
            f"{at.astimezone(zone):%Y-%m-%d %H:%M}."
        )
        return 0
    rows = [
        (item["charger"], habit["days"], habit["leave_by"], habit["energy_kwh"], habit["sessions"])
        for item in chargers
        for habit in item["habits"]
    ]
    print_table(("charger", "days", "leave_by", "energy_kwh", "sessions"), rows)
    for item in chargers:
        nxt = item["next_plan"]
        if nxt is not None:
            ready = datetime.fromisoformat(nxt["ready_by"])
            print(
                f'{item["charger"]}: a plug-in now gets "learned plan: ready by '
                f'{ready:%a %H:%M} with {nxt["energy_kwh"]:g} kWh ({nxt["learned"]})"'
                + ("" if ctx.config.plans == "auto" else " with `plans: auto`")
            )
    return 0
