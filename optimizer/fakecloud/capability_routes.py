"""Feature flags and charger config, in the 2026 reference's shapes (section 8).

Feature flags: site-wide booleans beside one object per serial. Charger config: a POST with a
list of keys reads them (``value``, ``reqValue``, ``status`` 1 settled / 2 pending); a PUT with
``[{"key", "value"}]`` writes, and the write shows as pending (``value`` the old setting,
``reqValue`` the new) for ``CONFIG_SETTLE_S`` of fake time. The charger itself follows a
write at once: the pending window is only what the cloud reports. In the 2024 profile
(``capability_routes=False``) neither route exists (404), as in the first reference.
"""

from __future__ import annotations

from typing import Any

from optimizer.fakecloud.model import Charger, SiteModel
from optimizer.fakecloud.payloads import offset_time

CONFIG_SETTLE_S = 60.0
ENABLED, DISABLED = "enabled", "disabled"
SITE_FLAGS = {
    "evse_charging_mode": True,
    "iqevse_smart_charging": False,
    "evse_phase_switching": True,
    "evse_storm_guard": False,
    "off_peak_schedule": True,
}
JSON = dict[str, Any]


def feature_flags(model: SiteModel, now: float) -> JSON:
    data: JSON = dict(SITE_FLAGS)
    for charger in model.chargers:
        data[charger.sn] = {
            "max_current_config_support": True,
            "evse_charge_level_control": False,
            "phase_config_support": charger.phase_count == 3,
            "dynamic_load_supported": charger.dlb_enabled,
            "evse_authentication": True,
            "iqevse_rfid": True,
            "local_green_charging": False,
            "evse_v2_livestream": False,
            "plug_and_charge": False,
        }
    return {"meta": {"serverTimeStamp": offset_time(now)}, "data": data, "error": {}}


def _on(flag: bool) -> str:
    return ENABLED if flag else DISABLED


def current_values(charger: Charger) -> dict[str, str | None]:
    """The charger's settings as the config reports them (None: unset)."""
    return {
        "sessionAuthentication": _on(charger.session_auth_app),
        "rfidSessionAuthentication": _on(charger.session_auth_rfid),
        "DefaultChargeLevel": None,
        "phase_switch_config": charger.phase_switch_config,
    }


def charger_config(charger: Charger, keys: list[str], now: float) -> JSON:
    values = current_values(charger)
    rows = []
    for key in keys:
        if key not in values:
            continue
        pending = charger.config_pending.get(key)
        if pending is not None and now < pending[1]:
            row = {"key": key, "value": pending[0], "reqValue": values[key], "status": 2}
        else:
            row = {"key": key, "value": values[key], "reqValue": None, "status": 1}
        rows.append(row)
    meta = {"serverTimeStamp": int(now * 1000), "rowCount": len(rows)}
    return {"meta": meta, "data": rows, "error": {}}


def requested_keys(body: Any) -> list[str] | str:
    """The keys of a read body, or what is wrong with it."""
    if not isinstance(body, list) or not body:
        return 'body must be a non-empty list of {"key": ...}'
    keys = [row.get("key") for row in body if isinstance(row, dict)]
    if len(keys) != len(body) or not all(isinstance(k, str) for k in keys):
        return 'every entry must be {"key": "<name>"}'
    return [str(k) for k in keys]


def write_config(charger: Charger, body: Any, now: float) -> str | None:
    """Apply a write body; returns what is wrong with it (nothing applied) or None."""
    if not isinstance(body, list) or not body:
        return 'body must be a non-empty list of {"key", "value"}'
    values = current_values(charger)
    changes: dict[str, Any] = {}
    for row in body:
        key = row.get("key") if isinstance(row, dict) else None
        if key not in values or key == "DefaultChargeLevel":
            return f"unknown or read-only key {key!r}"
        value = row.get("value")
        if key != "phase_switch_config" and value not in (ENABLED, DISABLED):
            return f"{key} must be {ENABLED!r} or {DISABLED!r}"
        changes[key] = value
    for key, value in changes.items():
        charger.config_pending[key] = (values[key], now + CONFIG_SETTLE_S)
        if key == "sessionAuthentication":
            charger.session_auth_app = value == ENABLED
        elif key == "rfidSessionAuthentication":
            charger.session_auth_rfid = value == ENABLED
        else:
            charger.phase_switch_config = value
    return None
