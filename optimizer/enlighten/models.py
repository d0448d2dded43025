"""Typed views of the Enlighten EV replies, and the parsers that build them.

This is the one place where decoded JSON becomes data the rest of the optimizer can trust. The
cloud is inconsistent across regions and firmware (see ``enlighten-ev-cloud-api.md`` and the
field notes), so the parsers are deliberately two-faced: a reply whose *outer shape* or an
*essential field* is wrong raises :class:`ParseError` (the caller must not act on it), while an
optional field of an unexpected type quietly becomes ``None`` so that one odd value never
hides the rest of a useful reply. Nothing here raises anything but ``ParseError`` for bad input.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Literal, ParamSpec, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from optimizer.enlighten.errors import ParseError

__all__ = [
    "BatteryStatus",
    "ChargeMode",
    "ChargerSession",
    "ChargerStatus",
    "ChargerSummary",
    "ChargingSession",
    "Connector",
    "EnergyUnit",
    "FrozenModel",
    "GreenSetting",
    "LatestPower",
    "LifetimeEnergy",
    "LiveStream",
    "LoginReply",
    "NetworkInterface",
    "ScheduleConfig",
    "ScheduleSlot",
    "Schedules",
    "SessionHistoryPage",
    "Site",
    "SiteStatus",
    "battery_for_self_consumption",
    "parse_battery_status",
    "parse_charge_mode",
    "parse_green_settings",
    "parse_latest_power",
    "parse_lifetime_energy",
    "parse_live_stream",
    "parse_login_reply",
    "parse_network_config",
    "parse_otp_reply",
    "parse_schedules",
    "parse_session_history_page",
    "parse_sites",
    "parse_status",
    "parse_summary",
    "parse_summary_list",
    "session_energy_kwh",
    "status_energy_unit",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_T = TypeVar("_T")

QUARTER_HOUR = timedelta(minutes=15)
ONE_DAY = timedelta(days=1)
USE_BATTERY_SETTING = "USE_BATTERY_FOR_SELF_CONSUMPTION"
_ACTIVE_CONNECTOR_STATES = frozenset({"CHARGING", "FINISHING", "SUSPENDED", "SUSPENDED_EV"})
_EPOCH_MS_THRESHOLD = 1e11  # 1e11 s is the year 5138, 1e11 ms is 1973: anything larger is ms
_WH_THRESHOLD = 200.0  # spec: session e_c above this is Wh, otherwise kWh
_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})
_ZONE_SUFFIX = re.compile(r"^(?P<stamp>[^\[]*)\[(?P<zone>[^\]]*)\]$")
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")
_NUMERIC = re.compile(r"-?\d+(\.\d+)?")


class FrozenModel(BaseModel):
    """Immutable so parsed replies can be shared between tasks without defensive copies."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class ChargeMode(StrEnum):
    """Values are the scheduler's own spellings, so a mode goes into a PUT body unchanged."""

    MANUAL_CHARGING = "MANUAL_CHARGING"
    SCHEDULED_CHARGING = "SCHEDULED_CHARGING"
    GREEN_CHARGING = "GREEN_CHARGING"
    SMART_CHARGING = "SMART_CHARGING"  # "AI optimisation": GREEN's place on ai_optimisation sites

    @property
    def takes_no_amps(self) -> bool:
        """GREEN and SMART are the charger's own automation: it picks the current, so a start
        carries no level, amps are never sent and a held charger is not auto-resumed."""
        return self in (ChargeMode.GREEN_CHARGING, ChargeMode.SMART_CHARGING)


# --- tolerant scalar coercion ------------------------------------------------------------------


def _as_float(value: Any) -> float | None:
    """Numbers arrive as numbers or numeric strings; bools and non-finite values are not data."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _as_int(value: Any) -> int | None:
    """Like :func:`_as_float` but only whole numbers ("32", 32.0), so amps never get rounded."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    number = _as_float(value)
    return int(number) if number is not None and number.is_integer() else None


def _as_bool(value: Any) -> bool | None:
    """The cloud spells flags as true, 1, "1" or "true" depending on the endpoint."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return {0: False, 1: True}.get(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    return None


def _as_str(value: Any) -> str | None:
    """Blank strings carry no information (``connectorStatusReason: ""``), so they become None."""
    return value if isinstance(value, str) and value.strip() else None


def _as_id(value: Any) -> str | None:
    """Identifiers (serials, slot ids, system ids) appear both as strings and as integers."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # beyond the interpreter's int-to-str digit limit
            return None
    text = _as_str(value)
    return text.strip() if text is not None else None


def _pick(
    raw: Mapping[str, Any], keys: Iterable[str], coerce: Callable[[Any], _T | None]
) -> _T | None:
    """The first usable value among alternative spellings of one field."""
    return _coalesce(*(coerce(raw.get(key)) for key in keys))


def _coalesce(*values: _T | None) -> _T | None:
    return next((value for value in values if value is not None), None)


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any] | None:
    return value if isinstance(value, list) else None


def _zone_or_none(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


@functools.lru_cache(maxsize=32)
def _site_zone(name: str) -> ZoneInfo:
    """Bucket arithmetic is meaningless without a real zone, so an unknown name is an error."""
    zone = _zone_or_none(name) if isinstance(name, str) and name else None
    if zone is None:
        raise ParseError(f"unknown timezone {name!r}")
    return zone


def _from_epoch(value: Any) -> datetime | None:
    seconds = _as_float(value)
    if seconds is None:
        return None
    if abs(seconds) >= _EPOCH_MS_THRESHOLD:
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _parse_enlighten_time(value: Any) -> datetime | None:
    """Accept every timestamp spelling seen in replies; return aware UTC or None.

    Java-style ``...Z[UTC]`` zone suffixes, nanosecond fractions, ``+00:00`` offsets, epoch
    seconds and epoch milliseconds all occur, sometimes within one reply.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(value)
    if not isinstance(value, str):
        return None
    stamp, zone = value.strip(), None
    if match := _ZONE_SUFFIX.match(stamp):
        stamp, zone = match["stamp"].strip(), _zone_or_none(match["zone"])
    if _NUMERIC.fullmatch(stamp):
        return _from_epoch(stamp)
    stamp = _LONG_FRACTION.sub(r"\1", stamp)
    if stamp[-1:] in ("Z", "z"):
        stamp = stamp[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(stamp)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone or UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _require_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ParseError(f"{what} is not a list")
    return value


def _require_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(f"{what} is not an object")
    return value


def _reports_as(what: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Backstop for the parsers' contract: the coercers hand pydantic only values of the
    declared types, but should one ever slip through, callers still see only ParseError."""

    def decorate(func: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(func)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return func(*args, **kwargs)
            except ValidationError as err:
                raise ParseError(
                    f"{what} reply has an invalid value: {err.errors()[0]['msg']}"
                ) from err

        return wrapper

    return decorate


# --- sites -------------------------------------------------------------------------------------


class Site(FrozenModel):
    site_id: int
    name: str | None


_SITE_ID_KEYS = ("site_id", "siteId", "system_id", "id")
_SITE_NAME_KEYS = ("name", "title", "site_name", "siteName", "system_name", "displayName")
# The search API (2026 reference section 5) has been seen with each of these wrappers.
_SITE_WRAPPERS = ("sites", "items", "systems")


def _find_site_list(payload: Any) -> list[Any] | None:
    """Discovery endpoints nest the list differently; take the first place one is found."""
    if isinstance(payload, list):
        return payload
    data = payload.get("data") if isinstance(payload, dict) else None
    candidates = [data]
    for holder in (_as_dict(payload), _as_dict(data)):
        candidates.extend(holder.get(key) for key in _SITE_WRAPPERS)
    for candidate in candidates:
        if isinstance(candidate, list):
            return candidate
    return None


@_reports_as("sites")
def parse_sites(payload: Any) -> list[Site]:
    entries = _find_site_list(payload)
    if entries is None:
        raise ParseError(
            "sites reply has no list of sites (data, sites, items or systems, or under data)"
        )
    sites = []
    for index, entry in enumerate(entries):
        raw = entry if isinstance(entry, dict) else {"id": entry}
        site_id = _pick(raw, _SITE_ID_KEYS, _as_int)
        if site_id is None:
            raise ParseError(f"sites reply entry #{index} has no numeric site id")
        sites.append(Site(site_id=site_id, name=_pick(raw, _SITE_NAME_KEYS, _as_str)))
    return sites


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


# --- summary -----------------------------------------------------------------------------------


class NetworkInterface(FrozenModel):
    name: str | None
    ip_address: str | None
    mac_address: str | None
    netmask: str | None
    gateway: str | None
    bootproto: str | None
    connected: bool | None


def _network_entries(text: Any) -> list[Any]:
    """networkConfig is a JSON list of "k=v,k=v" strings, or the same one-per-line as text."""
    if isinstance(text, list):
        return text
    if not isinstance(text, str):
        return []
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            decoded = json.loads(stripped)
        except (ValueError, RecursionError):
            decoded = None
        if isinstance(decoded, list):
            return decoded
    return [line.strip().strip('[]",').strip() for line in stripped.splitlines()]


def _key_values(entry: Any) -> dict[str, Any]:
    if isinstance(entry, dict):
        return entry
    if not isinstance(entry, str):
        return {}
    pairs = (part.split("=", 1) for part in entry.split(",") if "=" in part)
    return {key.strip(): value.strip() for key, value in pairs}


def parse_network_config(text: Any) -> tuple[NetworkInterface, ...]:
    """Informational only, so anything unreadable yields no interfaces rather than an error."""
    interfaces = []
    for entry in _network_entries(text):
        fields = _key_values(entry)
        interface = NetworkInterface(
            name=_pick(fields, ("interface_name", "interface", "name"), _as_str),
            ip_address=_pick(fields, ("ipaddr", "ip_address", "ip"), _as_str),
            mac_address=_pick(fields, ("mac_addr", "mac_address", "mac"), _as_str),
            netmask=_as_str(fields.get("netmask")),
            gateway=_as_str(fields.get("gateway")),
            bootproto=_as_str(fields.get("bootproto")),
            connected=_as_bool(fields.get("connectionStatus")),
        )
        if any(value is not None for value in interface.model_dump().values()):
            interfaces.append(interface)
    return tuple(interfaces)


class ChargerSummary(FrozenModel):
    sn: str
    display_name: str | None
    model_name: str | None
    sku: str | None
    firmware_version: str | None
    processor_board_version: str | None
    min_amps: int | None
    max_amps: int | None
    granularity_amps: int
    max_current: int | None
    operating_voltage: int | None
    supports_use_battery: bool | None
    dlb_enabled: bool | None
    phase_count: int | None
    is_connected: bool | None
    last_reported_at: datetime | None
    timezone: str | None
    reporting_interval_s: int | None
    networks: tuple[NetworkInterface, ...]
    # 2026 reference section 8: the installation (not the phases in use), the lifetime meter.
    phase_mode: int | None = None
    grid_type: int | None = None
    lifetime_consumption_wh: float | None = None
    breaker_rating_amps: int | None = None
    rated_current_amps: int | None = None


def _parse_charger_summary(raw: Any, what: str) -> ChargerSummary:
    summary = _require_dict(raw, what)
    sn = _pick(summary, ("serialNumber", "sn"), _as_id)
    if sn is None:
        raise ParseError(f"{what} has no serialNumber")
    levels = _as_dict(summary.get("chargeLevelDetails"))
    granularity = _as_int(levels.get("granularity"))
    return ChargerSummary(
        sn=sn,
        display_name=_as_str(summary.get("displayName")),
        model_name=_as_str(summary.get("modelName")),
        sku=_as_str(summary.get("sku")),
        firmware_version=_as_str(summary.get("firmwareVersion")),
        processor_board_version=_as_str(summary.get("processorBoardVersion")),
        min_amps=_as_int(levels.get("min")),
        max_amps=_as_int(levels.get("max")),
        granularity_amps=granularity if granularity is not None and granularity > 0 else 1,
        max_current=_as_int(summary.get("maxCurrent")),
        operating_voltage=_as_int(summary.get("operatingVoltage")),
        supports_use_battery=_as_bool(summary.get("supportsUseBattery")),
        dlb_enabled=_as_bool(summary.get("dlbEnabled")),
        phase_count=_as_int(summary.get("phaseCount")),
        is_connected=_as_bool(summary.get("isConnected")),
        last_reported_at=_parse_enlighten_time(summary.get("lastReportedAt")),
        timezone=_as_str(summary.get("timezone")),
        reporting_interval_s=_as_int(summary.get("reportingInterval")),
        networks=parse_network_config(summary.get("networkConfig")),
        phase_mode=_as_int(summary.get("phaseMode")),
        grid_type=_as_int(summary.get("gridType")),
        lifetime_consumption_wh=_as_float(summary.get("lifeTimeConsumption")),
        breaker_rating_amps=_as_int(summary.get("breakerRating")),
        rated_current_amps=_as_int(summary.get("ratedCurrent")),
    )


@_reports_as("summary")
def parse_summary_list(payload: Any) -> list[ChargerSummary]:
    data = payload if isinstance(payload, list) else _as_dict(payload).get("data")
    entries = _require_list(data, "summary list reply data")
    return [
        _parse_charger_summary(raw, f"summary list entry #{index}")
        for index, raw in enumerate(entries)
    ]


@_reports_as("summary")
def parse_summary(payload: Any) -> ChargerSummary:
    data = _require_dict(payload, "summary reply").get("data")
    if isinstance(data, list) and len(data) == 1:  # some deployments wrap the one charger
        data = data[0]
    return _parse_charger_summary(data, "summary reply data")


# --- live stream -------------------------------------------------------------------------------


class LiveStream(FrozenModel):
    accepted: bool
    topics: tuple[str, ...]
    duration_s: int | None


@_reports_as("live stream")
def parse_live_stream(payload: Any) -> LiveStream:
    """The spec's flat reply, the ``data.liveStreamTopicList`` reply, and the web app's 2026
    envelope, whose stop answers ``data: null``: a 2xx whose ``error`` is an empty object is a
    success even without a ``status`` (2026 reference, section 9)."""
    body = _require_dict(payload, "live stream reply")
    merged = {**_as_dict(body.get("data")), **body}
    status = _as_str(merged.get("status"))
    topics = _pick(merged, ("topics", "liveStreamTopicList"), _as_list)
    error = body.get("error")
    enveloped = "error" in body and (error is None or isinstance(error, dict))
    if status is None and topics is None and not enveloped:
        raise ParseError("live stream reply has neither status nor a topic list")
    return LiveStream(
        accepted=status.strip().lower() == "accepted" if status is not None else not error,
        topics=tuple(topic for topic in topics or () if isinstance(topic, str)),
        duration_s=_pick(merged, ("duration_s", "liveStreamDuration"), _as_int),
    )


# --- session history ---------------------------------------------------------------------------


class ChargingSession(FrozenModel):
    id: str
    session_id: int | None
    started_at: datetime
    ended_at: datetime | None
    energy_kwh: float | None
    active_charge_time_s: int | None
    miles_added: float | None
    cost: float | None
    avg_cost_per_kwh: float | None
    cost_state: str | None
    manual_override: bool | None


class SessionHistoryPage(FrozenModel):
    sessions: tuple[ChargingSession, ...]
    has_more: bool
    offset: int
    limit: int


def _parse_charging_session(raw: Any, index: int) -> ChargingSession:
    what = f"session history entry #{index}"
    session = _require_dict(raw, what)
    session_id = _as_int(session.get("sessionId"))
    record_id = _as_id(session.get("id")) or _as_id(session_id)
    started_at = _parse_enlighten_time(session.get("startTime"))
    if record_id is None:
        raise ParseError(f"{what} has neither id nor sessionId")
    if started_at is None:
        raise ParseError(f"{what} has no readable startTime")
    return ChargingSession(
        id=record_id,
        session_id=session_id,
        started_at=started_at,
        ended_at=_parse_enlighten_time(session.get("endTime")),
        energy_kwh=_as_float(session.get("aggEnergyValue")),
        active_charge_time_s=_as_int(session.get("activeChargeTime")),
        miles_added=_as_float(session.get("milesAdded")),
        cost=_as_float(session.get("sessionCost")),
        avg_cost_per_kwh=_as_float(session.get("avgCostPerUnitEnergy")),
        cost_state=_as_str(session.get("sessionCostState")),
        manual_override=_as_bool(session.get("manualOverridden")),
    )


@_reports_as("session history")
def parse_session_history_page(payload: Any) -> SessionHistoryPage:
    data = _as_dict(_require_dict(payload, "session history reply").get("data"))
    result = _require_list(data.get("result"), "session history reply data.result")
    sessions = tuple(_parse_charging_session(raw, index) for index, raw in enumerate(result))
    offset, limit = _as_int(data.get("offset")), _as_int(data.get("limit"))
    return SessionHistoryPage(
        sessions=sessions,
        has_more=_as_bool(data.get("hasMore")) is True,
        offset=offset if offset is not None else 0,
        limit=limit if limit is not None else len(sessions),
    )


# --- lifetime energy ---------------------------------------------------------------------------


class LifetimeEnergy(FrozenModel):
    """Energy per bucket (Wh) for every flow the site reports; ``None`` is a gap, never zero."""

    system_id: int | None
    start_date: date
    interval: timedelta
    timezone: str
    last_report_at: datetime | None
    update_pending: bool
    series: dict[str, tuple[float | None, ...]]

    @property
    def bucket_count(self) -> int:
        return _longest(self.series)

    def bucket_start(self, index: int) -> datetime:
        """Quarter-hours count elapsed time, so a DST day has 92 or 100 of them, not 96.

        Python subtracts two datetimes of one zone by wall clock, so compare or subtract these
        only after ``.astimezone(UTC)``.
        """
        zone = _site_zone(self.timezone)
        if self.interval == ONE_DAY:
            return datetime.combine(self.start_date + index * ONE_DAY, time(), tzinfo=zone)
        return (self._origin_utc() + index * self.interval).astimezone(zone)

    def bucket_end(self, index: int) -> datetime:
        return self.bucket_start(index + 1)

    def values(self, flow: str) -> tuple[float | None, ...]:
        return self.series.get(flow, ())

    def missing(self, flow: str) -> list[int]:
        """Gaps in a reported flow, counting a short array's tail; a flow never sent has none."""
        values = self.values(flow)
        if not values:
            return []
        return [i for i in range(self.bucket_count) if i >= len(values) or values[i] is None]

    def index_at(self, when: datetime) -> int | None:
        if when.tzinfo is None:
            raise ValueError("index_at needs a timezone-aware datetime")
        if self.interval == ONE_DAY:
            local_day = when.astimezone(_site_zone(self.timezone)).date()
            index = (local_day - self.start_date).days
        else:
            index = (when.astimezone(UTC) - self._origin_utc()) // self.interval
        return index if 0 <= index < self.bucket_count else None

    def _origin_utc(self) -> datetime:
        local_midnight = datetime.combine(self.start_date, time(), tzinfo=_site_zone(self.timezone))
        return local_midnight.astimezone(UTC)


def _longest(series: Mapping[str, tuple[float | None, ...]]) -> int:
    return max(map(len, series.values()), default=0)


def _parse_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _energy_series(flow: str, values: list[Any]) -> tuple[float | None, ...]:
    series = []
    for index, value in enumerate(values):
        number = None if value is None else _as_float(value)
        if value is not None and number is None:
            raise ParseError(f"lifetime energy {flow}[{index}] is not a number")
        series.append(number)
    return tuple(series)


def _local_date(when: datetime, zone: ZoneInfo) -> date | None:
    try:
        return when.astimezone(zone).date()
    except (OverflowError, ValueError):
        return None


def _detect_interval(
    start: date, bucket_count: int, last_report: datetime | None, zone: ZoneInfo
) -> timedelta:
    """A daily series has about one bucket per elapsed day; anything much longer is 15-min."""
    end = (_local_date(last_report, zone) if last_report else None) or datetime.now(zone).date()
    return QUARTER_HOUR if bucket_count > (end - start).days + 2 else ONE_DAY


@_reports_as("lifetime energy")
def parse_lifetime_energy(
    payload: Any,
    *,
    timezone: str,
    interval: Literal["auto", "15min", "day"] = "auto",
) -> LifetimeEnergy:
    body = _require_dict(payload, "lifetime energy reply")
    zone = _site_zone(timezone)
    start = _parse_date(body.get("start_date"))
    if start is None:
        raise ParseError("lifetime energy reply has no readable start_date")
    series = {
        flow: _energy_series(flow, values)
        for flow, values in body.items()
        if isinstance(values, list)
    }
    last_report = _parse_enlighten_time(body.get("last_report_date"))
    step = {"15min": QUARTER_HOUR, "day": ONE_DAY}.get(interval)
    if step is None:
        if interval != "auto":
            raise ValueError(f"unknown lifetime energy interval {interval!r}")
        step = _detect_interval(start, _longest(series), last_report, zone)
    energy = LifetimeEnergy(
        system_id=_as_int(body.get("system_id")),
        start_date=start,
        interval=step,
        timezone=timezone,
        last_report_at=last_report,
        update_pending=_as_bool(body.get("update_pending")) is True,
        series=series,
    )
    try:
        energy.bucket_end(energy.bucket_count)
    except (OverflowError, ValueError) as err:
        raise ParseError("lifetime energy start_date puts buckets outside the calendar") from err
    return energy


# --- scheduler: mode, green settings, schedules ------------------------------------------------

# In the order the web app decides the current mode: the first enabled entry wins.
_MODE_KEYS = {
    "smartCharging": ChargeMode.SMART_CHARGING,
    "greenCharging": ChargeMode.GREEN_CHARGING,
    "scheduledCharging": ChargeMode.SCHEDULED_CHARGING,
    "manualCharging": ChargeMode.MANUAL_CHARGING,
}


def _as_charge_mode(value: Any) -> ChargeMode | None:
    name = _as_str(value)
    return ChargeMode.__members__.get(name.strip().upper()) if name else None


@_reports_as("charge mode")
def parse_charge_mode(payload: Any) -> ChargeMode | None:
    """None when no mode is enabled, or when the reply has no ``modes`` at all (the cloud
    sends that briefly, 2026 reference 3): the caller keeps the mode it knew."""
    body = _require_dict(payload, "charge mode reply")
    data = body.get("data")
    if isinstance(data, dict) and "modes" not in data and "modes" not in body:
        return None
    modes = _as_dict(data).get("modes", body.get("modes"))
    modes = _require_dict(modes, "charge mode reply data.modes")
    for key, mode in _MODE_KEYS.items():
        entry = _as_dict(modes.get(key))
        if _as_bool(entry.get("enabled")):
            return _as_charge_mode(entry.get("chargingMode")) or mode
    return None


class GreenSetting(FrozenModel):
    name: str
    enabled: bool | None
    value: Any = None


@_reports_as("green settings")
def parse_green_settings(payload: Any) -> dict[str, GreenSetting]:
    entries = _require_list(
        _require_dict(payload, "green settings reply").get("data"), "green settings reply data"
    )
    settings = {}
    for index, raw in enumerate(entries):
        entry = _require_dict(raw, f"green settings entry #{index}")
        name = _as_str(entry.get("chargerSettingName"))
        if name is None:
            raise ParseError(f"green settings entry #{index} has no chargerSettingName")
        settings[name] = GreenSetting(
            name=name, enabled=_as_bool(entry.get("enabled")), value=entry.get("value")
        )
    return settings


def battery_for_self_consumption(payload: Any) -> bool | None:
    """Whether green mode may draw on the home battery; None if the site has no such toggle."""
    setting = parse_green_settings(payload).get(USE_BATTERY_SETTING)
    return setting.enabled if setting is not None else None


_ALL_DAYS = (1, 2, 3, 4, 5, 6, 7)


class ScheduleSlot(FrozenModel):
    """A slot as the scheduler sends it; aliases are the wire names the PATCH must echo."""

    model_config = ConfigDict(validate_by_name=True)  # merged with FrozenModel's config

    id: str
    start_time: str | None = Field(alias="startTime")
    end_time: str | None = Field(alias="endTime")
    charging_level: int | None = Field(alias="chargingLevel")
    charging_level_amp: int | None = Field(alias="chargingLevelAmp")
    schedule_type: str = Field(alias="scheduleType")
    days: tuple[int, ...]
    remind_time: int | None = Field(alias="remindTime")
    remind_flag: bool | None = Field(alias="remindFlag")
    enabled: bool
    recurring_kind: str | None = Field(alias="recurringKind")
    charge_level_type: str | None = Field(alias="chargeLevelType")
    source_type: str | None = Field(alias="sourceType")
    reminder_time_utc: str | None = Field(alias="reminderTimeUtc")
    serialized_days: Any = Field(default=None, alias="serializedDays")

    def to_wire(self) -> dict[str, Any]:
        """Only known fields go back, since the PATCH replaces the whole slot list (spec 4.5)."""
        wire = self.model_dump(by_alias=True)
        days = self.days or (_ALL_DAYS if self.schedule_type == "OFF_PEAK" else ())
        wire["days"] = list(days)
        return wire


class ScheduleConfig(FrozenModel):
    is_off_peak_eligible: bool | None
    schedule_sync_status: str | None
    is_mode_cancellable: bool | None
    pending_modes_off_grid: bool | None
    pending_schedules_off_grid: bool | None


class Schedules(FrozenModel):
    config: ScheduleConfig
    slots: tuple[ScheduleSlot, ...]


def _parse_days(value: Any) -> tuple[int, ...]:
    days = (_as_int(day) for day in (value if isinstance(value, list) else []))
    return tuple(day for day in days if day is not None and 1 <= day <= 7)


def _parse_slot(raw: Any, index: int) -> ScheduleSlot:
    what = f"schedule slot #{index}"
    slot = _require_dict(raw, what)
    slot_id, schedule_type = _as_id(slot.get("id")), _as_str(slot.get("scheduleType"))
    enabled = _as_bool(slot.get("enabled"))
    if slot_id is None or schedule_type is None or enabled is None:
        raise ParseError(f"{what} lacks a usable id, scheduleType or enabled flag")
    return ScheduleSlot(
        id=slot_id,
        start_time=_as_str(slot.get("startTime")),
        end_time=_as_str(slot.get("endTime")),
        charging_level=_as_int(slot.get("chargingLevel")),
        charging_level_amp=_as_int(slot.get("chargingLevelAmp")),
        schedule_type=schedule_type,
        days=_parse_days(slot.get("days")),
        remind_time=_as_int(slot.get("remindTime")),
        remind_flag=_as_bool(slot.get("remindFlag")),
        enabled=enabled,
        recurring_kind=_as_str(slot.get("recurringKind")),
        charge_level_type=_as_str(slot.get("chargeLevelType")),
        source_type=_as_str(slot.get("sourceType")),
        reminder_time_utc=_as_str(slot.get("reminderTimeUtc")),
        serialized_days=slot.get("serializedDays"),
    )


@_reports_as("schedules")
def parse_schedules(payload: Any) -> Schedules:
    data = _require_dict(_require_dict(payload, "schedules reply").get("data"), "schedules data")
    slots = _require_list(data.get("slots"), "schedules reply data.slots")
    config = _as_dict(data.get("config"))
    return Schedules(
        config=ScheduleConfig(
            is_off_peak_eligible=_as_bool(config.get("isOffPeakEligible")),
            schedule_sync_status=_as_str(config.get("scheduleSyncStatus")),
            is_mode_cancellable=_as_bool(config.get("isModeCancellable")),
            pending_modes_off_grid=_as_bool(config.get("pendingModesOffGrid")),
            pending_schedules_off_grid=_as_bool(config.get("pendingSchedulesOffGrid")),
        ),
        slots=tuple(_parse_slot(raw, index) for index, raw in enumerate(slots)),
    )


# --- login -------------------------------------------------------------------------------------

LoginKind = Literal["authenticated", "mfa_required", "blocked", "invalid"]


class LoginReply(FrozenModel):
    """What a login step achieved; tokens are only set once the account is authenticated."""

    kind: LoginKind
    session_id: str | None = None
    manager_token: str | None = None
    system_id: str | None = None


def _login_reply(
    payload: Any, what: str, decide: Callable[[dict[str, Any]], LoginKind]
) -> LoginReply:
    body = _require_dict(payload, what)
    session_id, token = _as_str(body.get("session_id")), _as_str(body.get("manager_token"))
    system_id = _as_id(body.get("system_id"))
    if session_id and token:
        return LoginReply(
            kind="authenticated", session_id=session_id, manager_token=token, system_id=system_id
        )
    return LoginReply(kind=decide(body), system_id=system_id)


def _login_kind(body: dict[str, Any]) -> LoginKind:
    if _as_bool(body.get("isBlocked")):
        return "blocked"
    if _as_bool(body.get("requires_mfa")) or _as_bool(body.get("success")):
        return "mfa_required"
    return "invalid"


def _otp_kind(body: dict[str, Any]) -> LoginKind:
    if _as_bool(body.get("isBlocked")):
        return "blocked"
    if _as_bool(body.get("isValid")) is False:
        return "invalid"
    # A resend reply ({"success": true}) means a code is still pending.
    return "mfa_required" if _as_bool(body.get("success")) else "invalid"


@_reports_as("login")
def parse_login_reply(payload: Any) -> LoginReply:
    """MFA is signalled by shape (success without tokens) or, on some replies, outright."""
    return _login_reply(payload, "login reply", _login_kind)


@_reports_as("OTP")
def parse_otp_reply(payload: Any) -> LoginReply:
    return _login_reply(payload, "OTP reply", _otp_kind)


# --- site power and home battery (optional sources) --------------------------------------------

# Units the power sample has been seen in; anything else is unreadable rather than guessed.
_POWER_UNITS = {"w": 1.0, "kw": 1000.0}


class LatestPower(FrozenModel):
    """The site's latest power sample (``get_latest_power``); ``watts`` None means no sample.

    It tracks PV production, not net grid power (enlighten-2026.md section 9). The value is
    kept as sent: at night it reads a few watts below zero, which :attr:`pv_w` clamps.
    """

    watts: float | None
    time: datetime | None

    @property
    def pv_w(self) -> float | None:
        """PV production now: microinverters drawing a little at night is no production."""
        return None if self.watts is None else max(0.0, self.watts)


def _power_watts(value: Any, units: Any) -> float | None:
    number = _as_float(value)
    if number is None:
        return None
    unit = _as_str(units)
    factor = _POWER_UNITS.get(unit.strip().lower()) if unit is not None else 1.0
    return number * factor if factor is not None else None


@_reports_as("latest power")
def parse_latest_power(payload: Any) -> LatestPower:
    """``{"latest_power": {"value": 752, "units": "W", "time": <epoch>}}``, or the bare sample,
    either of them also inside a ``data`` wrapper.

    A missing or non-numeric value is "no sample" (None), never zero: a zero would read as a
    real balance of exactly nothing. kW is converted to W; an unknown unit is no sample.
    Numbers may arrive as strings and the time in epoch seconds or milliseconds.
    """
    body = _require_dict(payload, "latest power reply")
    if "latest_power" not in body and "value" not in body and isinstance(body.get("data"), dict):
        body = body["data"]
    if "latest_power" in body:
        sample = body["latest_power"]
        if sample is None:
            return LatestPower(watts=None, time=None)
        sample = _require_dict(sample, "latest power reply latest_power")
    elif "value" in body:
        sample = body
    else:
        raise ParseError("latest power reply has neither latest_power nor value")
    return LatestPower(
        watts=_power_watts(sample.get("value"), sample.get("units")),
        time=_parse_enlighten_time(sample.get("time")),
    )


class BatteryStatus(FrozenModel):
    """The home battery as ``battery_status.json`` reports it; all None: no battery known."""

    soc_pct: float | None
    available_kwh: float | None
    capacity_kwh: float | None
    battery_count: int | None = None

    @property
    def present(self) -> bool:
        """Whether the reply describes a battery at all (a site without one sends nothing)."""
        if self.battery_count is not None:
            return self.battery_count > 0
        return any(v is not None for v in (self.soc_pct, self.available_kwh, self.capacity_kwh))


def _as_percent(value: Any) -> float | None:
    """``"48%"``, ``"48"`` or ``48``; outside 0-100 is not a state of charge."""
    text = value.strip().removesuffix("%") if isinstance(value, str) else value
    number = _as_float(text)
    return number if number is not None and 0.0 <= number <= 100.0 else None


def _sum_known(values: Iterable[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def _battery_fields(raw: Mapping[str, Any]) -> tuple[float | None, float | None, float | None]:
    return (
        _pick(raw, ("current_charge", "soc", "percentFull"), _as_percent),
        _pick(raw, ("available_energy", "availableEnergy"), _as_float),
        _pick(raw, ("max_capacity", "maxCapacity", "capacity"), _as_float),
    )


@_reports_as("battery status")
def parse_battery_status(payload: Any) -> BatteryStatus:
    """Site totals first; where they are missing, the ``storages[]`` entries summed up.

    The state of charge falls back to available/capacity when only energies are given. An
    empty object (or ``data: {}``) is a site without a battery, not an error.
    """
    body = _require_dict(payload, "battery status reply")
    data = body.get("data")
    if isinstance(data, dict):
        body = {**data, **{k: v for k, v in body.items() if k != "data"}}
    soc, available, capacity = _battery_fields(body)
    units = [
        _battery_fields(u) for u in _as_list(body.get("storages")) or () if isinstance(u, dict)
    ]
    if units:
        available = _coalesce(available, _sum_known(u[1] for u in units))
        capacity = _coalesce(capacity, _sum_known(u[2] for u in units))
    if soc is None and available is not None and capacity:
        soc = _as_percent(100.0 * available / capacity)
    count = _pick(body, ("total_battery_count", "active_battery_count"), _as_int)
    return BatteryStatus(
        soc_pct=soc,
        available_kwh=available,
        capacity_kwh=capacity,
        battery_count=count if count is not None else (len(units) if units else None),
    )
