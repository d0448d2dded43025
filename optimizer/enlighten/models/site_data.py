"""Optional site sources: latest PV power and the home battery."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from optimizer.enlighten.errors import ParseError
from optimizer.enlighten.models.base import (
    FrozenModel,
    _as_float,
    _as_int,
    _as_list,
    _as_str,
    _coalesce,
    _parse_enlighten_time,
    _pick,
    _reports_as,
    _require_dict,
)

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
