"""What the fake IQ Gateway answers, built from the fake cloud's site model at one instant.

Each builder returns one endpoint's reply in the shape a real gateway on firmware 7/8 sends
(the shapes of pyenphase's own recorded fixtures; ``tests/fixtures/gateway/`` keeps one file per
reply variant and a test holds these builders to them). The values come from the same
:class:`~optimizer.fakecloud.model.SiteModel` the fake cloud reports from: the gateway says what
flows *now* (PV, the house with the chargers, the grid), the cloud the 15-minute buckets of the
same curves, so the two tell one story.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from optimizer.fakecloud.curves import BUCKET_S
from optimizer.fakecloud.energy import complete_buckets
from optimizer.fakecloud.model import SiteModel

__all__ = [
    "EID_NET",
    "EID_PRODUCTION",
    "Flows",
    "api_v1_production",
    "ensemble_inventory",
    "ensemble_power",
    "ensemble_secctrl",
    "flows_at",
    "info_xml",
    "meters",
    "meters_readings",
    "production_json",
]

JSON = dict[str, Any]

EID_PRODUCTION = 704643328
EID_NET = 704643584
MICROINVERTERS = 16
VOLTAGE = 230.0
FREQUENCY = 50.0
BATTERY_SERIAL = "482312345601"
# Lifetime counters start from a plausible installation's totals, then grow with the model.
BASE_PRODUCED_WH = 9_500_000.0
BASE_CONSUMED_WH = 14_200_000.0


@dataclass(frozen=True)
class Flows:
    """The site's power at one instant (W): PV, the house with the chargers, the battery
    (positive: discharging), the grid (positive: import), and energy counters (Wh)."""

    at: float
    pv_w: float
    consumption_w: float
    battery_w: float
    produced_wh: float
    consumed_wh: float
    produced_today_wh: float
    consumed_today_wh: float

    @property
    def net_w(self) -> float:
        return self.consumption_w - self.pv_w - self.battery_w


def flows_at(model: SiteModel, now: float) -> Flows:
    """The flows at ``now`` (the model synced to it first): PV and house load from the
    curves, every charger's draw by its state; the fake battery rests (the cloud's is static)."""
    model.sync(now)
    pv = model.curves.pv_w(now)
    chargers = sum(model.draw_w(charger, now) for charger in model.chargers)
    consumption = model.curves.load_w(now) + chargers
    start = model.energy_start
    day = _local_midnight(model, now)
    produced = consumed = produced_today = consumed_today = 0.0
    pv_column, load_column = model.curves.buckets_wh(start, complete_buckets(model, now))
    for index, (pv_wh, load_wh) in enumerate(zip(pv_column, load_column, strict=True)):
        produced += pv_wh
        consumed += load_wh
        if start + index * BUCKET_S >= day:
            produced_today += pv_wh
            consumed_today += load_wh
    drawn = sum(
        seg.watts * (min(seg.end, now) - seg.start) / 3600.0
        for charger in model.chargers
        for seg in charger.draw
        if seg.start < now
    )
    return Flows(
        at=now,
        pv_w=pv,
        consumption_w=consumption,
        battery_w=0.0,
        produced_wh=BASE_PRODUCED_WH + produced,
        consumed_wh=BASE_CONSUMED_WH + consumed + drawn,
        produced_today_wh=produced_today,
        consumed_today_wh=consumed_today,
    )


def _local_midnight(model: SiteModel, now: float) -> float:
    local = datetime.fromtimestamp(now, model.tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


# --- unauthenticated -----------------------------------------------------------------------------


def info_xml(*, serial: str, firmware: str, metered: bool, now: float) -> str:
    """``/info``: firmware, serial, part number; read before any authentication."""
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        "<envoy_info>\n"
        f"  <time>{int(now)}</time>\n"
        "  <device>\n"
        f"    <sn>{serial}</sn>\n"
        "    <pn>800-00654-r08</pn>\n"
        f"    <software>{firmware}</software>\n"
        "    <euaid>4c8675</euaid>\n"
        "    <seqnum>0</seqnum>\n"
        "    <apiver>1</apiver>\n"
        f"    <imeter>{'true' if metered else 'false'}</imeter>\n"
        "  </device>\n"
        "  <web-tokens>true</web-tokens>\n"
        "</envoy_info>\n"
    )


# --- meters ------------------------------------------------------------------------------------


def meters(*, consumption_meter: bool) -> list[JSON]:
    """``/ivp/meters``: the production CT, and the net-consumption CT enabled or not."""
    return [
        _meter(EID_PRODUCTION, "production", enabled=True),
        _meter(EID_NET, "net-consumption", enabled=consumption_meter),
    ]


def _meter(eid: int, kind: str, *, enabled: bool) -> JSON:
    return {
        "eid": eid,
        "state": "enabled" if enabled else "disabled",
        "measurementType": kind,
        "phaseMode": "single",
        "phaseCount": 1,
        "meteringStatus": "normal",
        "statusFlags": [],
    }


def meters_readings(flows: Flows, *, consumption_meter: bool) -> list[JSON]:
    """``/ivp/meters/readings``: one entry per CT, eids as in ``/ivp/meters``."""
    net = flows.net_w if consumption_meter else 0.0
    imported = max(0.0, flows.consumed_wh - flows.produced_wh) if consumption_meter else 0.0
    exported = max(0.0, flows.produced_wh - flows.consumed_wh) if consumption_meter else 0.0
    return [
        _reading(EID_PRODUCTION, flows.at, flows.pv_w, flows.produced_wh, 0.0),
        _reading(EID_NET, flows.at, net, imported, exported),
    ]


def _reading(eid: int, at: float, watts: float, delivered: float, received: float) -> JSON:
    one = _channel(eid, at, watts, delivered, received)
    zero = [_channel(eid + i, at, 0.0, 0.0, 0.0) for i in (2, 3)]
    return {**one, "channels": [_channel(eid + 1, at, watts, delivered, received), *zero]}


def _channel(eid: int, at: float, watts: float, delivered: float, received: float) -> JSON:
    current = abs(watts) / VOLTAGE
    return {
        "eid": eid,
        "timestamp": int(at),
        "actEnergyDlvd": round(delivered, 3),
        "actEnergyRcvd": round(received, 3),
        "apparentEnergy": round(delivered + received, 3),
        "reactEnergyLagg": 0.0,
        "reactEnergyLead": 0.0,
        "instantaneousDemand": round(watts, 3),
        "activePower": round(watts, 3),
        "apparentPower": round(abs(watts), 3),
        "reactivePower": 0.0,
        "pwrFactor": 1.0 if watts else 0.0,
        "voltage": VOLTAGE if watts else 0.0,
        "current": round(current, 3),
        "freq": FREQUENCY,
    }


# --- production ----------------------------------------------------------------------------------


def production_json(flows: Flows, *, consumption_meter: bool) -> JSON:
    """``/production.json?details=1``: inverters, the production CT, and both consumption
    segments (``activeCount`` 0 without a consumption CT, as such gateways report)."""
    active = 1 if consumption_meter else 0
    net = flows.net_w if consumption_meter else 0.0
    return {
        "production": [
            {
                "type": "inverters",
                "activeCount": MICROINVERTERS,
                "readingTime": int(flows.at),
                "wNow": round(flows.pv_w),
                "whLifetime": round(flows.produced_wh),
            },
            _eim(
                "production",
                flows,
                flows.pv_w,
                flows.produced_wh,
                flows.produced_today_wh,
                active=1,
            ),
        ],
        "consumption": [
            _eim(
                "total-consumption",
                flows,
                flows.consumption_w if consumption_meter else 0.0,
                flows.consumed_wh if consumption_meter else 0.0,
                flows.consumed_today_wh if consumption_meter else 0.0,
                active=active,
            ),
            _eim("net-consumption", flows, net, 0.0, 0.0, active=active),
        ],
        "storage": [
            {
                "type": "acb",
                "activeCount": 0,
                "readingTime": 0,
                "wNow": 0,
                "whNow": 0,
                "state": "idle",
            }
        ],
    }


def _eim(
    kind: str, flows: Flows, watts: float, lifetime: float, today: float, *, active: int
) -> JSON:
    return {
        "type": "eim",
        "activeCount": active,
        "measurementType": kind,
        "readingTime": int(flows.at),
        "wNow": round(watts, 3),
        "whLifetime": round(lifetime, 3),
        "varhLeadLifetime": 0.0,
        "varhLagLifetime": 0.0,
        "vahLifetime": round(lifetime, 3),
        "rmsCurrent": round(abs(watts) / VOLTAGE, 3),
        "rmsVoltage": VOLTAGE,
        "reactPwr": 0.0,
        "apprntPwr": round(abs(watts), 3),
        "pwrFactor": 1.0,
        "whToday": round(today, 3),
        "whLastSevenDays": round(today, 3),
        "vahToday": round(today, 3),
        "varhLeadToday": 0.0,
        "varhLagToday": 0.0,
    }


def api_v1_production(flows: Flows) -> JSON:
    """``/api/v1/production``: the inverters' totals."""
    return {
        "wattHoursToday": round(flows.produced_today_wh),
        "wattHoursSevenDays": round(flows.produced_today_wh),
        "wattHoursLifetime": round(flows.produced_wh),
        "wattsNow": round(flows.pv_w),
    }


# --- battery (IQ Battery / Encharge) -------------------------------------------------------------


def ensemble_inventory(model: SiteModel, *, battery: bool, now: float) -> list[JSON]:
    """``/ivp/ensemble/inventory``: one IQ Battery, or the empty list of a site without."""
    if not battery:
        return []
    capacity_wh = round(model.battery.capacity_kwh * 1000)
    device = {
        "part_num": "836-01826-r76",
        "serial_num": BATTERY_SERIAL,
        "installed": int(model.energy_start),
        "device_status": ["envoy.global.ok", "prop.done"],
        "last_rpt_date": int(now),
        "admin_state": 6,
        "admin_state_str": "ENCHG_STATE_READY",
        "created_date": int(model.energy_start),
        "img_load_date": int(model.energy_start),
        "img_pnum_running": "3.0.6614_rel/31.13",
        "bmu_fw_version": "3.8.63",
        "communicating": True,
        "sleep_enabled": False,
        "percentFull": round(model.battery.soc_percent),
        "temperature": 21,
        "maxCellTemp": 22,
        "reported_enc_grid_state": "grid-tied",
        "comm_level_sub_ghz": 4,
        "comm_level_2_4_ghz": 4,
        "led_status": 12,
        "dc_switch_off": False,
        "encharge_rev": 3,
        "encharge_capacity": capacity_wh,
        "phase": "ph-a",
        "der_index": 2,
    }
    return [{"type": "ENCHARGE", "devices": [device]}]


def ensemble_secctrl(model: SiteModel) -> JSON:
    """``/ivp/ensemble/secctrl``: the batteries' aggregate charge and reserve."""
    capacity_wh = round(model.battery.capacity_kwh * 1000)
    soc = round(model.battery.soc_percent)
    return {
        "shutdown": False,
        "configured_backup_soc": 20,
        "adjusted_backup_soc": 20,
        "agg_soc": soc,
        "Max_energy": capacity_wh,
        "ENC_agg_soc": soc,
        "ENC_agg_soh": 100,
        "ENC_agg_backup_energy": round(capacity_wh * 0.2),
        "ENC_agg_avail_energy": round(capacity_wh * soc / 100),
        "Enc_commissioned_capacity": capacity_wh,
        "Enc_max_available_capacity": capacity_wh,
        "ACB_agg_soc": 0,
        "ACB_agg_energy": 0,
        "VLS_Limit": 10,
        "soc_rec_enabled": False,
        "soc_recovery_entry": 2,
        "soc_recovery_exit": 10,
        "Commission_in_progress": False,
        "ESS_in_progress": False,
    }


def ensemble_power(model: SiteModel, flows: Flows) -> JSON:
    """``/ivp/ensemble/power``: per battery, milliwatts (positive: discharging). The key
    really ends in a colon on the real gateway."""
    milliwatts = round(flows.battery_w * 1000)
    return {
        "devices:": [
            {
                "serial_num": BATTERY_SERIAL,
                "real_power_mw": milliwatts,
                "apparent_power_mva": milliwatts,
                "soc": round(model.battery.soc_percent),
            }
        ]
    }
