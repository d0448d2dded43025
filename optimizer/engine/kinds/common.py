"""What every policy kind sees, and the small helpers they share.

Kinds are pure: ``propose(policy, ctx, state, met)`` reads a :class:`Context` and the policy's
own timers and returns proposals plus the new timers. Numbers in reasons are formatted here so
every decision reads the same way ("2.9 kW", "6 min", "0.18/kWh", "10:02").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from optimizer.engine.decision import (
    Action,
    ChargerMemory,
    PolicyState,
    Proposal,
    TargetName,
    evolve,
)
from optimizer.engine.frozen import maker
from optimizer.engine.rules import PolicyBase
from optimizer.engine.snapshot import ChargerView, Snapshot
from optimizer.enlighten.models import ChargeMode
from optimizer.limits import Limits
from optimizer.tariffs import Tariffs

_new_proposal = maker(Proposal)

Outcome = tuple[list[Proposal], PolicyState]
NOMINAL_VOLTS = 230.0


def finite(value: float | None) -> float | None:
    """NaN and infinities from a bad report are no data, not numbers to act on."""
    return value if value is not None and math.isfinite(value) else None


def watts_per_amp(charger: ChargerView) -> float:
    """Volts x phases; a nominal 230 V per phase when the report has no usable voltage."""
    watts = charger.watts_per_amp
    return watts if math.isfinite(watts) and watts > 0 else NOMINAL_VOLTS * max(1, charger.phases)


@dataclass(frozen=True)
class Context:
    """One charger at one tick, as every policy kind sees it.

    ``charger`` is the *believed* view: within the settle time after a command the engine trusts
    what it commanded over the cloud's lagging status, so it never re-sends a command that the
    charger has simply not reported yet.
    """

    snapshot: Snapshot
    charger: ChargerView
    memory: ChargerMemory
    limits: Limits
    delivered_kwh: float  # energy into the car since plug-in, summed over session restarts
    tariffs: Tariffs | None = None  # the config's windows (schedule_sync mirrors them)
    words: bool = True  # False: hints that only a reader sees are not worked out (settings)

    @property
    def now(self) -> datetime:
        return self.snapshot.now

    def local(self, when: datetime) -> datetime:
        if when is self.snapshot.now:  # the snapshot's own, converted once (most asks)
            return self.snapshot.local
        return when.astimezone(ZoneInfo(self.snapshot.timezone))

    def level_changes_last_hour(self) -> int:
        since = self.now - timedelta(hours=1)
        return sum(1 for at in self.memory.level_changes if at > since)


def proposal(
    policy: PolicyBase,
    target: TargetName,
    action: Action,
    reason: str,
    params: dict[str, Any] | None = None,
    **inputs: Any,
) -> Proposal:
    return _new_proposal(  # Proposal(...) without its frozen __init__ (several per evaluation)
        policy=policy.name,
        priority=policy.priority,
        target=target,
        action=action,
        params=params or {},
        reason=reason,
        inputs=inputs,
        hint=None,
    )


def hinted(found: Proposal, hint: str | None) -> Proposal:
    """The proposal with what its policy waits for or plans next (``Proposal.hint``)."""
    return evolve(found, hint=hint)


def relevant_since(ctx: Context, policy: str, target: TargetName = "charging") -> datetime:
    """The earliest moment a timer of ``policy`` about ``target`` may be quoted from.

    A policy's timers keep running while it is overruled (so it can act at once when it takes
    over), but while overruled they explain nothing: quoted, they would blame "surplus below
    the stop threshold for 5595 min" for a stop that an overnight window's end caused. So a
    quoted duration starts no earlier than when the policy took control of the target (now,
    if it is only taking it) and never before the vehicle was plugged in.
    """
    control = ctx.memory.control.get(target)
    since = control.since if control is not None and control.policy == policy else ctx.now
    plugged = ctx.memory.plugged_in_since
    return since if plugged is None else max(since, plugged)


def quoted(
    since: datetime | None, ctx: Context, policy: str, *, began: datetime | None = None
) -> timedelta:
    """How long since ``since``, as a reason may say it (see :func:`relevant_since`); with
    ``began`` (when the charge began, for a timer about a running charge) no earlier than that
    either."""
    start = max(since or ctx.now, relevant_since(ctx, policy))
    if began is not None:
        start = max(start, began)
    return max(timedelta(0), ctx.now - start)


def charge(policy: PolicyBase, ctx: Context, amps: int, why: str) -> Proposal:
    """Start, change the level, or hold when it already charges at ``amps``."""
    charger = ctx.charger
    if not charger.charging:
        return proposal(policy, "charging", "start", f"{why}: charge at {amps} A", {"amps": amps})
    if charger.amps != amps:
        now = "unknown" if charger.amps is None else f"{charger.amps} A"
        return proposal(
            policy,
            "charging",
            "set_amps",
            f"{why}: charge at {amps} A (now {now})",
            {"amps": amps},
        )
    return proposal(policy, "charging", "hold", f"{why}: charging at {amps} A")


def until(policy: PolicyBase, ctx: Context) -> str | None:
    """``until 06:00``: when the policy's ``when`` stops holding, if its time or tariff
    window says so (other conditions have no known end); None when nothing is known."""
    when, local = policy.when, ctx.snapshot.local
    if when.time is not None:
        current = next((r for r in when.time if r.contains_time(local)), None)
        if current is not None:
            return f"until {str(current).split('-', 1)[1]}"
    if when.tariff is not None:
        ahead = ctx.snapshot.tariff.slots
        end = next((s for s in ahead if s.start > ctx.now and s.window not in when.tariff), None)
        if end is not None:
            return f"until {at_clock(ctx, end.start)} when {ctx.snapshot.tariff.window} ends"
    return None


def at_clock(ctx: Context, when: datetime) -> str:
    """``07:00``: ``when`` in the site's local time."""
    return clock(ctx.local(when))


def with_inputs(found: Proposal, numbers: dict[str, Any]) -> Proposal:
    """The proposal with the policy's numbers added to its inputs (its own ones win)."""
    return evolve(found, inputs={**numbers, **found.inputs})


def set_mode(policy: PolicyBase, ctx: Context, mode: ChargeMode, why: str) -> Proposal:
    """Switch to ``mode``, or claim the mode target with a hold when it is already set (so a
    lower-priority policy cannot switch it away). Next: how long it keeps the mode, if known."""
    short = mode.value.removesuffix("_CHARGING")
    current = ctx.charger.mode
    ends = until(policy, ctx) if ctx.words else None
    hint = None if ends is None else f"{short} mode {ends}"
    if current is mode:
        return hinted(proposal(policy, "mode", "hold", f"{why}: already in {short} mode"), hint)
    now = current.value.removesuffix("_CHARGING") if current else "unknown"
    switch = proposal(
        policy, "mode", "set_mode", f"{why}: switch to {short} (now {now})", {"mode": mode.value}
    )
    return hinted(switch, hint)


def manual_mode(policy: PolicyBase, ctx: Context, why: str) -> Proposal:
    """Amps only mean something in MANUAL mode; policies that set them claim the mode too."""
    return set_mode(policy, ctx, ChargeMode.MANUAL_CHARGING, f"{why} needs MANUAL mode")


def set_battery(policy: PolicyBase, ctx: Context, enabled: bool, why: str) -> Proposal:
    """Green mode's "use battery for EV charging", or a hold when it already is as wanted."""
    word = "on" if enabled else "off"
    if ctx.charger.supports_use_battery is False:
        return proposal(policy, "battery", "hold", f"{why}, but the charger has no battery setting")
    ends = until(policy, ctx) if ctx.words else None
    hint = None if ends is None else f"battery support {word} {ends}"
    if ctx.charger.use_battery is enabled:
        held = proposal(policy, "battery", "hold", f"{why}: battery support already {word}")
        return hinted(held, hint)
    switch = proposal(
        policy, "battery", "set_battery", f"{why}: battery support {word}", {"enabled": enabled}
    )
    return hinted(switch, hint)


def kw(watts: float) -> str:
    return f"{watts / 1000:.1f} kW"


def span(duration: timedelta) -> str:
    """``6 min`` (whole minutes, rounded down), or seconds under a minute."""
    seconds = max(0, int(duration.total_seconds()))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min"


def clock(when: datetime) -> str:
    return f"{when.hour:02d}:{when.minute:02d}"  # strftime("%H:%M") at a fifth of the cost


def per_kwh(price: float | None) -> str:
    return "unknown price" if price is None else f"{price:g}/kWh"
