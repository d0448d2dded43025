"""The aiohttp application: routes, auth checks, fault injection and the request log.

Request flow: the log middleware records the request; the fault middleware may answer (or
delay, drop, expire) instead of the real handler; the route wrapper then takes the cloud's
lock, brings the model up to the fake clock, checks auth at the level the route declares
(none, session, or session plus bearer) and calls a synchronous handler that builds the reply
from ``payloads``. The write endpoints (control, scheduler writes) live in ``writes`` and
register through the same ``Routes.add``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, quote

from aiohttp import web

from optimizer.fakecloud import capability_routes, history_api, payloads
from optimizer.fakecloud.admin import ADMIN_PREFIX, register_admin
from optimizer.fakecloud.auth import AuthSession, PendingLogin
from optimizer.fakecloud.authroutes import AuthRoutes, empty_body_reply, login_variant, set_cookies
from optimizer.fakecloud.browser import header_refusal, not_acceptable
from optimizer.fakecloud.budget import retry_after_header
from optimizer.fakecloud.cloud import FakeCloud
from optimizer.fakecloud.faults import TRUNCATED_JSON, FaultRule
from optimizer.fakecloud.history import query_sessions
from optimizer.fakecloud.model import Charger, SiteModel
from optimizer.fakecloud.outage import outage_middleware
from optimizer.fakecloud.preference import preference_2026
from optimizer.fakecloud.requestlog import LoggedRequest
from optimizer.fakecloud.responses import (
    LOGIN_PAGE,
    error_reply,
    json_reply,
    login_wall,
    not_authorized,
)
from optimizer.fakecloud.writes import WriteRoutes

AuthLevel = Literal["none", "session", "bearer"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CLOUD_KEY = web.AppKey("fakecloud", FakeCloud)
CLOSING_KEY = web.AppKey("fakecloud_closing", asyncio.Event)
SESSION_COOKIE = "_enlighten_4_session"


@dataclass
class Body:
    """The request body, parsed once and shared by the log and the handler."""

    json: Any = None
    form: dict[str, str] | None = None
    text: str | None = None


_BODY = web.RequestKey("fakecloud_body", Body)
_ENTRY = web.RequestKey("fakecloud_entry", LoggedRequest)
_DROPPED = web.RequestKey("fakecloud_dropped", bool)


async def read_body(request: web.Request) -> Body:
    """Parse the body once per request: JSON, form or text by content type (and by sniffing)."""
    cached: Body | None = request.get(_BODY)
    if cached is not None:
        return cached
    raw = await request.read()
    body = Body()
    if raw:
        text = raw.decode("utf-8", "replace")
        ctype = request.content_type
        if ctype == "application/x-www-form-urlencoded":
            body.form = dict(parse_qsl(text, keep_blank_values=True))
        else:
            try:
                body.json = json.loads(text)
            except ValueError:
                body.text = text
    request[_BODY] = body
    return body


@dataclass
class Ctx:
    """What a synchronous handler gets: the request, its parsed body and the fake-clock time."""

    request: web.Request
    cloud: FakeCloud
    now: float
    body: Body

    @property
    def form(self) -> dict[str, str]:
        return self.body.form or {}

    def match(self, name: str) -> str:
        return self.request.match_info[name]


SyncHandler = Callable[[Ctx], web.StreamResponse]


# --- middlewares -----------------------------------------------------------------------------


def _peer(request: web.Request) -> str | None:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return None if peer is None else f"{peer[0]}:{peer[1]}"


@web.middleware
async def log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(ADMIN_PREFIX):
        return await handler(request)
    cloud = request.app[CLOUD_KEY]
    body = await read_body(request)
    entry = LoggedRequest(
        time=cloud.clock.now().isoformat(),
        wall=time.time(),
        method=request.method,
        path=request.path,
        query=dict(request.query),
        headers=dict(request.headers),
        json=body.json,
        form=body.form,
        text=body.text,
        peer=_peer(request),
    )
    request[_ENTRY] = entry
    cloud.log.append(entry)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        entry.status = exc.status
        raise
    entry.status = None if request.get(_DROPPED) else response.status
    return response


@web.middleware
async def browser_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """2026: 406 to a non-browser User-Agent or a header pair the web app would not send; and
    the gauge of GETs in flight that shows the client keeps to two."""
    if request.path.startswith(ADMIN_PREFIX):
        return await handler(request)
    cloud = request.app[CLOUD_KEY]
    if cloud.profile.require_browser_headers:
        reason = header_refusal(request.method, request.path, dict(request.headers))
        if reason is not None:
            return not_acceptable(reason)
    return await cloud.reads.around(request, handler)


def request_account(cloud: FakeCloud, request: web.Request, now: float) -> str | None:
    """The e-mail of the account a request spends budget for: its live session's, or for a
    login the e-mail it names; None when it carries neither (nothing to count against)."""
    del now  # the cloud's clock decides validity
    return cloud.account_of(
        request.headers.get("e-auth-token"), request.cookies.get(SESSION_COOKIE)
    )


@web.middleware
async def budget_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """429 with ``Retry-After`` past the account's hourly budget (``budget.py``)."""
    if request.path.startswith(ADMIN_PREFIX):
        return await handler(request)
    cloud = request.app[CLOUD_KEY]
    per_hour = cloud.profile.account_budget_per_hour
    if per_hour <= 0:
        return await handler(request)
    with cloud.lock:
        now = cloud.clock.timestamp()
        account = request_account(cloud, request, now)
        wait = None if account is None else cloud.budget.take(account, now, per_hour)
    if wait is None:
        return await handler(request)
    return json_reply(
        {"message": "Too Many Requests", "status": "error"},
        status=429,
        headers={"Retry-After": retry_after_header(wait)},
    )


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(ADMIN_PREFIX):
        return await handler(request)
    cloud = request.app[CLOUD_KEY]
    rule = cloud.faults.take(request.method, request.path)
    if rule is None:
        return await handler(request)
    entry = request.get(_ENTRY)
    if entry is not None:
        entry.fault = rule.kind
        entry.fault_after = rule.after
    if not rule.after:
        return await apply_fault(request, lambda: handler(request), rule)
    # ``after``: the handler runs (and changes state) first; the fault replaces its reply.
    handled = await handler(request)

    async def already_handled() -> web.StreamResponse:
        return handled

    return await apply_fault(request, already_handled, rule)


async def apply_fault(
    request: web.Request, proceed: Callable[[], Awaitable[web.StreamResponse]], rule: FaultRule
) -> web.StreamResponse:
    """Answer as ``rule`` says; ``proceed`` gives the real reply (running the handler unless
    it already ran) for the kinds that end in a normal answer."""
    cloud = request.app[CLOUD_KEY]
    if rule.kind == "status":
        headers = dict(rule.headers)
        retry_after = rule.retry_after_header()
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        return json_reply(rule.error_body(), status=rule.status or 500, headers=headers)
    if rule.kind == "html_login":
        page = rule.body if isinstance(rule.body, str) else LOGIN_PAGE
        return login_wall(page, headers=rule.headers)
    if rule.kind == "malformed_json":
        text = rule.body if isinstance(rule.body, str) else TRUNCATED_JSON
        return web.Response(text=text, content_type="application/json", headers=rule.headers)
    if rule.kind == "timeout":
        closing = request.app[CLOSING_KEY]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), timeout=rule.delay_s)
        if request.transport is None or request.transport.is_closing():
            # The client gave up: nobody reads the reply, and a command that never reached
            # the handler must not take effect behind the client's back.
            request[_DROPPED] = True
            return web.Response(status=504)
        return await proceed()
    if rule.kind == "disconnect":
        request[_DROPPED] = True
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=204)
    # expire_session
    cloud.expire_sessions()
    return await proceed()


@web.middleware
async def json_errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown paths and verbs answer JSON like the real services, not aiohttp's text."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return error_reply(404)
    except web.HTTPMethodNotAllowed:
        return error_reply(405)


# --- routes ----------------------------------------------------------------------------------


class Routes:
    """The cloud's endpoints. ``add`` wraps a synchronous handler with lock, clock and auth."""

    def __init__(self, app: web.Application, cloud: FakeCloud) -> None:
        self.app = app
        self.cloud = cloud

    def add(self, method: str, path: str, fn: SyncHandler, *, auth: AuthLevel) -> None:
        cloud = self.cloud

        async def handler(request: web.Request) -> web.StreamResponse:
            body = await read_body(request)
            with cloud.lock:
                now = cloud.now()
                if auth != "none":
                    denied = check_auth(cloud, request, auth, now)
                    if denied is not None:
                        return denied
                ctx = Ctx(request, cloud, now, body)
                model = requested_site(cloud, request, now)
                if model is None:
                    return fn(ctx)
                if isinstance(model, web.Response):
                    return model
                with cloud.site_scope(model):
                    return fn(ctx)

        self.app.router.add_route(method, path, handler)

    # --- lookups -------------------------------------------------------------------------------

    def site_ok(self, ctx: Ctx) -> bool:
        return ctx.match("site") == str(self.cloud.model.site_id)

    def find_charger(self, ctx: Ctx) -> Charger | web.Response:
        """The charger of a ``{site}/.../{sn}`` path, or the error reply for a bad site or sn."""
        if not self.site_ok(ctx):
            return invalid_site()
        sn = ctx.match("sn")
        if not self.cloud.model.has_charger(sn):
            return error_reply(404, "Charger not found", code="EVSE_NOT_FOUND", serial=sn)
        return self.cloud.model.charger(sn)

    # --- registration --------------------------------------------------------------------------

    def register(self) -> None:
        evse = "/service/evse_controller"
        sched = "/service/evse_scheduler/api/v1/iqevc/charging-mode"
        add = self.add
        add("POST", "/login/login.json", self.login, auth="none")
        AuthRoutes(self.cloud).register(self.add)
        add("POST", "/app-api/validate_login_otp", self.validate_otp, auth="none")
        add("POST", "/app-api/generate_mfa_login_otp", self.resend_otp, auth="none")

        add("GET", f"{evse}/sites", self.sites_evse_controller, auth="session")
        add("GET", "/api/v1/sites", self.sites_api_v1, auth="session")
        add("GET", "/sites.json", self.sites_json, auth="session")

        add("GET", f"{evse}/{{site}}/ev_chargers/status", self.status_plural, auth="session")
        add("GET", f"{evse}/{{site}}/ev_charger/status", self.status_singular, auth="session")
        add("GET", f"{evse}/api/v2/{{site}}/ev_chargers/summary", self.summary, auth="session")
        add(
            "GET",
            f"{evse}/api/v2/{{site}}/ev_chargers/{{sn}}/summary",
            self.summary_one,
            auth="session",
        )
        live = f"{evse}/{{site}}/ev_chargers"
        add("GET", f"{live}/start_live_stream", self.live_start, auth="session")
        add("GET", f"{live}/stop_live_stream", self.live_stop, auth="session")

        add(
            "POST",
            "/service/enho_historical_events_ms/{site}/sessions/{sn}/history",
            self.session_history,
            auth="session",
        )
        add(
            "GET",
            "/service/enho_historical_events_ms/{site}/filter_criteria",
            self.history_filter_criteria,
            auth="session",
        )
        add(
            "GET",
            "/service/evse_management/api/v1/config/feature-flags",
            self.feature_flags,
            auth="session",
        )
        config = f"{evse}/api/v1/{{site}}/ev_chargers/{{sn}}/ev_charger_config"
        add("POST", config, self.charger_config, auth="session")
        add("PUT", config, self.write_charger_config, auth="session")
        add("GET", "/pv/systems/{site}/lifetime_energy", self.lifetime_energy, auth="session")
        add("GET", "/pv/systems/{site}/today", self.today, auth="session")
        add("GET", "/app-api/{site}/get_latest_power", self.latest_power, auth="session")
        add("GET", "/pv/settings/{site}/battery_status.json", self.battery, auth="session")

        add("GET", f"{sched}/{{site}}/{{sn}}/preference", self.preference, auth="bearer")
        add(
            "GET",
            f"{sched}/GREEN_CHARGING/{{site}}/{{sn}}/settings",
            self.green_settings,
            auth="bearer",
        )
        add(
            "GET",
            f"{sched}/SCHEDULED_CHARGING/{{site}}/{{sn}}/schedules",
            self.schedules,
            auth="bearer",
        )
        WriteRoutes(self.cloud, self.find_charger).register(self.add)

    # --- auth endpoints ------------------------------------------------------------------------

    def login(self, ctx: Ctx) -> web.StreamResponse:
        cloud = self.cloud
        refused = login_variant(cloud)
        if refused is not None:
            return refused
        form = ctx.form
        outcome = cloud.auth.login(
            form.get("user[email]", ""), form.get("user[password]", ""), ctx.now
        )
        failure_status = cloud.profile.login_failure_status
        if outcome.kind == "invalid":
            return json_reply({"success": False, "isBlocked": False}, status=failure_status)
        if outcome.kind == "blocked":
            return json_reply({"success": False, "isBlocked": True}, status=failure_status)
        if outcome.session is not None and cloud.profile.login_empty_body:
            return empty_body_reply(outcome.session)
        if outcome.session is not None:
            return authenticated_reply(cloud, outcome.session)
        assert outcome.pending is not None  # noqa: S101 (mfa outcome always carries it)
        body: dict[str, Any] = {"success": True, "isBlocked": False}
        if cloud.profile.mfa_reply == "requires_mfa":
            body["requires_mfa"] = True
        response = json_reply(body)
        set_pending_cookies(response, outcome.pending)
        return response

    def validate_otp(self, ctx: Ctx) -> web.StreamResponse:
        cookies = ctx.request.cookies
        outcome = self.cloud.auth.validate_otp(
            pre_session_id=cookies.get(SESSION_COOKIE),
            nonce=cookies.get("login_otp_nonce"),
            csrf_header=ctx.request.headers.get("X-CSRF-Token"),
            csrf_cookie=cookies.get("XSRF-TOKEN"),
            email_b64=ctx.form.get("email", ""),
            otp_b64=ctx.form.get("otp", ""),
            now=ctx.now,
        )
        if outcome.kind == "forbidden":
            return error_reply(403, "Forbidden", reason=outcome.reason)
        if outcome.kind == "invalid":
            return json_reply({"isValid": False, "isBlocked": False})
        if outcome.kind == "blocked":
            return json_reply({"isValid": False, "isBlocked": True})
        assert outcome.session is not None  # noqa: S101
        response = authenticated_reply(self.cloud, outcome.session, isValidMobileNumber=True)
        response.del_cookie("login_otp_nonce", path="/")
        return response

    def resend_otp(self, ctx: Ctx) -> web.StreamResponse:
        auth = self.cloud.auth
        outcome = auth.resend_otp(
            pre_session_id=ctx.request.cookies.get(SESSION_COOKIE), now=ctx.now
        )
        if outcome.kind == "forbidden":
            return error_reply(403, "Forbidden", reason="no pre-MFA session cookie")
        if outcome.kind == "blocked":
            return json_reply({"success": False, "isBlocked": True})
        pending = outcome.pending
        assert pending is not None  # noqa: S101
        if outcome.kind == "throttled":
            wait = auth.resend_interval_s - (ctx.now - (pending.last_resend or ctx.now))
            return json_reply(
                {"success": False, "isBlocked": False, "message": "Too Many Requests"},
                status=429,
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        response = json_reply({"success": True, "isBlocked": False})
        response.set_cookie("login_otp_nonce", pending.nonce, path="/", httponly=True)
        return response

    # --- discovery -----------------------------------------------------------------------------

    def sites_evse_controller(self, ctx: Ctx) -> web.StreamResponse:
        if "evse_controller" in self.cloud.profile.disabled_discovery:
            return error_reply(404)
        return json_reply(payloads.sites_evse_controller(account_sites(ctx)))

    def sites_api_v1(self, ctx: Ctx) -> web.StreamResponse:
        if "api_v1" in self.cloud.profile.disabled_discovery:
            return error_reply(404)
        return json_reply(payloads.sites_api_v1(account_sites(ctx)))

    def sites_json(self, ctx: Ctx) -> web.StreamResponse:
        if "sites_json" in self.cloud.profile.disabled_discovery:
            return error_reply(404)
        return json_reply(payloads.sites_json(account_sites(ctx)))

    # --- status, summary, live stream ----------------------------------------------------------

    def _status(self, ctx: Ctx) -> web.StreamResponse:
        if not self.site_ok(ctx):
            return invalid_site()
        model, profile = self.cloud.model, self.cloud.profile
        glitches = {c.sn: g for c in model.chargers if (g := model.take_glitch(c)) is not None}
        if profile.status_shape == "legacy":
            return json_reply(payloads.status_legacy(model, ctx.now, profile, glitches))
        return json_reply(payloads.status_nested(model, ctx.now, profile, glitches))

    def status_plural(self, ctx: Ctx) -> web.StreamResponse:
        if self.cloud.profile.status_shape == "singular_only":
            return error_reply(404)
        return self._status(ctx)

    def status_singular(self, ctx: Ctx) -> web.StreamResponse:
        profile = self.cloud.profile
        if not profile.singular_status and profile.status_shape != "singular_only":
            return error_reply(404)  # retired early 2026 (reference section 5)
        return self._status(ctx)

    def summary(self, ctx: Ctx) -> web.StreamResponse:
        if not self.site_ok(ctx):
            return invalid_site()
        return json_reply(payloads.summary_list(self.cloud.model, ctx.now))

    def summary_one(self, ctx: Ctx) -> web.StreamResponse:
        charger = self.find_charger(ctx)
        if isinstance(charger, web.Response):
            return charger
        return json_reply(payloads.summary_one(self.cloud.model, charger, ctx.now))

    def live_start(self, ctx: Ctx) -> web.StreamResponse:
        if not self.site_ok(ctx):
            return invalid_site()
        model = self.cloud.model
        model.live_stream_until = ctx.now + payloads.LIVE_STREAM_S
        return json_reply(payloads.live_stream_start(model, self.cloud.profile, ctx.now))

    def live_stop(self, ctx: Ctx) -> web.StreamResponse:
        if not self.site_ok(ctx):
            return invalid_site()
        self.cloud.model.live_stream_until = None
        return json_reply(payloads.live_stream_stop(self.cloud.profile, ctx.now))

    # --- history and energy --------------------------------------------------------------------

    def session_history(self, ctx: Ctx) -> web.StreamResponse:
        charger = self.find_charger(ctx)
        if isinstance(charger, web.Response):
            return charger
        cloud = self.cloud
        if cloud.history_outage.active(ctx.now):
            return cloud.history_outage.reply()
        if cloud.profile.history_body == "nested":
            refused = history_api.refuse_headers(ctx.request.headers, cloud.auth, ctx.now)
            if refused is not None:
                return refused
            query = history_api.parse_nested(ctx.body.json)
        else:
            query = history_api.parse_flat(ctx.body.json)
        if isinstance(query, web.Response):
            return query
        model = cloud.model
        sessions = model.sessions.get(charger.sn, [])
        page, has_more = query_sessions(
            sessions,
            tz=model.tz,
            start_date=query.start,
            end_date=query.end,
            offset=query.offset,
            limit=query.limit,
        )
        start, end = query.start_text, query.end_text
        if not start:
            first = min((s.local_date(model.tz) for s in sessions), default=None)
            today = datetime.fromtimestamp(ctx.now, model.tz).date()
            start = payloads.format_cloud_date(first or today)
        if not end:
            end = payloads.format_cloud_date(datetime.fromtimestamp(ctx.now, model.tz).date())
        return json_reply(
            payloads.session_history(
                charger,
                page,
                has_more=has_more,
                start_date=str(start),
                end_date=str(end),
                offset=query.offset,
                limit=query.limit,
                now=ctx.now,
            )
        )

    def history_filter_criteria(self, ctx: Ctx) -> web.StreamResponse:
        if not self.site_ok(ctx):
            return invalid_site()
        cloud = self.cloud
        if cloud.history_outage.active(ctx.now):
            return cloud.history_outage.reply()
        return json_reply(history_api.filter_criteria(cloud.model, ctx.now))

    # --- capabilities (2026 reference section 8) ------------------------------------------------

    def feature_flags(self, ctx: Ctx) -> web.StreamResponse:
        if not self.cloud.profile.capability_routes:
            return error_reply(404)
        if ctx.request.query.get("site_id") != str(self.cloud.model.site_id):
            return error_reply(400, "BAD_REQUEST: site_id missing or unknown")
        return json_reply(capability_routes.feature_flags(self.cloud.model, ctx.now))

    def _config_charger(self, ctx: Ctx) -> Charger | web.Response:
        if not self.cloud.profile.capability_routes:
            return error_reply(404)
        return self.find_charger(ctx)

    def charger_config(self, ctx: Ctx) -> web.StreamResponse:
        charger = self._config_charger(ctx)
        if isinstance(charger, web.Response):
            return charger
        keys = capability_routes.requested_keys(ctx.body.json)
        if isinstance(keys, str):
            return error_reply(400, keys)
        return json_reply(capability_routes.charger_config(charger, keys, ctx.now))

    def write_charger_config(self, ctx: Ctx) -> web.StreamResponse:
        charger = self._config_charger(ctx)
        if isinstance(charger, web.Response):
            return charger
        problem = capability_routes.write_config(charger, ctx.body.json, ctx.now)
        if problem is not None:
            return error_reply(400, problem)
        keys = [str(row["key"]) for row in ctx.body.json]
        return json_reply(capability_routes.charger_config(charger, keys, ctx.now))

    def lifetime_energy(self, ctx: Ctx) -> web.StreamResponse:
        if not self.site_ok(ctx):
            return invalid_site()
        return json_reply(payloads.lifetime_energy(self.cloud.model, self.cloud.profile, ctx.now))

    def today(self, ctx: Ctx) -> web.StreamResponse:
        if not self.site_ok(ctx):
            return invalid_site()
        return json_reply(payloads.today(self.cloud.model, ctx.now))

    def latest_power(self, ctx: Ctx) -> web.StreamResponse:
        if not self.site_ok(ctx):
            return invalid_site()
        return json_reply(payloads.latest_power(self.cloud.model, ctx.now))

    def battery(self, ctx: Ctx) -> web.StreamResponse:
        if not self.site_ok(ctx):
            return invalid_site()
        return json_reply(payloads.battery_status(self.cloud.model))

    # --- scheduler -----------------------------------------------------------------------------

    def preference(self, ctx: Ctx) -> web.StreamResponse:
        charger = self.find_charger(ctx)
        if isinstance(charger, web.Response):
            return charger
        if self.cloud.profile.scheduler_2026:
            return json_reply(preference_2026(self.cloud.model, charger, ctx.now))
        return json_reply(payloads.preference(charger))

    def green_settings(self, ctx: Ctx) -> web.StreamResponse:
        charger = self.find_charger(ctx)
        if isinstance(charger, web.Response):
            return charger
        return json_reply(payloads.green_settings(charger, ctx.now))

    def schedules(self, ctx: Ctx) -> web.StreamResponse:
        charger = self.find_charger(ctx)
        if isinstance(charger, web.Response):
            return charger
        return json_reply(payloads.schedules(charger, ctx.now))


def invalid_site() -> web.Response:
    """The reference's 468: the site does not exist or is not mapped to the account."""
    return error_reply(468, "INVALID_SYSTEM_ID")


def requested_site(
    cloud: FakeCloud, request: web.Request, now: float
) -> SiteModel | web.Response | None:
    """The site a request names (path ``{site}`` or query ``site_id``) when its account owns
    it; 468 when it is another account's; None to leave the handler to the first site (its
    own checks answer an unknown id as before)."""
    key = request.match_info.get("site") or request.query.get("site_id")
    account = request_account(cloud, request, now)
    if not key or account is None or not cloud.sites.known(key):
        return None
    model = cloud.sites.owned(key, account)
    return model if model is not None else invalid_site()


def account_sites(ctx: Ctx) -> list[SiteModel]:
    """The sites discovery lists: the session's account's own (the route checked it)."""
    account = request_account(ctx.cloud, ctx.request, ctx.now)
    return ctx.cloud.sites.of(account) if account is not None else []


def check_auth(
    cloud: FakeCloud, request: web.Request, level: AuthLevel, now: float
) -> web.Response | None:
    """None when the request may proceed, else the refusal the real cloud would give.

    The session may come as the ``e-auth-token`` header or the session cookie; a pre-MFA
    session id is never enough. Bearer routes also need a live manager token.
    """
    candidates = [request.headers.get("e-auth-token"), request.cookies.get(SESSION_COOKIE)]
    if not any(cloud.auth.session_state(sid, now) == "valid" for sid in candidates if sid):
        return login_wall() if cloud.profile.login_wall else not_authorized()
    if level == "bearer":
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not cloud.auth.bearer_valid(token.strip(), now):
            return not_authorized()
    return None


def authenticated_reply(cloud: FakeCloud, session: AuthSession, **extra: Any) -> web.Response:
    body: dict[str, Any] = {
        "message": "success",
        "session_id": session.session_id,
        "manager_token": session.manager_token,
        "is_consumer": True,
        "system_id": str(cloud.auth.system_ids.get(session.email.lower(), cloud.model.site_id)),
        "redirect_url": "",
    }
    body.update(extra)
    response = json_reply(body)
    set_cookies(response, session, manager=False)
    return response


def set_pending_cookies(response: web.Response, pending: PendingLogin) -> None:
    response.set_cookie(SESSION_COOKIE, pending.session_id, path="/", httponly=True)
    response.set_cookie("login_otp_nonce", pending.nonce, path="/", httponly=True)
    response.set_cookie("XSRF-TOKEN", pending.xsrf_token, path="/")
    response.set_cookie("email", quote(pending.email, safe=""), path="/")


def build_app(cloud: FakeCloud) -> web.Application:
    """The fake cloud's application, admin routes included."""
    outage = outage_middleware(cloud.outage, cloud.clock.timestamp)
    app = web.Application(
        middlewares=[
            log_middleware,
            browser_middleware,
            budget_middleware,
            fault_middleware,
            outage,
            json_errors_middleware,
        ]
    )
    app[CLOUD_KEY] = cloud
    closing = asyncio.Event()
    app[CLOSING_KEY] = closing

    async def on_shutdown(_: web.Application) -> None:
        closing.set()  # release requests parked by ``timeout`` faults

    async def stamp_date(_: web.Request, response: web.StreamResponse) -> None:
        # The ``Date`` header is the server's clock; clients use it to read ``exp`` claims, so
        # it must be the fake clock, or a token minted at a fake 2025 looks long dead.
        response.headers["Date"] = format_datetime(cloud.clock.now(), usegmt=True)

    app.on_shutdown.append(on_shutdown)
    app.on_response_prepare.append(stamp_date)
    Routes(app, cloud).register()
    register_admin(app, cloud)
    return app
