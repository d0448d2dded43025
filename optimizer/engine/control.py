"""Which policy is in control of each target, since when, and why control passed.

Every tick the final decision for a target names its policy; that policy is *in control* of
the target. Memory keeps it per charger and target (``ChargerMemory.control``) with the time it
took control, so that when another policy takes over because the one in control stopped
proposing, the new decision's reason first says why ("overnight-top-up's window ended at 07:00
(23:00-07:00); solar-surplus: ..."), rather than a timer of a policy that was overruled all
along. Each decision is logged with ``in_control``, ``in_control_since`` and ``next`` (what the
policy in control waits for or plans next) in its inputs, for ``evopt status`` and ``evopt why``.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from optimizer.engine.conditions import check
from optimizer.engine.decision import (
    OVERRIDE,
    SAFETY,
    ChargerMemory,
    Control,
    Decision,
    Memory,
    Proposal,
    TargetName,
    evolve,
)
from optimizer.engine.kinds.common import Context, at_clock
from optimizer.engine.rules import PolicyBase, TariffWindow
from optimizer.timespec import TimeRange

__all__ = ["NEXT", "hand_over", "let_go", "next_hints"]

NEXT = "next"
Decisions = dict[TargetName, Decision]


def next_hints(
    arbitrated: Mapping[TargetName, Decision],
    final: Decisions,
    known: ChargerMemory,
    ctx: Context,
) -> Decisions:
    """Each decision with ``inputs["next"]``: the hint arbitration picked while its decision
    stands; the override's end under a user override; none where safety turned an action into
    a hold (what the policy waits for is then not what happens next)."""
    out: Decisions = {}
    for target, decision in final.items():
        hint = decision.inputs.get(NEXT)
        before = arbitrated.get(target)
        if decision.policy == OVERRIDE:
            override = known.overrides.get(target)
            hint = None if override is None else f"override ends {at_clock(ctx, override.until)}"
        elif decision.policy == SAFETY or _made_a_hold(before, decision):
            hint = None
        out[target] = evolve(decision, inputs={**decision.inputs, NEXT: hint})
    return out


def _made_a_hold(before: Decision | None, decision: Decision) -> bool:
    return before is not None and before.action != "hold" and decision.action == "hold"


def hand_over(
    final: Decisions,
    *,
    known: ChargerMemory,
    ctx: Context,
    proposals: Sequence[Proposal],
    policies: Sequence[PolicyBase],
    memory: Memory,
) -> tuple[Decisions, dict[str, Control]]:
    """The decisions with ``in_control``/``in_control_since`` (and, where control passed
    because the policy in control let go, why first in the reason), and the new control."""
    now = ctx.now
    proposed = {(p.policy, p.target) for p in proposals}
    control: dict[str, Control] = {}
    out: Decisions = {}
    for target, decided in final.items():
        decision = decided
        before = known.control.get(target)
        since = now
        if before is not None and before.policy == decision.policy:
            since = before.since
        elif ctx.words and before is not None and (before.policy, target) not in proposed:
            cause = let_go(before, ctx, policies, known, memory)
            if cause:
                decision = evolve(decision, reason=f"{cause}; {decision.policy}: {decision.reason}")
        override = known.overrides.get(target)
        # Built from values the engine already holds in their types: no validation needed
        # (pydantic's checks were a twentieth of a tick).
        control[target] = Control.model_construct(
            policy=decision.policy,
            since=since,
            seen_at=now,
            window=ctx.snapshot.tariff.window,
            until=override.until if decision.policy == OVERRIDE and override else None,
        )
        if not ctx.words:
            out[target] = decision
            continue
        inputs = {
            **decision.inputs,
            "in_control": decision.policy,
            "in_control_since": since.isoformat(),
        }
        out[target] = evolve(decision, inputs=inputs)
    return out, control


def let_go(
    before: Control,
    ctx: Context,
    policies: Sequence[PolicyBase],
    known: ChargerMemory,
    memory: Memory,
) -> str | None:
    """Why the policy that was in control proposes nothing for its target now, in words."""
    name = before.policy
    if name == OVERRIDE:
        if before.until is not None and ctx.now >= before.until:
            return f"your override ended at {at_clock(ctx, before.until)}"
        if not ctx.charger.plugged_in or known.plugged_in_since is None:
            return "your override ended when the vehicle was unplugged"
        return "your override ended"
    if name == SAFETY:
        return "the charger is online and not faulted again"
    policy = next((p for p in policies if p.name == name), None)
    if policy is None:
        return f"{name} is no longer in the rules"
    if not policy.enabled:
        return f"{name} is disabled"
    if policy.chargers is not None and ctx.charger.sn not in policy.chargers:
        return f"{name} does not apply to this charger"
    ended = _window_ended(policy, before, ctx)
    if ended is not None:
        return ended
    held, text = check(policy.when, ctx.snapshot, ctx.charger)
    if not held:
        timed = _time_ended(policy, before, ctx)
        return timed or f"{name} no longer applies ({text})"
    idle = memory.policy(name, ctx.charger.sn).idle
    return f"{name}: {idle}" if idle else f"{name} proposes nothing for it now"


def _window_ended(policy: PolicyBase, before: Control, ctx: Context) -> str | None:
    """``cheap_night's window ended at 07:00 (00:00-07:00)`` when the tariff window the policy
    charged in (by its ``when`` or its own windows) is over."""
    window = before.window
    if window is None or ctx.snapshot.tariff.window == window:
        return None
    windows = set(policy.when.tariff or ())
    if isinstance(policy, TariffWindow):
        windows |= set(policy.windows)
    if window not in windows:
        return None
    tariffs = ctx.tariffs
    spec = tariffs.windows.get(window) if tariffs is not None else None
    seen = before.seen_at
    if spec is None or seen is None:
        return f"{policy.name}'s window {window} ended"
    found = _range_at(spec.times, ctx, seen)
    if found is None:
        return f"{policy.name}'s window {window} ended"
    return f"{policy.name}'s window ended at {_end(found)} ({found})"


def _time_ended(policy: PolicyBase, before: Control, ctx: Context) -> str | None:
    """``evening's time ended at 22:00 (18:00-22:00)`` for a ``when: time`` that stopped."""
    ranges = policy.when.time
    seen = before.seen_at
    if ranges is None or seen is None or any(r.contains_time(ctx.snapshot.local) for r in ranges):
        return None
    found = _range_at(ranges, ctx, seen)
    if found is None:
        return None
    return f"{policy.name}'s time ended at {_end(found)} ({found})"


def _range_at(ranges: Sequence[TimeRange], ctx: Context, when: datetime) -> TimeRange | None:
    local = ctx.local(when)
    return next((r for r in ranges if r.contains_time(local)), None)


def _end(found: TimeRange) -> str:
    return str(found).split("-", 1)[1]
