"""A MANUAL level change in two ticks: the stop now, the restart at the new level later.

In MANUAL mode a new level only takes effect when the session restarts, and the charger wants
``charger.settle_delay`` (30 s) between the stop and the start (field notes). Waiting inside
the tick would make N level changes cost N x 30 s, so the service sends the stop, and
:func:`begin_restart` keeps the restart in the engine memory (saved with the stop's row, so a
SIGKILL in between neither loses it nor sends it twice). Every later tick
:func:`settle_restart` turns the charger's charging decision into what the restart needs:

- while the settle runs, a decision that keeps the new level (a hold, the same level) holds,
  saying when the restart comes; one for another level moves the restart to that level;
- once it has passed, that decision becomes the start at the new level, with its reason
  ("restart at 24 A (level change begun at 14:05:00)");
- a stop (or a user's own change, or an unplug) cancels the restart.

Meanwhile the policies see the charger as commanded (``evaluate.believed``) and the stopped
charger is not taken for a user's override (``overrides.detect_override``). Pure: no I/O, no
clock, inputs are never mutated.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, tzinfo

from optimizer.engine.decision import ChargerMemory, Decision, Memory, PendingRestart

__all__ = ["begin_restart", "settle_restart"]


def _at(when: datetime, zone: tzinfo | None) -> str:
    return when.astimezone(zone).strftime("%H:%M:%S")


def begin_restart(
    memory: Memory,
    decision: Decision,
    *,
    amps: int,
    from_amps: int | None,
    now: datetime,
    settle: timedelta,
) -> tuple[Memory, Decision]:
    """The memory that knows the restart still to send, and the stop half as the decision log
    records it (action ``stop``, the policy's reason kept after the level change's)."""
    sn = decision.charger_sn
    pending = PendingRestart(amps=amps, since=now, due=now + settle, from_amps=from_amps)
    known = memory.charger(sn).model_copy(update={"restart": pending})
    memory = memory.model_copy(update={"chargers": {**memory.chargers, sn: known}})
    was = "?" if from_amps is None else str(from_amps)
    reason = (
        f"level change {was} -> {amps} A: stop, restart at {amps} A after "
        f"{settle.total_seconds():g} s ({decision.reason})"
    )
    params = {"restart_amps": amps, "from_amps": from_amps}
    return memory, replace(decision, action="stop", params=params, reason=reason)


def settle_restart(
    charging: Decision, known: ChargerMemory, now: datetime, zone: tzinfo | None
) -> tuple[Decision, ChargerMemory]:
    """``charging`` (the charger's final charging decision) and its memory as a pending
    restart makes them; unchanged when none is pending."""
    pending = known.restart
    if pending is None or charging.target != "charging":
        return charging, known
    if charging.observed or charging.action == "stop":
        return charging, known.model_copy(update={"restart": None})
    wanted = charging.params.get("amps") if charging.action in ("start", "set_amps") else None
    if isinstance(wanted, int) and wanted != pending.amps:
        pending = pending.model_copy(update={"amps": wanted})
        known = known.model_copy(update={"restart": pending})
    begun = _at(pending.since, zone)
    if now >= pending.due:
        start = replace(
            charging,
            action="start",
            params={"amps": pending.amps},
            reason=f"restart at {pending.amps} A (level change begun at {begun})",
        )
        return start, known.model_copy(update={"restart": None})
    hold = replace(
        charging,
        action="hold",
        params={},
        reason=(
            f"restart at {pending.amps} A at {_at(pending.due, zone)}, once the charger has "
            f"settled (level change begun at {begun})"
        ),
    )
    return hold, known
