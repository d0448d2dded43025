"""The per-charger summary: limits, voltage, phases, network."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from optimizer.enlighten.errors import ParseError
from optimizer.enlighten.models.base import (
    FrozenModel,
    _as_bool,
    _as_dict,
    _as_float,
    _as_id,
    _as_int,
    _as_str,
    _parse_enlighten_time,
    _pick,
    _reports_as,
    _require_dict,
    _require_list,
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
