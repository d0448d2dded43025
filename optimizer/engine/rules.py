"""The YAML rule language: policy kinds, their parameters, and shared `when:` conditions.

These models are the language's single definition: the loader validates files against them,
`evopt schema` publishes them as JSON Schema for editors, docs/rules.md describes them, and the
engine evaluates them. Every field says what it means and its unit, because those descriptions
are what an editor shows while someone writes a rule.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from optimizer.config import parse_duration
from optimizer.enlighten.models import ChargeMode
from optimizer.timespec import Days, Months, TimeRanges, parse_clock

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\d+(\.\d+)?\s*(ms|s|m|min|h|d)?$"},
                {"type": "number"},
            ],
            "description": "a duration: seconds, or 30s, 5m, 1h",
        }
    ),
]


def _clock(value: Any) -> str:
    minutes = parse_clock(str(value))
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


ClockTime = Annotated[
    str,
    BeforeValidator(_clock),
    WithJsonSchema({"type": "string", "pattern": r"^\d{1,2}:\d{2}$", "description": "HH:MM"}),
]

_MODE_ALIASES = {
    "manual": ChargeMode.MANUAL_CHARGING,
    "scheduled": ChargeMode.SCHEDULED_CHARGING,
    "green": ChargeMode.GREEN_CHARGING,
}


def _mode(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in _MODE_ALIASES:
        return _MODE_ALIASES[value.strip().lower()]
    return value.strip().upper() if isinstance(value, str) else value


Mode = Annotated[ChargeMode, BeforeValidator(_mode)]


def _names(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


TariffNames = Annotated[
    list[str],
    BeforeValidator(_names),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
            "description": "tariff window name(s) from the config's tariffs.windows",
        }
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class When(_Strict):
    """Conditions that must all hold for a policy to apply. Leave one out to not care."""

    days: Days | None = Field(default=None, description="days of the week (local)")
    time: TimeRanges | None = Field(default=None, description="local time range(s)")
    months: Months | None = Field(default=None, description="months of the year")
    sun: Literal["up", "down"] | None = Field(
        default=None, description="the sun is above (up) or below (down) the horizon"
    )
    sun_above: float | None = Field(
        default=None, ge=-90, le=90, description="sun elevation above this many degrees"
    )
    sun_below: float | None = Field(
        default=None, ge=-90, le=90, description="sun elevation below this many degrees"
    )
    tariff: TariffNames | None = Field(default=None, description="inside one of these windows")
    plugged_in: bool | None = Field(default=None, description="a vehicle is (not) plugged in")
    surplus_above: float | None = Field(default=None, description="solar surplus above W")
    surplus_below: float | None = Field(default=None, description="solar surplus below W")
    battery_soc_above: float | None = Field(
        default=None, ge=0, le=100, description="home battery state of charge above %"
    )
    battery_soc_below: float | None = Field(
        default=None, ge=0, le=100, description="home battery state of charge below %"
    )


class PolicyBase(_Strict):
    """What every policy has."""

    name: str = Field(pattern=NAME_PATTERN, description="unique name, shown in every decision")
    priority: int = Field(
        default=50, ge=0, le=1000, description="higher wins when policies set the same thing"
    )
    enabled: bool = Field(default=True, description="false keeps the policy but ignores it")
    description: str | None = Field(default=None, description="a note for people")
    chargers: list[str] | None = Field(
        default=None, description="serial numbers this applies to (default: every charger)"
    )
    when: When = Field(default_factory=When, description="conditions that must all hold")


class ExcessSolar(PolicyBase):
    """Follow the solar surplus with the charger's amps (evcc's PV mode, for a slow cloud)."""

    kind: Literal["excess_solar"]
    variant: Literal["pv", "min_pv"] = Field(
        default="pv",
        description="pv: solar only; min_pv: never below min_amps while plugged in, plus solar",
    )
    min_amps: int | None = Field(default=None, ge=1, le=80, description="default: charger min")
    max_amps: int | None = Field(default=None, ge=1, le=80, description="default: charger max")
    reserve_w: float = Field(default=0, ge=0, description="W of surplus always left to the house")
    start_threshold_w: float | None = Field(
        default=None,
        ge=0,
        description="start when surplus minus reserve reaches this (default: min_amps power)",
    )
    stop_threshold_w: float | None = Field(
        default=None,
        description="stop when surplus minus reserve falls below this (default: half of "
        "min_amps power, i.e. up to half of the minimum may come from the grid)",
    )
    start_delay: Duration = Field(default=timedelta(minutes=2), description="surplus must last")
    stop_delay: Duration = Field(default=timedelta(minutes=5), description="shortfall must last")
    min_on_time: Duration = Field(default=timedelta(minutes=10), description="shortest session")
    min_off_time: Duration = Field(default=timedelta(minutes=10), description="shortest pause")
    deadband_amps: int = Field(
        default=2, ge=0, le=32, description="ignore level changes smaller than this many A"
    )
    max_changes_per_hour: int = Field(
        default=4,
        ge=0,
        le=60,
        description="cap on level changes (each restarts the session in MANUAL mode)",
    )
    count_battery_charge: bool = Field(
        default=True, description="solar going into the home battery counts as surplus"
    )
    count_battery_discharge: bool = Field(
        default=False, description="power from the home battery counts as surplus"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ExcessSolar:
        if self.min_amps and self.max_amps and self.min_amps > self.max_amps:
            raise ValueError(f"min_amps {self.min_amps} is above max_amps {self.max_amps}")
        start, stop = self.start_threshold_w, self.stop_threshold_w
        if start is not None and stop is not None and stop >= start:
            raise ValueError(
                f"stop_threshold_w {stop:g} must be below start_threshold_w {start:g}, "
                "or the charger would start and stop in a loop"
            )
        return self


class GreenMode(PolicyBase):
    """Hand solar following to the charger's own GREEN mode while the conditions hold."""

    kind: Literal["green_mode"]
    use_battery: bool | None = Field(
        default=None, description="also set green mode's 'use battery for EV charging'"
    )


class Target(_Strict):
    """Energy to deliver by a time: the cheapest 15-minute slots before it are used."""

    energy_kwh: float = Field(gt=0, le=200, description="kWh to add to the car this session")
    by: ClockTime = Field(description="local time it must be done by, e.g. 07:00")


class TariffWindow(PolicyBase):
    """Charge in named time-of-use windows, or in the cheapest slots before a deadline."""

    kind: Literal["tariff_window"]
    windows: TariffNames = Field(min_length=1, description="tariff windows to charge in")
    amps: int | None = Field(default=None, ge=1, le=80, description="default: charger max")
    target: Target | None = Field(
        default=None, description="deliver this much by then, using the cheapest slots"
    )
    solar_first: bool = Field(
        default=True, description="with a target, charge from solar whenever it is available"
    )
    outside: Literal["stop", "hold"] = Field(
        default="stop", description="outside the windows: stop charging, or leave it alone"
    )


class BatteryUse(PolicyBase):
    """Turn green mode's "use battery for EV charging" on or off."""

    kind: Literal["battery_use"]
    use_battery: bool = Field(description="the setting while the conditions hold")


class ChargeModePolicy(PolicyBase):
    """Switch the charger's mode."""

    kind: Literal["charge_mode"]
    mode: Mode = Field(description="MANUAL_CHARGING, SCHEDULED_CHARGING or GREEN_CHARGING")


class ScheduleSync(PolicyBase):
    """Keep the charger's own schedule slots in line with tariff windows, as a fallback."""

    kind: Literal["schedule_sync"]
    windows: TariffNames = Field(min_length=1, description="tariff windows to mirror")
    amps: int | None = Field(default=None, ge=1, le=80, description="default: charger max")
    disable_others: bool = Field(
        default=False,
        description="also disable CUSTOM slots that match no window (never deletes any)",
    )


Policy = Annotated[
    ExcessSolar | GreenMode | TariffWindow | BatteryUse | ChargeModePolicy | ScheduleSync,
    Field(discriminator="kind"),
]
POLICY_KINDS: dict[str, type[PolicyBase]] = {
    "excess_solar": ExcessSolar,
    "green_mode": GreenMode,
    "tariff_window": TariffWindow,
    "battery_use": BatteryUse,
    "charge_mode": ChargeModePolicy,
    "schedule_sync": ScheduleSync,
}

# What each kind may set; the engine arbitrates per target between policies.
TARGETS: dict[str, tuple[str, ...]] = {
    "excess_solar": ("charging", "mode"),
    "green_mode": ("mode", "battery"),
    "tariff_window": ("charging", "mode"),
    "battery_use": ("battery",),
    "charge_mode": ("mode",),
    "schedule_sync": ("schedules",),
}


class RuleFile(_Strict):
    """A rule file: a list of policies (the loader checks names are unique across files)."""

    version: Literal[1] = Field(default=1, description="the rule language version")
    policies: list[Policy] = Field(description="the policies in this file")
