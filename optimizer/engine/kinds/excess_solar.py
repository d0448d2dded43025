"""excess_solar: follow the solar surplus with the charger's amps (evcc's PV mode, tuned for a
cloud charger).

Like evcc: a start needs the surplus at or above the start threshold for the start delay, a
stop needs it below the stop threshold for the stop delay, and sessions and pauses last at
least the minimum on and off times. Differences that matter on a slow cloud charger:

- The surplus excludes the EV's own draw, so the charger's lagging status never feeds back
  into the level it is given (no oscillation while a report is up to 5 minutes old).
- Every MANUAL level change restarts the session (about 30 s without charging), so small
  changes are ignored (deadband) and changes are capped per hour.
- During a short dip below the stop threshold the level is kept as it is: lowering it to the
  minimum would cost a restart now and another when the cloud has passed.

The ``min_pv`` variant never stops while a vehicle is plugged in and charges at least the
minimum, with solar on top.

With a departure plan (the driver's "ready by", ``departure: meet``) the policy still waits
for the sun, but no longer risks an unfinished car: while the plan needs energy, any surplus
above ``departure_surplus_w`` charges at no less than the minimum (the grid part is energy the
plan needs before departure anyway, so every solar watt in it is a grid watt not bought later),
and from the last moment at which ``max_amps`` can still deliver the rest it charges at
``max_amps`` whatever the sun does (evcc's "late start" plan, without its price search: the
cheap-window policies handle price).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

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
    quoted,
    span,
    watts_per_amp,
    with_inputs,
)
from optimizer.engine.rules import ExcessSolar
from optimizer.engine.snapshot import Surplus
from optimizer.limits import Limits

LATEST_START_SLACK = timedelta(minutes=16)
"""Full power starts once the time left is within this of what the rest needs at max_amps:
more than a 15-minute bucket (the simulator's tick) plus a session restart, so that one tick
late is never too late."""


@dataclass(frozen=True)
class SurplusPlan:
    """The policy's numbers for this charger: levels in A, thresholds in W. Public: the
    replay's idle key (optimizer/simulate/idle.py) asks the same plan the policy acts on."""

    low: int
    high: int
    start_w: float
    stop_w: float
    watts_per_amp: float

    @classmethod
    def of(cls, policy: ExcessSolar, ctx: Context) -> SurplusPlan:
        """The plan, worked out once per policy and charger limits (asked several times a
        tick, by the policy, the site allocation and the replay's idle check)."""
        charger = ctx.charger
        key = (id(policy), ctx.limits, charger.min_amps, charger.max_amps, watts_per_amp(charger))
        found = _PLANS.get(key)
        if found is not None and found[0] is policy:
            return found[1]
        plan = cls._of(policy, ctx)
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.clear()
        _PLANS[key] = (policy, plan)  # the policy kept alive, so its id is not reused
        return plan

    @classmethod
    def _of(cls, policy: ExcessSolar, ctx: Context) -> SurplusPlan:
        limits, charger = ctx.limits, ctx.charger
        low = lowest_level(policy, ctx)
        high = max(low, limits.down(policy.max_amps or charger.max_amps))
        per_amp = watts_per_amp(charger)
        minimum_w = low * per_amp
        start_w = minimum_w if policy.start_threshold_w is None else policy.start_threshold_w
        stop_w = minimum_w / 2 if policy.stop_threshold_w is None else policy.stop_threshold_w
        return cls(low, high, start_w, min(stop_w, start_w), per_amp)

    def level(self, available_w: float, ctx: Context, *, whole_surplus: bool = False) -> int:
        """Whole amps the surplus pays for, within the policy's and the charger's limits.

        ``whole_surplus``: the next level up instead, so that no surplus is exported (for a
        departure plan, whose grid share is bought anyway).
        """
        if available_w <= 0:
            return self.low
        amps = available_w / self.watts_per_amp
        if whole_surplus:
            wanted = ctx.limits.up(math.ceil(amps))
        else:
            wanted = ctx.limits.down(math.floor(amps))
        return min(self.high, max(self.low, wanted))


_PLANS: dict[tuple[int, Limits, int, int, float], tuple[ExcessSolar, SurplusPlan]] = {}
_PLANS_MAX = 256


def lowest_level(policy: ExcessSolar, ctx: Context) -> int:
    """The policy's lowest level on this charger: below it the policy stops rather than
    charges, so the site's allocation admits or floors the charger at this level, not at the
    charger's own minimum."""
    return ctx.limits.up(policy.min_amps or ctx.charger.min_amps)


def available(policy: ExcessSolar, ctx: Context) -> float | None:
    """Surplus this policy may use (W): as it counts the battery, minus the house reserve."""
    return available_of(policy, ctx.snapshot.surplus)


def available_of(policy: ExcessSolar, surplus: Surplus) -> float | None:
    """:func:`available` of a surplus alone (a replay's tick with no car reads no more)."""
    watts = finite(
        surplus.available_w(
            count_battery_charge=policy.count_battery_charge,
            count_battery_discharge=policy.count_battery_discharge,
        )
    )
    return None if watts is None else watts - policy.reserve_w


def timers(
    state: PolicyState, watts: float | None, plan: SurplusPlan, now: datetime
) -> PolicyState:
    """Since when the surplus is above the start / below the stop threshold.

    An unknown surplus restarts the start timer (a start must be proven on data) and leaves
    the stop timer as it was.
    """
    if watts is None:
        return state.updated(above_since=None)
    above = (state.above_since or now) if watts >= plan.start_w else None
    below = (state.below_since or now) if watts < plan.stop_w else None
    return state.updated(above_since=above, below_since=below)


@dataclass(frozen=True)
class _Departure:
    """What the charger's departure plan still asks for at this tick."""

    needed_kwh: float
    left: timedelta  # until ready_by
    at_full: timedelta  # what the rest takes at the policy's highest level
    ready_by: str  # local HH:MM, for reasons
    learned: str | None = None  # a learned plan's origin ("weekdays, 34 sessions")
    energy_kwh: float = 0.0  # the whole plan's energy

    @property
    def head(self) -> str:
        """How reasons name the plan: a learned one says so and what it was learned from."""
        if self.learned is None:
            return f"ready by {self.ready_by}"
        return (
            f"learned plan: ready by {self.ready_by} with {self.energy_kwh:.0f} kWh "
            f"({self.learned})"
        )

    @property
    def hint(self) -> str:
        return f"{self.head}: {self.needed_kwh:.1f} kWh to go"

    def to_json(self) -> dict[str, Any]:
        return {
            "needed_kwh": round(self.needed_kwh, 2),
            "ready_by": self.ready_by,
            "hours_left": round(self.left / timedelta(hours=1), 2),
            "hours_at_max": round(self.at_full / timedelta(hours=1), 2),
        }


def departure(policy: ExcessSolar, ctx: Context, plan: SurplusPlan) -> _Departure | None:
    """The plan's open part, or None when there is no plan, it is met, or its time is past."""
    found, wanted = open_part(policy, ctx, plan), ctx.charger.plan
    if found is None or wanted is None:
        return None
    needed, left, at_full = found
    return _Departure(
        needed_kwh=needed,
        left=left,
        at_full=at_full,
        ready_by=at_clock(ctx, wanted.ready_by),
        learned=wanted.learned,
        energy_kwh=wanted.energy_kwh,
    )


def open_part(
    policy: ExcessSolar, ctx: Context, plan: SurplusPlan
) -> tuple[float, timedelta, timedelta] | None:
    """:func:`departure`'s figures alone (the energy still needed, the time left and what
    the rest takes at the highest level), without its clock in words: a replay's reuse key
    asks at every tick with a plan (optimizer/simulate/idle.py)."""
    wanted = ctx.charger.plan
    if policy.departure == "ignore" or wanted is None or not ctx.charger.plugged_in:
        return None
    needed = wanted.energy_kwh - ctx.delivered_kwh
    left = wanted.ready_by - ctx.now
    if needed <= 0.01 or left <= timedelta(0):
        return None
    full_kw = plan.high * plan.watts_per_amp / 1000
    return needed, left, timedelta(hours=needed / full_kw)


def _for_departure(
    policy: ExcessSolar, ctx: Context, plan: SurplusPlan, watts: float | None, due: _Departure
) -> Proposal | None:
    """Charging the plan asks for, or None to let the surplus rules decide."""
    head = f"{due.head}: {due.needed_kwh:.1f} kWh still needed"
    if due.left - due.at_full <= LATEST_START_SLACK:
        late = "" if due.left >= due.at_full else " (it can no longer all be delivered in time)"
        why = (
            f"{head}, {span(due.at_full)} at {plan.high} A and {span(due.left)} left{late}: "
            "last moment to charge at full power"
        )
        return hinted(charge(policy, ctx, plan.high, why), due.hint)
    if watts is None:
        return None
    watts += policy.reserve_w  # the grid is used anyway: the reserve's import is planned energy
    if watts < policy.departure_surplus_w:
        return None
    if ctx.charger.charging:
        following = _follow(policy, ctx, plan, watts, head=f"{head}; ", whole_surplus=True)
        return hinted(following, due.hint)
    stopped = ctx.memory.stopped_at
    if stopped is not None and ctx.now - stopped < policy.min_off_time:
        return None
    amps = plan.level(watts, ctx, whole_surplus=True)
    why = (
        f"{head}: surplus {kw(watts)} >= {kw(policy.departure_surplus_w)}, start at {amps} A "
        "(any grid part is needed before departure anyway)"
    )
    started = proposal(policy, "charging", "start", why, {"amps": amps}, target_amps=amps)
    return hinted(started, due.hint)


def plan_ended(ctx: Context) -> str | None:
    """Why a departure plan that drove the charging no longer does, in words."""
    wanted = ctx.charger.plan
    if not ctx.charger.plugged_in:
        return None  # the unplugged hold says so itself
    if wanted is None:
        return "the departure plan was cleared"
    ready_by = at_clock(ctx, wanted.ready_by)
    needed = wanted.energy_kwh - ctx.delivered_kwh
    if needed <= 0.01:
        return f"plan met: {ctx.delivered_kwh:.1f} of {wanted.energy_kwh:g} kWh by {ready_by}"
    return f"the plan's time {ready_by} has passed with {needed:.1f} kWh still needed"


def propose(policy: ExcessSolar, ctx: Context, state: PolicyState, met: str) -> Outcome:
    plan = SurplusPlan.of(policy, ctx)
    watts = available(policy, ctx)
    state = timers(state, watts, plan, ctx.now)
    due = departure(policy, ctx, plan)
    charging = None
    if due is not None:
        charging = _for_departure(policy, ctx, plan, watts, due)
    basis = None if charging is None else "departure"
    if charging is None:
        charging = (_while_charging if ctx.charger.charging else _while_idle)(
            policy, ctx, state, plan, watts
        )
        if due is not None:
            charging = hinted(charging, due.hint)
            if due.learned is not None:  # a plan nobody set must say where it comes from
                charging = replace(charging, reason=f"{charging.reason}; {due.head}")
        ended = plan_ended(ctx) if state.basis == "departure" else None
        if ended is not None:
            charging = replace(charging, reason=f"{ended}; {charging.reason}")
    state = state.updated(basis=basis)
    numbers: dict[str, Any] = {
        "available_w": None if watts is None else round(watts),
        "reserve_w": policy.reserve_w,
        "start_threshold_w": round(plan.start_w),
        "stop_threshold_w": round(plan.stop_w),
        "amps_range": [plan.low, plan.high],
        "when": met,
    }
    if due is not None:
        numbers["departure"] = due.to_json()
    charging = with_inputs(charging, numbers)
    return [charging, manual_mode(policy, ctx, "following the surplus")], state


def _start_hint(policy: ExcessSolar, plan: SurplusPlan, watts: float | None) -> str:
    now = "unknown" if watts is None else kw(watts)
    return f"start when surplus >= {kw(plan.start_w)} for {span(policy.start_delay)} (now {now})"


def _stop_hint(policy: ExcessSolar, plan: SurplusPlan, watts: float | None) -> str:
    if policy.variant == "min_pv":
        return f"charge at least {plan.low} A while plugged in, more with the surplus"
    now = "unknown" if watts is None else kw(watts)
    return f"stop when surplus < {kw(plan.stop_w)} for {span(policy.stop_delay)} (now {now})"


def _while_idle(
    policy: ExcessSolar, ctx: Context, state: PolicyState, plan: SurplusPlan, watts: float | None
) -> Proposal:
    if not ctx.charger.plugged_in:
        return proposal(policy, "charging", "hold", "no vehicle plugged in")
    waiting = _start_hint(policy, plan, watts)
    if watts is None:
        return hinted(
            proposal(policy, "charging", "hold", "surplus unknown: not starting"), waiting
        )
    amps = plan.level(watts, ctx)
    if policy.variant == "min_pv":
        started = proposal(
            policy,
            "charging",
            "start",
            f"min+solar: vehicle plugged in, surplus {kw(watts)}: start at {amps} A",
            {"amps": amps},
            target_amps=amps,
        )
        return hinted(started, _stop_hint(policy, plan, watts))
    if watts < plan.start_w:
        held = proposal(
            policy,
            "charging",
            "hold",
            f"surplus {kw(watts)} below start threshold {kw(plan.start_w)}: not starting",
        )
        return hinted(held, waiting)
    above_for = ctx.now - (state.above_since or ctx.now)
    if above_for < policy.start_delay:
        due = at_clock(ctx, ctx.now - above_for + policy.start_delay)
        held = proposal(
            policy,
            "charging",
            "hold",
            f"surplus {kw(watts)} >= start threshold {kw(plan.start_w)} for "
            f"{span(quoted(state.above_since, ctx, policy.name))} of the "
            f"{span(policy.start_delay)} start delay: waiting",
        )
        return hinted(held, f"start at {due} if surplus stays >= {kw(plan.start_w)}")
    stopped = ctx.memory.stopped_at
    if stopped is not None and ctx.now - stopped < policy.min_off_time:
        due = at_clock(ctx, stopped + policy.min_off_time)
        held = proposal(
            policy,
            "charging",
            "hold",
            f"surplus {kw(watts)} >= start threshold {kw(plan.start_w)}, but stopped only "
            f"{span(ctx.now - stopped)} ago (min off time {span(policy.min_off_time)}): waiting",
        )
        return hinted(held, f"start at {due} (min off time) if surplus stays >= {kw(plan.start_w)}")
    lasting = _lasting(state.above_since, ctx, policy, policy.start_delay)
    above = f">= start threshold {kw(plan.start_w)}"
    if lasting is None:
        above = f"{above}{_longer(policy.start_delay, 'start')}"
    started = proposal(
        policy,
        "charging",
        "start",
        f"surplus {kw(watts)}{lasting or ''} {above}: start at {amps} A",
        {"amps": amps},
        target_amps=amps,
    )
    return hinted(started, _stop_hint(policy, plan, watts))


def _lasting(
    since: datetime | None,
    ctx: Context,
    policy: ExcessSolar,
    delay: timedelta,
    *,
    began: datetime | None = None,
) -> str | None:
    """`` for 5 min``, as far as the time is relevant; None when a timer that ran while
    another policy was in control (or before the plug-in) has passed its delay: its length
    is then not quoted, only that it is ``for longer than the 5 min stop delay``."""
    real = ctx.now - (since or ctx.now)
    shown = quoted(since, ctx, policy.name, began=began)
    if shown < real and real >= delay:
        return None
    return f" for {span(shown)}"


def _longer(delay: timedelta, word: str) -> str:
    return f" for longer than the {span(delay)} {word} delay"


def _while_charging(
    policy: ExcessSolar, ctx: Context, state: PolicyState, plan: SurplusPlan, watts: float | None
) -> Proposal:
    now_amps = ctx.charger.amps
    keep = f"keeping {now_amps} A" if now_amps is not None else "keeping the level"
    if watts is None:
        held = proposal(policy, "charging", "hold", f"surplus unknown: {keep}")
        return hinted(held, _stop_hint(policy, plan, watts))
    if policy.variant == "pv" and watts < plan.stop_w:
        return _shortfall(policy, ctx, state, plan, watts, keep=keep)
    return hinted(_follow(policy, ctx, plan, watts), _stop_hint(policy, plan, watts))


def _shortfall(
    policy: ExcessSolar,
    ctx: Context,
    state: PolicyState,
    plan: SurplusPlan,
    watts: float,
    *,
    keep: str,
) -> Proposal:
    below_for = ctx.now - (state.below_since or ctx.now)
    # A stop timer is about the running charge: no time from before it began is quoted.
    lasting = _lasting(
        state.below_since, ctx, policy, policy.stop_delay, began=ctx.memory.started_at
    )
    lasting = lasting or _longer(policy.stop_delay, "stop")
    what = f"surplus {kw(watts)} below stop threshold {kw(plan.stop_w)}{lasting}"
    if below_for < policy.stop_delay:
        due = at_clock(ctx, ctx.now - below_for + policy.stop_delay)
        held = proposal(
            policy,
            "charging",
            "hold",
            f"{what} of the {span(policy.stop_delay)} stop delay: {keep}",
        )
        return hinted(held, f"stop at {due} if surplus stays < {kw(plan.stop_w)}")
    started, plugged = ctx.memory.started_at, ctx.memory.plugged_in_since
    if started is not None and ctx.now - started < policy.min_on_time:
        due = at_clock(ctx, started + policy.min_on_time)
        held = proposal(
            policy,
            "charging",
            "hold",
            f"{what}, but on for only {span(ctx.now - max(started, plugged or started))} "
            f"(min on time {span(policy.min_on_time)}): {keep}",
        )
        return hinted(held, f"stop at {due} (min on time) if surplus stays < {kw(plan.stop_w)}")
    stopped = proposal(policy, "charging", "stop", f"{what}: stop")
    return hinted(stopped, _start_hint(policy, plan, watts))


def _follow(
    policy: ExcessSolar,
    ctx: Context,
    plan: SurplusPlan,
    watts: float,
    *,
    head: str = "",
    whole_surplus: bool = False,
) -> Proposal:
    """The level the surplus pays for, unless the change is too small or too frequent."""
    amps = plan.level(watts, ctx, whole_surplus=whole_surplus)
    now_amps = ctx.charger.amps
    head = f"{head}surplus {kw(watts)} -> {amps} A"
    if now_amps == amps:
        return proposal(policy, "charging", "hold", f"{head}: already at {amps} A")
    out_of_range = now_amps is None or not plan.low <= now_amps <= plan.high
    if not out_of_range and now_amps is not None:
        if abs(amps - now_amps) < max(policy.deadband_amps, 1):
            return proposal(
                policy,
                "charging",
                "hold",
                f"{head}, within the {policy.deadband_amps} A deadband of {now_amps} A: "
                f"keeping {now_amps} A",
            )
        changes = ctx.level_changes_last_hour()
        if changes >= policy.max_changes_per_hour:
            return proposal(
                policy,
                "charging",
                "hold",
                f"{head}, but {changes} level changes in the last hour reach the cap of "
                f"{policy.max_changes_per_hour}: keeping {now_amps} A",
            )
    now_text = "unknown" if now_amps is None else f"{now_amps} A"
    return proposal(
        policy,
        "charging",
        "set_amps",
        f"{head} (now {now_text})",
        {"amps": amps},
        target_amps=amps,
    )
