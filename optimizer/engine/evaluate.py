"""The engine: ``evaluate(snapshot, policies, memory) -> (decisions, memory)``.

A pure function: no I/O, no clock (``snapshot.now`` is the time), no mutation of its inputs,
and the same answer for the same arguments. The service persists the memory it returns and
passes it back next tick; that is where hysteresis timers and what the engine last commanded
live, so a restart resumes where it stopped.

Per charger, in order:

1. Bookkeeping: unplugging clears overrides and commanded state; energy since plug-in is
   summed over session restarts; an expired override ends; a user's own change is detected
   (observed state differs from what was commanded once ``settle`` has passed).
2. Every enabled policy that applies to the charger and whose ``when`` holds proposes, and
   updates its timers (so they keep running when it is overruled); a policy whose ``when``
   fails loses its timers.
3. Per target, the highest priority wins (ties: earlier in the list); the rest are recorded
   as overruled.
4. Safety, last and absolute: no action on a faulted or offline charger; a user override
   holds its targets; no policy takes the charger out of the user's SMART mode unless its rule
   names SMART (``engine.smart``); GREEN, SMART and SCHEDULED mode get no start, stop or level
   (the charger runs sessions itself there, and a start or stop in GREEN would become a manual
   override); amps are clamped to the charger's limits, the site limit and the granularity; a
   scheduler outage holds scheduler writes (and everything while the status is stale).
5. Memory records what the final decisions command (the service applies them).

While a command settles, policies see the charger as commanded (the cloud's status lags), so
nothing is sent twice just because the report has not caught up.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from optimizer.engine.allocate import RULE, Claim, Grant, allocate
from optimizer.engine.conditions import check, holds
from optimizer.engine.control import NEXT, hand_over, next_hints
from optimizer.engine.decision import (
    OVERRIDE,
    SAFETY,
    Action,
    ChargerMemory,
    Control,
    Decision,
    EngineSettings,
    Memory,
    Overruled,
    Proposal,
    TargetName,
    evolve,
)
from optimizer.engine.frozen import maker
from optimizer.engine.kinds import Context, Limits, propose
from optimizer.engine.kinds.common import finite, watts_per_amp
from optimizer.engine.kinds.excess_solar import lowest_level
from optimizer.engine.overrides import (
    SELF_RUNNING,
    detect_override,
    expire_override,
    observed_rows,
)
from optimizer.engine.restart import settle_restart
from optimizer.engine.rules import ExcessSolar, PolicyBase
from optimizer.engine.smart import hold_for_outage, keep_smart, leavers
from optimizer.engine.snapshot import ChargerView, Snapshot
from optimizer.enlighten.models import ChargeMode

_new_context = maker(Context)
_new_decision = maker(Decision)

__all__ = ["DEFAULT_SETTINGS", "TARGET_ORDER", "evaluate"]

DEFAULT_SETTINGS = EngineSettings()
TARGET_ORDER: tuple[TargetName, ...] = ("charging", "mode", "battery", "schedules")
CHARGING_ACTIONS = ("start", "set_amps", "stop")
LEVEL_WINDOW = timedelta(hours=1)
NEW_SESSION_DROP_KWH = 0.01  # session energy falling by more than this means a new session
MODES = {mode.value: mode for mode in ChargeMode}

Decisions = dict[TargetName, Decision]


@dataclass(frozen=True)
class _Tick:
    """One charger's arbitrated and safeguarded decisions, before the site shares out."""

    ctx: Context
    known: ChargerMemory
    final: Decisions
    control: dict[str, Control]
    inputs: dict[str, Any]
    allowed: frozenset[str]

    def guarded(self, charging: Decision) -> Decision:
        """``charging`` as the safety rules let it through (a cut is a new command too)."""
        decided = {**self.final, "charging": charging}
        return safeguard(decided, self.ctx, self.known, self.inputs, allowed=self.allowed)[
            "charging"
        ]


def evaluate(
    snapshot: Snapshot,
    policies: Sequence[PolicyBase],
    memory: Memory,
    *,
    settings: EngineSettings = DEFAULT_SETTINGS,
) -> tuple[list[Decision], Memory]:
    """Decisions for every charger in the snapshot, and the memory to pass next time."""
    # The caller's memory stays as it was: the engine replaces what it changes (``model_copy``
    # with an update) and writes only into these two dicts, so copying them is enough. A deep
    # copy cost a tenth of a site's tick (docs/scale.md); tests/test_engine_properties.py
    # checks that the input memory is never changed.
    memory = memory.copied({"chargers": dict(memory.chargers), "policies": dict(memory.policies)})
    ticks = [
        _charger_tick(snapshot, charger, policies, memory, settings)
        for charger in snapshot.chargers
    ]
    if len(ticks) > 1:
        ticks = site_allocation(ticks, snapshot, policies, memory, settings)
    decisions: list[Decision] = []
    for tick in ticks:
        memory.chargers[tick.ctx.charger.sn] = remember(
            tick.known,
            tick.final,
            snapshot.now,
            control=tick.control,
            restarting=tick.ctx.memory.restart is not None,
        )
        decisions.extend(tick.final[target] for target in TARGET_ORDER if target in tick.final)
    names = _rules_of(policies).names
    # Timers of policies no longer in the rules go (names cannot contain "/", serials might).
    memory.policies = {k: v for k, v in memory.policies.items() if k.split("/", 1)[0] in names}
    return decisions, memory


def _charger_tick(
    snapshot: Snapshot,
    charger: ChargerView,
    policies: Sequence[PolicyBase],
    memory: Memory,
    settings: EngineSettings,
) -> _Tick:
    """One charger's decisions before site allocation; its policies' timers go into
    ``memory`` (the caller's private copy), its own record is written after allocation."""
    now = snapshot.now
    known, just_plugged = track_plug(memory.charger(charger.sn), charger)
    if just_plugged:
        known = known.updated(session_commands=0)
    known = plugged_since(known, charger, now)
    known = track_energy(known, charger, just_plugged)
    known = expire_override(known, now)
    known, changes = detect_override(known, charger, snapshot, settings)
    view = believed(charger, known, now, settings)
    ctx = _new_context(
        snapshot=snapshot,
        charger=view,
        memory=known,
        limits=Limits.of(charger, settings.site_max_amps),
        delivered_kwh=max(
            0.0, finite(known.energy_base_kwh + (known.session_kwh_seen or 0.0)) or 0.0
        ),
        tariffs=settings.tariffs,
        words=settings.words,
    )
    inputs = snapshot.inputs(charger) if settings.words else {}
    if view != charger:
        inputs["settling"] = True
    proposals = _proposals(ctx, policies, memory)
    decided = arbitrate(proposals, charger.sn, inputs)
    decided, known = _restart(decided, known, snapshot)
    allowed = _rules_of(policies).leavers
    final = safeguard(decided, ctx, known, inputs, allowed=allowed)
    if ctx.memory.restart is not None and known.restart is None:
        known = _restart_ended(known, final)
    if settings.words:
        final = next_hints(decided, final, known, ctx)
    final = observed_rows(
        final, changes, known=known, snapshot=snapshot, sn=charger.sn, inputs=inputs
    )
    final, control = hand_over(
        final,
        known=known,
        ctx=ctx,
        proposals=[p for _, p in proposals],
        policies=policies,
        memory=memory,
    )
    return _Tick(ctx, known, final, control, inputs, allowed)


@dataclass(frozen=True)
class _Rules:
    """What the engine reads of the rules as a whole, the same at every tick of a run."""

    given: tuple[PolicyBase, ...]
    names: frozenset[str]
    leavers: frozenset[str]  # the policies whose rule may take the charger out of SMART


_RULES: dict[int, _Rules] = {}


def _rules_of(policies: Sequence[PolicyBase]) -> _Rules:
    """The rules' names and leavers, worked out once per list of rules (every evaluation asked
    them again: 2% of a replay). Kept by the list's id and served only while it holds the very
    same policies (rules are frozen; a list changed in place is seen), so the answer is always
    what working them out again would give."""
    found = _RULES.get(id(policies))
    if (
        found is not None
        and len(found.given) == len(policies)
        and all(map(operator.is_, found.given, policies))
    ):
        return found
    if len(_RULES) >= 64:  # many lists of rules (tests, reloads): start again
        _RULES.clear()
    found = _RULES[id(policies)] = _Rules(
        tuple(policies), frozenset(p.name for p in policies), leavers(policies)
    )
    return found


def _restart(
    decided: Decisions, known: ChargerMemory, snapshot: Snapshot
) -> tuple[Decisions, ChargerMemory]:
    """A pending level change's restart (engine/restart.py), before the safety rules: the
    start it becomes is checked by them like any other."""
    charging = decided.get("charging")
    if charging is None or known.restart is None:
        return decided, known
    charging, known = settle_restart(charging, known, snapshot.now, snapshot.local.tzinfo)
    return {**decided, "charging": charging}, known


def _restart_ended(known: ChargerMemory, final: Decisions) -> ChargerMemory:
    """A restart consumed or cancelled without a start going out (a safety rule held it):
    the charger stays stopped as the level change left it, and the memory says so, or the
    stopped charger would later be taken for a user's override."""
    charging = final.get("charging")
    if charging is not None and charging.action in ("start", "set_amps"):
        return known
    return known.model_copy(update={"commanded_on": False})


def _proposals(
    ctx: Context, policies: Sequence[PolicyBase], memory: Memory
) -> list[tuple[int, Proposal]]:
    """Every applicable policy's proposals (with its index, for ties); timers into memory."""
    sn = ctx.charger.sn
    found: list[tuple[int, Proposal]] = []
    for index, policy in enumerate(policies):
        if policy.chargers is not None and sn not in policy.chargers:
            continue
        key = f"{policy.name}/{sn}"
        # The verdict first: a failing policy's words would be thrown away (most, most ticks).
        if not (policy.enabled and holds(policy.when, ctx.snapshot, ctx.charger)):
            memory.policies.pop(key, None)  # timers restart when the conditions hold again
            continue
        # The met conditions in words go only into reasons and inputs, which nothing reads
        # without words (tests/test_engine_properties.py: the same actions, parameters and
        # memory either way).
        met = check(policy.when, ctx.snapshot, ctx.charger)[1] if ctx.words else ""
        proposals, state = propose(policy, ctx, memory.policy(policy.name, sn), met)
        memory.policies[key] = state
        found.extend((index, p) for p in proposals)
    return found


# --- arbitration -------------------------------------------------------------------------------


def arbitrate(
    proposals: Sequence[tuple[int, Proposal]], sn: str, inputs: dict[str, Any]
) -> Decisions:
    """Per target: the highest priority wins, ties go to the policy listed first."""
    decided: Decisions = {}
    by_target: dict[TargetName, list[tuple[int, Proposal]]] = {}
    for item in proposals:  # one pass, each target's proposals in their order
        by_target.setdefault(item[1].target, []).append(item)
    for target in TARGET_ORDER:
        ranked = by_target.get(target)
        if not ranked:
            continue
        if len(ranked) > 1:
            ranked.sort(key=lambda item: (-item[1].priority, item[0]))
        winner, rest = ranked[0][1], [p for _, p in ranked[1:]]
        # What happens next: the winner's plan, else what the first overruled policy waits for.
        hint = next((p.hint for _, p in ranked if p.hint is not None), None)
        decided[target] = _new_decision(
            policy=winner.policy,
            charger_sn=sn,
            target=target,
            action=winner.action,
            params=winner.params,
            reason=winner.reason,
            inputs={**inputs, **winner.inputs, NEXT: hint},
            overruled=tuple(Overruled(p.policy, p.action, p.params, p.reason) for p in rest),
        )
    return decided


def _held_by(decision: Decision, policy: str, reason: str) -> Decision:
    """A hold by ``policy`` in place of ``decision``, which joins the overruled."""
    overruled = decision.overruled
    if decision.policy != policy:
        first = Overruled(decision.policy, decision.action, decision.params, decision.reason)
        overruled = (first, *overruled)
    return evolve(
        decision, policy=policy, action="hold", params={}, reason=reason, overruled=overruled
    )


# --- safety ------------------------------------------------------------------------------------


def safeguard(
    decided: Decisions,
    ctx: Context,
    known: ChargerMemory,
    inputs: dict[str, Any],
    *,
    allowed: frozenset[str] = frozenset(),
) -> Decisions:
    """The absolute rules, in order: fault, user override, the user's SMART mode (``allowed``:
    the policies whose rule may leave it), self-running modes, amps limits, and last a
    scheduler outage. ``inputs`` are the tick's facts, for a SAFETY hold no policy asked for."""
    fault = fault_reason(ctx.charger)
    if fault is not None:
        return _all_held(decided, ctx.charger.sn, fault, inputs)
    decided = _respect_override(decided, known, ctx.now)
    decided = keep_smart(decided, ctx.charger, allowed)
    decided = _charger_runs_sessions(decided, ctx.charger)
    decided = _no_start_without_authentication(decided, ctx.charger)
    decided = _without_amps_control(decided, ctx.charger)
    decided = {target: clamp(decision, ctx) for target, decision in decided.items()}
    decided = hold_for_outage(decided, ctx.snapshot)
    schedules = decided.get("schedules")
    if schedules is not None and schedules.inputs.get("in_line") and not schedules.overruled:
        del decided["schedules"]  # already in line and nobody overruled: nothing to log
    return decided


def fault_reason(charger: ChargerView) -> str | None:
    if charger.faulted:
        return "charger faulted: no action"
    if not charger.connected:
        return "charger offline: no action"
    return None


def _all_held(decided: Decisions, sn: str, reason: str, inputs: dict[str, Any]) -> Decisions:
    """Only SAFETY holds: one per decided target, and always one for charging."""
    held = {target: _held_by(d, SAFETY, reason) for target, d in decided.items()}
    if "charging" not in held:
        held["charging"] = Decision(SAFETY, sn, "charging", "hold", {}, reason, inputs)
    return held


def _respect_override(decided: Decisions, known: ChargerMemory, now: datetime) -> Decisions:
    overrides = known.overrides
    return {
        target: _held_by(d, OVERRIDE, overrides[target].reason)
        if target in overrides and now < overrides[target].until
        else d
        for target, d in decided.items()
    }


def _charger_runs_sessions(decided: Decisions, charger: ChargerView) -> Decisions:
    """In GREEN and SCHEDULED mode the charger starts and stops sessions itself, so the
    charging target only holds: GREEN ignores levels and a start or stop sent in GREEN becomes
    a manual override until the next plug-in (field notes); SCHEDULED follows the charger's
    own slots. The mode is this tick's mode decision, or else the charger's current one."""
    mode_decision = decided.get("mode")
    mode = charger.mode
    if mode_decision is not None and mode_decision.action == "set_mode":
        mode = MODES.get(str(mode_decision.params.get("mode")))
    charging = decided.get("charging")
    if mode not in SELF_RUNNING or charging is None or charging.action not in CHARGING_ACTIONS:
        return decided
    return _charging_held(decided, charging, SELF_RUNNING[mode])


def _charging_held(decided: Decisions, charging: Decision, why: str) -> Decisions:
    """The charging decision turned into a hold that says ``why`` and what it replaced."""
    reason = f"{why}, so no {charging.action} ({charging.reason})"
    return {**decided, "charging": evolve(charging, action="hold", params={}, reason=reason)}


SESSION_AUTH_HOLD = (
    "session authentication is on for this charger (app or RFID): the cloud would accept "
    "a start but no energy flows until someone authenticates"
)


def _no_start_without_authentication(decided: Decisions, charger: ChargerView) -> Decisions:
    """A start (or a level change, which restarts the session) to a charger that waits for
    someone to authenticate delivers nothing: it holds, saying why (2026 reference section
    8). Stops still go through."""
    charging = decided.get("charging")
    if not charger.session_auth or charging is None:
        return decided
    if charging.action not in ("start", "set_amps"):
        return decided
    return _charging_held(decided, charging, SESSION_AUTH_HOLD)


NO_AMPS_CONTROL = "the charger takes no amps from the cloud (its feature flags say so)"


def _without_amps_control(decided: Decisions, charger: ChargerView) -> Decisions:
    """A charger whose flags deny amps control is started without a level, and a level
    change is held: a level it cannot take is never sent (2026 reference section 8)."""
    charging = decided.get("charging")
    if charger.amps_control is not False or charging is None:
        return decided
    if charging.action == "set_amps" and charger.charging:
        return _charging_held(decided, charging, NO_AMPS_CONTROL)
    if charging.action in ("start", "set_amps") and "amps" in charging.params:
        reason = f"{charging.reason}; started without a level: {NO_AMPS_CONTROL}"
        params = {k: v for k, v in charging.params.items() if k != "amps"}
        started = evolve(charging, action="start", params=params, reason=reason)
        return {**decided, "charging": started}
    return decided


def clamp(decision: Decision, ctx: Context) -> Decision:
    """Amps within the charger's limits, the site limit and the granularity; a level the
    limits cannot give at all becomes a stop (if charging) or a hold."""
    limits, charger = ctx.limits, ctx.charger
    if decision.action == "patch_schedules":
        return _clamp_edits(decision, limits, charger)
    if decision.action not in ("start", "set_amps"):
        return decision
    if not limits.feasible:
        why = _no_level(limits, charger)
        if decision.action == "set_amps" and charger.charging:
            return evolve(decision, action="stop", params={}, reason=f"{why}: stop")
        return _hold(decision, f"{why}: cannot charge")
    amps = decision.params.get("amps")
    if not isinstance(amps, int) or isinstance(amps, bool):
        return decision if amps is None else _hold(decision, "no valid level given")
    level = limits.down(amps)
    if decision.action == "set_amps" and charger.charging and charger.safe_limited:
        why = f"the charger fell back to its minimum {charger.amps} A (safe limit)"
        return _hold(decision, f"{decision.reason}; {why}, so a new level cannot take effect")
    if decision.action == "set_amps" and charger.charging and charger.amps == level:
        return _hold(decision, f"{decision.reason}; limited to {level} A, which it already has")
    if level == amps:
        return decision
    return evolve(
        decision,
        params={**decision.params, "amps": level},
        reason=f"{decision.reason}; limited to {level} A ({limits.describe()})",
    )


def _no_level(limits: Limits, charger: ChargerView) -> str:
    if limits.site_max_amps is None:
        return f"charger max {charger.max_amps} A is below its minimum {limits.low} A"
    return f"site limit {limits.site_max_amps} A is below the charger minimum {limits.low} A"


def _hold(decision: Decision, reason: str) -> Decision:
    return evolve(decision, action="hold", params={}, reason=reason)


def _clamp_edits(decision: Decision, limits: Limits, charger: ChargerView) -> Decision:
    """Slot levels within the limits too; with no allowed level, no slot gets one."""
    edits = decision.params.get("edits")
    if not isinstance(edits, list):
        return decision
    levelled = [e for e in edits if isinstance(e, dict) and "charging_level" in e]
    if levelled and not limits.feasible:
        return _hold(decision, f"{_no_level(limits, charger)}: schedules left alone")

    def fix(edit: Any) -> Any:
        level = edit.get("charging_level") if isinstance(edit, dict) else None
        if isinstance(level, int) and not isinstance(level, bool) and not limits.allows(level):
            return {**edit, "charging_level": limits.down(level)}
        return edit

    return evolve(decision, params={**decision.params, "edits": [fix(e) for e in edits]})


# --- site allocation ---------------------------------------------------------------------------


def site_allocation(
    ticks: list[_Tick],
    snapshot: Snapshot,
    policies: Sequence[PolicyBase],
    memory: Memory,
    settings: EngineSettings,
) -> list[_Tick]:
    """The surplus and the site limit shared among the site's chargers (``engine.allocate``);
    each charging decision is cut to its share and says what it got and why."""
    by_name = {policy.name: policy for policy in policies}
    claims = [_claim(tick, by_name, memory, settings) for tick in ticks]
    surplus = _solar_surplus(ticks, claims)
    grants = allocate(claims, surplus_w=surplus, site_max_amps=settings.site_max_amps)
    facts = {"site_chargers": len(ticks), "allocation": RULE, "allocation_surplus_w": surplus}
    return [
        _granted(tick, claim, grant, facts)
        for tick, claim, grant in zip(ticks, claims, grants, strict=True)
    ]


def _drawn(decision: Decision | None, ctx: Context) -> int:
    """What the charging decision would have the charger draw (A)."""
    view = ctx.charger
    if not view.connected:
        # Offline to the cloud is not off: a plugged-in car may still draw its last level, and
        # no command reaches it. Counted against the breaker, or the others would be given its
        # share and the site would be over its limit when it comes back (the two-site soak).
        return (view.amps or 0) if view.plugged_in else 0
    if decision is None or decision.action == "hold":
        return (view.amps or 0) if view.charging and ctx.limits.feasible else 0
    if decision.action in ("start", "set_amps"):
        amps = decision.params.get("amps")
        if isinstance(amps, int) and not isinstance(amps, bool):
            return amps
        return view.amps or ctx.limits.high if ctx.limits.feasible else 0
    return 0


def _claim(
    tick: _Tick, by_name: dict[str, PolicyBase], memory: Memory, settings: EngineSettings
) -> Claim:
    ctx, decision = tick.ctx, tick.final.get("charging")
    sn = ctx.charger.sn
    policy = by_name.get(decision.policy) if decision is not None else None
    fixed = (
        decision is None
        or not ctx.charger.connected
        or policy is None
        or decision.observed
        or (decision.action == "start" and "amps" not in decision.params)
        or not _may_stop(tick, decision)
    )
    solar = isinstance(policy, ExcessSolar) and memory.policy(policy.name, sn).basis != "departure"
    floor = isinstance(policy, ExcessSolar) and policy.variant == "min_pv"
    limits = ctx.limits
    low = lowest_level(policy, ctx) if solar and isinstance(policy, ExcessSolar) else limits.low
    return Claim(
        sn=sn,
        priority=(settings.charger_priority.get(sn, 0), policy.priority if policy else 0),
        wanted_amps=_drawn(decision, ctx),
        low=low,
        high=max(low, limits.high),
        step=limits.step,
        watts_per_amp=watts_per_amp(ctx.charger),
        solar=solar,
        floor=solar and floor,
        fixed=fixed,
    )


def _may_stop(tick: _Tick, decision: Decision) -> bool:
    """Whether a charger that keeps charging under ``decision`` could be cut: the safety
    rules (its SMART or GREEN mode, a scheduler outage...) may forbid any command, and then
    its draw is fixed (it counts against the breaker but is never cut)."""
    if not tick.ctx.charger.charging or decision.action in ("start", "set_amps", "stop"):
        return True
    probe = evolve(decision, action="stop", params={})
    return tick.guarded(probe).action == "stop"


def _solar_surplus(ticks: list[_Tick], claims: list[Claim]) -> float | None:
    """The surplus the site's solar-only policies may use: the least any of them may (each
    counts the battery and keeps a reserve as its rule says)."""
    seen: list[float] = []
    for tick, claim in zip(ticks, claims, strict=True):
        decision = tick.final.get("charging")
        watts = decision.inputs.get("available_w") if decision is not None else None
        if claim.solar and isinstance(watts, (int, float)) and finite(float(watts)) is not None:
            seen.append(float(watts))
    return min(seen) if seen else None


def _granted(tick: _Tick, claim: Claim, grant: Grant, facts: dict[str, Any]) -> _Tick:
    decision = tick.final.get("charging")
    if decision is None:
        return tick
    inputs = {
        **decision.inputs,
        **facts,
        "share_amps": grant.amps,
        "share_w": round(grant.amps * claim.watts_per_amp),
    }
    if grant.bound is not None:
        inputs["share_bound"] = grant.bound
    changed = evolve(decision, inputs=inputs)
    if grant.amps < claim.wanted_amps:
        count = int(facts["site_chargers"])
        wanted = _cut(changed, tick.ctx.charger, grant, count)
        cut = tick.guarded(wanted)
        if cut.action != wanted.action and tick.ctx.charger.charging:
            # A lower level the charger cannot take (no amps control, say): a stop it can.
            cut = tick.guarded(_cut(changed, tick.ctx.charger, replace(grant, amps=0), count))
        changed = cut
    return replace(tick, final={**tick.final, "charging": changed})


def _cut(decision: Decision, view: ChargerView, grant: Grant, chargers: int) -> Decision:
    """The charging decision within its share: a lower level, a stop, or a hold."""
    why = f"site share {grant.amps} A ({grant.bound} shared by {chargers} chargers)"
    if grant.amps == 0:
        if view.charging:
            return evolve(
                decision, action="stop", params={}, reason=f"{decision.reason}; {why}: stop"
            )
        return _hold(decision, f"{decision.reason}; {why}: no start")
    if view.charging and view.amps == grant.amps:
        return _hold(decision, f"{decision.reason}; {why}, which it already has")
    action: Action = "start" if not view.charging else "set_amps"
    params = {**decision.params, "amps": grant.amps}
    return evolve(decision, action=action, params=params, reason=f"{decision.reason}; {why}")


# --- memory ------------------------------------------------------------------------------------


def track_plug(known: ChargerMemory, charger: ChargerView) -> tuple[ChargerMemory, bool]:
    """(memory, just plugged in). Unplugging ends overrides and forgets commanded state."""
    if not charger.connected:
        return known, False  # an offline charger's plug state is not news
    was = known.last_seen_plugged_in
    if was and not charger.plugged_in:
        known = ChargerMemory(
            started_at=known.started_at,
            stopped_at=known.stopped_at,
            level_changes=known.level_changes,
            control=known.control,
        )
    known = known.updated(last_seen_plugged_in=charger.plugged_in)
    return known, was is False and charger.plugged_in


def plugged_since(known: ChargerMemory, charger: ChargerView, now: datetime) -> ChargerMemory:
    """Since when the vehicle is plugged in: from the tick it was first seen plugged in (an
    older memory without it starts counting now), cleared when it is unplugged."""
    if not charger.connected:
        return known
    since = known.plugged_in_since
    if not charger.plugged_in:
        since = None
    elif since is None:
        since = now
    return known.updated(plugged_in_since=since)


def track_energy(known: ChargerMemory, charger: ChargerView, just_plugged: bool) -> ChargerMemory:
    """Energy since plug-in: a new session restarts ``session_kwh`` at zero (every MANUAL level
    change does), so finished sessions are summed; the figure a charger keeps from the previous
    plug-in until its next session starts does not count."""
    current = finite(charger.session_kwh)
    if not charger.connected or current is None:
        return known
    base, seen = known.energy_base_kwh, known.session_kwh_seen
    if just_plugged:
        base = -current
    elif seen is not None and current < seen - NEW_SESSION_DROP_KWH:
        base += seen
    return known.updated(energy_base_kwh=base, session_kwh_seen=current)


def believed(
    charger: ChargerView, known: ChargerMemory, now: datetime, settings: EngineSettings
) -> ChargerView:
    """The charger as commanded while a command settles (the status lags behind it), and
    while a level change waits for its restart (the charger stopped on purpose)."""
    settled = known.commanded_at is None or now - known.commanded_at >= settings.settle
    if settled and known.restart is None:
        return charger
    changes: dict[str, Any] = {}
    if known.commanded_mode in MODES:
        changes["mode"] = MODES[known.commanded_mode]
    if known.commanded_battery is not None:
        changes["use_battery"] = known.commanded_battery
    if charger.plugged_in and known.commanded_on is not None:
        changes["charging"] = known.commanded_on
        if known.commanded_on and known.commanded_amps is not None:
            changes["amps"] = known.commanded_amps
    return replace(charger, **changes)


Update = Callable[[Decision], dict[str, Any]]
COMMANDED: dict[str, Update] = {
    # A mode change hands sessions to the charger (GREEN, SCHEDULED) or to the next command,
    # so what was commanded about the session no longer says what it should be doing.
    "set_mode": lambda d: {
        "commanded_mode": d.params.get("mode"),
        "commanded_on": None,
        "commanded_amps": None,
    },
    "start": lambda d: {"commanded_on": True, "commanded_amps": d.params.get("amps")},
    "stop": lambda d: {"commanded_on": False},
    "set_amps": lambda d: {"commanded_on": True, "commanded_amps": d.params.get("amps")},
    "set_battery": lambda d: {"commanded_battery": d.params.get("enabled")},
}


def remember(
    known: ChargerMemory,
    final: Decisions,
    now: datetime,
    *,
    control: dict[str, Control],
    restarting: bool = False,
) -> ChargerMemory:
    """Record what the final decisions command, as if they succeed (the service applies
    them); the mode first, since it resets what was commanded about the session. With the
    tick's ``control`` in the same copy (each control's last tick changes every tick).
    ``restarting``: a level change's restart was pending at the tick's start, so a start now
    is its second half, not a command of its own (:func:`sent`)."""
    acting = sorted(
        (d for d in final.values() if d.action in COMMANDED and not d.observed),
        key=lambda d: d.action != "set_mode",
    )
    update: dict[str, Any] = {}
    for decision in acting:
        update |= COMMANDED[decision.action](decision)
    changes = [at for at in known.level_changes if now - at < LEVEL_WINDOW]
    if any(d.action == "set_amps" for d in acting):
        changes.append(now)
    if any(d.action == "start" for d in acting):
        update["started_at"] = now
    if any(d.action == "stop" for d in acting):
        update["stopped_at"] = now
    if acting:
        update["commanded_at"] = now
        counted = sum(sent(d, restarting=restarting) for d in acting)
        if counted:
            update["session_commands"] = known.session_commands + counted
    return known.updated(level_changes=changes, control=control, **update)


SESSION_COMMANDS = frozenset({"start", "stop", "set_amps", "set_mode"})
"""The actions a session's command count holds: the replay's ``CHARGING_COMMANDS``."""


def sent(decision: Decision, *, restarting: bool = False) -> int:
    """How many commands ``decision`` adds to the session's count, as the replay counts them
    (:mod:`optimizer.simulate.replay`): a start, a stop, a level change, a mode switch, one
    each; a user's own change none, and a start that completes a level change's restart none
    (live a level change is a stop now and a start later, the replay's one ``set_amps``)."""
    if decision.observed or decision.action not in SESSION_COMMANDS:
        return 0
    return 0 if restarting and decision.action == "start" else 1
