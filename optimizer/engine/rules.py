"""The YAML rule language: policy kinds, their parameters, and shared `when:` conditions.

These models are the language's single definition: the loader validates files against them,
`evopt schema` publishes them as JSON Schema for editors, docs/rules.md describes them, and the
engine evaluates them. Every field says what it means and its unit, because those descriptions
are what an editor shows while someone writes a rule.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from optimizer.config import parse_duration
from optimizer.enlighten.models import ChargeMode
from optimizer.timespec import Days, Months, TimeRanges, parse_clock

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_TITLE = "evopt rule file"

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


def _duration_text(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _duration(default: timedelta, description: str) -> Any:
    """A duration field whose schema default reads like YAML (``2m``), not ISO 8601 (``PT2M``)."""
    return Field(
        default=default,
        description=description,
        json_schema_extra={"default": _duration_text(default)},
    )


def _clock(value: Any) -> str:
    """``"07:30"`` -> ``"07:30"``.

    YAML 1.1 reads an unquoted ``7:30`` or ``23:00`` as a base-60 number (450, 1380): that
    number is the minutes after midnight, so it is taken back as a time rather than refused.
    Numbers below 60 cannot come from ``H:MM`` and are refused, so ``by: 7`` is not 00:07.
    """
    if isinstance(value, int) and not isinstance(value, bool) and 60 <= value <= 24 * 60:
        minutes = value
    else:
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
    "smart": ChargeMode.SMART_CHARGING,
}


def _mode(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in _MODE_ALIASES:
        return _MODE_ALIASES[value.strip().lower()]
    return value.strip().upper() if isinstance(value, str) else value


_MODE_SCHEMA: dict[str, Any] = {
    "enum": [*(m.value for m in ChargeMode), *_MODE_ALIASES],
    "description": "MANUAL_CHARGING, SCHEDULED_CHARGING, GREEN_CHARGING or SMART_CHARGING "
    "(or manual, scheduled, green, smart)",
}
Mode = Annotated[ChargeMode, BeforeValidator(_mode), WithJsonSchema(_MODE_SCHEMA)]
Modes = Annotated[
    list[Mode],
    BeforeValidator(lambda value: [value] if isinstance(value, str) else value),
    WithJsonSchema({"anyOf": [_MODE_SCHEMA, {"type": "array", "items": _MODE_SCHEMA}]}),
]


def _text(item: Any) -> Any:
    return str(item) if isinstance(item, int) and not isinstance(item, bool) else item


def _names(value: Any) -> Any:
    """One name or a list; a number becomes text (YAML reads a serial number as an integer)."""
    if isinstance(value, list):
        return [_text(item) for item in value]
    if isinstance(value, str | int) and not isinstance(value, bool):
        return [_text(value)]
    return value


SerialNumbers = Annotated[
    list[str],
    BeforeValidator(_names),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": ["string", "integer"]},
                {"type": "array", "items": {"type": ["string", "integer"]}},
            ],
            "description": "charger serial number(s)",
        }
    ),
]


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
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# Pairs of conditions (lower bound, upper bound) that can never both hold when lower >= upper.
BOUND_PAIRS: tuple[tuple[str, str], ...] = (
    ("sun_above", "sun_below"),
    ("surplus_above", "surplus_below"),
    ("battery_soc_above", "battery_soc_below"),
)


class When(_Strict):
    """Conditions that must all hold for a policy to apply. Leave one out to not care."""

    days: Days | None = Field(default=None, description="days of the week (site's local time)")
    time: TimeRanges | None = Field(
        default=None, description="local time range(s); one crossing midnight is allowed"
    )
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
    tariff: TariffNames | None = Field(
        default=None, description="inside one of these tariff windows (names from the config)"
    )
    plugged_in: bool | None = Field(
        default=None, description="true: a vehicle is plugged in; false: none is"
    )
    surplus_above: float | None = Field(
        default=None, description="solar surplus above this many W (the car's own draw not counted)"
    )
    surplus_below: float | None = Field(
        default=None, description="solar surplus below this many W (the car's own draw not counted)"
    )
    battery_soc_above: float | None = Field(
        default=None, ge=0, le=100, description="home battery state of charge above this %"
    )
    battery_soc_below: float | None = Field(
        default=None, ge=0, le=100, description="home battery state of charge below this %"
    )
    mode: Modes | None = Field(
        default=None,
        min_length=1,
        description="the charger is in one of these modes; naming SMART_CHARGING (smart) here "
        "lets the policy take the charger out of SMART, which otherwise no policy does",
    )

    @field_validator("sun_below", "surplus_below", "battery_soc_below")
    @classmethod
    def _below_above(cls, value: float | None, info: ValidationInfo) -> float | None:
        """A lower bound at or above its upper bound would never let the policy apply."""
        above_name = info.field_name.replace("_below", "_above") if info.field_name else ""
        above = info.data.get(above_name)
        if value is not None and above is not None and above >= value:
            raise ValueError(
                f"{value:g} is not above {above_name} {above:g}, so the two can never both hold"
            )
        return value


def _max_amps_not_below_min(value: int | None, info: ValidationInfo) -> int | None:
    """Checked on max_amps (after min_amps) so that the error points at a key."""
    low = info.data.get("min_amps")
    if value is not None and low is not None and low > value:
        raise ValueError(f"{value} is below min_amps {low}")
    return value


class PolicyBase(_Strict):
    """What every policy has."""

    name: str = Field(
        pattern=NAME_PATTERN,
        description="unique name (letters, digits, _ . -), shown in every decision",
    )
    priority: int = Field(
        default=50,
        ge=0,
        le=1000,
        description="0-1000; where policies set the same thing, the highest that applies wins",
    )
    enabled: bool = Field(default=True, description="false keeps the policy but ignores it")
    description: str | None = Field(default=None, description="a note for people")
    chargers: SerialNumbers | None = Field(
        default=None,
        min_length=1,
        description="serial numbers this applies to (default: every charger)",
    )
    when: When = Field(
        default_factory=When, description="conditions that must all hold (default: always)"
    )
    ignore_warnings: list[str] = Field(
        default_factory=list,
        description="warning codes `evopt validate` keeps quiet about for this policy "
        "(the code is shown as warning[code])",
    )


class ExcessSolar(PolicyBase):
    """Follow the solar surplus with the charger's amps (evcc's PV mode, for a slow cloud)."""

    kind: Literal["excess_solar"]
    variant: Literal["pv", "min_pv"] = Field(
        default="pv",
        description="pv: solar only; min_pv: never below min_amps while plugged in, plus solar",
    )
    min_amps: int | None = Field(
        default=None, ge=1, le=80, description="lowest level in A (default: the charger's min)"
    )
    max_amps: int | None = Field(
        default=None, ge=1, le=80, description="highest level in A (default: the charger's max)"
    )
    reserve_w: float = Field(default=0, ge=0, description="W of surplus always left to the house")
    start_threshold_w: float | None = Field(
        default=None,
        ge=0,
        description="start when surplus minus reserve reaches this many W "
        "(default: the power of min_amps)",
    )
    stop_threshold_w: float | None = Field(
        default=None,
        description="stop when surplus minus reserve falls below this many W (default: half of "
        "min_amps power, i.e. up to half of the minimum may come from the grid)",
    )
    start_delay: Duration = _duration(
        timedelta(minutes=2), "the surplus must last this long before a start"
    )
    stop_delay: Duration = _duration(
        timedelta(minutes=5), "the shortfall must last this long before a stop"
    )
    min_on_time: Duration = _duration(timedelta(minutes=10), "shortest charging session")
    min_off_time: Duration = _duration(timedelta(minutes=10), "shortest pause between sessions")
    deadband_amps: int = Field(
        default=2, ge=0, le=32, description="ignore level changes smaller than this many A"
    )
    max_changes_per_hour: int = Field(
        default=4,
        ge=0,
        le=60,
        description="cap on level changes per hour (each restarts the session in MANUAL mode)",
    )
    count_battery_charge: bool = Field(
        default=True, description="solar going into the home battery counts as surplus"
    )
    count_battery_discharge: bool = Field(
        default=False, description="power from the home battery counts as surplus"
    )
    departure: Literal["meet", "ignore"] = Field(
        default="meet",
        description="meet: while a departure plan (`evopt plan set`) still needs energy, take "
        "every bit of surplus at no less than min_amps and charge at max_amps from the last "
        "moment that still meets the plan; ignore: plans change nothing",
    )
    departure_surplus_w: float = Field(
        default=100,
        ge=0,
        description="with a plan that still needs energy, a surplus (reserve not deducted) of "
        "this many W starts charging at min_amps at once, the rest from the grid: that energy is "
        "needed before departure anyway, and every solar W in it is one not bought later",
    )

    _max_not_below_min = field_validator("max_amps")(_max_amps_not_below_min)

    @field_validator("stop_threshold_w")
    @classmethod
    def _stop_below_start(cls, value: float | None, info: ValidationInfo) -> float | None:
        start = info.data.get("start_threshold_w")
        if value is not None and start is not None and value >= start:
            raise ValueError(
                f"{value:g} W must be below start_threshold_w {start:g} W, "
                "or the charger would start and stop in a loop"
            )
        return value


class GreenMode(PolicyBase):
    """Hand solar following to the charger's own GREEN mode while the conditions hold."""

    kind: Literal["green_mode"]
    use_battery: bool | None = Field(
        default=None,
        description="also set green mode's 'use battery for EV charging' (default: leave it)",
    )


class Target(_Strict):
    """Energy to deliver by a time: the cheapest 15-minute slots before it are used."""

    energy_kwh: float = Field(gt=0, le=200, description="kWh to add to the car this session")
    by: ClockTime = Field(description="local time it must be done by, e.g. '07:00'")


class TariffWindow(PolicyBase):
    """Charge in named time-of-use windows, or in the cheapest slots before a deadline."""

    kind: Literal["tariff_window"]
    windows: TariffNames = Field(
        min_length=1, description="tariff window name(s) from the config to charge in"
    )
    amps: int | None = Field(
        default=None, ge=1, le=80, description="level in A (default: the charger's max)"
    )
    target: Target | None = Field(
        default=None,
        description="deliver this much by then, using the cheapest slots of the windows",
    )
    solar_first: bool = Field(
        default=True, description="with a target, charge from solar whenever it is available"
    )
    outside: Literal["stop", "hold"] = Field(
        default="stop",
        description="outside the windows: stop charging, or propose nothing (others decide)",
    )


class BatteryUse(PolicyBase):
    """Turn green mode's "use battery for EV charging" on or off."""

    kind: Literal["battery_use"]
    use_battery: bool = Field(description="the setting while the conditions hold")


class ChargeModePolicy(PolicyBase):
    """Switch the charger's mode (an explicit wish: it may take the charger out of SMART)."""

    kind: Literal["charge_mode"]
    mode: Mode = Field(
        description="MANUAL_CHARGING, SCHEDULED_CHARGING, GREEN_CHARGING or SMART_CHARGING"
    )


class ScheduleSync(PolicyBase):
    """Keep the charger's own schedule slots in line with tariff windows, as a fallback."""

    kind: Literal["schedule_sync"]
    windows: TariffNames = Field(
        min_length=1, description="tariff window name(s) from the config to mirror"
    )
    amps: int | None = Field(
        default=None, ge=1, le=80, description="slot level in A (default: the charger's max)"
    )
    disable_others: bool = Field(
        default=False,
        description="also disable CUSTOM slots that match no window (never deletes any)",
    )


class SolarPlan(PolicyBase):
    """Plan the charge to the departure over the solar forecast (a MILP each tick, HiGHS):
    the sun first, the grid in the cheapest slots that still meet the plan, few commands."""

    kind: Literal["solar_plan"]
    min_amps: int | None = Field(
        default=None, ge=1, le=80, description="lowest level in A (default: the charger's min)"
    )
    max_amps: int | None = Field(
        default=None, ge=1, le=80, description="highest level in A (default: the charger's max)"
    )
    change_cost_kwh: float = Field(
        default=0.5,
        ge=0,
        le=20,
        description="what one command (start, stop or level change; a MANUAL level change "
        "restarts the session) costs the plan, in kWh of solar it must gain to be worth it",
    )
    restart_cost_kwh: float = Field(
        default=0.5,
        ge=0,
        le=20,
        description="what each start after a pause costs on top, in kWh (a new session, 30 s "
        "without charging, and a stop before it)",
    )
    quantile: Literal["p10", "p50", "p90"] = Field(
        default="p50",
        description="the forecast band the plan counts on: p10 is cautious (plans more grid), "
        "p90 hopeful; the feasibility guard keeps any choice from leaving a plan unmet",
    )
    horizon: Duration = _duration(
        timedelta(hours=12), "how far ahead it plans when the car has no departure plan"
    )
    margin: Duration = _duration(
        timedelta(minutes=30),
        "the feasibility guard: once the rest of a plan at max_amps no longer fits before "
        "the departure minus this, it charges at max_amps",
    )
    use_battery: bool = Field(
        default=False,
        description="the home battery's discharge counts as surplus (the battery may feed the "
        "car); solar going into the battery always counts",
    )
    grid: Literal["cheapest", "never"] = Field(
        default="cheapest",
        description="cheapest: what the sun leaves short of a plan comes from the grid in the "
        "cheapest slots that still meet it; never: solar only (a plan may go unmet)",
    )

    method: Literal["milp", "dp"] = Field(
        default="milp",
        description="how each tick's plan is solved: milp, a programme for the sun then the "
        "cheapest slots for the rest; dp (opt-in), the command-limited dynamic programme "
        "over the slots (the ceiling's, docs/planner.md), with a departure plan only",
    )

    _max_not_below_min = field_validator("max_amps")(_max_amps_not_below_min)


AnyPolicy = (
    ExcessSolar
    | GreenMode
    | TariffWindow
    | BatteryUse
    | ChargeModePolicy
    | ScheduleSync
    | SolarPlan
)
Policy = Annotated[AnyPolicy, Field(discriminator="kind")]
POLICY_KINDS: dict[str, type[PolicyBase]] = {
    "excess_solar": ExcessSolar,
    "green_mode": GreenMode,
    "tariff_window": TariffWindow,
    "battery_use": BatteryUse,
    "charge_mode": ChargeModePolicy,
    "schedule_sync": ScheduleSync,
    "solar_plan": SolarPlan,
}

# What each kind may set; the engine arbitrates per target between policies.
TARGETS: dict[str, tuple[str, ...]] = {
    "excess_solar": ("charging", "mode"),
    "green_mode": ("mode", "battery"),
    "tariff_window": ("charging", "mode"),
    "battery_use": ("battery",),
    "charge_mode": ("mode",),
    "schedule_sync": ("schedules",),
    "solar_plan": ("charging", "mode"),
}


class RuleFile(_Strict):
    """A rule file: a list of policies (the loader checks names are unique across files)."""

    version: Literal[1] = Field(default=1, description="the rule language version")
    policies: list[Policy] = Field(min_length=1, description="the policies in this file")


def rule_file_schema() -> dict[str, Any]:
    """The JSON Schema editors use to complete and check rule files (`evopt schema`)."""
    schema = RuleFile.model_json_schema()
    return {"$schema": SCHEMA_DIALECT, **schema, "title": SCHEMA_TITLE}
