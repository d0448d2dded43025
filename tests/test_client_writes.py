"""Client writes against a mocked cloud: exact requests, checks made before anything is sent,
benign replies, which failures are resent, and the stop-settle-start of a level change."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.control import Outcome
from optimizer.enlighten.errors import (
    IncompleteCommandError,
    InvalidLevelError,
    NotSupportedError,
    WriteUncertainError,
)
from optimizer.enlighten.models import ChargeMode
from optimizer.enlighten.schedule_edit import AddSlot, EnableSlot, SetSlot
from tests.conftest import ENLIGHTEN_BASE_URL, SleepRecorder
from tests.fixtures import load_fixture, patched_fixture, set_at

BASE = ENLIGHTEN_BASE_URL
_STATUS = load_fixture("status_nested")
SITE = int(_STATUS["data"]["site"])
SN = _STATUS["data"]["chargers"][0]["sn"]
assert SITE == 1234567  # the site id the brief's canonical start path names

EVSE = "/service/evse_controller"
SCHEDULER = "/service/evse_scheduler/api/v1/iqevc/charging-mode"
LOGIN_URL = BASE + "/login/login.json"
STATUS_URL = f"{BASE}{EVSE}/{SITE}/ev_chargers/status"
SUMMARY_URL = f"{BASE}{EVSE}/api/v2/{SITE}/ev_chargers/{SN}/summary"
START_URL = f"{BASE}{EVSE}/{SITE}/ev_chargers/{SN}/start_charging"
STOP_URL = f"{BASE}{EVSE}/{SITE}/ev_chargers/{SN}/stop_charging"
TRIGGER_URL = f"{BASE}{EVSE}/{SITE}/ev_charger/{SN}/trigger_message"
MODE_URL = f"{BASE}{SCHEDULER}/{SITE}/{SN}/preference"
GREEN_URL = f"{BASE}{SCHEDULER}/GREEN_CHARGING/{SITE}/{SN}/settings"
SCHEDULES_URL = f"{BASE}{SCHEDULER}/SCHEDULED_CHARGING/{SITE}/{SN}/schedules"

CANONICAL_START = {"chargingLevel": 16, "connectorId": 1}
NOT_PLUGGED = {"status": "error", "error": {"code": "iqevc_ms-10008", "message": "EV not plugged"}}

GREEN_STATUS = set_at("data.chargers.0.mode", 1)


def idle(payload: Any) -> None:
    """Plugged in, no session running."""
    charger = payload["data"]["chargers"][0]
    charger["charging"] = False
    charger["connectors"][0]["connectorStatusType"] = "PREPARING"


def requests_to(mocked: aioresponses, method: str, url: str) -> list[Any]:
    return mocked.requests.get((method, URL(url)), [])


def bodies(mocked: aioresponses, method: str, url: str) -> list[Any]:
    return [call.kwargs.get("json") for call in requests_to(mocked, method, url)]


def writes(mocked: aioresponses) -> list[tuple[str, str]]:
    """Every request that is not a GET (a login POST included), in order of first use."""
    return [
        (method, str(url))
        for (method, url), calls in mocked.requests.items()
        for _ in calls
        if method != "GET"
    ]


def action_requests(mocked: aioresponses, action: str) -> list[tuple[str, str, Any]]:
    """Requests to any variant of a control path (any verb, plural or singular)."""
    return [
        (method, str(url), call.kwargs.get("json"))
        for (method, url), calls in mocked.requests.items()
        for call in calls
        if str(url).endswith(f"/{action}")
    ]


def mock_status(mocked: aioresponses, *patches: Any) -> None:
    mocked.get(STATUS_URL, payload=patched_fixture("status_nested", *patches), repeat=True)


def mock_summary(mocked: aioresponses, *patches: Any) -> None:
    mocked.get(SUMMARY_URL, payload=patched_fixture("summary_charger", *patches), repeat=True)


def mock_charger(mocked: aioresponses, *status_patches: Any) -> None:
    """Status, summary and a MANUAL scheduler preference (a start reads the mode first)."""
    mock_status(mocked, *status_patches)
    mock_summary(mocked)
    green = GREEN_STATUS in status_patches
    preference = "charge_mode_green_for_control" if green else "charge_mode"
    mocked.get(MODE_URL, payload=load_fixture(preference), repeat=True)


# --- start_charging ----------------------------------------------------------------------------


async def test_start_sends_the_canonical_post(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud)
    mock_cloud.post(START_URL, payload=load_fixture("start_charging"))

    result = await client.start_charging(SITE, SN, amps=16)

    assert bodies(mock_cloud, "POST", START_URL) == [CANONICAL_START]
    assert writes(mock_cloud) == [("POST", START_URL)]
    assert result.outcome is Outcome.ACCEPTED
    assert result.level_amps == 16
    assert result.variant == "POST ev_chargers camel"
    assert result.message() == "charging started at 16 A"
    assert START_URL.endswith(f"/service/evse_controller/1234567/ev_chargers/{SN}/start_charging")


async def test_start_sends_the_control_headers(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud)
    mock_cloud.post(START_URL, payload=load_fixture("start_charging"))
    await client.start_charging(SITE, SN, amps=16)
    (call,) = requests_to(mock_cloud, "POST", START_URL)
    assert call.kwargs["headers"]["e-auth-token"] == "seeded-session-id-4711"
    assert call.kwargs["headers"]["X-CSRF-Token"] == "xsrf-4711"


async def test_start_in_green_sends_no_level_even_with_amps(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud, GREEN_STATUS)
    mock_cloud.post(START_URL, payload=load_fixture("start_charging"))

    result = await client.start_charging(SITE, SN, amps=16)

    assert bodies(mock_cloud, "POST", START_URL) == [{"connectorId": 1}]
    assert result.outcome is Outcome.ACCEPTED
    assert result.level_amps is None
    assert "GREEN" in result.detail
    assert "16 A asked for is ignored" in result.detail


async def test_start_without_amps_sends_no_level(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud)
    mock_cloud.post(START_URL, payload=load_fixture("start_charging"))
    result = await client.start_charging(SITE, SN)
    assert bodies(mock_cloud, "POST", START_URL) == [{"connectorId": 1}]
    assert result.detail == "charging started at the charger's last level"


@pytest.mark.parametrize("amps", [5, 33, 0, -1, 100])
async def test_start_out_of_range_sends_nothing(
    mock_cloud: aioresponses, client: EnlightenClient, amps: int
) -> None:
    mock_charger(mock_cloud)
    mock_cloud.post(START_URL, payload=load_fixture("start_charging"), repeat=True)

    with pytest.raises(InvalidLevelError):
        await client.start_charging(SITE, SN, amps=amps)

    assert action_requests(mock_cloud, "start_charging") == []
    assert writes(mock_cloud) == []


async def test_start_not_plugged_in_is_not_ready_and_not_retried(
    mock_cloud: aioresponses, client: EnlightenClient, sleeps: SleepRecorder
) -> None:
    mock_charger(mock_cloud)
    mock_cloud.post(START_URL, status=400, payload=NOT_PLUGGED, repeat=True)

    result = await client.start_charging(SITE, SN, amps=16)

    assert result.outcome is Outcome.NOT_READY
    assert result.message() == (
        'charger not ready: no vehicle plugged in (the cloud said: "EV not plugged"); '
        "nothing changed"
    )
    assert len(action_requests(mock_cloud, "start_charging")) == 1
    assert sleeps.delays == []


async def test_start_503_is_retried_and_succeeds(
    mock_cloud: aioresponses, client: EnlightenClient, sleeps: SleepRecorder
) -> None:
    mock_charger(mock_cloud)
    mock_cloud.post(START_URL, status=503, payload={})
    mock_cloud.post(START_URL, payload=load_fixture("start_charging"))

    result = await client.start_charging(SITE, SN, amps=16)

    assert result.outcome is Outcome.ACCEPTED
    assert bodies(mock_cloud, "POST", START_URL) == [CANONICAL_START, CANONICAL_START]
    assert len(action_requests(mock_cloud, "start_charging")) == 2
    assert len(sleeps.delays) == 1


async def test_start_500_is_uncertain_and_sent_once(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud)
    mock_cloud.post(START_URL, status=500, payload={})
    mock_cloud.post(START_URL, payload=load_fixture("start_charging"), repeat=True)
    mock_cloud.put(START_URL, payload=load_fixture("start_charging"), repeat=True)

    with pytest.raises(WriteUncertainError):
        await client.start_charging(SITE, SN, amps=16)

    assert len(action_requests(mock_cloud, "start_charging")) == 1


async def test_start_timeout_is_uncertain_and_sent_once(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud)
    mock_cloud.post(START_URL, timeout=True)
    mock_cloud.post(START_URL, payload=load_fixture("start_charging"), repeat=True)
    mock_cloud.put(START_URL, payload=load_fixture("start_charging"), repeat=True)

    with pytest.raises(WriteUncertainError, match="may or may not have taken effect"):
        await client.start_charging(SITE, SN, amps=16)

    assert len(action_requests(mock_cloud, "start_charging")) == 1


async def test_start_401_logs_in_once_and_resends(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud)
    mock_cloud.post(START_URL, status=401, payload={"message": "Not Authorized"})
    mock_cloud.post(START_URL, payload=load_fixture("start_charging"))
    mock_cloud.post(LOGIN_URL, payload=load_fixture("login_ok"), repeat=True)

    result = await client.start_charging(SITE, SN, amps=16)

    assert result.outcome is Outcome.ACCEPTED
    assert len(requests_to(mock_cloud, "POST", LOGIN_URL)) == 1
    starts = requests_to(mock_cloud, "POST", START_URL)
    assert [call.kwargs["json"] for call in starts] == [CANONICAL_START, CANONICAL_START]
    new_session = load_fixture("login_ok")["session_id"]
    assert starts[1].kwargs["headers"]["e-auth-token"] == new_session
    assert len(action_requests(mock_cloud, "start_charging")) == 2


async def test_start_falls_back_and_remembers_the_variant(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud)
    mock_cloud.post(START_URL, status=405, payload={}, repeat=True)
    mock_cloud.put(START_URL, payload=load_fixture("start_charging"), repeat=True)

    first = await client.start_charging(SITE, SN, amps=16)
    second = await client.start_charging(SITE, SN, amps=16)

    assert first.variant == second.variant == "PUT ev_chargers camel"
    assert len(requests_to(mock_cloud, "POST", START_URL)) == 1
    assert bodies(mock_cloud, "PUT", START_URL) == [CANONICAL_START, CANONICAL_START]


async def test_level_less_start_tries_the_twin_of_the_known_level_variant_first(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    singular = f"{BASE}{EVSE}/{SITE}/ev_charger/{SN}/start_charging"
    mock_charger(mock_cloud, idle)  # not charging: a 404 is the wrong variant
    mock_cloud.post(START_URL, status=404, payload={}, repeat=True)
    mock_cloud.put(START_URL, status=404, payload={}, repeat=True)
    mock_cloud.post(singular, status=404, payload={}, repeat=True)
    mock_cloud.put(singular, payload=load_fixture("start_charging"), repeat=True)

    with_level = await client.start_charging(SITE, SN, amps=16)
    before = len(action_requests(mock_cloud, "start_charging"))
    green = await client.start_charging(SITE, SN, green=True)

    assert with_level.variant == "PUT ev_charger camel"
    assert before == 4
    assert green.variant == "PUT ev_charger camel-no-level"
    assert action_requests(mock_cloud, "start_charging")[before:] == [
        ("PUT", singular, {"connectorId": 1})
    ]


# --- stop_charging -----------------------------------------------------------------------------


async def test_stop_sends_the_canonical_put(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.put(STOP_URL, payload=load_fixture("stop_charging"))

    result = await client.stop_charging(SITE, SN)

    assert writes(mock_cloud) == [("PUT", STOP_URL)]
    assert bodies(mock_cloud, "PUT", STOP_URL) == [None]
    assert result.outcome is Outcome.ACCEPTED
    assert result.variant == "PUT ev_chargers no-body"


async def test_stop_409_is_not_active(mock_cloud: aioresponses, client: EnlightenClient) -> None:
    mock_cloud.put(STOP_URL, status=409, payload={"message": "No active session"})

    result = await client.stop_charging(SITE, SN)

    assert result.outcome is Outcome.NOT_ACTIVE
    assert not result.outcome.changed
    assert len(action_requests(mock_cloud, "stop_charging")) == 1


# --- set_amps ----------------------------------------------------------------------------------


async def test_set_amps_when_not_charging_is_a_plain_start(
    mock_cloud: aioresponses, client: EnlightenClient, sleeps: SleepRecorder
) -> None:
    mock_charger(mock_cloud, idle)
    mock_cloud.post(START_URL, payload=load_fixture("start_charging"))

    result = await client.set_amps(SITE, SN, 16)

    assert result.outcome is Outcome.ACCEPTED
    assert writes(mock_cloud) == [("POST", START_URL)]
    assert bodies(mock_cloud, "POST", START_URL) == [CANONICAL_START]
    assert sleeps.delays == []


async def test_set_amps_at_the_current_level_sends_nothing(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud)  # charging at 32 A

    result = await client.set_amps(SITE, SN, 32)

    assert result.outcome is Outcome.UNCHANGED
    assert result.message() == "already charging at 32 A; nothing changed"
    assert writes(mock_cloud) == []


async def test_set_amps_while_charging_stops_settles_and_restarts(
    mock_cloud: aioresponses, client: EnlightenClient, sleeps: SleepRecorder
) -> None:
    client.settle_s = 12.5
    events: list[tuple[str, list[float]]] = []

    def record(name: str, fixture: str) -> Callable[..., CallbackResult]:
        def callback(url: URL, **kwargs: Any) -> CallbackResult:
            events.append((name, list(sleeps.delays)))
            return CallbackResult(payload=load_fixture(fixture))

        return callback

    mock_charger(mock_cloud)  # MANUAL, charging at 32 A
    mock_cloud.put(STOP_URL, callback=record("stop", "stop_charging"))
    mock_cloud.post(START_URL, callback=record("start", "start_charging"))

    result = await client.set_amps(SITE, SN, 16)

    assert events == [("stop", []), ("start", [12.5])]
    assert sleeps.delays == [client.settle_s]
    assert bodies(mock_cloud, "POST", START_URL) == [CANONICAL_START]
    assert result.outcome is Outcome.ACCEPTED
    assert result.level_amps == 16
    assert [step.command for step in result.steps] == ["stop_charging", "start_charging"]
    assert "from 32 A to 16 A" in result.detail


async def test_set_amps_settle_can_be_given_per_call(
    mock_cloud: aioresponses, client: EnlightenClient, sleeps: SleepRecorder
) -> None:
    mock_charger(mock_cloud)
    mock_cloud.put(STOP_URL, payload=load_fixture("stop_charging"))
    mock_cloud.post(START_URL, payload=load_fixture("start_charging"))
    await client.set_amps(SITE, SN, 16, settle_s=3)
    assert sleeps.delays == [3]


async def test_set_amps_direct_sends_one_start(
    mock_cloud: aioresponses, client: EnlightenClient, sleeps: SleepRecorder
) -> None:
    mock_charger(mock_cloud)
    mock_cloud.put(STOP_URL, payload=load_fixture("stop_charging"), repeat=True)
    mock_cloud.post(START_URL, payload=load_fixture("start_charging"))

    result = await client.set_amps(SITE, SN, 16, direct=True)

    assert writes(mock_cloud) == [("POST", START_URL)]
    assert bodies(mock_cloud, "POST", START_URL) == [CANONICAL_START]
    assert sleeps.delays == []
    assert result.outcome is Outcome.ACCEPTED
    assert "without a restart" in result.detail


async def test_set_amps_in_green_is_not_supported(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud, GREEN_STATUS)
    mock_cloud.put(STOP_URL, payload=load_fixture("stop_charging"), repeat=True)
    mock_cloud.post(START_URL, payload=load_fixture("start_charging"), repeat=True)

    with pytest.raises(NotSupportedError, match="GREEN"):
        await client.set_amps(SITE, SN, 16)

    assert writes(mock_cloud) == []


async def test_set_amps_out_of_range_sends_nothing(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud)
    with pytest.raises(InvalidLevelError):
        await client.set_amps(SITE, SN, 40)
    assert writes(mock_cloud) == []


async def test_set_amps_refused_restart_says_the_charger_is_stopped(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud)
    mock_cloud.put(STOP_URL, payload=load_fixture("stop_charging"))
    mock_cloud.post(START_URL, status=409, payload={"message": "Charger busy"})

    with pytest.raises(IncompleteCommandError) as caught:
        await client.set_amps(SITE, SN, 16)

    assert "the charger is now stopped" in caught.value.message
    assert "evopt charge start" in caught.value.hint
    assert writes(mock_cloud) == [("PUT", STOP_URL), ("POST", START_URL)]


async def test_set_amps_failed_restart_says_the_charger_is_stopped(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_charger(mock_cloud)
    mock_cloud.put(STOP_URL, payload=load_fixture("stop_charging"))
    mock_cloud.post(START_URL, status=500, payload={})

    with pytest.raises(IncompleteCommandError, match="the charger is now stopped"):
        await client.set_amps(SITE, SN, 16)


# --- trigger_message ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["MeterValues", "metervalues", "METERVALUES"])
async def test_trigger_message_normalises_the_name_and_uses_the_singular_path(
    mock_cloud: aioresponses, client: EnlightenClient, name: str
) -> None:
    mock_cloud.post(TRIGGER_URL, payload=load_fixture("trigger_message"))

    result = await client.trigger_message(SITE, SN, name)

    assert writes(mock_cloud) == [("POST", TRIGGER_URL)]
    assert bodies(mock_cloud, "POST", TRIGGER_URL) == [{"requestedMessage": "MeterValues"}]
    assert result.outcome is Outcome.ACCEPTED
    assert "TICKET-XYZ123" in result.detail


async def test_trigger_message_falls_back_to_the_plural_path(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    plural = f"{BASE}{EVSE}/{SITE}/ev_chargers/{SN}/trigger_message"
    mock_cloud.post(TRIGGER_URL, status=404, payload={})
    mock_cloud.post(plural, payload=load_fixture("trigger_message"))
    result = await client.trigger_message(SITE, SN, "heartbeat")
    assert writes(mock_cloud) == [("POST", TRIGGER_URL), ("POST", plural)]
    assert bodies(mock_cloud, "POST", plural) == [{"requestedMessage": "Heartbeat"}]
    assert result.outcome is Outcome.ACCEPTED


@pytest.mark.parametrize("name", ["Reset", "MeterValue", "", "RemoteStartTransaction"])
async def test_trigger_message_unknown_name_sends_nothing(
    mock_cloud: aioresponses, client: EnlightenClient, name: str
) -> None:
    mock_cloud.post(TRIGGER_URL, payload=load_fixture("trigger_message"), repeat=True)
    with pytest.raises(NotSupportedError):
        await client.trigger_message(SITE, SN, name)
    assert mock_cloud.requests == {}


# --- set_charge_mode ---------------------------------------------------------------------------


async def test_set_charge_mode_already_set_sends_no_put(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.get(MODE_URL, payload=load_fixture("charge_mode"))
    mock_cloud.put(MODE_URL, payload=load_fixture("charge_mode"), repeat=True)

    result = await client.set_charge_mode(SITE, SN, ChargeMode.MANUAL_CHARGING)

    assert result.outcome is Outcome.UNCHANGED
    assert writes(mock_cloud) == []


async def test_set_charge_mode_puts_the_new_mode(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.get(MODE_URL, payload=load_fixture("charge_mode"))
    mock_cloud.put(MODE_URL, payload=load_fixture("charge_mode"))

    result = await client.set_charge_mode(SITE, SN, ChargeMode.GREEN_CHARGING)

    assert writes(mock_cloud) == [("PUT", MODE_URL)]
    assert bodies(mock_cloud, "PUT", MODE_URL) == [{"mode": "GREEN_CHARGING"}]
    (put,) = requests_to(mock_cloud, "PUT", MODE_URL)
    assert put.kwargs["headers"]["Authorization"] == "Bearer seeded.manager.token-4711"
    assert result.outcome is Outcome.ACCEPTED
    assert result.detail == "charge mode MANUAL_CHARGING -> GREEN_CHARGING"


# --- set_green_battery -------------------------------------------------------------------------


async def test_green_battery_unsupported_sends_nothing(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_summary(mock_cloud, {"data": {"supportsUseBattery": False}})
    mock_cloud.get(GREEN_URL, payload=load_fixture("green_settings"), repeat=True)
    mock_cloud.put(GREEN_URL, payload=load_fixture("green_settings_put"), repeat=True)

    with pytest.raises(NotSupportedError):
        await client.set_green_battery(SITE, SN, enabled=False)

    assert writes(mock_cloud) == []


async def test_green_battery_same_value_is_unchanged(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_summary(mock_cloud)
    mock_cloud.get(GREEN_URL, payload=load_fixture("green_settings"))  # enabled: true
    mock_cloud.put(GREEN_URL, payload=load_fixture("green_settings_put"), repeat=True)

    result = await client.set_green_battery(SITE, SN, enabled=True)

    assert result.outcome is Outcome.UNCHANGED
    assert writes(mock_cloud) == []


async def test_green_battery_change_puts_the_setting_list(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_summary(mock_cloud)
    mock_cloud.get(GREEN_URL, payload=load_fixture("green_settings"))
    mock_cloud.put(GREEN_URL, payload=load_fixture("green_settings_put"))

    result = await client.set_green_battery(SITE, SN, enabled=False)

    assert result.outcome is Outcome.ACCEPTED
    assert writes(mock_cloud) == [("PUT", GREEN_URL)]
    assert bodies(mock_cloud, "PUT", GREEN_URL) == [
        {
            "chargerSettingList": [
                {
                    "chargerSettingName": "USE_BATTERY_FOR_SELF_CONSUMPTION",
                    "enabled": False,
                    "value": None,
                    "loader": False,
                }
            ]
        }
    ]


# --- edit_schedule -----------------------------------------------------------------------------


def fixture_slots() -> list[dict[str, Any]]:
    slots: list[dict[str, Any]] = load_fixture("schedules")["data"]["slots"]
    return slots


def patch_bodies(mocked: aioresponses) -> list[Any]:
    """The full-list PATCH bodies (a state-only PATCH, without ``data``, is left out)."""
    return [body for body in bodies(mocked, "PATCH", SCHEDULES_URL) if "data" in body]


SLOT_URL = f"{BASE}{SCHEDULER}/SCHEDULED_CHARGING/{SITE}/{SN}/schedule"


def without_single_slot_routes(mocked: aioresponses) -> None:
    """A scheduler of the 2024 kind: no single-slot routes, no state-only PATCH."""
    pattern = re.compile(re.escape(SLOT_URL) + r"(/.*)?$")
    for method in ("post", "patch", "delete"):
        getattr(mocked, method)(pattern, status=404, payload={}, repeat=True)


async def test_edit_schedule_patches_every_slot_with_one_changed(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    slots = fixture_slots()
    mock_cloud.get(SCHEDULES_URL, payload=load_fixture("schedules"))
    without_single_slot_routes(mock_cloud)
    # A 2024 scheduler does not understand a state-only PATCH: 400, then the full list.
    mock_cloud.patch(SCHEDULES_URL, status=400, payload={"message": "data is required"})
    mock_cloud.patch(SCHEDULES_URL, payload={})

    result = await client.edit_schedule(SITE, SN, EnableSlot(slots[1]["id"]))

    assert result.outcome is Outcome.ACCEPTED
    (body,) = patch_bodies(mock_cloud)
    expected = [slots[0], {**slots[1], "enabled": True}]
    assert body["data"] == expected
    assert body["meta"]["rowCount"] == 2
    assert body["meta"]["serverTimeStamp"] == load_fixture("schedules")["meta"]["serverTimeStamp"]
    assert writes(mock_cloud) == [("PATCH", SCHEDULES_URL), ("PATCH", SCHEDULES_URL)]


async def test_edit_schedule_level_change_is_checked_and_sent(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    slots = fixture_slots()
    mock_summary(mock_cloud)
    mock_cloud.get(SCHEDULES_URL, payload=load_fixture("schedules"))
    without_single_slot_routes(mock_cloud)
    mock_cloud.patch(SCHEDULES_URL, payload={})

    await client.edit_schedule(SITE, SN, SetSlot(slots[0]["id"], charging_level=16))

    (body,) = patch_bodies(mock_cloud)
    assert body["data"] == [{**slots[0], "chargingLevel": 16, "chargingLevelAmp": 16}, slots[1]]


async def test_edit_schedule_already_enabled_is_unchanged(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    slots = fixture_slots()
    assert slots[0]["enabled"] is True
    mock_cloud.get(SCHEDULES_URL, payload=load_fixture("schedules"))
    mock_cloud.patch(SCHEDULES_URL, payload={}, repeat=True)

    result = await client.edit_schedule(SITE, SN, EnableSlot(slots[0]["id"]))

    assert result.outcome is Outcome.UNCHANGED
    assert writes(mock_cloud) == []


async def test_add_slot_without_level_gets_the_chargers_max(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    slots = fixture_slots()
    mock_summary(mock_cloud)  # max 32 A
    mock_cloud.get(SCHEDULES_URL, payload=load_fixture("schedules"))
    without_single_slot_routes(mock_cloud)
    mock_cloud.patch(SCHEDULES_URL, payload={})

    result = await client.edit_schedule(SITE, SN, AddSlot("08:00", "10:00"))

    assert result.outcome is Outcome.ACCEPTED
    (body,) = patch_bodies(mock_cloud)
    assert body["meta"]["rowCount"] == 3
    assert body["data"][:2] == slots
    added = body["data"][2]
    assert (added["startTime"], added["endTime"]) == ("08:00", "10:00")
    assert added["chargingLevel"] == added["chargingLevelAmp"] == 32
    assert added["id"].startswith(f"{SITE}:{SN}:")


async def test_add_slot_default_level_respects_the_site_limit_and_steps(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    # 6-32 A in steps of 4 A within a 28 A site limit: the highest allowed level is 26 A.
    mock_summary(mock_cloud, {"data": {"chargeLevelDetails": {"granularity": "4"}}})
    client.site_max_amps = 28
    mock_cloud.get(SCHEDULES_URL, payload=load_fixture("schedules"))
    without_single_slot_routes(mock_cloud)
    mock_cloud.patch(SCHEDULES_URL, payload={})

    await client.edit_schedule(SITE, SN, AddSlot("08:00", "10:00"))

    (body,) = patch_bodies(mock_cloud)
    assert body["data"][2]["chargingLevel"] == 26


async def test_add_slot_default_level_with_a_site_limit_below_the_minimum_sends_nothing(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_summary(mock_cloud)  # min 6 A
    client.site_max_amps = 4
    mock_cloud.get(SCHEDULES_URL, payload=load_fixture("schedules"), repeat=True)
    mock_cloud.patch(SCHEDULES_URL, payload={}, repeat=True)

    with pytest.raises(InvalidLevelError, match="site limit"):
        await client.edit_schedule(SITE, SN, AddSlot("08:00", "10:00"))

    assert patch_bodies(mock_cloud) == []


@pytest.mark.parametrize("level", [40, 5])
async def test_add_slot_out_of_range_level_sends_nothing(
    mock_cloud: aioresponses, client: EnlightenClient, level: int
) -> None:
    mock_summary(mock_cloud)
    mock_cloud.get(SCHEDULES_URL, payload=load_fixture("schedules"), repeat=True)
    mock_cloud.patch(SCHEDULES_URL, payload={}, repeat=True)

    edit = dataclasses.replace(AddSlot("08:00", "10:00"), charging_level=level)
    with pytest.raises(InvalidLevelError):
        await client.edit_schedule(SITE, SN, edit)

    assert writes(mock_cloud) == []


# --- property: no call ever sends a level outside the charger's limits -------------------------


@st.composite
def limits_and_request(draw: st.DrawFn) -> dict[str, Any]:
    low = draw(st.integers(1, 16))
    high = draw(st.integers(low, 80))
    return {
        "min": low,
        "max": high,
        "granularity": draw(st.integers(1, 4)),
        "site_max": draw(st.none() | st.integers(1, 80)),
        "amps": draw(st.integers(-10, 200)),
        "call": draw(st.sampled_from(["start", "set_amps", "set_amps_direct"])),
        "charging_at": draw(st.none() | st.integers(1, 80)),
    }


def allowed(case: dict[str, Any], level: int) -> bool:
    """The oracle, independent of Limits: in range, within the site limit, on the steps."""
    top = case["max"] if case["site_max"] is None else min(case["max"], case["site_max"])
    return case["min"] <= level <= top and (level - case["min"]) % case["granularity"] == 0


def sent_level(body: Any) -> Any:
    assert isinstance(body, dict)
    return body.get("chargingLevel", body.get("charging_level"))


async def run_case(case: dict[str, Any]) -> tuple[bool, list[Any]]:
    """Make the call against a fresh mocked cloud; (raised InvalidLevelError, levels sent)."""

    def status(payload: Any) -> None:
        charger = payload["data"]["chargers"][0]
        if case["charging_at"] is None:
            idle(payload)
        else:
            charger["session_d"]["charge_level"] = case["charging_at"]

    details = {
        "min": str(case["min"]),
        "max": str(case["max"]),
        "granularity": str(case["granularity"]),
    }
    with aioresponses() as mocked:
        mock_status(mocked, status)
        mock_summary(mocked, {"data": {"chargeLevelDetails": details, "maxCurrent": case["max"]}})
        mocked.put(STOP_URL, payload=load_fixture("stop_charging"), repeat=True)
        mocked.post(START_URL, payload=load_fixture("start_charging"), repeat=True)
        async with EnlightenClient(
            base_url=BASE, site_max_amps=case["site_max"], settle_s=0
        ) as enlighten:
            enlighten.transport.state.session_id = "seeded-session-id-4711"
            enlighten.transport.state.generation = 1
            try:
                if case["call"] == "start":
                    await enlighten.start_charging(SITE, SN, amps=case["amps"])
                else:
                    direct = case["call"] == "set_amps_direct"
                    await enlighten.set_amps(SITE, SN, case["amps"], direct=direct)
            except InvalidLevelError:
                refused = True
            else:
                refused = False
        starts = action_requests(mocked, "start_charging")
    return refused, [sent_level(body) for _, _, body in starts]


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=limits_and_request())
def test_no_call_ever_sends_a_level_outside_the_chargers_limits(case: dict[str, Any]) -> None:
    refused, levels = asyncio.run(run_case(case))
    if refused:
        assert levels == []
        assert not allowed(case, case["amps"])
        return
    assert allowed(case, case["amps"])
    for level in levels:
        assert isinstance(level, int)
        assert allowed(case, level), (case, level)
    # Only set_amps at the level the session already runs at sends nothing without refusing.
    unchanged = case["call"] != "start" and case["charging_at"] == case["amps"]
    assert levels == ([] if unchanged else [case["amps"]])
