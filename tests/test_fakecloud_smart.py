"""The fake's 2026 mode preference (SMART, storm, PUT quirks) and its scheduler outages."""

from __future__ import annotations

from typing import Any

from optimizer.enlighten.models import ChargeMode
from optimizer.enlighten.preference import parse_mode_preference
from optimizer.fakecloud import FakeCloud, ModeWrites
from optimizer.fakecloud.profile import LEGACY_2024
from tests.fixtures import load_fixture
from tests.test_fakecloud import EVSE, Client
from tests.test_fakecloud_writes import PREFERENCE, SCHEDULES, call
from tests.test_fakecloud_writes import api as api_fixture
from tests.test_fakecloud_writes import cloud as cloud_fixture

# The write tests' fixtures: a fresh fake and a logged-in raw client on it.
cloud = cloud_fixture
api = api_fixture

STATUS = f"{EVSE}/ev_chargers/status"


def disable_slots(cloud: FakeCloud) -> None:
    slots = [dict(slot, enabled=False) for slot in cloud.charger().schedule_slots]
    cloud.update_charger(schedule_slots=slots)


def keys(value: Any) -> Any:
    """The shape of a JSON value: its keys, recursively, without the values."""
    if isinstance(value, dict):
        return {key: keys(item) for key, item in value.items()}
    return type(value).__name__ if value is not None else None


async def test_the_preference_has_the_2026_shape(api: Client, cloud: FakeCloud) -> None:
    cloud.set_site(battery_profile="ai_optimisation")
    cloud.update_charger(scheduler_mode="SMART_CHARGING")
    disable_slots(cloud)

    status, body = await call(api, "GET", PREFERENCE)

    assert status == 200
    reference = load_fixture("preference_2026_smart")
    assert set(body) == set(reference)
    assert set(body["data"]["config"]) == set(reference["data"]["config"])
    assert set(body["data"]["modes"]) == set(reference["data"]["modes"])  # no greenCharging
    pref = parse_mode_preference(body)
    assert pref.mode is ChargeMode.SMART_CHARGING
    assert pref.profile == "ai_optimisation"


async def test_green_in_place_of_smart_without_ai_optimisation(api: Client) -> None:
    _, body = await call(api, "GET", PREFERENCE)
    assert "greenCharging" in body["data"]["modes"]
    assert "smartCharging" not in body["data"]["modes"]
    assert (await call(api, "PUT", PREFERENCE, {"mode": "SMART_CHARGING"}))[0] == 400


async def test_storm_flags(api: Client, cloud: FakeCloud) -> None:
    cloud.set_site(storm_active=True)
    pref = parse_mode_preference((await call(api, "GET", PREFERENCE))[1])
    assert pref.storm_active
    assert ChargeMode.GREEN_CHARGING in pref.disabled_by_storm


async def test_smart_charges_like_green(api: Client, cloud: FakeCloud) -> None:
    cloud.set_site(battery_profile="ai_optimisation")
    assert (await call(api, "PUT", PREFERENCE, {"mode": "SMART_CHARGING"}))[0] == 200
    cloud.update_charger(plugged_in=True)
    _, status = await call(api, "GET", STATUS)
    assert status["data"]["chargers"][0]["mode"] == 1
    assert cloud.charger().scheduler_mode == "SMART_CHARGING"


async def test_same_mode_put_is_a_400_and_counted(api: Client, cloud: FakeCloud) -> None:
    status, body = await call(api, "PUT", PREFERENCE, {"mode": "MANUAL_CHARGING"})
    assert status == 400
    assert body["data"] is None
    assert set(body["error"]) == {"displayMessage", "code", "errorMessageCode"}
    assert cloud.charger().mode_writes == ModeWrites(changed=0, unchanged=1)


async def test_scheduled_without_an_enabled_slot_is_10031(api: Client, cloud: FakeCloud) -> None:
    disable_slots(cloud)
    status, body = await call(api, "PUT", PREFERENCE, {"mode": "SCHEDULED_CHARGING"})
    assert (status, set(body)) == (400, {"meta", "data", "error"})
    assert body["error"] == load_fixture("mode_put_2026_no_schedules")["error"]
    assert cloud.charger().scheduler_mode == "MANUAL_CHARGING"


async def test_a_put_can_answer_400_and_still_apply(api: Client, cloud: FakeCloud) -> None:
    cloud.set_profile(mode_put_400_applied=True)
    assert (await call(api, "PUT", PREFERENCE, {"mode": "GREEN_CHARGING"}))[0] == 400
    assert cloud.charger().scheduler_mode == "GREEN_CHARGING"


async def test_the_2024_preset_keeps_the_old_preference(api: Client, cloud: FakeCloud) -> None:
    cloud.set_profile(**LEGACY_2024)
    _, body = await call(api, "GET", PREFERENCE)
    assert body == load_fixture("charge_mode")
    assert (await call(api, "PUT", PREFERENCE, {"mode": "MANUAL_CHARGING"}))[0] == 200


async def test_a_scheduler_outage_lasts_its_fake_hours(api: Client, cloud: FakeCloud) -> None:
    cloud.scheduler_outage(3 * 3600)
    for path in (PREFERENCE, SCHEDULES):
        status, body = await call(api, "GET", path)
        assert status == 503
        assert "scheduler" in body["error"]["displayMessage"]
    assert (await call(api, "GET", STATUS))[0] == 200  # status only with status=True
    cloud.advance(3 * 3600 - 1)
    await api.login()
    assert (await call(api, "GET", PREFERENCE))[0] == 503
    cloud.advance(1)
    await api.login()  # three fake hours outlive the bearer token
    assert (await call(api, "GET", PREFERENCE))[0] == 200


async def test_an_outage_can_take_status_down_and_the_admin_route_drives_it(
    api: Client, cloud: FakeCloud
) -> None:
    status, body = await call(api, "POST", "/__fake__/scheduler_outage", {"hours": 2, "status": 1})
    assert (status, body["status"]) == (200, True)
    status, body = await call(api, "GET", STATUS)
    assert status == 503
    assert (
        body["error"]["displayMessage"]
        == load_fixture("scheduler_2026_unavailable")["error"]["displayMessage"]
    )
    assert (await call(api, "POST", "/__fake__/scheduler_outage", {"minutes": 2}))[0] == 400
    assert (await call(api, "DELETE", "/__fake__/scheduler_outage"))[0] == 200
    assert (await call(api, "GET", STATUS))[0] == 200
    assert (await call(api, "POST", "/__fake__/site", {"battery_profile": "ai_optimisation"}))[
        1
    ] == {"battery_profile": "ai_optimisation", "storm_active": False}
