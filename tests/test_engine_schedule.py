"""schedule_sync: the charger's own slots kept in line with the tariff windows."""

from __future__ import annotations

from typing import Any

from optimizer.engine.decision import EngineSettings
from optimizer.enlighten.models import ScheduleSlot
from optimizer.tariffs import Tariffs
from tests.test_engine_sim import (
    SN,
    Sim,
    at,
    custom_slot,
    decided,
    make_charger,
    policies,
    run,
)

TARIFFS = Tariffs.model_validate(
    {
        "import_price": 0.30,
        "windows": {
            "off_peak": {"price": 0.18, "times": "23:00-07:00"},
            "solar_soak": {"price": 0.0, "times": "11:00-14:00", "days": "weekdays"},
            "winter": {"price": 0.1, "times": "02:00-03:00", "months": "jun-aug"},
        },
    }
)
SYNC: dict[str, Any] = {
    "name": "sync",
    "kind": "schedule_sync",
    "windows": ["off_peak", "solar_soak"],
}


def sim_with(
    slots: tuple[ScheduleSlot, ...] | None, rule: dict[str, Any], site_max_amps: int | None = None
) -> Sim:
    settings = EngineSettings(tariffs=TARIFFS, site_max_amps=site_max_amps)
    return Sim(policies(rule), charger=make_charger(schedule_slots=slots), settings=settings)


def test_slots_are_fixed_added_and_others_disabled_never_deleted() -> None:
    slots = (
        custom_slot("op", None, None, scheduleType="OFF_PEAK", chargingLevel=None),
        custom_slot("night", "23:00", "07:00", enabled=False, chargingLevel=16),
        custom_slot("lunch", "12:00", "13:00"),
    )
    sim = sim_with(slots, {**SYNC, "disable_others": True})
    decisions = run(
        sim,
        [
            at(
                0,
                "patch_schedules",
                "schedules for off_peak, solar_soak: fix CUSTOM 23:00-07:00 to off_peak "
                "23:00-07:00 daily at 32 A; add solar_soak 11:00-14:00 Mon-Fri at 32 A; "
                "disable CUSTOM 12:00-13:00 (matches no window)",
                target="schedules",
            ),
            at(1, "none", target="schedules"),  # in line now: nothing to say
        ],
    )
    edits = decided(decisions[0], "schedules").params["edits"]
    assert edits == [
        {"op": "set", "slot_id": f"1:{SN}:night", "charging_level": 32},
        {"op": "enable", "slot_id": f"1:{SN}:night"},
        {
            "op": "add",
            "start_time": "11:00",
            "end_time": "14:00",
            "days": [1, 2, 3, 4, 5],
            "charging_level": 32,
        },
        {"op": "disable", "slot_id": f"1:{SN}:lunch"},
    ]
    after = sim.charger.schedule_slots or ()
    assert len(after) == 4  # nothing deleted
    assert after[0] == slots[0]  # OFF_PEAK untouched


def test_other_slots_stay_as_they_are_unless_disable_others() -> None:
    slots = (custom_slot("lunch", "12:00", "13:00"), custom_slot("n", "23:00", "07:00"))
    sim = sim_with(slots, {**SYNC, "windows": "off_peak"})
    run(sim, [at(0, "none", target="schedules")])


def test_levels_follow_the_site_limit_and_windows_only_in_their_months() -> None:
    rule = {**SYNC, "windows": ["winter"], "amps": 40}
    run(sim_with((), rule), [at(0, "none", target="schedules")])  # January: no winter window
    rule = {**SYNC, "windows": ["off_peak"], "amps": 40}
    run(
        sim_with((), rule, site_max_amps=20),
        [at(0, "patch_schedules", "add off_peak 23:00-07:00 daily at 20 A", target="schedules")],
    )


def test_unread_slots_give_no_decision_and_unknown_windows_say_so() -> None:
    run(sim_with(None, SYNC), [at(0, "none", target="schedules")])
    run(
        sim_with((), {**SYNC, "windows": ["nope"]}),
        [at(0, "hold", "tariff window nope is not in the config", target="schedules")],
    )
