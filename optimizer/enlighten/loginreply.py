"""Reading a login reply as the 2026 cloud sends it (reference section 6), before any JSON.

A login can be refused in the body at any status ("too many active sessions" in JSON or in an
HTML page), answer 406 to the JSON route (then the browser form is used), succeed with an
empty ``{}`` body whose only content is its Set-Cookie headers, or fail on the cloud's side
(5xx: nothing was judged). These are decided here, purely, from the raw reply and the cookies
it set, so that every variant has one place and one test.
"""

from __future__ import annotations

import json
from typing import Any

from optimizer.enlighten.errors import (
    AuthServiceDownError,
    InvalidCredentialsError,
    LoginWallError,
    ParseError,
    SessionLockoutError,
)
from optimizer.enlighten.models import LoginReply, parse_login_reply, parse_otp_reply
from optimizer.enlighten.transport import RawReply, error_for_status

__all__ = [
    "LOCKOUT_TEXT",
    "MANAGER_TOKEN_COOKIE",
    "SESSION_COOKIES",
    "judge_login",
    "judge_otp",
    "session_from_cookies",
]

LOCKOUT_TEXT = "too many active sessions"
# The first of these that is present is the session (reference section 6).
SESSION_COOKIES = ("_enlighten_4_session", "enlighten_session", "_enlighten_session")
MANAGER_TOKEN_COOKIE = "enlighten_manager_token_production"  # noqa: S105 - a cookie name


def session_from_cookies(cookies: dict[str, str], claims: dict[str, Any]) -> LoginReply | None:
    """An authenticated reply built from Set-Cookie values alone, or None when they hold none.

    ``claims`` are those of the manager-token cookie: its ``session_id`` stands in for a
    missing session cookie.
    """
    token = cookies.get(MANAGER_TOKEN_COOKIE) or None
    session_id = next((cookies[name] for name in SESSION_COOKIES if cookies.get(name)), None)
    if session_id is None:
        claimed = claims.get("session_id")
        session_id = str(claimed) if isinstance(claimed, str | int) and claimed else None
    if session_id is None:
        return None
    return LoginReply(kind="authenticated", session_id=session_id, manager_token=token)


def _is_html(raw: RawReply) -> bool:
    head = raw.text.lstrip()[:200].lower()
    ctype = raw.headers.get("Content-Type", "").lower()
    return "html" in ctype or head.startswith(("<!doctype", "<html"))


def judge_login(
    raw: RawReply,
    *,
    path: str,
    cookies: dict[str, str],
    claims: dict[str, Any],
    form: bool,
) -> LoginReply:
    """What one login reply means; raises the typed error for every refusal.

    ``form``: the reply is to the HTML form login, where success is a session cookie and a
    page without one is the form shown again (a refused password).
    """
    if LOCKOUT_TEXT in raw.text.lower():
        raise SessionLockoutError('Enlighten refused the login: "too many active sessions"')
    if raw.status >= 500:
        raise AuthServiceDownError(
            f"Enlighten's login service failed (HTTP {raw.status} from {path})",
            status=raw.status,
            url=path,
        )
    if raw.status in (401, 403):
        raise InvalidCredentialsError("Enlighten refused the e-mail or password")
    if raw.status >= 400:
        raise error_for_status(
            raw.status, url=path, body=None, retry_after=raw.headers.get("Retry-After")
        )
    from_cookies = session_from_cookies(cookies, claims)
    if form and cookies.get("login_otp_nonce"):
        return LoginReply(kind="mfa_required")
    if form or _is_html(raw):
        if from_cookies is not None:
            return from_cookies
        if form:
            raise InvalidCredentialsError("Enlighten refused the e-mail or password")
        raise LoginWallError(f"{path} answered with an HTML page instead of a login reply")
    body = _json(raw.text, path)
    if body is None or body == {}:
        if from_cookies is None:
            raise ParseError(f"{path} answered an empty login reply without a session cookie")
        return from_cookies
    reply = parse_login_reply(body)
    if reply.kind == "authenticated" or from_cookies is None:
        return reply
    pending_code = body.get("requires_mfa") is True or bool(cookies.get("login_otp_nonce"))
    if reply.kind == "mfa_required" and not pending_code:
        return from_cookies  # {"success": true} with a real session: not a pending code
    return reply


def judge_otp(body: Any, *, cookies: dict[str, str], claims: dict[str, Any]) -> LoginReply:
    """An OTP validation reply; an empty one, or "success" without a ``session_id``, means the
    session is in the cookies it set (2026 reference section 6, MFA)."""
    bare = body is None or body == {}
    success_only = (
        isinstance(body, dict) and body.get("success") is True and not body.get("session_id")
    )
    if bare or success_only:
        recovered = session_from_cookies(cookies, claims)
        if recovered is not None:
            return recovered
    return parse_otp_reply(body)


def _json(text: str, path: str) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        raise ParseError(f"{path} sent a login reply that is not JSON: {err}", url=path) from err
