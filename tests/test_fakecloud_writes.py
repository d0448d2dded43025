"""The fake cloud's write side: control commands, region profiles, scheduler writes, faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from optimizer.fakecloud import Charger, FakeCloud, FakeCloudServer, FaultRule, ModeWrites
from optimizer.fakecloud.profile import LEGACY_2024, Profile
from optimizer.fakecloud.schedule_state import SYNC_S, format_ms, parse_token
from tests.fixtures import load_fixture
from tests.test_fakecloud import BROWSER, EVSE, SCHED, SITE, SN, Client, _body

PLURAL = f"{EVSE}/ev_chargers/{SN}"
SINGULAR = f"{EVSE}/ev_charger/{SN}"
PREFERENCE = f"{SCHED}/{SITE}/{SN}/preference"
SETTINGS = f"{SCHED}/GREEN_CHARGING/{SITE}/{SN}/settings"
SCHEDULES = f"{SCHED}/SCHEDULED_CHARGING/{SITE}/{SN}/schedules"
RANGE_ERROR = {"status": "error", "message": "Charging level should be in the range [6-32]"}
NOT_PLUGGED = {
    "status": "error",
    "error": {"code": "iqevc_ms-10008", "message": "EV not plugged in"},
}
ALREADY = {"status": "error", "error": {"code": "iqevc_ms-10012", "message": "Already charging"}}
W_PER_A = 230

NO_BODY = object()


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud()


@pytest.fixture
async def api(cloud: FakeCloud) -> AsyncIterator[Client]:
    async with (
        FakeCloudServer(cloud) as server,
        aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers=BROWSER
        ) as session,
    ):
        client = Client(server.base_url, session)
        await client.login()
        yield client


async def call(
    api: Client, method: str, path: str, body: Any = NO_BODY, **kw: Any
) -> tuple[int, Any]:
    if body is not NO_BODY:
        kw["json"] = body
    headers = kw.pop("headers", api.headers)
    async with api.session.request(method, api.url(path), headers=headers, **kw) as resp:
        return resp.status, await _body(resp)


def drawing_amps(cloud: FakeCloud) -> float:
    return float(cloud.snapshot()["chargers"][0]["drawing_w"]) / W_PER_A


# --- region profiles ---------------------------------------------------------------------------

BODIES: dict[str, Any] = {
    "none": NO_BODY,
    "camel_level": {"chargingLevel": 16, "connectorId": 1},
    "camel": {"connectorId": 1},
    "snake_level": {"charging_level": 16, "connector_id": 1},
    "snake": {"connector_id": 1},
}
PROFILES = ["any", "put_singular_snake", "put_only", "singular_only", "no_level"]


def expected_start(profile: str, method: str, kind: str, style: str) -> tuple[int, str | None]:
    """What each deployment answers (status, error message), written out per profile."""
    snake = style.startswith("snake")
    camel = style.startswith("camel")
    if profile == "any":
        return 200, None
    if profile == "put_singular_snake":
        if kind == "plural":
            return 404, "Not Found"
        if method == "POST":
            return 405, "Method not allowed"
        return (200, None) if snake else (400, "connector_id is required")
    if profile == "put_only":
        if method == "POST":
            return 405, "Method not allowed"
        return (200, None) if camel else (400, "connectorId is required")
    if profile == "singular_only":
        if kind == "plural":
            return 404, "Not Found"
        return (200, None) if camel else (400, "connectorId is required")
    assert profile == "no_level"
    if style.endswith("_level"):
        return 400, "Charging level not supported"
    return 200, None


@pytest.mark.parametrize("profile", PROFILES)
async def test_each_profile_accepts_exactly_its_start_variants(
    api: Client, cloud: FakeCloud, profile: str
) -> None:
    cloud.set_profile(control_profile=profile)
    cloud.update_charger(plugged_in=True)
    for method in ("POST", "PUT"):
        for kind, base in (("plural", PLURAL), ("singular", SINGULAR)):
            for style, body in BODIES.items():
                case = (method, kind, style)
                status, reply = await call(api, method, f"{base}/start_charging", body)
                want_status, want_message = expected_start(profile, method, kind, style)
                assert status == want_status, case
                charger = cloud.charger()
                if status != 200:
                    assert reply == {"status": "error", "message": want_message}, case
                    assert not charger.charging, case
                    continue
                leveled = style.endswith("_level")
                assert reply == {"status": "accepted", "chargingLevel": 16 if leveled else None}
                assert charger.charging, case
                assert charger.level == (16 if leveled else 32), case
                cloud.update_charger(charging=False, level=32)
    assert cloud.violations() == []


def expected_stop(profile: str, method: str, kind: str) -> int:
    if profile in ("put_singular_snake", "singular_only") and kind == "plural":
        return 404
    if profile in ("put_singular_snake", "put_only") and method == "POST":
        return 405
    return 200


@pytest.mark.parametrize("profile", PROFILES)
async def test_each_profile_accepts_exactly_its_stop_variants(
    api: Client, cloud: FakeCloud, profile: str
) -> None:
    cloud.set_profile(control_profile=profile)
    for method in ("POST", "PUT"):
        for kind, base in (("plural", PLURAL), ("singular", SINGULAR)):
            cloud.update_charger(plugged_in=True, charging=True)
            status, reply = await call(api, method, f"{base}/stop_charging")
            assert status == expected_stop(profile, method, kind), (method, kind)
            assert cloud.charger().charging is (status != 200)
            if status == 200:
                assert reply == {"status": "accepted"}
            if status == 405:
                assert reply == {"status": "error", "message": "Method not allowed"}


async def test_variant_checks_come_before_the_charger_state(api: Client, cloud: FakeCloud) -> None:
    cloud.set_profile(**LEGACY_2024)  # the 2024 error envelopes; 2026: at the end
    cloud.set_profile(control_profile="put_only")
    # Unplugged: a wrong verb still answers 405, not "EV not plugged in".
    assert (await call(api, "POST", f"{PLURAL}/start_charging", BODIES["camel"]))[0] == 405
    async with api.session.post(
        api.url(f"{PLURAL}/start_charging"), headers=api.headers, json=BODIES["camel"]
    ) as resp:
        assert resp.headers["Allow"] == "PUT"
    assert (await call(api, "PUT", f"{PLURAL}/start_charging", BODIES["camel"])) == (
        400,
        NOT_PLUGGED,
    )
    cloud.set_profile(control_profile="put_singular_snake")
    assert (await call(api, "PUT", f"{PLURAL}/stop_charging"))[0] == 404  # nothing charging


async def test_admin_profile_route_switches_control_profile(api: Client, cloud: FakeCloud) -> None:
    status, body = await api.post("/__fake__/profile", json={"control_profile": "no_level"})
    assert (status, body["control_profile"]) == (200, "no_level")
    assert cloud.profile.control_profile == "no_level"
    assert (await api.post("/__fake__/profile", json={"control_profile": "odd"}))[0] == 400


# --- charger behaviour -------------------------------------------------------------------------


async def test_start_refusals_and_stop_without_session(api: Client, cloud: FakeCloud) -> None:
    cloud.set_profile(**LEGACY_2024)  # the 2024 error envelopes; 2026: at the end
    start = f"{PLURAL}/start_charging"
    assert await call(api, "POST", start, {"chargingLevel": 16, "connectorId": 1}) == (
        400,
        NOT_PLUGGED,
    )
    assert await call(api, "PUT", f"{PLURAL}/stop_charging") == (
        409,
        {"status": "error", "message": "No active charging session"},
    )
    cloud.update_charger(plugged_in=True, charging=True)
    assert await call(api, "POST", start, {"chargingLevel": 16, "connectorId": 1}) == (
        400,
        ALREADY,
    )
    assert cloud.charger().level == 32  # a refused start leaves the level alone
    assert drawing_amps(cloud) == 32
    unknown = await call(api, "POST", f"{EVSE}/ev_chargers/EV000/start_charging")
    assert unknown[0] == 404
    assert (await call(api, "POST", f"/service/evse_controller/1/ev_chargers/{SN}/start_charging"))[
        0
    ] == 468


async def test_settle_time_after_a_stop(api: Client, cloud: FakeCloud) -> None:
    cloud.set_profile(**LEGACY_2024)  # the 2024 error envelopes; 2026: at the end
    cloud.update_charger(plugged_in=True, charging=True, settle_s=30)
    assert (await call(api, "PUT", f"{PLURAL}/stop_charging"))[0] == 200
    cloud.advance(29)
    body = {"chargingLevel": 20, "connectorId": 1}
    assert await call(api, "POST", f"{PLURAL}/start_charging", body) == (
        409,
        {"status": "error", "message": "Charger not ready"},
    )
    assert cloud.charger().level == 32
    cloud.advance(1)
    assert await call(api, "POST", f"{PLURAL}/start_charging", body) == (
        200,
        {"status": "accepted", "chargingLevel": 20},
    )
    assert drawing_amps(cloud) == 20


async def test_offline_charger_answers_552_and_nothing_changes(
    api: Client, cloud: FakeCloud
) -> None:
    cloud.set_profile(**LEGACY_2024)  # the 2024 error envelopes; 2026: at the end
    cloud.update_charger(plugged_in=True, connected=False)
    offline = (552, {"status": "error", "message": "CONNECTION_NOT_ESTABLISHED"})
    assert await call(api, "POST", f"{PLURAL}/start_charging", {"connectorId": 1}) == offline
    assert not cloud.charger().charging
    cloud.update_charger(charging=True)
    assert await call(api, "PUT", f"{PLURAL}/stop_charging") == offline
    trigger = {"requestedMessage": "MeterValues"}
    assert await call(api, "POST", f"{SINGULAR}/trigger_message", trigger) == offline
    charger = cloud.charger()
    assert (charger.charging, charger.stopped_at, charger.triggered_messages) == (True, None, [])


async def test_manual_level_changes_only_through_a_restart(api: Client, cloud: FakeCloud) -> None:
    cloud.update_charger(plugged_in=True, charging=True)
    start, stop = f"{PLURAL}/start_charging", f"{PLURAL}/stop_charging"
    assert (await call(api, "POST", start, {"chargingLevel": 16, "connectorId": 1}))[0] == 400
    assert drawing_amps(cloud) == 32
    assert (await call(api, "PUT", stop))[0] == 200
    assert drawing_amps(cloud) == 0
    assert await call(api, "POST", start, {"chargingLevel": 16, "connectorId": 1}) == (
        200,
        {"status": "accepted", "chargingLevel": 16},
    )
    assert drawing_amps(cloud) == 16
    # A start without a level reuses the stored one.
    assert (await call(api, "PUT", stop))[0] == 200
    assert await call(api, "POST", start) == (200, {"status": "accepted", "chargingLevel": None})
    assert drawing_amps(cloud) == 16
    # Energy accrues at the level of each stretch.
    before = cloud.charger().session_energy_wh
    cloud.advance(3600)
    assert cloud.charger().session_energy_wh - before == pytest.approx(16 * W_PER_A)


async def test_live_level_charger_takes_a_new_level_while_charging(
    api: Client, cloud: FakeCloud
) -> None:
    cloud.set_profile(**LEGACY_2024)  # the 2024 error envelopes; 2026: at the end
    cloud.update_charger(plugged_in=True, charging=True, live_level=True)
    start = f"{PLURAL}/start_charging"
    assert await call(api, "POST", start, {"chargingLevel": 10, "connectorId": 1}) == (
        200,
        {"status": "accepted", "chargingLevel": 10},
    )
    assert drawing_amps(cloud) == 10
    assert await call(api, "POST", start, {"connectorId": 1}) == (400, ALREADY)


async def status_mode(api: Client) -> int:
    _, body = await api.get(f"{EVSE}/ev_chargers/status")
    return int(body["data"]["chargers"][0]["mode"])


async def preference_mode(api: Client) -> str:
    _, body = await api.get(PREFERENCE)
    modes = body["data"]["modes"].values()
    return str(next(m["chargingMode"] for m in modes if m["enabled"]))


async def test_green_ignores_levels_and_a_command_is_a_manual_override_until_replug(
    api: Client, cloud: FakeCloud
) -> None:
    assert (await call(api, "PUT", PREFERENCE, {"mode": "GREEN_CHARGING"}))[0] == 200
    cloud.update_charger(plugged_in=True)
    assert await status_mode(api) == 1
    assert await call(
        api, "POST", f"{PLURAL}/start_charging", {"chargingLevel": 10, "connectorId": 1}
    ) == (200, {"status": "accepted", "chargingLevel": None})
    charger = cloud.charger()
    assert (charger.level, charger.charging) == (32, True)  # the level was ignored
    assert await status_mode(api) == 0  # manual override ...
    assert await preference_mode(api) == "GREEN_CHARGING"  # ... the preference stays GREEN
    cloud.update_charger(plugged_in=False)
    cloud.update_charger(plugged_in=True)
    assert await status_mode(api) == 1  # re-plug ends the override
    # A stop in GREEN is an override too.
    cloud.update_charger(charging=True)
    assert (await call(api, "PUT", f"{PLURAL}/stop_charging"))[0] == 200
    assert await status_mode(api) == 0
    assert await preference_mode(api) == "GREEN_CHARGING"
    # Writing the mode it already has does nothing, not even end the override (2026: a 400).
    assert (await call(api, "PUT", PREFERENCE, {"mode": "GREEN_CHARGING"}))[0] == 400
    assert await status_mode(api) == 0
    assert cloud.charger().mode_writes == ModeWrites(changed=1, unchanged=1)


@pytest.mark.parametrize("level", [5, 33, 0, -6, "16", 16.5, True])
async def test_out_of_range_levels_are_refused_and_recorded(
    api: Client, cloud: FakeCloud, level: Any
) -> None:
    cloud.set_profile(**LEGACY_2024)  # the 2024 error envelopes; 2026: at the end
    cloud.update_charger(plugged_in=True)
    body = {"chargingLevel": level, "connectorId": 1}
    assert await call(api, "POST", f"{PLURAL}/start_charging", body) == (400, RANGE_ERROR)
    assert not cloud.charger().charging
    [violation] = cloud.violations()
    assert (violation.sn, violation.level) == (SN, level)
    assert violation.at == cloud.now()
    _, state = await api.get("/__fake__/state")
    assert state["violations"][0]["level"] == level


async def test_level_limits_come_from_the_charger(cloud: FakeCloud) -> None:
    small = FakeCloud(chargers=[Charger(sn=SN, min_amps=8, max_amps=16, granularity=2)])
    small.set_profile(**LEGACY_2024)  # the 2024 error envelopes; 2026: at the end
    small.update_charger(plugged_in=True)
    async with (
        FakeCloudServer(small) as server,
        aiohttp.ClientSession(headers=BROWSER) as session,
    ):
        api = Client(server.base_url, session)
        await api.login()
        start = f"{PLURAL}/start_charging"
        for bad in (7, 9, 18):
            assert await call(api, "POST", start, {"chargingLevel": bad, "connectorId": 1}) == (
                400,
                {"status": "error", "message": "Charging level should be in the range [8-16]"},
            )
        assert (await call(api, "POST", start, {"chargingLevel": 12, "connectorId": 1}))[0] == 200
    assert [v.level for v in small.violations()] == [7, 9, 18]
    assert cloud.violations() == []


async def test_a_bad_level_is_recorded_even_when_the_variant_is_refused(
    api: Client, cloud: FakeCloud
) -> None:
    cloud.set_profile(control_profile="no_level")
    body = {"chargingLevel": 40, "connectorId": 1}
    assert (await call(api, "POST", f"{PLURAL}/start_charging", body))[1] == {
        "status": "error",
        "message": "Charging level not supported",
    }
    assert [v.level for v in cloud.violations()] == [40]


async def test_bad_start_bodies(api: Client, cloud: FakeCloud) -> None:
    cloud.update_charger(plugged_in=True)
    start = f"{PLURAL}/start_charging"
    assert await call(api, "POST", start, [1]) == (
        400,
        {"status": "error", "message": "Request body must be a JSON object"},
    )
    assert (await call(api, "POST", start, {"connectorId": 0}))[1]["message"] == (
        "Connector Id must be greater than 0"
    )
    assert (await call(api, "POST", start, {"connectorId": 2}))[0] == 400
    assert (await call(api, "GET", start))[0] == 405
    assert not cloud.charger().charging


# --- trigger_message ---------------------------------------------------------------------------

ALLOWED_MESSAGES = [
    "BootNotification",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
]


async def test_trigger_message_allowed_set(api: Client, cloud: FakeCloud) -> None:
    tickets = set()
    for message in ALLOWED_MESSAGES:
        status, body = await call(
            api, "POST", f"{SINGULAR}/trigger_message", {"requestedMessage": message}
        )
        assert status == 200
        assert body["status"] == "accepted"
        assert body["message"] == message
        assert body["details"]["initiatedAt"] == "2025-01-15T02:00:00.000Z"
        assert body["details"]["trackingId"].startswith("TICKET-")
        tickets.add(body["details"]["trackingId"])
    assert len(tickets) == len(ALLOWED_MESSAGES)
    assert cloud.charger().triggered_messages == ALLOWED_MESSAGES
    invalid = (400, {"status": "error", "message": "Invalid requestedMessage"})
    for body in ({"requestedMessage": "Reset"}, {}, NO_BODY):
        assert await call(api, "POST", f"{SINGULAR}/trigger_message", body) == invalid
    plural = await call(api, "POST", f"{PLURAL}/trigger_message", {"requestedMessage": "Heartbeat"})
    assert plural[0] == 200
    assert (await call(api, "PUT", f"{SINGULAR}/trigger_message"))[0] == 405


# --- scheduler writes --------------------------------------------------------------------------


async def test_mode_writes_mirror_the_get_and_count_changes(api: Client, cloud: FakeCloud) -> None:
    status, body = await call(api, "PUT", PREFERENCE, {"mode": "GREEN_CHARGING"})
    assert status == 200
    assert body == (await api.get(PREFERENCE))[1]
    assert body["data"]["modes"]["greenCharging"] == {
        "enabled": True,
        "chargingMode": "GREEN_CHARGING",
        "isDisabledByStorm": False,
    }
    assert (cloud.charger().scheduler_mode, cloud.charger().mode) == ("GREEN_CHARGING", 1)
    await call(api, "PUT", PREFERENCE, {"mode": "GREEN_CHARGING"})
    await call(api, "PUT", PREFERENCE, {"mode": "SCHEDULED_CHARGING"})
    assert (cloud.charger().scheduler_mode, cloud.charger().mode) == ("SCHEDULED_CHARGING", 0)
    for bad in ({"mode": "TURBO"}, {}, NO_BODY):
        assert (await call(api, "PUT", PREFERENCE, bad))[0] == 400
    assert cloud.charger().mode_writes == ModeWrites(changed=2, unchanged=1)
    assert cloud.snapshot()["chargers"][0]["mode_writes"] == {"changed": 2, "unchanged": 1}
    assert len(cloud.requests(PREFERENCE, method="PUT")) == 6
    no_bearer = {"e-auth-token": api.headers["e-auth-token"]}
    assert (await call(api, "PUT", PREFERENCE, {"mode": "MANUAL_CHARGING"}, headers=no_bearer))[
        0
    ] == 401


def battery_body(enabled: Any, **extra: Any) -> dict[str, Any]:
    setting = {"chargerSettingName": "USE_BATTERY_FOR_SELF_CONSUMPTION", "enabled": enabled}
    return {"chargerSettingList": [{**setting, "value": None, **extra}]}


async def test_green_battery_setting_write(api: Client, cloud: FakeCloud) -> None:
    stamp = {"serverTimeStamp": "2025-01-15T02:00:00.000+00:00"}
    status, body = await call(api, "PUT", SETTINGS, battery_body(False, loader=False))
    assert (status, body) == (
        200,
        {"meta": stamp, "data": {"meta": stamp, "data": None, "error": {}}, "error": {}},
    )
    assert (await api.get(SETTINGS))[1]["data"][0]["enabled"] is False
    assert (await call(api, "PUT", SETTINGS, battery_body(True)))[0] == 200  # no loader key
    assert cloud.charger().green_use_battery is True
    unknown = {"chargerSettingList": [{"chargerSettingName": "TURBO", "enabled": True}]}
    for bad in (unknown, battery_body("yes"), {"chargerSettingList": []}, NO_BODY):
        assert (await call(api, "PUT", SETTINGS, bad))[0] == 400
    cloud.update_charger(supports_use_battery=False)
    assert await call(api, "PUT", SETTINGS, battery_body(False)) == (
        400,
        {"status": "error", "message": "Setting not supported"},
    )
    assert cloud.charger().green_use_battery is True


async def test_schedule_patch_replaces_the_whole_list(api: Client, cloud: FakeCloud) -> None:
    cloud.set_profile(**LEGACY_2024)  # the 2024 error envelopes; 2026: at the end
    _, body = await api.get(SCHEDULES)
    custom, off_peak = body["data"]["slots"]
    edited = {**custom, "startTime": "22:30", "chargingLevel": 16, "extraField": "dropped"}
    patch = {"meta": body["meta"], "data": [edited]}
    status, reply = await call(api, "PATCH", SCHEDULES, patch)
    assert status == 200
    expected = {k: v for k, v in edited.items() if k != "extraField"}
    assert reply["data"]["slots"] == [expected]  # the OFF_PEAK slot was omitted: it is gone
    assert (await api.get(SCHEDULES))[1]["data"]["slots"] == [expected]
    assert cloud.charger().schedule_slots == [expected]
    assert cloud.requests(SCHEDULES, method="PATCH")[0].json == patch
    # Both back, in the order sent; missing optional fields are filled as the GET shows them.
    minimal = {
        "id": off_peak["id"],
        "scheduleType": "OFF_PEAK",
        "days": [6, 7],
        "startTime": None,
        "endTime": None,
        "enabled": True,
    }
    _, reply = await call(api, "PATCH", SCHEDULES, {"meta": {}, "data": [minimal, expected]})
    first, second = reply["data"]["slots"]
    assert set(first) == set(expected)
    assert (first["days"], first["chargingLevel"], first["remindFlag"]) == ([6, 7], None, False)
    assert second == expected
    _, reply = await call(api, "PATCH", SCHEDULES, {"data": []})
    assert reply["data"]["slots"] == []


def _slot(**changes: Any) -> dict[str, Any]:
    slot: dict[str, Any] = {
        "id": f"{SITE}:{SN}:abc",
        "startTime": "23:00",
        "endTime": "06:00",
        "chargingLevel": 32,
        "scheduleType": "CUSTOM",
        "days": [1, 2, 3],
        "enabled": True,
    }
    slot.update(changes)
    return {k: v for k, v in slot.items() if v is not ...}


@pytest.mark.parametrize(
    ("slot", "field"),
    [
        (_slot(id=12), "id"),
        (_slot(id=...), "id"),
        (_slot(scheduleType="WEEKLY"), "scheduleType"),
        (_slot(days=[0, 1]), "days"),
        (_slot(days=[8]), "days"),
        (_slot(days="1,2"), "days"),
        (_slot(days=[True]), "days"),
        (_slot(startTime="24:00"), "startTime"),
        (_slot(startTime="7:00"), "startTime"),
        (_slot(endTime=None), "endTime"),
        (_slot(chargingLevel="32"), "chargingLevel"),
        (_slot(enabled="true"), "enabled"),
        (_slot(enabled=...), "enabled"),
        ("not a slot", "slot"),
    ],
)
async def test_schedule_patch_validation_names_the_field(
    api: Client, cloud: FakeCloud, slot: Any, field: str
) -> None:
    cloud.set_profile(**LEGACY_2024)  # the 2024 error envelopes; 2026: at the end
    before = [dict(s) for s in cloud.charger().schedule_slots]
    status, body = await call(api, "PATCH", SCHEDULES, {"meta": {}, "data": [_slot(), slot]})
    assert status == 400
    assert (body["status"], body["field"], body["index"]) == ("error", field, 1)
    assert field in body["message"]
    assert cloud.charger().schedule_slots == before


async def test_schedule_patch_body_and_duplicate_ids(api: Client, cloud: FakeCloud) -> None:
    cloud.set_profile(**LEGACY_2024)  # the 2024 error envelopes; 2026: at the end
    assert (await call(api, "PATCH", SCHEDULES, {"meta": {}}))[1]["field"] == "data"
    assert (await call(api, "PATCH", SCHEDULES, NO_BODY))[0] == 400
    status, body = await call(api, "PATCH", SCHEDULES, {"data": [_slot(), _slot()]})
    assert (status, body["field"], body["index"]) == (400, "id", 1)
    off_peak = _slot(scheduleType="OFF_PEAK", startTime=None, endTime=None, chargingLevel=None)
    assert (await call(api, "PATCH", SCHEDULES, {"data": [off_peak]}))[0] == 200


# --- faults on writes --------------------------------------------------------------------------

WRITES: list[tuple[str, str, Any]] = [
    ("POST", f"{PLURAL}/start_charging", {"chargingLevel": 16, "connectorId": 1}),
    ("PUT", f"{PLURAL}/stop_charging", NO_BODY),
    ("POST", f"{SINGULAR}/trigger_message", {"requestedMessage": "MeterValues"}),
    ("PUT", PREFERENCE, {"mode": "GREEN_CHARGING"}),
    ("PUT", SETTINGS, battery_body(False)),
    ("PATCH", SCHEDULES, {"data": []}),
]


def write_state(cloud: FakeCloud) -> dict[str, Any]:
    charger = cloud.snapshot()["chargers"][0]
    return {k: charger[k] for k in ("charging", "level", "scheduler_mode", "mode")} | {
        k: charger[k] for k in ("green_use_battery", "schedule_slots", "triggered_messages")
    }


async def test_rate_limit_and_unavailable_faults_do_not_take_effect(
    api: Client, cloud: FakeCloud
) -> None:
    cloud.update_charger(plugged_in=True)
    cloud.add_fault("status", path="/start_charging", status=429, retry_after=60)
    async with api.session.post(
        api.url(f"{PLURAL}/start_charging"), headers=api.headers, json={"connectorId": 1}
    ) as resp:
        assert (resp.status, resp.headers["Retry-After"]) == (429, "60")
    assert not cloud.charger().charging
    cloud.update_charger(charging=True)
    cloud.add_fault("status", path="/stop_charging", status=503)
    assert (await call(api, "PUT", f"{PLURAL}/stop_charging"))[0] == 503
    assert cloud.charger().charging
    assert [e.fault for e in cloud.requests("_charging")] == ["status", "status"]


@pytest.mark.parametrize("code", [466, 468, 472, 473, 550, 551, 552])
async def test_cloud_status_faults_on_every_write_change_nothing(
    api: Client, cloud: FakeCloud, code: int
) -> None:
    cloud.update_charger(plugged_in=True, charging=True)
    before = write_state(cloud)
    for method, path, body in WRITES:
        cloud.add_fault("status", path=path, method=method, status=code)
        status, reply = await call(api, method, path, body)
        assert (status, reply["status"]) == (code, "error"), path
    assert write_state(cloud) == before
    assert cloud.violations() == []


async def test_fault_after_the_handler_took_effect(api: Client, cloud: FakeCloud) -> None:
    cloud.update_charger(plugged_in=True)
    cloud.add_fault("status", path="/start_charging", status=500, after=True)
    body = {"chargingLevel": 20, "connectorId": 1}
    assert (await call(api, "POST", f"{PLURAL}/start_charging", body))[0] == 500
    assert (cloud.charger().charging, cloud.charger().level) == (True, 20)
    [entry] = cloud.requests("/start_charging")
    assert (entry.status, entry.fault, entry.fault_after) == (500, "status", True)

    cloud.add_fault("status", path=PREFERENCE, status=502, after=True)
    assert (await call(api, "PUT", PREFERENCE, {"mode": "GREEN_CHARGING"}))[0] == 502
    assert cloud.charger().scheduler_mode == "GREEN_CHARGING"

    # aiohttp retries an idempotent PUT once on a dropped connection: two drops to see one.
    cloud.add_fault("disconnect", path="/stop_charging", after=True, times=2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call(api, "PUT", f"{PLURAL}/stop_charging")
    assert not cloud.charger().charging


async def test_timeout_before_never_applies_but_after_does(api: Client, cloud: FakeCloud) -> None:
    cloud.update_charger(plugged_in=True)
    start = f"{PLURAL}/start_charging"
    quick = aiohttp.ClientTimeout(total=0.05)
    cloud.add_fault("timeout", path="/start_charging", delay_s=0.3)
    with pytest.raises(asyncio.TimeoutError):
        await call(api, "POST", start, {"connectorId": 1}, timeout=quick)
    await asyncio.sleep(0.4)  # the parked request wakes up, finds the client gone, drops
    assert not cloud.charger().charging
    assert cloud.requests("/start_charging")[0].status is None

    cloud.add_fault("timeout", path="/start_charging", delay_s=5, after=True)
    with pytest.raises(asyncio.TimeoutError):
        await call(api, "POST", start, {"connectorId": 1}, timeout=quick)
    assert cloud.charger().charging  # it did start: "it may have taken effect"


async def test_timeout_before_shorter_than_the_client_still_answers(
    api: Client, cloud: FakeCloud
) -> None:
    cloud.update_charger(plugged_in=True)
    cloud.add_fault("timeout", path="/start_charging", delay_s=0.05)
    assert (await call(api, "POST", f"{PLURAL}/start_charging", {"connectorId": 1}))[0] == 200
    assert cloud.charger().charging


async def test_after_option_over_the_admin_route(api: Client, cloud: FakeCloud) -> None:
    rule = {"kind": "status", "path": "/stop_charging", "status": 500, "after": True}
    status, body = await api.post("/__fake__/faults", json=rule)
    assert (status, body["rules"][0]["after"]) == (200, True)
    assert FaultRule.from_dict(rule).after is True
    _, charger = await api.post(
        f"/__fake__/charger/{SN}",
        json={"plugged_in": True, "charging": True, "live_level": True, "settle_s": 30},
    )
    assert (charger["live_level"], charger["settle_s"], charger["connected"]) == (True, 30, True)
    assert (await call(api, "PUT", f"{PLURAL}/stop_charging"))[0] == 500
    _, state = await api.get("/__fake__/state")
    assert state["chargers"][0]["charging"] is False
    assert state["chargers"][0]["stopped_at"] == cloud.now()


# --- 2026 (the default profile): envelopes, IQ 40, SCHEDULED flip, slot calls ---------------

SLOT = SCHEDULES.removesuffix("s")  # .../schedule, the single-slot route
START_2026 = f"{PLURAL}/start_charging"
STOP_2026 = f"{PLURAL}/stop_charging"


def envelope_of(body: Any) -> tuple[Any, Any]:
    """The reply without its moment: (data, error)."""
    assert set(body) == {"meta", "data", "error"}
    assert isinstance(body["meta"]["serverTimeStamp"], int | str)
    return body["data"], body["error"]


def test_the_2024_preset_names_every_changed_field() -> None:
    legacy, today = Profile.preset("2024"), Profile()
    for name, value in LEGACY_2024.items():
        assert getattr(legacy, name) == value
        assert getattr(today, name) != value, name


# --- control -------------------------------------------------------------------------------------


async def test_refusals_in_the_2026_envelope_with_the_reference_texts(
    api: Client, cloud: FakeCloud
) -> None:
    status, body = await call(api, "POST", START_2026, {"chargingLevel": 16, "connectorId": 1})
    assert status == 400
    expected = load_fixture("control_error_2026")
    assert envelope_of(body) == (expected["data"], expected["error"])

    cloud.update_charger(plugged_in=True, charging=True)
    status, body = await call(api, "POST", START_2026, {"connectorId": 1})
    assert status == 400
    expected = load_fixture("control_error_2026_already_charging")
    assert envelope_of(body) == (expected["data"], expected["error"])

    cloud.update_charger(charging=False)
    status, body = await call(api, "PUT", STOP_2026)
    assert status == 409
    assert envelope_of(body) == (
        None,
        {"displayMessage": "No active charging session", "code": "409"},
    )


async def test_iq40_backend_refuses_a_level_only(api: Client, cloud: FakeCloud) -> None:
    cloud.update_charger(plugged_in=True, iq40_backend=True)
    status, body = await call(api, "POST", START_2026, {"chargingLevel": 16, "connectorId": 1})
    assert status == 500
    expected = load_fixture("control_error_2026_iq40_invalid_level")
    assert envelope_of(body) == (expected["data"], expected["error"])
    assert not cloud.charger().charging
    assert cloud.violations() == []  # 16 A is a good level: refused for carrying one at all
    status, _ = await call(api, "POST", START_2026, {"connectorId": 1})
    assert status == 200
    assert cloud.charger().charging


@pytest.mark.parametrize("flip", [True, False])
async def test_a_manual_command_flips_scheduled(api: Client, cloud: FakeCloud, flip: bool) -> None:
    cloud.set_profile(scheduled_flip=flip)
    cloud.update_charger(plugged_in=True, scheduler_mode="SCHEDULED_CHARGING")
    assert (await call(api, "POST", START_2026, {"connectorId": 1}))[0] == 200
    after = "MANUAL_CHARGING" if flip else "SCHEDULED_CHARGING"
    assert cloud.charger().scheduler_mode == after


# --- schedules -------------------------------------------------------------------------------


async def read(api: Client) -> dict[str, Any]:
    status, body = await api.get(SCHEDULES)
    assert status == 200
    return dict(body)


def test_tokens_round_trip_to_the_millisecond() -> None:
    ms = 1_736_906_400_001
    text = format_ms(ms)
    assert text == "2025-01-15T02:00:00.001+00:00"
    assert parse_token(text) == ms
    assert parse_token("yesterday") is None
    assert parse_token("2025-01-15T02:00:00") is None  # no offset: not the scheduler's


async def test_full_list_patch_needs_the_current_token(api: Client, cloud: FakeCloud) -> None:
    body = await read(api)
    slots = body["data"]["slots"]
    assert (await call(api, "PATCH", SCHEDULES, {"data": slots}))[0] == 400  # no token
    stale = {"meta": body["meta"], "data": slots}
    assert (await call(api, "PATCH", SCHEDULES, stale))[0] == 200
    status, reply = await call(api, "PATCH", SCHEDULES, stale)  # the same token again
    assert status == 409
    assert "read them again" in reply["message"]
    future = {"meta": {"serverTimeStamp": "2030-01-01T00:00:00.000+00:00"}, "data": slots}
    assert (await call(api, "PATCH", SCHEDULES, future))[0] == 409
    fresh = await read(api)
    assert fresh["meta"]["serverTimeStamp"] > body["meta"]["serverTimeStamp"]
    assert (await call(api, "PATCH", SCHEDULES, {"meta": fresh["meta"], "data": slots}))[0] == 200


async def test_state_only_patch(api: Client, cloud: FakeCloud) -> None:
    custom = (await read(api))["data"]["slots"][0]
    status, body = await call(api, "PATCH", SCHEDULES, {custom["id"]: "DISABLED"})
    assert status == 200
    assert envelope_of(body) == (None, {})
    assert cloud.charger().schedule_slots[0]["enabled"] is False
    assert (await call(api, "PATCH", SCHEDULES, {"nope": "ENABLED"}))[0] == 400
    cloud.set_profile(schedule_slot_routes=False)
    assert (await call(api, "PATCH", SCHEDULES, {custom["id"]: "ENABLED"}))[0] == 400


async def test_single_slot_create_update_delete(api: Client, cloud: FakeCloud) -> None:
    custom = (await read(api))["data"]["slots"][0]
    new = {k: v for k, v in custom.items() if k != "id"} | {"startTime": "01:00"}
    status, body = await call(api, "POST", SLOT, new)
    assert status == 200
    created, error = envelope_of(body)
    assert error == {}
    assert created.startswith(f"{SITE}:{SN}:")
    assert [s["id"] for s in cloud.charger().schedule_slots][-1] == created

    one = f"{SLOT}/{created}"
    changed = {**new, "id": created, "chargingLevel": 16}
    assert (await call(api, "PATCH", one, changed))[0] == 200
    assert cloud.charger().schedule_slots[-1]["chargingLevel"] == 16
    assert (await call(api, "PATCH", one, {**changed, "id": custom["id"]}))[0] == 400
    assert (await call(api, "PATCH", one, {**changed, "days": [9]}))[0] == 400

    assert (await call(api, "DELETE", one))[0] == 200
    assert created not in [s["id"] for s in cloud.charger().schedule_slots]
    assert (await call(api, "DELETE", one))[0] == 404
    off_peak = cloud.charger().schedule_slots[1]["id"]
    assert (await call(api, "DELETE", f"{SLOT}/{off_peak}"))[0] == 400
    assert len(cloud.charger().schedule_slots) == 2


async def test_without_single_slot_routes_they_are_404(api: Client, cloud: FakeCloud) -> None:
    cloud.set_profile(schedule_slot_routes=False)
    custom = cloud.charger().schedule_slots[0]
    assert (await call(api, "POST", SLOT, custom))[0] == 404
    assert (await call(api, "PATCH", f"{SLOT}/{custom['id']}", custom))[0] == 404
    assert (await call(api, "DELETE", f"{SLOT}/{custom['id']}"))[0] == 404


async def test_sync_status_is_pending_after_a_write(api: Client, cloud: FakeCloud) -> None:
    assert (await read(api))["data"]["config"]["scheduleSyncStatus"] == "synced"
    custom = cloud.charger().schedule_slots[0]
    await call(api, "PATCH", SCHEDULES, {custom["id"]: "DISABLED"})
    assert (await read(api))["data"]["config"]["scheduleSyncStatus"] == "pending"
    cloud.advance(SYNC_S)
    assert (await read(api))["data"]["config"]["scheduleSyncStatus"] == "synced"
