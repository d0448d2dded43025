"""``acknowledge``: a command that was not applied is forgotten, target by target.

The point of it, end to end: after a refused start the unchanged charger must not be taken for
a user's override once the settle time has passed (which would hold the policies off for an
hour); the engine simply decides again.
"""

from __future__ import annotations

from datetime import timedelta

from optimizer.engine.decision import OVERRIDE, ChargerMemory, Decision, Memory
from optimizer.engine.evaluate import evaluate
from optimizer.engine.feedback import acknowledge
from optimizer.engine.snapshot import Snapshot, Surplus
from tests.test_engine_sim import SN, T0, make_charger, policies

ALWAYS_ON = policies(
    {"name": "always", "kind": "excess_solar", "variant": "min_pv", "min_amps": 6, "max_amps": 16}
)
EARLIER = T0 - timedelta(hours=2)


def snapshot(minute: float, **charger: object) -> Snapshot:
    return Snapshot(
        now=T0 + timedelta(minutes=minute),
        timezone="UTC",
        chargers=(make_charger(**charger),),
        surplus=Surplus(5000.0, "latest_power"),
    )


def charging_decision(
    memory: Memory, minute: float = 0, **charger: object
) -> tuple[Decision, Memory]:
    decisions, after = evaluate(snapshot(minute, **charger), ALWAYS_ON, memory)
    found = next(d for d in decisions if d.target == "charging")
    return found, after


def decision(action: str, target: str = "charging", **params: object) -> Decision:
    return Decision("p", SN, target, action, dict(params), "why", {})  # type: ignore[arg-type]


def memory_with(**fields: object) -> Memory:
    return Memory(chargers={SN: ChargerMemory.model_validate(fields)})


def test_a_refused_start_is_forgotten_and_its_start_time_restored() -> None:
    before = memory_with(started_at=EARLIER, commanded_on=False, last_seen_plugged_in=True)
    start, after = charging_decision(before)
    assert start.action == "start"
    assert after.chargers[SN].commanded_on is True
    assert after.chargers[SN].started_at == T0

    fixed = acknowledge(after, start, applied=False, before=before)
    known = fixed.chargers[SN]
    assert (known.commanded_on, known.commanded_amps) == (None, None)
    assert known.started_at == EARLIER
    assert after.chargers[SN].commanded_on is True  # the input is left alone


def test_without_the_previous_memory_the_marks_are_cleared() -> None:
    start, after = charging_decision(Memory())
    fixed = acknowledge(after, start, applied=False)
    assert fixed.chargers[SN].started_at is None


def test_applied_and_holds_change_nothing() -> None:
    start, after = charging_decision(Memory())
    assert acknowledge(after, start, applied=True) is after
    assert acknowledge(after, decision("hold"), applied=False) is after
    assert acknowledge(after, decision("patch_schedules", "schedules"), applied=False) is after


def test_a_refused_level_change_gives_back_its_slot_in_the_hour() -> None:
    tick = T0
    after = memory_with(
        commanded_on=True,
        commanded_amps=10,
        commanded_at=tick,
        level_changes=[T0 - timedelta(minutes=20), tick],
    )
    fixed = acknowledge(after, decision("set_amps", amps=10), applied=False)
    known = fixed.chargers[SN]
    assert known.level_changes == [T0 - timedelta(minutes=20)]
    assert (known.commanded_on, known.commanded_amps) == (None, None)


def test_a_failed_stop_restores_the_last_stop() -> None:
    before = memory_with(stopped_at=EARLIER)
    after = memory_with(commanded_on=False, commanded_at=T0, stopped_at=T0)
    fixed = acknowledge(after, decision("stop"), applied=False, before=before)
    assert fixed.chargers[SN].stopped_at == EARLIER
    assert fixed.chargers[SN].commanded_on is None


def test_mode_and_battery_forget_only_their_own_target() -> None:
    after = memory_with(
        commanded_on=True,
        commanded_amps=16,
        commanded_mode="GREEN_CHARGING",
        commanded_battery=False,
    )
    mode = acknowledge(after, decision("set_mode", "mode", mode="GREEN_CHARGING"), applied=False)
    assert mode.chargers[SN].commanded_mode is None
    assert mode.chargers[SN].commanded_battery is False
    assert mode.chargers[SN].commanded_on is True
    battery = acknowledge(after, decision("set_battery", "battery", enabled=False), applied=False)
    assert battery.chargers[SN].commanded_battery is None
    assert battery.chargers[SN].commanded_mode == "GREEN_CHARGING"


def test_a_refused_start_is_not_taken_for_a_user_override() -> None:
    """Past the settle time the charger is still idle: decide again, do not hold for an hour."""
    first, remembered = charging_decision(Memory())
    assert first.action == "start"
    later = 5  # minutes, well past the 90 s settle time

    stale, _ = charging_decision(remembered, later)
    # What acknowledge prevents: the idle charger taken for the user's own stop.
    assert (stale.action, stale.policy, stale.observed) == ("stop", OVERRIDE, True)

    fixed = acknowledge(remembered, first, applied=False, before=Memory())
    again, _ = charging_decision(fixed, later)
    assert (again.action, again.policy) == ("start", "always")
