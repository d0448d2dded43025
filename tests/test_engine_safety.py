"""Arbitration and the absolute rules: user overrides, faults, GREEN mode, site limits."""

from __future__ import annotations

from datetime import timedelta

from optimizer.engine.decision import OVERRIDE, SAFETY, EngineSettings, Memory
from optimizer.engine.evaluate import evaluate
from optimizer.engine.snapshot import TariffNow
from optimizer.enlighten.models import ChargeMode
from tests.test_engine_sim import Sim, at, decided, make_charger, policies, run

SUN = {"name": "sun", "kind": "excess_solar", "start_delay": "0s"}
OFF_PEAK = TariffNow(window="off_peak", price=0.18)


def test_a_user_changing_the_level_is_respected_for_the_override_hold_then_policies_resume() -> (
    None
):
    run(
        Sim(policies(SUN)),
        [
            at(0, "start", "start at 10 A", surplus=2300),
            at(30, "hold", "already at 10 A"),
            # The user sets 20 A in the app: recorded as what the user did, then held.
            at(
                32,
                "set_amps",
                "you changed the level to 20 A in the Enphase app or at the charger around "
                "00:32; the policies wait until 01:32 (engine.override_hold)",
                policy=OVERRIDE,
                amps=20,
            ),
            at(33, "hold", "user changed the level to 20 A at 00:32; respected until 01:32"),
            at(40, "hold", "user changed the level to 20 A", policy=OVERRIDE, surplus=100),
            at(91, "hold", "respected until 01:32", surplus=2300),
            at(92, "set_amps", "surplus 2.3 kW -> 10 A (now 20 A)", policy="sun"),
        ],
    )


def test_an_override_records_the_policy_it_held_back() -> None:
    sim = Sim(policies(SUN))
    sim.tick(0, surplus=2300)
    decisions = sim.tick(5, amps=16)
    held = decided(decisions, "charging")
    assert held.policy == OVERRIDE
    assert [o.policy for o in held.overruled] == ["sun"]
    assert list(sim.memory.charger(sim.charger.sn).overrides) == ["charging"]


def test_a_user_stopping_or_switching_mode_is_an_override_of_that_target_only() -> None:
    run(
        Sim(policies(SUN)),
        [
            at(0, "start", "start at 13 A", surplus=3000),
            at(10, "stop", "you stopped charging", policy=OVERRIDE, charging=False),
            at(10, "hold", "already in MANUAL mode", target="mode"),
            at(11, "hold", "user stopped charging at 00:10", policy=OVERRIDE),
            at(11, "hold", "already in MANUAL mode", target="mode"),
            at(
                20,
                "set_mode",
                "you switched the mode to SCHEDULED in the Enphase app around 00:20",
                target="mode",
                mode=ChargeMode.SCHEDULED_CHARGING,
            ),
            at(20, "hold", "user stopped charging at 00:10; respected until 01:10"),
            # Each target's override ends on its own.
            at(71, "hold", "SCHEDULED mode follows the charger's own schedule, so no start"),
            at(71, "hold", "user changed the mode to SCHEDULED", target="mode"),
            at(81, "set_mode", "switch to MANUAL (now SCHEDULED)", target="mode"),
        ],
    )


def test_a_change_within_the_settle_time_is_the_command_still_showing() -> None:
    settings = EngineSettings(settle=timedelta(minutes=3))
    sim = Sim(policies(SUN), settings=settings)
    run(
        sim,
        [
            at(0, "start", "start at 13 A", surplus=3000),
            # The cloud still says "not charging": within the settle time that is lag, and the
            # policy sees the charger as commanded (no second start).
            at(1, "hold", "already at 13 A", charging=False),
            at(2, "hold", "already at 13 A", charging=True),
            at(4, "hold", "already at 13 A"),
        ],
    )
    assert sim.memory.charger(sim.charger.sn).override_until is None


def test_unplugging_ends_an_override_and_a_new_plug_in_starts_fresh() -> None:
    run(
        Sim(policies(SUN)),
        [
            at(0, "start", "start at 13 A", surplus=3000),
            at(5, "set_amps", "you changed the level to 8 A", amps=8),
            at(5.5, "hold", "user changed the level to 8 A"),
            at(6, "hold", "no vehicle plugged in", plugged_in=False, charging=False),
            at(7, "start", "start at 13 A", plugged_in=True),
        ],
    )


def test_a_start_or_stop_sent_in_green_mode_counts_as_an_override() -> None:
    night = {"name": "night", "kind": "tariff_window", "windows": "off_peak"}
    sim = Sim(policies(night), charger=make_charger(manual_override=True))
    run(
        sim,
        [
            at(0, "stop", "a stop was sent in GREEN mode", policy=OVERRIDE, tariff=OFF_PEAK),
            at(1, "hold", "a start or stop was sent in GREEN mode at 00:00", policy=OVERRIDE),
            at(59, "hold", "respected until 01:00"),
            at(60, "start", "in off_peak (0.18/kWh): charge at 32 A"),  # counted once per plug-in
        ],
    )


def test_a_faulted_charger_gets_no_action_and_resumes_with_timers_that_kept_running() -> None:
    run(
        Sim(policies(SUN)),
        [
            at(0, "start", "start at 13 A", surplus=3000),
            at(15, "hold", "charger faulted: no action", policy=SAFETY, faulted=True, surplus=100),
            at(15, "hold", "charger faulted: no action", target="mode", policy=SAFETY),
            at(25, "hold", "charger faulted: no action"),
            # The timer ran on under the fault hold; quoted, it would explain nothing.
            at(
                26,
                "stop",
                "the charger is online and not faulted again; sun: surplus 0.1 kW below stop "
                "threshold 0.7 kW for longer than the 5 min stop delay: stop",
                faulted=False,
            ),
        ],
    )


def test_an_offline_charger_gets_no_action_even_without_any_policy() -> None:
    run(
        Sim([]),
        [
            at(0, "hold", "charger offline: no action", policy=SAFETY, connected=False),
            at(1, "none", connected=True),
        ],
    )


def test_priorities_decide_per_target_and_the_losers_are_recorded() -> None:
    rules = policies(
        SUN,
        {"name": "night", "kind": "tariff_window", "windows": "off_peak", "priority": 80},
        {"name": "green", "kind": "green_mode", "priority": 10, "use_battery": True},
    )
    decisions = Sim(rules).tick(0, surplus=3000, tariff=OFF_PEAK, use_battery=False)
    charging = decided(decisions, "charging")
    mode = decided(decisions, "mode")
    battery = decided(decisions, "battery")
    assert (charging.policy, charging.action, charging.params) == ("night", "start", {"amps": 32})
    assert [(o.policy, o.action) for o in charging.overruled] == [("sun", "start")]
    assert (mode.policy, mode.action) == ("night", "hold")
    assert [o.policy for o in mode.overruled] == ["sun", "green"]
    assert (battery.policy, battery.action, battery.params) == (
        "green",
        "set_battery",
        {"enabled": True},
    )


def test_a_tie_goes_to_the_policy_listed_first() -> None:
    first = {"name": "first", "kind": "charge_mode", "mode": "green"}
    second = {"name": "second", "kind": "charge_mode", "mode": "scheduled"}
    for rules, winner in ((policies(first, second), "first"), (policies(second, first), "second")):
        assert decided(Sim(rules).tick(0), "mode").policy == winner


def test_green_mode_follows_solar_itself_so_no_start_stop_or_level_is_sent() -> None:
    green = {"name": "green", "kind": "green_mode", "priority": 60, "when": {"surplus_above": 2000}}
    run(
        Sim(policies(SUN, green)),
        [
            at(
                0,
                "set_mode",
                "surplus 3000 W > 2000 W: switch to GREEN (now MANUAL)",
                target="mode",
                surplus=3000,
            ),
            at(0, "hold", "GREEN mode follows solar itself, so no start (surplus 3.0 kW"),
            at(1, "hold", "already in GREEN mode", target="mode"),
            at(2, "hold", "GREEN mode follows solar itself, so no start", policy="sun"),
            # The green policy no longer applies: back to MANUAL, and the level follows again.
            at(
                3,
                "set_mode",
                "following the surplus needs MANUAL mode: switch to MANUAL",
                target="mode",
                surplus=1900,
            ),
            at(3, "start", "start at 8 A"),
        ],
    )


def test_a_stop_in_green_mode_is_held_too() -> None:
    night = {"name": "night", "kind": "tariff_window", "windows": "off_peak"}
    sim = Sim(policies(night), charger=make_charger(mode=ChargeMode.GREEN_CHARGING, charging=True))
    sim.settings = EngineSettings()
    decisions = sim.tick(0, tariff=TariffNow(window=None, price=0.3))
    assert decided(decisions, "mode").action == "set_mode"  # MANUAL first ...
    assert decided(decisions, "charging").action == "stop"  # ... so the stop may go out
    green = policies(night, {"name": "g", "kind": "charge_mode", "mode": "green", "priority": 99})
    sim = Sim(green, charger=make_charger(mode=ChargeMode.GREEN_CHARGING, charging=True))
    charging = decided(sim.tick(0, tariff=TariffNow(window=None, price=0.3)), "charging")
    assert charging.action == "hold"
    assert "GREEN mode follows solar itself, so no stop" in charging.reason


def test_the_site_limit_and_granularity_clamp_every_level() -> None:
    night = {"name": "night", "kind": "tariff_window", "windows": "off_peak", "amps": 32}
    sim = Sim(
        policies(night),
        charger=make_charger(granularity=4),
        settings=EngineSettings(site_max_amps=20),
    )
    run(sim, [at(0, "start", "charge at 18 A", tariff=OFF_PEAK)])  # 6, 10, 14, 18 (not 20)
    blocked = Sim(policies(night), settings=EngineSettings(site_max_amps=5))
    run(
        blocked,
        [
            at(
                0,
                "hold",
                "site limit 5 A is below the charger minimum 6 A: cannot charge",
                tariff=OFF_PEAK,
            )
        ],
    )
    blocked.charger = make_charger(charging=True, amps=16)
    blocked.memory = Memory()
    run(
        blocked,
        [at(1, "stop", "site limit 5 A is below the charger minimum 6 A: stop")],
    )


def test_evaluate_is_pure_and_deterministic() -> None:
    sim = Sim(policies(SUN, {"name": "night", "kind": "tariff_window", "windows": "off_peak"}))
    sim.tick(0, surplus=3000)
    snapshot = sim.snapshot(sim.start + timedelta(minutes=7))
    before = sim.memory.model_dump_json()
    first = evaluate(snapshot, sim.rules, sim.memory)
    second = evaluate(snapshot, sim.rules, sim.memory)
    assert sim.memory.model_dump_json() == before
    assert first[0] == second[0]
    assert first[1].model_dump_json() == second[1].model_dump_json()


def test_a_policy_whose_conditions_stop_holding_loses_its_timers() -> None:
    timed = {**SUN, "start_delay": "5m", "when": {"time": "00:00-00:03"}}
    sim = Sim(policies(timed))
    run(sim, [at(0, "hold", "start delay", surplus=3000), at(2, "hold", "for 2 min")])
    sim.tick(4)
    assert "sun/" + sim.charger.sn not in sim.memory.policies


def test_decisions_carry_the_inputs_they_used() -> None:
    sim = Sim(policies(SUN))
    charging = decided(sim.tick(0, surplus=3000), "charging")
    assert charging.inputs["surplus_w"] == 3000
    assert charging.inputs["available_w"] == 3000
    assert charging.inputs["start_threshold_w"] == 1380
    assert charging.inputs["target_amps"] == 13
    assert charging.inputs["charger"]["limits"] == [6, 32, 1]
