"""The shared async Enlighten client: every read the engine, service and CLI make.

One instance per process, shared by everything, so that one login, one connection pool and one
request counter serve all chargers. Reads that have fallback endpoints try them in a fixed
order and remember the first that answers, so the next call goes straight to it.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp

from optimizer.enlighten.auth import Authenticator, LoginOutcome, SessionStore
from optimizer.enlighten.control import (
    START_WITH_LEVEL,
    START_WITHOUT_LEVEL,
    STOP,
    TRIGGER_MESSAGES,
    Body,
    CommandResult,
    Outcome,
    Variant,
    probe,
)
from optimizer.enlighten.errors import (
    BadRequestError,
    CloudUnreachableError,
    ConfigError,
    ConnectionNotEstablishedError,
    EnlightenError,
    EnlightenHTTPStatusError,
    IncompleteCommandError,
    LoginWallError,
    MethodNotAllowedError,
    NotFoundError,
    NotSupportedError,
    ParseError,
    UnauthorizedError,
    WriteUncertainError,
)
from optimizer.enlighten.levels import LevelMemory
from optimizer.enlighten.models import (
    USE_BATTERY_SETTING,
    BatteryStatus,
    ChargeMode,
    ChargerStatus,
    ChargerSummary,
    ChargingSession,
    LatestPower,
    LifetimeEnergy,
    LiveStream,
    Schedules,
    Site,
    SiteStatus,
    battery_for_self_consumption,
    parse_battery_status,
    parse_charge_mode,
    parse_latest_power,
    parse_lifetime_energy,
    parse_live_stream,
    parse_schedules,
    parse_session_history_page,
    parse_sites,
    parse_status,
    parse_summary,
    parse_summary_list,
)
from optimizer.enlighten.schedule_edit import (
    AddSlot,
    Edit,
    apply_edit,
    describe_edit,
    new_slot_id,
    patch_body,
)
from optimizer.enlighten.transport import (
    DEFAULT_BASE_URL,
    Reply,
    RequestCounter,
    RetryMode,
    RetryPolicy,
    Transport,
)
from optimizer.enlighten.variants import VariantMemory
from optimizer.limits import Limits

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
        site_max_amps: int | None = None,
        settle_s: float = 30.0,
        direct_amps: bool = False,
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
        self.variants = VariantMemory(state_dir)
        # The last amps commanded per charger: the status no longer reports the level.
        self.levels = LevelMemory(state_dir)
        self.site_max_amps = site_max_amps
        self.settle_s = settle_s
        self.direct_amps = direct_amps
        self._summaries: dict[tuple[int, str], ChargerSummary] = {}

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
        retry: bool | RetryMode | None = None,
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

    async def _read(self, path: str, *, family: str, parse: Callable[[Any], T]) -> T:
        """GET ``path`` (re-logging in once on a 401) and parse the reply into its model."""
        reply = await self._call("GET", path, family=family)
        return parse(reply.data)

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
        return await self._read(path, family="summary", parse=parse_summary_list)

    async def summary(self, site_id: int, sn: str) -> ChargerSummary:
        return await self._read(
            f"{EVSE}/api/v2/{site_id}/ev_chargers/{sn}/summary",
            family="summary",
            parse=parse_summary,
        )

    async def start_live_stream(self, site_id: int) -> LiveStream:
        return await self._read(
            f"{EVSE}/{site_id}/ev_chargers/start_live_stream",
            family="live_stream",
            parse=parse_live_stream,
        )

    async def stop_live_stream(self, site_id: int) -> LiveStream:
        return await self._read(
            f"{EVSE}/{site_id}/ev_chargers/stop_live_stream",
            family="live_stream",
            parse=parse_live_stream,
        )

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
        entries = await self.session_history_raw(
            site_id, sn, start=start, end=end, page_size=page_size
        )
        merged = {"data": {"result": entries, "hasMore": False}}
        return list(parse_session_history_page(merged).sessions)

    async def session_history_raw(
        self,
        site_id: int,
        sn: str,
        *,
        start: date,
        end: date,
        page_size: int = HISTORY_PAGE_SIZE,
    ) -> list[Any]:
        """The raw ``data.result`` entries of every page between two local dates (inclusive).

        Each page is checked as it arrives (a malformed one is a ParseError); pages are
        requested one after the other, never in parallel.
        """
        path = f"/service/enho_historical_events_ms/{site_id}/sessions/{sn}/history"
        entries: list[Any] = []
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
            entries.extend(reply.data["data"]["result"])
            if not page.has_more or not page.sessions:
                return entries
            offset += len(page.sessions)
        raise ParseError(
            f"session history for {sn} still had more pages after {MAX_HISTORY_PAGES}", url=path
        )

    async def lifetime_energy(self, site_id: int, *, timezone: str) -> LifetimeEnergy:
        raw = await self.lifetime_energy_raw(site_id)
        return parse_lifetime_energy(raw, timezone=timezone)

    async def lifetime_energy_raw(self, site_id: int) -> Any:
        """The lifetime-energy reply as sent (for storing); see :meth:`lifetime_energy`."""
        reply = await self._call(
            "GET", f"/pv/systems/{site_id}/lifetime_energy", family="lifetime_energy"
        )
        return reply.data

    async def charge_mode(self, site_id: int, sn: str) -> ChargeMode | None:
        return await self._read(
            f"{SCHEDULER}/{site_id}/{sn}/preference", family="scheduler", parse=parse_charge_mode
        )

    async def green_battery_setting(self, site_id: int, sn: str) -> bool | None:
        """The green-mode "use battery for EV charging" toggle; None where not reported."""
        return await self._read(
            f"{SCHEDULER}/GREEN_CHARGING/{site_id}/{sn}/settings",
            family="scheduler",
            parse=battery_for_self_consumption,
        )

    async def schedules(self, site_id: int, sn: str) -> Schedules:
        return await self._read(
            f"{SCHEDULER}/SCHEDULED_CHARGING/{site_id}/{sn}/schedules",
            family="scheduler",
            parse=parse_schedules,
        )

    async def latest_power(self, site_id: int) -> LatestPower:
        """The site's latest power sample (field notes, "More site data"); optional source."""
        return await self._read(
            f"/app-api/{site_id}/get_latest_power", family="latest_power", parse=parse_latest_power
        )

    async def battery_status(self, site_id: int) -> BatteryStatus:
        """The home battery's state of charge and energy; a site without one may answer 404."""
        return await self._read(
            f"/pv/settings/{site_id}/battery_status.json",
            family="battery",
            parse=parse_battery_status,
        )

    # --- writes --------------------------------------------------------------------------------

    async def _write(self, method: str, path: str, *, family: str, json_body: Any) -> Reply:
        """Send a write: resent only when it provably did not take effect (transport docs).

        A failure that leaves open whether the charger acted (timeout, 500, 552 "queued") is
        reported as such and never resent: the next status read tells.
        """
        what = path.rsplit("/", 1)[-1]
        try:
            return await self._call(
                method, path, family=family, json_body=json_body, retry="unapplied"
            )
        except CloudUnreachableError as err:
            if not err.request_sent:
                raise
            raise WriteUncertainError(
                f"{what} may or may not have taken effect ({err.message})"
            ) from err
        except EnlightenHTTPStatusError as err:
            if err.status not in (500, 552):
                raise
            cause = f"{err.hint}; " if isinstance(err, ConnectionNotEstablishedError) else ""
            raise WriteUncertainError(
                f"{what} may or may not have taken effect ({err.message})",
                hint=f"{cause}{WriteUncertainError.hint}",
            ) from err

    async def charger_summary(self, site_id: int, sn: str) -> ChargerSummary:
        """The per-charger summary, fetched once per client: limits and flags do not change."""
        cached = self._summaries.get((site_id, sn))
        if cached is None:
            cached = self._summaries[(site_id, sn)] = await self.summary(site_id, sn)
        return cached

    async def limits(self, site_id: int, sn: str) -> Limits:
        """Levels this charger accepts here (its chargeLevelDetails within the site limit)."""
        summary = await self.charger_summary(site_id, sn)
        return Limits.for_charger(summary, site_max_amps=self.site_max_amps)

    async def charger_status(self, site_id: int, sn: str) -> ChargerStatus:
        for charger in (await self.status(site_id)).chargers:
            if charger.sn == sn:
                return charger
        raise ConfigError(
            f"site {site_id} has no charger {sn}", hint="`evopt status` lists the chargers"
        )

    async def start_charging(
        self, site_id: int, sn: str, *, amps: int | None = None, green: bool | None = None
    ) -> CommandResult:
        """Start a session, at ``amps`` when given (checked first), with the spec's fallbacks.

        In GREEN mode the charger ignores any level, so none is sent (field notes); ``green``
        says whether it is, else the status is read to find out.
        """
        if green is None:
            green = (await self.charger_status(site_id, sn)).mode is ChargeMode.GREEN_CHARGING
        level = None
        if amps is not None and not green:
            level = (await self.limits(site_id, sn)).validate(amps)
        key = f"{site_id}:{sn}:start_charging"
        with_level = self.variants.get(f"{key}:level")
        hint = next((v for v in START_WITH_LEVEL if v.name == with_level), None)
        variant, answer, attempts = await probe(
            command="start_charging",
            key=f"{key}:level" if level is not None else f"{key}:no_level",
            variants=START_WITH_LEVEL if level is not None else START_WITHOUT_LEVEL,
            send=lambda v: self._write(
                v.method,
                v.path(site_id, sn, "start_charging"),
                family="control",
                json_body=v.payload(level),
            ),
            memory=self.variants,
            hint=hint,
        )
        if isinstance(answer, tuple):
            outcome, detail = answer
            return CommandResult("start_charging", outcome, detail, variant.name, level, attempts)
        if level is not None:
            self.levels.remember(site_id, sn, level)
            detail = f"charging started at {level} A"
        elif green:
            ignored = f" (the {amps} A asked for is ignored in GREEN)" if amps is not None else ""
            detail = f"charging started in GREEN mode, following solar{ignored}"
        else:
            detail = "charging started at the charger's last level"
        return CommandResult(
            "start_charging", Outcome.ACCEPTED, detail, variant.name, level, attempts
        )

    async def stop_charging(self, site_id: int, sn: str) -> CommandResult:
        variant, answer, attempts = await probe(
            command="stop_charging",
            key=f"{site_id}:{sn}:stop_charging",
            variants=STOP,
            send=lambda v: self._write(
                v.method, v.path(site_id, sn, "stop_charging"), family="control", json_body=None
            ),
            memory=self.variants,
        )
        if isinstance(answer, tuple):
            outcome, detail = answer
            return CommandResult("stop_charging", outcome, detail, variant.name, None, attempts)
        return CommandResult(
            "stop_charging", Outcome.ACCEPTED, "charging stopped", variant.name, None, attempts
        )

    async def set_amps(
        self,
        site_id: int,
        sn: str,
        amps: int,
        *,
        settle_s: float | None = None,
        direct: bool | None = None,
    ) -> CommandResult:
        """Charge at ``amps``: start a session, or change the level of the running one.

        In MANUAL mode a new level only takes effect when the session restarts (field notes),
        so an active session is stopped, given ``settle_s`` (default 30 s), and started again
        at the new level, as one operation whose result lists both steps. ``direct`` (for
        chargers that take a level live) sends the start at once instead.
        """
        limits = await self.limits(site_id, sn)
        level = limits.validate(amps)
        charger = await self.charger_status(site_id, sn)
        if charger.mode is ChargeMode.GREEN_CHARGING:
            raise NotSupportedError(
                "the charger is in GREEN mode, which ignores the amps level",
                hint="`evopt mode set MANUAL_CHARGING` first to charge at a fixed level",
            )
        if not charger.session_active or not charger.charging:
            return await self.start_charging(site_id, sn, amps=level, green=False)
        was = charger.session.charge_level_amps
        if was is None:  # null since 2026: the level we last commanded is the one in effect
            was = self.levels.get(site_id, sn)
        if was == level:
            return CommandResult(
                "set_amps", Outcome.UNCHANGED, f"already charging at {level} A", level_amps=level
            )
        if direct if direct is not None else self.direct_amps:
            result = await self.start_charging(site_id, sn, amps=level, green=False)
            return CommandResult(
                "set_amps",
                result.outcome,
                f"level changed from {was} A to {level} A without a restart"
                if result.outcome.changed
                else result.detail,
                result.variant,
                level,
                result.attempts,
                (result,),
            )
        stop = await self.stop_charging(site_id, sn)
        if stop.outcome not in (Outcome.ACCEPTED, Outcome.NOT_ACTIVE):
            return CommandResult("set_amps", stop.outcome, stop.detail, steps=(stop,))
        wait = self.settle_s if settle_s is None else settle_s
        _LOGGER.info("waiting %.0f s for the charger to settle before restarting", wait)
        await self.transport.sleep(wait)
        try:
            start = await self.start_charging(site_id, sn, amps=level, green=False)
        except EnlightenError as err:
            raise IncompleteCommandError(
                f"charging stopped to change the level to {level} A, but the restart failed: "
                f"{err}; the charger is now stopped",
                hint="run `evopt charge start` to resume charging",
            ) from err
        if not start.outcome.changed:
            raise IncompleteCommandError(
                f"charging stopped to change the level to {level} A, but the restart was "
                f"refused ({start.detail}); the charger is now stopped",
                hint="run `evopt charge start` to resume charging",
            )
        return CommandResult(
            "set_amps",
            Outcome.ACCEPTED,
            f"level changed from {was} A to {level} A: stopped, waited {wait:g} s, restarted",
            start.variant,
            level,
            stop.attempts + start.attempts,
            (stop, start),
        )

    async def trigger_message(self, site_id: int, sn: str, message: str) -> CommandResult:
        """Ask the charger for one OCPP message (only the allowed set; checked before sending)."""
        wanted = next((m for m in TRIGGER_MESSAGES if m.lower() == message.lower()), None)
        if wanted is None:
            raise NotSupportedError(
                f"'{message}' is not a message a charger can be asked for",
                hint="use one of " + ", ".join(TRIGGER_MESSAGES),
            )
        variant, answer, attempts = await probe(
            command="trigger_message",
            key=f"{site_id}:{sn}:trigger_message",
            # The spec shows the singular path; the plural one is the fallback.
            variants=(Variant("POST", True, Body.NONE), Variant("POST", False, Body.NONE)),
            send=lambda v: self._write(
                "POST",
                v.path(site_id, sn, "trigger_message"),
                family="control",
                json_body={"requestedMessage": wanted},
            ),
            memory=self.variants,
        )
        if isinstance(answer, tuple):
            outcome, detail = answer
            return CommandResult("trigger_message", outcome, detail, variant.name, None, attempts)
        data = answer.data if isinstance(answer.data, dict) else {}
        details = data.get("details") if isinstance(data.get("details"), dict) else {}
        tracking = details.get("trackingId") if isinstance(details, dict) else None
        suffix = f" (tracking id {tracking})" if tracking else ""
        return CommandResult(
            "trigger_message",
            Outcome.ACCEPTED,
            f"charger asked to send {wanted}{suffix}",
            variant.name,
            None,
            attempts,
        )

    async def set_charge_mode(self, site_id: int, sn: str, mode: ChargeMode) -> CommandResult:
        """Switch the scheduler's charge mode; no request when it is already in that mode."""
        current = await self.charge_mode(site_id, sn)
        if current is mode:
            return CommandResult("set_mode", Outcome.UNCHANGED, f"already in {mode.value}")
        await self._write(
            "PUT",
            f"{SCHEDULER}/{site_id}/{sn}/preference",
            family="scheduler",
            json_body={"mode": mode.value},
        )
        was = current.value if current else "unknown"
        return CommandResult("set_mode", Outcome.ACCEPTED, f"charge mode {was} -> {mode.value}")

    async def set_green_battery(self, site_id: int, sn: str, *, enabled: bool) -> CommandResult:
        """Green mode's "use battery for EV charging", only where the charger supports it."""
        summary = await self.charger_summary(site_id, sn)
        if summary.supports_use_battery is False:
            raise NotSupportedError(
                f"charger {sn} does not support using the home battery in green mode",
                hint="Enlighten reports supportsUseBattery=false for it; nothing was sent",
            )
        state = "on" if enabled else "off"
        if await self.green_battery_setting(site_id, sn) is enabled:
            return CommandResult("set_battery", Outcome.UNCHANGED, f"battery use already {state}")
        setting = {"chargerSettingName": USE_BATTERY_SETTING, "enabled": enabled, "value": None}
        await self._write(
            "PUT",
            f"{SCHEDULER}/GREEN_CHARGING/{site_id}/{sn}/settings",
            family="scheduler",
            json_body={"chargerSettingList": [{**setting, "loader": False}]},
        )
        return CommandResult("set_battery", Outcome.ACCEPTED, f"battery use in green mode {state}")

    async def edit_schedule(self, site_id: int, sn: str, edit: Edit) -> CommandResult:
        """Change one schedule slot: read the list, edit it, PATCH the full list back.

        The cloud deletes any slot a PATCH leaves out, so the body is always the complete
        current list with exactly one slot changed (schedule_edit guarantees it).
        """
        level = getattr(edit, "charging_level", None)
        if level is not None:
            (await self.limits(site_id, sn)).validate(level)
        elif isinstance(edit, AddSlot):
            # A slot needs a level to charge at; the Enlighten app offers the maximum (the
            # highest level the charger accepts here: within the site limit, on its steps).
            edit = dataclasses.replace(
                edit, charging_level=(await self.limits(site_id, sn)).highest()
            )
        current = await self.schedules(site_id, sn)
        new_id = new_slot_id(site_id, sn, uuid.uuid4()) if isinstance(edit, AddSlot) else None
        slots = apply_edit(current.slots, edit, new_id=new_id)
        if tuple(slots) == tuple(current.slots):
            return CommandResult(
                "patch_schedules", Outcome.UNCHANGED, describe_edit(current.slots, slots)
            )
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        await self._write(
            "PATCH",
            f"{SCHEDULER}/SCHEDULED_CHARGING/{site_id}/{sn}/schedules",
            family="scheduler",
            json_body=patch_body(slots, server_timestamp=stamp),
        )
        return CommandResult(
            "patch_schedules", Outcome.ACCEPTED, describe_edit(current.slots, slots)
        )
