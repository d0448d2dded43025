"""The 2026 scheduler's slot writes: the full-list PATCH with its concurrency token, the
state-only PATCH, and the single-slot create, update and delete (2026 reference, section 7).

Pure translations of a request into a change of one charger's slot list and a reply, given the
profile: each returns the reply and makes the change only when the request is good, so a
refused request never leaves a half-written list. ``WriteRoutes`` (writes.py) finds the charger
and registers the routes.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from optimizer.fakecloud import payloads
from optimizer.fakecloud.model import Charger
from optimizer.fakecloud.profile import Profile
from optimizer.fakecloud.responses import error_reply, json_reply
from optimizer.fakecloud.schedule_state import current_token, mark_changed, token_problem
from optimizer.fakecloud.slots import SlotError, check_single_slot, parse_schedule_patch

STATES = {"ENABLED": True, "DISABLED": False}


def _reply(charger: Charger, now: float, data: Any) -> web.Response:
    meta = {"serverTimeStamp": current_token(charger, now)}
    return json_reply({"meta": meta, "data": data, "error": {}})


def _slot_error(exc: SlotError) -> web.Response:
    return error_reply(400, str(exc), field=exc.field, index=exc.index)


def _not_found(slot_id: str) -> web.Response:
    return error_reply(404, f"Schedule {slot_id} not found")


def is_state_only(body: Any) -> bool:
    """``{"<slot_id>": "ENABLED" | "DISABLED", ...}``: no list, only states."""
    return (
        isinstance(body, dict)
        and bool(body)
        and "data" not in body
        and all(isinstance(value, str) and value in STATES for value in body.values())
    )


def patch_list(charger: Charger, profile: Profile, now: float, body: Any) -> web.Response:
    """``PATCH .../schedules``: a state-only change, or the full list (token checked)."""
    if profile.schedule_slot_routes and is_state_only(body):
        known = {slot["id"]: slot for slot in charger.schedule_slots}
        unknown = sorted(set(body) - set(known))
        if unknown:
            return error_reply(400, f"Unknown schedule id {unknown[0]}")
        for slot_id, state in body.items():
            known[slot_id]["enabled"] = STATES[state]
        mark_changed(charger, now)
        return _reply(charger, now, None)
    if profile.schedule_concurrency:
        problem = token_problem(charger, now, body)
        if problem is not None:
            return error_reply(*problem)
    try:
        slots = parse_schedule_patch(body)
    except SlotError as exc:
        return _slot_error(exc)
    charger.schedule_slots = slots
    mark_changed(charger, now)
    return json_reply(payloads.schedules(charger, now))


def create(
    charger: Charger, profile: Profile, now: float, body: Any, *, site_id: int
) -> web.Response:
    """``POST .../schedule``: one new slot; the scheduler names it, the reply carries the id."""
    if not profile.schedule_slot_routes:
        return error_reply(404, "Not Found")
    # Our ids are uuid5 of the serial and the list version, so a test run is reproducible.
    unique = uuid.uuid5(uuid.NAMESPACE_URL, f"{charger.sn}:{charger.schedules_version_ms}:new")
    slot_id = f"{site_id}:{charger.sn}:{unique}"
    raw = {**body, "id": slot_id} if isinstance(body, dict) else body
    try:
        slot = check_single_slot(raw)
    except SlotError as exc:
        return _slot_error(exc)
    charger.schedule_slots = [*charger.schedule_slots, slot]
    mark_changed(charger, now)
    return _reply(charger, now, slot_id)


def update(
    charger: Charger, profile: Profile, now: float, body: Any, *, slot_id: str
) -> web.Response:
    """``PATCH .../schedule/<id>``: the full slot, its id included and matching the path."""
    if not profile.schedule_slot_routes:
        return error_reply(404, "Not Found")
    index = next((i for i, s in enumerate(charger.schedule_slots) if s["id"] == slot_id), None)
    if index is None:
        return _not_found(slot_id)
    if not isinstance(body, dict) or body.get("id") != slot_id:
        return error_reply(400, "Invalid schedule slot field id: must match the path", field="id")
    try:
        slot = check_single_slot(body)
    except SlotError as exc:
        return _slot_error(exc)
    slots = list(charger.schedule_slots)
    slots[index] = slot
    charger.schedule_slots = slots
    mark_changed(charger, now)
    return _reply(charger, now, dict(slot))


def delete(charger: Charger, profile: Profile, now: float, *, slot_id: str) -> web.Response:
    """``DELETE .../schedule/<id>``: the utility's OFF_PEAK slot cannot be deleted."""
    if not profile.schedule_slot_routes:
        return error_reply(404, "Not Found")
    found = [slot for slot in charger.schedule_slots if slot["id"] == slot_id]
    if not found:
        return _not_found(slot_id)
    if found[0].get("scheduleType") == "OFF_PEAK":
        return error_reply(400, "OFF_PEAK schedules cannot be deleted; disable it instead")
    charger.schedule_slots = [slot for slot in charger.schedule_slots if slot["id"] != slot_id]
    mark_changed(charger, now)
    return _reply(charger, now, None)
