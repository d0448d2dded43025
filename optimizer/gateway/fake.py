"""A fake IQ Gateway (Envoy) on 127.0.0.1, on the fake cloud's site model and clock.

It answers what pyenphase asks of a metered gateway on current firmware: ``/info`` (no auth),
``/auth/check_jwt`` with the owner's token (it sets a session cookie), ``/ivp/meters`` and their
readings, ``/production.json?details=1``, ``/api/v1/production`` and, with a battery, the
``/ivp/ensemble/...`` family; every other path is a 404, as on a gateway without that feature.
It speaks https with a self-signed certificate like the real one, so the tests run pyenphase's
real TLS path (no mock of the library).

Faults come from a :class:`~optimizer.fakecloud.faults.FaultPlan` like the fake cloud's
(``status``, ``timeout``, ``disconnect``), plus what only a gateway does: tokens that expire
(every authenticated path answers 401 until a new token is issued) and a firmware without
consumption meters. Admin routes under ``/__fake__/`` drive it from another process (the demo).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from optimizer.fakecloud.cloud import FakeCloud, GatewayIssuer
from optimizer.fakecloud.faults import FaultPlan, FaultRule
from optimizer.fakecloud.server import Serving, serve_in_thread
from optimizer.gateway import fakepayloads as payloads
from optimizer.gateway.tls import self_signed_context

__all__ = ["FakeGateway", "FakeGatewayServer", "run_gateway_in_thread"]

ADMIN_PREFIX = "/__fake__/"
OWNER_TOKEN_S = 365 * 86400.0  # an owner's token from Entrez is valid about a year
SHUTDOWN_TIMEOUT_S = 1.0
UNAUTHENTICATED = frozenset({"/info", "/auth/check_jwt"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
GATEWAY_KEY: web.AppKey[FakeGateway] = web.AppKey("gateway")


class FakeGateway:
    """One site's gateway. Keyword-only; the site is the cloud's first unless ``site_id``.

    ``consumption_meter`` False is a gateway whose consumption CT is absent or disabled
    (production only); ``battery`` adds one IQ Battery with the model's charge. ``recorded``
    (path -> reply, a fixture folder) replaces the model: those replies as they are, a 404 for
    any other path, tokens and faults as usual.
    """

    def __init__(
        self,
        cloud: FakeCloud,
        *,
        site_id: int | None = None,
        serial: str = "122302045041",
        firmware: str = "D8.2.4345",
        consumption_meter: bool = True,
        battery: bool = False,
        recorded: Mapping[str, Any] | None = None,
    ) -> None:
        self.cloud = cloud
        self.site_id = site_id if site_id is not None else cloud.model.site_id
        self.serial = serial
        self.firmware = firmware
        self.consumption_meter = consumption_meter
        self.battery = battery
        self.recorded = dict(recorded) if recorded is not None else None
        self.faults = FaultPlan()
        self.requests: Counter[str] = Counter()  # path -> requests answered (faults too)
        self._tokens: dict[str, float] = {}  # token -> expiry (fake epoch s)
        self._sessions: dict[str, str] = {}  # sessionId cookie -> token
        self._key = secrets.token_bytes(32)
        # Entrez (the fake cloud's ``POST /tokens`` with ``serial_num``) issues this gateway's
        # owner tokens to the account that owns its site, as the real one does.
        cloud.gateways[serial] = GatewayIssuer(site_id=self.site_id, issue_token=self.issue_token)

    @property
    def model(self) -> Any:
        return self.cloud.sites.models[self.site_id]

    # --- tokens --------------------------------------------------------------------------------

    def issue_token(self, lifetime_s: float = OWNER_TOKEN_S, *, user: str = "owner") -> str:
        """A JWT as Entrez issues it for this gateway (``exp``, ``enphaseUser``, ``aud``),
        signed with the fake's own key; valid until the fake clock passes ``exp``."""
        with self.cloud.lock:
            now = self.cloud.clock.timestamp()
            claims = {
                "aud": self.serial,
                "iss": "Entrez",
                "enphaseUser": user,
                "exp": int(now + lifetime_s),
                "iat": int(now),
                "jti": secrets.token_hex(8),
            }
            token = _jwt(claims, self._key)
            self._tokens[token] = now + lifetime_s
            return token

    def expire_tokens(self) -> None:
        """Every token and session stops working (a token past its year, or revoked)."""
        with self.cloud.lock:
            self._tokens.clear()
            self._sessions.clear()

    def _valid(self, token: str | None, now: float) -> bool:
        expiry = self._tokens.get(token or "")
        return expiry is not None and now < expiry

    def authorised(self, request: web.Request, now: float) -> bool:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else None
        if self._valid(token, now):
            return True
        session = request.cookies.get("sessionId")
        return session is not None and self._valid(self._sessions.get(session), now)

    def open_session(self, request: web.Request, now: float) -> str | None:
        """``/auth/check_jwt``: a session id for a valid Bearer token, else None."""
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else None
        if not self._valid(token, now):
            return None
        session = secrets.token_hex(16)
        self._sessions[session] = token or ""
        return session

    # --- replies -------------------------------------------------------------------------------

    def reply(self, path: str, now: float) -> Any:
        """The JSON (or XML text) for ``path`` at ``now``; None for a path this gateway lacks."""
        if self.recorded is not None:
            return self.recorded.get(path)
        model = self.model
        meter = self.consumption_meter
        if path == "/info":
            return payloads.info_xml(
                serial=self.serial, firmware=self.firmware, metered=True, now=now
            )
        if path == "/ivp/meters":
            return payloads.meters(consumption_meter=meter)
        if path == "/ivp/ensemble/inventory":
            return payloads.ensemble_inventory(model, battery=self.battery, now=now)
        if path == "/ivp/ensemble/secctrl" and self.battery:
            return payloads.ensemble_secctrl(model)
        flows = payloads.flows_at(model, now)
        if path == "/ivp/meters/readings":
            return payloads.meters_readings(flows, consumption_meter=meter)
        if path == "/production.json":
            return payloads.production_json(flows, consumption_meter=meter)
        if path == "/api/v1/production":
            return payloads.api_v1_production(flows)
        if path == "/ivp/ensemble/power" and self.battery:
            return payloads.ensemble_power(model, flows)
        return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(claims: dict[str, Any], key: bytes) -> str:
    header = _b64(json.dumps({"kid": "fake", "typ": "JWT", "alg": "HS256"}).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(key, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


# --- the HTTP side -------------------------------------------------------------------------------


async def _handle(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    path = request.path
    with gateway.cloud.lock:
        now = gateway.cloud.now()
        if path == "/auth/check_jwt":
            session = gateway.open_session(request, now)
            if session is None:
                return web.Response(status=401, text="<!DOCTYPE html><h2>Invalid token.</h2>")
            response = web.Response(text="<!DOCTYPE html><h2>Valid token.</h2>")
            response.set_cookie("sessionId", session, secure=True, httponly=True)
            return response
        if path not in UNAUTHENTICATED and not gateway.authorised(request, now):
            return web.json_response({"error": "Unauthorized", "code": 401}, status=401)
        body = gateway.reply(path, now)
    if body is None:
        return web.Response(status=404, text="Not Found")
    if isinstance(body, str):
        return web.Response(text=body, content_type="application/xml")
    return web.json_response(body)


@web.middleware
async def _faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request, then answer as the first matching fault rule says, if any."""
    if request.path.startswith(ADMIN_PREFIX):
        return await handler(request)
    gateway = request.app[GATEWAY_KEY]
    gateway.requests[request.path] += 1
    rule = gateway.faults.take(request.method, request.path)
    if rule is None:
        return await handler(request)
    if rule.kind == "status":
        return web.json_response(rule.error_body(), status=rule.status or 500)
    if rule.kind == "timeout":
        await asyncio.sleep(rule.delay_s)
        return await handler(request)
    if rule.kind == "disconnect":
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=204)
    raise web.HTTPBadRequest(text=f"fault kind {rule.kind} is the fake cloud's, not a gateway's")


def _admin_routes(gateway: FakeGateway) -> list[web.RouteDef]:
    """Drive the fake from another process: faults, tokens, meters (never faulted)."""

    async def add_faults(request: web.Request) -> web.StreamResponse:
        rules = await request.json()
        added = [gateway.faults.add(FaultRule.from_dict(r)) for r in _as_list(rules)]
        return web.json_response([rule.to_dict() for rule in added])

    async def clear_faults(_: web.Request) -> web.StreamResponse:
        gateway.faults.clear()
        return web.json_response({"ok": True})

    async def token(request: web.Request) -> web.StreamResponse:
        data = await request.json() if await request.read() else {}
        lifetime = float(data.get("lifetime_s", OWNER_TOKEN_S))
        return web.json_response({"token": gateway.issue_token(lifetime)})

    async def expire(_: web.Request) -> web.StreamResponse:
        gateway.expire_tokens()
        return web.json_response({"ok": True})

    async def meters(request: web.Request) -> web.StreamResponse:
        data = await request.json()
        with gateway.cloud.lock:
            gateway.consumption_meter = bool(data["consumption"])
        return web.json_response({"consumption": gateway.consumption_meter})

    return [
        web.post(ADMIN_PREFIX + "faults", add_faults),
        web.delete(ADMIN_PREFIX + "faults", clear_faults),
        web.post(ADMIN_PREFIX + "token", token),
        web.post(ADMIN_PREFIX + "expire_tokens", expire),
        web.post(ADMIN_PREFIX + "meters", meters),
    ]


def _as_list(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list) and all(isinstance(item, dict) for item in data):
        return data
    raise web.HTTPBadRequest(text="expected a fault rule object or a list of them")


def build_app(gateway: FakeGateway) -> web.Application:
    app = web.Application(middlewares=[_faults])
    app[GATEWAY_KEY] = gateway
    app.add_routes(_admin_routes(gateway))
    app.router.add_route("GET", "/{tail:.*}", _handle)
    return app


class FakeGatewayServer(Serving):
    """``async with FakeGatewayServer(gateway) as server: server.host`` (``127.0.0.1:port``,
    what the config's ``gateway.host`` takes). ``stop`` then ``start`` keeps the port, so a
    test can take the gateway away and bring it back."""

    def __init__(self, gateway: FakeGateway, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.gateway = gateway
        self.bind = host
        self.port: int | None = None
        self._requested_port = port
        self._runner: web.AppRunner | None = None

    @property
    def host(self) -> str:
        if self.port is None:
            raise RuntimeError("the fake gateway is not running")
        return f"{self.bind}:{self.port}"

    async def start(self) -> str:
        runner = web.AppRunner(
            build_app(self.gateway), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S
        )
        await runner.setup()
        port = self.port if self.port is not None else self._requested_port
        site = web.TCPSite(runner, self.bind, port, ssl_context=self_signed_context(self.bind))
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self.host

    async def stop(self) -> None:
        """Stop answering (connections are refused); the port is kept for ``start``."""
        if self._runner is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner.cleanup()
            self._runner = None


@contextmanager
def run_gateway_in_thread(gateway: FakeGateway, *, host: str = "127.0.0.1") -> Iterator[str]:
    """``with run_gateway_in_thread(gateway) as host:`` for synchronous callers (the demo)."""
    server = FakeGatewayServer(gateway, host=host)
    with serve_in_thread(server.start, server.stop, name="fakegateway") as address:
        yield address
