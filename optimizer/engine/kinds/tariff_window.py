"""tariff_window: charge in named time-of-use windows, or only as much as a target needs in
the cheapest 15-minute slots before its deadline.

Without a target: inside one of the windows, charge at the policy's level; outside, stop (or,
with ``outside: hold``, propose nothing so that other policies decide).

With a target: the energy still needed (target minus what the car took since plug-in, summed
over session restarts) sets how many 15-minute slots are needed at the policy's level. The
candidates are the slots from now until the next ``by``; those of the policy's windows come
first, then the cheapest, then the earliest. It charges when the current slot is one of them,
or from solar first (``solar_first``) when the surplus pays for at least the charger's minimum;
otherwise it waits and says when it will charge. The plan is made again every tick, so energy
from solar or an extra session shortens it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache

from optimizer.engine.decision import PolicyState, Proposal
from optimizer.engine.kinds.common import (
    Context,
    Outcome,
    at_clock,
    charge,
    clock,
    finite,
    hinted,
    kw,
    manual_mode,
    per_kwh,
    proposal,
    watts_per_amp,
    with_inputs,
)
from optimizer.engine.rules import Target, TariffWindow
from optimizer.tariffs import SLOT, PriceSlot
from optimizer.timespec import parse_clock

SLOT_HOURS = SLOT.total_seconds() / 3600
MAX_RUNS_SHOWN = 3


def propose(policy: TariffWindow, ctx: Context, state: PolicyState, met: str) -> Outcome:
    """Proposals, and in the state why none when it yields to the others (``idle``)."""
    amps = ctx.limits.down(policy.amps or ctx.charger.max_amps)
    if policy.target is None:
        charging, idle = _by_window(policy, ctx, amps)
    else:
        charging, idle = _by_target(policy, policy.target, ctx, amps)
    state = state.updated(idle=idle)
    if charging is None:
        return [], state
    charging = with_inputs(charging, {"amps": amps, "when": met})
    return [charging, manual_mode(policy, ctx, "charging by tariff")], state


Charging = tuple[Proposal | None, str | None]  # (proposal, or why none)


def _by_window(policy: TariffWindow, ctx: Context, amps: int) -> Charging:
    tariff = ctx.snapshot.tariff
    inside = tariff.window is not None and tariff.window in policy.windows
    now = f"now {tariff.window or 'no window'}, {per_kwh(tariff.price)}"
    if not inside and policy.outside == "hold":
        return None, f"outside {','.join(policy.windows)} ({now})"
    if not ctx.charger.plugged_in:
        return proposal(policy, "charging", "hold", "no vehicle plugged in"), None
    if inside:
        charging = charge(policy, ctx, amps, f"in {tariff.window} ({per_kwh(tariff.price)})")
        ends = window_end(ctx, policy.windows)
        hint = None if ends is None else f"stop at {ends} when {tariff.window} ends"
        return hinted(charging, hint), None
    paused = pause(policy, ctx, f"outside {','.join(policy.windows)} ({now})", "not charging")
    opens = window_start(ctx, policy.windows)
    return hinted(paused, None if opens is None else f"charge in {opens}"), None


def window_end(ctx: Context, windows: Sequence[str]) -> str | None:
    """Local ``HH:MM`` at which the windows stop applying, from the prices ahead."""
    ahead = ctx.snapshot.tariff.slots
    end = next((s.start for s in ahead if s.start > ctx.now and s.window not in windows), None)
    end = end or ctx.snapshot.tariff.next_change_at
    return None if end is None else at_clock(ctx, end)


def window_start(ctx: Context, windows: Sequence[str]) -> str | None:
    """``off_peak from 23:00``: the next of the windows to begin, from the prices ahead."""
    ahead = ctx.snapshot.tariff.slots
    slot = next((s for s in ahead if s.start > ctx.now and s.window in windows), None)
    return None if slot is None else f"{slot.window} from {at_clock(ctx, slot.start)}"


def pause(policy: TariffWindow, ctx: Context, why: str, idle: str) -> Proposal:
    if ctx.charger.charging:
        return proposal(policy, "charging", "stop", f"{why}: stop")
    return proposal(policy, "charging", "hold", f"{why}: {idle}")


class _Plan:
    """A short target's plan at this tick, before any words: the energy still needed, the
    slots before the deadline, how many it takes, the ones chosen and the level solar pays
    for. :func:`_by_target` words it; :func:`target_level` only reads the level, which is all
    a replay's reuse key needs (optimizer/simulate/idle.py)."""

    __slots__ = ("chosen", "count", "needed", "now_in", "slots", "solar")

    def __init__(self, policy: TariffWindow, target: Target, ctx: Context, amps: int) -> None:
        self.needed = target.energy_kwh - ctx.delivered_kwh
        per_slot = amps * watts_per_amp(ctx.charger) / 1000 * SLOT_HOURS
        self.slots, self.count, self.chosen, self.now_in = _slot_plan(
            policy, target, ctx, self.needed, per_slot
        )
        self.solar: tuple[float, int] | None = None
        if not self.now_in:
            self.solar = _solar_amps(policy, ctx, amps)

    def level(self, amps: int) -> int | None:
        """The level it charges at now (``amps`` in a chosen slot), None while it waits."""
        if self.now_in:
            return amps
        return None if self.solar is None else self.solar[1]


SlotPlan = tuple[list[PriceSlot], int, list[PriceSlot], bool]  # slots, count, chosen, now in


def _slot_plan(
    policy: TariffWindow, target: Target, ctx: Context, needed: float, per_slot: float
) -> SlotPlan:
    # In now's zone: the slots are in it too, and aware datetimes of one tzinfo compare
    # without an offset lookup each (the scan was a fifth of this policy's cost).
    deadline = next_time(ctx.local(ctx.now), target.by).astimezone(ctx.now.tzinfo)
    slots = ahead_until(ctx.snapshot.tariff.slots, ctx.now, deadline)
    count = math.ceil(needed / per_slot)
    if not slots or count >= len(slots):
        return slots, count, [], True
    chosen = cheapest(slots, count, policy.windows)
    return slots, count, chosen, any(s.start <= ctx.now < s.end for s in chosen)


def ahead_until(slots: Sequence[PriceSlot], now: datetime, deadline: datetime) -> list[PriceSlot]:
    """The slots that end after ``now`` and start before ``deadline``, found by bisection:
    ``TariffNow.slots`` are in time order, their starts and ends both ascending."""
    first = bisect.bisect_right(slots, now, key=_end)
    last = bisect.bisect_left(slots, deadline, lo=first, key=_start)
    return list(slots[first:last])


def _end(slot: PriceSlot) -> datetime:
    return slot.end


def _start(slot: PriceSlot) -> datetime:
    return slot.start


def target_level(policy: TariffWindow, ctx: Context) -> int | None:
    """The level a target still short of its energy charges at now, None while it waits:
    what its proposals command (with the charger's state), without building them or their
    words. The caller has checked that the target is short and its conditions hold."""
    target = policy.target
    if target is None:
        raise ValueError(f"{policy.name} has no target")
    if target.energy_kwh - ctx.delivered_kwh <= 0:
        return None  # reached: it pauses or yields, whichever way its rule says
    amps = ctx.limits.down(policy.amps or ctx.charger.max_amps)
    return _Plan(policy, target, ctx, amps).level(amps)


def target_answer(policy: TariffWindow, ctx: Context) -> tuple[int | None, str | None]:
    """:func:`target_level` and what the target's charging proposal says now (or why it has
    none), its slots planned once: for a logged replay's reuse key, which tells holds apart
    by their words too (optimizer/simulate/idle.py)."""
    target = policy.target
    if target is None:
        raise ValueError(f"{policy.name} has no target")
    amps = ctx.limits.down(policy.amps or ctx.charger.max_amps)
    worked: list[_Plan] = []
    charging, why = _by_target(policy, target, ctx, amps, worked=worked)
    level = worked[0].level(amps) if worked else None
    return level, why if charging is None else charging.reason


def _by_target(
    policy: TariffWindow,
    target: Target,
    ctx: Context,
    amps: int,
    *,
    worked: list[_Plan] | None = None,
) -> Charging:
    """``worked``: given, it receives the slot plan worked out (:func:`target_answer`)."""
    if not ctx.charger.plugged_in:
        return proposal(policy, "charging", "hold", "no vehicle plugged in"), None
    needed = target.energy_kwh - ctx.delivered_kwh
    if needed <= 0:
        why = f"target {target.energy_kwh:g} kWh reached ({ctx.delivered_kwh:.1f} kWh delivered)"
        if policy.outside == "hold":
            return None, why
        return pause(policy, ctx, why, "done"), None
    plan = _Plan(policy, target, ctx, amps)
    if worked is not None:
        worked.append(plan)
    slots, count, chosen = plan.slots, plan.count, plan.chosen
    head = f"{needed:.1f} kWh still needed by {target.by}"
    numbers = {"needed_kwh": round(needed, 2), "slots_needed": count, "deadline": target.by}
    rest = f"charge until {target.by}: {needed:.1f} kWh to go"
    if not slots:
        charging = charge(policy, ctx, amps, f"{head}, no slot prices known")
        return hinted(with_inputs(charging, numbers), rest), None
    if count >= len(slots):
        why = f"{head} takes {count} slots and only {len(slots)} are left"
        return hinted(with_inputs(charge(policy, ctx, amps, why), numbers), rest), None
    cheapest_text = "are the cheapest slots" if count > 1 else "is the cheapest slot"
    chosen_text = runs(chosen, ctx)
    planned = f"{chosen_text} {cheapest_text} ({prices(chosen)})"
    numbers["chosen"] = chosen_text
    top_up = f"top-up {chosen_text}"
    if plan.now_in:
        charging = charge(policy, ctx, amps, f"{head}: {planned}; now")
        return hinted(with_inputs(charging, numbers), top_up), None
    if plan.solar is not None:
        watts, solar_amps = plan.solar
        why = f"{head}: surplus {kw(watts)} covers {solar_amps} A, solar first"
        charging = charge(policy, ctx, solar_amps, why)
        return hinted(with_inputs(charging, numbers), top_up), None
    start = clock(ctx.local(min(s.start for s in chosen)))
    if policy.outside == "hold":
        return None, f"{head}: {planned}; waiting until {start}"
    if ctx.charger.charging:
        wait = proposal(policy, "charging", "stop", f"{head}: {planned}; stop until {start}")
    else:
        wait = proposal(policy, "charging", "hold", f"{head}: {planned}; waiting until {start}")
    return hinted(with_inputs(wait, numbers), top_up), None


def _solar_amps(policy: TariffWindow, ctx: Context, amps: int) -> tuple[float, int] | None:
    """(surplus W, level) when solar pays for at least the charger's minimum, else None."""
    if not policy.solar_first:
        return None
    watts = finite(
        ctx.snapshot.surplus.available_w(count_battery_charge=True, count_battery_discharge=False)
    )
    wpa = watts_per_amp(ctx.charger)
    if watts is None or watts < ctx.limits.low * wpa:
        return None
    return watts, min(amps, ctx.limits.down(math.floor(watts / wpa)))


def next_time(local: datetime, hhmm: str) -> datetime:
    """The next local ``HH:MM`` strictly after ``local``."""
    minutes = _minute_of_day(hhmm)
    at = local.replace(hour=minutes // 60, minute=minutes % 60, second=0, microsecond=0)
    return at if at > local else at + timedelta(days=1)


@lru_cache(maxsize=64)
def _minute_of_day(hhmm: str) -> int:
    """``HH:MM`` in minutes after midnight, 24:00 as 0: parsed once per target's ``by``, not
    at every tick a target plans (a replay plans thousands of ticks of the same few)."""
    return parse_clock(hhmm) % (24 * 60)


def cheapest(slots: Sequence[PriceSlot], count: int, windows: Sequence[str]) -> list[PriceSlot]:
    """``count`` slots: the policy's windows first, then cheapest, then earliest."""

    def rank(slot: PriceSlot) -> tuple[bool, bool, float, datetime]:
        price = slot.price
        return (slot.window not in windows, price is None, price or 0.0, slot.start)

    return sorted(sorted(slots, key=rank)[:count], key=lambda s: s.start)


def runs(slots: Sequence[PriceSlot], ctx: Context) -> str:
    """``02:00-05:15, 06:00-06:30``: contiguous slots merged, in local time."""
    merged: list[tuple[datetime, datetime]] = []
    for slot in slots:
        if merged and merged[-1][1] == slot.start:
            merged[-1] = (merged[-1][0], slot.end)
        else:
            merged.append((slot.start, slot.end))
    shown = [f"{clock(ctx.local(a))}-{clock(ctx.local(b))}" for a, b in merged[:MAX_RUNS_SHOWN]]
    more = len(merged) - MAX_RUNS_SHOWN
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def prices(slots: Sequence[PriceSlot]) -> str:
    known = sorted({s.price for s in slots if s.price is not None})
    if not known:
        return per_kwh(None)
    if len(known) == 1:
        return per_kwh(known[0])
    return f"{known[0]:g}-{known[-1]:g}/kWh"
