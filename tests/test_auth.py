"""Login, the one-time-code step across processes, the session file, and token expiry."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aioresponses import aioresponses
from multidict import CIMultiDict
from yarl import URL

from optimizer.enlighten.auth import (
    Authenticator,
    LoginOutcome,
    SessionStore,
    token_expiry,
)
from optimizer.enlighten.errors import (
    AccountBlockedError,
    AuthRequiredError,
    ConfigError,
    InvalidCredentialsError,
    InvalidOtpError,
    OtpThrottledError,
)
from optimizer.enlighten.transport import Transport
from optimizer.logsafe import redact
from tests.fixtures import load_fixture, patched_fixture

BASE = "https://enlighten.enphaseenergy.com"
LOGIN_URL = BASE + "/login/login.json"
OTP_URL = BASE + "/app-api/validate_login_otp"
RESEND_URL = BASE + "/app-api/generate_mfa_login_otp"

PRE_MFA_COOKIES = {
    "_enlighten_4_session": "pre-mfa-session-cookie-a1",
    "XSRF-TOKEN": "pre-mfa-xsrf-token-a1",
    "login_otp_nonce": "otp-nonce-value-a1",
}


def set_cookies(cookies: dict[str, str]) -> CIMultiDict[str]:
    return CIMultiDict(
        ("Set-Cookie", f"{name}={value}; Path=/; Secure") for name, value in cookies.items()
    )


def posts(mocked: aioresponses, url: str) -> list[Any]:
    return mocked.requests.get(("POST", URL(url)), [])


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
async def make_auth(state_dir: Path, creds: Any) -> AsyncIterator[Callable[..., Authenticator]]:
    """Each call is a fresh "process": its own transport and state, sharing the state dir."""
    transports: list[Transport] = []

    def build(
        *,
        base_url: str = BASE,
        email: str | None = creds.email,
        password: str | None = creds.password,
        clock: Callable[[], float] | None = None,
    ) -> Authenticator:
        transport = Transport(base_url=base_url)
        transports.append(transport)
        extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
        return Authenticator(
            transport,
            email=email,
            password_provider=lambda: password,
            store=SessionStore(state_dir),
            **extra,
        )

    yield build
    for transport in transports:
        await transport.close()


def session_file(state_dir: Path) -> Path:
    return state_dir / "session.json"


# --- login without MFA -----------------------------------------------------------------------


async def test_login_without_mfa_persists_the_session(
    mock_cloud: aioresponses,
    make_auth: Callable[..., Authenticator],
    make_jwt: Callable[..., str],
    state_dir: Path,
    creds: Any,
) -> None:
    token = make_jwt(sub="owner", exp=1_900_000_000)
    reply = patched_fixture("login_ok.json", {"manager_token": token})
    cookies = {"_enlighten_4_session": "authed-session-cookie-b2", "XSRF-TOKEN": "xsrf-b2"}
    mock_cloud.post(LOGIN_URL, payload=reply, headers=set_cookies(cookies))
    auth = make_auth()
    generation = auth.state.generation

    outcome = await auth.login()

    assert outcome is LoginOutcome.AUTHENTICATED
    (call,) = posts(mock_cloud, LOGIN_URL)
    assert call.kwargs["data"] == {"user[email]": creds.email, "user[password]": creds.password}
    assert "e-auth-token" not in call.kwargs["headers"]
    assert "Authorization" not in call.kwargs["headers"]
    assert auth.state.session_id == reply["session_id"]
    assert auth.state.manager_token == token
    assert auth.state.token_expires_at == 1_900_000_000.0
    assert auth.state.generation == generation + 1
    assert auth.state.cookies == cookies
    assert auth.has_session
    assert auth.pending is None

    path = session_file(state_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text(encoding="utf-8")
    assert creds.password not in text
    assert json.loads(text)["session_id"] == reply["session_id"]
    assert redact(f"{reply['session_id']} {token}") == "*** ***"

    second = make_auth(password=None)  # another process, no password needed
    assert second.state.session_id == reply["session_id"]
    assert second.state.manager_token == token
    assert second.state.token_expires_at == 1_900_000_000.0
    assert second.state.cookies == cookies
    assert second.has_session
    assert not second.token_expired()


async def test_login_without_email_is_a_config_error(
    make_auth: Callable[..., Authenticator],
) -> None:
    auth = make_auth(email=None)
    with pytest.raises(ConfigError, match="ENLIGHTEN_EMAIL"):
        await auth.login()


async def test_login_without_password_needs_one(
    mock_cloud: aioresponses, make_auth: Callable[..., Authenticator]
) -> None:
    auth = make_auth(password=None)
    with pytest.raises(AuthRequiredError, match="password"):
        await auth.login()
    assert posts(mock_cloud, LOGIN_URL) == []


# --- login with MFA, completed by a second process -------------------------------------------


@pytest.mark.parametrize("fixture", ["login_mfa.json", "login_requires_mfa.json"])
async def test_mfa_login_then_otp_from_another_process(
    mock_cloud: aioresponses,
    make_auth: Callable[..., Authenticator],
    state_dir: Path,
    creds: Any,
    fixture: str,
) -> None:
    mock_cloud.post(LOGIN_URL, payload=load_fixture(fixture), headers=set_cookies(PRE_MFA_COOKIES))
    first = make_auth()

    outcome = await first.login()

    assert outcome is LoginOutcome.MFA_REQUIRED
    assert first.pending is not None
    assert first.pending.email == creds.email
    assert first.state.session_id is None
    assert first.state.manager_token is None
    assert not first.has_session
    assert first.state.generation == 0
    saved = json.loads(session_file(state_dir).read_text(encoding="utf-8"))
    assert saved["pending_mfa"]["email"] == creds.email
    assert creds.password not in json.dumps(saved)

    # `evopt login --otp CODE` runs later as a separate process.
    otp_reply = load_fixture("otp_ok.json")
    authed = {"_enlighten_4_session": "post-mfa-session-cookie-a1"}
    mock_cloud.post(OTP_URL, payload=otp_reply, headers=set_cookies(authed))
    second = make_auth(password=None)
    assert second.pending is not None
    assert second.state.cookies == PRE_MFA_COOKIES

    await second.submit_otp(" 123456\n")

    (call,) = posts(mock_cloud, OTP_URL)
    assert call.kwargs["data"] == {
        "email": base64.b64encode(creds.email.encode()).decode(),
        "otp": base64.b64encode(b"123456").decode(),
        "xhrFields[withCredentials]": "true",
    }
    headers = call.kwargs["headers"]
    assert headers["X-CSRF-Token"] == PRE_MFA_COOKIES["XSRF-TOKEN"]
    sent_cookies = dict(item.split("=", 1) for item in headers["Cookie"].split("; "))
    assert sent_cookies == PRE_MFA_COOKIES
    assert second.state.session_id == otp_reply["session_id"]
    assert second.state.manager_token == otp_reply["manager_token"]
    assert second.state.cookies["_enlighten_4_session"] == "post-mfa-session-cookie-a1"
    assert second.pending is None
    assert second.has_session
    assert second.state.generation == 1

    third = make_auth(password=None)
    assert third.has_session
    assert third.pending is None
    assert third.state.session_id == otp_reply["session_id"]


async def mfa_pending(mock_cloud: aioresponses, make_auth: Callable[..., Authenticator]) -> None:
    mock_cloud.post(
        LOGIN_URL, payload=load_fixture("login_mfa.json"), headers=set_cookies(PRE_MFA_COOKIES)
    )
    assert await make_auth().login() is LoginOutcome.MFA_REQUIRED


async def test_wrong_otp_is_refused_and_the_login_stays_pending(
    mock_cloud: aioresponses, make_auth: Callable[..., Authenticator]
) -> None:
    await mfa_pending(mock_cloud, make_auth)
    mock_cloud.post(OTP_URL, payload=load_fixture("otp_invalid.json"))
    auth = make_auth()

    with pytest.raises(InvalidOtpError):
        await auth.submit_otp("000000")

    assert auth.pending is not None
    assert not auth.has_session
    assert make_auth().pending is not None  # still pending on disk: a newer code can be tried


async def test_blocked_otp_is_account_blocked(
    mock_cloud: aioresponses, make_auth: Callable[..., Authenticator], state_dir: Path
) -> None:
    await mfa_pending(mock_cloud, make_auth)
    mock_cloud.post(OTP_URL, payload=load_fixture("otp_blocked.json"))
    auth = make_auth()

    with pytest.raises(AccountBlockedError):
        await auth.submit_otp("000000")

    assert auth.pending is None
    assert not auth.has_session
    assert not session_file(state_dir).exists()


async def test_submit_otp_with_nothing_pending(
    mock_cloud: aioresponses, make_auth: Callable[..., Authenticator]
) -> None:
    auth = make_auth()

    with pytest.raises(AuthRequiredError, match="one-time code"):
        await auth.submit_otp("123456")

    assert posts(mock_cloud, OTP_URL) == []


async def test_resend_otp_posts_locale(
    mock_cloud: aioresponses, make_auth: Callable[..., Authenticator]
) -> None:
    await mfa_pending(mock_cloud, make_auth)
    mock_cloud.post(RESEND_URL, payload=load_fixture("otp_resend.json"))
    auth = make_auth()

    await auth.resend_otp()

    (call,) = posts(mock_cloud, RESEND_URL)
    assert call.kwargs["data"] == {"locale": "en"}
    assert call.kwargs["headers"]["X-CSRF-Token"] == PRE_MFA_COOKIES["XSRF-TOKEN"]
    assert auth.pending is not None


async def test_resend_otp_throttled(
    mock_cloud: aioresponses, make_auth: Callable[..., Authenticator], sleeps: Any
) -> None:
    await mfa_pending(mock_cloud, make_auth)
    mock_cloud.post(RESEND_URL, status=429, payload={}, headers={"Retry-After": "30"}, repeat=True)
    auth = make_auth()

    with pytest.raises(OtpThrottledError) as caught:
        await auth.resend_otp()

    assert "30 s" in caught.value.user_message()
    assert len(posts(mock_cloud, RESEND_URL)) == 1
    assert sleeps.delays == []


async def test_resend_otp_blocked(
    mock_cloud: aioresponses, make_auth: Callable[..., Authenticator]
) -> None:
    await mfa_pending(mock_cloud, make_auth)
    mock_cloud.post(RESEND_URL, payload=patched_fixture("otp_resend.json", {"isBlocked": True}))

    with pytest.raises(AccountBlockedError):
        await make_auth().resend_otp()


async def test_resend_otp_with_nothing_pending(
    mock_cloud: aioresponses, make_auth: Callable[..., Authenticator]
) -> None:
    with pytest.raises(AuthRequiredError):
        await make_auth().resend_otp()
    assert posts(mock_cloud, RESEND_URL) == []


# --- refused logins --------------------------------------------------------------------------


async def test_invalid_credentials(
    mock_cloud: aioresponses, make_auth: Callable[..., Authenticator]
) -> None:
    mock_cloud.post(LOGIN_URL, payload=load_fixture("login_invalid.json"))
    auth = make_auth()

    with pytest.raises(InvalidCredentialsError) as caught:
        await auth.login()

    assert caught.value.exit_code == 3
    assert not auth.has_session
    assert auth.pending is None


async def test_blocked_account(
    mock_cloud: aioresponses, make_auth: Callable[..., Authenticator]
) -> None:
    mock_cloud.post(LOGIN_URL, payload=load_fixture("login_blocked.json"))

    with pytest.raises(AccountBlockedError):
        await make_auth().login()


async def test_blocked_wins_over_success(
    mock_cloud: aioresponses, make_auth: Callable[..., Authenticator]
) -> None:
    mock_cloud.post(LOGIN_URL, payload=patched_fixture("login_mfa.json", {"isBlocked": True}))

    with pytest.raises(AccountBlockedError):
        await make_auth().login()


async def test_401_on_login_is_invalid_credentials(
    mock_cloud: aioresponses, make_auth: Callable[..., Authenticator]
) -> None:
    mock_cloud.post(LOGIN_URL, status=401, payload={"message": "Unauthorized"}, repeat=True)

    with pytest.raises(InvalidCredentialsError):
        await make_auth().login()

    assert len(posts(mock_cloud, LOGIN_URL)) == 1


async def test_refused_login_forgets_the_old_session(
    mock_cloud: aioresponses,
    make_auth: Callable[..., Authenticator],
    state_dir: Path,
) -> None:
    mock_cloud.post(LOGIN_URL, payload=load_fixture("login_ok.json"))
    mock_cloud.post(LOGIN_URL, payload=load_fixture("login_invalid.json"))
    auth = make_auth()
    await auth.login()
    assert session_file(state_dir).exists()

    with pytest.raises(InvalidCredentialsError):
        await auth.login()

    assert not auth.has_session
    assert not make_auth().has_session


# --- the session file ------------------------------------------------------------------------


def write_session(state_dir: Path, data: dict[str, Any], mode: int = 0o600) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = session_file(state_dir)
    path.write_text(json.dumps(data), encoding="utf-8")
    path.chmod(mode)
    return path


def stored_session(creds: Any, **overrides: Any) -> dict[str, Any]:
    return {
        "base_url": BASE,
        "email": creds.email,
        "cookies": {"_enlighten_4_session": "stored-cookie-c3"},
        "session_id": "stored-session-id-c3",
        "manager_token": "stored.manager.token-c3",
        "token_expires_at": None,
        "pending_mfa": None,
        **overrides,
    }


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_session_file_readable_by_others_is_refused(
    make_auth: Callable[..., Authenticator], state_dir: Path, creds: Any, mode: int
) -> None:
    path = write_session(state_dir, stored_session(creds), mode)

    with pytest.raises(ConfigError) as caught:
        make_auth()

    assert "chmod 600" in caught.value.message
    assert str(path) in caught.value.message
    assert caught.value.exit_code == 1


def test_session_file_for_another_host_is_ignored(
    make_auth: Callable[..., Authenticator], state_dir: Path, creds: Any
) -> None:
    write_session(state_dir, stored_session(creds, base_url="http://127.0.0.1:8123"))

    auth = make_auth()

    assert auth.state.session_id is None
    assert auth.state.cookies == {}
    assert not auth.has_session


def test_session_file_for_another_account_is_ignored(
    make_auth: Callable[..., Authenticator], state_dir: Path, creds: Any
) -> None:
    write_session(state_dir, stored_session(creds, email="someone.else@example.org"))

    assert not make_auth().has_session


def test_session_file_is_loaded(
    make_auth: Callable[..., Authenticator], state_dir: Path, creds: Any
) -> None:
    write_session(state_dir, stored_session(creds))

    auth = make_auth(email=None)

    assert auth.has_session
    assert auth.email == creds.email
    assert auth.state.auth_token() == "stored-session-id-c3"
    assert redact("stored-cookie-c3 stored.manager.token-c3") == "*** ***"


def test_corrupt_session_file_is_ignored(
    make_auth: Callable[..., Authenticator], state_dir: Path
) -> None:
    state_dir.mkdir(parents=True)
    path = session_file(state_dir)
    path.write_text("{not json", encoding="utf-8")
    path.chmod(0o600)

    assert not make_auth().has_session


# --- token expiry and ensure() ---------------------------------------------------------------


def test_token_expiry(make_jwt: Callable[..., str]) -> None:
    assert token_expiry(make_jwt(exp=1_800_000_000)) == 1_800_000_000.0
    assert token_expiry(make_jwt(exp=1_800_000_000.5)) == 1_800_000_000.5
    assert token_expiry(load_fixture("login_ok.json")["manager_token"]) is None  # no exp
    assert token_expiry(make_jwt(exp="1800000000")) is None
    assert token_expiry(make_jwt(exp=True)) is None
    assert token_expiry(None) is None
    assert token_expiry("") is None
    assert token_expiry("not-a-jwt") is None
    assert token_expiry("a.b.c.d") is None
    assert token_expiry("header.!!!.sig") is None
    assert token_expiry("header.bm90IGpzb24.sig") is None  # "not json"
    assert token_expiry("header.WzEsMl0.sig") is None  # "[1,2]"
    assert token_expiry("header.__8.sig") is None  # not UTF-8


async def test_ensure_keeps_a_valid_session(
    mock_cloud: aioresponses,
    make_auth: Callable[..., Authenticator],
    state_dir: Path,
    creds: Any,
) -> None:
    clock = Clock()
    write_session(state_dir, stored_session(creds, token_expires_at=clock.now + 3600))
    auth = make_auth(clock=clock)

    await auth.ensure()

    assert posts(mock_cloud, LOGIN_URL) == []
    assert auth.state.session_id == "stored-session-id-c3"


async def test_ensure_logs_in_again_when_the_token_expired(
    mock_cloud: aioresponses,
    make_auth: Callable[..., Authenticator],
    make_jwt: Callable[..., str],
    state_dir: Path,
    creds: Any,
) -> None:
    clock = Clock()
    write_session(state_dir, stored_session(creds, token_expires_at=clock.now + 30))
    fresh = make_jwt(exp=clock.now + 86_400)
    mock_cloud.post(LOGIN_URL, payload=patched_fixture("login_ok.json", {"manager_token": fresh}))
    auth = make_auth(clock=clock)
    assert auth.token_expired()  # within the safety margin

    await auth.ensure()

    assert len(posts(mock_cloud, LOGIN_URL)) == 1
    assert auth.state.manager_token == fresh
    assert auth.state.token_expires_at == clock.now + 86_400
    assert not auth.token_expired()

    await auth.ensure()
    assert len(posts(mock_cloud, LOGIN_URL)) == 1


async def test_ensure_without_password_asks_for_evopt_login(
    mock_cloud: aioresponses,
    make_auth: Callable[..., Authenticator],
    state_dir: Path,
    creds: Any,
) -> None:
    clock = Clock()
    write_session(state_dir, stored_session(creds, token_expires_at=clock.now - 1))
    auth = make_auth(password=None, clock=clock)

    with pytest.raises(AuthRequiredError) as caught:
        await auth.ensure()

    assert "evopt login" in caught.value.user_message()
    assert caught.value.exit_code == 3
    assert posts(mock_cloud, LOGIN_URL) == []


async def test_ensure_with_no_session_and_no_password(
    mock_cloud: aioresponses, make_auth: Callable[..., Authenticator]
) -> None:
    with pytest.raises(AuthRequiredError) as caught:
        await make_auth(password=None).ensure()

    assert "evopt login" in caught.value.user_message()
    assert posts(mock_cloud, LOGIN_URL) == []


async def test_ensure_with_pending_mfa_does_not_use_the_pre_mfa_cookie(
    mock_cloud: aioresponses, make_auth: Callable[..., Authenticator]
) -> None:
    await mfa_pending(mock_cloud, make_auth)
    auth = make_auth(password=None)
    assert auth.state.auth_token() == PRE_MFA_COOKIES["_enlighten_4_session"]

    with pytest.raises(AuthRequiredError):
        await auth.ensure()


def test_logout_removes_the_session_file(
    make_auth: Callable[..., Authenticator], state_dir: Path, creds: Any
) -> None:
    write_session(state_dir, stored_session(creds))
    auth = make_auth()

    auth.logout()

    assert not auth.has_session
    assert auth.state.cookies == {}
    assert not session_file(state_dir).exists()
