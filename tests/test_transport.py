"""The HTTP layer: headers, cookies, status mapping, malformed replies, retries, counting."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses
from multidict import CIMultiDict
from yarl import URL

from optimizer.enlighten.errors import (
    AccountBlockedError,
    AuthRequiredError,
    BadRequestError,
    CloudTimeoutError,
    CloudUnreachableError,
    ConfigError,
    ConflictError,
    ConnectionNotEstablishedError,
    EnlightenError,
    EnlightenHTTPStatusError,
    ForbiddenError,
    GatewayNotReportingError,
    InvalidCredentialsError,
    InvalidOtpError,
    LiveStreamNotSupportedError,
    LoginWallError,
    MethodNotAllowedError,
    MfaRequiredError,
    NotFoundError,
    OtpThrottledError,
    ParseError,
    RateLimitedError,
    ServiceUnavailableError,
    UnauthorizedError,
    UnknownSiteError,
    UnsupportedEnvoyError,
)
from optimizer.enlighten.headers import BROWSER_USER_AGENT
from optimizer.enlighten.transport import (
    RequestCounter,
    RetryPolicy,
    SessionState,
    Transport,
    parse_retry_after,
)
from optimizer.logsafe import redact
from tests.fixtures import load_fixture

BASE = "https://enlighten.enphaseenergy.com"
PATH = "/service/evse_controller/1234567/ev_chargers/status"
URL_ = BASE + PATH
ACCEPT = "application/json, text/javascript, */*; q=0.01"


@pytest.fixture
async def make_transport() -> AsyncIterator[Callable[..., Transport]]:
    made: list[Transport] = []

    def build(**kwargs: Any) -> Transport:
        transport = Transport(base_url=BASE, **kwargs)
        made.append(transport)
        return transport

    yield build
    for transport in made:
        await transport.close()


@pytest.fixture
def transport(make_transport: Callable[..., Transport]) -> Transport:
    return make_transport()


def calls(mocked: aioresponses, method: str, url: str = URL_) -> list[Any]:
    return mocked.requests.get((method, URL(url)), [])


def total_calls(mocked: aioresponses) -> int:
    return sum(len(recorded) for recorded in mocked.requests.values())


def cookie_header(value: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in value.split("; "))
    return dict(pairs)


class FakeClock:
    """A monotonic clock that only moves when the transport sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.delays: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)
        self.now += delay


# --- headers and cookies ---------------------------------------------------------------------


async def test_authenticated_request_sends_the_web_app_headers(
    mock_cloud: aioresponses, make_transport: Callable[..., Transport]
) -> None:
    state = SessionState(
        cookies={
            "_enlighten_4_session": "cookie-session-hdr1",
            "XSRF-TOKEN": "xsrf-value-hdr1",
            "BP-XSRF-Token": "bp-xsrf-hdr1",
        },
        session_id="session-id-hdr1",
        manager_token="manager.token.hdr1",
    )
    transport = make_transport(state=state)
    mock_cloud.get(URL_, payload={"ok": True})

    reply = await transport.request("GET", PATH, family="status")

    assert reply.status == 200
    assert reply.data == {"ok": True}
    headers = calls(mock_cloud, "GET")[0].kwargs["headers"]
    # A status read: the web app's plain Accept and its today graph page as Referer (2026).
    assert headers["Accept"] == "*/*"
    assert headers["X-Requested-With"] == "XMLHttpRequest"
    assert headers["Referer"] == BASE + "/web/1234567/today/graph/hours"
    assert headers["User-Agent"] == BROWSER_USER_AGENT
    assert cookie_header(headers["Cookie"]) == state.cookies
    assert headers["X-CSRF-Token"] == "xsrf-value-hdr1"
    assert headers["e-auth-token"] == "session-id-hdr1"
    assert headers["Authorization"] == "Bearer manager.token.hdr1"


async def test_e_auth_token_falls_back_to_the_session_cookie(
    mock_cloud: aioresponses, make_transport: Callable[..., Transport]
) -> None:
    state = SessionState(cookies={"_enlighten_4_session": "cookie-only-session-hdr2"})
    transport = make_transport(state=state)
    mock_cloud.get(URL_, payload={})

    await transport.request("GET", PATH, family="status")

    headers = calls(mock_cloud, "GET")[0].kwargs["headers"]
    assert headers["e-auth-token"] == "cookie-only-session-hdr2"
    assert "Authorization" not in headers
    assert "X-CSRF-Token" not in headers


async def test_unauthenticated_request_carries_no_tokens(
    mock_cloud: aioresponses, make_transport: Callable[..., Transport]
) -> None:
    state = SessionState(
        cookies={"_enlighten_4_session": "cookie-session-hdr3", "XSRF-TOKEN": "xsrf-hdr3"},
        session_id="session-id-hdr3",
        manager_token="manager.token.hdr3",
    )
    transport = make_transport(state=state)
    mock_cloud.post(BASE + "/login/login.json", payload={})

    await transport.request("POST", "/login/login.json", family="auth", authenticated=False)

    headers = calls(mock_cloud, "POST", BASE + "/login/login.json")[0].kwargs["headers"]
    assert "e-auth-token" not in headers
    assert "Authorization" not in headers
    assert headers["Accept"] == "*/*"  # the JSON login's pair: */* and the site root
    assert headers["Referer"] == BASE + "/"
    assert headers["X-Requested-With"] == "XMLHttpRequest"
    # The OTP step needs the pre-MFA cookies and the CSRF header without being authenticated.
    assert cookie_header(headers["Cookie"]) == state.cookies
    assert headers["X-CSRF-Token"] == "xsrf-hdr3"


async def test_request_without_cookies_sends_no_cookie_header(
    mock_cloud: aioresponses, transport: Transport
) -> None:
    mock_cloud.get(URL_, payload={})

    await transport.request("GET", PATH, family="status")

    headers = calls(mock_cloud, "GET")[0].kwargs["headers"]
    assert "Cookie" not in headers
    assert "e-auth-token" not in headers


async def test_set_cookie_is_absorbed_into_state_and_registered_as_secret(
    mock_cloud: aioresponses, make_transport: Callable[..., Transport]
) -> None:
    state = SessionState(cookies={"stale": "stale-cookie-value-sc1", "kept": "kept-value-sc1"})
    transport = make_transport(state=state)
    headers = CIMultiDict(
        [
            ("Set-Cookie", "_enlighten_4_session=fresh-session-sc1; Path=/; HttpOnly"),
            ("Set-Cookie", "XSRF-TOKEN=fresh-xsrf-sc1; Path=/"),
            ("Set-Cookie", "stale=; Max-Age=0; Path=/"),
        ]
    )
    mock_cloud.get(URL_, payload={}, headers=headers)

    await transport.request("GET", PATH, family="status")

    assert state.cookies == {
        "kept": "kept-value-sc1",
        "_enlighten_4_session": "fresh-session-sc1",
        "XSRF-TOKEN": "fresh-xsrf-sc1",
    }
    assert state.auth_token() == "fresh-session-sc1"
    assert redact("cookie fresh-session-sc1 and fresh-xsrf-sc1") == "cookie *** and ***"

    # The next request sends what was absorbed.
    mock_cloud.get(URL_, payload={})
    await transport.request("GET", PATH, family="status")
    sent = calls(mock_cloud, "GET")[1].kwargs["headers"]
    assert cookie_header(sent["Cookie"]) == state.cookies
    assert sent["X-CSRF-Token"] == "fresh-xsrf-sc1"


def test_base_url_must_be_http() -> None:
    with pytest.raises(ConfigError, match="http"):
        Transport(base_url="enlighten.enphaseenergy.com")


def test_url_joins_paths_and_keeps_absolute_urls() -> None:
    transport = Transport(base_url=BASE + "/")
    assert transport.url("/a/b") == BASE + "/a/b"
    assert transport.url("https://entrez.enphaseenergy.com/x") == (
        "https://entrez.enphaseenergy.com/x"
    )


# --- status mapping --------------------------------------------------------------------------

STATUS_ERRORS = [
    (400, BadRequestError, 1),
    (401, UnauthorizedError, 3),
    (403, ForbiddenError, 3),
    (404, NotFoundError, 1),
    (405, MethodNotAllowedError, 4),
    (409, ConflictError, 1),
    (422, ConflictError, 1),
    (429, RateLimitedError, 4),
    (466, UnsupportedEnvoyError, 4),
    (468, UnknownSiteError, 1),
    (472, LiveStreamNotSupportedError, 4),
    (473, GatewayNotReportingError, 4),
    (500, ServiceUnavailableError, 4),
    (502, ServiceUnavailableError, 4),
    (503, ServiceUnavailableError, 4),
    (550, ServiceUnavailableError, 4),
    (551, ServiceUnavailableError, 4),
    (552, ConnectionNotEstablishedError, 4),
]


@pytest.mark.parametrize(("status", "error_type", "exit_code"), STATUS_ERRORS)
async def test_status_maps_to_its_error(
    mock_cloud: aioresponses,
    transport: Transport,
    status: int,
    error_type: type[EnlightenHTTPStatusError],
    exit_code: int,
) -> None:
    body = {"status": "error", "message": "EXAMPLE_REASON", "details": {"code": f"E{status}"}}
    mock_cloud.get(URL_, status=status, payload=body)

    with pytest.raises(EnlightenHTTPStatusError) as caught:
        await transport.request("GET", PATH, family="status", retry=False)

    err = caught.value
    assert type(err) is error_type
    assert err.status == status
    assert err.url == PATH
    assert err.code == f"E{status}"
    assert err.exit_code == exit_code
    assert "EXAMPLE_REASON" in str(err)
    assert str(status) in str(err)
    assert len(calls(mock_cloud, "GET")) == 1


async def test_400_carries_the_nested_error_code(
    mock_cloud: aioresponses, transport: Transport
) -> None:
    mock_cloud.post(URL_, status=400, payload={"error": {"code": "iqevc_ms-10008"}})

    with pytest.raises(BadRequestError) as caught:
        await transport.request("POST", PATH, family="control", json_body={})

    assert caught.value.code == "iqevc_ms-10008"
    assert caught.value.status == 400


async def test_error_without_a_json_body_still_maps(
    mock_cloud: aioresponses, transport: Transport
) -> None:
    mock_cloud.get(
        URL_, status=404, body="<html><body>Not Found</body></html>", content_type="text/html"
    )

    with pytest.raises(NotFoundError) as caught:
        await transport.request("GET", PATH, family="status")

    assert caught.value.code is None


async def test_unlisted_status_is_a_plain_http_error(
    mock_cloud: aioresponses, transport: Transport
) -> None:
    mock_cloud.get(URL_, status=418, payload={})

    with pytest.raises(EnlightenHTTPStatusError) as caught:
        await transport.request("GET", PATH, family="status")

    assert type(caught.value) is EnlightenHTTPStatusError
    assert len(calls(mock_cloud, "GET")) == 1


async def test_429_retry_after_seconds(mock_cloud: aioresponses, transport: Transport) -> None:
    mock_cloud.post(URL_, status=429, payload={}, headers={"Retry-After": "17"})

    with pytest.raises(RateLimitedError) as caught:
        await transport.request("POST", PATH, family="control")

    assert caught.value.retry_after == 17.0


async def test_429_retry_after_http_date(mock_cloud: aioresponses, transport: Transport) -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    mock_cloud.post(
        URL_, status=429, payload={}, headers={"Retry-After": format_datetime(when, usegmt=True)}
    )

    with pytest.raises(RateLimitedError) as caught:
        await transport.request("POST", PATH, family="control")

    assert caught.value.retry_after is not None
    assert 100 <= caught.value.retry_after <= 120


async def test_429_without_retry_after(mock_cloud: aioresponses, transport: Transport) -> None:
    mock_cloud.post(URL_, status=429, payload={})

    with pytest.raises(RateLimitedError) as caught:
        await transport.request("POST", PATH, family="control")

    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    ("error_type", "exit_code"),
    [
        (EnlightenError, 4),
        (AuthRequiredError, 3),
        (LoginWallError, 3),
        (InvalidCredentialsError, 3),
        (AccountBlockedError, 3),
        (MfaRequiredError, 3),
        (InvalidOtpError, 3),
        (OtpThrottledError, 3),
        (CloudUnreachableError, 4),
        (CloudTimeoutError, 4),
        (ParseError, 4),
        (ConfigError, 1),
    ],
)
def test_exit_codes_of_non_status_errors(error_type: type[EnlightenError], exit_code: int) -> None:
    err = error_type("something happened")
    assert err.exit_code == exit_code
    assert err.user_message().startswith("something happened")


def test_auth_errors_tell_the_user_to_log_in() -> None:
    err = UnauthorizedError("expired", status=401, url=PATH)
    assert isinstance(err, AuthRequiredError)
    assert "evopt login" in err.user_message()
    assert "evopt login" in LoginWallError("wall").user_message()


# --- transport failures and malformed replies ------------------------------------------------


async def test_timeout_becomes_cloud_timeout_error(
    mock_cloud: aioresponses, transport: Transport
) -> None:
    mock_cloud.get(URL_, timeout=True)

    with pytest.raises(CloudTimeoutError):
        await transport.request("GET", PATH, family="status", retry=False)


async def test_per_call_timeout_is_enforced(
    mock_cloud: aioresponses, make_transport: Callable[..., Transport]
) -> None:
    transport = make_transport(timeout_s=0.01)

    async def hang(url: URL, **kwargs: Any) -> CallbackResult:
        await asyncio.sleep(5)
        return CallbackResult(payload={})

    mock_cloud.get(URL_, callback=hang)

    with pytest.raises(CloudTimeoutError, match=r"0\.01 s"):
        await transport.request("GET", PATH, family="status", retry=False)


@pytest.mark.parametrize(
    "exception",
    [
        aiohttp.ClientConnectionError("connection refused"),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("broken body"),
    ],
)
async def test_connection_errors_become_cloud_unreachable(
    mock_cloud: aioresponses, transport: Transport, exception: Exception
) -> None:
    mock_cloud.get(URL_, exception=exception)

    with pytest.raises(CloudUnreachableError) as caught:
        await transport.request("GET", PATH, family="status", retry=False)

    assert not isinstance(caught.value, CloudTimeoutError)
    assert isinstance(caught.value.__cause__, aiohttp.ClientError)


async def test_unmatched_host_is_unreachable(
    mock_cloud: aioresponses, transport: Transport
) -> None:
    with pytest.raises(CloudUnreachableError):
        await transport.request("GET", PATH, family="status", retry=False)


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/json"])
async def test_html_page_on_200_is_a_login_wall(
    mock_cloud: aioresponses, transport: Transport, content_type: str
) -> None:
    page = (
        "\n  <!DOCTYPE html><html><head><title>Enlighten</title></head><body>Sign in</body></html>"
    )
    mock_cloud.get(URL_, status=200, body=page, content_type=content_type)

    with pytest.raises(LoginWallError):
        await transport.request("GET", PATH, family="status")

    assert len(calls(mock_cloud, "GET")) == 1  # an auth problem is never retried


async def test_redirect_to_login_is_a_login_wall(
    mock_cloud: aioresponses, transport: Transport
) -> None:
    mock_cloud.get(URL_, status=302, headers={"Location": BASE + "/login?redirect=1"})

    with pytest.raises(LoginWallError):
        await transport.request("GET", PATH, family="status")


async def test_truncated_json_is_a_parse_error(
    mock_cloud: aioresponses, transport: Transport
) -> None:
    mock_cloud.get(URL_, status=200, body='{"data": {"chargers": [{"sn": "EV98')

    with pytest.raises(ParseError) as caught:
        await transport.request("GET", PATH, family="status")

    assert caught.value.url == PATH
    assert len(calls(mock_cloud, "GET")) == 1


@pytest.mark.parametrize(("status", "body"), [(200, ""), (200, "  \n"), (204, "")])
async def test_empty_body_is_none(
    mock_cloud: aioresponses, transport: Transport, status: int, body: str
) -> None:
    mock_cloud.get(URL_, status=status, body=body)

    reply = await transport.request("GET", PATH, family="status")

    assert reply.status == status
    assert reply.data is None


async def test_recorded_fixture_decodes(mock_cloud: aioresponses, transport: Transport) -> None:
    mock_cloud.get(URL_, payload=load_fixture("status_nested.json"))

    reply = await transport.request("GET", PATH, family="status")

    assert reply.data == load_fixture("status_nested.json")


# --- retries ---------------------------------------------------------------------------------


async def test_429_then_200_waits_retry_after(
    mock_cloud: aioresponses, make_transport: Callable[..., Transport], sleeps: Any
) -> None:
    transport = make_transport(rand=lambda: 0.0)
    mock_cloud.get(URL_, status=429, payload={}, headers={"Retry-After": "2"})
    mock_cloud.get(URL_, payload={"ok": 1})

    reply = await transport.request("GET", PATH, family="status")

    assert reply.data == {"ok": 1}
    assert len(calls(mock_cloud, "GET")) == 2
    assert len(sleeps.delays) == 1
    assert sleeps.delays[0] >= 2.0


async def test_503_twice_then_200_succeeds_with_growing_delays(
    mock_cloud: aioresponses, make_transport: Callable[..., Transport], sleeps: Any
) -> None:
    transport = make_transport(rand=lambda: 0.5)
    mock_cloud.get(URL_, status=503, payload={})
    mock_cloud.get(URL_, status=503, payload={})
    mock_cloud.get(URL_, payload=load_fixture("status_legacy.json"))

    reply = await transport.request("GET", PATH, family="status")

    assert reply.data == load_fixture("status_legacy.json")
    assert len(calls(mock_cloud, "GET")) == 3
    assert sleeps.delays == pytest.approx([1.125, 2.25])


async def test_retries_are_bounded_by_attempts(
    mock_cloud: aioresponses, transport: Transport, sleeps: Any
) -> None:
    mock_cloud.get(URL_, status=503, payload={}, repeat=True)

    with pytest.raises(ServiceUnavailableError):
        await transport.request("GET", PATH, family="status")

    assert len(calls(mock_cloud, "GET")) == 4
    assert len(sleeps.delays) == 3
    assert transport.counter.totals() == {"status": 4}  # every attempt counts in the budget


async def test_connection_errors_on_reads_are_retried(
    mock_cloud: aioresponses, transport: Transport
) -> None:
    mock_cloud.get(URL_, exception=aiohttp.ClientConnectionError("reset"))
    mock_cloud.get(URL_, timeout=True)
    mock_cloud.get(URL_, payload={"ok": 2})

    reply = await transport.request("GET", PATH, family="status")

    assert reply.data == {"ok": 2}
    assert len(calls(mock_cloud, "GET")) == 3


async def test_huge_retry_after_stops_at_max_elapsed(
    mock_cloud: aioresponses, transport: Transport, sleeps: Any
) -> None:
    mock_cloud.get(URL_, status=429, payload={}, headers={"Retry-After": "3600"}, repeat=True)

    with pytest.raises(RateLimitedError) as caught:
        await transport.request("GET", PATH, family="status")

    assert caught.value.retry_after == 3600
    assert len(calls(mock_cloud, "GET")) == 1
    assert sleeps.delays == []


async def test_elapsed_time_bounds_retries(
    mock_cloud: aioresponses, make_transport: Callable[..., Transport]
) -> None:
    clock = FakeClock()
    transport = make_transport(
        retry=RetryPolicy(attempts=10, max_elapsed_s=10.0),
        sleep=clock.sleep,
        monotonic=clock,
        rand=lambda: 0.0,
    )
    mock_cloud.get(URL_, status=429, payload={}, headers={"Retry-After": "4"}, repeat=True)

    with pytest.raises(RateLimitedError):
        await transport.request("GET", PATH, family="status")

    # Slept 4 s twice; a third wait would end at 12 s > 10 s, so it gives up after 3 tries.
    assert clock.delays == [4.0, 4.0]
    assert len(calls(mock_cloud, "GET")) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 422, 466, 468, 472, 473])
async def test_4xx_is_never_retried(
    mock_cloud: aioresponses, transport: Transport, sleeps: Any, status: int
) -> None:
    mock_cloud.get(URL_, status=status, payload={}, repeat=True)

    with pytest.raises(EnlightenHTTPStatusError):
        await transport.request("GET", PATH, family="status")

    assert len(calls(mock_cloud, "GET")) == 1
    assert sleeps.delays == []


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_writes_are_not_retried_by_default(
    mock_cloud: aioresponses, transport: Transport, sleeps: Any, method: str
) -> None:
    mock_cloud.add(URL_, method=method, status=503, payload={}, repeat=True)

    with pytest.raises(ServiceUnavailableError):
        await transport.request(method, PATH, family="control", json_body={"x": 1})

    assert len(calls(mock_cloud, method)) == 1
    assert sleeps.delays == []


async def test_write_timeout_is_not_retried(mock_cloud: aioresponses, transport: Transport) -> None:
    mock_cloud.post(URL_, timeout=True, repeat=True)

    with pytest.raises(CloudTimeoutError):
        await transport.request("POST", PATH, family="control", json_body={})

    assert len(calls(mock_cloud, "POST")) == 1


async def test_post_with_retry_true_is_retried(
    mock_cloud: aioresponses, transport: Transport, sleeps: Any
) -> None:
    mock_cloud.post(URL_, status=503, payload={})
    mock_cloud.post(URL_, payload={"ok": 3})

    reply = await transport.request("POST", PATH, family="history", json_body={"a": 1}, retry=True)

    assert reply.data == {"ok": 3}
    posts = calls(mock_cloud, "POST")
    assert len(posts) == 2
    assert [call.kwargs["json"] for call in posts] == [{"a": 1}, {"a": 1}]
    assert len(sleeps.delays) == 1


async def test_get_with_retry_false_is_not_retried(
    mock_cloud: aioresponses, transport: Transport
) -> None:
    mock_cloud.get(URL_, status=503, payload={}, repeat=True)

    with pytest.raises(ServiceUnavailableError):
        await transport.request("GET", PATH, family="status", retry=False)

    assert len(calls(mock_cloud, "GET")) == 1


# --- backoff policy --------------------------------------------------------------------------


def test_backoff_grows_exponentially_until_the_cap() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=30.0, jitter=0.25)
    assert [policy.delay(n, 0.0) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_backoff_jitter_stays_within_bounds() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=20.0, jitter=0.25)
    rng = random.Random(1234)
    for attempt in range(1, 12):
        raw = min(20.0, 0.5 * 2 ** (attempt - 1))
        samples = [policy.delay(attempt, rng.random()) for _ in range(200)]
        assert all(raw <= delay < raw * 1.25 for delay in samples)
        assert max(samples) - min(samples) > raw * 0.1  # jitter actually varies the delay
    assert policy.delay(3, 0.999999) == pytest.approx(2.0 * 1.25, rel=1e-5)


# --- request counter -------------------------------------------------------------------------


def test_request_counter_totals_and_last_hour() -> None:
    now = [0.0]
    counter = RequestCounter(clock=lambda: now[0])
    counter.record("status")
    counter.record("status")
    now[0] = 1800.0
    counter.record("summary")
    now[0] = 3000.0
    counter.record("status")

    assert counter.totals() == {"status": 3, "summary": 1}
    assert counter.last_hour() == {"status": 3, "summary": 1}

    now[0] = 3600.5  # the first two are now more than an hour old
    assert counter.last_hour() == {"status": 1, "summary": 1}
    now[0] = 5400.5
    assert counter.last_hour() == {"status": 1}
    now[0] = 10_000.0
    assert counter.last_hour() == {}
    assert counter.totals() == {"status": 3, "summary": 1}


async def test_transport_counts_requests_per_family(
    mock_cloud: aioresponses, transport: Transport
) -> None:
    mock_cloud.get(URL_, payload={}, repeat=True)
    mock_cloud.post(BASE + "/login/login.json", payload={})

    await transport.request("GET", PATH, family="status")
    await transport.request("GET", PATH, family="status")
    await transport.request("POST", "/login/login.json", family="auth", authenticated=False)

    assert transport.counter.totals() == {"status": 2, "auth": 1}
    assert transport.counter.last_hour() == {"status": 2, "auth": 1}


# --- Retry-After parsing ---------------------------------------------------------------------

NOW = datetime(2015, 10, 21, 7, 27, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-5", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 60.0),
        ("Wed, 21 Oct 2015 07:20:00 GMT", 0.0),
        ("garbage", None),
        ("Wed, 99 Foo 2015", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected
