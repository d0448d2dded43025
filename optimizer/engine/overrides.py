"""A user's own change, told apart from the engine's commands, and recorded as what it was.

The engine remembers what it commanded; once a command has had time to show (``settle``), a
charger that differs from it was changed by someone else: in the Enphase app or at the charger.
That change is respected for ``engine.override_hold`` (the policies hold that target) and, on
the tick it is seen, recorded as its own decision: policy ``user-override``, the action the user
took (``stop``, ``start``, ``set_amps``, ``set_mode``, ``set_battery``), the observed state as
its parameters and ``inputs["observed"] = True``. Such a row is a record, not a command: the
actuator sends nothing for it, the memory does not take it for something commanded, the
simulator ignores it. Later ticks of the override are ``hold`` rows, as for any other hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from optimizer.engine.decision import (
    OBSERVED,
    OVERRIDE,
    Action,
    ChargerMemory,
    Decision,
    EngineSettings,
    Overruled,
    TargetName,
    TargetOverride,
)
from optimizer.engine.kinds.common import clock
from optimizer.engine.snapshot import ChargerView, Snapshot
from optimizer.enlighten.models import ChargeMode

__all__ = [
    "SELF_RUNNING",
    "Change",
    "adopted",
    "detect_override",
    "differences",
    "expire_override",
    "observed_rows",
]

SELF_RUNNING: dict[ChargeMode | None, str] = {
    ChargeMode.GREEN_CHARGING: "GREEN mode follows solar itself",
    ChargeMode.SCHEDULED_CHARGING: "SCHEDULED mode follows the charger's own schedule",
    ChargeMode.SMART_CHARGING: "SMART mode (Enphase AI optimisation) runs the charger itself",
}
WHERE = "in the Enphase app or at the charger"


@dataclass(frozen=True)
class Change:
    """One thing the user did to one target, as seen in the status."""

    target: TargetName
    text: str  # for the override's hold reason: "user stopped charging"
    action: Action
    params: dict[str, Any] = field(default_factory=dict)
    told: str = ""  # for the observed row: "you stopped charging in the Enphase app ..."


def expire_override(known: ChargerMemory, now: datetime) -> ChargerMemory:
    kept = {t: o for t, o in known.overrides.items() if now < o.until}
    if len(kept) == len(known.overrides):
        return known
    return known.model_copy(update=_overrides(kept))


def _overrides(overrides: dict[str, TargetOverride]) -> dict[str, Any]:
    """The per-target overrides and their summary: the one that lasts longest."""
    last = max(overrides.values(), key=lambda o: o.until, default=None)
    return {
        "overrides": overrides,
        "override_until": None if last is None else last.until,
        "override_reason": None if last is None else last.reason,
    }


def detect_override(
    known: ChargerMemory, charger: ChargerView, snapshot: Snapshot, settings: EngineSettings
) -> tuple[ChargerMemory, list[Change]]:
    """A user's own change: the observed state differs from what the engine commanded once the
    command has had time to show, or the charger reports a manual override of GREEN mode.
    Returns the memory (overrides started, the user's state adopted) and the changes seen."""
    if not charger.connected or charger.faulted or not charger.plugged_in:
        return known, []
    now = snapshot.now
    changes: list[Change] = []
    if charger.manual_override and not known.manual_override_seen:
        action: Action = "start" if charger.charging else "stop"
        told = f"a {action} was sent in GREEN mode {WHERE}, which makes the charger manual"
        changes.append(
            Change("charging", "a start or stop was sent in GREEN mode", action, {}, told)
        )
    settled = known.commanded_at is None or now - known.commanded_at >= settings.settle
    if settled and known.restart is None:  # a charger stopped for a restart is no override
        changes.extend(differences(known, charger))
    seen = {"manual_override_seen": known.manual_override_seen or charger.manual_override}
    if not changes:
        return known.updated(**seen), []  # mostly as it was: the same object then
    until = now + settings.override_hold
    local = snapshot.local
    ends = f"at {clock(local)}; respected until {clock(until.astimezone(local.tzinfo))}"
    texts: dict[str, list[str]] = {}
    for change in changes:
        texts.setdefault(change.target, []).append(change.text)
    new = {
        t: TargetOverride(until=until, reason=f"{' and '.join(found)} {ends}")
        for t, found in texts.items()
    }
    memory = known.model_copy(
        update={**seen, **adopted(charger), **_overrides({**known.overrides, **new})}
    )
    return memory, changes


def differences(known: ChargerMemory, charger: ChargerView) -> list[Change]:
    """What the user did, one change per way the charger differs from the last command."""
    found: list[Change] = []
    mode = charger.mode
    if known.commanded_mode and mode is not None and mode.value != known.commanded_mode:
        short = mode.value.removesuffix("_CHARGING")
        found.append(
            Change(
                "mode",
                f"user changed the mode to {short}",
                "set_mode",
                {"mode": mode.value},
                f"you switched the mode to {short} in the Enphase app",
            )
        )
    session = _session_change(known, charger)
    if session is not None:
        found.append(session)
    battery, commanded = charger.use_battery, known.commanded_battery
    if battery is not None and commanded is not None and battery != commanded:
        word = "on" if battery else "off"
        found.append(
            Change(
                "battery",
                f"user turned battery support {word}",
                "set_battery",
                {"enabled": battery},
                f"you turned battery support {word} in the Enphase app",
            )
        )
    return found


def _session_change(known: ChargerMemory, charger: ChargerView) -> Change | None:
    """A session started or stopped, or its level changed, against the last command.

    Only in MANUAL mode (or unknown): in GREEN, SMART and SCHEDULED the charger starts and
    stops by itself, which is no user's doing.
    """
    if charger.mode in SELF_RUNNING:
        return None
    if known.commanded_on is not None and charger.charging != known.commanded_on:
        if charger.charging:
            level = _reported_level(charger)
            amps = {} if level is None else {"amps": level}
            return Change(
                "charging", "user started charging", "start", amps, f"you started charging {WHERE}"
            )
        return Change(
            "charging", "user stopped charging", "stop", {}, f"you stopped charging {WHERE}"
        )
    level = _reported_level(charger)
    commanded = known.commanded_amps
    # Under a safe limit the charger itself dropped to its minimum: nobody changed the level.
    changed = None not in (level, commanded) and level != commanded and not charger.safe_limited
    if charger.charging and known.commanded_on and changed:
        return Change(
            "charging",
            f"user changed the level to {level} A",
            "set_amps",
            {"amps": level},
            f"you changed the level to {level} A {WHERE}",
        )
    return None


def _reported_level(charger: ChargerView) -> int | None:
    """The level the charger reports, or None when it is not one the charger can run at.

    A charging charger that says 0 A (a reply caught between a start and its level), or a
    level outside its own range, tells nothing about what the user set: recording "you
    started at 0 A", or taking it as the user's new level, would let one bad reading steer
    the next decisions. The site limit is not checked: a user may set more than it allows,
    and that is a true record.
    """
    amps = charger.amps
    if amps is None or not charger.min_amps <= amps <= charger.max_amps:
        return None
    return amps


def adopted(charger: ChargerView) -> dict[str, Any]:
    """The user's state becomes the reference, so the same change is not detected again."""
    return {
        "commanded_on": charger.charging,
        "commanded_amps": (
            _reported_level(charger) if charger.charging and not charger.safe_limited else None
        ),
        "commanded_mode": charger.mode.value if charger.mode else None,
        "commanded_battery": charger.use_battery,
    }


def observed_rows(
    decided: dict[TargetName, Decision],
    changes: list[Change],
    *,
    known: ChargerMemory,
    snapshot: Snapshot,
    sn: str,
    inputs: dict[str, Any],
) -> dict[TargetName, Decision]:
    """``decided`` with each target the user changed this tick recorded as the user's own
    decision (observed, never sent); the policies the override holds back stay overruled."""
    out = dict(decided)
    local = snapshot.local
    for target in dict.fromkeys(change.target for change in changes):
        mine = [change for change in changes if change.target == target]
        override = known.overrides.get(target)
        if override is None:
            continue
        until = clock(override.until.astimezone(local.tzinfo))
        told = " and ".join(change.told for change in mine)
        reason = (
            f"{told} around {clock(local)}; the policies wait until {until} (engine.override_hold)"
        )
        held = decided.get(target)
        overruled: tuple[Overruled, ...] = () if held is None else held.overruled
        base = inputs if held is None else held.inputs
        out[target] = Decision(
            policy=OVERRIDE,
            charger_sn=sn,
            target=target,
            action=mine[0].action,
            params=mine[0].params,
            reason=reason,
            inputs={**base, OBSERVED: True},
            overruled=overruled,
        )
    return out
