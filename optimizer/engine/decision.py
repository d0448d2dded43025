"""The engine's output (decisions) and the state it carries between ticks (memory).

A decision names its policy, the action and its parameters, one sentence of reason with the
numbers that drove it, the inputs it used, and the policies it overruled. Memory holds the
hysteresis timers and what the engine last asked for (so that a user's own change can be told
apart); it is JSON so the service can persist it and a restart resumes where it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Literal, Self, TypeVar, cast

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
# ``inputs[OBSERVED] is True``: the decision records what the user did (in the Enphase app or
# at the charger), seen in the status; nothing is sent for it and nothing was commanded.
OBSERVED = "observed"


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
    # What the policy waits for or plans next ("start when surplus >= 1.4 kW for 2 min"), for
    # `evopt status` and `evopt why` (decision inputs["next"]); None when nothing is pending.
    hint: str | None = None


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
    def observed(self) -> bool:
        """A user's own change seen in the status: a record, never a command to send."""
        return self.inputs.get(OBSERVED) is True

    @property
    def changes_something(self) -> bool:
        return self.action != "hold" and not self.observed


_UNSET = object()
_set = object.__setattr__  # pydantic models refuse plain assignment of their internals
_ORDER: dict[type, tuple[str, ...]] = {}  # each model's fields in their declared order
_Record = TypeVar("_Record", Proposal, Decision)
_FIELDS: dict[type, frozenset[str]] = {}


def evolve(record: _Record, **changes: Any) -> _Record:
    """``dataclasses.replace`` for proposals and decisions, at a tenth of its cost.

    The engine derives a decision from another a dozen times a tick (hints, inputs, holds);
    ``replace`` re-runs ``__init__`` with every field looked up and checked, which was the
    largest single cost of an evaluation (issue 16). These records are plain frozen dataclasses
    without ``__post_init__``, so copying the fields and setting the changed ones is the same
    object ``replace`` would build. An unknown field name is refused, as ``replace`` does.
    """
    cls = type(record)
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = frozenset(f.name for f in fields(cls))
    if not names.issuperset(changes):
        raise TypeError(f"{cls.__name__} has no field {sorted(set(changes) - names)[0]!r}")
    new = object.__new__(cls)
    new.__dict__.update(record.__dict__)
    new.__dict__.update(changes)
    return new


def _same(a: Any, b: Any) -> bool:
    """``a`` and ``b`` equal and indistinguishable once logged or stored: -0.0 is not 0.0, an
    instant in another zone is not the same value (its ISO text differs)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, datetime):
        return a == b and a.tzinfo is b.tzinfo and a.fold == b.fold
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str | int):
        return bool(a == b)
    return False


class _Mutable(BaseModel):
    model_config = ConfigDict(extra="ignore")

    def updated(self, **changes: Any) -> Self:
        """``model_copy(update=changes)``, or this very object when every change is already so.

        The engine updates a charger's memory five times a tick, mostly to what it already
        holds; a pydantic copy each time was a tenth of an evaluation (issue 16). Sharing is
        safe because the engine never changes a memory in place, only replaces it.
        """
        current = self.__dict__
        for name, value in changes.items():
            now = current.get(name, _UNSET)
            if now is not value and not _same(now, value):
                return self.copied(changes)
        return self

    @classmethod
    def constructed(cls, **values: Any) -> Self:
        """``model_construct(**values)`` (no validation: values the engine holds in their
        types) in four steps when every field is given, in the order the model declares
        them: without pydantic's look-up of aliases and defaults for each. The engine records
        who controls each target of a charger every evaluation."""
        order = _ORDER.get(cls)
        if order is None:
            order = _ORDER[cls] = tuple(cls.__pydantic_fields__)
        if tuple(values) != order:
            return cast(Self, cls.model_construct(**values))
        new = cls.__new__(cls)
        _set(new, "__dict__", values)
        _set(new, "__pydantic_fields_set__", set(values))
        _set(new, "__pydantic_extra__", None)
        _set(new, "__pydantic_private__", None)
        return new

    def copied(self, changes: dict[str, Any]) -> Self:
        """``model_copy(update=changes)`` in four steps: these models hold no extra and no
        private attributes, so pydantic's copies of those (and its config look-ups) go. A
        charger's memory is copied twice an evaluation, 11,800 evaluations a year's replay.
        The same object ``model_copy`` gives: its fields, and the ones set now counted set."""
        if self.__pydantic_extra__ is not None or self.__pydantic_private__ is not None:
            return self.model_copy(update=changes)
        cls = type(self)
        new = cls.__new__(cls)
        _set(new, "__dict__", {**self.__dict__, **changes})
        _set(new, "__pydantic_extra__", None)
        _set(new, "__pydantic_fields_set__", self.__pydantic_fields_set__ | changes.keys())
        _set(new, "__pydantic_private__", None)
        return new


class PolicyState(_Mutable):
    """Hysteresis timers of one policy for one charger."""

    above_since: datetime | None = None  # surplus at or above the start threshold since
    below_since: datetime | None = None  # surplus below the stop threshold since
    extra: dict[str, Any] = Field(default_factory=dict)
    # Why the policy proposes nothing for charging although its conditions hold ("target 20
    # kWh reached"), so whoever takes over can say why it stopped proposing.
    idle: str | None = None
    # The basis of its last charging proposal ("departure" while a plan drove it), so the
    # reason can say when that basis ends ("plan met: 20.0 of 20 kWh by 07:30").
    basis: str | None = None


class Control(_Mutable):
    """Which policy decides one target of a charger, since when, and what it last saw.

    Kept so that when control passes the new reason can name why the old policy let go (its
    window ended, a plan was met, the override ended) instead of quoting a timer of a policy
    that was overruled all along.
    """

    policy: str
    since: datetime
    seen_at: datetime | None = None  # the last tick it was in control
    window: str | None = None  # the tariff window at that tick
    until: datetime | None = None  # a user override's end


class TargetOverride(_Mutable):
    """A user's own change to one target, respected until ``until``."""

    until: datetime
    reason: str


class PendingRestart(_Mutable):
    """The second half of a MANUAL level change: the stop was sent, the start at ``amps``
    goes once ``due`` (the stop plus ``charger.settle_delay``) has passed, in a later tick.

    Kept in the memory saved with the stop's row, so a restart of the service neither loses
    it nor sends it twice (optimizer/engine/restart.py)."""

    amps: int
    since: datetime  # when the stop was sent (the level change began)
    due: datetime
    from_amps: int | None = None


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
    # Since when the vehicle is plugged in (or since this engine first saw it plugged in):
    # no timer quoted in a reason about this session reaches back further.
    plugged_in_since: datetime | None = None
    # Per target, the policy in control (memories without it load with none).
    control: dict[str, Control] = Field(default_factory=dict)
    # A level change whose restart has not been sent yet (optimizer/engine/restart.py).
    restart: PendingRestart | None = None
    # Commands sent since plug-in, counted as the replay counts them: a start, a stop, a level
    # change (its restart's start not again), a mode switch; 0 again at each plug-in. What a
    # planner with a per-session budget has left (older memories load with 0).
    session_commands: int = 0


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
    # Per charger serial, its rank when the site's surplus and breaker are shared (higher
    # first; chargers not named rank 0), before the winning rule's priority.
    charger_priority: Mapping[str, int] = field(default_factory=dict)
    # False: decisions carry what acts (policy, action, parameters, reason, the inputs the
    # engine reads back) but not the facts, hints and control records only a reader of the
    # decision log or `evopt why` sees. For a replay that logs nothing: its held decisions are
    # counted and thrown away unread, and building their words was a tenth of the engine.
    words: bool = True
