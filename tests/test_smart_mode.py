"""SMART_CHARGING and the 2026 mode preference: parsing, status fallbacks, the mode PUT quirks."""

from __future__ import annotations

import pytest
from aioresponses import aioresponses

from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.control import Outcome
from optimizer.enlighten.errors import ParseError
from optimizer.enlighten.models import ChargeMode, parse_charge_mode, parse_status
from optimizer.enlighten.modeset import (
    ModeNotAppliedError,
    NoSchedulesEnabledError,
    SchedulerOutageError,
    is_scheduler_outage,
)
from optimizer.enlighten.preference import parse_mode_preference
from optimizer.enlighten.transport import error_for_status
from tests.conftest import SleepRecorder
from tests.fixtures import load_fixture
from tests.test_client_writes import MODE_URL, SITE, SN, bodies, requests_to, writes

# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "mode"),
    [
        ("preference_2026_smart", ChargeMode.SMART_CHARGING),
        ("preference_2026_green", ChargeMode.GREEN_CHARGING),
        ("preference_2026_scheduled", ChargeMode.SCHEDULED_CHARGING),
        ("preference_2026_manual", ChargeMode.MANUAL_CHARGING),
        ("charge_mode", ChargeMode.MANUAL_CHARGING),  # the older shape still parses
    ],
)
def test_the_current_mode_is_the_first_enabled(fixture: str, mode: ChargeMode) -> None:
    assert parse_charge_mode(load_fixture(fixture)) is mode
    assert parse_mode_preference(load_fixture(fixture)).mode is mode


def test_smart_preference_carries_its_profile_and_takes_greens_place() -> None:
    pref = parse_mode_preference(load_fixture("preference_2026_smart"))
    assert pref.profile == "ai_optimisation"
    assert ChargeMode.GREEN_CHARGING not in pref.offered
    assert ChargeMode.SMART_CHARGING in pref.offered
    assert pref.notes() == []


def test_smart_wins_over_other_enabled_modes() -> None:
    payload = load_fixture("preference_2026_smart")
    payload["data"]["modes"]["manualCharging"]["enabled"] = True
    assert parse_charge_mode(payload) is ChargeMode.SMART_CHARGING


def test_a_reply_without_modes_names_no_mode_and_the_caller_keeps_its_own() -> None:
    pref = parse_mode_preference(load_fixture("preference_2026_no_modes"))
    assert pref.mode is None
    assert pref.remembering(ChargeMode.SMART_CHARGING).mode is ChargeMode.SMART_CHARGING
    known = parse_mode_preference(load_fixture("preference_2026_manual"))
    assert known.remembering(ChargeMode.SMART_CHARGING).mode is ChargeMode.MANUAL_CHARGING


def test_storm_and_sync_are_reported() -> None:
    storm = parse_mode_preference(load_fixture("preference_2026_storm"))
    assert storm.storm_active
    assert storm.disabled_by_storm == (ChargeMode.SMART_CHARGING, ChargeMode.SCHEDULED_CHARGING)
    assert storm.notes()[0].startswith("storm guard active")
    unsynced = parse_mode_preference(load_fixture("preference_2026_unsynced"))
    assert unsynced.unsynced
    assert "not yet synced" in unsynced.notes()[0]


def test_a_non_object_reply_is_still_a_parse_error() -> None:
    with pytest.raises(ParseError):
        parse_mode_preference(["modes"])


def test_status_mode_integers_and_the_greencharging_fallback() -> None:
    status = parse_status(load_fixture("status_2026_sch_green"))
    assert status.chargers[0].mode is ChargeMode.GREEN_CHARGING
    assert (
        parse_status(load_fixture("status_nested")).chargers[0].mode is ChargeMode.MANUAL_CHARGING
    )


def test_smart_and_green_take_no_amps() -> None:
    assert {m for m in ChargeMode if m.takes_no_amps} == {
        ChargeMode.GREEN_CHARGING,
        ChargeMode.SMART_CHARGING,
    }


# --- errors ------------------------------------------------------------------------------------


def test_the_2026_error_body_gives_code_and_message() -> None:
    err = error_for_status(400, url="/x", body=load_fixture("mode_put_2026_no_schedules"))
    assert err.code == "iqevc_sch_10031"
    assert "No Schedules enabled for Scheduled Charging" in err.message


def test_a_scheduler_503_is_an_outage_a_552_is_not() -> None:
    body = load_fixture("scheduler_2026_unavailable")
    assert is_scheduler_outage(error_for_status(503, url="/service/evse_controller/1/s", body=body))
    assert is_scheduler_outage(error_for_status(502, url="/service/evse_scheduler/api/v1/x"))
    assert not is_scheduler_outage(error_for_status(503, url="/service/evse_controller/1/s"))
    assert not is_scheduler_outage(error_for_status(552, url="/service/evse_scheduler/api/v1/x"))


# --- set_charge_mode ---------------------------------------------------------------------------


async def test_set_smart_puts_it(mock_cloud: aioresponses, client: EnlightenClient) -> None:
    mock_cloud.get(MODE_URL, payload=load_fixture("preference_2026_manual"))
    mock_cloud.put(MODE_URL, payload=load_fixture("preference_2026_smart"))

    result = await client.set_charge_mode(SITE, SN, ChargeMode.SMART_CHARGING)

    assert bodies(mock_cloud, "PUT", MODE_URL) == [{"mode": "SMART_CHARGING"}]
    assert result.outcome is Outcome.ACCEPTED


async def test_same_mode_is_never_put(mock_cloud: aioresponses, client: EnlightenClient) -> None:
    mock_cloud.get(MODE_URL, payload=load_fixture("preference_2026_smart"))
    mock_cloud.put(MODE_URL, status=400, payload=load_fixture("mode_put_2026_same_mode"))

    result = await client.set_charge_mode(SITE, SN, ChargeMode.SMART_CHARGING)

    assert result.outcome is Outcome.UNCHANGED
    assert writes(mock_cloud) == []


async def test_a_400_that_was_applied_is_read_back_and_accepted(
    mock_cloud: aioresponses, client: EnlightenClient, sleeps: SleepRecorder
) -> None:
    mock_cloud.get(MODE_URL, payload=load_fixture("preference_2026_manual"))
    mock_cloud.put(MODE_URL, status=400, payload={"error": {"displayMessage": "Bad request"}})
    mock_cloud.get(MODE_URL, payload=load_fixture("preference_2026_manual"))
    mock_cloud.get(MODE_URL, payload=load_fixture("preference_2026_no_modes"))
    mock_cloud.get(MODE_URL, payload=load_fixture("preference_2026_smart"))

    result = await client.set_charge_mode(SITE, SN, ChargeMode.SMART_CHARGING)

    assert result.outcome is Outcome.ACCEPTED
    assert "read-back shows it applied" in result.detail
    assert len(requests_to(mock_cloud, "PUT", MODE_URL)) == 1
    assert len(requests_to(mock_cloud, "GET", MODE_URL)) == 4
    assert sleeps.delays == [2.0, 2.0, 2.0]


async def test_a_400_never_applied_fails_after_six_reads(
    mock_cloud: aioresponses, client: EnlightenClient, sleeps: SleepRecorder
) -> None:
    mock_cloud.get(MODE_URL, payload=load_fixture("preference_2026_manual"), repeat=True)
    mock_cloud.put(MODE_URL, status=400, payload={"error": {"displayMessage": "Bad request"}})

    with pytest.raises(ModeNotAppliedError, match="read back as MANUAL_CHARGING 6 times"):
        await client.set_charge_mode(SITE, SN, ChargeMode.GREEN_CHARGING)

    assert len(requests_to(mock_cloud, "GET", MODE_URL)) == 7
    assert len(requests_to(mock_cloud, "PUT", MODE_URL)) == 1
    assert sleeps.delays == [2.0] * 6


async def test_10031_is_its_own_error_with_the_clouds_words_and_no_read_back(
    mock_cloud: aioresponses, client: EnlightenClient, sleeps: SleepRecorder
) -> None:
    mock_cloud.get(MODE_URL, payload=load_fixture("preference_2026_manual"), repeat=True)
    mock_cloud.put(MODE_URL, status=400, payload=load_fixture("mode_put_2026_no_schedules"))

    with pytest.raises(NoSchedulesEnabledError) as caught:
        await client.set_charge_mode(SITE, SN, ChargeMode.SCHEDULED_CHARGING)

    text = caught.value.user_message()
    assert "No Schedules enabled for Scheduled Charging" in text
    assert "evopt schedule enable N" in text
    assert caught.value.exit_code == 1
    assert len(requests_to(mock_cloud, "GET", MODE_URL)) == 1
    assert sleeps.delays == []


async def test_a_5xx_on_the_put_is_a_scheduler_outage(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.get(MODE_URL, payload=load_fixture("preference_2026_manual"), repeat=True)
    mock_cloud.put(
        MODE_URL, status=503, payload=load_fixture("scheduler_2026_unavailable"), repeat=True
    )

    with pytest.raises(SchedulerOutageError) as caught:
        await client.set_charge_mode(SITE, SN, ChargeMode.SMART_CHARGING)

    assert "scheduler service is down" in caught.value.user_message()
    assert caught.value.exit_code == 4
