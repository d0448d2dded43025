"""Session history as the 2026 cloud takes it (2026 reference section 4): pure helpers.

The historical-events service is a different backend from the EV controller: it wants a nested
``source`` + ``params`` body, site-local ``DD-MM-YYYY`` dates with the site's IANA zone, and its
own headers (a bearer JWT, that JWT's ``session_id`` claim as ``e-auth-token``, the ``user_id``
claim as ``username`` and a fresh ``requestid``). Anything else it answers 400 BAD_REQUEST. It
also degrades on its own (5xx, 550 SERVICE_UNREACHABLE): that is "try later", never an error of
the user's input, and nothing already stored may be touched because of it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from optimizer.enlighten.auth import jwt_claims
from optimizer.enlighten.errors import EnlightenHTTPStatusError, ServiceUnavailableError
from optimizer.enlighten.transport import SessionState

__all__ = [
    "DEGRADED_STATUSES",
    "FILTER_CRITERIA_EVERY",
    "MANAGER_TOKEN_COOKIE",
    "HistoryDegradedError",
    "degraded_text",
    "history_bearer",
    "history_body",
    "history_headers",
    "history_path",
]

HISTORY_SERVICE = "/service/enho_historical_events_ms"
MANAGER_TOKEN_COOKIE = "enlighten_manager_token_production"  # noqa: S105 - a cookie name
# Statuses of this service that mean "degraded, try later" (2026 reference section 4).
DEGRADED_STATUSES = frozenset({500, 502, 503, 504, 550})
# The web app asks for the filter criteria first; at most this often per site.
FILTER_CRITERIA_EVERY = timedelta(minutes=10)
# "Historical events service is unavailable", "SERVICE_UNREACHABLE", ... in any envelope.
_DEGRADED_WORDS = re.compile(
    r"historical[\s_-]*events?.*(unavailable|unreachable|down)|service[\s_]unreachable",
    re.IGNORECASE,
)


class HistoryDegradedError(ServiceUnavailableError):
    """The history service is degraded: nothing was stored from this request; try later."""

    hint = (
        "the Enlighten session-history service is degraded; what is stored is kept, "
        "try later (about 15 min)"
    )


def history_path(site_id: int, sn: str) -> str:
    return f"{HISTORY_SERVICE}/{site_id}/sessions/{sn}/history"


def filter_criteria_path(site_id: int) -> str:
    return f"{HISTORY_SERVICE}/{site_id}/filter_criteria"


def history_body(
    *, start: date, end: date, offset: int, limit: int, timezone: str
) -> dict[str, Any]:
    """The nested body: the flat one of the first reference is refused with a 400 now."""
    return {
        "source": "evse",
        "params": {
            "offset": offset,
            "limit": limit,
            "startDate": start.strftime("%d-%m-%Y"),
            "endDate": end.strftime("%d-%m-%Y"),
            "timezone": timezone,
        },
    }


def history_bearer(state: SessionState) -> str | None:
    """The Entrez token first, else the manager-token cookie JWT, else the login's token."""
    return state.entrez_token or state.cookies.get(MANAGER_TOKEN_COOKIE) or state.manager_token


def history_headers(
    state: SessionState, *, new_id: Callable[[], uuid.UUID] = uuid.uuid4
) -> dict[str, str]:
    """Headers of one history request; ``requestid`` is new on every call.

    ``e-auth-token`` is the bearer's ``session_id`` claim, not the raw token; a bearer without
    one falls back to the login's session id (the claim is the same session).
    """
    bearer = history_bearer(state)
    claims = jwt_claims(bearer)
    headers = {"requestid": str(new_id())}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    session = claims.get("session_id") or state.session_id
    if session:
        headers["e-auth-token"] = str(session)
    user = claims.get("user_id") or jwt_claims(state.manager_token).get("user_id")
    if user is not None and str(user):
        headers["username"] = str(user)
    return headers


def degraded_text(*texts: object) -> bool:
    """Whether any of ``texts`` says the historical-events service is unavailable."""
    return any(isinstance(t, str) and _DEGRADED_WORDS.search(t) for t in texts)


def is_degraded(err: EnlightenHTTPStatusError) -> bool:
    """A status of this service that means degraded, or an error naming it unavailable."""
    return err.status in DEGRADED_STATUSES or degraded_text(err.message, err.code)


def degraded_body(body: Any) -> str | None:
    """The words of a 2xx body that reports the service down instead of a page, else None."""
    if not isinstance(body, dict):
        return None
    data = body.get("data")
    if isinstance(data, dict) and isinstance(data.get("result"), list):
        return None
    error = body.get("error")
    candidates: list[object] = [body.get("message"), error]
    if isinstance(error, dict):
        candidates += [error.get(k) for k in ("message", "displayMessage", "errorMessage", "code")]
    for text in candidates:
        if degraded_text(text):
            return str(text)
    return None
