"""The engine explains itself truthfully: who is in control, why control passed, what next.

Reasons name the real cause of a change (a window that ended, a plan met, a user's override
ending), never a timer of a policy that was overruled all along; the user's own changes are
decisions of their own; every decision says what the policy in control waits for next.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from optimizer.actuate import Skip, plan
from optimizer.engine.decision import OVERRIDE, Decision, EngineSettings, Memory
from optimizer.engine.feedback import acknowledge
from optimizer.engine.snapshot import DeparturePlan, TariffNow
from optimizer.enlighten.models import ChargeMode
from optimizer.tariffs import Tariffs
from tests.test_engine_sim import SN, Sim, at, decided, make_charger, policies, run

NIGHT_TARIFFS = Tariffs.model_validate(
    {"import_price": 0.30, "windows": {"off_peak": {"price": 0.12, "times": "00:00-07:00"}}}
)
CHEAP_NIGHT = {
    "name": "cheap_night",
    "kind": "tariff_window",
    "priority": 60,
    "windows": "off_peak",
    "when": {"tariff": "off_peak"},
}
SOLAR = {
    "name": "solar_excess",
    "kind": "excess_solar",
    "priority": 50,
    "start_threshold_w": 1400,
    "stop_threshold_w": 1000,
    "start_delay": "2m",
    "stop_delay": "5m",
}
FRIDAY_NOON = datetime(2024, 1, 12, 12, 0, tzinfo=UTC)  # UTC is local in these sims
MONDAY_7 = datetime(2024, 1, 15, 7, 0, tzinfo=UTC)


def night_sim() -> Sim:
    return Sim(
        policies(CHEAP_NIGHT, SOLAR),
        settings=EngineSettings(tariffs=NIGHT_TARIFFS),
        tariffs=NIGHT_TARIFFS,
        start=FRIDAY_NOON,
    )


def minutes(when: datetime) -> float:
    return (when - FRIDAY_NOON) / timedelta(minutes=1)


def test_the_stop_at_the_end_of_the_night_window_names_the_window_not_a_stale_timer() -> None:
    """Three grey days: solar's "below the stop threshold" timer runs all along, overruled
    every night by cheap_night; at 07:00 the stop is the window's doing."""
    sim = night_sim()
    every = 30.0
    minute = 0.0
    last: list[Decision] = []
    while minute < minutes(MONDAY_7):
        last = sim.tick(minute, surplus=300)
        minute += every
    before = decided(last, "charging")
    assert (before.policy, before.action) == ("cheap_night", "hold")
    assert before.inputs["in_control"] == "cheap_night"
    assert before.inputs["in_control_since"] == "2024-01-15T00:00:00+00:00"
    assert before.inputs["next"] == "stop at 07:00 when off_peak ends"

    stop = decided(sim.tick(minutes(MONDAY_7)), "charging")
    assert (stop.policy, stop.action) == ("solar_excess", "stop")
    assert stop.reason == (
        "cheap_night's window ended at 07:00 (00:00-07:00); solar_excess: surplus 0.3 kW below "
        "stop threshold 1.0 kW for longer than the 5 min stop delay: stop"
    )
    assert stop.inputs["in_control"] == "solar_excess"
    assert stop.inputs["in_control_since"] == MONDAY_7.isoformat()
    assert stop.inputs["next"] == "start when surplus >= 1.4 kW for 2 min (now 0.3 kW)"
    mode = decided(sim.tick(minutes(MONDAY_7) + 1), "mode")
    assert mode.inputs["in_control"] == "solar_excess"


def test_a_solar_afternoon_stop_names_the_surplus_and_how_long_it_was_low() -> None:
    sun = {**SOLAR, "stop_threshold_w": 700, "min_on_time": "10m"}
    sim = Sim(policies(CHEAP_NIGHT, sun), tariffs=NIGHT_TARIFFS, start=FRIDAY_NOON)
    seen = run(
        sim,
        [
            at(0, "hold", "surplus 3.0 kW >= start threshold 1.4 kW for 0 s", surplus=3000),
            at(2, "start", "surplus 3.0 kW for 2 min >= start threshold 1.4 kW: start at 13 A"),
            at(120, "hold", "already at 13 A"),
            at(
                123,
                "hold",
                "surplus 0.3 kW below stop threshold 0.7 kW for 0 s of the 5 min stop delay",
                surplus=300,
            ),
            at(125, "hold", "for 2 min of the 5 min stop delay: keeping 13 A"),
            at(128, "stop", "surplus 0.3 kW below stop threshold 0.7 kW for 5 min: stop"),
        ],
    )
    waiting, following, low, stopped = seen[0][0], seen[2][0], seen[4][0], seen[5][0]
    assert waiting.inputs["next"] == "start at 12:02 if surplus stays >= 1.4 kW"
    assert following.inputs["next"] == "stop when surplus < 0.7 kW for 5 min (now 3.0 kW)"
    assert low.inputs["next"] == "stop at 14:08 if surplus stays < 0.7 kW"
    assert stopped.inputs["next"] == "start when surplus >= 1.4 kW for 2 min (now 0.3 kW)"
    assert stopped.inputs["in_control"] == "solar_excess"
    assert stopped.inputs["in_control_since"] == FRIDAY_NOON.isoformat()


def test_a_met_departure_plan_is_named_when_charging_stops() -> None:
    ready = datetime(2024, 1, 16, 7, 30, tzinfo=UTC)
    sim = Sim(
        policies({**SOLAR, "stop_threshold_w": 700}),
        charger=make_charger(plan=DeparturePlan(ready_by=ready, energy_kwh=20)),
        start=datetime(2024, 1, 16, 0, 0, tzinfo=UTC),
    )
    first = decided(sim.tick(0, surplus=0), "charging")
    assert first.action == "hold"
    assert first.inputs["next"] == "ready by 07:30: 20.0 kWh to go"
    found: Decision | None = None
    minute = 0.0
    while found is None and minute < 8 * 60:
        minute += 5
        charging = decided(sim.tick(minute), "charging")
        if charging.action == "stop":
            found = charging
    assert found is not None
    assert found.reason.startswith("plan met: 20.2 of 20 kWh by 07:30; surplus 0.0 kW below")
    assert "for longer than the 5 min stop delay: stop" in found.reason


def test_a_users_stop_is_its_own_observed_decision_then_holds_until_the_override_ends() -> None:
    sim = Sim(policies(SOLAR), start=datetime(2024, 1, 12, 13, 0, tzinfo=UTC))
    sim.tick(0, surplus=3000)
    started = decided(sim.tick(2), "charging")
    assert started.action == "start"
    commanded_at = sim.memory.charger(SN).commanded_at
    before = sim.memory

    stopped = decided(sim.tick(65, charging=False), "charging")
    assert (stopped.policy, stopped.action, stopped.params) == (OVERRIDE, "stop", {})
    assert stopped.observed
    assert not stopped.changes_something
    assert stopped.reason == (
        "you stopped charging in the Enphase app or at the charger around 14:05; "
        "the policies wait until 15:05 (engine.override_hold)"
    )
    assert [o.policy for o in stopped.overruled] == ["solar_excess"]
    assert stopped.inputs["next"] == "override ends 15:05"
    assert stopped.inputs["in_control"] == OVERRIDE
    # Seen, not commanded: the memory keeps the engine's last command time and marks.
    known = sim.memory.charger(SN)
    assert known.commanded_at == commanded_at
    assert known.stopped_at is None
    assert known.commanded_on is False  # the user's state is the reference now
    assert acknowledge(sim.memory, stopped, applied=False, before=before) == sim.memory
    assert isinstance(plan(stopped, make_charger(charging=True, amps=13)), Skip)

    held = decided(sim.tick(66), "charging")
    assert (held.policy, held.action) == (OVERRIDE, "hold")
    assert not held.observed
    assert "user stopped charging at 14:05; respected until 15:05" in held.reason

    resumed = decided(sim.tick(126), "charging")
    assert (resumed.policy, resumed.action) == ("solar_excess", "start")
    assert resumed.reason.startswith("your override ended at 15:05; solar_excess: surplus 3.0 kW")
    assert resumed.inputs["in_control_since"] == "2024-01-12T15:06:00+00:00"


def test_each_kind_of_user_change_is_recorded_as_what_the_user_did() -> None:
    green = {"name": "green", "kind": "green_mode", "use_battery": False}
    sim = Sim(policies(green), charger=make_charger(supports_use_battery=True, use_battery=True))
    sim.tick(0)
    sim.tick(1)
    changed = {d.target: d for d in sim.tick(5, mode=ChargeMode.MANUAL_CHARGING, use_battery=True)}
    mode, battery = changed["mode"], changed["battery"]
    assert (mode.action, mode.params, mode.observed) == (
        "set_mode",
        {"mode": "MANUAL_CHARGING"},
        True,
    )
    assert "you switched the mode to MANUAL in the Enphase app around 00:05" in mode.reason
    assert (battery.action, battery.params, battery.observed) == (
        "set_battery",
        {"enabled": True},
        True,
    )

    solar = Sim(policies(SOLAR))
    solar.tick(0, surplus=3000)
    solar.tick(2)
    level = decided(solar.tick(10, amps=20), "charging")
    assert (level.action, level.params, level.observed) == ("set_amps", {"amps": 20}, True)


def test_control_passing_when_a_when_condition_stops_holding_names_the_condition() -> None:
    shoulder = Tariffs.model_validate(
        {"import_price": 0.30, "windows": {"shoulder": {"price": 0.2, "times": "18:00-23:00"}}}
    )
    evening = {
        "name": "evening",
        "kind": "tariff_window",
        "priority": 60,
        "windows": "shoulder",
        "when": {"time": "18:00-22:00"},
    }
    battery_full = {
        "name": "battery-full",
        "kind": "tariff_window",
        "priority": 70,
        "windows": "shoulder",
        "when": {"battery_soc_above": 90},
    }
    sim = Sim(
        policies(evening, battery_full, SOLAR),
        tariffs=shoulder,
        start=datetime(2024, 1, 12, 21, 0, tzinfo=UTC),
    )
    run(
        sim,
        [
            at(0, "start", "in shoulder (0.2/kWh): charge at 32 A", policy="evening", surplus=0),
            at(
                60,
                "stop",
                "evening's time ended at 22:00 (18:00-22:00); solar_excess: surplus 0.0 kW",
                policy="solar_excess",
            ),
            at(61, "start", "in shoulder", policy="battery-full", soc=95),
            at(
                75,
                "stop",
                "battery-full no longer applies (battery SoC 80% not above 90%); solar_excess:",
                soc=80,
            ),
        ],
    )


def test_an_old_memory_without_control_loads_and_starts_counting_now() -> None:
    old = {"version": 1, "chargers": {SN: {"commanded_on": True, "last_seen_plugged_in": True}}}
    memory = Memory.model_validate(old)
    assert memory.charger(SN).control == {}
    assert memory.charger(SN).plugged_in_since is None
    sim = Sim(policies(SOLAR), memory=memory, charger=make_charger(charging=True, amps=13))
    first = decided(sim.tick(0, surplus=3000), "charging")
    assert first.inputs["in_control_since"] == sim.start.isoformat()
    assert sim.memory.charger(SN).plugged_in_since == sim.start


# --- property: no reason quotes more time than the engine has seen ------------------------------

OFF_PEAK = TariffNow(window="off_peak", price=0.12)
TIMER = re.compile(r"\bfor (?:only )?(\d+) (min|s)\b")
AGO = re.compile(r"\b(\d+) (min|s) ago\b")
Tick = tuple[int, float | None, bool, bool]  # (minutes after the last, surplus, plugged, window)


def seconds(number: str, unit: str) -> int:
    return int(number) * (60 if unit == "min" else 1)


ticks = st.lists(
    st.tuples(
        st.integers(1, 90),
        st.sampled_from([None, 0.0, 300.0, 900.0, 1500.0, 3000.0, 6000.0]),
        st.booleans(),
        st.booleans(),
    ),
    min_size=1,
    max_size=30,
)
STALE: list[Tick] = [  # low surplus unplugged; plugged in the window; the window ends
    (1, 300.0, False, False),
    (60, 300.0, True, True),
    (30, 300.0, True, False),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=ticks)
@example(steps=STALE)
def test_no_reason_quotes_a_duration_longer_than_the_history_the_engine_has_seen(
    steps: list[Tick],
) -> None:
    sim = Sim(policies(CHEAP_NIGHT, {**SOLAR, "min_on_time": "10m", "min_off_time": "10m"}))
    minute = 0
    plugged_at: int | None = None
    for gap, surplus, plugged, window in steps:
        minute += gap
        charger = sim.charger
        if plugged and not charger.plugged_in:
            plugged_at = minute
        if not plugged:
            plugged_at = None
            sim.charger = replace(charger, plugged_in=False, charging=False)
        else:
            sim.charger = replace(charger, plugged_in=True)
        tariff = OFF_PEAK if window else TariffNow()
        for decision in sim.tick(minute, surplus=surplus, tariff=tariff):
            seen = (minute - steps[0][0]) * 60
            session = seen if plugged_at is None else (minute - plugged_at) * 60
            for number, unit in AGO.findall(decision.reason):
                assert seconds(number, unit) <= seen, decision.reason
            for number, unit in TIMER.findall(decision.reason):
                assert seconds(number, unit) <= min(seen, session), decision.reason


# --- what next, kind by kind --------------------------------------------------------------------


def next_of(decisions: list[Decision], target: str = "charging") -> object:
    return decided(decisions, target).inputs["next"]


def test_tariff_window_says_when_it_charges_and_when_it_stops() -> None:
    window = {"name": "night", "kind": "tariff_window", "windows": "off_peak"}
    sim = Sim(
        policies(window), tariffs=NIGHT_TARIFFS, start=datetime(2024, 1, 12, 22, 0, tzinfo=UTC)
    )
    assert next_of(sim.tick(0)) == "charge in off_peak from 00:00"
    assert next_of(sim.tick(120)) == "stop at 07:00 when off_peak ends"

    cheap = Tariffs.model_validate(
        {
            "import_price": 0.30,
            "windows": {
                "super": {"price": 0.08, "times": "01:00-03:45"},
                "off_peak": {"price": 0.12, "times": "00:00-07:00"},
            },
        }
    )
    target = {
        "name": "top-up",
        "kind": "tariff_window",
        "windows": ["super", "off_peak"],
        "target": {"energy_kwh": 20, "by": "07:00"},
    }
    planned = Sim(policies(target), tariffs=cheap, start=datetime(2024, 1, 12, 22, 0, tzinfo=UTC))
    assert next_of(planned.tick(0)) == "top-up 01:00-03:45"
    late = Sim(policies(target), tariffs=cheap, start=datetime(2024, 1, 13, 5, 0, tzinfo=UTC))
    assert next_of(late.tick(0)) == "charge until 07:00: 20.0 kWh to go"


def test_mode_and_battery_kinds_say_until_when_their_conditions_hold() -> None:
    overnight = {
        "name": "overnight",
        "kind": "charge_mode",
        "mode": "SCHEDULED_CHARGING",
        "when": {"time": "22:00-06:00"},
    }
    sim = Sim(policies(overnight), start=datetime(2024, 1, 12, 23, 0, tzinfo=UTC))
    assert next_of(sim.tick(0), "mode") == "SCHEDULED mode until 06:00"
    spare = {
        "name": "spare",
        "kind": "battery_use",
        "use_battery": False,
        "when": {"tariff": "off_peak"},
    }
    battery = Sim(
        policies(spare),
        charger=make_charger(supports_use_battery=True, use_battery=True),
        tariffs=NIGHT_TARIFFS,
        start=datetime(2024, 1, 12, 3, 0, tzinfo=UTC),
    )
    assert (
        next_of(battery.tick(0), "battery") == "battery support off until 07:00 when off_peak ends"
    )
    green = Sim(policies({"name": "green", "kind": "green_mode"}))
    assert next_of(green.tick(0), "mode") is None  # no end known: nothing pending


def test_a_hold_forced_by_safety_has_no_next_step() -> None:
    sim = Sim(policies(SOLAR), charger=make_charger(mode=ChargeMode.SMART_CHARGING))
    sim.tick(0, surplus=3000)
    held = decided(sim.tick(3), "charging")
    assert held.action == "hold"
    assert "not overriding the user's choice" in held.reason
    assert held.inputs["next"] is None
    faulted = decided(sim.tick(4, faulted=True), "charging")
    assert (faulted.policy, faulted.inputs["next"]) == ("safety", None)
