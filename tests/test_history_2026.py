"""Session history as the 2026 cloud takes it (2026 reference section 4).

The client's body and headers (aioresponses), the fake's 2026 rules (nested body only, the
history headers, degraded for a while), and `evopt history fetch` against the fake's default
2026 profile, degraded included: what is stored stays, exit 4, "try later".
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.errors import EXIT_CLOUD, BadRequestError
from optimizer.enlighten.history import HistoryDegradedError, history_body, history_headers
from optimizer.enlighten.transport import SessionState
from optimizer.fakecloud import FakeCloud
from optimizer.fakecloud.history_api import HistoryQuery, parse_nested
from optimizer.fakecloud.profile import LEGACY_2024
from tests.cli_env import SITE_ID, Env
from tests.conftest import ENLIGHTEN_BASE_URL as BASE
from tests.fixtures import load_fixture
from tests.served import served_client

SN = "EV9876543210"
HISTORY_URL = f"{BASE}/service/enho_historical_events_ms/{SITE_ID}/sessions/{SN}/history"
FILTER_URL = re.compile(
    rf"^{BASE}/service/enho_historical_events_ms/{SITE_ID}/filter_criteria\?.*$"
)
STATUS_URL = f"{BASE}/service/evse_controller/{SITE_ID}/ev_chargers/status"
ZONE = "Europe/Example"
DAY = date(2026, 5, 1)
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")


def calls(mock: aioresponses, method: str, url: str) -> list[Any]:
    return list(mock.requests.get((method, URL(url)), []))


@pytest.fixture
def entrez(make_jwt: Callable[..., str], client: EnlightenClient) -> str:
    """An Entrez token with the claims nested under ``data``, as some 2026 tokens have them."""
    token = make_jwt(data={"session_id": "entrez-session-0001", "user_id": 4242}, exp=2**31)
    client.transport.state.entrez_token = token
    return token


# --- unit: body and headers ---------------------------------------------------------------------


async def test_history_sends_the_nested_body_exactly_as_the_reference_shows(
    mock_cloud: aioresponses, client: EnlightenClient, entrez: str
) -> None:
    mock_cloud.get(FILTER_URL, payload={"data": {}})
    mock_cloud.post(HISTORY_URL, payload=load_fixture("session_history_2026"))

    sessions = await client.session_history(SITE_ID, SN, start=DAY, end=DAY, timezone=ZONE)

    assert [s.session_id for s in sessions] == [1777600000, 1777629300]
    (call,) = calls(mock_cloud, "POST", HISTORY_URL)
    assert call.kwargs["json"] == load_fixture("history_request_2026")
    headers = call.kwargs["headers"]
    assert headers["Authorization"] == f"Bearer {entrez}"
    assert headers["e-auth-token"] == "entrez-session-0001"  # the claim, not the raw token
    assert headers["username"] == "4242"
    assert UUID_RE.match(headers["requestid"])


async def test_every_history_request_has_a_new_requestid(
    mock_cloud: aioresponses, client: EnlightenClient, entrez: str
) -> None:
    mock_cloud.get(FILTER_URL, payload={"data": {}})
    mock_cloud.post(HISTORY_URL, payload=load_fixture("session_history_2026_more"))
    mock_cloud.post(HISTORY_URL, payload=load_fixture("session_history_2026"))

    await client.session_history(SITE_ID, SN, start=DAY, end=DAY, timezone=ZONE, page_size=2)

    ids = [c.kwargs["headers"]["requestid"] for c in calls(mock_cloud, "POST", HISTORY_URL)]
    assert len(ids) == 2
    assert len(set(ids)) == 2
    bodies = [c.kwargs["json"]["params"]["offset"] for c in calls(mock_cloud, "POST", HISTORY_URL)]
    assert bodies == [0, 2]


def test_bearer_falls_back_to_the_manager_token_cookie(make_jwt: Callable[..., str]) -> None:
    cookie_jwt = make_jwt(session_id="cookie-session", user_id="77")
    state = SessionState(
        cookies={"enlighten_manager_token_production": cookie_jwt},
        session_id="login-session",
        manager_token=make_jwt(session_id="login-session", user_id="77"),
    )
    fixed = uuid.UUID("12345678-1234-4234-8234-123456789abc")
    headers = history_headers(state, new_id=lambda: fixed)
    assert headers == {
        "requestid": str(fixed),
        "Authorization": f"Bearer {cookie_jwt}",
        "e-auth-token": "cookie-session",
        "username": "77",
    }
    state.entrez_token = make_jwt(session_id="entrez-session", user_id="77")
    assert history_headers(state)["Authorization"] == f"Bearer {state.entrez_token}"
    assert history_headers(state)["e-auth-token"] == "entrez-session"


async def test_the_site_zone_comes_from_the_status_when_not_given(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    status = load_fixture("status_nested")
    status.setdefault("data", {})["tz"] = "Europe/Example"
    mock_cloud.get(STATUS_URL, payload=status)
    mock_cloud.get(FILTER_URL, payload={"data": {}})
    mock_cloud.post(HISTORY_URL, payload=load_fixture("session_history_2026"), repeat=True)

    await client.session_history(SITE_ID, SN, start=DAY, end=DAY)
    await client.session_history(SITE_ID, SN, start=DAY, end=DAY)

    bodies = [c.kwargs["json"] for c in calls(mock_cloud, "POST", HISTORY_URL)]
    assert {b["params"]["timezone"] for b in bodies} == {"Europe/Example"}
    assert len(calls(mock_cloud, "GET", STATUS_URL)) == 1  # asked once per client


async def test_filter_criteria_at_most_once_per_ten_minutes(
    mock_cloud: aioresponses,
    client: EnlightenClient,
    entrez: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("optimizer.enlighten.client.time.monotonic", lambda: clock[0])
    mock_cloud.get(FILTER_URL, status=404, payload={}, repeat=True)  # optional: ignored
    mock_cloud.post(HISTORY_URL, payload=load_fixture("session_history_2026"), repeat=True)

    for step in (0.0, 300.0, 301.0):
        clock[0] += step
        await client.session_history(SITE_ID, SN, start=DAY, end=DAY, timezone=ZONE)

    filters = [k for k in mock_cloud.requests if "filter_criteria" in str(k[1])]
    sent = sum(len(mock_cloud.requests[k]) for k in filters)
    assert sent == 2  # at 0 s and at 601 s, not at 300 s
    query = URL(str(filters[0][1])).query
    assert (query["source"], query["username"]) == ("evse", "4242")
    assert UUID_RE.match(query["requestId"])


# --- unit: degraded -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504, 550])
async def test_a_degraded_status_is_try_later_and_not_retried(
    mock_cloud: aioresponses, client: EnlightenClient, status: int, sleeps: Any
) -> None:
    mock_cloud.get(FILTER_URL, payload={"data": {}})
    mock_cloud.post(HISTORY_URL, status=status, payload=load_fixture("history_degraded_550"))

    with pytest.raises(HistoryDegradedError) as caught:
        await client.session_history(SITE_ID, SN, start=DAY, end=DAY, timezone=ZONE)

    assert caught.value.exit_code == EXIT_CLOUD
    assert "try later" in caught.value.user_message()
    assert len(calls(mock_cloud, "POST", HISTORY_URL)) == 1
    assert sleeps.delays == []


async def test_a_body_naming_the_service_unavailable_is_degraded_too(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.get(FILTER_URL, payload={"data": {}})
    mock_cloud.post(HISTORY_URL, payload=load_fixture("history_degraded_200"))
    with pytest.raises(HistoryDegradedError, match="Historical events service is unavailable"):
        await client.session_history(SITE_ID, SN, start=DAY, end=DAY, timezone=ZONE)
    mock_cloud.post(HISTORY_URL, status=400, payload=load_fixture("history_degraded_200"))
    with pytest.raises(HistoryDegradedError):
        await client.session_history(SITE_ID, SN, start=DAY, end=DAY, timezone=ZONE)


async def test_a_bad_request_is_not_degraded(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.get(FILTER_URL, payload={"data": {}})
    mock_cloud.post(HISTORY_URL, status=400, payload=load_fixture("history_bad_request"))
    with pytest.raises(BadRequestError) as caught:
        await client.session_history(SITE_ID, SN, start=DAY, end=DAY, timezone=ZONE)
    assert not isinstance(caught.value, HistoryDegradedError)


async def test_a_degraded_second_page_returns_nothing_half_fetched(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.get(FILTER_URL, payload={"data": {}})
    mock_cloud.post(HISTORY_URL, payload=load_fixture("session_history_2026_more"))
    mock_cloud.post(HISTORY_URL, status=550, payload=load_fixture("history_degraded_550"))
    with pytest.raises(HistoryDegradedError):
        await client.session_history_raw(SITE_ID, SN, start=DAY, end=DAY, timezone=ZONE)


# --- property: the body the client sends is the body the fake's 2026 rules take ----------------


@given(
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    days=st.integers(min_value=0, max_value=400),
    offset=st.integers(min_value=0, max_value=10_000),
    limit=st.integers(min_value=1, max_value=100),
    zone=st.sampled_from(["Europe/Berlin", "Australia/Melbourne", "America/New_York", "UTC"]),
)
def test_the_nested_body_round_trips_through_the_fake(
    start: date, days: int, offset: int, limit: int, zone: str
) -> None:
    end = start + timedelta(days=days)
    body = history_body(start=start, end=end, offset=offset, limit=limit, timezone=zone)
    query = parse_nested(json.loads(json.dumps(body)))
    assert isinstance(query, HistoryQuery)
    assert (query.start, query.end, query.offset, query.limit) == (start, end, offset, limit)


# --- the fake's 2026 rules ----------------------------------------------------------------------


@pytest.fixture
async def fake_client() -> AsyncIterator[tuple[FakeCloud, EnlightenClient]]:
    cloud = FakeCloud()
    async with served_client(cloud) as client:
        yield cloud, client


async def test_the_fake_takes_the_client_s_2026_request(
    fake_client: tuple[FakeCloud, EnlightenClient],
) -> None:
    cloud, client = fake_client
    day = cloud.clock.now().date()
    sessions = await client.session_history(
        SITE_ID, SN, start=day - timedelta(days=27), end=day, timezone="Australia/Melbourne"
    )
    assert sessions
    (request,) = cloud.requests("/history", method="POST")[:1]
    assert set(request.json) == {"source", "params"}


async def test_the_fake_refuses_the_flat_body_and_missing_headers(
    fake_client: tuple[FakeCloud, EnlightenClient],
) -> None:
    cloud, client = fake_client
    await client.login()
    state = client.transport.state
    path = HISTORY_URL.removeprefix(BASE)
    url = client.transport.url(path)
    flat = {"startDate": "01-05-2026", "endDate": "01-05-2026", "offset": 0, "limit": 20}
    good_headers = {**client.transport.headers(authenticated=True), **history_headers(state)}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=flat, headers=good_headers) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"] == "BAD_REQUEST"
        nested = load_fixture("history_request_2026")
        nested["params"]["timezone"] = "Australia/Melbourne"
        for missing in ("requestid", "username", "e-auth-token"):
            headers = {k: v for k, v in good_headers.items() if k != missing}
            if missing == "e-auth-token":  # the session cookie still lets it past the session
                headers["e-auth-token"] = state.manager_token or ""
            async with session.post(url, json=nested, headers=headers) as resp:
                assert resp.status == 400, missing
                assert "BAD_REQUEST" in (await resp.json())["message"]
        async with session.post(url, json=nested, headers=good_headers) as resp:
            assert resp.status == 200
    cloud.set_profile(**LEGACY_2024)
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=flat, headers=good_headers) as resp,
    ):
        assert resp.status == 200  # the first reference's cloud


async def test_the_fake_can_be_degraded_for_a_while(
    fake_client: tuple[FakeCloud, EnlightenClient],
) -> None:
    cloud, client = fake_client
    day = cloud.clock.now().date()
    cloud.degrade_history(3600, status=550)
    with pytest.raises(HistoryDegradedError):
        await client.session_history(SITE_ID, SN, start=day, end=day, timezone="UTC")
    cloud.degrade_history(3600, status=503)
    with pytest.raises(HistoryDegradedError):
        await client.session_history(SITE_ID, SN, start=day, end=day, timezone="UTC")
    cloud.advance(3601)
    await client.session_history(SITE_ID, SN, start=day, end=day, timezone="UTC")
    with pytest.raises(ValueError, match="550"):
        cloud.degrade_history(60, status=418)
    admin = client.transport.url("/__fake__/history_outage")
    async with aiohttp.ClientSession() as session:
        async with session.post(admin, json={"seconds": 60, "status": 503}) as resp:
            assert (await resp.json())["status"] == 503
        async with session.post(admin, json={"seconds": 60, "status": 418}) as resp:
            assert resp.status == 400
    with pytest.raises(HistoryDegradedError):
        await client.session_history(SITE_ID, SN, start=day, end=day, timezone="UTC")


# --- end to end: `evopt history fetch` against the fake's 2026 profile ---------------------------

PERIOD = ("--from", "2024-12-20", "--to", "2025-01-10")


def test_history_fetch_uses_the_2026_request(env: Env) -> None:
    code, out, err = env.run("history", "fetch", *PERIOD, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["days_fetched"] == 22
    assert summary["history_degraded"] is False
    posts = env.cloud.requests("/history", method="POST")
    assert posts
    for request in posts:
        assert request.status == 200
        assert request.json["source"] == "evse"
        assert request.json["params"]["timezone"] == "Australia/Melbourne"
        assert UUID_RE.match(request.header("requestid") or "")
        assert request.header("username") == str(env.cloud.account.user_id)
    assert len({r.header("requestid") for r in posts}) == len(posts)
    assert len(env.cloud.requests("/filter_criteria")) == 1


def test_a_degraded_history_keeps_what_is_stored_and_says_try_later(env: Env) -> None:
    code, _, err = env.run("history", "fetch", "--from", "2024-12-20", "--to", "2024-12-26")
    assert code == 0, err
    db = env.state_dir / "decisions.db"
    from optimizer.decisions.store import DecisionStore  # noqa: PLC0415

    with DecisionStore(db) as store:
        before = store.load_history_sessions(SITE_ID)
    env.cloud.degrade_history(6 * 3600, status=550)

    code, out, err = env.run("history", "fetch", "--from", "2024-12-20", "--to", "2025-01-10")

    assert code == EXIT_CLOUD
    assert "try later" in err
    assert "Traceback" not in err
    assert "degraded" in out
    with DecisionStore(db) as store:
        assert store.load_history_sessions(SITE_ID) == before
    code, out, err = env.run("history", "fetch", *PERIOD, "--json")
    assert code == EXIT_CLOUD
    assert json.loads(out)["history_degraded"] is True
    env.cloud.degrade_history(0)
    code, out, err = env.run("history", "fetch", *PERIOD, "--json")
    assert code == 0, err
    assert json.loads(out)["days_stored"] == 22
