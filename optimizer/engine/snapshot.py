"""The engine's input: a frozen picture of one moment at the site.

`observe` builds it, live from the client or replayed from history; the engine only reads it.
Units are in the names; times are timezone-aware UTC. Everything a decision used can be
serialised from here into the decision log's `inputs`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Literal
from zoneinfo import ZoneInfo

from optimizer.enlighten.models import ChargeMode, ScheduleSlot
from optimizer.planner.outlook import SurplusOutlook
from optimizer.tariffs import PriceSlot


@dataclass(frozen=True)
class DeparturePlan:
    """The driver's "ready by": this much energy into the car before that time.

    The cloud knows neither when the car leaves nor how much it needs (the charger has no
    state-of-charge reading), so without a plan a solar-only policy can leave on time with the
    car short, and a guaranteed one must buy grid energy early. With a plan, policies that honour
    it can wait for the sun until the last moment that still meets it. Set live with
    `evopt plan set`; the simulator can derive one per session from the history.
    """

    ready_by: datetime  # timezone-aware
    energy_kwh: float  # wanted since plug-in (the session's delivered energy counts)
    # Set when the plan was learned from session history (``plans: auto``), not set by the
    # driver: what it was learned from, for reasons ("weekdays, 34 sessions").
    learned: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ready_by": self.ready_by.isoformat(),
            "energy_kwh": self.energy_kwh,
        }
        if self.learned is not None:
            data["learned"] = self.learned
        return data


@dataclass(frozen=True)
class ChargerView:
    """One charger as the engine sees it: state, limits and settings."""

    sn: str
    connected: bool
    plugged_in: bool
    charging: bool  # a session is active (CHARGING, SUSPENDED_EV, ...), per the field notes
    faulted: bool
    min_amps: int
    max_amps: int
    granularity: int = 1
    amps: int | None = None  # the session's level (the last commanded level when charging)
    mode: ChargeMode | None = None  # the scheduler preference the user or engine chose
    status_mode: ChargeMode | None = None  # what the charger does now (0 manual, 1 green)
    voltage_v: float = 230.0
    phases: int = 1
    name: str | None = None
    supports_use_battery: bool | None = None
    use_battery: bool | None = None  # green mode's "use battery for EV charging"
    schedule_slots: tuple[ScheduleSlot, ...] | None = None  # None: not read this tick
    session_kwh: float | None = None
    manual_override: bool = False  # a start/stop in GREEN made it manual until re-plug
    reported_at: datetime | None = None
    plan: DeparturePlan | None = None  # the driver's "ready by", if one is set
    # A start is accepted but delivers nothing until someone authenticates (app or RFID);
    # None: not known (2026 reference section 8).
    session_auth: bool | None = None
    max_phases: int = 1  # the installation's phases: an upper bound; ``phases`` is in use
    amps_control: bool | None = None  # False: the feature flags deny setting amps
    # safeLimitState 1 while charging: the charger fell back to min_amps by itself, so
    # ``amps`` is that minimum and not a level anyone chose.
    safe_limited: bool = False
    # The status's plg_in_at: when this car was plugged in, read from the cloud, so a learned
    # plan survives a restart of the service (None: not sent, or no car). Not logged: the
    # plan it gives is.
    plugged_in_at: datetime | None = None
    # The connector reads CHARGING (else the status's charging flag): the car takes energy now,
    # so it is not full. A session can be active with the car drawing nothing (SUSPENDED_EV).
    drawing: bool = False

    @property
    def watts_per_amp(self) -> float:
        return self.voltage_v * self.phases

    def facts(self) -> dict[str, Any]:
        """The charger's part of a decision's logged inputs (a fresh dict each time)."""
        found = self._facts
        return {**found, "limits": list(found["limits"]), **_plan_json(found)}

    @cached_property
    def _facts(self) -> dict[str, Any]:
        # Worked out once per view: a replay hands the engine the same view while the charger
        # does not change, and enum values and the plan's JSON cost on every tick otherwise.
        data: dict[str, Any] = {
            "sn": self.sn,
            "connected": self.connected,
            "plugged_in": self.plugged_in,
            "charging": self.charging,
            "faulted": self.faulted,
            "amps": self.amps,
            "mode": self.mode.value if self.mode else None,
            "status_mode": self.status_mode.value if self.status_mode else None,
            "limits": [self.min_amps, self.max_amps, self.granularity],
            "use_battery": self.use_battery,
            "session_kwh": self.session_kwh,
            "phases": self.phases,
        }
        if self.session_auth is not None:
            data["session_auth"] = self.session_auth
        if self.amps_control is False:
            data["amps_control"] = False
        if self.safe_limited:
            data["safe_limited"] = True
        if self.plan is not None:
            data["plan"] = self.plan.to_json()
        return data

    @property
    def draw_w(self) -> float:
        """What the charger draws now by its level (0 when not charging)."""
        return self.watts_per_amp * (self.amps or 0) if self.charging else 0.0


@dataclass(frozen=True)
class EnergyBucket:
    """The latest complete energy bucket, as average power over it (W)."""

    start: datetime
    end: datetime
    pv_w: float | None
    consumption_w: float | None
    evse_w: float | None
    export_w: float | None
    import_w: float | None
    battery_charge_w: float | None
    battery_discharge_w: float | None


@dataclass(frozen=True)
class Surplus:
    """Power the car could take without grid import, and how it was estimated.

    ``pv_minus_house_w`` is PV production minus the house's own load (the EV's draw excluded).
    Battery flows are kept apart so each policy decides whether they count.

    ``wording`` is how it was estimated, in words: the text, or a function that writes it.
    Only a reader of :attr:`method` (a log line, `evopt why`, a test) needs the words, and a
    replay builds a surplus for every tick of a year without reading one, so the estimators
    hand over a function and the text is written on first read. It is no part of equality:
    two estimates of the same figures are the same surplus however they are worded.
    """

    pv_minus_house_w: float | None
    source: Literal["lifetime_energy", "latest_power", "gateway", "none"]
    pv_w: float | None = None
    house_w: float | None = None
    evse_w: float | None = None
    battery_charge_w: float = 0.0
    battery_discharge_w: float = 0.0
    measured_at: datetime | None = None  # midpoint of the bucket, the sample or reading time
    age_s: float | None = None
    wording: str | Callable[[], str] = field(default="", compare=False, repr=False)
    # From a power sample: PV and house load come from sources of different ages.
    pv_age_s: float | None = None
    house_age_s: float | None = None

    def available_w(
        self, *, count_battery_charge: bool, count_battery_discharge: bool
    ) -> float | None:
        """Surplus for a policy: PV minus house, plus or minus the battery as it chooses."""
        if self.pv_minus_house_w is None:
            return None
        watts = self.pv_minus_house_w
        if not count_battery_charge:
            watts -= self.battery_charge_w
        if count_battery_discharge:
            watts += self.battery_discharge_w
        return watts

    @cached_property
    def method(self) -> str:
        """How the surplus was estimated, in words (written once, on first read)."""
        wording = self.wording
        return wording if isinstance(wording, str) else wording()


@dataclass(frozen=True)
class TariffNow:
    window: str | None = None
    price: float | None = None
    next_change_at: datetime | None = None
    next_window: str | None = None
    next_price: float | None = None
    # 15-minute prices ahead (about a day), in time order and not overlapping (their starts
    # and their ends both ascend): a target's plan bisects them for those before its deadline
    # (optimizer/engine/kinds/tariff_window.py). Every maker walks the slots forward
    # (Tariffs.slots, the replay's year sliced).
    slots: tuple[PriceSlot, ...] = ()


@dataclass(frozen=True)
class Sun:
    elevation_deg: float
    azimuth_deg: float
    sunrise: datetime | None
    sunset: datetime | None

    @property
    def up(self) -> bool:
        return self.elevation_deg > 0


@dataclass(frozen=True)
class Snapshot:
    """Everything the engine may know at ``now``."""

    now: datetime
    timezone: str
    chargers: tuple[ChargerView, ...]
    surplus: Surplus = field(default_factory=lambda: Surplus(None, "none"))
    tariff: TariffNow = field(default_factory=TariffNow)
    sun: Sun | None = None
    bucket: EnergyBucket | None = None
    battery_soc_pct: float | None = None
    site_id: int | None = None
    # A scheduler outage (2026 reference section 10): since when the scheduler family fails,
    # and the age of the status when it failed too and the last good one is served instead.
    scheduler_down_since: datetime | None = None
    stale_status_s: float | None = None
    # The surplus the site expects ahead (the forecast), for look-ahead policies; None when
    # no forecast could be made (too little history) or none was asked for.
    outlook: SurplusOutlook | None = None

    @cached_property
    def local(self) -> datetime:
        """``now`` in the site's zone: every condition of every policy asks for it each tick,
        so it is worked out once per snapshot (the snapshot is frozen: it cannot change)."""
        return self.now.astimezone(ZoneInfo(self.timezone))

    def charger(self, sn: str) -> ChargerView | None:
        return next((c for c in self.chargers if c.sn == sn), None)

    def inputs(self, charger: ChargerView | None = None) -> dict[str, Any]:
        """The compact, JSON-ready facts a decision is logged with."""
        data: dict[str, Any] = {
            "now": self.now.isoformat(),
            "local_time": _local_text(self.local),
            "surplus_w": _round(self.surplus.pv_minus_house_w),
            "surplus_source": self.surplus.source,
            "surplus_age_s": _round(self.surplus.age_s),
            **_sample_ages(self.surplus),
            "battery_charge_w": _round(self.surplus.battery_charge_w),
            "battery_discharge_w": _round(self.surplus.battery_discharge_w),
            "tariff": self.tariff.window,
            "price": self.tariff.price,
            "sun_elevation_deg": _round(self.sun.elevation_deg, 1) if self.sun else None,
            "battery_soc_pct": self.battery_soc_pct,
        }
        if self.scheduler_down_since is not None:
            data["scheduler_down_since"] = self.scheduler_down_since.isoformat()
        if self.stale_status_s is not None:
            data["status_age_s"] = _round(self.stale_status_s)
        if charger is not None:
            data["charger"] = charger.facts()
        return data


def with_local(snapshot: Snapshot, local: datetime) -> Snapshot:
    """``snapshot`` with :attr:`Snapshot.local` already known: ``local`` must be its ``now``
    in its zone. A replay converts each tick's time once, for the sun's day and the snapshot
    both (the conversion was a few per cent of a replay); tests/test_replay_idle.py checks
    the replay's snapshots against their own conversion."""
    snapshot.__dict__["local"] = local  # where the cached property keeps its value
    return snapshot


def _plan_json(facts: dict[str, Any]) -> dict[str, Any]:
    """A fresh copy of the plan's JSON, if any (the cached facts are never handed out)."""
    plan = facts.get("plan")
    return {} if plan is None else {"plan": dict(plan)}


def _local_text(local: datetime) -> str:
    """``strftime("%Y-%m-%d %H:%M")`` without its cost (every decision of every tick)."""
    return f"{local.year:04d}-{local.month:02d}-{local.day:02d} {local.hour:02d}:{local.minute:02d}"


def _round(value: float | None, digits: int = 0) -> float | None:
    """Rounded for the log; NaN and infinities (a broken reading) are logged as unknown."""
    return None if value is None or not math.isfinite(value) else round(value, digits)


def _sample_ages(surplus: Surplus) -> dict[str, Any]:
    """The two ages of a power-sample surplus (PV now, house load from a bucket), if any."""
    if surplus.pv_age_s is None:
        return {}
    return {"pv_age_s": _round(surplus.pv_age_s), "house_age_s": _round(surplus.house_age_s)}
