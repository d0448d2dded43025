"""Logging in to Enlighten, the one-time-code step, and keeping the session across runs.

The session (cookies, session id, manager token and its expiry) is written to the state dir
with mode 0600 so that the service and each `evopt` command reuse one login instead of
creating the "too many active sessions" the field notes warn about. The password is never
stored: it is asked for (or read from the environment) each time a login is needed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC
from email.utils import parsedate_to_datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from optimizer.enlighten.entrez import fetch_entrez_token
from optimizer.enlighten.errors import (
    AccountBlockedError,
    AuthError,
    AuthRequiredError,
    ConfigError,
    InvalidCredentialsError,
    InvalidOtpError,
    MfaRequiredError,
    OtpThrottledError,
    RateLimitedError,
    SessionLockoutError,
)
from optimizer.enlighten.loginguard import (
    GuardState,
    LoginGuard,
    after_failure,
    after_lockout,
    after_login_wall,
    describe,
    refusal,
)
from optimizer.enlighten.loginreply import MANAGER_TOKEN_COOKIE, judge_login, judge_otp
from optimizer.enlighten.models import LoginReply
from optimizer.enlighten.transport import SessionState, Transport
from optimizer.logsafe import register_secret
from optimizer.statefile import write_private_json

_LOGGER = logging.getLogger(__name__)

LOGIN_PATH = "/login/login.json"
# The browser form the 2026 cloud falls back to when it answers 406 to the JSON login.
FORM_LOGIN_PATH = "/login/login"
OTP_VALIDATE_PATH = "/app-api/validate_login_otp"
OTP_RESEND_PATH = "/app-api/generate_mfa_login_otp"
SESSION_FILE = "session.json"
# Refresh a little before the token's own expiry so a request never races it.
EXPIRY_MARGIN_S = 60.0


def server_clock_offset(date_header: str | None, *, local_now: float) -> float:
    """Seconds the server's clock is ahead of ours, from a reply's ``Date`` header.

    Token ``exp`` claims are on the server's clock. A device whose clock is off (a Raspberry Pi
    that booted without network time) would otherwise think a fresh token expired, or trust a
    dead one; we store expiry on our own clock instead. Missing or bad header: no offset.
    """
    if not date_header:
        return 0.0
    try:
        server = parsedate_to_datetime(date_header)
    except (TypeError, ValueError, IndexError):
        return 0.0
    if server.tzinfo is None:
        server = server.replace(tzinfo=UTC)
    return server.timestamp() - local_now


def jwt_claims(token: str | None) -> dict[str, Any]:
    """The claims of a JWT-shaped token, without verifying it; {} for anything else.

    The 2026 cloud nests ``session_id`` and ``user_id`` under ``data`` in some tokens and puts
    them at the top level in others, so both are flattened here (top level wins).
    """
    if not token or token.count(".") != 2:
        return {}
    payload = token.split(".")[1]
    try:
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(decoded)
    except (binascii.Error, ValueError, RecursionError):
        return {}
    if not isinstance(claims, dict):
        return {}
    nested = claims.get("data")
    return {**nested, **claims} if isinstance(nested, dict) else claims


def token_expiry(token: str | None) -> float | None:
    """The ``exp`` claim (epoch seconds) of a JWT-shaped token, without verifying it."""
    exp = jwt_claims(token).get("exp")
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def session_file_name(account: str | None) -> str:
    """``session.json`` for the single account, ``session-<key>.json`` for one of several."""
    return SESSION_FILE if account is None else f"session-{account}.json"


class SessionStore:
    """The session file: written atomically with mode 0600, refused if others can read it."""

    def __init__(self, state_dir: Path, *, account: str | None = None) -> None:
        """``account``: a short key of the account (several accounts in one state dir), giving
        ``session-<account>.json``; None keeps the single account's ``session.json``."""
        self.path = state_dir / session_file_name(account)
        # A first start with several accounts reads the single account's file, so whoever
        # moves to a ``sites:`` list is not logged out (the authenticator ignores it for an
        # account it does not belong to); the next save writes the account's own file.
        self._legacy = state_dir / SESSION_FILE if account is not None else None

    def load(self) -> dict[str, Any] | None:
        data = self._read(self.path)
        if data is None and self._legacy is not None:
            data = self._read(self._legacy)
        return data

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            info = path.stat()
        except FileNotFoundError:
            return None
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{path} is readable by other users (mode {stat.S_IMODE(info.st_mode):o}); "
                f"run `chmod 600 {path}` or delete it and run `evopt login`",
                hint="the session file holds login tokens",
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            _LOGGER.warning("ignoring unreadable session file %s", path)
            return None
        return data if isinstance(data, dict) else None

    def save(self, data: dict[str, Any]) -> None:
        write_private_json(self.path, data)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class LoginOutcome(StrEnum):
    AUTHENTICATED = "authenticated"
    MFA_REQUIRED = "mfa_required"


@dataclass
class _Pending:
    """A login waiting for its one-time code (kept across processes)."""

    email: str
    created_at: float


@dataclass
class AccountSession:
    """One account's session shared by several clients (the sites of one account in one
    process): the same cookies and tokens, and one lock, so a 401 seen by two sites' loops
    at once leads to one re-login, and a login by one serves all."""

    state: SessionState = field(default_factory=SessionState)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Authenticator:
    """Owns the session: login, OTP, persistence, and the one shared re-login after a 401."""

    def __init__(
        self,
        transport: Transport,
        *,
        email: str | None,
        password_provider: Callable[[], str | None] | None = None,
        store: SessionStore | None = None,
        clock: Callable[[], float] = time.time,
        guard: LoginGuard | None = None,
        entrez_url: str | None = None,
        lock: asyncio.Lock | None = None,
    ) -> None:
        self._transport = transport
        self.email = email
        self._password_provider = password_provider or (lambda: None)
        self._store = store
        self._clock = clock
        self.guard = guard or LoginGuard(None)
        self.entrez_url = entrez_url
        self._lock = lock or asyncio.Lock()  # shared by the clients of one AccountSession
        # A re-login the cloud refused, with the session generation it was for: not retried
        # until a login succeeds (see `reauthenticate`).
        self._refused: tuple[int, AuthError] | None = None
        self.pending: _Pending | None = None
        register_secret(email)
        self._load()

    @property
    def state(self) -> SessionState:
        return self._transport.state

    # --- persistence -------------------------------------------------------------------------

    def _load(self) -> None:
        data = self._store.load() if self._store else None
        if not data:
            return
        if data.get("base_url") != self._transport.base_url or (
            self.email and data.get("email") and data.get("email") != self.email
        ):
            _LOGGER.info("stored session belongs to another account or host; not using it")
            return
        cookies = data.get("cookies")
        if isinstance(cookies, dict):
            self.state.cookies = {str(k): str(v) for k, v in cookies.items()}
        self.state.session_id = _opt_str(data.get("session_id"))
        self.state.manager_token = _opt_str(data.get("manager_token"))
        expires = data.get("token_expires_at")
        self.state.token_expires_at = float(expires) if isinstance(expires, int | float) else None
        self.state.entrez_token = _opt_str(data.get("entrez_token"))
        entrez_expires = data.get("entrez_expires_at")
        self.state.entrez_expires_at = (
            float(entrez_expires) if isinstance(entrez_expires, int | float) else None
        )
        pending = data.get("pending_mfa")
        if isinstance(pending, dict) and isinstance(pending.get("email"), str):
            self.pending = _Pending(pending["email"], float(pending.get("created_at", 0)))
        if not self.email and isinstance(data.get("email"), str):
            self.email = data["email"]
        secrets = (self.state.session_id, self.state.manager_token, self.state.entrez_token)
        for secret in (*secrets, self.email):
            register_secret(secret)
        for value in self.state.cookies.values():
            register_secret(value)

    def _save(self) -> None:
        if self._store is None:
            return
        self._store.save(
            {
                "base_url": self._transport.base_url,
                "email": self.email,
                "cookies": self.state.cookies,
                "session_id": self.state.session_id,
                "manager_token": self.state.manager_token,
                "token_expires_at": self.state.token_expires_at,
                "entrez_token": self.state.entrez_token,
                "entrez_expires_at": self.state.entrez_expires_at,
                "pending_mfa": (
                    {"email": self.pending.email, "created_at": self.pending.created_at}
                    if self.pending
                    else None
                ),
            }
        )

    def logout(self) -> None:
        """Forget the session locally (the file too)."""
        self.state.cookies.clear()
        self.state.session_id = self.state.manager_token = None
        self.state.token_expires_at = None
        self.state.entrez_token = self.state.entrez_expires_at = None
        self.pending = None
        if self._store:
            self._store.clear()

    # --- state ---------------------------------------------------------------------------------

    @property
    def has_session(self) -> bool:
        return bool(self.state.auth_token()) and self.pending is None

    def token_expired(self) -> bool:
        expires = self.state.token_expires_at
        return expires is not None and self._clock() >= expires - EXPIRY_MARGIN_S

    # --- login -----------------------------------------------------------------------------

    def _require_email(self) -> str:
        if not self.email:
            raise ConfigError(
                "no Enlighten account e-mail: set ENLIGHTEN_EMAIL or `enlighten.email`"
            )
        return self.email

    def _check_guard(self, *, manual: bool) -> None:
        """Refuse before anything is sent when a login now could lock the account out."""
        state = self.guard.reload()
        now = self._clock()
        refused = refusal(state, now, manual=manual)
        if refused is not None:
            raise refused
        if manual:
            self.guard.set(replace(state, last_manual=now))

    def login_state(self) -> dict[str, Any]:
        """May this client log in by itself now; if not, why, until when, what to do."""
        return describe(self.guard.reload(), self._clock())

    def _guarded(self, change: Callable[[GuardState, float], GuardState]) -> None:
        self.guard.set(change(self.guard.reload(), self._clock()))

    async def login(self, password: str | None = None, *, manual: bool = False) -> LoginOutcome:
        """Post the login form; either authenticated now or waiting for a one-time code.

        ``manual``: a person runs `evopt login`, which may try through a block (once a
        minute); automatic logins obey the guard (2026 reference section 6).
        """
        email = self._require_email()
        password = password if password is not None else self._password_provider()
        if not password:
            raise AuthRequiredError(
                "no Enlighten password available",
                hint="set ENLIGHTEN_PASSWORD or run `evopt login` in a terminal",
            )
        register_secret(password)
        self._check_guard(manual=manual)
        self.state.cookies.clear()
        self.state.session_id = self.state.manager_token = None
        self.state.entrez_token = self.state.entrez_expires_at = None
        fields = {"user[email]": email, "user[password]": password}
        try:
            reply, date = await self._post_login(fields)
            outcome = self._accept(reply, email=email, step="login", date=date)
        except SessionLockoutError:
            self.logout()
            self._guarded(after_lockout)
            raise
        except InvalidCredentialsError:
            self._guarded(after_failure)
            raise
        if outcome is LoginOutcome.AUTHENTICATED:
            await self._after_login(email)
        return outcome

    async def _post_login(self, fields: dict[str, str]) -> tuple[LoginReply, str | None]:
        """The JSON login, or the browser form when the JSON route answers 406."""
        transport = self._transport
        path = LOGIN_PATH
        raw = await transport.exchange(
            "POST", path, family="auth", form=fields, authenticated=False
        )
        form = raw.status == 406 and "too many active sessions" not in raw.text.lower()
        if form:
            _LOGGER.info("the JSON login answered 406; logging in through the browser form")
            path = FORM_LOGIN_PATH
            raw = await transport.exchange(
                "POST", path, family="auth", form=fields, authenticated=False
            )
            if raw.status == 406:
                raise transport.not_acceptable("POST", path)
        cookies = self.state.cookies
        claims = jwt_claims(cookies.get(MANAGER_TOKEN_COOKIE))
        reply = judge_login(raw, path=path, cookies=cookies, claims=claims, form=form)
        return reply, raw.headers.get("Date")

    async def _after_login(self, email: str) -> None:
        """A login succeeded: clear the guard, then fetch the Entrez token if there is one."""
        self.guard.set(GuardState())  # the once-a-minute limit is for retries after failures
        session_id = self.state.session_id or _opt_str(
            jwt_claims(self.state.manager_token).get("session_id")
        )
        if not self.entrez_url or not session_id:
            return
        try:
            token = await fetch_entrez_token(
                self._transport,
                self.entrez_url,
                session_id=session_id,
                email=email,
                exp_of=token_expiry,
            )
        except InvalidCredentialsError:
            self.logout()
            self._guarded(after_failure)
            raise
        if token is not None:
            self.state.entrez_token = token.token
            self.state.entrez_expires_at = token.expires_at
            self._save()

    async def submit_otp(self, code: str) -> None:
        """Complete a pending login with the one-time code the user received."""
        if self.pending is None:
            raise AuthRequiredError(
                "no login is waiting for a one-time code",
                hint="run `evopt login` first; Enphase then sends a new code",
            )
        email = self.pending.email
        code = code.strip()
        register_secret(code)
        reply = await self._transport.request(
            "POST",
            OTP_VALIDATE_PATH,
            family="auth",
            form={
                "email": base64.b64encode(email.encode()).decode(),
                "otp": base64.b64encode(code.encode()).decode(),
                "xhrFields[withCredentials]": "true",
            },
            authenticated=False,
            retry=False,
        )
        cookies = self.state.cookies
        parsed = judge_otp(
            reply.data, cookies=cookies, claims=jwt_claims(cookies.get(MANAGER_TOKEN_COOKIE))
        )
        outcome = self._accept(parsed, email=email, step="otp", date=reply.headers.get("Date"))
        if outcome is not LoginOutcome.AUTHENTICATED:
            raise InvalidOtpError("Enlighten did not accept the one-time code")
        await self._after_login(email)

    async def resend_otp(self) -> None:
        """Ask Enlighten to send a new one-time code for the pending login."""
        if self.pending is None:
            raise AuthRequiredError(
                "no login is waiting for a one-time code", hint="run `evopt login` first"
            )
        try:
            reply = await self._transport.request(
                "POST",
                OTP_RESEND_PATH,
                family="auth",
                form={"locale": "en"},
                authenticated=False,
                retry=False,
            )
        except RateLimitedError as err:
            raise OtpThrottledError("Enlighten refused to send another code yet") from err
        data = reply.data if isinstance(reply.data, dict) else {}
        if data.get("isBlocked") is True:
            raise AccountBlockedError("Enlighten has blocked this account's one-time codes")
        self._save()

    def _accept(
        self, reply: LoginReply, *, email: str, step: str, date: str | None
    ) -> LoginOutcome:
        if reply.kind == "blocked":
            self.logout()
            raise AccountBlockedError("Enlighten reports this account as blocked")
        if reply.kind == "invalid":
            if step == "otp":
                raise InvalidOtpError("Enlighten did not accept the one-time code")
            self.logout()
            raise InvalidCredentialsError("Enlighten refused the e-mail or password")
        if reply.kind == "mfa_required":
            self.pending = _Pending(email, self._clock())
            self.state.session_id = self.state.manager_token = None
            self._save()
            _LOGGER.info("password accepted; Enlighten sent a one-time code")
            return LoginOutcome.MFA_REQUIRED
        self.pending = None
        self.state.session_id = reply.session_id
        self.state.manager_token = reply.manager_token
        expires = token_expiry(reply.manager_token)
        if expires is not None:
            now = self._clock()
            expires -= server_clock_offset(date, local_now=now)
        self.state.token_expires_at = expires
        self.state.generation += 1
        register_secret(reply.session_id)
        register_secret(reply.manager_token)
        self._save()
        _LOGGER.info("logged in to Enlighten")
        return LoginOutcome.AUTHENTICATED

    # --- keeping the session alive ----------------------------------------------------------

    async def ensure(self) -> None:
        """Make sure there is a session worth trying before a request goes out."""
        if self.has_session and not self.token_expired():
            return
        generation = self.state.generation
        if self.has_session:
            _LOGGER.info("the Enlighten token has expired; logging in again")
        await self.reauthenticate(generation, reason="no Enlighten session")

    async def reauthenticate(
        self, failed_generation: int, *, reason: str, login_wall: bool = False
    ) -> None:
        """Log in again once for every caller that failed on the same session.

        Concurrent requests that all got a 401 call this with the generation they used; the
        first logs in, the rest find the generation moved on and simply retry.

        A refused re-login (MFA needed, password refused, account blocked) is not attempted
        again for the same generation: every later caller gets the same error until a login
        succeeds. Otherwise each waiting caller, and each later poll, would send another
        one-time code (overwriting the pending login) or another bad password towards a block.
        """
        async with self._lock:
            if self.state.generation != failed_generation and self.has_session:
                return
            if self._refused is not None and self._refused[0] == self.state.generation:
                raise self._refused[1].with_traceback(None)
            if login_wall:
                self._guarded(after_login_wall)
            refused = refusal(self.guard.reload(), self._clock(), manual=False)
            if refused is not None:
                raise refused
            password = self._password_provider()
            if not password:
                raise AuthRequiredError(
                    f"{reason} and no password to log in again",
                    hint="run `evopt login` (or set ENLIGHTEN_PASSWORD for unattended re-login)",
                )
            generation = self.state.generation
            try:
                outcome = await self.login(password)
            except AuthError as err:
                self._refused = (generation, err)
                raise
            if outcome is LoginOutcome.MFA_REQUIRED:
                refused = MfaRequiredError(
                    f"{reason}; Enlighten asks for a one-time code to log in again"
                )
                self._refused = (generation, refused)
                raise refused


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
