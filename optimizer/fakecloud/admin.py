"""Admin routes under ``/__fake__/``: drive the fake over HTTP, without auth.

Tests that run ``evopt`` as a subprocess, and ``make demo``, cannot reach the ``FakeCloud``
object; these routes expose the same controls (faults, clock, sessions, profile, charger
state, request log). They are never logged and never hit by faults.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from optimizer.fakecloud.cloud import FakeCloud
from optimizer.fakecloud.faults import FaultRule
from optimizer.fakecloud.responses import json_reply

ADMIN_PREFIX = "/__fake__/"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _bad(message: str, status: int = 400) -> web.Response:
    return json_reply({"error": message}, status=status)


async def _json(request: web.Request) -> Any:
    if not await request.read():
        return {}
    return await request.json()


def _guarded(fn: Handler) -> Handler:
    """Turn bad input into a 400 JSON reply instead of a 500 with a traceback."""

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await fn(request)
        except (ValueError, TypeError, KeyError) as exc:
            return _bad(str(exc))

    return handler


def _site_routes(cloud: FakeCloud) -> list[tuple[str, str, Handler]]:
    """The site's 2026 settings and the scheduler outage (fakecloud.outage)."""

    async def scheduler_outage(request: web.Request) -> web.StreamResponse:
        data = await _json(request)
        if request.method == "DELETE":
            data = {"hours": 0}
        if not isinstance(data, dict) or not ({"hours", "duration_s"} & set(data)):
            return _bad('expected {"hours": N} or {"duration_s": N}, optionally "status": true')
        seconds = float(data["duration_s"]) if "duration_s" in data else float(data["hours"]) * 3600
        outage = cloud.scheduler_outage(seconds, status=bool(data.get("status", False)))
        return json_reply(outage.to_dict())

    async def site(request: web.Request) -> web.StreamResponse:
        data = await _json(request)
        if not isinstance(data, dict):
            return _bad("expected a JSON object of site fields")
        return json_reply(cloud.set_site(**data))

    return [
        ("POST", "scheduler_outage", scheduler_outage),
        ("DELETE", "scheduler_outage", scheduler_outage),
        ("POST", "site", site),
    ]


def _layout_routes(cloud: FakeCloud) -> list[tuple[str, str, Handler]]:
    """Add an account, a site or a charger at run time (issue 13); replies never carry the
    password."""

    async def account(request: web.Request) -> web.StreamResponse:
        data = await _json(request)
        if not isinstance(data, dict) or not {"email", "password"} <= set(data):
            return _bad(
                'expected {"email": ..., "password": ..., optionally "sites": N, '
                '"chargers_per_site": N, "mfa": bool, "otp_code": "..."}'
            )
        acct = cloud.add_account(
            str(data["email"]),
            str(data["password"]),
            mfa=bool(data.get("mfa", False)),
            otp_code=str(data.get("otp_code", "123456")),
            sites=int(data.get("sites", 1)),
            chargers_per_site=int(data.get("chargers_per_site", 1)),
        )
        return json_reply({"email": acct.email, "sites": _site_ids(cloud, acct.email)})

    async def site(request: web.Request) -> web.StreamResponse:
        data = await _json(request)
        if not isinstance(data, dict) or "owner" not in data:
            return _bad('expected {"owner": "<account e-mail>", optionally "chargers": N}')
        model = cloud.add_site(str(data["owner"]), chargers=int(data.get("chargers", 1)))
        return json_reply({"site_id": model.site_id, "chargers": [c.sn for c in model.chargers]})

    async def charger(request: web.Request) -> web.StreamResponse:
        added = cloud.add_charger(int(request.match_info["site"]))
        return json_reply({"sn": added.sn})

    return [
        ("POST", "accounts", account),
        ("POST", "sites", site),
        ("POST", "sites/{site}/chargers", charger),
    ]


def _site_ids(cloud: FakeCloud, owner: str) -> list[int]:
    return [m.site_id for m in cloud.sites.of(owner)]


def _history_outage(cloud: FakeCloud) -> Handler:
    """``{"seconds": N, "status": 550 or 503}``: the history service degraded for a while."""

    async def handler(request: web.Request) -> web.StreamResponse:
        data = await _json(request)
        if not isinstance(data, dict) or "seconds" not in data:
            return _bad('expected {"seconds": N, "status": 550 or 503}')
        cloud.degrade_history(float(data["seconds"]), status=int(data.get("status", 550)))
        outage = cloud.history_outage
        return json_reply({"until": outage.until, "status": outage.status})

    return handler


def register_admin(app: web.Application, cloud: FakeCloud) -> None:
    p = ADMIN_PREFIX

    async def state(_: web.Request) -> web.StreamResponse:
        return json_reply(cloud.snapshot())

    async def add_faults(request: web.Request) -> web.StreamResponse:
        data = await _json(request)
        items = data if isinstance(data, list) else [data]
        if not all(isinstance(item, dict) for item in items):
            return _bad("expected a JSON rule or a list of rules")
        rules = [FaultRule.from_dict(item) for item in items]
        cloud.faults.extend(rules)
        return json_reply({"rules": [r.to_dict() for r in cloud.faults.rules]})

    async def list_faults(_: web.Request) -> web.StreamResponse:
        return json_reply({"rules": [r.to_dict() for r in cloud.faults.rules]})

    async def clear_faults(_: web.Request) -> web.StreamResponse:
        cloud.faults.clear()
        return json_reply({"rules": []})

    async def clock(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            data = await _json(request)
            if "advance_s" in data:
                cloud.advance(float(data["advance_s"]))
            elif "set" in data:
                cloud.set_time(datetime.fromisoformat(str(data["set"])))
            else:
                return _bad('expected {"advance_s": N} or {"set": "<iso datetime>"}')
        return json_reply({"now": cloud.clock.now().isoformat()})

    async def expire(_: web.Request) -> web.StreamResponse:
        return json_reply({"expired": cloud.expire_sessions()})

    async def profile(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            data = await _json(request)
            if not isinstance(data, dict):
                return _bad("expected a JSON object of profile fields")
            cloud.set_profile(**data)
        return json_reply(cloud.profile.to_dict())

    async def requests(request: web.Request) -> web.StreamResponse:
        if request.method == "DELETE":
            cloud.log.clear()
            return json_reply({"requests": []})
        entries = cloud.requests(
            path_contains=request.query.get("path_contains"),
            method=request.query.get("method"),
        )
        return json_reply({"requests": [e.to_dict() for e in entries]})

    async def charger(request: web.Request) -> web.StreamResponse:
        sn = request.match_info["sn"]
        owner = cloud.sites.with_charger(sn)
        if owner is None:
            return _bad(f"no charger {sn}", status=404)
        data = await _json(request)
        if not isinstance(data, dict):
            return _bad("expected a JSON object of charger fields")
        cloud.update_charger(sn, **data)
        snapshot = cloud.snapshot()
        if owner is not cloud.model:  # a charger of an added site: its site's summary
            return json_reply(next(s for s in snapshot["sites"] if s["site_id"] == owner.site_id))
        return json_reply(next(c for c in snapshot["chargers"] if c["sn"] == sn))

    async def account(request: web.Request) -> web.StreamResponse:
        data = await _json(request)
        if not isinstance(data, dict):
            return _bad("expected a JSON object of account fields")
        acct = cloud.set_account(**data)
        return json_reply({"email": acct.email, "mfa": acct.mfa, "blocked": acct.blocked})

    async def missing(request: web.Request) -> web.StreamResponse:
        data = await _json(request)
        start = datetime.fromisoformat(str(data["start"]))
        end = datetime.fromisoformat(str(data["end"])) if data.get("end") else None
        return json_reply({"marked": cloud.mark_missing(start, end)})

    routes: list[tuple[str, str, Handler]] = [
        ("GET", "state", state),
        ("POST", "faults", add_faults),
        ("GET", "faults", list_faults),
        ("DELETE", "faults", clear_faults),
        ("GET", "clock", clock),
        ("POST", "clock", clock),
        ("POST", "expire_sessions", expire),
        ("GET", "profile", profile),
        ("POST", "profile", profile),
        ("GET", "requests", requests),
        ("DELETE", "requests", requests),
        ("POST", "charger/{sn}", charger),
        ("POST", "account", account),
        ("POST", "missing_buckets", missing),
        *_site_routes(cloud),
        *_layout_routes(cloud),
        ("POST", "history_outage", _history_outage(cloud)),
    ]
    for method, path, fn in routes:
        app.router.add_route(method, p + path, _guarded(fn))
