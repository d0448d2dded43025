"""Login and one-time-code replies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from optimizer.enlighten.models.base import (
    FrozenModel,
    _as_bool,
    _as_id,
    _as_str,
    _reports_as,
    _require_dict,
)

# --- login -------------------------------------------------------------------------------------

LoginKind = Literal["authenticated", "mfa_required", "blocked", "invalid"]


class LoginReply(FrozenModel):
    """What a login step achieved; tokens are only set once the account is authenticated."""

    kind: LoginKind
    session_id: str | None = None
    manager_token: str | None = None
    system_id: str | None = None


def _login_reply(
    payload: Any, what: str, decide: Callable[[dict[str, Any]], LoginKind]
) -> LoginReply:
    body = _require_dict(payload, what)
    session_id, token = _as_str(body.get("session_id")), _as_str(body.get("manager_token"))
    system_id = _as_id(body.get("system_id"))
    if session_id and token:
        return LoginReply(
            kind="authenticated", session_id=session_id, manager_token=token, system_id=system_id
        )
    return LoginReply(kind=decide(body), system_id=system_id)


def _login_kind(body: dict[str, Any]) -> LoginKind:
    if _as_bool(body.get("isBlocked")):
        return "blocked"
    if _as_bool(body.get("requires_mfa")) or _as_bool(body.get("success")):
        return "mfa_required"
    return "invalid"


def _otp_kind(body: dict[str, Any]) -> LoginKind:
    if _as_bool(body.get("isBlocked")):
        return "blocked"
    if _as_bool(body.get("isValid")) is False:
        return "invalid"
    # A resend reply ({"success": true}) means a code is still pending.
    return "mfa_required" if _as_bool(body.get("success")) else "invalid"


@_reports_as("login")
def parse_login_reply(payload: Any) -> LoginReply:
    """MFA is signalled by shape (success without tokens) or, on some replies, outright."""
    return _login_reply(payload, "login reply", _login_kind)


@_reports_as("OTP")
def parse_otp_reply(payload: Any) -> LoginReply:
    return _login_reply(payload, "OTP reply", _otp_kind)
