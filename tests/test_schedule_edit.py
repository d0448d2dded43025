"""Schedule edits change exactly one slot: the PATCH replaces the whole list, so nothing else may
move, and every bad edit is refused with a ScheduleEditError before anything is sent."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.enlighten.errors import EXIT_INVALID, EnlightenError
from optimizer.enlighten.models import ScheduleSlot, parse_schedules
from optimizer.enlighten.schedule_edit import (
    ALL_DAYS,
    AddSlot,
    DeleteSlot,
    DisableSlot,
    Edit,
    EnableSlot,
    ScheduleEditError,
    SetSlot,
    apply_edit,
    describe_edit,
    format_days,
    new_slot_id,
    patch_body,
    resolve_slot,
    slot_summary,
)
from tests.fixtures import DELETE, at, load_fixture, patched_fixture, set_at
from tests.profiles import examples

CUSTOM_ID = "1234567:EV9876543210:7f1c2a9e-0c4b-4f7e-9d61-3b8a5e2f4c10"
OFF_PEAK_ID = "1234567:EV9876543210:0a9d3e55-8b1f-4c2d-a7e4-6f0b9c1d2e33"
NEW_ID = "1234567:EV9876543210:97455823-1111-4222-8333-444455556666"
STAMP = "2025-01-01T00:00:00.000+00:00"
WIRE_KEYS = [
    "id",
    "startTime",
    "endTime",
    "chargingLevel",
    "chargingLevelAmp",
    "scheduleType",
    "days",
    "remindTime",
    "remindFlag",
    "enabled",
    "recurringKind",
    "chargeLevelType",
    "sourceType",
    "reminderTimeUtc",
    "serializedDays",
]
# Each example draws up to eight wire slots of a dozen fields: ~30 ms of generation alone, so
# 50 here (500 in `make soak`), over six properties.
PROPERTY_SETTINGS = settings(
    max_examples=examples(50), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def fixture_slots(*patches: Any) -> tuple[ScheduleSlot, ...]:
    return parse_schedules(patched_fixture("schedules", *patches)).slots


def slots_from_wire(raw: list[Any]) -> tuple[ScheduleSlot, ...]:
    return parse_schedules({"data": {"slots": raw}}).slots


def wire(slots: Sequence[ScheduleSlot]) -> list[dict[str, Any]]:
    return [slot.to_wire() for slot in slots]


def edit_error(slots: Sequence[ScheduleSlot], edit: Edit, **kwargs: Any) -> str:
    with pytest.raises(ScheduleEditError) as caught:
        apply_edit(slots, edit, **kwargs)
    return caught.value.message


# --- enable, disable, delete -------------------------------------------------------------------


def test_enable_changes_only_the_enabled_flag_and_keeps_the_other_slot() -> None:
    slots = fixture_slots()
    after = apply_edit(slots, EnableSlot(OFF_PEAK_ID))
    assert after[0] is slots[0]
    assert after[1].to_wire() == {**slots[1].to_wire(), "enabled": True}
    assert describe_edit(slots, after) == "slot 2 (OFF_PEAK): enabled"


def test_disable_a_custom_slot() -> None:
    slots = fixture_slots()
    after = apply_edit(slots, DisableSlot(CUSTOM_ID))
    assert after[1] is slots[1]
    assert after[0].to_wire() == {**slots[0].to_wire(), "enabled": False}
    assert describe_edit(slots, after) == "slot 1 (CUSTOM 23:00-06:00): disabled"


def test_enabling_an_enabled_slot_is_a_no_op() -> None:
    slots = fixture_slots()
    after = apply_edit(slots, EnableSlot(CUSTOM_ID))
    assert all(new is old for new, old in zip(after, slots, strict=True))
    assert describe_edit(slots, after) == "no change"


def test_delete_a_custom_slot() -> None:
    slots = fixture_slots()
    after = apply_edit(slots, DeleteSlot(CUSTOM_ID))
    assert after == (slots[1],)
    assert after[0] is slots[1]
    assert describe_edit(slots, after) == "deleted slot 1 (CUSTOM 23:00-06:00 daily at 32 A)"


def test_off_peak_cannot_be_deleted() -> None:
    message = edit_error(fixture_slots(), DeleteSlot(OFF_PEAK_ID))
    assert message.startswith("slot 2 (OFF_PEAK)")
    assert "system-defined" in message
    assert "disable it instead" in message


# --- set ---------------------------------------------------------------------------------------


def test_time_edit_auto_enables_and_normalises() -> None:
    slots = fixture_slots(at("data.slots.0", {"enabled": False}))
    after = apply_edit(slots, SetSlot(CUSTOM_ID, start_time="7:00"))
    assert after[1] is slots[1]
    assert after[0].to_wire() == {**slots[0].to_wire(), "startTime": "07:00", "enabled": True}
    assert (
        describe_edit(slots, after) == "slot 1 (CUSTOM 23:00-06:00): start 23:00 -> 07:00, enabled"
    )


def test_end_time_edit_keeps_the_stored_start() -> None:
    slots = fixture_slots()
    after = apply_edit(slots, SetSlot(CUSTOM_ID, end_time="05:30"))
    assert (after[0].start_time, after[0].end_time, after[0].enabled) == ("23:00", "05:30", True)


def test_setting_the_same_time_changes_nothing_and_does_not_enable() -> None:
    slots = fixture_slots(at("data.slots.0", {"enabled": False, "startTime": "7:00"}))
    after = apply_edit(slots, SetSlot(CUSTOM_ID, start_time="07:00"))
    assert after[0] is slots[0]
    assert after[0].to_wire()["startTime"] == "7:00"


def test_level_sets_both_level_fields_and_days_are_sorted() -> None:
    slots = fixture_slots(at("data.slots.0", {"enabled": False}))
    after = apply_edit(slots, SetSlot(CUSTOM_ID, days=(5, 3, 1, 2, 4), charging_level=16))
    assert after[0].to_wire() == {
        **slots[0].to_wire(),
        "days": [1, 2, 3, 4, 5],
        "chargingLevel": 16,
        "chargingLevelAmp": 16,
    }
    assert not after[0].enabled  # only a time edit enables
    assert describe_edit(slots, after) == (
        "slot 1 (CUSTOM 23:00-06:00): days daily -> Mon-Fri, level 32 A -> 16 A"
    )


def test_off_peak_level_and_days_may_be_set() -> None:
    slots = fixture_slots(at("data.slots.1", {"days": DELETE}))
    after = apply_edit(slots, SetSlot(OFF_PEAK_ID, days=(6, 7), charging_level=24))
    assert after[1].to_wire() == {
        **slots[1].to_wire(),
        "days": [6, 7],
        "chargingLevel": 24,
        "chargingLevelAmp": 24,
    }
    # Missing OFF_PEAK days already mean every day: setting all seven is no change.
    assert apply_edit(slots, SetSlot(OFF_PEAK_ID, days=ALL_DAYS))[1] is slots[1]


@pytest.mark.parametrize(
    "edit",
    [
        SetSlot(OFF_PEAK_ID, start_time="01:00"),
        SetSlot(OFF_PEAK_ID, end_time="05:00", charging_level=16),
        SetSlot(OFF_PEAK_ID, start_time="01:00", end_time="05:00"),
    ],
)
def test_off_peak_has_no_times(edit: SetSlot) -> None:
    message = edit_error(fixture_slots(), edit)
    assert message == (
        "slot 2 (OFF_PEAK): OFF_PEAK follows the utility's off-peak window; "
        "only enable, disable or set its level/days"
    )


def test_set_nothing_is_an_error() -> None:
    message = edit_error(fixture_slots(), SetSlot(CUSTOM_ID))
    assert message.startswith("slot 1 (CUSTOM 23:00-06:00): nothing to change")


def test_one_sided_time_edit_needs_a_stored_counterpart() -> None:
    slots = fixture_slots(at("data.slots.0", {"endTime": None}))
    message = edit_error(slots, SetSlot(CUSTOM_ID, start_time="22:00"))
    assert message.startswith("slot 1 (CUSTOM 23:00-?): the slot has no end time")
    after = apply_edit(slots, SetSlot(CUSTOM_ID, start_time="22:00", end_time="6:00"))
    assert (after[0].start_time, after[0].end_time) == ("22:00", "06:00")
    garbled = fixture_slots(at("data.slots.0", {"startTime": "late"}))
    assert "stored start time 'late'" in edit_error(garbled, SetSlot(CUSTOM_ID, end_time="01:00"))


def test_start_equal_to_end_is_refused_after_normalising() -> None:
    message = edit_error(fixture_slots(), SetSlot(CUSTOM_ID, start_time="6:00"))
    assert message.startswith("slot 1 (CUSTOM 23:00-06:00): start and end are both 06:00")


ARABIC_INDIC_0700 = "\u0660\u0667:\u0660\u0660"  # \d would take these; HH:MM must not
BAD_TIMES = ["24:00", "23:60", "7", "0700", "07:00:00", "ab:cd", "", "-1:00", "07:5", 700]
BAD_TIMES.append(ARABIC_INDIC_0700)


@pytest.mark.parametrize("value", BAD_TIMES)
def test_bad_times_are_refused_with_the_valid_range(value: Any) -> None:
    message = edit_error(fixture_slots(), SetSlot(CUSTOM_ID, start_time=value))
    assert message == (
        f"slot 1 (CUSTOM 23:00-06:00): start time {value!r} is not a time of day; "
        "use HH:MM from 00:00 to 23:59"
    )
    message = edit_error(fixture_slots(), AddSlot("01:00", value), new_id=NEW_ID)
    assert message.startswith(f"new slot: end time {value!r} is not a time of day")


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ((), "days is empty; give at least one day, use 1 (Mon) to 7 (Sun)"),
        ((0, 1), "days has 0, which is not a day; use 1 (Mon) to 7 (Sun)"),
        ((8,), "days has 8, which is not a day"),
        ((True,), "days has True, which is not a day"),
        (("1",), "days has '1', which is not a day"),
        ((1, 3, 1), "days repeats 1 (Mon); give each day once"),
        ("12345", "is not a list of days"),
        (5, "is not a list of days"),
    ],
)
def test_bad_days_are_refused(days: Any, expected: str) -> None:
    message = edit_error(fixture_slots(), SetSlot(OFF_PEAK_ID, days=days))
    assert message.startswith("slot 2 (OFF_PEAK): ")
    assert expected in message
    assert expected in edit_error(fixture_slots(), AddSlot("1:00", "2:00", days=days), new_id="x")


@pytest.mark.parametrize("level", [0, -6, True, "16", 16.0])
def test_level_must_be_a_positive_int(level: Any) -> None:
    message = edit_error(fixture_slots(), SetSlot(CUSTOM_ID, charging_level=level))
    assert message == (
        f"slot 1 (CUSTOM 23:00-06:00): charging level {level!r} is not valid; "
        "use a whole number of amps above 0"
    )


def test_level_range_is_left_to_the_client() -> None:
    after = apply_edit(fixture_slots(), SetSlot(CUSTOM_ID, charging_level=500))
    assert after[0].charging_level == after[0].charging_level_amp == 500


def test_unknown_slot_id_lists_the_known_ids() -> None:
    for edit in (
        SetSlot("nope", charging_level=6),
        EnableSlot("nope"),
        DisableSlot("nope"),
        DeleteSlot("nope"),
    ):
        assert edit_error(fixture_slots(), edit) == (
            f"unknown slot id 'nope'; known ids: {CUSTOM_ID}, {OFF_PEAK_ID}"
        )


def test_duplicate_ids_are_never_guessed() -> None:
    slots = fixture_slots(at("data.slots.1", {"id": CUSTOM_ID}))
    assert "ambiguous" in edit_error(slots, DisableSlot(CUSTOM_ID))
    with pytest.raises(ScheduleEditError, match="ambiguous"):
        resolve_slot(slots, CUSTOM_ID)


# --- add ---------------------------------------------------------------------------------------


def test_add_appends_a_custom_slot() -> None:
    slots = fixture_slots()
    after = apply_edit(
        slots, AddSlot("1:00", "05:00", days=(5, 4, 3, 2, 1), charging_level=16), new_id=NEW_ID
    )
    assert after[:2] == slots
    assert all(new is old for new, old in zip(after, slots, strict=False))
    assert after[2].to_wire() == {
        "id": NEW_ID,
        "startTime": "01:00",
        "endTime": "05:00",
        "chargingLevel": 16,
        "chargingLevelAmp": 16,
        "scheduleType": "CUSTOM",
        "days": [1, 2, 3, 4, 5],
        "remindTime": 10,
        "remindFlag": False,
        "enabled": True,
        "recurringKind": "Recurring",
        "chargeLevelType": "Weekly",
        "sourceType": "SYSTEM",
        "reminderTimeUtc": None,
        "serializedDays": None,
    }
    assert describe_edit(slots, after) == "added slot 3: CUSTOM 01:00-05:00 Mon-Fri at 16 A"


def test_add_copies_the_deployments_spellings_from_a_custom_slot() -> None:
    slots = fixture_slots(
        at(
            "data.slots.0",
            {"recurringKind": None, "chargeLevelType": "Daily", "sourceType": "USER"},
        ),
        at("data.slots.1", {"recurringKind": "Off", "sourceType": "OTHER"}),
    )
    added = apply_edit(slots, AddSlot("01:00", "02:00"), new_id=NEW_ID)[-1]
    # A null on the CUSTOM slot falls back to the default; OFF_PEAK spellings are not copied.
    assert (added.recurring_kind, added.charge_level_type, added.source_type) == (
        "Recurring",
        "Daily",
        "USER",
    )


def test_add_without_custom_slots_uses_defaults() -> None:
    slots = fixture_slots(set_at("data.slots", [load_fixture("schedules")["data"]["slots"][1]]))
    added = apply_edit(
        slots,
        AddSlot("22:00", "23:00", enabled=False, remind_flag=True, remind_time=30),
        new_id=NEW_ID,
    )[-1]
    assert (added.recurring_kind, added.charge_level_type, added.source_type) == (
        "Recurring",
        "Weekly",
        "SYSTEM",
    )
    assert (added.enabled, added.remind_flag, added.remind_time) == (False, True, 30)
    assert (added.charging_level, added.charging_level_amp, added.days) == (None, None, ALL_DAYS)
    assert describe_edit(slots, (*slots, added)) == (
        "added slot 2: CUSTOM 22:00-23:00 daily (disabled)"
    )


@pytest.mark.parametrize(
    ("edit", "new_id", "expected"),
    [
        (AddSlot("01:00", "02:00"), None, "new slot: no id given"),
        (AddSlot("01:00", "02:00"), "  ", "new slot: no id given"),
        (AddSlot("01:00", "02:00"), CUSTOM_ID, f"new slot: id '{CUSTOM_ID}' is already used by 1:"),
        (AddSlot("01:00", "1:00"), NEW_ID, "new slot: start and end are both 01:00"),
        (AddSlot("01:00", "02:00", charging_level=0), NEW_ID, "new slot: charging level 0"),
        (AddSlot("01:00", "02:00", remind_time=-1), NEW_ID, "new slot: reminder time -1"),
        (AddSlot("01:00", "02:00", enabled="yes"), NEW_ID, "new slot: enabled 'yes'"),  # type: ignore[arg-type]
    ],
)
def test_bad_adds(edit: AddSlot, new_id: str | None, expected: str) -> None:
    assert edit_error(fixture_slots(), edit, new_id=new_id).startswith(expected)


def test_new_slot_id_format() -> None:
    assert (
        new_slot_id(1234567, "EV9876543210", "97455823-aaaa")
        == "1234567:EV9876543210:97455823-aaaa"
    )


# --- resolve_slot ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (CUSTOM_ID, CUSTOM_ID),
        (f"  {OFF_PEAK_ID} ", OFF_PEAK_ID),
        ("1", CUSTOM_ID),
        ("2", OFF_PEAK_ID),
        ("7f1c2a9e", CUSTOM_ID),
        ("0A9D3E55", OFF_PEAK_ID),
        ("2e33", OFF_PEAK_ID),
        ("3b8a5e2f4c10", CUSTOM_ID),
        ("0a9d3e55-8b1f-4c2d-a7e4-6f0b9c1d2e33", OFF_PEAK_ID),
    ],
)
def test_resolve_slot(ref: str, expected: str) -> None:
    assert resolve_slot(fixture_slots(), ref).id == expected


def test_resolve_prefers_an_exact_id_over_an_index() -> None:
    slots = fixture_slots(at("data.slots.0", {"id": 2}), at("data.slots.1", {"id": 1}))
    assert resolve_slot(slots, "2") is slots[0]
    assert resolve_slot(slots, "1") is slots[1]


def test_resolve_ambiguous_lists_the_candidates() -> None:
    slots = fixture_slots(
        at("data.slots.0", {"id": "1:EV:97455823-aaaa"}),
        at("data.slots.1", {"id": "1:EV:97455823-bbbb"}),
    )
    with pytest.raises(ScheduleEditError) as caught:
        resolve_slot(slots, "97455823")
    assert caught.value.message == (
        "slot '97455823' is ambiguous, it matches 1: 1:EV:97455823-aaaa (CUSTOM 23:00-06:00); "
        "2: 1:EV:97455823-bbbb (OFF_PEAK); give more of the id or use the index"
    )
    assert resolve_slot(slots, "97455823-b") is slots[1]


@pytest.mark.parametrize("ref", ["3", "0", "deadbeef", "7f1", "", "   ", "1:EV9876543210"])
def test_resolve_unknown_lists_every_slot(ref: str) -> None:
    with pytest.raises(ScheduleEditError) as caught:
        resolve_slot(fixture_slots(), ref)
    message = caught.value.message
    assert f"1: {CUSTOM_ID} (CUSTOM 23:00-06:00); 2: {OFF_PEAK_ID} (OFF_PEAK)" in message
    assert "index 1-2" in message


def test_resolve_without_slots() -> None:
    with pytest.raises(ScheduleEditError, match="no schedule slots"):
        resolve_slot((), "1")


# --- patch_body --------------------------------------------------------------------------------


def test_patch_body_of_the_fixture_is_the_fixture() -> None:
    payload = load_fixture("schedules")
    body = patch_body(parse_schedules(payload).slots, server_timestamp=STAMP)
    assert body == {
        "meta": {"serverTimeStamp": STAMP, "rowCount": 2},
        "data": payload["data"]["slots"],
    }
    assert all(list(slot) == WIRE_KEYS for slot in body["data"])


def test_patch_body_normalises_wire_oddities() -> None:
    slots = fixture_slots(
        at(
            "data.slots.0",
            {"id": 42, "enabled": "false", "chargingLevel": "32", "remindFlag": 1, "extra": 1},
        ),
        at("data.slots.1", {"days": DELETE, "enabled": "true", "remindTime": "15"}),
    )
    after = apply_edit(slots, SetSlot("42", charging_level=20))
    body = patch_body(after, server_timestamp=STAMP)
    assert body["meta"] == {"serverTimeStamp": STAMP, "rowCount": 2}
    custom, off_peak = body["data"]
    assert list(custom) == list(off_peak) == WIRE_KEYS
    assert (custom["id"], custom["enabled"], custom["remindFlag"]) == ("42", False, True)
    assert (custom["chargingLevel"], custom["chargingLevelAmp"]) == (20, 20)
    assert (off_peak["days"], off_peak["enabled"], off_peak["remindTime"]) == (
        [1, 2, 3, 4, 5, 6, 7],
        True,
        15,
    )


def test_patch_body_of_no_slots() -> None:
    assert patch_body((), server_timestamp=STAMP) == {
        "meta": {"serverTimeStamp": STAMP, "rowCount": 0},
        "data": [],
    }


# --- describing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (ALL_DAYS, "daily"),
        ((1, 2, 3, 4, 5), "Mon-Fri"),
        ((6, 7), "Sat-Sun"),
        ((1, 3, 5), "Mon,Wed,Fri"),
        ((7, 1, 2), "Mon-Tue,Sun"),
        ((), "no days"),
    ],
)
def test_format_days(days: tuple[int, ...], expected: str) -> None:
    assert format_days(days) == expected


def test_slot_summary() -> None:
    custom, off_peak = fixture_slots()
    assert (slot_summary(custom), slot_summary(off_peak)) == ("CUSTOM 23:00-06:00", "OFF_PEAK")


def test_describe_edit_end_and_level_changes() -> None:
    slots = fixture_slots(at("data.slots.1", {"chargingLevel": None, "chargingLevelAmp": None}))
    after = apply_edit(slots, SetSlot(OFF_PEAK_ID, charging_level=8))
    assert describe_edit(slots, after) == "slot 2 (OFF_PEAK): level unset -> 8 A"
    after = apply_edit(slots, SetSlot(CUSTOM_ID, end_time="04:00"))
    assert describe_edit(slots, after) == "slot 1 (CUSTOM 23:00-06:00): end 06:00 -> 04:00"


def test_error_is_an_invalid_input_enlighten_error() -> None:
    error = ScheduleEditError("x")
    assert isinstance(error, EnlightenError)
    assert error.exit_code == EXIT_INVALID
    assert "evopt schedule list" in error.hint
    assert error.user_message().startswith("x; ")


# --- properties --------------------------------------------------------------------------------

_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})", re.ASCII)


def norm_time(value: Any) -> str | None:
    """The test's own reading of a time, independent of the module's."""
    if not isinstance(value, str) or not (match := _TIME.fullmatch(value.strip())):
        return None
    hour, minute = int(match[1]), int(match[2])
    return f"{hour:02d}:{minute:02d}" if hour < 24 and minute < 60 else None


valid_times = st.builds(
    lambda hour, minute, padded: f"{hour:02d}:{minute:02d}" if padded else f"{hour}:{minute:02d}",
    st.integers(0, 23),
    st.integers(0, 59),
    st.booleans(),
)
bad_times = st.one_of(
    st.sampled_from(BAD_TIMES),
    st.text(max_size=6).filter(lambda text: norm_time(text) is None),
    st.integers(),
    st.none().map(lambda _: b"07:00"),
)
wire_times = st.one_of(st.none(), valid_times, st.sampled_from(["25:00", "late", "7:0", ""]))
levels = st.one_of(st.none(), st.integers(0, 80), st.integers(0, 80).map(str), st.just("n/a"))
flags = st.one_of(st.booleans(), st.sampled_from(["true", "false", "True", "0", "1", 0, 1]))
valid_days = st.lists(st.integers(1, 7), min_size=1, max_size=7, unique=True).map(tuple)
bad_days = st.one_of(
    st.just(()),
    st.lists(st.integers(1, 7), min_size=1, max_size=3).map(lambda days: (*days, days[0])),
    st.lists(st.integers().filter(lambda day: not 1 <= day <= 7), min_size=1, max_size=3).map(
        tuple
    ),
    st.sampled_from([(True,), ("1",), (1.0,), "123", 3]),
)
bad_levels = st.one_of(st.integers(max_value=0), st.sampled_from([True, False, "16", 16.0, 0.5]))
words = st.sampled_from(["Recurring", "Weekly", "SYSTEM", "USER", "OneTime", " odd "])
slot_ids = st.one_of(
    st.integers(0, 10**12),
    st.builds(lambda uuid: f"1234567:EV9876543210:{uuid}", st.uuids()),
    st.text("0123456789abcdef", min_size=4, max_size=12),
)


# The strategies of one wire slot's fields, built once: a strategy made inside a draw is a new
# object each example, validated again by hypothesis every time (a third of this file's CPU).
# The same strategies as when they were written inline, so the same slots are drawn.
schedule_types = st.sampled_from(["CUSTOM", "OFF_PEAK"])
wire_days = st.one_of(
    st.none(),
    st.lists(st.one_of(st.integers(0, 8), st.sampled_from(["3", None])), max_size=8),
)
remind_times = st.one_of(st.none(), st.integers(0, 60), st.just("10"))
maybe_flags = st.one_of(st.none(), flags)
maybe_words = st.one_of(st.none(), words)
maybe_times = st.one_of(st.none(), valid_times)
serialized_days = st.one_of(st.none(), st.just("1,2,3"), st.just([1, 2]))
OPTIONAL_KEYS = sorted(
    [
        "startTime",
        "endTime",
        "chargingLevel",
        "chargingLevelAmp",
        "days",
        "remindTime",
        "remindFlag",
        "recurringKind",
        "chargeLevelType",
        "sourceType",
        "reminderTimeUtc",
        "serializedDays",
        "unknownField",
    ]
)
kept_keys = st.sets(st.sampled_from(OPTIONAL_KEYS))


@st.composite
def wire_slot(draw: st.DrawFn) -> dict[str, Any]:
    schedule_type = draw(schedule_types)
    required = {
        "id": draw(slot_ids),
        "scheduleType": schedule_type,
        "enabled": draw(flags),
    }
    optional = {
        "startTime": draw(wire_times),
        "endTime": draw(wire_times),
        "chargingLevel": draw(levels),
        "chargingLevelAmp": draw(levels),
        "days": draw(wire_days),
        "remindTime": draw(remind_times),
        "remindFlag": draw(maybe_flags),
        "recurringKind": draw(maybe_words),
        "chargeLevelType": draw(maybe_words),
        "sourceType": draw(maybe_words),
        "reminderTimeUtc": draw(maybe_times),
        "serializedDays": draw(serialized_days),
        "unknownField": "dropped",
    }
    assert sorted(optional) == OPTIONAL_KEYS
    kept = draw(kept_keys)
    return {**required, **{key: value for key, value in optional.items() if key in kept}}


slot_lists = st.lists(
    wire_slot(), min_size=1, max_size=8, unique_by=lambda raw: str(raw["id"])
).map(slots_from_wire)


def time_options(slot: ScheduleSlot, draw: st.DrawFn) -> dict[str, str]:
    """Valid time changes for a non-OFF_PEAK slot: none, both, or one against a usable stored."""
    choice = draw(st.sampled_from(["none", "both", "start", "end"]))
    if choice == "both":
        start = draw(valid_times)
        end = draw(valid_times.filter(lambda t: norm_time(t) != norm_time(start)))
        return {"start_time": start, "end_time": end}
    stored_end, stored_start = norm_time(slot.end_time), norm_time(slot.start_time)
    if choice == "start" and stored_end is not None:
        return {"start_time": draw(valid_times.filter(lambda t: norm_time(t) != stored_end))}
    if choice == "end" and stored_start is not None:
        return {"end_time": draw(valid_times.filter(lambda t: norm_time(t) != stored_start))}
    return {}


@st.composite
def valid_edits(draw: st.DrawFn, slots: tuple[ScheduleSlot, ...]) -> tuple[Edit, str | None]:
    slot = draw(st.sampled_from(slots))
    kind = draw(st.sampled_from(["add", "enable", "disable", "delete", "set"]))
    if kind == "add":
        ids = {s.id for s in slots}
        new_id = draw(slot_ids.map(str).filter(lambda new: new not in ids))
        start = draw(valid_times)
        return AddSlot(
            start_time=start,
            end_time=draw(valid_times.filter(lambda t: norm_time(t) != norm_time(start))),
            days=draw(valid_days),
            charging_level=draw(st.one_of(st.none(), st.integers(1, 80))),
            enabled=draw(st.booleans()),
            remind_flag=draw(st.booleans()),
            remind_time=draw(st.integers(0, 120)),
        ), new_id
    if kind == "delete" and slot.schedule_type != "OFF_PEAK":
        return DeleteSlot(slot.id), None
    if kind == "set":
        fields: dict[str, Any] = {}
        if slot.schedule_type != "OFF_PEAK":
            fields.update(time_options(slot, draw))
        if draw(st.booleans()):
            fields["days"] = draw(valid_days)
        if draw(st.booleans()) or not fields:
            fields["charging_level"] = draw(st.integers(1, 80))
        return SetSlot(slot.id, **fields), None
    return (EnableSlot(slot.id) if kind == "enable" else DisableSlot(slot.id)), None


@st.composite
def invalid_edits(draw: st.DrawFn, slots: tuple[ScheduleSlot, ...]) -> tuple[Edit, str | None]:
    ids = {slot.id for slot in slots}
    slot = draw(st.sampled_from(slots))
    timed = [s for s in slots if s.schedule_type != "OFF_PEAK"]
    off_peak = [s for s in slots if s.schedule_type == "OFF_PEAK"]
    flaws: list[Callable[[], tuple[Edit, str | None]]] = [
        lambda: (
            draw(st.sampled_from([SetSlot, EnableSlot, DisableSlot, DeleteSlot]))(
                draw(st.text(max_size=10).filter(lambda text: text not in ids))
            ),
            None,
        ),
        lambda: (SetSlot(slot.id), None),
        lambda: (SetSlot(slot.id, days=draw(bad_days)), None),
        lambda: (SetSlot(slot.id, charging_level=draw(bad_levels)), None),
        lambda: (AddSlot(draw(bad_times), draw(valid_times)), "fresh"),
        lambda: (
            AddSlot("01:00", draw(valid_times.filter(lambda t: norm_time(t) == "01:00"))),
            "x",
        ),
        lambda: (AddSlot("01:00", "02:00", days=draw(bad_days)), "fresh"),
        lambda: (AddSlot("01:00", "02:00", charging_level=draw(bad_levels)), "fresh"),
        lambda: (AddSlot("01:00", "02:00", remind_time=draw(st.integers(max_value=-1))), "x"),
        lambda: (AddSlot("01:00", "02:00"), draw(st.sampled_from([None, "", " ", slot.id]))),
    ]
    if timed:
        target = draw(st.sampled_from(timed))
        flaws += [
            lambda: (SetSlot(target.id, start_time=draw(bad_times), end_time="01:00"), None),
            lambda: (SetSlot(target.id, start_time="01:00", end_time=draw(bad_times)), None),
            lambda: (SetSlot(target.id, start_time="5:00", end_time="05:00"), None),
        ]
    if off_peak:
        target_off = draw(st.sampled_from(off_peak))
        flaws += [
            lambda: (DeleteSlot(target_off.id), None),
            lambda: (SetSlot(target_off.id, start_time=draw(valid_times)), None),
            lambda: (SetSlot(target_off.id, end_time=draw(valid_times), charging_level=6), None),
        ]
    return draw(st.sampled_from(flaws))()


def targeted(before: dict[str, Any], after: dict[str, Any], edit: Edit) -> set[str]:
    """Wire keys the edit may change; also checks they hold what the edit asked for."""
    if isinstance(edit, EnableSlot | DisableSlot):
        assert after["enabled"] is isinstance(edit, EnableSlot)
        return {"enabled"}
    assert isinstance(edit, SetSlot)
    keys: set[str] = set()
    if edit.start_time is not None or edit.end_time is not None:
        keys |= {"startTime", "endTime", "enabled"}
        for key, given in (("startTime", edit.start_time), ("endTime", edit.end_time)):
            if given is None:
                assert after[key] == before[key]
            else:
                assert norm_time(after[key]) == norm_time(given)
        moved = (after["startTime"], after["endTime"]) != (before["startTime"], before["endTime"])
        assert after["enabled"] is (True if moved else before["enabled"])
    if edit.days is not None:
        keys.add("days")
        assert after["days"] == sorted(edit.days)
    if edit.charging_level is not None:
        keys |= {"chargingLevel", "chargingLevelAmp"}
        assert after["chargingLevel"] == after["chargingLevelAmp"] == edit.charging_level
    return keys


def index_of(slots: Sequence[ScheduleSlot], slot_id: str) -> int:
    return next(i for i, slot in enumerate(slots) if slot.id == slot_id)


def check_body(
    slots: tuple[ScheduleSlot, ...], after: tuple[ScheduleSlot, ...]
) -> list[dict[str, Any]]:
    body = patch_body(after, server_timestamp=STAMP)
    data = body["data"]
    assert body["meta"] == {"serverTimeStamp": STAMP, "rowCount": len(data)}
    assert len(data) == len(after)
    assert all(list(slot) == WIRE_KEYS for slot in data)
    assert all(isinstance(slot["id"], str) for slot in data)
    # The body is what the scheduler would send back: it parses to the same wire again.
    assert wire(slots_from_wire(data)) == data
    sentence = describe_edit(slots, after)
    assert isinstance(sentence, str)
    assert sentence
    return data


@PROPERTY_SETTINGS
@given(st.data(), slot_lists)
def test_valid_edits_change_exactly_the_targeted_slot(
    data: st.DataObject, slots: tuple[ScheduleSlot, ...]
) -> None:
    edit, new_id = data.draw(valid_edits(slots))
    after = apply_edit(slots, edit, new_id=new_id)
    body = check_body(slots, after)
    before = wire(slots)
    if isinstance(edit, AddSlot):
        assert body[:-1] == before
        assert all(new is old for new, old in zip(after, slots, strict=False))
        added = body[-1]
        assert (added["id"], added["scheduleType"]) == (new_id, "CUSTOM")
        assert (norm_time(added["startTime"]), norm_time(added["endTime"])) == (
            norm_time(edit.start_time),
            norm_time(edit.end_time),
        )
        assert (added["startTime"], added["endTime"]) == (
            norm_time(edit.start_time),
            norm_time(edit.end_time),
        )
        assert added["days"] == sorted(edit.days)
        assert added["chargingLevel"] == added["chargingLevelAmp"] == edit.charging_level
        assert (added["enabled"], added["remindFlag"], added["remindTime"]) == (
            edit.enabled,
            edit.remind_flag,
            edit.remind_time,
        )
        return
    index = index_of(slots, edit.slot_id)
    if isinstance(edit, DeleteSlot):
        assert body == before[:index] + before[index + 1 :]
        assert list(after) == [slot for i, slot in enumerate(slots) if i != index]
        return
    assert body[:index] == before[:index]
    assert body[index + 1 :] == before[index + 1 :]
    assert all(after[i] is slots[i] for i in range(len(slots)) if i != index)
    keys = targeted(before[index], body[index], edit)
    assert {k: v for k, v in body[index].items() if k not in keys} == {
        k: v for k, v in before[index].items() if k not in keys
    }


@PROPERTY_SETTINGS
@given(st.data(), slot_lists)
def test_invalid_edits_raise_schedule_edit_error(
    data: st.DataObject, slots: tuple[ScheduleSlot, ...]
) -> None:
    edit, new_id = data.draw(invalid_edits(slots))
    with pytest.raises(ScheduleEditError) as caught:
        apply_edit(slots, edit, new_id=new_id)
    assert caught.value.exit_code == EXIT_INVALID
    assert caught.value.message


anything = st.one_of(
    st.none(), st.text(max_size=8), st.integers(-5, 30), st.booleans(), valid_times, bad_days
)


@st.composite
def any_edits(draw: st.DrawFn, slots: tuple[ScheduleSlot, ...]) -> tuple[Edit, str | None]:
    """Edits with arbitrary field values, valid or not."""
    ids = st.one_of(st.sampled_from([slot.id for slot in slots]), st.text(max_size=6))
    new_id = draw(st.one_of(st.none(), ids, slot_ids.map(str)))
    edit = draw(
        st.one_of(
            st.builds(
                AddSlot, anything, anything, anything, anything, anything, anything, anything
            ),
            st.builds(SetSlot, ids, anything, anything, anything, anything),
            st.builds(EnableSlot, ids),
            st.builds(DisableSlot, ids),
            st.builds(DeleteSlot, ids),
        )
    )
    return edit, new_id


@PROPERTY_SETTINGS
@given(st.data(), slot_lists)
def test_any_edit_is_refused_cleanly_or_changes_at_most_one_slot(
    data: st.DataObject, slots: tuple[ScheduleSlot, ...]
) -> None:
    edit, new_id = data.draw(any_edits(slots))
    try:
        after = apply_edit(slots, edit, new_id=new_id)
    except ScheduleEditError:
        return
    body, before = check_body(slots, after), wire(slots)
    if len(body) == len(before) + 1:
        assert body[:-1] == before
    elif len(body) == len(before) - 1:
        assert any(body == before[:i] + before[i + 1 :] for i in range(len(before)))
    else:
        assert len(body) == len(before)
        assert sum(new != old for new, old in zip(body, before, strict=True)) <= 1


@PROPERTY_SETTINGS
@given(st.data(), slot_lists)
def test_enable_and_disable_are_idempotent(
    data: st.DataObject, slots: tuple[ScheduleSlot, ...]
) -> None:
    slot = data.draw(st.sampled_from(slots))
    edit = data.draw(st.sampled_from([EnableSlot(slot.id), DisableSlot(slot.id)]))
    once = apply_edit(slots, edit)
    twice = apply_edit(once, edit)
    assert all(new is old for new, old in zip(twice, once, strict=True))
    assert describe_edit(once, twice) == "no change"


@PROPERTY_SETTINGS
@given(slot_lists)
def test_patch_body_round_trips_through_parse_schedules(slots: tuple[ScheduleSlot, ...]) -> None:
    body = patch_body(slots, server_timestamp=STAMP)
    reparsed = parse_schedules({"meta": body["meta"], "data": {"slots": body["data"]}}).slots
    assert wire(reparsed) == body["data"]
    assert patch_body(reparsed, server_timestamp=STAMP) == body


@PROPERTY_SETTINGS
@given(slot_lists)
def test_every_slot_resolves_by_its_id_and_its_listed_index(
    slots: tuple[ScheduleSlot, ...],
) -> None:
    ids = {slot.id for slot in slots}
    for position, slot in enumerate(slots):
        assert resolve_slot(slots, slot.id) is slot
        if str(position + 1) not in ids:
            assert resolve_slot(slots, str(position + 1)) is slot
