"""The charge-mode preference route as the 2026 scheduler answers it (reference section 3).

GET: the ``meta/data/error`` body with ``data.config`` (battery profile, sync status, storm)
and ``data.modes``, where SMART ("AI optimisation") takes GREEN's place on a site whose
battery profile is ``ai_optimisation``. PUT, in the 2026 profile: the current mode answers 400
(the write is still counted, so a test sees a client that sent one); SCHEDULED with no enabled
slot answers 400 ``iqevc_sch_10031`` and changes nothing; a mode the site does not offer is a
400; and ``Profile.mode_put_400_applied`` makes a PUT answer 400 although it was applied.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from optimizer.fakecloud.model import Charger, ChargerStateError, SiteModel
from optimizer.fakecloud.profile import Profile
from optimizer.fakecloud.responses import json_reply

__all__ = ["AI_PROFILE", "offered_modes", "preference_2026", "put_mode"]

JSON = dict[str, Any]
AI_PROFILE = "ai_optimisation"

_KEYS = {
    "SMART_CHARGING": "smartCharging",
    "GREEN_CHARGING": "greenCharging",
    "SCHEDULED_CHARGING": "scheduledCharging",
    "MANUAL_CHARGING": "manualCharging",
}


def offered_modes(site: SiteModel) -> tuple[str, ...]:
    """SMART replaces GREEN under AI optimisation; the others are always there."""
    solar = "SMART_CHARGING" if site.battery_profile == AI_PROFILE else "GREEN_CHARGING"
    return (solar, "SCHEDULED_CHARGING", "MANUAL_CHARGING")


def _stamp(now: float) -> str:
    """The scheduler's ISO timestamp with an offset (reference section 0)."""
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")


def preference_2026(site: SiteModel, charger: Charger, now: float) -> JSON:
    enabled_slots = sum(1 for slot in charger.schedule_slots if slot.get("enabled"))
    modes: JSON = {}
    for mode in offered_modes(site):
        entry: JSON = {
            "chargingMode": mode,
            "enabled": charger.scheduler_mode == mode,
            "isDisabledByStorm": site.storm_active and mode != "MANUAL_CHARGING",
        }
        if mode == "SMART_CHARGING":
            entry |= {"showSettings": False, "isHidden": False, "goalsEnabled": 0}
        if mode == "SCHEDULED_CHARGING":
            entry["schedulesEnabled"] = enabled_slots
        modes[_KEYS[mode]] = entry
    return {
        "meta": {"serverTimeStamp": _stamp(now)},
        "data": {
            "config": {
                "profile": site.battery_profile,
                "modeSyncStatus": "synced",
                "stormActive": site.storm_active,
                "isModeCancellable": True,
                "pendingModesOffGrid": False,
                "pendingSchedulesOffGrid": False,
            },
            "modes": modes,
        },
        "error": {},
    }


def error_2026(now: float, status: int, message: str, code: str | None = None) -> web.Response:
    """The 2026 error body: ``meta``, ``data: null`` and ``error`` with the cloud's words."""
    error: JSON = {"displayMessage": message, "code": str(status)}
    if code is not None:
        error["errorMessageCode"] = code
    body = {"meta": {"serverTimeStamp": int(now * 1000)}, "data": None, "error": error}
    return json_reply(body, status=status)


def put_mode(
    site: SiteModel, charger: Charger, now: float, mode: str, profile: Profile
) -> web.Response:
    """The 2026 PUT; the caller answers the older profile's way when ``preference_2026`` is off."""
    if mode not in offered_modes(site):
        return error_2026(now, 400, f"Invalid charging mode: {mode}", "iqevc_sch_10001")
    if mode == charger.scheduler_mode:
        charger.mode_writes.unchanged += 1
        return error_2026(now, 400, "Charging mode is already set", "iqevc_sch_10002")
    if mode == "SCHEDULED_CHARGING" and not any(s.get("enabled") for s in charger.schedule_slots):
        return error_2026(
            now, 400, "No Schedules enabled for Scheduled Charging", "iqevc_sch_10031"
        )
    try:
        site.write_scheduler_mode(charger.sn, now, mode)
    except ChargerStateError as exc:
        return error_2026(now, exc.status, str(exc), exc.code)
    if profile.mode_put_400_applied:
        return error_2026(now, 400, "Bad Request")
    return json_reply(preference_2026(site, charger, now))
