"""Login, MFA and token bookkeeping, independent of HTTP.

The rules mirror what the client must cope with (spec section 5 and the field notes): a login
either authenticates at once or leaves a *pre-MFA* session that is not authenticated and only
opens the OTP endpoints; an OTP must come with the pre-MFA cookies and a CSRF header equal to
the XSRF cookie; resends are throttled; five wrong codes block the OTP flow. Sessions and
manager tokens expire on the fake clock, and tests can revoke every session at once to
simulate "session expired mid-run".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import random
from dataclasses import dataclass
from typing import Any, Literal

from optimizer.fakecloud.model import Account

_JWT_KEY = b"fakecloud-not-a-secret"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_jwt(claims: dict[str, Any]) -> str:
    """An HS256 JWT. Signed only so that the fake can tell its own tokens from edited ones."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = _b64url(hmac.new(_JWT_KEY, signing_input, hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def decode_jwt(token: str) -> dict[str, Any] | None:
    """The claims of a token this fake issued, or None when it is malformed or tampered."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii", "replace")
    expected = _b64url(hmac.new(_JWT_KEY, signing_input, hashlib.sha256).digest())
    if not hmac.compare_digest(expected, parts[2]):
        return None
    try:
        claims = json.loads(_b64url_decode(parts[1]))
    except (ValueError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None


@dataclass
class AuthSession:
    """An authenticated session: what ``e-auth-token`` and the session cookie carry."""

    session_id: str
    email: str
    created: float
    expires_at: float
    manager_token: str
    token_exp: float
    xsrf_token: str
    bp_xsrf_token: str
    revoked: bool = False

    def valid(self, now: float) -> bool:
        return not self.revoked and now < self.expires_at


@dataclass
class PendingLogin:
    """A pre-MFA session: password accepted, OTP not yet given."""

    session_id: str
    email: str
    nonce: str
    nonce_expires: float
    xsrf_token: str
    created: float
    otp_failures: int = 0
    last_resend: float | None = None
    blocked: bool = False


@dataclass
class LoginOutcome:
    kind: Literal["invalid", "blocked", "authenticated", "mfa"]
    session: AuthSession | None = None
    pending: PendingLogin | None = None


@dataclass
class OtpOutcome:
    kind: Literal["forbidden", "invalid", "blocked", "authenticated"]
    session: AuthSession | None = None
    reason: str = ""


@dataclass
class ResendOutcome:
    kind: Literal["forbidden", "throttled", "blocked", "sent"]
    pending: PendingLogin | None = None


SessionState = Literal["valid", "expired", "unknown"]


class AuthStore:
    """Sessions, pending MFA logins and manager tokens for the fake's accounts.

    ``account`` is the first account (the one the single-site fake always had); ``add_account``
    adds more, each with its own credentials, MFA and sessions. A session carries its account's
    e-mail, which is how the routes find that account's sites and its request budget.
    """

    def __init__(
        self,
        account: Account,
        *,
        system_id: int,
        seed: int = 0,
        session_lifetime_s: float = 24 * 3600.0,
        token_lifetime_s: float = 3600.0,
        otp_ttl_s: float = 600.0,
        resend_interval_s: float = 30.0,
        max_otp_failures: int = 5,
    ) -> None:
        self.account = account
        self.extra_accounts: list[Account] = []
        self.system_ids: dict[str, int] = {account.email.lower(): system_id}
        self.system_id = system_id
        self.session_lifetime_s = session_lifetime_s
        self.token_lifetime_s = token_lifetime_s
        self.otp_ttl_s = otp_ttl_s
        self.resend_interval_s = resend_interval_s
        self.max_otp_failures = max_otp_failures
        self.sessions: dict[str, AuthSession] = {}
        self.pending: dict[str, PendingLogin] = {}
        self._rng = random.Random(f"fakecloud-auth:{seed}")

    def _hex(self, nbytes: int = 16) -> str:
        return f"{self._rng.getrandbits(nbytes * 8):0{nbytes * 2}x}"

    def add_account(self, account: Account, system_id: int) -> None:
        """Another account; ``system_id`` is the site its login reply and JWT name."""
        if self.find(account.email) is not None:
            raise ValueError(f"an account {account.email!r} exists already")
        self.extra_accounts.append(account)
        self.system_ids[account.email.lower()] = system_id

    def find(self, email: str) -> Account | None:
        """The account with this e-mail (case and surrounding blanks ignored), if any."""
        wanted = email.strip().lower()
        for account in (self.account, *self.extra_accounts):
            if account.email.lower() == wanted:
                return account
        return None

    # --- login ---------------------------------------------------------------------------------

    def login(self, email: str, password: str, now: float) -> LoginOutcome:
        account = self.find(email)
        if account is None:
            return LoginOutcome("invalid")
        if account.blocked:
            return LoginOutcome("blocked")
        if password != account.password:
            return LoginOutcome("invalid")
        if not account.mfa:
            return LoginOutcome("authenticated", session=self._new_session(now, account))
        pending = PendingLogin(
            session_id=self._hex(),
            email=account.email,
            nonce=self._hex(),
            nonce_expires=now + self.otp_ttl_s,
            xsrf_token=self._hex(20),
            created=now,
        )
        self.pending[pending.session_id] = pending
        return LoginOutcome("mfa", pending=pending)

    def _new_session(self, now: float, account: Account) -> AuthSession:
        session_id = self._hex()
        token_exp = now + self.token_lifetime_s
        system_id = self.system_ids.get(account.email.lower(), self.system_id)
        token = make_jwt(
            {
                "iss": "fakecloud",
                "email": account.email,
                "session_id": session_id,
                "user_id": str(account.user_id),
                "system_id": str(system_id),
                "is_consumer": True,
                "iat": int(now),
                "exp": int(token_exp),
            }
        )
        session = AuthSession(
            session_id=session_id,
            email=account.email,
            created=now,
            expires_at=now + self.session_lifetime_s,
            manager_token=token,
            token_exp=int(token_exp),
            xsrf_token=self._hex(20),
            bp_xsrf_token=self._hex(20),
        )
        self.sessions[session_id] = session
        return session

    # --- MFA -----------------------------------------------------------------------------------

    def validate_otp(
        self,
        *,
        pre_session_id: str | None,
        nonce: str | None,
        csrf_header: str | None,
        csrf_cookie: str | None,
        email_b64: str,
        otp_b64: str,
        now: float,
    ) -> OtpOutcome:
        pending = self.pending.get(pre_session_id or "")
        if pending is None:
            return OtpOutcome("forbidden", reason="no pre-MFA session cookie")
        if not nonce or nonce != pending.nonce:
            return OtpOutcome("forbidden", reason="login_otp_nonce cookie missing or stale")
        if not csrf_header or csrf_header != csrf_cookie or csrf_cookie != pending.xsrf_token:
            return OtpOutcome("forbidden", reason="X-CSRF-Token does not match XSRF-TOKEN")
        if pending.blocked:
            return OtpOutcome("blocked")
        email, otp = _b64_text(email_b64), _b64_text(otp_b64)
        account = self.find(pending.email)
        right = (
            account is not None
            and email is not None
            and email.strip().lower() == pending.email.lower()
            and otp == account.otp_code
            and now < pending.nonce_expires
        )
        if not right:
            pending.otp_failures += 1
            if pending.otp_failures >= self.max_otp_failures:
                pending.blocked = True
                return OtpOutcome("blocked")
            return OtpOutcome("invalid")
        del self.pending[pending.session_id]
        assert account is not None  # noqa: S101 (``right`` implies it)
        return OtpOutcome("authenticated", session=self._new_session(now, account))

    def resend_otp(self, *, pre_session_id: str | None, now: float) -> ResendOutcome:
        pending = self.pending.get(pre_session_id or "")
        if pending is None:
            return ResendOutcome("forbidden")
        if pending.blocked:
            return ResendOutcome("blocked", pending=pending)
        if pending.last_resend is not None and now - pending.last_resend < self.resend_interval_s:
            return ResendOutcome("throttled", pending=pending)
        pending.last_resend = now
        pending.nonce = self._hex()
        pending.nonce_expires = now + self.otp_ttl_s
        return ResendOutcome("sent", pending=pending)

    # --- checks --------------------------------------------------------------------------------

    def session_state(self, session_id: str | None, now: float) -> SessionState:
        session = self.sessions.get(session_id or "")
        if session is None:
            return "unknown"
        return "valid" if session.valid(now) else "expired"

    def bearer_valid(self, token: str | None, now: float) -> bool:
        """A manager token is good while unexpired and its session has not been revoked."""
        if not token:
            return False
        claims = decode_jwt(token)
        if claims is None:
            return False
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or now >= exp:
            return False
        session = self.sessions.get(str(claims.get("session_id", "")))
        return session is not None and session.valid(now)

    def expire_all(self) -> int:
        """Revoke every authenticated session (and with it its manager token)."""
        count = 0
        for session in self.sessions.values():
            if not session.revoked:
                session.revoked = True
                count += 1
        return count


def _b64_text(value: str) -> str | None:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeError):
        return None
