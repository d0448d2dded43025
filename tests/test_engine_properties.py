"""Whatever the snapshot and memory: amps stay within the limits, a faulted or offline charger
gets no action, evaluate never raises, and memory survives JSON."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.engine.decision import (
    SAFETY,
    ChargerMemory,
    Decision,
    EngineSettings,
    Memory,
    PolicyState,
    TargetOverride,
)
from optimizer.engine.evaluate import evaluate
from optimizer.engine.snapshot import ChargerView, Snapshot, Sun, Surplus, TariffNow
from optimizer.enlighten.models import ChargeMode
from optimizer.tariffs import Tariffs
from tests.test_engine_sim import T0, custom_slot, policies

TARIFFS = Tariffs.model_validate(
    {
        "import_price": 0.30,
        "windows": {
            "off_peak": {"price": 0.18, "times": "23:00-07:00"},
            "peak": {"price": 0.45, "times": "15:00-21:00", "days": "weekdays"},
        },
    }
)
SNS = ("A1", "B2")
EXAMPLE = policies(
    {"name": "sun", "kind": "excess_solar", "when": {"sun": "up"}},
    {"name": "sun-min", "kind": "excess_solar", "variant": "min_pv", "priority": 40,
     "chargers": ["B2"], "max_amps": 16, "reserve_w": 300, "count_battery_discharge": True},
    {"name": "green", "kind": "green_mode", "priority": 30, "use_battery": True,
     "when": {"surplus_above": 3000}},
    {"name": "night", "kind": "tariff_window", "windows": "off_peak", "priority": 60},
    {"name": "by-7", "kind": "tariff_window", "windows": ["off_peak"], "priority": 70,
     "amps": 40, "target": {"energy_kwh": 10, "by": "07:00"}, "when": {"plugged_in": True}},
    {"name": "battery-low", "kind": "battery_use", "use_battery": False,
     "when": {"battery_soc_below": 20}},
    {"name": "scheduled-at-night", "kind": "charge_mode", "mode": "scheduled", "priority": 20,
     "when": {"time": "22:00-06:00"}},
    {"name": "sync", "kind": "schedule_sync", "windows": ["off_peak", "peak"], "amps": 48,
     "disable_others": True},
)  # fmt: skip

modes = st.sampled_from([None, *ChargeMode])
moments = st.integers(-180, 180).map(lambda m: T0 + timedelta(days=3, minutes=m))
maybe_moment = st.none() | moments
odd = st.sampled_from([math.nan, math.inf, -math.inf])
watts = st.none() | st.floats(-1e6, 1e9) | st.sampled_from([0.0, -1.0, 1380.0]) | odd
slots = (
    st.none()
    | st.just(())
    | st.just(
        (
            custom_slot("x", "23:00", "07:00", enabled=False, chargingLevel=80),
            custom_slot("y", "7:00", "9:00"),
        )
    )
)


# Every strategy a draw below uses, built once: one made inside a draw is a new object each
# example, which hypothesis validates again every time (a sixth of this file's CPU). The same
# strategies as when they were written inline, so the same snapshots and memories are drawn.
maybe_bool = st.none() | st.booleans()
maybe_amps = st.none() | st.integers(0, 100)
volts = st.floats(100, 400) | st.sampled_from([0.0, -230.0]) | odd
phase_counts = st.sampled_from([1, 3])
maybe_odd_kwh = st.none() | st.floats(0, 100) | odd
maybe_kwh = st.none() | st.floats(0, 100)
target_overrides = st.dictionaries(
    st.sampled_from(["charging", "mode", "battery"]),
    st.builds(TargetOverride, until=moments, reason=st.just("user changed something")),
    max_size=3,
)
commanded_modes = st.none() | st.sampled_from([m.value for m in ChargeMode] + ["junk"])
level_change_lists = st.lists(moments, max_size=6)
timezones = st.sampled_from(["UTC", "Australia/Melbourne", "Europe/Berlin"])
windows = st.sampled_from([None, "off_peak", "peak"])
battery_watts = st.floats(0, 5000) | odd
elevations = st.none() | st.floats(-90, 90) | odd
prices = st.none() | st.floats(-1, 2)
maybe_odd_soc = st.none() | st.floats(0, 100) | odd


@st.composite
def chargers(draw: st.DrawFn, sn: str) -> ChargerView:
    return ChargerView(
        sn=sn,
        connected=draw(st.booleans()),
        plugged_in=draw(st.booleans()),
        charging=draw(st.booleans()),
        faulted=draw(st.booleans()),
        min_amps=draw(st.integers(1, 16)),
        max_amps=draw(st.integers(1, 80)),
        granularity=draw(st.integers(0, 8)),
        amps=draw(maybe_amps),
        mode=draw(modes),
        status_mode=draw(modes),
        voltage_v=draw(volts),
        phases=draw(phase_counts),
        supports_use_battery=draw(maybe_bool),
        use_battery=draw(maybe_bool),
        schedule_slots=draw(slots),
        session_kwh=draw(maybe_odd_kwh),
        manual_override=draw(st.booleans()),
    )


@st.composite
def charger_memories(draw: st.DrawFn) -> ChargerMemory:
    overrides = draw(target_overrides)
    return ChargerMemory(
        commanded_on=draw(maybe_bool),
        commanded_amps=draw(maybe_amps),
        commanded_mode=draw(commanded_modes),
        commanded_battery=draw(maybe_bool),
        commanded_at=draw(maybe_moment),
        started_at=draw(maybe_moment),
        stopped_at=draw(maybe_moment),
        level_changes=draw(level_change_lists),
        override_until=draw(maybe_moment),
        last_seen_plugged_in=draw(maybe_bool),
        overrides=overrides,
        manual_override_seen=draw(st.booleans()),
        energy_base_kwh=draw(st.floats(-50, 50)),
        session_kwh_seen=draw(maybe_kwh),
    )


@st.composite
def memories(draw: st.DrawFn) -> Memory:
    states = {
        f"{p.name}/{sn}": PolicyState(
            above_since=draw(maybe_moment), below_since=draw(maybe_moment)
        )
        for p in EXAMPLE
        for sn in SNS
        if draw(st.booleans())
    }
    chargers_memory = {sn: draw(charger_memories()) for sn in SNS if draw(st.booleans())}
    return Memory(chargers=chargers_memory, policies=states)


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    now: datetime = draw(moments)
    timezone = draw(timezones)
    window = draw(windows)
    priced = draw(st.booleans())
    surplus = Surplus(
        draw(watts),
        "latest_power",
        battery_charge_w=draw(battery_watts),
        battery_discharge_w=draw(battery_watts),
    )
    elevation = draw(elevations)
    return Snapshot(
        now=now,
        timezone=timezone,
        chargers=tuple(draw(chargers(sn)) for sn in SNS[: draw(st.integers(1, 2))]),
        surplus=surplus,
        tariff=TariffNow(
            window=window,
            price=draw(prices),
            slots=tuple(TARIFFS.slots(now, now + timedelta(hours=20), timezone=timezone))
            if priced
            else (),
        ),
        sun=None if elevation is None else Sun(elevation, 180.0, None, None),
        battery_soc_pct=draw(maybe_odd_soc),
    )


engine_settings = st.builds(
    EngineSettings,
    site_max_amps=st.none() | st.integers(1, 80),
    override_hold=st.integers(0, 7200).map(lambda s: timedelta(seconds=s)),
    settle=st.integers(0, 600).map(lambda s: timedelta(seconds=s)),
    tariffs=st.just(TARIFFS),
)


def allowed(amps: Any, charger: ChargerView, site: int | None) -> bool:
    low, step = charger.min_amps, max(1, charger.granularity)
    high = charger.max_amps if site is None else min(charger.max_amps, site)
    return (
        isinstance(amps, int)
        and not isinstance(amps, bool)
        and low <= amps <= high
        and (amps - low) % step == 0
    )


def levels(decision: Decision) -> list[Any]:
    if decision.action in ("start", "set_amps"):
        amps = decision.params.get("amps")
        return [] if amps is None and decision.action == "start" else [amps]
    if decision.action == "patch_schedules":
        edits = decision.params["edits"]
        return [e["charging_level"] for e in edits if "charging_level" in e]
    return []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    snapshot=snapshots(),
    memory=memories(),
    engine=engine_settings,
    order=st.permutations(range(len(EXAMPLE))),
)
def test_no_decision_breaks_the_limits_or_acts_on_a_faulted_charger(
    snapshot: Snapshot, memory: Memory, engine: EngineSettings, order: list[int]
) -> None:
    rules = [EXAMPLE[i] for i in order]
    before = memory.model_dump_json()
    decisions, after = evaluate(snapshot, rules, memory, settings=engine)
    assert memory.model_dump_json() == before  # inputs are never mutated
    for decision in decisions:
        charger = snapshot.charger(decision.charger_sn)
        assert charger is not None
        if charger.faulted or not charger.connected:
            assert decision.action == "hold"
            assert decision.policy == SAFETY
        for amps in levels(decision):
            if decision.observed:
                # A record of what the user did, not a command: within the charger's own
                # range (a reading outside it is not recorded as a level), the site aside.
                assert charger.min_amps <= amps <= charger.max_amps, (decision, charger)
            else:
                assert allowed(amps, charger, engine.site_max_amps), (decision, charger)
        json.dumps([decision.params, decision.inputs])  # JSON-ready for the decision log
    assert Memory.model_validate_json(after.model_dump_json()).model_dump() == after.model_dump()
    again, _ = evaluate(snapshot, rules, memory, settings=engine)
    assert repr(again) == repr(decisions)  # deterministic (repr: a NaN input is not == itself)


@settings(max_examples=50, deadline=None)
@given(snapshot=snapshots(), engine=engine_settings)
def test_a_fresh_memory_round_trips_after_a_few_ticks(
    snapshot: Snapshot, engine: EngineSettings
) -> None:
    memory = Memory()
    for minute in range(3):
        moved = Snapshot(
            now=snapshot.now + timedelta(minutes=minute),
            timezone=snapshot.timezone,
            chargers=snapshot.chargers,
            surplus=snapshot.surplus,
            tariff=snapshot.tariff,
            sun=snapshot.sun,
            battery_soc_pct=snapshot.battery_soc_pct,
        )
        _, memory = evaluate(moved, EXAMPLE, memory, settings=engine)
        restored = Memory.model_validate_json(memory.model_dump_json())
        assert restored.model_dump() == memory.model_dump()
        memory = restored


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    snapshot=snapshots(),
    memory=memories(),
    engine=engine_settings,
    order=st.permutations(range(len(EXAMPLE))),
)
def test_without_words_the_same_decisions_act_and_the_same_memory_is_kept(
    snapshot: Snapshot, memory: Memory, engine: EngineSettings, order: list[int]
) -> None:
    """``words=False`` (a replay that logs nothing) leaves out only what a reader sees: every
    decision has the same policy, target, action, parameters and observed flag, in the same
    order, and the memory passed on is the same, whatever the tick."""
    rules = [EXAMPLE[i] for i in order]
    worded, kept = evaluate(snapshot, rules, memory, settings=engine)
    bare, bare_kept = evaluate(snapshot, rules, memory, settings=replace(engine, words=False))

    def acts(decisions: list[Decision]) -> list[tuple[Any, ...]]:
        return [
            (d.policy, d.charger_sn, d.target, d.action, repr(d.params), d.observed)
            for d in decisions
        ]

    assert acts(bare) == acts(worded)
    assert repr(bare_kept.model_dump()) == repr(kept.model_dump())
