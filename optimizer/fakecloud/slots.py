"""Validation of the schedule PATCH body (spec 4.4/4.5) into the slots the fake stores.

The real service replaces the whole slot list with what a PATCH sends, so the fake must be
strict about each slot (a client bug there deletes or corrupts a user's schedules) while
keeping only the fields spec 4.4 knows: whatever else a client adds is dropped, as the real
service normalises it away. Pure: a ``SlotError`` names the slot index and the field.
"""

from __future__ import annotations

import re
from typing import Any

SCHEDULE_TYPES = ("CUSTOM", "OFF_PEAK")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

# Spec 4.4 slot fields in the order the GET shows them, with the value a missing one gets.
SLOT_DEFAULTS: dict[str, Any] = {
    "id": None,
    "startTime": None,
    "endTime": None,
    "chargingLevel": None,
    "chargingLevelAmp": None,
    "scheduleType": None,
    "days": None,
    "remindTime": None,
    "remindFlag": False,
    "enabled": None,
    "recurringKind": None,
    "chargeLevelType": None,
    "sourceType": None,
    "reminderTimeUtc": None,
    "serializedDays": None,
}


class SlotError(ValueError):
    """A bad slot: ``field`` is the offending key, ``index`` the slot's position (or None)."""

    def __init__(self, message: str, *, field: str, index: int | None) -> None:
        super().__init__(message)
        self.field = field
        self.index = index


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_slot(index: int, slot: Any) -> dict[str, Any]:
    def bad(name: str, why: str) -> SlotError:
        return SlotError(f"Invalid schedule slot field {name}: {why}", field=name, index=index)

    if not isinstance(slot, dict):
        raise SlotError("Invalid schedule slot: not an object", field="slot", index=index)
    if not isinstance(slot.get("id"), str) or not slot["id"]:
        raise bad("id", "a non-empty string is required")
    kind = slot.get("scheduleType")
    if kind not in SCHEDULE_TYPES:
        raise bad("scheduleType", f"must be one of {', '.join(SCHEDULE_TYPES)}")
    days = slot.get("days")
    if not isinstance(days, list) or not all(_is_int(d) and 1 <= d <= 7 for d in days):
        raise bad("days", "a list of integers 1..7 is required")
    for name in ("startTime", "endTime"):
        value = slot.get(name)
        if value is None and kind == "OFF_PEAK":
            continue
        if not isinstance(value, str) or not _HHMM.match(value):
            raise bad(name, '"HH:MM" is required' + (" or null" if kind == "OFF_PEAK" else ""))
    for name in ("chargingLevel", "chargingLevelAmp", "remindTime"):
        value = slot.get(name)
        if value is not None and not _is_int(value):
            raise bad(name, "an integer or null is required")
    if not isinstance(slot.get("enabled"), bool):
        raise bad("enabled", "a boolean is required")
    if not isinstance(slot.get("remindFlag", False), bool):
        raise bad("remindFlag", "a boolean is required")
    return {name: slot.get(name, default) for name, default in SLOT_DEFAULTS.items()}


def parse_schedule_patch(body: Any) -> list[dict[str, Any]]:
    """The slots a PATCH body asks for, normalised to the known fields; SlotError if bad."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise SlotError("Invalid schedules: data must be a list of slots", field="data", index=None)
    slots = [_check_slot(index, slot) for index, slot in enumerate(body["data"])]
    seen: set[str] = set()
    for index, slot in enumerate(slots):
        if slot["id"] in seen:
            raise SlotError("Invalid schedule slot field id: duplicate", field="id", index=index)
        seen.add(slot["id"])
    return slots


def check_single_slot(slot: Any) -> dict[str, Any]:
    """One slot of a single-slot create or update, normalised like a PATCH's; SlotError."""
    return _check_slot(0, slot)
