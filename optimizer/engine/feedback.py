"""What the engine learns from the actuator: a command that was not applied was not commanded.

``evaluate`` records what its decisions command as if they succeed (``remember``), so that
while the cloud's status lags the engine trusts its own command. When the command was refused,
failed, or only logged (dry run), that record is false: after the settle time the unchanged
charger would differ from the "commanded" state and be taken for a user's override, holding the
policies off for an hour. :func:`acknowledge` forgets the record for the decision's target, so
the next tick sees the charger as it is and decides again.

Pure: no I/O, no clock, inputs are never mutated.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from optimizer.engine.decision import ChargerMemory, Decision, Memory, TargetName
from optimizer.engine.evaluate import COMMANDED, sent

__all__ = ["TARGET_FIELDS", "acknowledge"]

# What ``remember`` records as commanded, per target.
TARGET_FIELDS: dict[TargetName, tuple[str, ...]] = {
    "charging": ("commanded_on", "commanded_amps"),
    "mode": ("commanded_mode",),
    "battery": ("commanded_battery",),
    "schedules": (),
}


def acknowledge(
    memory: Memory, decision: Decision, *, applied: bool, before: Memory | None = None
) -> Memory:
    """``memory`` (from ``evaluate``) with ``decision``'s command forgotten unless ``applied``.

    A decision that is already as wanted (the actuator's ``noop``) counts as applied: the
    charger is in the commanded state. ``before`` is the memory ``evaluate`` was given; with
    it, the session marks this tick overwrote (``started_at``, ``stopped_at``) get their old
    values back, without it they are cleared. Level changes stamped this tick are dropped, so
    a refused change does not use up the policy's changes per hour; a command not applied is
    taken off the session's count (``session_commands``).
    """
    if applied or decision.observed or decision.action not in COMMANDED:
        return memory  # an observed change (the user's own) was never commanded
    known = memory.chargers.get(decision.charger_sn)
    if known is None:
        return memory
    update: dict[str, Any] = dict.fromkeys(TARGET_FIELDS[decision.target])
    previous = before.chargers.get(decision.charger_sn) if before is not None else None
    if sent(decision, restarting=previous is not None and previous.restart is not None):
        update["session_commands"] = max(0, known.session_commands - 1)
    if decision.target == "charging":
        update |= _undo_session_marks(known, decision, previous or ChargerMemory())
    chargers = {**memory.chargers, decision.charger_sn: known.model_copy(update=update)}
    return memory.model_copy(update={"chargers": chargers})


def _undo_session_marks(
    known: ChargerMemory, decision: Decision, previous: ChargerMemory
) -> dict[str, Any]:
    """The marks ``remember`` stamped with this tick's time (``commanded_at``) for a command
    that never happened."""
    tick: datetime | None = known.commanded_at
    if tick is None:
        return {}
    undo: dict[str, Any] = {}
    if decision.action == "start" and known.started_at == tick:
        undo["started_at"] = previous.started_at
    if decision.action == "stop" and known.stopped_at == tick:
        undo["stopped_at"] = previous.stopped_at
    if decision.action == "set_amps":
        undo["level_changes"] = [at for at in known.level_changes if at != tick]
    return undo
