"""Control and schedule writes against the cloud's 2026 replies (2026 reference, sections 2, 7
and 9): recorded-shape fixtures, the client mocked with aioresponses."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aioresponses import aioresponses
from hypothesis import given
from hypothesis import strategies as st

from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.control import (
    START_WITH_LEVEL,
    START_WITHOUT_LEVEL,
    Outcome,
    benign,
    probe,
)
from optimizer.enlighten.control_replies import (
    ChargerState,
    LevelRefusedError,
    charger_state,
    cloud_said,
    is_invalid_charge_level,
)
from optimizer.enlighten.errors import (
    BadRequestError,
    ConflictError,
    EnlightenHTTPStatusError,
    WriteUncertainError,
)
from optimizer.enlighten.models import ChargeMode, parse_live_stream
from optimizer.enlighten.schedule_edit import AddSlot, DeleteSlot, DisableSlot, SetSlot
from optimizer.enlighten.schedule_writes import created_slot_id, server_timestamp
from optimizer.enlighten.transport import error_for_status
from optimizer.enlighten.variants import VariantMemory
from tests.fixtures import load_fixture
from tests.test_client_writes import (
    MODE_URL,
    SCHEDULES_URL,
    SITE,
    SLOT_URL,
    SN,
    START_URL,
    STATUS_URL,
    STOP_URL,
    action_requests,
    bodies,
    idle,
    mock_charger,
    mock_status,
    mock_summary,
    requests_to,
    writes,
)

URL = "https://enlighten.example/start_charging"


# A refusal fixture, the outcome it means and the words the cloud said in it.
STATE_REFUSALS = [
    (
        "control_error_2026_already_charging",
        Outcome.ALREADY_CHARGING,
        "Charger is already in charging state",
    ),
    (
        "control_error_2026_already_charging_wording",
        Outcome.ALREADY_CHARGING,
        "Charger already in charging state",
    ),
    ("control_error_2026", Outcome.NOT_READY, "Charger is not plugged to EV"),
    ("control_error_2026_not_plugged_wording", Outcome.NOT_READY, "Not plugged into vehicle"),
]


def refusal(fixture: str, status: int = 400) -> EnlightenHTTPStatusError:
    return error_for_status(status, url=URL, body=load_fixture(fixture))


# --- the error body --------------------------------------------------------------------------


def test_the_2026_body_gives_the_message_code_and_the_clouds_words() -> None:
    err = refusal("control_error_2026")
    assert isinstance(err, BadRequestError)
    assert err.code == "iqevc_ms-10008"  # not error.code, which only echoes "400"
    assert cloud_said(err) == "Charger is not plugged to EV"
    assert "Charger is not plugged to EV" in err.message


@pytest.mark.parametrize(
    ("fixture", "state"),
    [
        ("control_error_2026", ChargerState.NOT_PLUGGED),
        ("control_error_2026_already_charging", ChargerState.ALREADY_CHARGING),
        ("control_error_2026_already_charging_wording", ChargerState.ALREADY_CHARGING),
        ("control_error_2026_not_plugged_wording", ChargerState.NOT_PLUGGED),
    ],
)
def test_charger_state_by_code_first_then_by_wording(fixture: str, state: ChargerState) -> None:
    assert charger_state(refusal(fixture)) is state


def test_a_code_outranks_the_wording() -> None:
    body = load_fixture("control_error_2026_already_charging")
    body["error"]["displayMessage"] = "Charger is not plugged to EV"
    assert charger_state(error_for_status(400, url=URL, body=body)) is (
        ChargerState.ALREADY_CHARGING
    )


@pytest.mark.parametrize(("fixture", "outcome", "said"), STATE_REFUSALS)
def test_benign_outcome_keeps_the_clouds_message(fixture: str, outcome: Outcome, said: str) -> None:
    answer = benign(refusal(fixture), "start_charging")
    assert answer is not None
    assert answer[0] is outcome
    assert f'(the cloud said: "{said}")' in answer[1]


@pytest.mark.parametrize("status", [400, 409, 422])  # 404: test_stop_404_rereads_the_status
def test_every_refusal_of_a_stop_is_nothing_to_stop(status: int) -> None:
    err = error_for_status(status, url=URL, body=load_fixture("control_error_2026"))
    answer = benign(err, "stop_charging")
    assert answer is not None
    assert answer[0] is Outcome.NOT_ACTIVE


def test_invalid_charge_level_is_only_that_500() -> None:
    assert is_invalid_charge_level(refusal("control_error_2026_iq40_invalid_level", 500))
    assert not is_invalid_charge_level(refusal("control_error_2026_backend_unavailable", 500))
    assert not is_invalid_charge_level(refusal("control_error_2026_iq40_invalid_level", 400))


@given(st.text(max_size=60))
def test_no_display_message_crashes_the_reading(text: str) -> None:
    body = load_fixture("control_error_2026")
    body["error"] = {"displayMessage": text, "code": "400"}
    err = error_for_status(400, url=URL, body=body)
    state = charger_state(err)
    assert state is None or isinstance(state, ChargerState)
    answer = benign(err, "start_charging")
    assert answer is not None
    assert answer[0] in (Outcome.NOT_READY, Outcome.ALREADY_CHARGING)


# --- start and stop through the client ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "outcome", "said"),
    STATE_REFUSALS,
)
async def test_a_charger_state_refusal_is_one_request(
    mock_cloud: aioresponses, client: EnlightenClient, fixture: str, outcome: Outcome, said: str
) -> None:
    """Today's code read ``error.code`` ("400"), found no state and probed every variant."""
    mock_charger(mock_cloud, idle)
    mock_cloud.post(START_URL, status=400, payload=load_fixture(fixture), repeat=True)

    result = await client.start_charging(SITE, SN, amps=16)

    assert len(action_requests(mock_cloud, "start_charging")) == 1
    assert result.outcome is outcome
    assert result.message().endswith(f'(the cloud said: "{said}"); nothing changed')


def iq40(mocked: aioresponses) -> None:
    """An IQ 40 backend: a start with a level is a 500, one without is accepted."""
    refused = load_fixture("control_error_2026_iq40_invalid_level")

    def answer(url: Any, **kwargs: Any) -> Any:
        from aioresponses import CallbackResult  # noqa: PLC0415 - local to this fake

        body = kwargs.get("json") or {}
        if "chargingLevel" in body or "charging_level" in body:
            return CallbackResult(status=500, payload=refused)
        return CallbackResult(payload=load_fixture("start_charging"))

    mocked.post(START_URL, callback=answer, repeat=True)


async def test_iq40_policy_level_is_dropped_once_and_remembered(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud, idle)
    iq40(mock_cloud)

    first = await client.start_charging(SITE, SN, amps=16, explicit=False)

    assert bodies(mock_cloud, "POST", START_URL) == [
        {"chargingLevel": 16, "connectorId": 1},
        {"connectorId": 1},
    ]
    assert first.outcome is Outcome.ACCEPTED
    assert first.level_not_applied == 16
    assert first.level_amps is None
    assert "16 A level was not applied" in first.message()
    assert "Invalid charge level" in first.message()

    second = await client.start_charging(SITE, SN, amps=20, explicit=False)

    assert bodies(mock_cloud, "POST", START_URL)[2:] == [{"connectorId": 1}]  # no level tried
    assert second.level_not_applied == 20
    assert "not applied" in second.message()


async def test_iq40_explicit_amps_is_a_failure_and_nothing_more_is_sent(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud, idle)
    iq40(mock_cloud)

    with pytest.raises(LevelRefusedError) as caught:
        await client.start_charging(SITE, SN, amps=16)

    assert bodies(mock_cloud, "POST", START_URL) == [{"chargingLevel": 16, "connectorId": 1}]
    assert "16 A" in caught.value.message
    assert "Invalid charge level" in caught.value.message
    assert caught.value.exit_code == 1
    assert client.variants.get(f"{SITE}:{SN}:start_charging:levelless") is None


async def test_another_500_is_still_an_uncertain_write(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud, idle)
    body = load_fixture("control_error_2026_backend_unavailable")
    mock_cloud.post(START_URL, status=500, payload=body, repeat=True)

    with pytest.raises(WriteUncertainError):
        await client.start_charging(SITE, SN, amps=16, explicit=False)

    assert len(action_requests(mock_cloud, "start_charging")) == 1


async def test_start_404_rereads_the_status_and_finds_it_charging(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud)  # the status shows it charging
    mock_cloud.post(START_URL, status=404, payload={}, repeat=True)

    result = await client.start_charging(SITE, SN, amps=16)

    assert result.outcome is Outcome.ALREADY_CHARGING
    assert len(action_requests(mock_cloud, "start_charging")) == 1
    assert len(requests_to(mock_cloud, "GET", STATUS_URL)) == 1


async def test_start_404_while_idle_tries_the_next_variant(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud, idle)
    mock_cloud.post(START_URL, status=404, payload={}, repeat=True)
    mock_cloud.put(START_URL, payload=load_fixture("start_charging"))

    result = await client.start_charging(SITE, SN, amps=16)

    assert result.outcome is Outcome.ACCEPTED
    assert result.variant == "PUT ev_chargers camel"


async def test_stop_404_rereads_the_status(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud, idle)
    mock_cloud.put(STOP_URL, status=404, payload={}, repeat=True)

    result = await client.stop_charging(SITE, SN)

    assert result.outcome is Outcome.NOT_ACTIVE
    assert len(action_requests(mock_cloud, "stop_charging")) == 1


@pytest.mark.parametrize("mode", ["GREEN_CHARGING", "SMART_CHARGING"])
async def test_automatic_modes_start_strictly_without_a_level(
    mock_cloud: aioresponses, client: EnlightenClient, mode: str
) -> None:
    mock_charger(mock_cloud, idle)
    mock_cloud.post(START_URL, payload=load_fixture("start_charging"))
    automatic = ChargeMode(mode)

    result = await client.start_charging(SITE, SN, amps=16, mode=automatic, explicit=False)

    assert bodies(mock_cloud, "POST", START_URL) == [{"connectorId": 1}]
    assert result.level_amps is None


async def test_scheduled_is_reasserted_after_a_manual_start_only_if_it_flipped(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud, idle)
    mock_cloud.post(START_URL, payload=load_fixture("start_charging"), repeat=True)
    manual = load_fixture("charge_mode")  # after the start the preference reads MANUAL
    mock_cloud.get(MODE_URL, payload=manual)
    mock_cloud.put(MODE_URL, payload={})

    result = await client.start_charging(
        SITE, SN, amps=16, mode=ChargeMode.SCHEDULED_CHARGING, explicit=False
    )

    assert result.outcome is Outcome.ACCEPTED
    assert bodies(mock_cloud, "PUT", MODE_URL) == [{"mode": "SCHEDULED_CHARGING"}]
    assert "SCHEDULED_CHARGING re-asserted" in result.message()
    assert [step.command for step in result.steps] == ["set_mode"]


async def test_an_unreadable_mode_after_the_start_is_said_not_retried(
    mock_cloud: aioresponses, client: EnlightenClient, sleeps: Any
) -> None:
    mock_status(mock_cloud, idle)
    mock_summary(mock_cloud)
    mock_cloud.post(START_URL, payload=load_fixture("start_charging"))
    mock_cloud.get(MODE_URL, status=503, payload={}, repeat=True)

    result = await client.start_charging(
        SITE, SN, amps=16, mode=ChargeMode.SCHEDULED_CHARGING, explicit=False
    )

    assert result.outcome is Outcome.ACCEPTED
    assert "could not be read" in result.message()
    assert len(requests_to(mock_cloud, "GET", MODE_URL)) == 1  # one attempt: no retry storm
    assert requests_to(mock_cloud, "PUT", MODE_URL) == []
    assert sleeps.delays == [1.0]  # only the read lag


async def test_a_manual_start_in_manual_reasserts_nothing(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud, idle)
    mock_cloud.post(START_URL, payload=load_fixture("start_charging"))

    await client.start_charging(SITE, SN, amps=16)

    assert requests_to(mock_cloud, "PUT", MODE_URL) == []


# --- live stream -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "accepted", "topics", "duration"),
    [
        ("live_stream_start_2026", True, ("v1/evse/prod/live-stream/EV9876543210",), 900),
        ("live_stream_stop_2026", True, (), None),
        ("live_stream_start", True, ("evse/EV9876543210/status",), 900),
        ("live_stream_stop", True, (), None),
        ("live_stream_stop_2026_error", False, (), None),
    ],
)
def test_live_stream_replies(
    fixture: str, accepted: bool, topics: tuple[str, ...], duration: int | None
) -> None:
    stream = parse_live_stream(load_fixture(fixture))
    assert (stream.accepted, stream.topics, stream.duration_s) == (accepted, topics, duration)


# --- schedule writes ---------------------------------------------------------------------------


def test_server_timestamp_from_the_reply_or_nested() -> None:
    assert server_timestamp(load_fixture("schedules_2026")) == "2026-05-01T10:00:00.000+00:00"
    nested = load_fixture("schedules_2026_nested_stamp")
    assert server_timestamp(nested) == "2026-05-01T10:05:00.000+00:00"
    assert server_timestamp({"data": None}) is None


@pytest.mark.parametrize("fixture", ["schedule_create_2026", "schedule_create_2026_object"])
def test_created_slot_id_as_string_or_object(fixture: str) -> None:
    assert created_slot_id(load_fixture(fixture)) == (
        "1234567:EV9876543210:0b6c1f3e-5d2a-4e8b-9f70-1a2b3c4d5e6f"
    )


def slots() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = load_fixture("schedules_2026")["data"]["slots"]
    return found


async def test_disable_is_a_state_only_patch(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    custom = slots()[0]
    mock_cloud.get(SCHEDULES_URL, payload=load_fixture("schedules_2026"))
    mock_cloud.patch(SCHEDULES_URL, payload={"meta": {}, "data": None, "error": {}})

    result = await client.edit_schedule(SITE, SN, DisableSlot(custom["id"]))

    assert result.outcome is Outcome.ACCEPTED
    assert result.variant == "state"
    assert bodies(mock_cloud, "PATCH", SCHEDULES_URL) == [{custom["id"]: "DISABLED"}]


@pytest.mark.parametrize("fixture", ["schedule_create_2026", "schedule_create_2026_object"])
async def test_add_is_a_single_slot_post(
    mock_cloud: aioresponses, client: EnlightenClient, fixture: str
) -> None:
    mock_summary(mock_cloud)
    mock_cloud.get(SCHEDULES_URL, payload=load_fixture("schedules_2026"))
    mock_cloud.post(SLOT_URL, payload=load_fixture(fixture))

    result = await client.edit_schedule(SITE, SN, AddSlot("01:00", "05:00", days=(6, 7)))

    assert result.outcome is Outcome.ACCEPTED
    (body,) = bodies(mock_cloud, "POST", SLOT_URL)
    assert "id" not in body  # the scheduler names the slot
    assert (body["startTime"], body["endTime"], body["days"]) == ("01:00", "05:00", [6, 7])
    assert writes(mock_cloud) == [("POST", SLOT_URL)]


async def test_update_and_delete_address_one_slot(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    custom = slots()[0]
    one = f"{SLOT_URL}/{custom['id']}"
    mock_summary(mock_cloud)
    mock_cloud.get(SCHEDULES_URL, payload=load_fixture("schedules_2026"), repeat=True)
    mock_cloud.patch(one, payload={})
    mock_cloud.delete(one, payload={})

    await client.edit_schedule(SITE, SN, SetSlot(custom["id"], charging_level=16))
    await client.edit_schedule(SITE, SN, DeleteSlot(custom["id"]))

    assert bodies(mock_cloud, "PATCH", one) == [
        {**custom, "chargingLevel": 16, "chargingLevelAmp": 16}
    ]
    assert len(requests_to(mock_cloud, "DELETE", one)) == 1
    assert bodies(mock_cloud, "PATCH", SCHEDULES_URL) == []


async def test_a_missing_single_slot_route_falls_back_and_is_remembered(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_summary(mock_cloud)
    mock_cloud.get(SCHEDULES_URL, payload=load_fixture("schedules_2026_nested_stamp"), repeat=True)
    mock_cloud.post(SLOT_URL, status=405, payload={})
    mock_cloud.patch(SCHEDULES_URL, payload={}, repeat=True)

    await client.edit_schedule(SITE, SN, AddSlot("01:00", "05:00"))
    await client.edit_schedule(SITE, SN, AddSlot("06:00", "07:00"))

    assert len(requests_to(mock_cloud, "POST", SLOT_URL)) == 1  # remembered: not tried again
    first, second = bodies(mock_cloud, "PATCH", SCHEDULES_URL)
    # The nested token of the read each PATCH was built from, never the local clock.
    assert first["meta"]["serverTimeStamp"] == "2026-05-01T10:05:00.000+00:00"
    assert second["meta"]["serverTimeStamp"] == "2026-05-01T10:05:00.000+00:00"
    assert len(first["data"]) == 3


async def test_a_stale_token_is_read_again_and_sent_once_more(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    client.variants.remember(f"{SITE}:{SN}:schedule_create", "full-list")
    mock_summary(mock_cloud)
    fresh = load_fixture("schedules_2026")
    fresh["meta"]["serverTimeStamp"] = "2026-05-01T10:09:00.000+00:00"
    mock_cloud.get(SCHEDULES_URL, payload=load_fixture("schedules_2026"))
    mock_cloud.get(SCHEDULES_URL, payload=fresh)
    mock_cloud.patch(SCHEDULES_URL, status=409, payload={"message": "stale"})
    mock_cloud.patch(SCHEDULES_URL, payload={})

    result = await client.edit_schedule(SITE, SN, AddSlot("01:00", "05:00"))

    assert result.outcome is Outcome.ACCEPTED
    stamps = [b["meta"]["serverTimeStamp"] for b in bodies(mock_cloud, "PATCH", SCHEDULES_URL)]
    assert stamps == ["2026-05-01T10:00:00.000+00:00", "2026-05-01T10:09:00.000+00:00"]


async def test_two_stale_tokens_in_a_row_are_an_error(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    client.variants.remember(f"{SITE}:{SN}:schedule_create", "full-list")
    mock_summary(mock_cloud)
    mock_cloud.get(SCHEDULES_URL, payload=load_fixture("schedules_2026"), repeat=True)
    mock_cloud.patch(SCHEDULES_URL, status=409, payload={"message": "stale"}, repeat=True)

    with pytest.raises(ConflictError):
        await client.edit_schedule(SITE, SN, AddSlot("01:00", "05:00"))

    assert len(requests_to(mock_cloud, "PATCH", SCHEDULES_URL)) == 2


def test_slot_url_names_the_singular_schedule() -> None:
    assert re.search(r"/SCHEDULED_CHARGING/1234567/EV9876543210/schedule$", SLOT_URL)


# --- property: a charger-state refusal ends the probe at once ----------------------------------

WORDINGS = st.sampled_from(
    [
        ("already in charging state", Outcome.ALREADY_CHARGING),
        ("already charging", Outcome.ALREADY_CHARGING),
        ("not plugged to EV", Outcome.NOT_READY),
        ("not plugged into vehicle", Outcome.NOT_READY),
    ]
)


@given(
    wording=WORDINGS,
    casing=st.sampled_from([str.lower, str.upper, str.title, str]),
    before=st.sampled_from(["", "Charger ", "Charger is ", "EV "]),
    coded=st.booleans(),
    variants=st.sampled_from([START_WITH_LEVEL, START_WITHOUT_LEVEL]),
)
async def test_a_state_refusal_is_always_one_request(
    wording: tuple[str, Outcome],
    casing: Any,
    before: str,
    coded: bool,
    variants: Any,
) -> None:
    text, outcome = wording
    body = load_fixture("control_error_2026")
    body["error"]["displayMessage"] = casing(before + text)
    code = "iqevc_ms-10012" if outcome is Outcome.ALREADY_CHARGING else "iqevc_ms-10008"
    if coded:
        body["error"]["errorMessageCode"] = code
    else:
        del body["error"]["errorMessageCode"]
    sent: list[str] = []

    async def send(variant: Any) -> Any:
        sent.append(variant.name)
        raise error_for_status(400, url=URL, body=body)

    _, answer, _ = await probe(
        command="start_charging", key="k", variants=variants, send=send, memory=VariantMemory()
    )
    assert len(sent) == 1
    assert isinstance(answer, tuple)
    assert answer[0] is outcome
