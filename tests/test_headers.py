"""Browser headers per route family (2026 reference section 0), two reads in flight, typed 406."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aioresponses import aioresponses
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from optimizer.enlighten.errors import EXIT_CLOUD, NotAcceptableError
from optimizer.enlighten.headers import (
    ACCEPT_ANY,
    ACCEPT_JSON,
    BROWSER_USER_AGENT,
    header_profile,
    route_family,
    site_in_path,
)
from optimizer.enlighten.transport import SessionState, Transport
from optimizer.fakecloud import FakeCloud, FakeCloudServer, FaultRule
from optimizer.fakecloud.browser import header_refusal, is_browser
from optimizer.fakecloud.profile import LEGACY_2024
from tests.served import served_client

ROOT = "https://enlighten.enphaseenergy.com"
SITE = 1234567
SN = "EV9876543210"
EVSE = f"/service/evse_controller/{SITE}"
SCHED = "/service/evse_scheduler/api/v1/iqevc/charging-mode"
TODAY = f"{ROOT}/web/{SITE}/today/graph/hours"
YEARS = f"{ROOT}/web/{SITE}/history/graph/years"

# (method, path, family, Accept, Referer): the reference's table, one row per route kind.
TABLE = [
    ("GET", f"{EVSE}/ev_chargers/status", "ev_read", ACCEPT_ANY, TODAY),
    (
        "GET",
        f"/service/evse_controller/api/v2/{SITE}/ev_chargers/summary",
        "ev_read",
        ACCEPT_ANY,
        TODAY,
    ),
    ("GET", f"{EVSE}/ev_chargers/start_live_stream", "ev_read", ACCEPT_ANY, TODAY),
    (
        "GET",
        f"/service/evse_management/api/v1/config/feature-flags?site_id={SITE}",
        "ev_read",
        ACCEPT_ANY,
        TODAY,
    ),
    ("POST", f"{EVSE}/ev_chargers/{SN}/start_charging", "ev_json", ACCEPT_JSON, TODAY),
    ("PUT", f"{EVSE}/ev_chargers/{SN}/stop_charging", "ev_json", ACCEPT_JSON, TODAY),
    ("GET", f"{SCHED}/{SITE}/{SN}/preference", "ev_json", ACCEPT_JSON, TODAY),
    ("PUT", f"{SCHED}/{SITE}/{SN}/preference", "ev_json", ACCEPT_JSON, TODAY),
    (
        "POST",
        f"/service/evse_controller/api/v1/{SITE}/ev_chargers/{SN}/ev_charger_config",
        "ev_json",
        ACCEPT_JSON,
        TODAY,
    ),
    ("GET", f"/app-api/{SITE}/get_latest_power", "app_read", ACCEPT_ANY, YEARS),
    ("GET", f"/pv/settings/{SITE}/battery_status.json", "app_read", ACCEPT_ANY, YEARS),
    ("GET", f"/pv/systems/{SITE}/today", "app_read", ACCEPT_ANY, YEARS),
    ("POST", "/login/login.json", "login", ACCEPT_ANY, ROOT + "/"),
]


@pytest.mark.parametrize(("method", "path", "family", "accept", "referer"), TABLE)
def test_each_route_family_gets_the_web_apps_pair(
    method: str, path: str, family: str, accept: str, referer: str
) -> None:
    profile = header_profile(method, path, site_in_path(path), root=ROOT)
    assert (profile.name, profile.accept, profile.referer) == (family, accept, referer)
    assert profile.xhr


def test_the_today_referer_carries_the_app_version_when_the_cookie_is_there() -> None:
    path = f"{EVSE}/ev_chargers/status"
    profile = header_profile("GET", path, SITE, root=ROOT, app_version="3.4.0")
    assert profile.referer == f"{TODAY}?v=3.4.0"
    # The history page has no version in the web app's own requests.
    assert (
        header_profile("GET", f"/app-api/{SITE}/x", SITE, root=ROOT, app_version="3").referer
        == YEARS
    )


def test_the_form_login_is_not_an_xhr() -> None:
    profile = header_profile("POST", "/login/login", None, root=ROOT)
    assert profile.name == "login_form"
    assert not profile.xhr
    assert profile.accept.startswith("text/html")


def test_the_site_comes_before_the_serial_in_every_path() -> None:
    assert site_in_path(f"{SCHED}/SCHEDULED_CHARGING/{SITE}/202400000001/schedules") == SITE
    assert site_in_path(f"/service/enho_historical_events_ms/{SITE}/sessions/{SN}/history") == SITE
    assert site_in_path(f"/service/evse_management/fwDetails/{SITE}") == SITE
    assert site_in_path("/app-api/search_sites.json?searchText=&favourite=false") is None


@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    path=st.text(alphabet="abcdefghijklmnop_-/0123456789.?=&", max_size=60).map(lambda p: "/" + p),
)
def test_every_route_gets_a_browser_profile(method: str, path: str) -> None:
    """Whatever the path, the family is one of the table's and the pair is one the web app
    sends: the fake's independent check never refuses what the client builds."""
    profile = header_profile(method, path, site_in_path(path), root=ROOT)
    assert route_family(method, path) == profile.name
    assert "*/*" in profile.accept
    assert profile.referer.startswith(ROOT + "/")
    headers = {
        "User-Agent": BROWSER_USER_AGENT,
        "Accept": profile.accept,
        "Referer": profile.referer,
    }
    assert header_refusal(method, path.split("?", maxsplit=1)[0], headers) is None


def test_the_fake_knows_a_browser_from_a_library() -> None:
    assert is_browser(BROWSER_USER_AGENT)
    assert is_browser(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.0 Safari/605.1.15"
    )
    for agent in (None, "", "Python/3.11 aiohttp/3.14.0", "evopt/0.1", "curl/8.5.0"):
        assert not is_browser(agent)


# --- the transport --------------------------------------------------------------------------


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    state = SessionState(
        cookies={"_enlighten_4_session": "sess-hdr-1", "XSRF-TOKEN": "xsrf-hdr-1"},
        session_id="sess-hdr-1",
        manager_token="manager.jwt.hdr1",
        entrez_token="entrez.jwt.hdr1",
    )
    made = Transport(base_url=ROOT, state=state)
    yield made
    await made.close()


def _sent(mocked: aioresponses, method: str) -> dict[str, str]:
    for (verb, _), calls in mocked.requests.items():
        if verb == method:
            headers: dict[str, str] = calls[0].kwargs["headers"]
            return headers
    raise AssertionError(f"no {method} request")


async def test_every_call_sends_the_browser_user_agent(transport: Transport) -> None:
    with aioresponses() as mocked:
        mocked.get(ROOT + f"{EVSE}/ev_chargers/status", payload={})
        mocked.post(ROOT + f"{EVSE}/ev_chargers/{SN}/start_charging", payload={})
        await transport.request("GET", f"{EVSE}/ev_chargers/status", family="status")
        await transport.request("POST", f"{EVSE}/ev_chargers/{SN}/start_charging", family="x")
        for method in ("GET", "POST"):
            assert _sent(mocked, method)["User-Agent"] == BROWSER_USER_AGENT
        assert _sent(mocked, "GET")["Accept"] == ACCEPT_ANY
        assert _sent(mocked, "POST")["Accept"] == ACCEPT_JSON
        assert _sent(mocked, "POST")["Referer"] == TODAY


async def test_control_bearer_is_the_manager_token_then_entrez(transport: Transport) -> None:
    path = f"{SCHED}/{SITE}/{SN}/preference"
    assert transport.headers(authenticated=True, method="PUT", path=path)["Authorization"] == (
        "Bearer manager.jwt.hdr1"
    )
    transport.state.manager_token = None
    assert transport.headers(authenticated=True, method="PUT", path=path)["Authorization"] == (
        "Bearer entrez.jwt.hdr1"
    )


async def test_the_site_search_sends_the_entrez_token(transport: Transport) -> None:
    headers = transport.headers(
        authenticated=True, method="GET", path="/app-api/search_sites.json?searchText="
    )
    assert headers["Authorization"] == "Bearer entrez.jwt.hdr1"
    assert headers["e-auth-token"] == "entrez.jwt.hdr1"
    assert headers["X-CSRF-Token"] == "xsrf-hdr-1"


async def test_entrez_gets_no_enlighten_cookies(transport: Transport) -> None:
    with aioresponses() as mocked:
        mocked.post("https://entrez.enphaseenergy.com/tokens", payload={})
        await transport.exchange("POST", "https://entrez.enphaseenergy.com/tokens", family="e")
        sent = _sent(mocked, "POST")
    assert sent["User-Agent"] == BROWSER_USER_AGENT
    assert not {"Cookie", "e-auth-token", "Authorization", "X-CSRF-Token"} & set(sent)


async def test_a_406_is_typed_and_says_what_was_refused(transport: Transport) -> None:
    with aioresponses() as mocked:
        mocked.get(ROOT + f"{EVSE}/ev_chargers/status", status=406, body="Not Acceptable")
        with pytest.raises(NotAcceptableError) as caught:
            await transport.request("GET", f"{EVSE}/ev_chargers/status", family="status")
    err = caught.value
    assert err.exit_code == EXIT_CLOUD
    assert err.status == 406
    message = err.user_message()
    assert f"GET {EVSE}/ev_chargers/status" in message
    assert "'ev_read' header profile" in message
    assert "today/graph/hours" in message
    assert "headers.py" in message  # the hint says where the profiles live
    assert len(mocked.requests[("GET", _url(f"{EVSE}/ev_chargers/status"))]) == 1  # no retry


def _url(path: str) -> URL:
    return URL(ROOT + path)


# --- against the fake cloud -----------------------------------------------------------------


async def test_never_more_than_two_reads_in_flight(tmp_path: Path) -> None:
    cloud = FakeCloud()
    # Every status read is held for a moment, so unbounded reads would pile up at the fake.
    cloud.faults.add(FaultRule(kind="timeout", path="ev_chargers/status", delay_s=0.2, times=0))
    async with served_client(cloud, state_dir=tmp_path) as client:
        await client.auth.ensure()
        cloud.reads.reset()
        results = await asyncio.gather(*(client.status(SITE) for _ in range(6)))
    assert all(r.chargers for r in results)
    assert cloud.reads.peak == 2


async def test_a_client_branded_user_agent_gets_the_typed_406(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("optimizer.enlighten.transport.BROWSER_USER_AGENT", "evopt/0.1")
    cloud = FakeCloud()
    async with served_client(cloud, state_dir=tmp_path) as client:
        with pytest.raises(NotAcceptableError, match=r"POST /login/login\b"):
            await client.auth.ensure()
    assert [r.status for r in cloud.requests()] == [406, 406]  # JSON, then the browser form


async def test_the_2024_cloud_does_not_check_headers(tmp_path: Path) -> None:
    cloud = FakeCloud()
    cloud.set_profile(**LEGACY_2024)
    assert header_refusal("GET", f"{EVSE}/ev_chargers/status", {}) is not None
    async with FakeCloudServer(cloud) as server, aiohttp.ClientSession() as session:
        url = server.base_url + "/login/login.json"
        async with session.post(url, data={"user[email]": "x", "user[password]": "y"}) as resp:
            assert resp.status == 200
