"""Charger status: the wrapped 2026 shape and the flat ``evChargerData`` one, session energy
units decided by the shape."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from optimizer.enlighten.errors import ParseError
from optimizer.enlighten.models.base import (
    _ACTIVE_CONNECTOR_STATES,
    _WH_THRESHOLD,
    ChargeMode,
    FrozenModel,
    _as_bool,
    _as_dict,
    _as_float,
    _as_id,
    _as_int,
    _as_str,
    _coalesce,
    _parse_enlighten_time,
    _pick,
    _reports_as,
    _require_dict,
    _require_list,
)

# --- charger status ----------------------------------------------------------------------------


class Connector(FrozenModel):
    connector_id: int
    status_type: str | None
    status_info: str | None
    status_reason: str | None
    dlb_active: bool | None
    plugged_in: bool | None
    safe_limit_state: int | None


EnergyUnit = Literal["Wh", "kWh"]


class ChargerSession(FrozenModel):
    """The charger's current (or, after unplugging, most recent) session as status reports it.

    ``energy_raw`` is ``e_c`` exactly as sent and ``energy_unit`` the unit it was read in, so a
    later plausibility check (``optimizer.observe.session_energy``) can still reconsider a
    reading whose unit was only guessed (``energy_unit_by`` "threshold", not "shape").
    """

    energy_kwh: float | None = None
    energy_raw: float | None = None
    energy_unit: EnergyUnit | None = None
    energy_unit_by: Literal["shape", "threshold"] | None = None
    started_at: datetime | None = None
    plugged_in_at: datetime | None = None
    plugged_out_at: datetime | None = None
    charge_level_amps: int | None = None
    miles: float | None = None
    cost: float | None = None


class ChargerStatus(FrozenModel):
    sn: str
    name: str | None
    connected: bool | None
    plugged_in: bool | None
    charging: bool | None
    faulted: bool | None
    connector_status: str | None
    connector_status_reason: str | None
    mode_code: int | None
    mode: ChargeMode | None
    dlb_active: bool | None
    safe_limit: bool
    connectors: tuple[Connector, ...]
    session: ChargerSession
    last_reported_at: datetime | None
    offline_at: datetime | None

    @property
    def session_active(self) -> bool:
        """SUSPENDED_EVSE is excluded: the charger holds (e.g. no solar), the car is not done."""
        return self.connector_status in _ACTIVE_CONNECTOR_STATES


class SiteStatus(FrozenModel):
    site_id: str | None
    timezone: str | None
    server_time: datetime | None
    chargers: tuple[ChargerStatus, ...]


_STATUS_MODES = {0: ChargeMode.MANUAL_CHARGING, 1: ChargeMode.GREEN_CHARGING}


def _status_mode(code: int | None, schedule: Any) -> ChargeMode | None:
    """Status ``mode`` 0/1 (no integer exists for SMART or SCHEDULED); without it, an active
    ``sch_d`` "greencharging" window still says GREEN (2026 reference 3, "Fallbacks")."""
    if code is not None and code in _STATUS_MODES:
        return _STATUS_MODES[code]
    sch = _as_dict(schedule)
    info = sch.get("info")
    if _as_int(sch.get("status")) == 1 and any(
        (_as_str(_as_dict(item).get("type")) or "").lower() == "greencharging"
        for item in (info if isinstance(info, list) else [])
    ):
        return ChargeMode.GREEN_CHARGING
    return None


def session_energy_kwh(value: Any, unit: EnergyUnit | None = None) -> float | None:
    """``e_c`` in kWh: in ``unit`` when the reply's shape says it, else by the old rule.

    The ">200 is Wh" rule is only a last resort: in the wrapped shape (always Wh) it reads the
    first 200 Wh of every session as up to 200 kWh (enlighten-2026.md section 1).
    """
    energy = _as_float(value)
    if energy is None:
        return None
    unit = unit or _threshold_unit(energy)
    return energy / 1000 if unit == "Wh" else energy


def _threshold_unit(energy: float) -> EnergyUnit:
    return "Wh" if energy > _WH_THRESHOLD else "kWh"


def status_energy_unit(body: Mapping[str, Any]) -> EnergyUnit | None:
    """The unit of ``e_c`` the status reply's shape implies, None when the shape is unknown.

    Every wrapped (``meta``/``data``/``error``) capture carries Wh-sized values and the old flat
    ``evChargerData`` shape kWh-sized ones (enlighten-2026.md section 1).
    """
    data = body.get("data")
    if isinstance(data, dict) and "chargers" in data and ("meta" in body or "error" in body):
        return "Wh"
    if "evChargerData" in body:
        return "kWh"
    return None


def _parse_connector(raw: Any, index: int) -> Connector | None:
    if not isinstance(raw, dict):
        return None
    return Connector(
        connector_id=_coalesce(_as_int(raw.get("connectorId")), index + 1),
        status_type=_as_str(raw.get("connectorStatusType")),
        status_info=_as_str(raw.get("connectorStatusInfo")),
        status_reason=_as_str(raw.get("connectorStatusReason")),
        dlb_active=_as_bool(raw.get("dlbActive")),
        plugged_in=_as_bool(raw.get("pluggedIn")),
        safe_limit_state=_as_int(raw.get("safeLimitState")),
    )


def _parse_charger_session(raw: Any, unit: EnergyUnit | None = None) -> ChargerSession:
    session = _as_dict(raw)
    energy = _as_float(session.get("e_c"))
    decided = unit or (None if energy is None else _threshold_unit(energy))
    return ChargerSession(
        energy_kwh=session_energy_kwh(energy, decided),
        energy_raw=energy,
        energy_unit=decided if energy is not None else None,
        energy_unit_by=None if energy is None else ("shape" if unit else "threshold"),
        started_at=_pick(session, ("strt_chrg", "start_time"), _parse_enlighten_time),
        plugged_in_at=_parse_enlighten_time(session.get("plg_in_at")),
        plugged_out_at=_parse_enlighten_time(session.get("plg_out_at")),
        charge_level_amps=_as_int(session.get("charge_level")),
        miles=_as_float(session.get("miles")),
        cost=_as_float(session.get("session_cost")),
    )


def _any_flag(values: Iterable[bool | None]) -> bool | None:
    """True if any is True, False if all known ones are False, None if none is known."""
    known = [value for value in values if value is not None]
    return any(known) if known else None


def _parse_charger(raw: Any, index: int, unit: EnergyUnit | None = None) -> ChargerStatus:
    """One parser for both shapes: legacy keeps connector fields at the top level."""
    charger = _require_dict(raw, f"status charger #{index}")
    sn = _as_id(charger.get("sn"))
    if sn is None:
        raise ParseError(f"status charger #{index} has no sn")
    raw_connectors = charger.get("connectors")
    connectors = tuple(
        connector
        for position, item in enumerate(raw_connectors if isinstance(raw_connectors, list) else [])
        if (connector := _parse_connector(item, position)) is not None
    )
    main = connectors[0] if connectors else None
    mode_code = _as_int(charger.get("mode"))
    return ChargerStatus(
        sn=sn,
        name=_pick(charger, ("name", "displayName"), _as_str),
        connected=_as_bool(charger.get("connected")),
        plugged_in=_coalesce(_as_bool(charger.get("pluggedIn")), main and main.plugged_in),
        charging=_as_bool(charger.get("charging")),
        faulted=_as_bool(charger.get("faulted")),
        connector_status=_coalesce(
            main and main.status_type, _as_str(charger.get("connectorStatusType"))
        ),
        connector_status_reason=_coalesce(
            main and main.status_reason, _as_str(charger.get("connectorStatusReason"))
        ),
        mode_code=mode_code,
        mode=_status_mode(mode_code, charger.get("sch_d")),
        dlb_active=_coalesce(
            _as_bool(charger.get("dlbActive")), _any_flag(c.dlb_active for c in connectors)
        ),
        safe_limit=_as_int(charger.get("safeLimitState")) == 1
        or any(c.safe_limit_state == 1 for c in connectors),
        connectors=connectors,
        session=_parse_charger_session(charger.get("session_d"), unit),
        last_reported_at=_pick(charger, ("lst_rpt_at", "lastReportedAt"), _parse_enlighten_time),
        offline_at=_parse_enlighten_time(charger.get("offlineAt")),
    )


@_reports_as("status")
def parse_status(payload: Any) -> SiteStatus:
    body = _require_dict(payload, "status reply")
    data = _as_dict(body.get("data"))
    if "chargers" in data:
        container, chargers = data, data["chargers"]
    elif "evChargerData" in body:
        container, chargers = body, body["evChargerData"]
    elif "evChargerData" in data:
        container, chargers = data, data["evChargerData"]
    else:
        raise ParseError("status reply has neither data.chargers nor evChargerData")
    chargers = _require_list(chargers, "status reply charger list")
    unit = status_energy_unit(body)
    return SiteStatus(
        site_id=_pick(container, ("site", "site_id", "siteId"), _as_id),
        timezone=_pick(container, ("tz", "timezone"), _as_str),
        server_time=_coalesce(
            _parse_enlighten_time(_as_dict(body.get("meta")).get("serverTimeStamp")),
            _parse_enlighten_time(body.get("ts")),
        ),
        chargers=tuple(_parse_charger(raw, index, unit) for index, raw in enumerate(chargers)),
    )
