"""The one HTTP layer every Enlighten call goes through.

It owns what is the same for every endpoint: the session and its cookies, the headers the web
app sends, per-call timeouts, mapping statuses and malformed replies to typed errors, bounded
retries for reads, and counting requests per endpoint family against the account's budget.
It knows nothing about logins or endpoints; `auth` fills :class:`SessionState` and the client
chooses paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie
from typing import Any, Literal

import aiohttp

from optimizer.enlighten.errors import (
    BadRequestError,
    BudgetHeldError,
    CloudTimeoutError,
    CloudUnreachableError,
    ConfigError,
    ConflictError,
    ConnectionNotEstablishedError,
    EnlightenError,
    EnlightenHTTPStatusError,
    ForbiddenError,
    GatewayNotReportingError,
    LiveStreamNotSupportedError,
    LoginWallError,
    MethodNotAllowedError,
    NotAcceptableError,
    NotFoundError,
    ParseError,
    RateLimitedError,
    ServiceUnavailableError,
    UnauthorizedError,
    UnknownSiteError,
    UnsupportedEnvoyError,
)
from optimizer.enlighten.headers import (
    BROWSER_USER_AGENT,
    DEFAULT_BASE_URL,
    SEARCH_SITES_PATH,
    HeaderProfile,
    header_profile,
    site_in_path,
)
from optimizer.enlighten.ratelimit import AccountLimiter
from optimizer.logsafe import redact, register_secret

_LOGGER = logging.getLogger(__name__)

ACCEPT = "application/json, text/javascript, */*; q=0.01"
SESSION_COOKIE = "_enlighten_4_session"
XSRF_COOKIE = "XSRF-TOKEN"
# The web app's version, which it appends to its referer (`?v=`) once the cookie is set.
APP_VERSION_COOKIE = "appVersion"
# Reads in flight to the Enlighten host at once (2026 reference sections 0 and 10: observed safe).
MAX_READS_IN_FLIGHT = 2
# How long an idle connection is kept for the next request. aiohttp's default (15 s) is shorter
# than the service's 30 s poll, so every tick opened a new TCP and TLS connection to the cloud;
# 55 s keeps one across ticks while staying under the idle timeouts servers commonly close at
# (60 s, 75 s), so a request is not sent on a connection the server is just closing. The
# references say nothing of the cloud's own; a longer poll opens one connection per tick.
KEEPALIVE_S = 55.0


@dataclass
class SessionState:
    """What makes requests authenticated; `auth` fills it, the transport reads it.

    ``generation`` grows with every new login so that concurrent callers that all saw a 401
    can tell whether someone else has already logged in again.
    """

    cookies: dict[str, str] = field(default_factory=dict)
    session_id: str | None = None
    manager_token: str | None = None
    token_expires_at: float | None = None
    # The Entrez token (2026 reference section 6): the preferred bearer for session history and
    # the EVSE timeseries; ``auth`` fills it after a login when Entrez answers.
    entrez_token: str | None = None
    entrez_expires_at: float | None = None
    generation: int = 0

    def auth_token(self) -> str | None:
        """The value of the ``e-auth-token`` header: the session id, else the session cookie."""
        return self.session_id or self.cookies.get(SESSION_COOKIE)

    def control_bearer(self) -> str | None:
        """Bearer for control, scheduler and charger config: manager JWT first, Entrez second."""
        return self.manager_token or self.entrez_token


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter, by attempts and by elapsed time."""

    attempts: int = 4
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    max_elapsed_s: float = 90.0
    jitter: float = 0.25

    def delay(self, attempt: int, rand: float) -> float:
        """Delay before retry number ``attempt`` (1-based); ``rand`` in [0, 1)."""
        raw = min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))
        return raw * (1 + self.jitter * rand)


class RequestCounter:
    """Counts requests per endpoint family, in total and over the last hour.

    The field notes put the account budget at about 600 requests per hour; later issues report
    these figures in the status line and in `evopt log stats`.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._totals: Counter[str] = Counter()
        self._recent: deque[tuple[float, str]] = deque()
        self._hour: Counter[str] = Counter()  # the families in _recent, kept as they change

    def record(self, family: str) -> None:
        self._totals[family] += 1
        self._recent.append((self._clock(), family))
        self._hour[family] += 1

    def totals(self) -> dict[str, int]:
        return dict(self._totals)

    def last_hour(self) -> dict[str, int]:
        """Asked every tick: counts are kept up to date rather than recounted."""
        horizon = self._clock() - 3600
        while self._recent and self._recent[0][0] < horizon:
            _, family = self._recent.popleft()
            self._hour[family] -= 1
        return {family: n for family, n in self._hour.items() if n > 0}


@dataclass(frozen=True)
class Reply:
    """A successful (2xx) reply, body already decoded."""

    status: int
    data: Any
    headers: Mapping[str, str]


@dataclass(frozen=True)
class RawReply:
    """Any reply, undecoded: for callers that read refusals from the body themselves."""

    status: int
    text: str
    headers: Mapping[str, str]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header given as seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _error_fields(body: Any) -> tuple[str | None, str | None]:
    """(message, code) from the several error envelopes the cloud uses.

    The 2026 envelope (``{"meta", "data": null, "error": {"displayMessage", "code": "400",
    "errorMessageCode"}}``) echoes the HTTP status in ``error.code``: the code that says what
    happened is ``errorMessageCode``, so it is read first, and ``displayMessage`` is the text
    the cloud shows its users.
    """
    if not isinstance(body, dict):
        return None, None
    message = body.get("message") or body.get("status_message") or body.get("msg")
    code = body.get("code") or body.get("errorCode")
    error = body.get("error")
    if isinstance(error, dict):
        message = (
            message
            or error.get("displayMessage")
            or error.get("message")
            or error.get("errorMessage")
        )
        code = code or error.get("errorMessageCode") or error.get("code") or error.get("errorCode")
    elif isinstance(error, str) and error:
        message = message or error
    details = body.get("details")
    if isinstance(details, dict):
        code = code or details.get("code")
    return (str(message) if message else None), (str(code) if code else None)


# Status -> (error type, what it means), spec section 7. 429 and other 5xx are handled apart.
_STATUS_ERRORS: dict[int, tuple[type[EnlightenHTTPStatusError], str]] = {
    400: (BadRequestError, "request rejected"),
    401: (UnauthorizedError, "the Enlighten session is not valid"),
    403: (ForbiddenError, "access denied"),
    404: (NotFoundError, "not found"),
    405: (MethodNotAllowedError, "method not allowed"),
    406: (NotAcceptableError, "headers refused (406 Not Acceptable)"),
    409: (ConflictError, "charger not ready"),
    422: (ConflictError, "charger not ready"),
    466: (UnsupportedEnvoyError, "IQ Gateway unsupported or offline"),
    468: (UnknownSiteError, "site not found on this account"),
    472: (LiveStreamNotSupportedError, "live stream not supported for this site"),
    473: (GatewayNotReportingError, "IQ Gateway not reporting"),
    552: (ConnectionNotEstablishedError, "cloud could not reach the charger"),
}


def error_for_status(
    status: int,
    *,
    url: str,
    body: Any = None,
    retry_after: str | None = None,
) -> EnlightenHTTPStatusError:
    """Map one HTTP error status (spec section 7) onto the typed error the caller can act on."""
    message, code = _error_fields(body)
    # The cloud's own words go into log lines, the decision log (`decisions.error`) and the
    # commands' output: a reply that echoes the request must not carry its session there.
    said = f": {redact(message)}" if message else ""
    where = f"HTTP {status} from {url}{said}"
    if status == 429:
        return RateLimitedError(
            f"rate limited ({where})",
            status=status,
            url=url,
            code=code,
            retry_after=parse_retry_after(retry_after),
        )
    kind, meaning = _STATUS_ERRORS.get(status, (EnlightenHTTPStatusError, "unexpected reply"))
    if status not in _STATUS_ERRORS and status >= 500:
        kind, meaning = ServiceUnavailableError, "Enlighten cloud error"
    return kind(f"{meaning} ({where})", status=status, url=url, code=code)


def with_headers(headers: dict[str, str], extra: Mapping[str, str | None] | None) -> dict[str, str]:
    """``headers`` with a route's own on top; a None value removes that header."""
    merged = dict(headers)
    for name, value in (extra or {}).items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def _looks_like_html(content_type: str, text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return "html" in content_type or head.startswith(("<!doctype", "<html"))


# Replies that mean the request never reached the service behind the gateway: rate limited,
# bad gateway, unavailable, gateway timeout, and Enphase's SERVICE_UNREACHABLE.
_NOT_APPLIED_STATUSES = frozenset({429, 502, 503, 504, 550, 551})

RetryMode = Literal["never", "transient", "unapplied"]


def is_retryable(err: EnlightenError, mode: RetryMode) -> bool:
    """Whether ``err`` may be retried under ``mode``.

    ``transient`` (reads): rate limits, 5xx, timeouts, connection errors. ``unapplied``
    (writes): only failures that prove the request did not take effect, so a write is never
    sent twice blindly: a 500, a 552 (queued) or a timeout may have changed the charger.
    """
    if mode == "never" or isinstance(err, BudgetHeldError):
        # Held by the budget: nothing was sent, and asking again at once is refused again.
        return False
    if mode == "unapplied":
        if isinstance(err, CloudUnreachableError):
            return not err.request_sent
        return isinstance(err, EnlightenHTTPStatusError) and err.status in _NOT_APPLIED_STATUSES
    if isinstance(err, RateLimitedError | ServiceUnavailableError | CloudUnreachableError):
        return True
    return isinstance(err, EnlightenHTTPStatusError) and err.status >= 500


class Transport:
    """Sends requests with the Enlighten web app's headers and maps every failure to a type.

    The session may be injected (tests, the service sharing one pool); a session we create is
    ours to close. Cookies live in :class:`SessionState`, not in aiohttp's jar, because they
    are persisted across runs and because aiohttp's default jar refuses cookies from IP hosts
    such as the 127.0.0.1 fake cloud.
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        session: aiohttp.ClientSession | None = None,
        state: SessionState | None = None,
        timeout_s: float = 20.0,
        retry: RetryPolicy | None = None,
        counter: RequestCounter | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        limiter: AccountLimiter | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"enlighten.base_url must start with http:// or https://, got {base_url!r}"
            )
        self.base_url = base_url.rstrip("/")
        self.state = state or SessionState()
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.counter = counter or RequestCounter()
        self._session = session
        self._owns_session = session is None
        self.sleep = sleep
        self._monotonic = monotonic
        self._rand = rand
        self._reads: asyncio.Semaphore | None = None
        # The account's budget, shared with every other client of the account in the process
        # (`ratelimit.account_limiter`); None meters nothing (one-off tools, unit tests).
        self.limiter = limiter

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _client_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(),
                connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_S),
            )
            # aiohttp resends an "idempotent" request (GET, PUT, DELETE) once, silently, when a
            # kept-alive connection drops mid-request. A PUT start/stop resent that way is a
            # write sent twice blindly; our own retry loop decides what is safe to resend.
            # There is no public switch (aiohttp 3.14), hence the private attribute.
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
            self._owns_session = True
        return self._session

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def profile(self, method: str, path: str) -> HeaderProfile:
        """The web app's Accept/Referer pair for this route (2026 reference section 0)."""
        if path.startswith(("http://", "https://")):
            path = "/" + path.split("/", 3)[-1] if path.count("/") >= 3 else "/"
        return header_profile(
            method,
            path,
            site_in_path(path),
            root=self.base_url,
            app_version=self.state.cookies.get(APP_VERSION_COOKIE),
        )

    def headers(
        self, *, authenticated: bool, method: str = "GET", path: str = "/"
    ) -> dict[str, str]:
        """The headers the Enlighten web app sends on this route (2026 reference sections 0, 6)."""
        profile = self.profile(method, path)
        headers = {
            "User-Agent": BROWSER_USER_AGENT,
            "Accept": profile.accept,
            "Referer": profile.referer,
        }
        if profile.xhr:
            headers["X-Requested-With"] = "XMLHttpRequest"
        else:
            headers["Origin"] = self.base_url
        cookies = self.state.cookies
        if cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
        if XSRF_COOKIE in cookies:
            headers["X-CSRF-Token"] = cookies[XSRF_COOKIE]
        if authenticated:
            token = self.state.auth_token()
            bearer = (
                self.state.control_bearer()
                if profile.name == "ev_json"
                else self.state.manager_token
            )
            if path.startswith(SEARCH_SITES_PATH) and self.state.entrez_token:
                token = bearer = self.state.entrez_token
            if token:
                headers["e-auth-token"] = token
            if bearer:
                headers["Authorization"] = f"Bearer {bearer}"
        return headers

    def _reads_gate(self, method: str, url: str) -> asyncio.Semaphore | None:
        """The semaphore a GET to the Enlighten host waits on; writes and other hosts pass."""
        if method.upper() != "GET" or not url.startswith(self.base_url):
            return None
        if self._reads is None:
            self._reads = asyncio.Semaphore(MAX_READS_IN_FLIGHT)
        return self._reads

    def _absorb_cookies(self, cookies: SimpleCookie) -> None:
        for name, morsel in cookies.items():
            expired = morsel["max-age"] in ("0", "-1") or not morsel.value
            if expired:
                self.state.cookies.pop(name, None)
            else:
                self.state.cookies[name] = morsel.value
                register_secret(morsel.value)

    async def request(
        self,
        method: str,
        path: str,
        *,
        family: str,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        authenticated: bool = True,
        retry: bool | RetryMode | None = None,
        headers: Mapping[str, str | None] | None = None,
    ) -> Reply:
        """Send one request; retry it only if it is a read (or ``retry=True``) that may be.

        Writes are never retried here: a write that timed out may have taken effect, and only
        the caller knows whether sending it again is safe.
        """
        mode: RetryMode
        if retry is None:
            mode = "transient" if method.upper() == "GET" else "never"
        elif isinstance(retry, bool):
            mode = "transient" if retry else "never"
        else:
            mode = retry
        policy = self.retry
        started = self._monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._send_once(
                    method,
                    path,
                    family=family,
                    json_body=json_body,
                    form=form,
                    params=params,
                    authenticated=authenticated,
                    extra_headers=headers,
                )
            except EnlightenError as err:
                if not is_retryable(err, mode) or attempt >= policy.attempts:
                    raise
                delay = policy.delay(attempt, self._rand())
                if isinstance(err, RateLimitedError) and err.retry_after is not None:
                    delay = max(delay, err.retry_after)
                elapsed = self._monotonic() - started
                if elapsed + delay > policy.max_elapsed_s:
                    raise
                _LOGGER.info(
                    "%s %s failed (%s); retry %d/%d in %.1f s",
                    method,
                    path,
                    type(err).__name__,
                    attempt,
                    policy.attempts - 1,
                    delay,
                )
                await self.sleep(delay)

    async def _send_once(
        self,
        method: str,
        path: str,
        *,
        family: str,
        json_body: Any,
        form: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        authenticated: bool,
        extra_headers: Mapping[str, str | None] | None = None,
    ) -> Reply:
        raw_reply = await self.exchange(
            method,
            path,
            family=family,
            json_body=json_body,
            form=form,
            params=params,
            authenticated=authenticated,
            extra_headers=extra_headers,
        )
        status, text, headers = raw_reply.status, raw_reply.text, raw_reply.headers
        content_type = headers.get("Content-Type", "").lower()
        if status == 406:
            raise self.not_acceptable(method, path)
        if 300 <= status < 400 and "login" in headers.get("Location", ""):
            raise LoginWallError(f"{path} redirected to the Enlighten login page")
        body = self._decode(text, content_type, path=path, status=status)
        if status >= 400 or status < 200:
            raise error_for_status(
                status, url=path, body=body, retry_after=headers.get("Retry-After")
            )
        return Reply(status=status, data=body, headers=headers)

    async def exchange(
        self,
        method: str,
        path: str,
        *,
        family: str,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        authenticated: bool = True,
        extra_headers: Mapping[str, str | None] | None = None,
    ) -> RawReply:
        """One request, its reply undecoded and whatever its status; only network failures
        raise. Login needs this: its refusals (lock-out text, 406, HTML) are read from the
        body at any status."""
        url = self.url(path)
        session = self._client_session()
        gate = self._reads_gate(method, url)
        try:
            async with contextlib.AsyncExitStack() as stack:
                if gate is not None:
                    await stack.enter_async_context(gate)
                # Metered after the gate, when the request really goes: a token taken and
                # then spent waiting for a read slot would let sends bunch past the budget.
                # A request the budget holds back (BudgetHeldError) is neither sent nor counted.
                if self.limiter is not None:
                    await self.limiter.acquire(what=f"{method} {path}")
                self.counter.record(family)
                # Built once through the gate, so a read that waited carries the session of
                # a re-login that happened meanwhile, not the one it started with.
                headers = self.headers(authenticated=authenticated, method=method, path=path)
                if not url.startswith(self.base_url):  # Entrez: the browser UA, no session
                    for name in ("Cookie", "X-CSRF-Token", "e-auth-token", "Authorization"):
                        headers.pop(name, None)
                    headers.pop("Referer", None)
                headers = with_headers(headers, extra_headers)
                async with asyncio.timeout(self.timeout_s):
                    async with session.request(
                        method,
                        url,
                        headers=headers,
                        json=json_body,
                        data=dict(form) if form is not None else None,
                        params=params,
                        allow_redirects=False,
                    ) as resp:
                        self._absorb_cookies(resp.cookies)
                        raw = await resp.read()
                        status = resp.status
                        reply_headers = dict(resp.headers.items())
        except TimeoutError as err:
            raise CloudTimeoutError(f"no reply from {path} within {self.timeout_s:g} s") from err
        except aiohttp.ClientError as err:
            raise CloudUnreachableError(
                f"cannot reach {self.base_url} ({type(err).__name__}: {err})",
                # A connection that never opened carried no request.
                request_sent=not isinstance(err, aiohttp.ClientConnectorError),
            ) from err
        _LOGGER.debug("%s %s -> %s", method, path, status)
        self._honour_retry_after(status, reply_headers)
        text = raw.decode("utf-8", errors="replace")
        return RawReply(status=status, text=text, headers=reply_headers)

    def _honour_retry_after(self, status: int, headers: Mapping[str, str]) -> None:
        """A 429 (or a 5xx) with ``Retry-After`` holds every request of the account.

        The cloud throttles the account, so the next request of *another* charger or client
        would only earn another 429 (2026 reference section 10: Retry-After is the minimum).
        """
        if self.limiter is None or not (status == 429 or status >= 500):
            return
        wait = parse_retry_after(headers.get("Retry-After"))
        if wait is not None:
            self.limiter.retry_after(wait)
            _LOGGER.info("Enlighten asked to wait %.0f s; holding this account's requests", wait)

    def not_acceptable(self, method: str, path: str) -> NotAcceptableError:
        """A 406 that says what was refused and with which headers, so it can be fixed."""
        profile = self.profile(method, path)
        bare = path.split("?", 1)[0]
        return NotAcceptableError(
            f"Enlighten refused {method.upper()} {bare} with 406 Not Acceptable (sent the "
            f"'{profile.name}' header profile: browser User-Agent, Accept {profile.accept!r}, "
            f"Referer {profile.referer})",
            status=406,
            url=bare,
        )

    @staticmethod
    def _decode(text: str, content_type: str, *, path: str, status: int) -> Any:
        """JSON body, or None for an empty one; HTML and broken JSON become typed errors."""
        if not text.strip():
            return None
        if _looks_like_html(content_type, text):
            if status < 400:
                raise LoginWallError(
                    f"{path} answered with an HTML page instead of data: the session has ended"
                )
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            if status >= 400:
                return None
            raise ParseError(
                f"{path} sent a reply that is not valid JSON (truncated?): {err.msg} "
                f"at character {err.pos}",
                url=path,
            ) from err
        except (ValueError, RecursionError) as err:  # a number past int's digit limit; nesting
            if status >= 400:
                return None
            raise ParseError(f"{path} sent a reply Python cannot decode: {err}", url=path) from err
