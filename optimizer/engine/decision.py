"""The engine's output (decisions) and the state it carries between ticks (memory).

A decision names its policy, the action and its parameters, one sentence of reason with the
numbers that drove it, the inputs it used, and the policies it overruled. Memory holds the
hysteresis timers and what the engine last asked for (so that a user's own change can be told
apart); it is JSON so the service can persist it and a restart resumes where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from optimizer.tariffs import Tariffs

Action = Literal["set_amps", "start", "stop", "set_mode", "set_battery", "patch_schedules", "hold"]
TargetName = Literal["charging", "mode", "battery", "schedules"]
ACTIONS: tuple[str, ...] = (
    "set_amps",
    "start",
    "stop",
    "set_mode",
    "set_battery",
    "patch_schedules",
    "hold",
)
# Pseudo-policies for decisions the engine itself makes after arbitration.
SAFETY = "safety"
OVERRIDE = "user-override"


@dataclass(frozen=True)
class Proposal:
    """What one policy wants for one target of one charger, before arbitration."""

    policy: str
    priority: int
    target: TargetName
    action: Action
    params: dict[str, Any]
    reason: str
    # The policy's own numbers (available W, thresholds, target amps...), for the decision log.
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Overruled:
    policy: str
    action: Action
    params: dict[str, Any]
    reason: str


@dataclass(frozen=True)
class Decision:
    """The engine's one answer for one target of one charger this tick."""

    policy: str
    charger_sn: str
    target: TargetName
    action: Action
    params: dict[str, Any]
    reason: str
    inputs: dict[str, Any]
    overruled: tuple[Overruled, ...] = field(default=())

    @property
    def changes_something(self) -> bool:
        return self.action != "hold"


class _Mutable(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PolicyState(_Mutable):
    """Hysteresis timers of one policy for one charger."""

    above_since: datetime | None = None  # surplus at or above the start threshold since
    below_since: datetime | None = None  # surplus below the stop threshold since
    extra: dict[str, Any] = Field(default_factory=dict)


class TargetOverride(_Mutable):
    """A user's own change to one target, respected until ``until``."""

    until: datetime
    reason: str


class ChargerMemory(_Mutable):
    """What the engine last asked of a charger, and what it has learnt about the user."""

    commanded_on: bool | None = None
    commanded_amps: int | None = None
    commanded_mode: str | None = None
    commanded_battery: bool | None = None
    commanded_at: datetime | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    level_changes: list[datetime] = Field(default_factory=list)
    override_until: datetime | None = None
    override_reason: str | None = None
    last_seen_plugged_in: bool | None = None
    # The user's overrides per target ("charging", "mode", "battery"), each with its own end;
    # override_until / override_reason above summarise the latest one.
    overrides: dict[str, TargetOverride] = Field(default_factory=dict)
    # The charger's own manual-override flag was already seen (so it counts once per plug-in).
    manual_override_seen: bool = False
    # Energy since plug-in across session restarts: every MANUAL level change or stop/start
    # begins a new session whose `session_kwh` starts again from zero.
    energy_base_kwh: float = 0.0
    session_kwh_seen: float | None = None


class Memory(_Mutable):
    """All engine state between ticks. Unknown keys from older versions are ignored."""

    version: int = 1
    chargers: dict[str, ChargerMemory] = Field(default_factory=dict)
    policies: dict[str, PolicyState] = Field(default_factory=dict)

    def charger(self, sn: str) -> ChargerMemory:
        return self.chargers.get(sn) or ChargerMemory()

    def policy(self, name: str, sn: str) -> PolicyState:
        return self.policies.get(f"{name}/{sn}") or PolicyState()


@dataclass(frozen=True)
class EngineSettings:
    """Site-wide settings the rules do not carry (from the config)."""

    site_max_amps: int | None = None
    # How long a user's own change (in the app or at the charger) is respected.
    override_hold: timedelta = timedelta(hours=1)
    # How long after a command the cloud may still show the old state (field notes: ~90 s).
    settle: timedelta = timedelta(seconds=90)
    # The config's tariff windows: schedule_sync mirrors their times and days.
    tariffs: Tariffs | None = None
