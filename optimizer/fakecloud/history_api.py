"""The historical-events service's request rules, as the 2026 cloud applies them.

Shaped from the 2026 reference (section 4), never from what the client happens to send: the
nested ``source`` + ``params`` body with ``DD-MM-YYYY`` dates and an IANA ``timezone``, and the
``requestid`` / ``username`` / ``e-auth-token`` / bearer headers. A request that misses any of
them gets 400 BAD_REQUEST; the 2024 profile (``history_body="flat"``) keeps the first
reference's flat body and asks for nothing more than a session. The service can also be made
degraded for a while (:class:`ServiceOutage`), answering 550 or 503 as the real one does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from optimizer.fakecloud.auth import AuthStore, decode_jwt
from optimizer.fakecloud.model import SiteModel
from optimizer.fakecloud.responses import json_reply, not_authorized

_DATE = re.compile(r"^\d{2}-\d{2}-\d{4}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
OUTAGE_MESSAGES = {
    550: ("SERVICE_UNREACHABLE", "Historical events service is unavailable"),
    503: ("SERVICE_UNAVAILABLE", "Historical events service is unavailable"),
}


@dataclass(frozen=True)
class HistoryQuery:
    """One page asked for: local dates (None: open), offset and limit."""

    start: date | None
    end: date | None
    offset: int
    limit: int
    start_text: str | None
    end_text: str | None


@dataclass
class ServiceOutage:
    """The service answers ``status`` until ``until`` (fake epoch seconds); None: healthy."""

    until: float | None = None
    status: int = 550

    def active(self, now: float) -> bool:
        return self.until is not None and now < self.until

    def reply(self) -> web.Response:
        error, message = OUTAGE_MESSAGES.get(self.status, OUTAGE_MESSAGES[503])
        body = {"status": self.status, "error": error, "message": message}
        return json_reply(body, status=self.status)


def bad_request(message: str) -> web.Response:
    """The service's 400, in the words the reference reports (``BAD_REQUEST``)."""
    return json_reply({"status": 400, "error": "BAD_REQUEST", "message": message}, status=400)


def _day(text: Any) -> date | None:
    if not isinstance(text, str) or not _DATE.match(text):
        raise ValueError(text)
    day, month, year = (int(part) for part in text.split("-"))
    return date(year, month, day)


def parse_flat(body: Any) -> HistoryQuery | web.Response:
    """The first reference's flat body (the 2024 profile): dates optional."""
    request = body if body is not None else {}
    if not isinstance(request, dict):
        return bad_request("Request body must be a JSON object")
    start, end = request.get("startDate"), request.get("endDate")
    try:
        query = HistoryQuery(
            start=_day(start) if start else None,
            end=_day(end) if end else None,
            offset=int(request.get("offset", 0)),
            limit=int(request.get("limit", 20)),
            start_text=str(start) if start else None,
            end_text=str(end) if end else None,
        )
    except (TypeError, ValueError):
        return bad_request("Invalid request: dates are DD-MM-YYYY, offset/limit ints")
    return _checked(query)


def parse_nested(body: Any) -> HistoryQuery | web.Response:
    """The 2026 body: ``{"source": "evse", "params": {offset, limit, startDate, endDate,
    timezone}}``, every key required."""
    if not isinstance(body, dict) or body.get("source") != "evse":
        return bad_request('BAD_REQUEST: body must be {"source": "evse", "params": {...}}')
    params = body.get("params")
    if not isinstance(params, dict):
        return bad_request("BAD_REQUEST: params missing")
    missing = [
        key
        for key in ("offset", "limit", "startDate", "endDate", "timezone")
        if params.get(key) is None
    ]
    if missing:
        return bad_request(f"BAD_REQUEST: params.{', params.'.join(missing)} missing")
    try:
        ZoneInfo(str(params["timezone"]))
    except (ZoneInfoNotFoundError, ValueError):
        return bad_request(f"BAD_REQUEST: unknown timezone {params['timezone']!r}")
    try:
        query = HistoryQuery(
            start=_day(params["startDate"]),
            end=_day(params["endDate"]),
            offset=int(params["offset"]),
            limit=int(params["limit"]),
            start_text=str(params["startDate"]),
            end_text=str(params["endDate"]),
        )
    except (TypeError, ValueError):
        return bad_request("BAD_REQUEST: dates are DD-MM-YYYY, offset/limit ints")
    return _checked(query)


def _checked(query: HistoryQuery) -> HistoryQuery | web.Response:
    if query.offset < 0 or not 1 <= query.limit <= 100:
        return bad_request("offset must be >= 0 and limit within [1, 100]")
    return query


def refuse_headers(headers: Mapping[str, str], auth: AuthStore, now: float) -> web.Response | None:
    """The 2026 service's answer to headers it does not take (None: fine): 401 for a dead
    bearer (the auth path), 400 BAD_REQUEST for anything missing or wrong."""
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return bad_request("BAD_REQUEST: Authorization: Bearer <jwt> missing")
    if not auth.bearer_valid(token, now):
        return not_authorized()
    problem = _claims_problem(headers, token)
    return bad_request(f"BAD_REQUEST: {problem}") if problem else None


def _claims_problem(headers: Mapping[str, str], token: str) -> str | None:
    """``e-auth-token`` must be the bearer's ``session_id`` claim (not the raw token),
    ``username`` its ``user_id`` claim, ``requestid`` a UUID."""
    claims = decode_jwt(token) or {}
    data = claims.get("data")
    nested: dict[str, Any] = data if isinstance(data, dict) else {}
    session = claims.get("session_id") or nested.get("session_id")
    user = claims.get("user_id") or nested.get("user_id")
    if headers.get("e-auth-token") != str(session):
        return "e-auth-token must be the session_id of the bearer token"
    if not headers.get("username") or (user is not None and headers["username"] != str(user)):
        return "username header missing or not the token's user_id"
    if not _UUID.match(headers.get("requestid", "")):
        return "requestid header missing or not a UUID"
    return None


def filter_criteria(model: SiteModel, now: float) -> dict[str, Any]:
    """The chargers that have history. The reference leaves the shape open; this is one."""
    return {
        "source": "evse",
        "data": {
            "devices": [
                {"serialNumber": c.sn, "name": c.name}
                for c in model.chargers
                if model.sessions.get(c.sn)
            ],
            "timezone": model.timezone,
        },
        "timestamp": int(now * 1000),
    }
