"""Scheduler replies: charge mode, green settings, schedule slots."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from optimizer.enlighten.errors import ParseError
from optimizer.enlighten.models.base import (
    USE_BATTERY_SETTING,
    ChargeMode,
    FrozenModel,
    _as_bool,
    _as_dict,
    _as_id,
    _as_int,
    _as_str,
    _reports_as,
    _require_dict,
    _require_list,
)

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
