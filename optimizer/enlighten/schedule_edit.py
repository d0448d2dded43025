"""Safe single-slot edits of a charger's schedule, and the PATCH body that carries them.

The scheduler's PATCH replaces the whole slot list: a slot left out is deleted server-side and a
field sent wrong is overwritten (spec 4.5). So an edit here is a small value (:class:`AddSlot`,
:class:`SetSlot`, :class:`EnableSlot`, :class:`DisableSlot`, :class:`DeleteSlot`) and
:func:`apply_edit` returns the full new list in which exactly that one slot differs; every other
slot is passed through as the very same object, so ``to_wire()`` echoes it unchanged.

Everything here is pure (no I/O, no clock, no randomness): the caller supplies the new slot's id
(:func:`new_slot_id`) and the server timestamp. Every bad edit raises :class:`ScheduleEditError`
before anything reaches the cloud, naming the slot, the field and what would be valid.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from optimizer.enlighten.errors import EXIT_INVALID, EnlightenError
from optimizer.enlighten.models import ScheduleSlot

__all__ = [
    "ALL_DAYS",
    "AddSlot",
    "DeleteSlot",
    "DisableSlot",
    "Edit",
    "EnableSlot",
    "ScheduleEditError",
    "SetSlot",
    "apply_edit",
    "describe_edit",
    "format_days",
    "new_slot_id",
    "patch_body",
    "resolve_slot",
    "slot_summary",
]

ALL_DAYS: Final = (1, 2, 3, 4, 5, 6, 7)
OFF_PEAK: Final = "OFF_PEAK"
CUSTOM: Final = "CUSTOM"
MIN_FRAGMENT = 4
"""Shortest uuid prefix/suffix :func:`resolve_slot` accepts, so a mistyped index never matches."""

_DAY_NAMES: Final = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 7: "Sun"}
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})", re.ASCII)
_NEW_SLOT_DEFAULTS: Final = {
    "recurring_kind": "Recurring",
    "charge_level_type": "Weekly",
    "source_type": "SYSTEM",
}
_OFF_PEAK_TIMES = (
    "OFF_PEAK follows the utility's off-peak window; only enable, disable or set its level/days"
)


class ScheduleEditError(EnlightenError):
    """An edit that would be wrong or ambiguous; raised before anything is sent."""

    exit_code = EXIT_INVALID
    hint = "run `evopt schedule list` to see the slots; nothing was sent to the cloud"


# --- edits -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddSlot:
    """A new CUSTOM slot, appended to the list. Times are ``HH:MM`` local to the site."""

    start_time: str
    end_time: str
    days: tuple[int, ...] = ALL_DAYS
    charging_level: int | None = None
    enabled: bool = True
    remind_flag: bool = False
    remind_time: int = 10


@dataclass(frozen=True, slots=True)
class SetSlot:
    """Change only the given fields; a time change also enables the slot, as Enlighten does."""

    slot_id: str
    start_time: str | None = None
    end_time: str | None = None
    days: tuple[int, ...] | None = None
    charging_level: int | None = None


@dataclass(frozen=True, slots=True)
class EnableSlot:
    slot_id: str


@dataclass(frozen=True, slots=True)
class DisableSlot:
    slot_id: str


@dataclass(frozen=True, slots=True)
class DeleteSlot:
    """Remove a CUSTOM slot (OFF_PEAK is system-defined and can only be disabled)."""

    slot_id: str


Edit = AddSlot | SetSlot | EnableSlot | DisableSlot | DeleteSlot


# --- describing slots --------------------------------------------------------------------------


def _wire_days(slot: ScheduleSlot) -> tuple[int, ...]:
    """The days the PATCH will carry (OFF_PEAK without days means every day)."""
    return slot.days or (ALL_DAYS if slot.schedule_type == OFF_PEAK else ())


def format_days(days: Iterable[int]) -> str:
    """``(1, 2, 3, 4, 5)`` -> ``Mon-Fri``; all seven -> ``daily``; runs joined by commas."""
    ordered = sorted(set(days))
    if ordered == list(ALL_DAYS):
        return "daily"
    if not ordered:
        return "no days"
    runs: list[list[int]] = []
    for day in ordered:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    names = [_DAY_NAMES.get(day, str(day)) for day in ordered]
    if any(day not in _DAY_NAMES for day in ordered):
        return ",".join(names)
    return ",".join(
        _DAY_NAMES[run[0]] if len(run) == 1 else f"{_DAY_NAMES[run[0]]}-{_DAY_NAMES[run[-1]]}"
        for run in runs
    )


def slot_summary(slot: ScheduleSlot) -> str:
    """``CUSTOM 23:00-06:00``, or just ``OFF_PEAK`` for a slot without times."""
    if slot.start_time is None and slot.end_time is None:
        return slot.schedule_type
    return f"{slot.schedule_type} {slot.start_time or '?'}-{slot.end_time or '?'}"


def _label(slot: ScheduleSlot, position: int) -> str:
    return f"slot {position + 1} ({slot_summary(slot)})"


def _listing(slots: Sequence[ScheduleSlot], positions: Iterable[int] | None = None) -> str:
    chosen = range(len(slots)) if positions is None else positions
    return "; ".join(f"{i + 1}: {slots[i].id} ({slot_summary(slots[i])})" for i in chosen)


def _amps(level: int | None) -> str:
    return "unset" if level is None else f"{level} A"


# --- addressing --------------------------------------------------------------------------------


def _uuid_part(slot_id: str) -> str:
    return slot_id.rsplit(":", 1)[-1].lower()


def resolve_slot(slots: Sequence[ScheduleSlot], ref: str) -> ScheduleSlot:
    """Find the slot a user means: an exact id, a 1-based index as ``evopt schedule list`` shows
    it, or a unique prefix or suffix (at least 4 characters) of the id's uuid part."""
    if not slots:
        raise ScheduleEditError("this charger has no schedule slots")
    text = ref.strip() if isinstance(ref, str) else ""
    if not text:
        raise ScheduleEditError(
            f"no slot given; use an id, an index 1-{len(slots)} or part of the uuid. "
            f"The slots are: {_listing(slots)}"
        )
    exact = [i for i, slot in enumerate(slots) if slot.id == text]
    if len(exact) == 1:
        return slots[exact[0]]
    if len(exact) > 1:
        raise ScheduleEditError(
            f"slot id {text!r} is ambiguous: {_listing(slots, exact)}",
            hint="the charger reports duplicate slot ids; edit them in the Enlighten app",
        )
    if text.isascii() and text.isdigit() and 1 <= int(text) <= len(slots):
        return slots[int(text) - 1]
    fragment = text.lower()
    matches = [
        i
        for i, slot in enumerate(slots)
        if len(fragment) >= MIN_FRAGMENT
        and (_uuid_part(slot.id).startswith(fragment) or _uuid_part(slot.id).endswith(fragment))
    ]
    if len(matches) == 1:
        return slots[matches[0]]
    if matches:
        raise ScheduleEditError(
            f"slot {text!r} is ambiguous, it matches {_listing(slots, matches)}; "
            "give more of the id or use the index"
        )
    raise ScheduleEditError(
        f"no slot matches {text!r}; use an id, an index 1-{len(slots)} or at least "
        f"{MIN_FRAGMENT} characters of the uuid. The slots are: {_listing(slots)}"
    )


def new_slot_id(site_id: int | str, sn: str, unique: UUID | str) -> str:
    """The scheduler's id format ``<site_id>:<sn>:<uuid>``; pass ``uuid.uuid4()`` as unique."""
    return f"{site_id}:{sn}:{unique}"


def _find(slots: Sequence[ScheduleSlot], slot_id: Any) -> int:
    if not isinstance(slot_id, str) or not slot_id.strip():
        raise ScheduleEditError(
            f"slot id {slot_id!r} is not a slot id; known ids: "
            f"{', '.join(s.id for s in slots) or 'none'}"
        )
    found = [i for i, slot in enumerate(slots) if slot.id == slot_id]
    if not found:
        raise ScheduleEditError(
            f"unknown slot id {slot_id!r}; known ids: {', '.join(s.id for s in slots) or 'none'}"
        )
    if len(found) > 1:
        raise ScheduleEditError(
            f"slot id {slot_id!r} is ambiguous: {_listing(slots, found)}",
            hint="the charger reports duplicate slot ids; edit them in the Enlighten app",
        )
    return found[0]


# --- validation --------------------------------------------------------------------------------


def _parse_time(value: Any) -> str | None:
    """``7:00`` -> ``07:00``; None for anything that is not a time of day."""
    if not isinstance(value, str):
        return None
    match = _TIME.fullmatch(value.strip())
    if match is None:
        return None
    hour, minute = int(match[1]), int(match[2])
    return f"{hour:02d}:{minute:02d}" if hour <= 23 and minute <= 59 else None


def _check_time(value: Any, where: str, field: str) -> str:
    parsed = _parse_time(value)
    if parsed is None:
        raise ScheduleEditError(
            f"{where}: {field} {value!r} is not a time of day; use HH:MM from 00:00 to 23:59"
        )
    return parsed


def _check_days(value: Any, where: str) -> tuple[int, ...]:
    valid = "use 1 (Mon) to 7 (Sun)"
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ScheduleEditError(f"{where}: days {value!r} is not a list of days; {valid}")
    days = list(value)
    if not days:
        raise ScheduleEditError(f"{where}: days is empty; give at least one day, {valid}")
    for day in days:
        if isinstance(day, bool) or not isinstance(day, int) or day not in _DAY_NAMES:
            raise ScheduleEditError(f"{where}: days has {day!r}, which is not a day; {valid}")
    repeated = sorted({day for day in days if days.count(day) > 1})
    if repeated:
        names = ", ".join(f"{day} ({_DAY_NAMES[day]})" for day in repeated)
        raise ScheduleEditError(f"{where}: days repeats {names}; give each day once")
    return tuple(sorted(days))


def _check_level(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ScheduleEditError(
            f"{where}: charging level {value!r} is not valid; use a whole number of amps above 0"
        )
    return value


def _check_bool(value: Any, where: str, field: str) -> bool:
    if not isinstance(value, bool):
        raise ScheduleEditError(f"{where}: {field} {value!r} is not valid; use true or false")
    return value


def _check_distinct(start: str, end: str, where: str) -> None:
    if start == end:
        raise ScheduleEditError(
            f"{where}: start and end are both {start}; a slot needs an end time different "
            "from its start (an end before the start runs past midnight)"
        )


# --- applying edits ----------------------------------------------------------------------------


def _replace(slot: ScheduleSlot, **changes: Any) -> ScheduleSlot:
    """The slot with the given fields changed, validated; the same object if nothing changes."""
    current = slot.model_dump()
    if all(current[name] == value for name, value in changes.items()):
        return slot
    return ScheduleSlot.model_validate({**current, **changes})


def _added(slots: Sequence[ScheduleSlot], edit: AddSlot, new_id: str | None) -> ScheduleSlot:
    where = "new slot"
    if not isinstance(new_id, str) or not new_id.strip():
        raise ScheduleEditError(
            f"{where}: no id given; pass new_id=new_slot_id(site_id, sn, uuid4())"
        )
    slot_id = new_id.strip()
    taken = [i for i, slot in enumerate(slots) if slot.id == slot_id]
    if taken:
        raise ScheduleEditError(
            f"{where}: id {slot_id!r} is already used by {_listing(slots, taken)}; give a new uuid"
        )
    start = _check_time(edit.start_time, where, "start time")
    end = _check_time(edit.end_time, where, "end time")
    _check_distinct(start, end, where)
    days = _check_days(edit.days, where)
    level = None if edit.charging_level is None else _check_level(edit.charging_level, where)
    remind_time = edit.remind_time
    if isinstance(remind_time, bool) or not isinstance(remind_time, int) or remind_time < 0:
        raise ScheduleEditError(
            f"{where}: reminder time {remind_time!r} is not valid; use whole minutes, 0 or more"
        )
    # Copy the deployment's own spellings from an existing CUSTOM slot, as the web app would.
    kinds = {
        name: next(
            (
                value
                for slot in slots
                if slot.schedule_type == CUSTOM and (value := getattr(slot, name)) is not None
            ),
            default,
        )
        for name, default in _NEW_SLOT_DEFAULTS.items()
    }
    return ScheduleSlot(
        id=slot_id,
        start_time=start,
        end_time=end,
        charging_level=level,
        charging_level_amp=level,
        schedule_type=CUSTOM,
        days=days,
        remind_time=remind_time,
        remind_flag=_check_bool(edit.remind_flag, where, "remind flag"),
        enabled=_check_bool(edit.enabled, where, "enabled"),
        reminder_time_utc=None,
        serialized_days=None,
        **kinds,
    )


def _counterpart(slot: ScheduleSlot, where: str, field: str) -> str:
    """The stored start or end a one-sided time edit keeps; it must itself be a time."""
    stored = slot.end_time if field == "end time" else slot.start_time
    if stored is None:
        raise ScheduleEditError(
            f"{where}: the slot has no {field}; give both a start and an end time (HH:MM)"
        )
    parsed = _parse_time(stored)
    if parsed is None:
        raise ScheduleEditError(
            f"{where}: the stored {field} {stored!r} is not HH:MM; give both a start and an "
            "end time"
        )
    return parsed


def _set(slot: ScheduleSlot, where: str, edit: SetSlot) -> ScheduleSlot:
    given = (edit.start_time, edit.end_time, edit.days, edit.charging_level)
    if all(value is None for value in given):
        raise ScheduleEditError(
            f"{where}: nothing to change; give a start time, end time, days or charging level"
        )
    changes: dict[str, Any] = {}
    if edit.start_time is not None or edit.end_time is not None:
        if slot.schedule_type == OFF_PEAK:
            raise ScheduleEditError(f"{where}: {_OFF_PEAK_TIMES}")
        start = (
            _check_time(edit.start_time, where, "start time")
            if edit.start_time is not None
            else _counterpart(slot, where, "start time")
        )
        end = (
            _check_time(edit.end_time, where, "end time")
            if edit.end_time is not None
            else _counterpart(slot, where, "end time")
        )
        _check_distinct(start, end, where)
        # Only a real change is written (a stored "7:00" stays as sent) and auto-enables.
        if edit.start_time is not None and _parse_time(slot.start_time) != start:
            changes["start_time"] = start
        if edit.end_time is not None and _parse_time(slot.end_time) != end:
            changes["end_time"] = end
        if changes:
            changes["enabled"] = True
    if edit.days is not None:
        days = _check_days(edit.days, where)
        if days != _wire_days(slot):
            changes["days"] = days
    if edit.charging_level is not None:
        level = _check_level(edit.charging_level, where)
        changes["charging_level"] = level
        changes["charging_level_amp"] = level
    return _replace(slot, **changes)


def apply_edit(
    slots: Sequence[ScheduleSlot], edit: Edit, *, new_id: str | None = None
) -> tuple[ScheduleSlot, ...]:
    """The full new slot list, in the original order, with an added slot appended.

    Untouched slots are the very same objects. ``new_id`` is required for :class:`AddSlot`
    only. Raises :class:`ScheduleEditError` (and nothing else) for any invalid edit.
    """
    current = tuple(slots)
    if isinstance(edit, AddSlot):
        return (*current, _added(current, edit, new_id))
    if not isinstance(edit, SetSlot | EnableSlot | DisableSlot | DeleteSlot):
        raise ScheduleEditError(f"{edit!r} is not a schedule edit")
    index = _find(current, edit.slot_id)
    slot = current[index]
    where = _label(slot, index)
    if isinstance(edit, DeleteSlot):
        if slot.schedule_type == OFF_PEAK:
            raise ScheduleEditError(
                f"{where} is system-defined and cannot be deleted; disable it instead"
            )
        return current[:index] + current[index + 1 :]
    if isinstance(edit, SetSlot):
        updated = _set(slot, where, edit)
    else:
        updated = _replace(slot, enabled=isinstance(edit, EnableSlot))
    return (*current[:index], updated, *current[index + 1 :])


# --- the PATCH body ----------------------------------------------------------------------------


def patch_body(slots: Sequence[ScheduleSlot], *, server_timestamp: str) -> dict[str, Any]:
    """The scheduler PATCH body: the full list, known fields only, OFF_PEAK days defaulted."""
    data = [slot.to_wire() for slot in slots]
    return {"meta": {"serverTimeStamp": server_timestamp, "rowCount": len(data)}, "data": data}


# --- describing an edit ------------------------------------------------------------------------


def _details(slot: ScheduleSlot) -> str:
    parts = [slot_summary(slot), format_days(_wire_days(slot))]
    if slot.charging_level is not None:
        parts.append(f"at {slot.charging_level} A")
    if not slot.enabled:
        parts.append("(disabled)")
    return " ".join(parts)


def _changes(before: ScheduleSlot, after: ScheduleSlot) -> list[str]:
    changes = []
    for name, field in (("start_time", "start"), ("end_time", "end")):
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            changes.append(f"{field} {old or 'unset'} -> {new or 'unset'}")
    if _wire_days(before) != _wire_days(after):
        old_days, new_days = format_days(_wire_days(before)), format_days(_wire_days(after))
        changes.append(f"days {old_days} -> {new_days}")
    if before.charging_level != after.charging_level:
        changes.append(f"level {_amps(before.charging_level)} -> {_amps(after.charging_level)}")
    elif before.charging_level_amp != after.charging_level_amp:
        old_amps, new_amps = _amps(before.charging_level_amp), _amps(after.charging_level_amp)
        changes.append(f"level (amps) {old_amps} -> {new_amps}")
    if before.enabled != after.enabled:
        changes.append("enabled" if after.enabled else "disabled")
    known = {"start_time", "end_time", "days", "charging_level", "charging_level_amp", "enabled"}
    others = sorted(
        name
        for name in ScheduleSlot.model_fields
        if name not in known and getattr(before, name) != getattr(after, name)
    )
    changes.extend(f"{name} changed" for name in others)
    return changes


def describe_edit(before: Sequence[ScheduleSlot], after: Sequence[ScheduleSlot]) -> str:
    """One sentence of what changed between two slot lists, for the CLI and the decision log:
    ``slot 2 (CUSTOM 23:00-06:00): enabled``, ``added slot 3: CUSTOM 01:00-05:00 Mon-Fri at
    16 A``, ``deleted slot 1 (CUSTOM 23:00-06:00 daily at 32 A)``, or ``no change``."""
    old, new = list(before), list(after)
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail, shortest = 0, min(len(old), len(new))
    while tail < shortest - head and old[len(old) - 1 - tail] == new[len(new) - 1 - tail]:
        tail += 1
    removed, added = old[head : len(old) - tail], new[head : len(new) - tail]
    sentences = []
    if len(removed) == len(added):
        for offset, (was, now) in enumerate(zip(removed, added, strict=True)):
            label = _label(was, head + offset)
            if was.id != now.id:
                sentences.append(f"replaced {label} by {now.id} ({_details(now)})")
            else:
                sentences.append(f"{label}: {', '.join(_changes(was, now)) or 'no change'}")
    else:
        sentences.extend(
            f"deleted slot {head + offset + 1} ({_details(slot)})"
            for offset, slot in enumerate(removed)
        )
        sentences.extend(
            f"added slot {head + offset + 1}: {_details(slot)}" for offset, slot in enumerate(added)
        )
    return "; ".join(sentences) or "no change"
