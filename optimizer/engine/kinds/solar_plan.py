"""solar_plan: charge by a plan over the solar forecast, made again every tick (MPC).

A thin adapter around :mod:`optimizer.planner`: it reads the charger, its departure plan,
the expected surplus (``snapshot.outlook``) and the prices, has the planner solve the
charge from now to the departure (or the rule's ``horizon`` without a plan), applies the
plan's first slot and says what the plan expects (docs/planner.md).

Two things the programme is not trusted with:

- **The feasibility guard.** Once the rest of a plan at ``max_amps`` no longer fits before
  the departure minus ``margin``, it charges at ``max_amps`` whatever the forecast says,
  and the reason says so. A forecast too bright can cost solar share, never the plan.
- **No forecast.** Without an outlook (too little history, none built) it plans over the
  current surplus held flat, and the reason says so.

When it plans again: live (``outlook.replan == "tick"``) every tick. In the simulator
(``"change"``) the last plan is kept while nothing material changed: the plan (ready-by,
energy), the charger's state against the plan, the surplus leaving the plan's p10-p90 band
for the slot now, the price now against the plan's, or the plan's age over
:data:`REPLAN_AFTER`; then it applies the kept plan's level for now.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from optimizer.engine.decision import PolicyState, Proposal
from optimizer.engine.kinds.common import (
    Context,
    Outcome,
    at_clock,
    charge,
    finite,
    hinted,
    kw,
    manual_mode,
    proposal,
    span,
    watts_per_amp,
    with_inputs,
)
from optimizer.engine.rules import SolarPlan
from optimizer.planner.explain import expectation, next_change, summary
from optimizer.planner.outlook import LEARNED_SOURCE, STEP_S, SurplusOutlook
from optimizer.planner.slots import SlotPlan, cut

if TYPE_CHECKING:
    from optimizer.planner.problem import PlanInput, PlanResult

REPLAN_AFTER = timedelta(hours=2)
"""A kept plan older than this is made again (the forecast's recent index has moved on)."""
MET_KWH = 0.01
GUARD_LAG = timedelta(minutes=15)
"""The plan keeps its grid run this much further from the guard's margin than the margin
itself: the guard judges from the energy delivered so far and the clock, the plan from its
slots (a first slot shorter than 15 minutes, a ready-by inside a slot), so a run planned
right at the margin was raised to full power by the guard (learned plans, April-June on the
sample: 24 level changes more than with the run at full power)."""
FLAT_SOURCE = "current surplus"
DP_MARGIN = timedelta(minutes=5)
"""With ``method: dp`` the guard's margin is at most this: the programme holds the need by
the ready-by as a constraint whatever the forecast (the MILP's plan does not), so the rule's
``margin`` only took the plan's last slots from it, and the car full before their sun
(docs/planner.md "Eighth pass": 15 -> 5 min, greensboro May +0.3 points, Phoenix June +0.4;
0 min the same)."""


def _margin(policy: SolarPlan) -> timedelta:
    """The guard's margin: the rule's, and at most :data:`DP_MARGIN` with ``method: dp``."""
    return min(policy.margin, DP_MARGIN) if policy.method == "dp" else policy.margin


def levels(policy: SolarPlan, ctx: Context) -> tuple[int, int]:
    """(lowest, highest) level of this rule on this charger, on the charger's steps and
    within the breaker."""
    low = ctx.limits.up(policy.min_amps or ctx.charger.min_amps)
    high = max(low, ctx.limits.down(policy.max_amps or ctx.charger.max_amps))
    return low, high


def _available(policy: SolarPlan, ctx: Context) -> float | None:
    return finite(
        ctx.snapshot.surplus.available_w(
            count_battery_charge=True, count_battery_discharge=policy.use_battery
        )
    )


FLAT_HOLD = timedelta(hours=1)
"""Without a forecast the current surplus is assumed to last this long, then none: a level
change must pay for itself within the hour, so the plan does not chase every reading."""


def _flat(ctx: Context, watts: float | None, until: datetime) -> SurplusOutlook:
    """No forecast: the current surplus for :data:`FLAT_HOLD`, then nothing known (the
    slots take no sun past the outlook's end; ``method: dp`` hedges its grid against it)."""
    first = int(ctx.now.timestamp() // STEP_S) * STEP_S
    steps = max(1, math.ceil((until.timestamp() - first) / STEP_S))
    held = math.ceil(FLAT_HOLD.total_seconds() / STEP_S)
    value = tuple(watts or 0.0 for _ in range(min(steps, held)))
    return SurplusOutlook(ctx.now.timestamp(), first, value, value, value, FLAT_SOURCE, "tick")


def _price_at(ctx: Context) -> Any:
    slots = ctx.snapshot.tariff.slots
    tariffs = ctx.tariffs

    def price(at: datetime) -> float | None:
        for slot in slots:
            if slot.start <= at < slot.end:
                return slot.price
        if tariffs is not None:
            return tariffs.window_at(ctx.local(at))[1]
        return ctx.snapshot.tariff.price

    return price


def _need(ctx: Context) -> tuple[float | None, datetime | None]:
    """(kWh still needed, ready-by) of the charger's plan, or (None, None) without an open one."""
    wanted = ctx.charger.plan
    if wanted is None or wanted.ready_by <= ctx.now:
        return None, None
    needed = wanted.energy_kwh - ctx.delivered_kwh
    if needed <= MET_KWH:
        return None, None
    return needed, wanted.ready_by


def _head(ctx: Context, needed: float | None, ready_by: datetime | None) -> str:
    wanted = ctx.charger.plan
    if needed is None or ready_by is None:
        if wanted is not None and wanted.ready_by > ctx.now:
            return f"plan met ({ctx.delivered_kwh:.1f} of {wanted.energy_kwh:g} kWh)"
        return "no departure plan"
    learned = "" if wanted is None or wanted.learned is None else f" (learned: {wanted.learned})"
    return f"{needed:.1f} kWh by {at_clock(ctx, ready_by)}{learned}"


def _sourced(text: str, plan_json: dict[str, Any], outlook: SurplusOutlook) -> str:
    """The plan's words with whose sun it counts on: none (the current surplus held), the
    site's own history (unsaid), or an online forecast (named, and kept in the inputs)."""
    if outlook.source == FLAT_SOURCE:
        return f"no forecast, following the current surplus: {text}"
    if outlook.source == LEARNED_SOURCE:
        return text
    plan_json["forecast"] = outlook.source
    return f"{text} (sun: {outlook.source.split(',')[0]})"


def propose(policy: SolarPlan, ctx: Context, state: PolicyState, met: str) -> Outcome:
    if not ctx.charger.plugged_in:
        held = proposal(policy, "charging", "hold", "no vehicle plugged in")
        return [held], state.model_copy(update={"extra": {}})
    low, high = levels(policy, ctx)
    per_amp_kw = watts_per_amp(ctx.charger) / 1000
    needed, ready_by = _need(ctx)
    head = _head(ctx, needed, ready_by)
    numbers: dict[str, Any] = {"amps_range": [low, high], "when": met}
    watts = _available(policy, ctx)
    numbers["available_w"] = None if watts is None else round(watts)
    if needed is not None and ready_by is not None:
        left = ready_by - ctx.now
        at_full = timedelta(hours=needed / (high * per_amp_kw))
        numbers["departure"] = {
            "needed_kwh": round(needed, 2),
            "hours_left": round(left / timedelta(hours=1), 2),
            "hours_at_max": round(at_full / timedelta(hours=1), 2),
        }
        if policy.grid == "cheapest" and left - at_full <= _margin(policy):
            late = "" if left >= at_full else " (it can no longer all be delivered in time)"
            why = (
                f"guard: {head}, {span(at_full)} at {high} A and {span(left)} left{late}: "
                "the rest no longer fits with the margin, charging at full power"
            )
            charging = with_inputs(charge(policy, ctx, high, why), numbers)
            return [charging, manual_mode(policy, ctx, "planned charging")], state.model_copy(
                update={"extra": {}}
            )
    if needed is None and _met(ctx):
        charging = with_inputs(_after_met(policy, ctx, head, watts, per_amp_kw), numbers)
        return [charging, manual_mode(policy, ctx, "planned charging")], state.model_copy(
            update={"extra": {}}
        )
    end = ready_by if ready_by is not None else ctx.now + policy.horizon
    outlook = ctx.snapshot.outlook
    if outlook is None or outlook.end_s <= ctx.now.timestamp():
        outlook = _flat(ctx, watts, end)
    now_amps = (ctx.charger.amps or 0) if ctx.charger.charging else 0
    kept = _kept(state, ctx, outlook, watts, now_amps)
    if kept is not None:
        amps, text, plan_json = kept
        extra = state.extra
    else:
        slots = cut(
            ctx.now,
            end,
            outlook=outlook,
            quantile=policy.quantile,
            price_at=_price_at(ctx),
            measured_w=watts,
        )
        # scipy (HiGHS) is imported at the first solve, never by a daemon without the kind.
        from optimizer.planner.problem import PlanInput  # noqa: PLC0415

        data = PlanInput(
            slots=slots,
            low=low,
            high=high,
            step=ctx.limits.step,
            kw_per_amp=per_amp_kw,
            now_amps=now_amps if low <= now_amps <= high else 0,
            need_kwh=needed,
            grid=policy.grid,
            change_cost_kwh=policy.change_cost_kwh,
            restart_cost_kwh=policy.restart_cost_kwh,
            guard_h=(_margin(policy) + GUARD_LAG) / timedelta(hours=1),
            commands_left=_commands_left(policy, ctx, ready_by),
        )
        result = _solved(policy, data)
        zone = ctx.local(ctx.now).tzinfo or UTC
        if not result.ok:
            charging = _unsolved(
                policy,
                ctx,
                head=head,
                message=result.message,
                low=low,
                high=high,
                watts=watts,
                per_amp_kw=per_amp_kw,
            )
            return [with_inputs(charging, numbers), manual_mode(policy, ctx, "planned charging")], (
                state.model_copy(update={"extra": {}})
            )
        amps = result.amps[0]
        plan_json = summary(slots, result, zone, need_kwh=needed, quantile=policy.quantile)
        text = _sourced(expectation(slots, result, zone, need_kwh=needed), plan_json, outlook)
        following = next_change(slots, result, zone)
        if following is not None:
            plan_json["next"] = following
        extra = _keep(
            slots, result.amps, ctx, text=text, plan_json=plan_json, replan=outlook.replan
        )
    numbers["plan"] = plan_json
    charging = _step(policy, ctx, amps, f"{head}: {text}")
    nxt = plan_json.get("next")
    charging = hinted(charging, None if nxt is None else f"plan: {nxt}")
    charging = with_inputs(charging, numbers)
    return [charging, manual_mode(policy, ctx, "planned charging")], state.model_copy(
        update={"extra": extra}
    )


def _solved(policy: SolarPlan, data: PlanInput) -> PlanResult:
    """The plan by the rule's ``method``: the MILP and its grid heuristic, or (opt-in) the
    command-limited dynamic programme (:mod:`optimizer.planner.dp`)."""
    if policy.method == "dp":
        from optimizer.planner import dp  # noqa: PLC0415

        return dp.solve(data)
    from optimizer.planner.problem import solve  # noqa: PLC0415

    return solve(data)


def _commands_left(policy: SolarPlan, ctx: Context, ready_by: datetime | None) -> int | None:
    """What the session has left of ``method: dp``'s command budget (the engine's count since
    plug-in, ``ChargerMemory.session_commands``); None for the MILP, which has none."""
    if policy.method != "dp":
        return None
    from optimizer.planner.dp import commands_left  # noqa: PLC0415

    since = ctx.memory.plugged_in_since or ctx.now
    return commands_left(since, ready_by, ctx.memory.session_commands)


def _met(ctx: Context) -> bool:
    """A departure plan still ahead whose energy has been delivered."""
    wanted = ctx.charger.plan
    return wanted is not None and wanted.ready_by > ctx.now


def _after_met(
    policy: SolarPlan, ctx: Context, head: str, watts: float | None, per_amp_kw: float
) -> Proposal:
    """The plan is met, so the car is as full as the driver asked: no new start (each is
    commands for energy nobody asked for); a charge the sun pays for at least half of goes
    on (the car stops drawing by itself when full), one on the grid stops."""
    if not ctx.charger.charging:
        return proposal(policy, "charging", "hold", f"{head}: not starting again")
    amps = ctx.charger.amps or 0
    if watts is not None and watts >= amps * per_amp_kw * 1000 / 2:
        return proposal(
            policy, "charging", "hold", f"{head}: surplus {kw(watts)} pays for {amps} A, keeping it"
        )
    now = "unknown" if watts is None else kw(watts)
    return proposal(policy, "charging", "stop", f"{head}: surplus {now} does not pay for it: stop")


def _step(policy: SolarPlan, ctx: Context, amps: int, why: str) -> Proposal:
    """The plan's first slot: charge at ``amps``, or stay off (stop when charging)."""
    if amps > 0:
        return charge(policy, ctx, amps, why)
    if ctx.charger.charging:
        return proposal(policy, "charging", "stop", f"{why}: stop for now")
    return proposal(policy, "charging", "hold", f"{why}: waiting")


def _unsolved(
    policy: SolarPlan,
    ctx: Context,
    *,
    head: str,
    message: str,
    low: int,
    high: int,
    watts: float | None,
    per_amp_kw: float,
) -> Proposal:
    """No plan in time: follow the surplus now (the guard still covers the departure)."""
    why = f"{head}: no plan ({message}), following the surplus now"
    if watts is None or watts < low * per_amp_kw * 1000 / 2:
        return _step(policy, ctx, 0, why)
    amps = max(low, min(high, ctx.limits.down(watts / (per_amp_kw * 1000))))
    return charge(policy, ctx, amps, f"{why} ({kw(watts)})")


# --- the kept plan (simulator: plan again only on a material change) ---------------------------


def _keep(
    slots: SlotPlan,
    amps: tuple[int, ...],
    ctx: Context,
    *,
    text: str,
    plan_json: dict[str, Any],
    replan: str,
) -> dict[str, Any]:
    if replan != "change":
        return {}
    wanted = ctx.charger.plan
    return {
        "made_s": ctx.now.timestamp(),
        "starts": [s.timestamp() for s in slots.starts],
        "hours": list(slots.hours),
        "amps": list(amps),
        "low_w": [
            e * 1000 / h if h > 0 else 0.0 for e, h in zip(slots.low_kwh, slots.hours, strict=True)
        ],
        "high_w": [
            e * 1000 / h if h > 0 else 0.0 for e, h in zip(slots.high_kwh, slots.hours, strict=True)
        ],
        "price": list(slots.price),
        "plan": None if wanted is None else [wanted.ready_by.timestamp(), wanted.energy_kwh],
        "text": text,
        "summary": plan_json,
    }


def _kept(
    state: PolicyState,
    ctx: Context,
    outlook: SurplusOutlook,
    watts: float | None,
    now_amps: int,
) -> tuple[int, str, dict[str, Any]] | None:
    """(level now, text, summary) of the kept plan while nothing material changed, else None."""
    kept = state.extra
    if outlook.replan != "change" or not kept or "starts" not in kept:
        return None
    now_s = ctx.now.timestamp()
    if now_s - float(kept["made_s"]) >= REPLAN_AFTER.total_seconds():
        return None
    wanted = ctx.charger.plan
    plan = None if wanted is None else [wanted.ready_by.timestamp(), wanted.energy_kwh]
    if plan != kept["plan"]:
        return None
    starts: list[float] = kept["starts"]
    index = next(
        (i for i in range(len(starts)) if starts[i] <= now_s < starts[i] + kept["hours"][i] * 3600),
        None,
    )
    if index is None or index == 0:
        return None
    amps: list[int] = kept["amps"]
    if now_amps != amps[index - 1]:
        return None  # the charger is not where the plan left it (an override, a full car)
    # the band is of surplus floored at 0 (slots.cut), so is the reading: a night's house
    # load (a negative surplus) is inside a band of 0, not a reason to plan again every tick
    if (
        watts is not None
        and not kept["low_w"][index] - 1 <= max(0.0, watts) <= kept["high_w"][index] + 1
    ):
        return None
    price = ctx.snapshot.tariff.price
    if price is not None and kept["price"][index] is not None and price != kept["price"][index]:
        return None
    return amps[index], str(kept["text"]), dict(kept["summary"])
