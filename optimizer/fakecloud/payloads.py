"""Response bodies in the cloud's own shapes, built from the model.

Pure functions of (model, profile, now): the HTTP layer decides *whether* to answer, these
decide *what* the answer looks like. Keeping them apart lets later work (control endpoints,
region profiles) reuse the shapes without touching routing or auth.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from optimizer.fakecloud import energy
from optimizer.fakecloud.curves import BUCKET_S
from optimizer.fakecloud.history import PastSession
from optimizer.fakecloud.model import REPORT_INTERVAL_S, Charger, SiteModel
from optimizer.fakecloud.profile import Profile
from optimizer.fakecloud.schedule_state import current_token, sync_status

JSON = dict[str, Any]
LIVE_STREAM_S = 900
MILES_PER_KWH = 4.03


def cloud_time(epoch: float | None, *, ms: bool = True) -> str | None:
    """``2025-10-24T23:57:05.145Z[UTC]``: the Java-style zoned timestamp the EV services use."""
    if epoch is None:
        return None
    dt = datetime.fromtimestamp(epoch, UTC)
    if ms:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z[UTC]"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ[UTC]")


def offset_time(epoch: float) -> str:
    """``2025-01-01T00:00:00.000+00:00``: the scheduler service's timestamp style."""
    dt = datetime.fromtimestamp(epoch, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+00:00"


def _ms(epoch: float | None) -> int | None:
    return None if epoch is None else round(epoch * 1000)


def session_e_c(energy_wh: float) -> float:
    """Session energy as the first reference had it: Wh once above 200 Wh, kWh below."""
    if energy_wh > 200:
        return round(energy_wh, 2)
    return round(energy_wh / 1000.0, 3)


def status_e_c(energy_wh: float, profile: Profile, *, flat: bool) -> float:
    """``e_c`` as the profile's cloud sends it: in 2026 the wrapped shape is Wh from the first
    watt-hour and the flat shape kWh (enlighten-2026.md section 1)."""
    if profile.session_energy_units == "threshold":
        return session_e_c(energy_wh)
    return round(energy_wh / 1000.0, 3) if flat else round(energy_wh, 2)


def glitched_e_c(e_c: float, glitch: str | None, *, flat: bool) -> Any:
    """One bad reading (``model.E_C_GLITCHES``) in place of ``e_c``; unchanged without one."""
    match glitch:
        case "unit_flip":
            return round(e_c * 1000.0, 2) if flat else round(e_c / 1000.0, 3)
        case "spike":
            return round(e_c + (250.0 if flat else 250_000.0), 3)
        case "decrease":
            return round(e_c / 2, 3)
        case "garbage":
            return "NaN"
    return e_c


# --- discovery ---------------------------------------------------------------------------------


def sites_evse_controller(models: Sequence[SiteModel]) -> JSON:
    """Discovery lists the sites of the session's account only (``sites.SiteRegistry.of``)."""
    return {"data": [{"site_id": m.site_id, "name": m.name} for m in models]}


def sites_api_v1(models: Sequence[SiteModel]) -> JSON:
    return {"sites": [{"siteId": m.site_id, "siteName": m.name} for m in models]}


def sites_json(models: Sequence[SiteModel]) -> list[JSON]:
    return [{"system_id": m.site_id, "system_name": m.name} for m in models]


# --- status ------------------------------------------------------------------------------------


def _charge_level(model: SiteModel, charger: Charger, now: float) -> int:
    watts = model.draw_w(charger, now)
    if watts > 0:
        return round(watts / charger.voltage)
    return charger.level


def charger_status(
    model: SiteModel,
    charger: Charger,
    now: float,
    profile: Profile | None = None,
    glitch: str | None = None,
) -> JSON:
    """One charger of the wrapped status: its state now, its energy as of its last report
    (``lst_rpt_at``), so energy and report time always agree as a real charger's do."""
    profile = profile or Profile()
    status_type, reason = model.connector_status(charger, now)
    drawing = model.draw_w(charger, now) > 0
    reported = model.reported_at(charger, now)
    energy_wh = model.energy_at(charger, reported, now)
    kwh = energy_wh / 1000.0
    level = _charge_level(model, charger, now) if profile.charge_level_reported else None
    e_c = glitched_e_c(status_e_c(energy_wh, profile, flat=False), glitch, flat=False)
    return {
        "smartEV": {"hasToken": False, "hasEVDetails": False},
        "evManufacturerName": charger.ev_manufacturer,
        "offGrid": "ON_GRID",
        "sn": charger.sn,
        "name": charger.name,
        "lst_rpt_at": cloud_time(reported),
        "offlineAt": cloud_time(model.energy_start + 2 * 86400 + 3 * 3600),
        "connected": charger.connected,
        "auth_token": None,
        "mode": charger.mode,
        "charging": drawing,
        "pluggedIn": charger.plugged_in,
        "faulted": charger.faulted,
        "commissioned": 1,
        "isEVDetailsSet": True,
        "sch_d": {
            "status": 1 if charger.scheduler_mode == "SCHEDULED_CHARGING" else 0,
            "info": [],
        },
        "session_d": {
            "plg_in_at": cloud_time(charger.plugged_in_at),
            "strt_chrg": _ms(charger.charge_started_at),
            "plg_out_at": cloud_time(charger.plugged_out_at),
            "e_c": e_c,
            "miles": round(kwh * MILES_PER_KWH, 2),
            "session_cost": None,
            "auth_status": -1,
            "auth_type": None,
            "auth_id": None,
            "charge_level": level,
        },
        "connectors": [
            {
                "connectorId": 1,
                "connectorStatusType": status_type,
                "connectorStatusInfo": "EVConnected" if charger.plugged_in else "EVDisconnected",
                "connectorStatusReason": reason,
                "dlbActive": charger.dlb_active,
                "safeLimitState": charger.safe_limit_state,
                "pluggedIn": charger.plugged_in,
            }
        ],
    }


Glitches = dict[str, str]


def status_nested(
    model: SiteModel, now: float, profile: Profile | None = None, glitches: Glitches | None = None
) -> JSON:
    """``glitches``: a bad ``e_c`` per charger serial for this one reply."""
    chargers = [
        charger_status(model, c, now, profile, (glitches or {}).get(c.sn)) for c in model.chargers
    ]
    return {
        "meta": {"serverTimeStamp": _ms(now)},
        "data": {"site": str(model.site_id), "tz": model.timezone, "chargers": chargers},
        "error": {},
    }


def status_legacy(
    model: SiteModel, now: float, profile: Profile | None = None, glitches: Glitches | None = None
) -> JSON:
    """The older flat shape: no connectors, no DLB, ``start_time`` in epoch seconds."""
    profile = profile or Profile()
    rows = []
    for charger in model.chargers:
        status_type, _ = model.connector_status(charger, now)
        start = charger.charge_started_at
        reported = model.reported_at(charger, now)
        e_c = status_e_c(model.energy_at(charger, reported, now), profile, flat=True)
        rows.append(
            {
                "sn": charger.sn,
                "name": charger.name,
                "connected": charger.connected,
                "pluggedIn": charger.plugged_in,
                "charging": model.draw_w(charger, now) > 0,
                "faulted": charger.faulted,
                "connectorStatusType": status_type,
                "session_d": {
                    "e_c": glitched_e_c(e_c, (glitches or {}).get(charger.sn), flat=True),
                    "start_time": None if start is None else int(start),
                },
            }
        )
    return {"evChargerData": rows}


# --- summary -----------------------------------------------------------------------------------

_NETWORK_CONFIG = (
    '[\n"netmask=255.255.255.0,mac_addr=00:11:22:33:44:55,interface_name=eth0,'
    'connectionStatus=0,ipaddr=192.0.2.10,bootproto=dhcp,gateway=192.0.2.1",\n'
    '"netmask=255.255.255.0,mac_addr=00:11:22:33:44:66,interface_name=mlan0,'
    'connectionStatus=1,ipaddr=192.0.2.11,bootproto=dhcp,gateway=192.0.2.1"\n]'
)


def charger_summary(model: SiteModel, charger: Charger, now: float) -> JSON:
    """The per-charger summary v2 object (spec 2.2); numbers arrive as strings where the real
    cloud sends strings (chargeLevelDetails, operatingVoltage, ratedCurrent)."""
    created = cloud_time(model.energy_start)
    return {
        "lastReportedAt": cloud_time(now // REPORT_INTERVAL_S * REPORT_INTERVAL_S),
        "supportsUseBattery": charger.supports_use_battery,
        "chargeLevelDetails": {
            "min": str(charger.min_amps),
            "max": str(charger.max_amps),
            "granularity": str(charger.granularity),
            "defaultChargeLevel": "disabled",
        },
        "displayName": charger.name,
        "timezone": model.timezone,
        "warrantyDueDate": "2030-01-01T00:00:00.000000000Z[UTC]",
        "isConnected": charger.connected,
        "wifiConfig": "connectionStatus=1, wifiMode=client, SSID=ExampleSSID, status=connected",
        "hoControl": True,
        "processorBoardVersion": "2.0.713.0",
        "activeConnection": "wifi",
        "operatingVoltage": str(charger.voltage),
        "defaultRoute": "interface=mlan0, ip_address=192.0.2.11",
        "wiringConfiguration": {"L1": "L1"},
        "dlbEnabled": 1 if charger.dlb_enabled else 0,
        "systemVersion": charger.firmware_version,
        "createdAt": created,
        "maxCurrent": charger.max_amps,
        "warrantyStartDate": created,
        "warrantyPeriod": 5,
        "bootloaderVersion": "2024.04",
        "gridType": 2,
        "hoControlScope": [],
        "sku": "IQ-EVSE-EU-3032-0105-1300",
        "firmwareVersion": charger.firmware_version,
        "cellularConfig": "signalStrength=0, status=disconnected, network=, info=",
        "applicationVersion": "25.37.1.5",
        "reportingInterval": REPORT_INTERVAL_S,
        "serialNumber": charger.sn,
        "commissioningStatus": 1,
        "phaseMode": 1,
        "gatewayConnectivityDetails": [
            {
                "gwSerialNum": "GW0000000000",
                "gwConnStatus": 0,
                "gwConnFailureReason": 0,
                "lastConnTime": _ms(now // REPORT_INTERVAL_S * REPORT_INTERVAL_S),
            }
        ],
        "rmaDetails": None,
        "networkConfig": _NETWORK_CONFIG,
        "breakerRating": charger.max_amps,
        "modelName": charger.model_name,
        "ratedCurrent": str(charger.max_amps),
        "isLocallyConnected": True,
        "kernelVersion": "6.6.23-lts-next-gb2f1b3288874",
        "siteId": model.site_id,
        "powerBoardVersion": "25.28.9.0",
        "partNumber": "865-02030 09",
        "isRetired": False,
        "functionalValDetails": {"lastUpdatedTimestamp": _ms(model.energy_start), "state": 1},
        "status": "NORMAL",
        "phaseCount": charger.phase_count,
        "lifeTimeConsumption": round(lifetime_wh(charger, now), 2),
    }


def lifetime_wh(charger: Charger, now: float) -> float:
    """Everything the charger delivered up to ``now`` (summary ``lifeTimeConsumption``, Wh)."""
    return sum(
        seg.watts * (min(seg.end, now) - seg.start) / 3600.0
        for seg in charger.draw
        if seg.start < now
    )


def summary_list(model: SiteModel, now: float) -> JSON:
    """The list endpoint; ``operatingVoltage`` is a number here, as in the spec's list sample."""
    items = []
    for charger in model.chargers:
        item = charger_summary(model, charger, now)
        item["operatingVoltage"] = charger.voltage
        items.append(item)
    return {"meta": {"serverTimeStamp": _ms(now)}, "data": items, "error": {}}


def summary_one(model: SiteModel, charger: Charger, now: float) -> JSON:
    return {
        "meta": {"serverTimeStamp": _ms(now)},
        "data": charger_summary(model, charger, now),
        "error": {},
    }


# --- live stream -------------------------------------------------------------------------------


def live_stream_start(model: SiteModel, profile: Profile, now: float) -> JSON:
    topics = [f"v1/evse/prod/live-stream/{c.sn}" for c in model.chargers]
    if profile.live_stream_shape == "wrapped":
        return {
            "meta": {"serverTimeStamp": _ms(now)},
            "data": {"liveStreamTopicList": topics, "liveStreamDuration": LIVE_STREAM_S},
            "error": {},
        }
    if profile.live_stream_shape == "data":
        return {
            "data": {
                "liveStreamTopicList": [f"v1/evse/prod/live-stream/{c.sn}" for c in model.chargers],
                "liveStreamDuration": LIVE_STREAM_S,
            }
        }
    return {
        "status": "accepted",
        "topics": [f"evse/{c.sn}/status" for c in model.chargers],
        "duration_s": LIVE_STREAM_S,
    }


def live_stream_stop(profile: Profile, now: float) -> JSON:
    """The web app's 2026 stop reply has no ``status`` and ``data: null``; older: accepted."""
    if profile.live_stream_shape == "wrapped":
        return {"meta": {"serverTimeStamp": _ms(now)}, "data": None, "error": {}}
    return {"status": "accepted"}


# --- session history ---------------------------------------------------------------------------


def session_item(charger: Charger, session: PastSession) -> JSON:
    return {
        "id": f"{charger.serial_digits}:{session.session_id}",
        "sessionId": session.session_id,
        "startTime": cloud_time(session.start),
        "endTime": cloud_time(session.end),
        "authType": None,
        "authIdentifier": None,
        "authToken": None,
        "aggEnergyValue": session.energy_kwh,
        "activeChargeTime": int(session.active_s),
        "milesAdded": round(session.energy_kwh * MILES_PER_KWH, 1),
        "sessionCost": round(session.energy_kwh * session.cost_per_kwh, 2),
        "costCalculated": True,
        "manualOverridden": session.manual_overridden,
        "avgCostPerUnitEnergy": session.cost_per_kwh,
        "sessionCostState": "COST_CALCULATED",
        "chargeProfileStackLevel": 4,
    }


def session_history(
    charger: Charger,
    page: list[PastSession],
    *,
    has_more: bool,
    start_date: str,
    end_date: str,
    offset: int,
    limit: int,
    now: float,
) -> JSON:
    stamp = datetime.fromtimestamp(now, UTC)
    return {
        "source": "evse",
        "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond:06d}000Z",
        "data": {
            "result": [session_item(charger, s) for s in page],
            "hasMore": has_more,
            "startDate": start_date,
            "endDate": end_date,
            "offset": offset,
            "limit": limit,
        },
    }


# --- energy ------------------------------------------------------------------------------------


def lifetime_energy(model: SiteModel, profile: Profile, now: float) -> JSON:
    count = energy.complete_buckets(model, now)
    start_day = datetime.fromtimestamp(model.energy_start, model.tz).date()
    body: JSON = {
        "system_id": model.site_id,
        "start_date": start_day.isoformat(),
        "last_report_date": int(model.energy_start + count * BUCKET_S),
        "update_pending": profile.update_pending,
    }
    body.update(energy.series(model, model.energy_start, count, now))
    return body


def today(model: SiteModel, now: float) -> JSON:
    """The current local day's quarter-hour buckets; buckets not yet complete are null."""
    day = datetime.fromtimestamp(now, model.tz).date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=model.tz).timestamp()
    nxt = day + timedelta(days=1)
    next_midnight = datetime(nxt.year, nxt.month, nxt.day, tzinfo=model.tz).timestamp()
    count = round((next_midnight - midnight) / BUCKET_S)
    body: JSON = {
        "system_id": model.site_id,
        "date": day.isoformat(),
        "start_at": int(midnight),
        "interval_length": BUCKET_S,
        "last_report_date": int(
            midnight + max(0, math.floor((now - midnight) / BUCKET_S)) * BUCKET_S
        ),
    }
    body.update(energy.series(model, midnight, count, now))
    return body


def latest_power(model: SiteModel, now: float) -> JSON:
    """Production now; at night microinverters draw a few watts, hence a small negative."""
    watts = model.curves.pv_w(now)
    value = round(watts) if watts > 0 else -30  # 2026: about -30 W at night
    return {"latest_power": {"value": value, "units": "W", "precision": 0, "time": int(now)}}


def battery_status(model: SiteModel) -> JSON:
    battery = model.battery
    available = round(battery.capacity_kwh * battery.soc_percent / 100.0, 2)
    charge = f"{round(battery.soc_percent)}%"
    power_kw = round(battery.max_power_w / 1000.0, 2)
    return {
        "current_charge": charge,
        "available_energy": available,
        "max_capacity": battery.capacity_kwh,
        "available_power": power_kw,
        "max_power": power_kw,
        "total_battery_count": 1,
        "active_battery_count": 1,
        "storages": [
            {
                "serial_number": "BT000000000001",
                "current_charge": charge,
                "available_energy": available,
                "max_capacity": battery.capacity_kwh,
                "status": "normal",
            }
        ],
    }


# --- scheduler ---------------------------------------------------------------------------------

_MODE_KEYS = {
    "MANUAL_CHARGING": "manualCharging",
    "SCHEDULED_CHARGING": "scheduledCharging",
    "GREEN_CHARGING": "greenCharging",
}


def preference(charger: Charger) -> JSON:
    modes: JSON = {}
    for mode, key in _MODE_KEYS.items():
        if charger.scheduler_mode == mode:
            modes[key] = {"enabled": True, "chargingMode": mode}
        else:
            modes[key] = {"enabled": False}
    return {"data": {"modes": modes}}


def green_settings(charger: Charger, now: float) -> JSON:
    return {
        "meta": {"serverTimeStamp": offset_time(now), "rowCount": 1},
        "data": [
            {
                "chargerSettingName": "USE_BATTERY_FOR_SELF_CONSUMPTION",
                "enabled": charger.green_use_battery,
                "value": None,
            }
        ],
        "error": {},
    }


def schedules(charger: Charger, now: float) -> JSON:
    """Spec 4.4; ``serverTimeStamp`` is the token a full-list PATCH echoes (schedule_state)."""
    return {
        "meta": {"serverTimeStamp": current_token(charger, now)},
        "data": {
            "config": {
                "isOffPeakEligible": True,
                "scheduleSyncStatus": sync_status(charger, now),
                "isModeCancellable": True,
                "pendingModesOffGrid": False,
                "pendingSchedulesOffGrid": False,
            },
            "slots": [dict(slot) for slot in charger.schedule_slots],
        },
        "error": {},
    }


def parse_cloud_date(text: str) -> date:
    """``DD-MM-YYYY`` as session history takes it; ValueError otherwise."""
    return datetime.strptime(text, "%d-%m-%Y").date()


def format_cloud_date(day: date) -> str:
    return day.strftime("%d-%m-%Y")


# --- writes ------------------------------------------------------------------------------------


def iso_z(epoch: float) -> str:
    """``2025-01-15T12:34:56.000Z``: the timestamp style of the trigger_message reply."""
    dt = datetime.fromtimestamp(epoch, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def start_accepted(level: int | None) -> JSON:
    """Spec 3.1 reply; ``chargingLevel`` echoes the level taken from the request, else null."""
    return {"status": "accepted", "chargingLevel": level}


def trigger_accepted(message: str, now: float, tracking_id: str) -> JSON:
    return {
        "status": "accepted",
        "message": message,
        "details": {"initiatedAt": iso_z(now), "trackingId": tracking_id},
    }


def green_settings_written(now: float) -> JSON:
    """Spec 4.3 PUT reply: an envelope wrapping an envelope, ``data`` null."""
    stamp = {"serverTimeStamp": offset_time(now)}
    return {"meta": stamp, "data": {"meta": dict(stamp), "data": None, "error": {}}, "error": {}}
