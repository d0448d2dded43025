"""Two things no policy may override silently: the user's SMART mode, and a scheduler outage.

SMART_CHARGING is Enphase's own AI optimisation: the charger picks when and how fast, like
GREEN, and a user chose it on purpose. So a policy that would want another mode (or amps) holds
in SMART and says so, unless its rule names SMART explicitly: a ``charge_mode`` policy (setting
a mode is the user's explicit wish) or a ``when: {mode: [smart]}`` condition (the rule is about
what to do *in* SMART).

During a scheduler outage (2026 reference section 10) no mode, battery-setting or schedule
write can succeed, and while the status itself is served from cache (it failed with the
scheduler) nothing may be steered by a reading of unknown age: those decisions hold, saying why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from optimizer.engine.decision import Decision, TargetName
from optimizer.engine.rules import ChargeModePolicy, PolicyBase
from optimizer.engine.snapshot import ChargerView, Snapshot
from optimizer.enlighten.models import ChargeMode

__all__ = ["SCHEDULER_ACTIONS", "hold_for_outage", "keep_smart", "may_leave_smart"]

SMART = ChargeMode.SMART_CHARGING
SCHEDULER_ACTIONS = ("set_mode", "set_battery", "patch_schedules")
_ACTING = ("set_mode", "start", "set_amps", "stop")

Decisions = Mapping[TargetName, Decision]


def may_leave_smart(policy: PolicyBase) -> bool:
    """Whether the rule names SMART as a mode it may take the charger out of."""
    if isinstance(policy, ChargeModePolicy):
        return True
    return policy.when.mode is not None and SMART in policy.when.mode


def leavers(policies: Iterable[PolicyBase]) -> frozenset[str]:
    return frozenset(policy.name for policy in policies if may_leave_smart(policy))


def keep_smart(
    decided: Decisions, charger: ChargerView, allowed: frozenset[str]
) -> dict[TargetName, Decision]:
    """In SMART, a mode change or a charging command from a policy not allowed to leave it
    becomes a hold by the same policy whose reason says what it wanted and why not."""
    out = dict(decided)
    if charger.mode is not SMART:
        return out
    mode = out.get("mode")
    leaving = mode is not None and mode.action == "set_mode" and mode.policy in allowed
    if leaving:
        return out  # the user's rule takes it out of SMART; charging follows the new mode
    for target in ("mode", "charging"):
        decision = out.get(target)
        if decision is not None and decision.action in _ACTING and decision.policy not in allowed:
            out[target] = _hold(decision, f"{_smart_note(decision, out)}: {decision.reason}")
    return out


def _smart_note(decision: Decision, decided: Decisions) -> str:
    """``charger is in SMART_CHARGING (Enphase AI optimisation); policy x wants MANUAL at
    16 A: not overriding the user's choice``."""
    mode = decided.get("mode")
    mode_part = ""
    if mode is not None and mode.action == "set_mode" and mode.policy == decision.policy:
        mode_part = str(mode.params.get("mode", "")).removesuffix("_CHARGING")
    charge_part = ""
    charging = decided.get("charging")
    if charging is not None and charging.policy == decision.policy:
        amps = charging.params.get("amps")
        if charging.action in ("start", "set_amps") and amps is not None:
            charge_part = f"at {amps} A" if mode_part else f"to charge at {amps} A"
        elif charging.action in ("start", "stop"):
            charge_part = f"a {charging.action}"
    joiner = " " if charge_part.startswith("at") else " and "
    wanted = joiner.join(p for p in (mode_part, charge_part) if p) or decision.action
    return (
        f"charger is in {SMART.value} (Enphase AI optimisation); policy {decision.policy} "
        f"wants {wanted}: not overriding the user's choice"
    )


def hold_for_outage(decided: Decisions, snapshot: Snapshot) -> dict[TargetName, Decision]:
    """Scheduler writes hold while the scheduler is down; everything holds on a stale status."""
    out = dict(decided)
    down = snapshot.scheduler_down_since
    stale = snapshot.stale_status_s
    for target, decision in decided.items():
        if stale is not None and decision.action != "hold":
            out[target] = _hold(
                decision,
                f"the status is {_span(stale)} old (it fails with the Enlighten scheduler); "
                f"holding until a fresh status confirms the charger's state ({decision.reason})",
            )
        elif down is not None and decision.action in SCHEDULER_ACTIONS:
            since = _span((snapshot.now - down).total_seconds())
            out[target] = _hold(
                decision,
                f"the Enlighten scheduler service is down (for {since}); no "
                f"{decision.action.replace('_', ' ')} until it is back ({decision.reason})",
            )
    return out


def _hold(decision: Decision, reason: str) -> Decision:
    return replace(decision, action="hold", params={}, reason=reason)


def _span(seconds: float) -> str:
    minutes = max(0, int(seconds)) // 60
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"
