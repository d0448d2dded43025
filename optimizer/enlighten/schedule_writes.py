"""How one schedule edit goes over the wire: a single-slot call where one exists, else the
full list with the server's own concurrency token (2026 reference, section 7).

A full-list PATCH replaces every slot, so a stale list sent back deletes what someone else
added meanwhile. The scheduler guards it with optimistic concurrency: the PATCH echoes the
``meta.serverTimeStamp`` of the GET it was built from (never the local clock, which is neither
the server's nor the list's). The single-slot calls (state-only PATCH, POST, PATCH or DELETE of
one ``schedule/<id>``) touch only the slot the user meant, so they are used first; a deployment
without them answers 404/405 and the full list is the fallback, remembered per charger.

Pure: :func:`single_slot_call` turns an edit into the request that carries it, and the readers
take a reply apart; the client sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from optimizer.enlighten.models import ScheduleSlot
from optimizer.enlighten.schedule_edit import (
    AddSlot,
    DeleteSlot,
    DisableSlot,
    Edit,
    EnableSlot,
    SetSlot,
)

__all__ = [
    "FULL_LIST",
    "READ_LAG_S",
    "SlotCall",
    "SlotCallKind",
    "created_slot_id",
    "server_timestamp",
    "single_slot_call",
]

READ_LAG_S: Final = 1.0
"""Reads lag behind writes: a list read sooner than this after a write may miss it."""
FULL_LIST: Final = "full-list"
"""The remembered answer for a charger whose scheduler lacks a single-slot route."""

SlotCallKind = Literal["state", "create", "update", "delete", "full-list"]


@dataclass(frozen=True)
class SlotCall:
    """One single-slot request: ``path`` is relative to the charger's SCHEDULED_CHARGING base."""

    kind: SlotCallKind
    method: str
    path: str
    body: Any = None


def server_timestamp(payload: Any) -> str | None:
    """The concurrency token of a scheduler reply: ``meta.serverTimeStamp``, else the nested
    ``data.meta.serverTimeStamp``; None when the reply carries neither."""
    if not isinstance(payload, dict):
        return None
    for holder in (payload, payload.get("data")):
        meta = holder.get("meta") if isinstance(holder, dict) else None
        stamp = meta.get("serverTimeStamp") if isinstance(meta, dict) else None
        if isinstance(stamp, str) and stamp.strip():
            return stamp.strip()
        if isinstance(stamp, int | float) and not isinstance(stamp, bool):
            return str(stamp)
    return None


def created_slot_id(payload: Any) -> str | None:
    """The id a single-slot create answers with: ``data`` as a bare id, or an object with
    ``id``; None when the reply names none (the next list read shows it anyway)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if isinstance(data, dict):
        data = data.get("id")
    if isinstance(data, int) and not isinstance(data, bool):
        return str(data)
    if isinstance(data, str) and data.strip():
        return data.strip()
    return None


def _slot(slots: Sequence[ScheduleSlot], slot_id: str) -> ScheduleSlot | None:
    return next((slot for slot in slots if slot.id == slot_id), None)


def single_slot_call(
    edit: Edit, before: Sequence[ScheduleSlot], after: Sequence[ScheduleSlot]
) -> SlotCall | None:
    """The single-slot request that turns ``before`` into ``after``, or None (full list).

    ``after`` is :func:`schedule_edit.apply_edit`'s result, so the slot sent is exactly the
    validated one. An enable/disable is the state-only PATCH; a change is the whole slot, id
    included (a time change also enables it, which a state-only call could not say).
    """
    match edit:
        case EnableSlot() | DisableSlot():
            state = "ENABLED" if isinstance(edit, EnableSlot) else "DISABLED"
            return SlotCall("state", "PATCH", "schedules", {edit.slot_id: state})
        case DeleteSlot():
            return SlotCall("delete", "DELETE", f"schedule/{edit.slot_id}")
        case SetSlot():
            updated = _slot(after, edit.slot_id)
            if updated is None:
                return None
            return SlotCall("update", "PATCH", f"schedule/{edit.slot_id}", updated.to_wire())
        case AddSlot():
            known = {slot.id for slot in before}
            added = [slot for slot in after if slot.id not in known]
            if len(added) != 1:
                return None
            body = added[0].to_wire()
            body.pop("id", None)  # the scheduler names a created slot itself
            return SlotCall("create", "POST", "schedule", body)
