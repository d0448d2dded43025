"""Client reads: exact endpoints, remembered fallbacks, one re-login on 401, no leaked secrets."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from aioresponses import CallbackResult, aioresponses
from multidict import CIMultiDict
from yarl import URL

from optimizer.enlighten import client as client_module
from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.errors import (
    AuthRequiredError,
    InvalidCredentialsError,
    MfaRequiredError,
    NotFoundError,
    ParseError,
    ServiceUnavailableError,
    UnauthorizedError,
)
from optimizer.enlighten.models import ChargeMode
from optimizer.logsafe import RedactingFormatter
from tests.fixtures import load_fixture, patched_fixture

BASE = "https://enlighten.enphaseenergy.com"
LOGIN_URL = BASE + "/login/login.json"
SITE = 1234567
SN = "EV9876543210"
EVSE = "/service/evse_controller"
SCHEDULER = "/service/evse_scheduler/api/v1/iqevc/charging-mode"
STATUS_URL = f"{BASE}{EVSE}/{SITE}/ev_chargers/status"
SINGULAR_STATUS_URL = f"{BASE}{EVSE}/{SITE}/ev_charger/status"
HISTORY_URL = f"{BASE}/service/enho_historical_events_ms/{SITE}/sessions/{SN}/history"
FILTER_URL = re.compile(rf"^{BASE}/service/enho_historical_events_ms/{SITE}/filter_criteria\\?.*$")
ZONE = "Europe/Example"
SITES_URLS = (f"{BASE}{EVSE}/sites", f"{BASE}/api/v1/sites", f"{BASE}/sites.json")
# The 2026 discovery (aioresponses keys requests by the URL with its query sorted).
SEARCH_PATH = "/app-api/search_sites.json?favourite=false&searchText="
SEARCH_URL = BASE + SEARCH_PATH
SEEDED_SESSION = "seeded-session-id-4711"
NEW_SESSION = load_fixture("login_ok.json")["session_id"]
LOGIN_WALL = "<!DOCTYPE html><html><body><form action='/login'>Sign in</form></body></html>"


def requests_to(mocked: aioresponses, method: str, url: str) -> list[Any]:
    return mocked.requests.get((method, URL(url)), [])


def login_posts(mocked: aioresponses) -> int:
    return len(requests_to(mocked, "POST", LOGIN_URL))


@pytest.fixture
async def make_client(tmp_path: Path, creds: Any) -> AsyncIterator[Callable[..., EnlightenClient]]:
    """A client with no session yet; ``password=None`` means no unattended re-login."""
    made: list[EnlightenClient] = []

    def build(*, password: str | None = creds.password) -> EnlightenClient:
        enlighten = EnlightenClient(
            base_url=BASE,
            email=creds.email,
            password_provider=lambda: password,
            state_dir=tmp_path / "fresh-state",
        )
        made.append(enlighten)
        return enlighten

    yield build
    for enlighten in made:
        await enlighten.close()


# --- every read: exact method, path and body -------------------------------------------------


class ReadCase(NamedTuple):
    name: str
    read: Callable[[EnlightenClient], Awaitable[Any]]
    path: str
    fixture: str
    check: Callable[[Any], bool]


READS = [
    ReadCase(
        "status",
        lambda c: c.status(SITE),
        f"{EVSE}/{SITE}/ev_chargers/status",
        "status_nested",
        lambda r: [ch.sn for ch in r.chargers] == [SN] and r.chargers[0].dlb_active is False,
    ),
    ReadCase(
        "sites",
        lambda c: c.sites(),
        SEARCH_PATH,
        "search_sites_2026",
        lambda r: [(s.site_id, s.name) for s in r] == [(1000001, "Home")],
    ),
    ReadCase(
        "summaries",
        lambda c: c.summaries(SITE),
        f"{EVSE}/api/v2/{SITE}/ev_chargers/summary?filter_retired=true",
        "summary_list",
        lambda r: [s.sn for s in r] == ["EV1234567890"] and r[0].max_amps == 32,
    ),
    ReadCase(
        "summary",
        lambda c: c.summary(SITE, SN),
        f"{EVSE}/api/v2/{SITE}/ev_chargers/{SN}/summary",
        "summary_charger",
        lambda r: r.sn == "EV000000000000" and r.supports_use_battery is True,
    ),
    ReadCase(
        "start_live_stream",
        lambda c: c.start_live_stream(SITE),
        f"{EVSE}/{SITE}/ev_chargers/start_live_stream",
        "live_stream_start",
        lambda r: r.accepted and r.duration_s == 900 and r.topics == (f"evse/{SN}/status",),
    ),
    ReadCase(
        "start_live_stream_alt",
        lambda c: c.start_live_stream(SITE),
        f"{EVSE}/{SITE}/ev_chargers/start_live_stream",
        "live_stream_start_alt",
        lambda r: (
            r.accepted and r.duration_s == 900 and r.topics == (f"v1/evse/prod/live-stream/{SN}",)
        ),
    ),
    ReadCase(
        "stop_live_stream",
        lambda c: c.stop_live_stream(SITE),
        f"{EVSE}/{SITE}/ev_chargers/stop_live_stream",
        "live_stream_stop",
        lambda r: r.accepted,
    ),
    ReadCase(
        "lifetime_energy",
        lambda c: c.lifetime_energy(SITE, timezone="Australia/Melbourne"),
        f"/pv/systems/{SITE}/lifetime_energy",
        "lifetime_energy_daily",
        lambda r: r.system_id == SITE and r.interval == timedelta(days=1) and r.bucket_count == 11,
    ),
    ReadCase(
        "charge_mode",
        lambda c: c.charge_mode(SITE, SN),
        f"{SCHEDULER}/{SITE}/{SN}/preference",
        "charge_mode",
        lambda r: r is ChargeMode.MANUAL_CHARGING,
    ),
    ReadCase(
        "green_battery_setting",
        lambda c: c.green_battery_setting(SITE, SN),
        f"{SCHEDULER}/GREEN_CHARGING/{SITE}/{SN}/settings",
        "green_settings",
        lambda r: r is True,
    ),
    ReadCase(
        "schedules",
        lambda c: c.schedules(SITE, SN),
        f"{SCHEDULER}/SCHEDULED_CHARGING/{SITE}/{SN}/schedules",
        "schedules",
        lambda r: [s.schedule_type for s in r.slots] == ["CUSTOM", "OFF_PEAK"],
    ),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in READS])
async def test_read_endpoint(
    mock_cloud: aioresponses, client: EnlightenClient, case: ReadCase
) -> None:
    path = case.path
    mock_cloud.get(BASE + path, payload=load_fixture(case.fixture))

    result = await case.read(client)

    assert case.check(result)
    assert list(mock_cloud.requests) == [("GET", URL(BASE + path))]
    (call,) = mock_cloud.requests[("GET", URL(BASE + path))]
    assert call.kwargs["json"] is None
    assert call.kwargs["headers"]["e-auth-token"] == SEEDED_SESSION
    assert call.kwargs["headers"]["Authorization"] == "Bearer seeded.manager.token-4711"


async def test_read_with_unusable_shape_is_a_parse_error(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.get(f"{BASE}{SCHEDULER}/{SITE}/{SN}/preference", payload={"data": []})

    with pytest.raises(ParseError):
        await client.charge_mode(SITE, SN)


# --- fallbacks, remembered -------------------------------------------------------------------


async def test_sites_fall_back_and_remember_the_winner(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    """An older deployment without the search API: the old paths in order."""
    primary, v1, legacy = SITES_URLS
    mock_cloud.get(SEARCH_URL, status=404, payload={"message": "Not Found"}, repeat=True)
    mock_cloud.get(primary, status=404, payload={"message": "Not Found"})
    mock_cloud.get(v1, payload={"unexpected": "shape"})  # answers, but not with sites
    mock_cloud.get(legacy, payload=load_fixture("sites")["data"], repeat=True)

    first = await client.sites()
    second = await client.sites()

    assert first == second
    assert [site.site_id for site in first] == [1234567, 7654321]
    assert len(requests_to(mock_cloud, "GET", primary)) == 1
    assert len(requests_to(mock_cloud, "GET", v1)) == 1
    assert len(requests_to(mock_cloud, "GET", legacy)) == 2


async def test_sites_second_fallback_wins_on_404(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    primary, v1, legacy = SITES_URLS
    mock_cloud.get(SEARCH_URL, status=404, payload={}, repeat=True)
    mock_cloud.get(primary, status=404, payload={})
    mock_cloud.get(v1, payload={"sites": [{"siteId": 42, "siteName": "Cabin"}]}, repeat=True)

    assert [(s.site_id, s.name) for s in await client.sites()] == [(42, "Cabin")]
    assert [(s.site_id, s.name) for s in await client.sites()] == [(42, "Cabin")]

    assert len(requests_to(mock_cloud, "GET", primary)) == 1
    assert len(requests_to(mock_cloud, "GET", v1)) == 2
    assert requests_to(mock_cloud, "GET", legacy) == []


async def test_sites_all_failing_raises_the_last_error(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    for url in (SEARCH_URL, *SITES_URLS):
        mock_cloud.get(url, status=404, payload={})

    with pytest.raises(NotFoundError) as caught:
        await client.sites()

    assert caught.value.url == "/sites.json"


async def test_sites_server_error_does_not_fall_back(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.get(SEARCH_URL, status=500, payload={}, repeat=True)

    with pytest.raises(ServiceUnavailableError):
        await client.sites()

    assert len(requests_to(mock_cloud, "GET", SEARCH_URL)) == 4  # retried, then given up
    assert all(requests_to(mock_cloud, "GET", url) == [] for url in SITES_URLS)


async def test_status_falls_back_to_singular_and_remembers(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.get(STATUS_URL, status=404, payload={})
    mock_cloud.get(SINGULAR_STATUS_URL, payload=load_fixture("status_legacy"), repeat=True)

    first = await client.status(SITE)
    second = await client.status(SITE)

    assert first == second
    assert [charger.sn for charger in first.chargers] == [SN]
    assert first.chargers[0].connector_status == "SUSPENDED_EVSE"
    assert len(requests_to(mock_cloud, "GET", STATUS_URL)) == 1
    assert len(requests_to(mock_cloud, "GET", SINGULAR_STATUS_URL)) == 2


async def test_remembered_status_variant_is_per_site(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    other = 7654321
    mock_cloud.get(STATUS_URL, status=404, payload={})
    mock_cloud.get(SINGULAR_STATUS_URL, payload=load_fixture("status_legacy"))
    mock_cloud.get(
        f"{BASE}{EVSE}/{other}/ev_chargers/status", payload=load_fixture("status_nested")
    )

    await client.status(SITE)
    await client.status(other)

    assert requests_to(mock_cloud, "GET", f"{BASE}{EVSE}/{other}/ev_charger/status") == []


async def test_plural_status_is_used_first(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.get(STATUS_URL, payload=load_fixture("status_nested"), repeat=True)

    await client.status(SITE)
    await client.status(SITE)

    assert len(requests_to(mock_cloud, "GET", STATUS_URL)) == 2
    assert requests_to(mock_cloud, "GET", SINGULAR_STATUS_URL) == []


# --- session history -------------------------------------------------------------------------


def history_body(start: str, end: str, offset: int, limit: int) -> dict[str, Any]:
    """The 2026 nested body (tests/fixtures/history_request_2026.json) for a window."""
    params = {"offset": offset, "limit": limit, "startDate": start, "endDate": end}
    return {"source": "evse", "params": {**params, "timezone": "Europe/Example"}}


async def test_session_history_pages_until_has_more_is_false(
    mock_cloud: aioresponses, client: EnlightenClient, sleeps: Any
) -> None:
    mock_cloud.get(FILTER_URL, payload={"data": {}})
    mock_cloud.post(HISTORY_URL, payload=load_fixture("session_history_page1"))
    mock_cloud.post(HISTORY_URL, payload=load_fixture("session_history_page2"))

    sessions = await client.session_history(
        SITE, SN, start=date(2025, 10, 1), end=date(2025, 10, 16), page_size=2, timezone=ZONE
    )

    assert [s.session_id for s in sessions] == [1700000001, 1699900002, 1699800003]
    assert sessions[0].energy_kwh == pytest.approx(29.94)
    calls = requests_to(mock_cloud, "POST", HISTORY_URL)
    assert [call.kwargs["json"] for call in calls] == [
        history_body("01-10-2025", "16-10-2025", 0, 2),
        history_body("01-10-2025", "16-10-2025", 2, 2),
    ]
    assert calls[0].kwargs["headers"]["e-auth-token"] == SEEDED_SESSION
    assert sleeps.delays == []


async def test_session_history_default_page_size(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.get(FILTER_URL, payload={"data": {}})
    mock_cloud.post(HISTORY_URL, payload=load_fixture("session_history_page2"))

    sessions = await client.session_history(
        SITE, SN, start=date(2025, 1, 9), end=date(2025, 1, 9), timezone=ZONE
    )

    assert len(sessions) == 1
    (call,) = requests_to(mock_cloud, "POST", HISTORY_URL)
    assert call.kwargs["json"] == history_body("09-01-2025", "09-01-2025", 0, 50)


async def test_session_history_stops_on_an_empty_page(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.get(FILTER_URL, payload={"data": {}})
    mock_cloud.post(
        HISTORY_URL, payload=load_fixture("session_history_2026_empty_more"), repeat=True
    )

    sessions = await client.session_history(
        SITE, SN, start=date(2025, 1, 1), end=date(2025, 1, 2), timezone=ZONE
    )

    assert sessions == []
    assert len(requests_to(mock_cloud, "POST", HISTORY_URL)) == 1


async def test_session_history_page_guard(
    mock_cloud: aioresponses, client: EnlightenClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "MAX_HISTORY_PAGES", 3)
    mock_cloud.get(FILTER_URL, payload={"data": {}})
    mock_cloud.post(HISTORY_URL, payload=load_fixture("session_history_page1"), repeat=True)

    with pytest.raises(ParseError, match="more pages"):
        await client.session_history(
            SITE, SN, start=date(2025, 1, 1), end=date(2025, 1, 2), timezone=ZONE
        )

    assert len(requests_to(mock_cloud, "POST", HISTORY_URL)) == 3


# --- 401 and re-login ------------------------------------------------------------------------


async def test_401_logs_in_once_and_retries(
    mock_cloud: aioresponses, client: EnlightenClient, creds: Any
) -> None:
    mock_cloud.get(STATUS_URL, status=401, payload={"message": "Not Authorized"})
    mock_cloud.get(STATUS_URL, payload=load_fixture("status_nested"))
    mock_cloud.post(LOGIN_URL, payload=load_fixture("login_ok"), repeat=True)

    status = await client.status(SITE)

    assert [charger.sn for charger in status.chargers] == [SN]
    assert login_posts(mock_cloud) == 1
    (login,) = requests_to(mock_cloud, "POST", LOGIN_URL)
    assert login.kwargs["data"]["user[password]"] == creds.password
    gets = requests_to(mock_cloud, "GET", STATUS_URL)
    assert [call.kwargs["headers"]["e-auth-token"] for call in gets] == [
        SEEDED_SESSION,
        NEW_SESSION,
    ]
    assert client.transport.state.generation == 2


async def test_second_401_after_relogin_is_unauthorized(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.get(STATUS_URL, status=401, payload={}, repeat=True)
    mock_cloud.post(LOGIN_URL, payload=load_fixture("login_ok"), repeat=True)

    with pytest.raises(UnauthorizedError) as caught:
        await client.status(SITE)

    assert caught.value.status == 401
    assert login_posts(mock_cloud) == 1
    assert len(requests_to(mock_cloud, "GET", STATUS_URL)) == 2
    assert requests_to(mock_cloud, "GET", SINGULAR_STATUS_URL) == []


async def test_401_without_password_needs_evopt_login(
    mock_cloud: aioresponses, make_client: Callable[..., EnlightenClient]
) -> None:
    enlighten = make_client(password=None)
    enlighten.transport.state.session_id = "stale-session-id-d4"
    mock_cloud.get(STATUS_URL, status=401, payload={}, repeat=True)

    with pytest.raises(AuthRequiredError) as caught:
        await enlighten.status(SITE)

    assert not isinstance(caught.value, UnauthorizedError)
    assert "evopt login" in caught.value.user_message()
    assert login_posts(mock_cloud) == 0
    assert len(requests_to(mock_cloud, "GET", STATUS_URL)) == 1


async def test_first_read_logs_in_with_the_password(
    mock_cloud: aioresponses, make_client: Callable[..., EnlightenClient], tmp_path: Path
) -> None:
    enlighten = make_client()
    mock_cloud.post(LOGIN_URL, payload=load_fixture("login_ok"))
    mock_cloud.get(STATUS_URL, payload=load_fixture("status_nested"))

    await enlighten.status(SITE)

    assert login_posts(mock_cloud) == 1
    (get,) = requests_to(mock_cloud, "GET", STATUS_URL)
    assert get.kwargs["headers"]["e-auth-token"] == NEW_SESSION
    assert (tmp_path / "fresh-state" / "session.json").exists()


async def test_login_wall_on_a_read_triggers_relogin(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    path = f"{SCHEDULER}/{SITE}/{SN}/preference"
    mock_cloud.get(BASE + path, status=200, body=LOGIN_WALL, content_type="text/html")
    mock_cloud.get(BASE + path, payload=load_fixture("charge_mode"))
    mock_cloud.post(LOGIN_URL, payload=load_fixture("login_ok"), repeat=True)

    assert await client.charge_mode(SITE, SN) is ChargeMode.MANUAL_CHARGING

    assert login_posts(mock_cloud) == 1
    assert len(requests_to(mock_cloud, "GET", BASE + path)) == 2


async def test_relogin_that_needs_mfa_raises_mfa_required(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.get(STATUS_URL, status=401, payload={}, repeat=True)
    mock_cloud.post(LOGIN_URL, payload=load_fixture("login_mfa"), repeat=True)

    with pytest.raises(MfaRequiredError) as caught:
        await client.status(SITE)

    assert "--otp" in caught.value.user_message()
    assert caught.value.exit_code == 3
    assert login_posts(mock_cloud) == 1
    assert len(requests_to(mock_cloud, "GET", STATUS_URL)) == 1
    assert client.auth.pending is not None


def held_401s(expected: int) -> Callable[..., Awaitable[CallbackResult]]:
    """Rejects old-session requests only once ``expected`` of them are in flight together."""
    in_flight = 0
    all_in = asyncio.Event()

    async def reply(url: URL, **kwargs: Any) -> CallbackResult:
        nonlocal in_flight
        if kwargs["headers"].get("e-auth-token") == NEW_SESSION:
            return CallbackResult(payload=load_fixture("status_nested"))
        in_flight += 1
        if in_flight == expected:
            all_in.set()
        await asyncio.wait_for(all_in.wait(), timeout=5)
        return CallbackResult(status=401, payload={"message": "Not Authorized"})

    return reply


async def test_concurrent_401s_share_one_login(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    # Two at once: the transport keeps at most two reads in flight; the third follows them.
    mock_cloud.get(STATUS_URL, callback=held_401s(2), repeat=True)
    mock_cloud.post(LOGIN_URL, payload=load_fixture("login_ok"), repeat=True)

    results = await asyncio.gather(*(client.status(SITE) for _ in range(3)))

    assert all([c.sn for c in r.chargers] == [SN] for r in results)
    assert login_posts(mock_cloud) == 1
    # The two held reads and their retries, and the third once through the gate: with the old
    # session (then a retry) or, when it got through after the re-login, the new one.
    assert len(requests_to(mock_cloud, "GET", STATUS_URL)) in (5, 6)
    assert client.transport.state.generation == 2


@pytest.mark.parametrize(
    ("login_reply", "error_type"),
    [("login_mfa", MfaRequiredError), ("login_invalid", InvalidCredentialsError)],
)
async def test_concurrent_401s_share_one_failed_login(
    mock_cloud: aioresponses, client: EnlightenClient, login_reply: str, error_type: type
) -> None:
    mock_cloud.get(STATUS_URL, callback=held_401s(2), repeat=True)
    mock_cloud.post(LOGIN_URL, payload=load_fixture(login_reply), repeat=True)

    results = await asyncio.gather(*(client.status(SITE) for _ in range(3)), return_exceptions=True)

    assert [type(result) for result in results] == [error_type] * 3
    # One attempt only: no burst of one-time codes, no repeated bad passwords towards a block.
    assert login_posts(mock_cloud) == 1


async def test_refused_relogin_is_not_repeated_until_a_login_succeeds(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.get(STATUS_URL, status=401, payload={})
    mock_cloud.post(LOGIN_URL, payload=load_fixture("login_mfa"), repeat=True)

    with pytest.raises(MfaRequiredError):
        await client.status(SITE)
    with pytest.raises(MfaRequiredError):  # the next poll: no second one-time code
        await client.status(SITE)

    assert login_posts(mock_cloud) == 1
    assert len(requests_to(mock_cloud, "GET", STATUS_URL)) == 1

    mock_cloud.post(BASE + "/app-api/validate_login_otp", payload=load_fixture("otp_ok"))
    mock_cloud.get(STATUS_URL, payload=load_fixture("status_nested"))
    await client.submit_otp("123456")

    assert [c.sn for c in (await client.status(SITE)).chargers] == [SN]
    assert login_posts(mock_cloud) == 1


async def test_relogin_that_fails_in_transit_is_tried_again_later(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.get(STATUS_URL, status=401, payload={})
    mock_cloud.post(LOGIN_URL, status=503, payload={})
    mock_cloud.post(LOGIN_URL, payload=load_fixture("login_ok"))
    mock_cloud.get(STATUS_URL, payload=load_fixture("status_nested"))

    with pytest.raises(ServiceUnavailableError):
        await client.status(SITE)
    await client.status(SITE)

    assert login_posts(mock_cloud) == 2


# --- no secrets in the logs ------------------------------------------------------------------


async def test_logs_never_contain_secrets(
    mock_cloud: aioresponses,
    make_client: Callable[..., EnlightenClient],
    creds: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = load_fixture("login_ok")
    second = patched_fixture(
        "login_ok",
        {"session_id": "second-session-id-e5e5e5", "manager_token": "second.manager.e5e5e5"},
    )
    cookie_values = ["login-cookie-e5-one", "xsrf-cookie-e5-one", "login-cookie-e5-two"]
    first_cookies = CIMultiDict(
        [
            ("Set-Cookie", f"_enlighten_4_session={cookie_values[0]}; Path=/"),
            ("Set-Cookie", f"XSRF-TOKEN={cookie_values[1]}; Path=/"),
        ]
    )
    second_cookies = {"Set-Cookie": f"_enlighten_4_session={cookie_values[2]}; Path=/"}
    mock_cloud.post(LOGIN_URL, payload=first, headers=first_cookies)
    mock_cloud.post(LOGIN_URL, payload=second, headers=second_cookies)
    mock_cloud.get(STATUS_URL, payload=load_fixture("status_nested"))
    mock_cloud.get(STATUS_URL, status=401, payload={"message": "Not Authorized"})
    mock_cloud.get(STATUS_URL, payload=load_fixture("status_nested"))
    mock_cloud.get(SEARCH_URL, status=503, payload={"error": "try later"}, repeat=True)
    enlighten = make_client()
    caplog.set_level(logging.DEBUG)

    await enlighten.status(SITE)  # logs in first
    await enlighten.status(SITE)  # 401, logs in again, retries
    with pytest.raises(ServiceUnavailableError):
        await enlighten.sites()
    assert login_posts(mock_cloud) == 2
    # A careless line anywhere in the process: the filter must still mask what it holds.
    careless = logging.getLogger("tests.careless")
    careless.debug(
        "headers %s for %s / %s",
        enlighten.transport.headers(authenticated=True),
        creds.email,
        creds.password,
    )
    boom = RuntimeError(f"boom {creds.password} {first['manager_token']}")
    careless.error("failed with %s", cookie_values[2], exc_info=(RuntimeError, boom, None))

    secrets = [
        creds.password,
        creds.email,
        first["session_id"],
        first["manager_token"],
        second["session_id"],
        second["manager_token"],
        *cookie_values,
    ]
    own = [r for r in caplog.records if r.name.startswith("optimizer")]
    assert own, "the flow should have logged something"
    for record in own:  # the client itself never logs a secret, even before filtering
        assert not any(secret in record.getMessage() for secret in secrets), record.getMessage()

    formatter = RedactingFormatter("%(name)s %(levelname)s %(message)s")
    assert any(r.name == "tests.careless" for r in caplog.records)
    for record in caplog.records:
        line = formatter.format(record)
        leaked = [secret for secret in secrets if secret in line]
        assert leaked == [], line
