"""Time-series harness for the engine's table tests (evcc's ``TestPVHysteresis`` style).

:class:`Sim` runs ``evaluate`` tick by tick, carrying memory, and plays a perfect charger: each
decision shows in the next snapshot (a start charges, a level change restarts the session,
schedule edits are applied) and energy accumulates between ticks. A table is a list of
:func:`at` rows: the minute, what changes in the world or at the charger before the tick, and
the action and a reason substring expected for one target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from optimizer.engine.decision import Decision, EngineSettings, Memory
from optimizer.engine.evaluate import evaluate
from optimizer.engine.rules import PolicyBase, RuleFile
from optimizer.engine.snapshot import ChargerView, Snapshot, Sun, Surplus, TariffNow
from optimizer.enlighten.models import ChargeMode, ScheduleSlot
from optimizer.enlighten.schedule_edit import (
    AddSlot,
    DisableSlot,
    Edit,
    EnableSlot,
    SetSlot,
    apply_edit,
)
from optimizer.tariffs import Tariffs

SN = "202301000001"
T0 = datetime(2024, 1, 15, 0, 0, tzinfo=UTC)  # a Monday; the sims run in UTC local time
WORLD_KEYS = {"surplus", "battery_charge", "battery_discharge", "sun", "soc", "tariff"}


def policies(*specs: dict[str, Any]) -> list[PolicyBase]:
    """Policies from rule-file dicts, validated exactly as the loader does."""
    return list(RuleFile.model_validate({"policies": list(specs)}).policies)


def make_charger(**changes: Any) -> ChargerView:
    base = ChargerView(
        sn=SN,
        connected=True,
        plugged_in=True,
        charging=False,
        faulted=False,
        min_amps=6,
        max_amps=32,
        mode=ChargeMode.MANUAL_CHARGING,
        voltage_v=230.0,
        session_kwh=0.0,
    )
    return replace(base, **changes)


@dataclass(frozen=True)
class Step:
    minute: float
    action: str
    reason: str
    target: str
    policy: str | None
    changes: dict[str, Any]


def at(
    minute: float,
    action: str,
    reason: str = "",
    *,
    target: str = "charging",
    policy: str | None = None,
    **changes: Any,
) -> Step:
    """One row: before the tick at ``minute`` apply ``changes`` (world keys such as ``surplus``,
    or charger fields such as ``amps`` or ``faulted``); then expect ``action`` (``"none"`` for
    no decision) with ``reason`` in its reason for ``target``."""
    return Step(minute, action, reason, target, policy, changes)


def solar(rows: Sequence[tuple[float, float | None, str, str]]) -> list[Step]:
    """The evcc-style table: (minute, surplus W, action, reason substring)."""
    return [at(minute, action, reason, surplus=watts) for minute, watts, action, reason in rows]


@dataclass
class Sim:
    rules: Sequence[PolicyBase]
    charger: ChargerView = field(default_factory=make_charger)
    settings: EngineSettings = field(default_factory=EngineSettings)
    tariffs: Tariffs | None = None  # the TariffNow of each tick is computed from these
    start: datetime = T0
    timezone: str = "UTC"
    world: dict[str, Any] = field(default_factory=dict)
    memory: Memory = field(default_factory=Memory)
    last: datetime | None = None

    def snapshot(self, now: datetime) -> Snapshot:
        world = self.world
        surplus = Surplus(
            world.get("surplus"),
            "latest_power",
            battery_charge_w=world.get("battery_charge", 0.0),
            battery_discharge_w=world.get("battery_discharge", 0.0),
        )
        sun = world.get("sun")
        return Snapshot(
            now=now,
            timezone=self.timezone,
            chargers=(self.charger,),
            surplus=surplus,
            tariff=world.get("tariff") or self.tariff_now(now),
            sun=None if sun is None else Sun(sun, 180.0, None, None),
            battery_soc_pct=world.get("soc"),
        )

    def tariff_now(self, now: datetime) -> TariffNow:
        if self.tariffs is None:
            return TariffNow()
        window, price = self.tariffs.window_at(now.astimezone(ZoneInfo(self.timezone)))
        slots = self.tariffs.slots(now, now + timedelta(days=1), timezone=self.timezone)
        return TariffNow(window=window, price=price, slots=tuple(slots))

    def tick(self, minute: float, **changes: Any) -> list[Decision]:
        now = self.start + timedelta(minutes=minute)
        self._charge_until(now)
        self.world.update({k: v for k, v in changes.items() if k in WORLD_KEYS})
        charger_changes = {k: v for k, v in changes.items() if k not in WORLD_KEYS}
        self.charger = replace(self.charger, **charger_changes)
        decisions, self.memory = evaluate(
            self.snapshot(now), self.rules, self.memory, settings=self.settings
        )
        for decision in decisions:
            self._apply(decision)
        return decisions

    def _charge_until(self, now: datetime) -> None:
        """Energy flows at the charger's level between ticks."""
        c = self.charger
        if self.last is not None and c.charging and c.amps and c.session_kwh is not None:
            hours = (now - self.last).total_seconds() / 3600
            self.charger = replace(c, session_kwh=c.session_kwh + c.draw_w / 1000 * hours)
        self.last = now

    def _apply(self, decision: Decision) -> None:
        """The perfect charger: every command takes effect by the next tick."""
        c, params = self.charger, decision.params
        match decision.action:
            case "start":
                amps = params.get("amps") or c.amps
                self.charger = replace(c, charging=True, amps=amps, session_kwh=0.0)
            case "set_amps":  # MANUAL: a new level restarts the session
                self.charger = replace(c, amps=params["amps"], session_kwh=0.0)
            case "stop":
                self.charger = replace(c, charging=False)
            case "set_mode":
                self.charger = replace(c, mode=ChargeMode(params["mode"]))
            case "set_battery":
                self.charger = replace(c, use_battery=params["enabled"])
            case "patch_schedules":
                slots = c.schedule_slots or ()
                for number, edit in enumerate(params["edits"]):
                    slots = apply_edit(slots, to_edit(edit), new_id=f"1:{SN}:new-{number}")
                self.charger = replace(c, schedule_slots=slots)


def to_edit(data: dict[str, Any]) -> Edit:
    """The actuator's side of the edits contract: JSON-ready dicts -> schedule_edit values."""
    fields = {k: v for k, v in data.items() if k != "op"}
    if "days" in fields:
        fields["days"] = tuple(fields["days"])
    kinds: dict[str, type[Any]] = {
        "add": AddSlot,
        "set": SetSlot,
        "enable": EnableSlot,
        "disable": DisableSlot,
    }
    edit: Edit = kinds[data["op"]](**fields)
    return edit


def decision_for(decisions: Sequence[Decision], target: str) -> Decision | None:
    return next((d for d in decisions if d.target == target), None)


def decided(decisions: Sequence[Decision], target: str) -> Decision:
    """The decision for ``target``, which must exist."""
    found = decision_for(decisions, target)
    assert found is not None, f"no decision for {target}: {decisions}"
    return found


def run(sim: Sim, steps: Sequence[Step]) -> list[list[Decision]]:
    """Play the table; every row's expectation must hold. Rows with the same minute check
    other targets of one tick. Returns the decisions per row."""
    seen: list[list[Decision]] = []
    for number, step in enumerate(steps):
        if number and step.minute == steps[number - 1].minute:
            assert not step.changes, f"minute {step.minute}: changes go in its first row"
            decisions = seen[-1]  # another target of the same tick
        else:
            decisions = sim.tick(step.minute, **step.changes)
        seen.append(decisions)
        found = decision_for(decisions, step.target)
        action = "none" if found is None else found.action
        reason = "" if found is None else found.reason
        where = f"minute {step.minute}, {step.target}: got {action} ({reason!r})"
        assert action == step.action, f"{where}, wanted {step.action}"
        assert step.reason in reason, f"{where}, wanted a reason with {step.reason!r}"
        if step.policy is not None:
            assert found is not None
            assert found.policy == step.policy, f"{where}, by {found.policy}"
    return seen


def custom_slot(slot_id: str, start: str | None, end: str | None, **changes: Any) -> ScheduleSlot:
    data: dict[str, Any] = {
        "id": f"1:{SN}:{slot_id}",
        "startTime": start,
        "endTime": end,
        "chargingLevel": 32,
        "chargingLevelAmp": 32,
        "scheduleType": "CUSTOM",
        "days": [1, 2, 3, 4, 5, 6, 7],
        "remindTime": 10,
        "remindFlag": False,
        "enabled": True,
        "recurringKind": "Recurring",
        "chargeLevelType": "Weekly",
        "sourceType": "SYSTEM",
        "reminderTimeUtc": None,
    }
    return ScheduleSlot.model_validate({**data, **changes})


def test_the_perfect_charger_follows_decisions_and_counts_energy() -> None:
    sim = Sim(policies({"name": "night", "kind": "tariff_window", "windows": "off_peak"}))
    sim.tick(0, tariff=TariffNow(window="off_peak", price=0.18))
    assert sim.charger.charging
    assert sim.charger.amps == 32
    sim.tick(60)
    assert sim.charger.session_kwh is not None
    assert abs(sim.charger.session_kwh - 32 * 0.230) < 1e-9
