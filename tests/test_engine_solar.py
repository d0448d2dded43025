"""excess_solar over time, as tables (evcc's TestPVHysteresis style).

The defaults at 230 V, charger 6-32 A: start threshold = 6 A of power = 1.38 kW ("1.4 kW"),
stop threshold = half of it ("0.7 kW"), start delay 2 min, stop delay 5 min, min on/off time
10 min, deadband 2 A, 4 level changes per hour.
"""

from __future__ import annotations

from optimizer.enlighten.models import ChargeMode
from tests.test_engine_sim import Sim, at, make_charger, policies, run, solar

SUN = {"name": "sun", "kind": "excess_solar"}


def test_sunny_morning_ramps_up_within_the_deadband_and_the_hourly_cap() -> None:
    run(
        Sim(policies(SUN)),
        solar(
            [
                (0, 800, "hold", "surplus 0.8 kW below start threshold 1.4 kW: not starting"),
                (1, 1500, "hold", ">= start threshold 1.4 kW for 0 s of the 2 min start delay"),
                (2, 1600, "hold", "for 1 min of the 2 min start delay: waiting"),
                (3, 1700, "start", "surplus 1.7 kW for 2 min >= start threshold 1.4 kW: start"),
                (5, 1900, "hold", "-> 8 A, within the 2 A deadband of 7 A: keeping 7 A"),
                (10, 2300, "set_amps", "surplus 2.3 kW -> 10 A (now 7 A)"),
                (15, 2800, "set_amps", "surplus 2.8 kW -> 12 A (now 10 A)"),
                (20, 3300, "set_amps", "-> 14 A (now 12 A)"),
                (25, 3800, "set_amps", "-> 16 A (now 14 A)"),
                (30, 4500, "hold", "4 level changes in the last hour reach the cap of 4"),
                (50, 5000, "hold", "-> 21 A, but 4 level changes in the last hour"),
                (71, 5000, "set_amps", "surplus 5.0 kW -> 21 A (now 16 A)"),
                (72, 5100, "hold", "-> 22 A, within the 2 A deadband of 21 A: keeping 21 A"),
            ]
        ),
    )


def test_start_uses_the_level_the_surplus_pays_for() -> None:
    sim = Sim(policies(SUN))
    run(sim, solar([(0, 2900, "hold", "waiting"), (6, 2900, "start", "for 6 min")]))
    decisions = sim.tick(7)
    assert sim.charger.amps == 12  # floor(2900 W / 230 V)
    assert decisions[0].action == "hold"


def test_clouds_passing_short_dips_are_ridden_out_long_ones_stop_then_min_off_time() -> None:
    run(
        Sim(policies(SUN)),
        solar(
            [
                (0, 3000, "hold", "start delay"),
                (2, 3000, "start", "start at 13 A"),
                # A cloud shorter than the stop delay: the level stays (no restart for a dip).
                (15, 300, "hold", "below stop threshold 0.7 kW for 0 s of the 5 min stop delay"),
                (18, 300, "hold", "for 3 min of the 5 min stop delay: keeping 13 A"),
                (19, 3000, "hold", "already at 13 A"),
                # Between the thresholds: neither starts a stop timer nor lowers below the minimum.
                (20, 1000, "set_amps", "surplus 1.0 kW -> 6 A (now 13 A)"),
                # A long cloud: stop once the shortfall has lasted the stop delay.
                (25, 200, "hold", "for 0 s of the 5 min stop delay"),
                (29, 200, "hold", "for 4 min of the 5 min stop delay"),
                (30, 200, "stop", "surplus 0.2 kW below stop threshold 0.7 kW for 5 min: stop"),
                # Sun again: the start delay, then the minimum off time.
                (31, 3000, "hold", "for 0 s of the 2 min start delay"),
                (33, 3000, "hold", "stopped only 3 min ago (min off time 10 min): waiting"),
                (40, 3000, "start", "surplus 3.0 kW for 9 min >= start threshold 1.4 kW"),
            ]
        ),
    )


def test_a_long_dip_right_after_a_start_waits_for_the_minimum_on_time() -> None:
    run(
        Sim(policies(SUN)),
        solar(
            [
                (0, 3000, "hold", "start delay"),
                (2, 3000, "start", "start at 13 A"),
                (3, 100, "hold", "for 0 s of the 5 min stop delay"),
                (8, 100, "hold", "but on for only 6 min (min on time 10 min): keeping 13 A"),
                (12, 100, "stop", "for 9 min: stop"),
            ]
        ),
    )


def test_battery_discharge_is_not_surplus_unless_the_policy_counts_it() -> None:
    evening = [
        at(
            0, "hold", "surplus -0.3 kW below start threshold", surplus=-300, battery_discharge=2500
        ),
        at(5, "hold", "below start threshold 1.4 kW: not starting"),
        at(10, "hold", "not starting"),
    ]
    run(Sim(policies(SUN)), evening)
    counted = {**SUN, "count_battery_discharge": True}
    run(
        Sim(policies(counted)),
        [
            at(
                0, "hold", "surplus 2.2 kW >= start threshold", surplus=-300, battery_discharge=2500
            ),
            at(2, "start", "surplus 2.2 kW for 2 min >= start threshold 1.4 kW: start at 9 A"),
            at(3, "hold", "already at 9 A"),
        ],
    )


def test_solar_going_into_the_home_battery_can_be_left_to_it() -> None:
    battery_first = {**SUN, "count_battery_charge": False}
    run(
        Sim(policies(battery_first)),
        [
            at(
                0, "hold", "surplus 0.5 kW below start threshold", surplus=3000, battery_charge=2500
            ),
            at(5, "hold", "not starting"),
            at(6, "hold", "surplus 3.0 kW >= start threshold", battery_charge=0),
        ],
    )


def test_reserve_thresholds_and_max_amps_from_the_rule() -> None:
    rule = {
        **SUN,
        "reserve_w": 500,
        "start_threshold_w": 2000,
        "stop_threshold_w": 1000,
        "max_amps": 16,
        "start_delay": "0s",
        "deadband_amps": 0,
    }
    run(
        Sim(policies(rule)),
        solar(
            [
                (0, 2400, "hold", "surplus 1.9 kW below start threshold 2.0 kW"),
                (
                    1,
                    2600,
                    "start",
                    "surplus 2.1 kW for 0 s >= start threshold 2.0 kW: start at 9 A",
                ),
                (2, 9000, "set_amps", "surplus 8.5 kW -> 16 A (now 9 A)"),
                (3, 1400, "hold", "surplus 0.9 kW below stop threshold 1.0 kW for 0 s"),
            ]
        ),
    )


def test_unknown_surplus_never_starts_and_keeps_a_running_session() -> None:
    run(
        Sim(policies(SUN)),
        solar(
            [
                (0, None, "hold", "surplus unknown: not starting"),
                (5, None, "hold", "surplus unknown: not starting"),
                (6, 3000, "hold", "for 0 s of the 2 min start delay"),
                (8, 3000, "start", "start at 13 A"),
                (9, None, "hold", "surplus unknown: keeping 13 A"),
            ]
        ),
    )


def test_no_vehicle_plugged_in() -> None:
    run(
        Sim(policies(SUN)),
        [
            at(0, "hold", "no vehicle plugged in", surplus=5000, plugged_in=False),
            # The surplus timer ran while unplugged, so a plug-in starts at once; the reason
            # quotes no time from before the plug-in.
            at(
                3,
                "start",
                "surplus 5.0 kW >= start threshold 1.4 kW for longer than the 2 min start delay",
                plugged_in=True,
            ),
        ],
    )


def test_min_pv_never_stops_while_plugged_in_and_adds_solar() -> None:
    min_pv = {**SUN, "variant": "min_pv"}
    run(
        Sim(policies(min_pv)),
        [
            at(0, "hold", "no vehicle plugged in", surplus=0, plugged_in=False),
            at(
                1,
                "start",
                "min+solar: vehicle plugged in, surplus 0.0 kW: start at 6 A",
                plugged_in=True,
            ),
            at(10, "hold", "surplus -1.0 kW -> 6 A: already at 6 A", surplus=-1000),
            at(30, "hold", "already at 6 A"),
            at(31, "set_amps", "surplus 3.0 kW -> 13 A (now 6 A)", surplus=3000),
            at(40, "set_amps", "surplus 0.1 kW -> 6 A (now 13 A)", surplus=100),
            at(50, "hold", "no vehicle plugged in", plugged_in=False, charging=False),
        ],
    )


def test_excess_solar_claims_manual_mode() -> None:
    sim = Sim(policies(SUN), charger=make_charger(mode=ChargeMode.SCHEDULED_CHARGING))
    run(
        sim,
        [
            at(0, "set_mode", "switch to MANUAL (now SCHEDULED)", target="mode", surplus=3000),
            at(1, "hold", "already in MANUAL mode", target="mode"),
        ],
    )
