"""The fake Enlighten cloud behaves like the spec, with plain aiohttp requests against it."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from yarl import URL

from optimizer.enlighten.headers import BROWSER_USER_AGENT
from optimizer.fakecloud import (
    Charger,
    FakeClock,
    FakeCloud,
    FakeCloudServer,
    FaultRule,
    run_in_thread,
)
from optimizer.fakecloud.auth import decode_jwt
from optimizer.fakecloud.profile import LEGACY_2024

SITE = 1234567
SN = "EV9876543210"
EMAIL = "owner@example.com"
PASSWORD = "correct-horse-battery"
EVSE = f"/service/evse_controller/{SITE}"
SCHED = "/service/evse_scheduler/api/v1/iqevc/charging-mode"
HISTORY = f"/service/enho_historical_events_ms/{SITE}/sessions/{SN}/history"

# The 2026 cloud (and the fake by default) answers 406 to a non-browser User-Agent.
BROWSER = {"User-Agent": BROWSER_USER_AGENT}


class Client:
    """A bare aiohttp session bound to the fake, with the login the real client would do."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base = base_url
        self.session = session
        self.headers: dict[str, str] = {}

    def url(self, path: str) -> str:
        return self.base + path

    async def login(self, email: str = EMAIL, password: str = PASSWORD) -> dict[str, Any]:
        async with self.session.post(
            self.url("/login/login.json"),
            data={"user[email]": email, "user[password]": password},
        ) as resp:
            body: dict[str, Any] = await resp.json()
        if "session_id" in body:
            self.authenticate(body)
        return body

    def authenticate(self, body: dict[str, Any]) -> None:
        self.headers = {
            "e-auth-token": body["session_id"],
            "Authorization": f"Bearer {body['manager_token']}",
        }

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        headers = kw.pop("headers", self.headers)
        async with self.session.get(self.url(path), headers=headers, **kw) as resp:
            return resp.status, await _body(resp)

    async def post(self, path: str, **kw: Any) -> tuple[int, Any]:
        headers = kw.pop("headers", self.headers)
        async with self.session.post(self.url(path), headers=headers, **kw) as resp:
            return resp.status, await _body(resp)

    def cookie(self, name: str) -> str | None:
        for cookie in self.session.cookie_jar:
            if cookie.key == name:
                return cookie.value
        return None


async def _body(resp: aiohttp.ClientResponse) -> Any:
    text = await resp.text()
    if resp.content_type == "application/json":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud()


@pytest.fixture
async def client(cloud: FakeCloud) -> AsyncIterator[Client]:
    async with (
        FakeCloudServer(cloud) as server,
        aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers=BROWSER
        ) as session,
    ):
        yield Client(server.base_url, session)


@pytest.fixture
async def authed(client: Client) -> Client:
    await client.login()
    return client


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def validate_otp(client: Client, code: str, *, csrf: str | None = "cookie") -> Any:
    headers = {}
    if csrf == "cookie":
        headers["X-CSRF-Token"] = client.cookie("XSRF-TOKEN") or ""
    elif csrf is not None:
        headers["X-CSRF-Token"] = csrf
    return await client.post(
        "/app-api/validate_login_otp",
        headers=headers,
        data={"email": b64(EMAIL), "otp": b64(code), "xhrFields[withCredentials]": "true"},
    )


# --- login ---------------------------------------------------------------------------------


async def test_login_without_mfa_returns_session_token_and_cookies(
    client: Client, cloud: FakeCloud
) -> None:
    async with client.session.post(
        client.url("/login/login.json"),
        data={"user[email]": EMAIL, "user[password]": PASSWORD},
    ) as resp:
        body = await resp.json()
        cookies = {name: morsel.value for name, morsel in resp.cookies.items()}
    assert resp.status == 200
    assert body["message"] == "success"
    assert body["is_consumer"] is True
    assert body["system_id"] == str(SITE)
    assert body["redirect_url"] == ""
    assert cookies["_enlighten_4_session"] == body["session_id"]
    assert cookies["XSRF-TOKEN"]
    assert cookies["BP-XSRF-Token"]
    claims = decode_jwt(body["manager_token"])
    assert claims is not None
    assert claims["session_id"] == body["session_id"]
    assert claims["exp"] == int(cloud.clock.timestamp()) + 3600


async def test_date_header_is_the_fake_clock(client: Client, cloud: FakeCloud) -> None:
    """Clients read ``exp`` claims against the server's Date, so both use the fake clock."""
    async with client.session.get(client.url("/__fake__/clock")) as resp:
        assert parsedate_to_datetime(resp.headers["Date"]) == cloud.clock.now()


@pytest.mark.parametrize(
    ("email", "password"), [(EMAIL, "wrong"), ("someone@example.com", PASSWORD)]
)
async def test_login_with_wrong_credentials(client: Client, email: str, password: str) -> None:
    assert await client.login(email, password) == {"success": False, "isBlocked": False}


async def test_login_failure_can_be_a_401(client: Client, cloud: FakeCloud) -> None:
    cloud.set_profile(login_failure_status=401)
    status, body = await client.post(
        "/login/login.json", data={"user[email]": EMAIL, "user[password]": "nope"}
    )
    assert (status, body) == (401, {"success": False, "isBlocked": False})


async def test_blocked_account(client: Client, cloud: FakeCloud) -> None:
    cloud.set_account(blocked=True)
    assert await client.login() == {"success": False, "isBlocked": True}


# --- MFA -----------------------------------------------------------------------------------


async def test_mfa_login_then_right_otp(client: Client, cloud: FakeCloud) -> None:
    cloud.set_account(mfa=True)
    body = await client.login()
    assert body == {"success": True, "isBlocked": False}
    pre_session = client.cookie("_enlighten_4_session")
    assert pre_session
    assert client.cookie("login_otp_nonce")
    assert client.cookie("XSRF-TOKEN")
    assert client.cookie("email") == "owner%40example.com"
    # The pre-MFA session opens nothing.
    status, _ = await client.get(
        f"{EVSE}/ev_chargers/status", headers={"e-auth-token": pre_session}
    )
    assert status == 401

    status, body = await validate_otp(client, "123456")
    assert status == 200
    assert body["message"] == "success"
    assert body["isValidMobileNumber"] is True
    assert client.cookie("_enlighten_4_session") == body["session_id"] != pre_session
    client.authenticate(body)
    status, _ = await client.get(f"{EVSE}/ev_chargers/status")
    assert status == 200


async def test_mfa_reply_variant_says_requires_mfa(client: Client, cloud: FakeCloud) -> None:
    cloud.set_account(mfa=True)
    cloud.set_profile(mfa_reply="requires_mfa")
    assert await client.login() == {"success": True, "isBlocked": False, "requires_mfa": True}


@pytest.mark.parametrize("csrf", [None, "forged"])
async def test_otp_without_matching_csrf_header_is_forbidden(
    client: Client, cloud: FakeCloud, csrf: str | None
) -> None:
    cloud.set_account(mfa=True)
    await client.login()
    status, _ = await validate_otp(client, "123456", csrf=csrf)
    assert status == 403


async def test_otp_without_pre_mfa_cookies_is_forbidden(client: Client) -> None:
    status, _ = await validate_otp(client, "123456", csrf="anything")
    assert status == 403


async def test_wrong_otp_then_blocked_after_five(client: Client, cloud: FakeCloud) -> None:
    cloud.set_account(mfa=True)
    await client.login()
    replies = [(await validate_otp(client, "000000"))[1] for _ in range(5)]
    assert replies[:4] == [{"isValid": False, "isBlocked": False}] * 4
    assert replies[4] == {"isValid": False, "isBlocked": True}
    assert (await validate_otp(client, "123456"))[1] == {"isValid": False, "isBlocked": True}


async def test_otp_resend_rotates_nonce_and_is_throttled(client: Client, cloud: FakeCloud) -> None:
    cloud.set_account(mfa=True)
    await client.login()
    first_nonce = client.cookie("login_otp_nonce")
    status, body = await client.post("/app-api/generate_mfa_login_otp", data={"locale": "en"})
    assert (status, body) == (200, {"success": True, "isBlocked": False})
    assert client.cookie("login_otp_nonce") != first_nonce
    status, _ = await client.post("/app-api/generate_mfa_login_otp", data={"locale": "en"})
    assert status == 429
    cloud.advance(31)
    status, _ = await client.post("/app-api/generate_mfa_login_otp", data={"locale": "en"})
    assert status == 200
    status, body = await validate_otp(client, "123456")
    assert status == 200
    assert "session_id" in body


async def test_stale_nonce_is_refused(client: Client, cloud: FakeCloud) -> None:
    cloud.set_account(mfa=True)
    await client.login()
    stale = client.cookie("login_otp_nonce")
    await client.post("/app-api/generate_mfa_login_otp", data={"locale": "en"})
    jar = client.session.cookie_jar
    jar.clear(lambda morsel: morsel.key == "login_otp_nonce")
    jar.update_cookies({"login_otp_nonce": stale or ""}, response_url=URL(client.base))
    status, _ = await validate_otp(client, "123456")
    assert status == 403


# --- auth on data endpoints ----------------------------------------------------------------


async def test_endpoints_need_a_session(client: Client) -> None:
    status, body = await client.get(f"{EVSE}/ev_chargers/status")
    assert (status, body) == (401, {"message": "Not Authorized"})


async def test_session_cookie_is_enough(authed: Client) -> None:
    status, _ = await authed.get(f"{EVSE}/ev_chargers/status", headers={})
    assert status == 200


async def test_scheduler_needs_the_bearer_token(authed: Client, cloud: FakeCloud) -> None:
    path = f"{SCHED}/{SITE}/{SN}/preference"
    no_bearer = {"e-auth-token": authed.headers["e-auth-token"]}
    assert (await authed.get(path, headers=no_bearer))[0] == 401
    assert (await authed.get(path))[0] == 200
    cloud.advance(3601)  # the manager token lives an hour
    assert (await authed.get(path))[0] == 401
    assert (await authed.get(f"{EVSE}/ev_chargers/status"))[0] == 200


async def test_expired_sessions_get_401_or_the_login_wall(authed: Client, cloud: FakeCloud) -> None:
    assert cloud.expire_sessions() == 1
    status, body = await authed.get(f"{EVSE}/ev_chargers/status")
    assert (status, body) == (401, {"message": "Not Authorized"})
    cloud.set_profile(login_wall=True)
    async with authed.session.get(
        authed.url(f"{EVSE}/ev_chargers/status"), headers=authed.headers
    ) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert "Sign in" in await resp.text()


# --- discovery -----------------------------------------------------------------------------


async def test_discovery_shapes_and_fallback_switch(authed: Client, cloud: FakeCloud) -> None:
    # The three old paths were dropped early 2026: only the 2024 preset still has them.
    for path in ("/service/evse_controller/sites", "/api/v1/sites", "/sites.json"):
        assert (await authed.get(path))[0] == 404
    cloud.set_profile(**LEGACY_2024)
    assert (await authed.get("/service/evse_controller/sites"))[1] == {
        "data": [{"site_id": SITE, "name": "Example Home"}]
    }
    assert (await authed.get("/api/v1/sites"))[1] == {
        "sites": [{"siteId": SITE, "siteName": "Example Home"}]
    }
    assert (await authed.get("/sites.json"))[1] == [
        {"system_id": SITE, "system_name": "Example Home"}
    ]
    cloud.set_profile(disabled_discovery=["evse_controller", "api_v1"])
    assert (await authed.get("/service/evse_controller/sites"))[0] == 404
    assert (await authed.get("/api/v1/sites"))[0] == 404
    assert (await authed.get("/sites.json"))[0] == 200


# --- status --------------------------------------------------------------------------------


async def test_status_nested_shape_while_charging(authed: Client, cloud: FakeCloud) -> None:
    cloud.update_charger(plugged_in=True, charging=True, level=32, dlb_active=True)
    started = cloud.clock.timestamp()
    cloud.advance(3600)
    status, body = await authed.get(f"{EVSE}/ev_chargers/status")
    assert status == 200
    assert body["meta"]["serverTimeStamp"] == int((started + 3600) * 1000)
    assert body["data"]["site"] == str(SITE)
    assert body["data"]["tz"] == "Australia/Melbourne"
    charger = body["data"]["chargers"][0]
    assert charger["sn"] == SN
    assert charger["charging"] is True
    assert charger["pluggedIn"] is True
    assert charger["mode"] == 0
    session = charger["session_d"]
    assert session["e_c"] == pytest.approx(32 * 230)  # Wh: one hour at 32 A, 230 V
    assert session["strt_chrg"] == int(started * 1000)
    assert session["charge_level"] is None  # 2026: null in every capture
    assert session["plg_out_at"] is None
    assert charger["lst_rpt_at"].endswith(".000Z[UTC]")
    assert session["plg_in_at"].endswith("Z[UTC]")
    connector = charger["connectors"][0]
    assert connector["connectorStatusType"] == "CHARGING"
    assert connector["dlbActive"] is True
    assert connector["safeLimitState"] == 0
    # The singular path was retired early 2026; where it still answers, it answers the same.
    assert (await authed.get(f"{EVSE}/ev_charger/status"))[0] == 404
    cloud.set_profile(singular_status=True)
    assert (await authed.get(f"{EVSE}/ev_charger/status"))[1] == body


async def test_small_session_energy_is_in_wh_from_the_first_watt_hour(
    authed: Client, cloud: FakeCloud
) -> None:
    cloud.update_charger(plugged_in=True, charging=True, level=6)
    cloud.advance(300)  # one report later: 6 A * 230 V for 5 minutes is 115 Wh
    _, body = await authed.get(f"{EVSE}/ev_chargers/status")
    assert body["data"]["chargers"][0]["session_d"]["e_c"] == pytest.approx(115.0)


async def test_2024_small_session_energy_is_in_kwh(authed: Client, cloud: FakeCloud) -> None:
    cloud.set_profile(**LEGACY_2024)
    cloud.update_charger(plugged_in=True, charging=True, level=6)
    cloud.advance(300)
    _, body = await authed.get(f"{EVSE}/ev_chargers/status")
    session = body["data"]["chargers"][0]["session_d"]
    assert session["e_c"] == pytest.approx(0.115, abs=1e-3)
    assert session["charge_level"] == 6


async def test_status_energy_is_as_of_the_last_report(authed: Client, cloud: FakeCloud) -> None:
    """Between reports the figures stand still, so e_c never outruns lst_rpt_at."""
    cloud.update_charger(plugged_in=True, charging=True, level=32)
    started = cloud.clock.timestamp()
    cloud.advance(420)
    _, body = await authed.get(f"{EVSE}/ev_chargers/status")
    charger = body["data"]["chargers"][0]
    reported = datetime.fromisoformat(charger["lst_rpt_at"].removesuffix("[UTC]"))
    assert reported.timestamp() == pytest.approx(started + 300)
    assert charger["session_d"]["e_c"] == pytest.approx(32 * 230 * 300 / 3600, abs=0.01)


@pytest.mark.parametrize(
    ("glitch", "wrapped", "flat"),
    [
        ("unit_flip", 3.68, 3680.0),
        ("spike", 253680.0, 253.68),
        ("decrease", 1840.0, 1.84),
        ("garbage", "NaN", "NaN"),
    ],
)
async def test_one_status_reply_carries_an_injected_e_c_glitch(
    authed: Client, cloud: FakeCloud, glitch: str, wrapped: Any, flat: Any
) -> None:
    cloud.update_charger(plugged_in=True, charging=True, level=16)
    cloud.advance(3600)
    for shape, bad in (("nested", wrapped), ("legacy", flat)):
        cloud.set_profile(status_shape=shape)
        cloud.update_charger(e_c_glitches=glitch)
        _, first = await authed.get(f"{EVSE}/ev_chargers/status")
        _, second = await authed.get(f"{EVSE}/ev_chargers/status")
        rows = "evChargerData" if shape == "legacy" else None
        values = [
            (body[rows][0] if rows else body["data"]["chargers"][0])["session_d"]["e_c"]
            for body in (first, second)
        ]
        assert values[0] == (bad if isinstance(bad, str) else pytest.approx(bad)), shape
        assert values[1] == pytest.approx(3680.0 if rows is None else 3.68), shape


async def test_session_figures_survive_unplugging(authed: Client, cloud: FakeCloud) -> None:
    cloud.update_charger(plugged_in=True, charging=True)
    cloud.advance(1800)
    cloud.update_charger(plugged_in=False)
    _, body = await authed.get(f"{EVSE}/ev_chargers/status")
    charger = body["data"]["chargers"][0]
    assert charger["pluggedIn"] is False
    assert charger["connectors"][0]["connectorStatusType"] == "AVAILABLE"
    assert charger["session_d"]["e_c"] == pytest.approx(3680)
    assert charger["session_d"]["plg_out_at"] is not None


async def test_green_mode_suspends_without_solar(authed: Client, cloud: FakeCloud) -> None:
    cloud.update_charger(scheduler_mode="GREEN_CHARGING", plugged_in=True, charging=True)
    _, body = await authed.get(f"{EVSE}/ev_chargers/status")
    day = body["data"]["chargers"][0]
    assert day["mode"] == 1
    assert day["connectors"][0]["connectorStatusType"] == "CHARGING"
    cloud.advance(10 * 3600)  # 23:00 in Melbourne
    _, body = await authed.get(f"{EVSE}/ev_chargers/status")
    night = body["data"]["chargers"][0]
    assert night["charging"] is False
    connector = night["connectors"][0]
    assert connector["connectorStatusType"] == "SUSPENDED_EVSE"
    assert connector["connectorStatusReason"] == "INSUFFICIENT_SOLAR"


async def test_status_legacy_and_singular_only_profiles(authed: Client, cloud: FakeCloud) -> None:
    cloud.update_charger(plugged_in=True, charging=True)
    cloud.set_profile(status_shape="legacy")
    _, body = await authed.get(f"{EVSE}/ev_chargers/status")
    (row,) = body["evChargerData"]
    assert set(row) == {
        "sn",
        "name",
        "connected",
        "pluggedIn",
        "charging",
        "faulted",
        "connectorStatusType",
        "session_d",
    }
    assert row["session_d"]["start_time"] == int(cloud.clock.timestamp())
    cloud.set_profile(status_shape="singular_only")
    assert (await authed.get(f"{EVSE}/ev_chargers/status"))[0] == 404
    status, body = await authed.get(f"{EVSE}/ev_charger/status")
    assert status == 200
    assert "chargers" in body["data"]


async def test_unknown_site_is_468(authed: Client) -> None:
    status, body = await authed.get("/service/evse_controller/999/ev_chargers/status")
    assert (status, body) == (468, {"status": "error", "message": "INVALID_SYSTEM_ID"})


# --- summary, live stream ------------------------------------------------------------------


async def test_summary_list_and_one(authed: Client) -> None:
    base = f"/service/evse_controller/api/v2/{SITE}/ev_chargers"
    status, body = await authed.get(f"{base}/summary", params={"filter_retired": "true"})
    assert status == 200
    assert [c["serialNumber"] for c in body["data"]] == [SN]
    status, body = await authed.get(f"{base}/{SN}/summary")
    data = body["data"]
    assert data["chargeLevelDetails"] == {
        "min": "6",
        "max": "32",
        "granularity": "1",
        "defaultChargeLevel": "disabled",
    }
    assert data["operatingVoltage"] == "230"
    assert data["supportsUseBattery"] is True
    assert data["maxCurrent"] == 32
    assert isinstance(data["networkConfig"], str)
    assert "ipaddr=" in data["networkConfig"]
    status, body = await authed.get(f"{base}/EV000/summary")
    assert status == 404
    assert body["status"] == "error"


async def test_live_stream_shapes(authed: Client, cloud: FakeCloud) -> None:
    # 2026 (the default): the web app's envelope; the stop answers data null, no status.
    _status, body = await authed.get(f"{EVSE}/ev_chargers/start_live_stream")
    assert body == {
        "meta": {"serverTimeStamp": body["meta"]["serverTimeStamp"]},
        "data": {
            "liveStreamTopicList": [f"v1/evse/prod/live-stream/{SN}"],
            "liveStreamDuration": 900,
        },
        "error": {},
    }
    assert isinstance(body["meta"]["serverTimeStamp"], int)
    _, stopped = await authed.get(f"{EVSE}/ev_chargers/stop_live_stream")
    assert stopped == {"meta": body["meta"], "data": None, "error": {}}
    cloud.set_profile(live_stream_shape="standard")
    _status, body = await authed.get(f"{EVSE}/ev_chargers/start_live_stream")
    assert body == {"status": "accepted", "topics": [f"evse/{SN}/status"], "duration_s": 900}
    cloud.set_profile(live_stream_shape="data")
    _, body = await authed.get(f"{EVSE}/ev_chargers/start_live_stream")
    assert body == {
        "data": {
            "liveStreamTopicList": [f"v1/evse/prod/live-stream/{SN}"],
            "liveStreamDuration": 900,
        }
    }
    assert (await authed.get(f"{EVSE}/ev_chargers/stop_live_stream"))[1] == {"status": "accepted"}


# --- session history -----------------------------------------------------------------------


async def test_session_history_pages(authed: Client, cloud: FakeCloud) -> None:
    cloud.set_profile(**LEGACY_2024)  # the first reference's flat body
    window = {"startDate": "18-12-2024", "endDate": "15-01-2025"}
    pages: list[dict[str, Any]] = []
    offset = 0
    while True:
        status, body = await authed.post(HISTORY, json={**window, "offset": offset, "limit": 5})
        assert status == 200
        assert body["source"] == "evse"
        pages.append(body["data"])
        if not body["data"]["hasMore"]:
            break
        offset += 5
    results = [r for page in pages for r in page["result"]]
    assert len(results) > 10
    assert all(len(page["result"]) == 5 for page in pages[:-1])
    assert pages[0]["startDate"] == "18-12-2024"
    assert pages[0]["limit"] == 5
    starts = [r["startTime"] for r in results]
    assert starts == sorted(starts, reverse=True)
    assert len({r["sessionId"] for r in results}) == len(results)
    first = results[0]
    assert first["id"] == f"9876543210:{first['sessionId']}"
    assert first["aggEnergyValue"] > 0
    assert first["activeChargeTime"] > 0


async def test_session_history_filters_by_local_date(authed: Client, cloud: FakeCloud) -> None:
    cloud.set_profile(**LEGACY_2024)
    _, body = await authed.post(
        HISTORY, json={"startDate": "10-01-2025", "endDate": "10-01-2025", "limit": 20}
    )
    for item in body["data"]["result"]:
        start = datetime.fromisoformat(item["startTime"].removesuffix("[UTC]"))
        local = start.astimezone(ZoneInfo("Australia/Melbourne"))
        assert local.date().isoformat() == "2025-01-10"
    status, _ = await authed.post(HISTORY, json={"startDate": "2025-01-10"})
    assert status == 400


async def test_finished_live_session_joins_history(authed: Client, cloud: FakeCloud) -> None:
    cloud.set_profile(**LEGACY_2024)
    cloud.update_charger(plugged_in=True, charging=True)
    cloud.advance(7200)
    cloud.update_charger(plugged_in=False)
    _, body = await authed.post(HISTORY, json={"offset": 0, "limit": 1})
    latest = body["data"]["result"][0]
    assert latest["sessionId"] == int(cloud.clock.timestamp()) - 7200
    assert latest["aggEnergyValue"] == pytest.approx(14.72)


# --- energy --------------------------------------------------------------------------------


async def test_lifetime_energy_shape_and_clock(authed: Client, cloud: FakeCloud) -> None:
    _, body = await authed.get(f"/pv/systems/{SITE}/lifetime_energy")
    assert body["system_id"] == SITE
    assert body["start_date"] == "2024-12-18"
    assert body["update_pending"] is False
    count = len(body["production"])
    assert body["last_report_date"] == int(cloud.clock.timestamp())  # 02:00Z: bucket boundary
    for name in ("consumption", "solar_home", "solar_grid", "grid_home", "evse", "charge"):
        assert len(body[name]) == count
    assert body["charge"][0] is None
    assert body["heatpump"] == []
    assert body["water_heater"] == []
    i = count - 1
    assert body["solar_home"][i] + body["solar_grid"][i] == body["production"][i]
    assert body["solar_home"][i] + body["grid_home"][i] == body["consumption"][i]
    assert body["production"][i] > 0  # early afternoon in summer

    cloud.update_charger(plugged_in=True, charging=True)
    cloud.advance(3600)
    _, later = await authed.get(f"/pv/systems/{SITE}/lifetime_energy")
    assert len(later["production"]) == count + 4
    assert later["last_report_date"] == body["last_report_date"] + 3600
    assert later["evse"][-4:] == [1840, 1840, 1840, 1840]  # 7.36 kW for 15 minutes


async def test_missing_buckets_are_null(authed: Client, cloud: FakeCloud) -> None:
    start = cloud.clock.now() - timedelta(hours=2)
    assert cloud.mark_missing(start, start + timedelta(minutes=30)) == 2
    _, body = await authed.get(f"/pv/systems/{SITE}/lifetime_energy")
    assert body["production"][-8:-6] == [None, None]
    assert body["evse"][-8:-6] == [None, None]
    assert body["production"][-6] is not None


async def test_optional_site_sources(authed: Client) -> None:
    _, body = await authed.get(f"/app-api/{SITE}/get_latest_power")
    power = body["latest_power"]
    assert power["units"] == "W"
    assert power["value"] > 1000
    _, body = await authed.get(f"/pv/systems/{SITE}/today")
    assert len(body["evse"]) == 96
    assert len(body["production"]) == 96
    assert body["production"][-1] is None  # the evening has not happened yet
    _, body = await authed.get(f"/pv/settings/{SITE}/battery_status.json")
    assert body["current_charge"] == "48%"
    assert body["max_capacity"] == pytest.approx(10.08)


# --- scheduler reads -----------------------------------------------------------------------


async def test_scheduler_reads(authed: Client, cloud: FakeCloud) -> None:
    _, body = await authed.get(f"{SCHED}/{SITE}/{SN}/preference")
    assert body["data"]["modes"]["manualCharging"] == {
        "enabled": True,
        "chargingMode": "MANUAL_CHARGING",
        "isDisabledByStorm": False,
    }
    assert body["data"]["modes"]["greenCharging"]["enabled"] is False
    cloud.update_charger(scheduler_mode="GREEN_CHARGING", green_use_battery=False)
    _, body = await authed.get(f"{SCHED}/{SITE}/{SN}/preference")
    assert body["data"]["modes"]["greenCharging"]["enabled"] is True
    _, body = await authed.get(f"{SCHED}/GREEN_CHARGING/{SITE}/{SN}/settings")
    assert body["data"] == [
        {"chargerSettingName": "USE_BATTERY_FOR_SELF_CONSUMPTION", "enabled": False, "value": None}
    ]
    assert body["meta"]["rowCount"] == 1
    _, body = await authed.get(f"{SCHED}/SCHEDULED_CHARGING/{SITE}/{SN}/schedules")
    slots = body["data"]["slots"]
    assert [s["scheduleType"] for s in slots] == ["CUSTOM", "OFF_PEAK"]
    assert slots[0]["id"].startswith(f"{SITE}:{SN}:")
    assert slots[1]["startTime"] is None
    assert body["data"]["config"]["scheduleSyncStatus"] == "synced"
    assert (await authed.get(f"{SCHED}/{SITE}/EV000/preference"))[0] == 404


# --- faults --------------------------------------------------------------------------------


async def test_faults_are_consumed_in_order(authed: Client, cloud: FakeCloud) -> None:
    path = f"{EVSE}/ev_chargers/status"
    cloud.add_fault("status", path="/ev_chargers/status", status=503)
    cloud.add_fault("status", path="/ev_chargers/status", status=429, retry_after=7)
    statuses = []
    for _ in range(3):
        async with authed.session.get(authed.url(path), headers=authed.headers) as resp:
            statuses.append((resp.status, resp.headers.get("Retry-After")))
    assert statuses == [(503, None), (429, "7"), (200, None)]
    assert cloud.faults.rules == []


async def test_status_fault_bodies_and_http_date_retry_after(
    authed: Client, cloud: FakeCloud
) -> None:
    when = datetime(2025, 1, 15, 2, 1, tzinfo=UTC)
    cloud.add_fault("status", path="/lifetime_energy", status=429, retry_after=when)
    cloud.add_fault("status", path="/lifetime_energy", status=468)
    cloud.add_fault(
        "status", path="/lifetime_energy", status=400, body={"error": {"code": "iqevc_ms-10008"}}
    )
    path = authed.url(f"/pv/systems/{SITE}/lifetime_energy")
    async with authed.session.get(path, headers=authed.headers) as resp:
        assert parsedate_to_datetime(resp.headers["Retry-After"]) == when
    async with authed.session.get(path, headers=authed.headers) as resp:
        assert resp.status == 468
        assert await resp.json() == {
            "status": "error",
            "message": "INVALID_SYSTEM_ID",
            "code": "INVALID_SYSTEM_ID",
        }
    async with authed.session.get(path, headers=authed.headers) as resp:
        assert (resp.status, await resp.json()) == (400, {"error": {"code": "iqevc_ms-10008"}})


async def test_fault_matching_by_method_regex_skip_and_forever(
    authed: Client, cloud: FakeCloud
) -> None:
    cloud.set_profile(**LEGACY_2024)  # an empty flat body is a whole history there
    cloud.add_fault("status", method="POST", path_regex=r"/sessions/EV\d+/history$", status=502)
    cloud.add_fault("status", path="/today", status=500, skip=1, times=0)
    assert (await authed.get(f"/pv/systems/{SITE}/today"))[0] == 200
    for _ in range(3):
        assert (await authed.get(f"/pv/systems/{SITE}/today"))[0] == 500
    assert (await authed.post(HISTORY, json={}))[0] == 502
    assert (await authed.post(HISTORY, json={}))[0] == 200


async def test_html_and_malformed_json_faults(authed: Client, cloud: FakeCloud) -> None:
    cloud.add_fault("html_login", path="/status")
    cloud.add_fault("malformed_json", path="/status")
    url = authed.url(f"{EVSE}/ev_chargers/status")
    async with authed.session.get(url, headers=authed.headers) as resp:
        assert (resp.status, resp.content_type) == (200, "text/html")
    async with authed.session.get(url, headers=authed.headers) as resp:
        assert resp.content_type == "application/json"
        with pytest.raises(json.JSONDecodeError):
            json.loads(await resp.text())


async def test_timeout_fault_lets_the_client_time_out(authed: Client, cloud: FakeCloud) -> None:
    cloud.add_fault("timeout", path="/status", delay_s=5)
    with pytest.raises(asyncio.TimeoutError):
        await authed.get(f"{EVSE}/ev_chargers/status", timeout=aiohttp.ClientTimeout(total=0.2))
    assert (await authed.get(f"{EVSE}/ev_chargers/status"))[0] == 200


async def test_disconnect_fault(authed: Client, cloud: FakeCloud) -> None:
    cloud.add_fault("disconnect", path="/history")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await authed.post(HISTORY, json={})
    # aiohttp retries an idempotent GET once on a dropped connection: two drops to see one.
    cloud.add_fault("disconnect", path="/status", times=2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await authed.get(f"{EVSE}/ev_chargers/status")
    assert [e.status for e in cloud.requests("/status")] == [None, None]


async def test_expire_session_fault(authed: Client, cloud: FakeCloud) -> None:
    cloud.add_fault("expire_session", path="/status")
    assert (await authed.get(f"{EVSE}/ev_chargers/status"))[0] == 401
    await authed.login()
    assert (await authed.get(f"{EVSE}/ev_chargers/status"))[0] == 200


def test_fault_rule_validation() -> None:
    with pytest.raises(ValueError, match="kind"):
        FaultRule.from_dict({"kind": "explode"})
    with pytest.raises(ValueError, match="status code"):
        FaultRule(kind="status")
    with pytest.raises(ValueError, match="unknown"):
        FaultRule.from_dict({"kind": "timeout", "delay": 3})


# --- request log ---------------------------------------------------------------------------


async def test_request_log(client: Client, cloud: FakeCloud) -> None:
    cloud.set_profile(**LEGACY_2024)
    await client.login()
    cloud.add_fault("status", path="/status", status=503)
    await client.get(f"{EVSE}/ev_chargers/status")
    await client.post(HISTORY, json={"offset": 0, "limit": 2})
    await client.get("/__fake__/state")  # admin calls are not logged
    login, status, history = cloud.requests()
    assert login.form == {"user[email]": EMAIL, "user[password]": PASSWORD}
    assert (login.method, login.status, login.fault) == ("POST", 200, None)
    assert (status.status, status.fault) == (503, "status")
    assert status.header("E-AUTH-TOKEN") == client.headers["e-auth-token"]
    assert history.json == {"offset": 0, "limit": 2}
    assert status.time == cloud.clock.now().isoformat()
    assert cloud.requests(path_contains="/history", method="post") == [history]
    cloud.log.clear()
    assert cloud.requests() == []


# --- admin routes --------------------------------------------------------------------------


async def test_admin_routes(authed: Client, cloud: FakeCloud) -> None:
    post = authed.post
    status, body = await post(
        "/__fake__/faults", json=[{"kind": "status", "path": "/status", "status": 500}]
    )
    assert status == 200
    assert body["rules"][0]["status"] == 500
    assert (await authed.get(f"{EVSE}/ev_chargers/status"))[0] == 500
    await post("/__fake__/faults", json={"kind": "status", "path": "/status", "status": 502})
    async with authed.session.delete(authed.url("/__fake__/faults")) as resp:
        assert resp.status == 200
    assert cloud.faults.rules == []
    assert (await post("/__fake__/faults", json={"kind": "nope"}))[0] == 400

    _, body = await post("/__fake__/clock", json={"advance_s": 600})
    assert body["now"] == "2025-01-15T02:10:00+00:00"
    _, body = await post("/__fake__/clock", json={"set": "2025-01-16T00:00:00+00:00"})
    assert cloud.clock.now() == datetime(2025, 1, 16, tzinfo=UTC)

    _, body = await post(f"/__fake__/charger/{SN}", json={"plugged_in": True, "charging": True})
    assert body["charging"] is True
    assert body["connector_status"] == "CHARGING"
    assert (await post("/__fake__/charger/EV0", json={}))[0] == 404
    assert (await post(f"/__fake__/charger/{SN}", json={"level": 99}))[0] == 400

    _, body = await post("/__fake__/profile", json={"status_shape": "legacy"})
    assert body["status_shape"] == "legacy"
    assert (await post("/__fake__/profile", json={"status_shape": "odd"}))[0] == 400

    _, body = await authed.get("/__fake__/requests", params={"path_contains": "/status"})
    assert [r["status"] for r in body["requests"]] == [500]
    assert body["requests"][0]["headers"]["e-auth-token"] == authed.headers["e-auth-token"]

    _, body = await post("/__fake__/expire_sessions")
    assert body == {"expired": 1}
    assert (await authed.get(f"{EVSE}/ev_chargers/status"))[0] == 401

    _, body = await post("/__fake__/account", json={"mfa": True})
    assert body["mfa"] is True
    assert await authed.login() == {"success": True, "isBlocked": False}


# --- running -------------------------------------------------------------------------------


def test_run_in_thread_serves_and_stops() -> None:
    cloud = FakeCloud()
    with run_in_thread(cloud) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{base_url}/__fake__/clock", timeout=5) as resp:  # noqa: S310
            assert json.load(resp)["now"] == "2025-01-15T02:00:00+00:00"
        cloud.advance(60)  # mutated from this thread while the server runs on its own
        with urllib.request.urlopen(f"{base_url}/__fake__/clock", timeout=5) as resp:  # noqa: S310
            assert json.load(resp)["now"] == "2025-01-15T02:01:00+00:00"
    with pytest.raises(OSError):  # noqa: PT011 (refused connection, any OSError flavour)
        urllib.request.urlopen(f"{base_url}/__fake__/clock", timeout=1)  # noqa: S310


def test_same_seed_same_payloads() -> None:
    def payloads(seed: int) -> tuple[Any, ...]:
        cloud = FakeCloud(seed=seed)
        model = cloud.model
        sessions = [(s.start, s.energy_kwh) for s in model.sessions[SN]]
        buckets = [model.curves.pv_wh(model.energy_start + i * 900) for i in range(0, 2000, 7)]
        return sessions, buckets

    assert payloads(3) == payloads(3)
    assert payloads(3) != payloads(4)


def test_clock_modes() -> None:
    clock = FakeClock()
    assert clock.now() == datetime(2025, 1, 15, 2, tzinfo=UTC)
    clock.advance(90)
    assert clock.now() == datetime(2025, 1, 15, 2, 1, 30, tzinfo=UTC)
    clock.set(datetime(2025, 6, 1))  # naive means UTC
    assert clock.now() == datetime(2025, 6, 1, tzinfo=UTC)
    running = FakeClock(datetime(2025, 1, 1, tzinfo=UTC), realtime=True)
    assert running.now() >= datetime(2025, 1, 1, tzinfo=UTC)


def test_two_chargers_and_energy_limit() -> None:
    cloud = FakeCloud(chargers=[Charger(sn="EV1"), Charger(sn="EV2", max_amps=16)])
    cloud.update_charger("EV2", plugged_in=True, charging=True, level=16, ev_energy_limit_wh=1000)
    cloud.advance(3600)
    ev2 = cloud.charger("EV2")
    assert ev2.session_energy_wh == pytest.approx(1000)
    assert cloud.snapshot()["chargers"][1]["connector_status"] == "SUSPENDED_EV"
    assert cloud.charger("EV1").session_energy_wh == 0


def test_module_entry_point_prints_its_url() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "optimizer.fakecloud", "--port", "0", "--mfa"],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line.startswith("fakecloud listening on http://127.0.0.1:")
            url = line.rsplit(" ", 1)[1]
            with urllib.request.urlopen(f"{url}/__fake__/state", timeout=5) as resp:  # noqa: S310
                assert json.load(resp)["account"]["mfa"] is True
        finally:
            proc.terminate()
        assert proc.wait(timeout=5) == 0
