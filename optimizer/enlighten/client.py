"""The shared async Enlighten client: every read the engine, service and CLI make.

One instance per process, shared by everything, so that one login, one connection pool and one
request counter serve all chargers. Reads that have fallback endpoints try them in a fixed
order and remember the first that answers, so the next call goes straight to it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp

from optimizer.enlighten.auth import Authenticator, LoginOutcome, SessionStore
from optimizer.enlighten.errors import (
    BadRequestError,
    LoginWallError,
    MethodNotAllowedError,
    NotFoundError,
    ParseError,
    UnauthorizedError,
)
from optimizer.enlighten.models import (
    ChargeMode,
    ChargerSummary,
    ChargingSession,
    LifetimeEnergy,
    LiveStream,
    Schedules,
    Site,
    SiteStatus,
    battery_for_self_consumption,
    parse_charge_mode,
    parse_lifetime_energy,
    parse_live_stream,
    parse_schedules,
    parse_session_history_page,
    parse_sites,
    parse_status,
    parse_summary,
    parse_summary_list,
)
from optimizer.enlighten.transport import (
    DEFAULT_BASE_URL,
    Reply,
    RequestCounter,
    RetryPolicy,
    Transport,
)

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")

EVSE = "/service/evse_controller"
SCHEDULER = "/service/evse_scheduler/api/v1/iqevc/charging-mode"
HISTORY_PAGE_SIZE = 20
# A guard against a cloud that keeps saying hasMore: 500 pages is 10,000 sessions.
MAX_HISTORY_PAGES = 500

SITE_DISCOVERY_PATHS = (f"{EVSE}/sites", "/api/v1/sites", "/sites.json")

# Errors after which the next candidate endpoint is worth trying: the path or verb does not
# exist on this deployment, or it answered with a shape we cannot use. Auth, rate limits and
# 5xx are not: another path would fail the same way.
FALLBACK_ERRORS = (NotFoundError, MethodNotAllowedError, BadRequestError, ParseError)


@dataclass(frozen=True)
class Candidate:
    """One way of making a call: the first that works is remembered."""

    name: str
    method: str
    path: str
    json_body: Any = None


class EnlightenClient:
    """Typed reads of the Enlighten cloud for one account.

    Accepts an injected ``aiohttp.ClientSession`` (closed only if we created it) and works as
    an async context manager. ``password_provider`` is called only when a login is needed, so
    the password never lives longer than one login.
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        email: str | None = None,
        password_provider: Callable[[], str | None] | None = None,
        state_dir: Path | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = 20.0,
        retry: RetryPolicy | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.transport = transport or Transport(
            base_url=base_url, session=session, timeout_s=timeout_s, retry=retry
        )
        self.auth = Authenticator(
            self.transport,
            email=email,
            password_provider=password_provider,
            store=SessionStore(state_dir) if state_dir is not None else None,
        )
        self._preferred: dict[str, str] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.transport.close()

    @property
    def counter(self) -> RequestCounter:
        return self.transport.counter

    # --- auth ----------------------------------------------------------------------------------

    async def login(self, password: str | None = None) -> LoginOutcome:
        return await self.auth.login(password)

    async def submit_otp(self, code: str) -> None:
        await self.auth.submit_otp(code)

    async def resend_otp(self) -> None:
        await self.auth.resend_otp()

    # --- plumbing ------------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        family: str,
        json_body: Any = None,
        retry: bool | None = None,
    ) -> Reply:
        """One authenticated request; on a 401 or a login wall, log in again once and retry."""
        await self.auth.ensure()
        generation = self.transport.state.generation
        try:
            return await self.transport.request(
                method, path, family=family, json_body=json_body, retry=retry
            )
        except (UnauthorizedError, LoginWallError):
            _LOGGER.info("Enlighten session rejected; logging in again")
            await self.auth.reauthenticate(generation, reason="the Enlighten session expired")
            return await self.transport.request(
                method, path, family=family, json_body=json_body, retry=retry
            )

    async def _first_working(
        self,
        key: str,
        candidates: Sequence[Candidate],
        *,
        family: str,
        parse: Callable[[Any], T],
    ) -> T:
        """Try candidates in order (the remembered one first) and remember the winner."""
        preferred = self._preferred.get(key)
        ordered = sorted(candidates, key=lambda c: c.name != preferred)
        last_error: Exception | None = None
        for candidate in ordered:
            try:
                reply = await self._call(
                    candidate.method, candidate.path, family=family, json_body=candidate.json_body
                )
                result = parse(reply.data)
            except FALLBACK_ERRORS as err:
                _LOGGER.debug("%s via %s failed: %s", key, candidate.name, type(err).__name__)
                last_error = err
                continue
            if preferred != candidate.name:
                _LOGGER.debug("%s: using %s", key, candidate.name)
                self._preferred[key] = candidate.name
            return result
        assert last_error is not None  # noqa: S101 - candidates is never empty
        raise last_error

    # --- reads ---------------------------------------------------------------------------------

    async def sites(self) -> list[Site]:
        """Sites this account can see (spec 1: discovery with two fallbacks)."""
        candidates = [Candidate(path, "GET", path) for path in SITE_DISCOVERY_PATHS]
        return await self._first_working("sites", candidates, family="sites", parse=parse_sites)

    async def status(self, site_id: int) -> SiteStatus:
        """Normalized status of every charger (plural path, singular fallback)."""
        candidates = [
            Candidate("plural", "GET", f"{EVSE}/{site_id}/ev_chargers/status"),
            Candidate("singular", "GET", f"{EVSE}/{site_id}/ev_charger/status"),
        ]
        return await self._first_working(
            f"status:{site_id}", candidates, family="status", parse=parse_status
        )

    async def summaries(self, site_id: int) -> list[ChargerSummary]:
        path = f"{EVSE}/api/v2/{site_id}/ev_chargers/summary?filter_retired=true"
        reply = await self._call("GET", path, family="summary")
        return parse_summary_list(reply.data)

    async def summary(self, site_id: int, sn: str) -> ChargerSummary:
        reply = await self._call(
            "GET", f"{EVSE}/api/v2/{site_id}/ev_chargers/{sn}/summary", family="summary"
        )
        return parse_summary(reply.data)

    async def start_live_stream(self, site_id: int) -> LiveStream:
        reply = await self._call(
            "GET", f"{EVSE}/{site_id}/ev_chargers/start_live_stream", family="live_stream"
        )
        return parse_live_stream(reply.data)

    async def stop_live_stream(self, site_id: int) -> LiveStream:
        reply = await self._call(
            "GET", f"{EVSE}/{site_id}/ev_chargers/stop_live_stream", family="live_stream"
        )
        return parse_live_stream(reply.data)

    async def session_history(
        self,
        site_id: int,
        sn: str,
        *,
        start: date,
        end: date,
        page_size: int = HISTORY_PAGE_SIZE,
    ) -> list[ChargingSession]:
        """Every session between two local dates (inclusive), following ``hasMore``."""
        path = f"/service/enho_historical_events_ms/{site_id}/sessions/{sn}/history"
        sessions: list[ChargingSession] = []
        offset = 0
        for _ in range(MAX_HISTORY_PAGES):
            body = {
                "startDate": start.strftime("%d-%m-%Y"),
                "endDate": end.strftime("%d-%m-%Y"),
                "offset": offset,
                "limit": page_size,
            }
            # The POST only reads, so retrying it on 429/5xx is safe.
            reply = await self._call("POST", path, family="history", json_body=body, retry=True)
            page = parse_session_history_page(reply.data)
            sessions.extend(page.sessions)
            if not page.has_more or not page.sessions:
                return sessions
            offset += len(page.sessions)
        raise ParseError(
            f"session history for {sn} still had more pages after {MAX_HISTORY_PAGES}", url=path
        )

    async def lifetime_energy(self, site_id: int, *, timezone: str) -> LifetimeEnergy:
        reply = await self._call(
            "GET", f"/pv/systems/{site_id}/lifetime_energy", family="lifetime_energy"
        )
        return parse_lifetime_energy(reply.data, timezone=timezone)

    async def charge_mode(self, site_id: int, sn: str) -> ChargeMode | None:
        reply = await self._call(
            "GET", f"{SCHEDULER}/{site_id}/{sn}/preference", family="scheduler"
        )
        return parse_charge_mode(reply.data)

    async def green_battery_setting(self, site_id: int, sn: str) -> bool | None:
        """The green-mode "use battery for EV charging" toggle; None where not reported."""
        reply = await self._call(
            "GET", f"{SCHEDULER}/GREEN_CHARGING/{site_id}/{sn}/settings", family="scheduler"
        )
        return battery_for_self_consumption(reply.data)

    async def schedules(self, site_id: int, sn: str) -> Schedules:
        reply = await self._call(
            "GET", f"{SCHEDULER}/SCHEDULED_CHARGING/{site_id}/{sn}/schedules", family="scheduler"
        )
        return parse_schedules(reply.data)
