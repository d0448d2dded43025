"""Logins that cannot lock an account out, and the 2026 login replies (reference section 6)."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aioresponses import aioresponses
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from optimizer.config import load_config
from optimizer.enlighten.auth import Authenticator, SessionStore
from optimizer.enlighten.client import EnlightenClient, default_entrez_url
from optimizer.enlighten.entrez import parse_entrez_reply
from optimizer.enlighten.errors import (
    EXIT_AUTH,
    AuthServiceDownError,
    InvalidCredentialsError,
    LoginSuspendedError,
    SessionLockoutError,
)
from optimizer.enlighten.loginguard import (
    BLOCK_S,
    COOLDOWN_S,
    GuardState,
    LoginGuard,
    after_failure,
    after_lockout,
    after_login_wall,
    describe,
    refusal,
)
from optimizer.enlighten.loginreply import judge_login, judge_otp
from optimizer.enlighten.models import parse_sites
from optimizer.enlighten.transport import RawReply, Transport
from optimizer.fakecloud import FakeCloud
from optimizer.yamlpos import YamlFileError
from tests.fixtures import load_fixture
from tests.served import served_client

ROOT = "https://enlighten.enphaseenergy.com"
LOGIN = ROOT + "/login/login.json"
FORM = ROOT + "/login/login"
ENTREZ = "https://entrez.enphaseenergy.com/tokens"
EMAIL = "owner.login2026@example.com"
PASSWORD = "Pa55-login-2026-never-logged"
T0 = 1_777_629_600.0


# --- the guard's rules (pure) ------------------------------------------------------------------


def test_a_refused_password_cools_down_then_three_suspend_for_a_day() -> None:
    state = after_failure(GuardState(), T0)
    assert isinstance(refusal(state, T0 + 10, manual=False), LoginSuspendedError)
    assert refusal(state, T0 + COOLDOWN_S + 1, manual=False) is None
    state = after_failure(after_failure(state, T0 + 400), T0 + 800)
    refused = refusal(state, T0 + 800 + COOLDOWN_S + 1, manual=False)
    assert isinstance(refused, LoginSuspendedError)
    assert refused.exit_code == EXIT_AUTH
    assert "until" in refused.message
    assert "refused the password" in refused.message
    assert refusal(state, T0 + 800 + BLOCK_S + 1, manual=False) is None  # ends by itself


def test_a_lockout_blocks_automatic_logins_for_a_day_but_not_a_person() -> None:
    state = after_lockout(GuardState(), T0)
    refused = refusal(state, T0 + BLOCK_S - 1, manual=False)
    assert isinstance(refused, SessionLockoutError)
    assert "sign out" in refused.user_message()
    assert refusal(state, T0 + 1, manual=True) is None
    state = GuardState(last_manual=T0)
    assert isinstance(refusal(state, T0 + 30, manual=True), LoginSuspendedError)
    assert refusal(state, T0 + 61, manual=True) is None


def test_the_login_wall_during_a_cooldown_is_a_block_and_otherwise_nothing() -> None:
    assert after_login_wall(GuardState(), T0) == GuardState()
    state = after_login_wall(after_failure(GuardState(), T0), T0 + 5)
    assert state.blocked(T0 + BLOCK_S)
    assert state.reason == "login_wall"


def test_status_view_names_why_until_and_what_to_do() -> None:
    view = describe(after_lockout(GuardState(), T0), T0 + 1)
    assert view["automatic"] == "blocked"
    assert "too many active sessions" in view["reason"]
    assert view["until"] == "2026-05-02T10:00:00+00:00"
    assert "sign out" in view["action"]
    assert describe(GuardState(), T0)["automatic"] == "allowed"


Event = st.sampled_from(["fail", "lockout", "wall", "success"])


@given(events=st.lists(st.tuples(Event, st.floats(0, 3 * BLOCK_S)), max_size=20))
def test_no_automatic_login_while_a_block_stands(events: list[tuple[str, float]]) -> None:
    """Whatever happened before, a standing block refuses every automatic attempt, and a third
    refusal in a row never leaves automatic logins open."""
    state, now = GuardState(), T0
    for event, gap in events:
        now += gap
        if event == "fail":
            state = after_failure(state, now)
        elif event == "lockout":
            state = after_lockout(state, now)
        elif event == "wall":
            state = after_login_wall(state, now)
        else:
            state = GuardState()
        if state.blocked(now):
            assert refusal(state, now, manual=False) is not None
        if event == "fail" and state.rejections >= 3:
            assert state.blocked(now)  # the third refusal in a row (and each after it)


def test_the_guard_file_is_private_and_survives_a_restart(tmp_path: Path) -> None:
    LoginGuard(tmp_path).set(after_lockout(GuardState(), T0))
    path = tmp_path / "login_guard.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert LoginGuard(tmp_path).state.blocked(T0 + 1)
    path.write_text("{not json")
    assert LoginGuard(tmp_path).state == GuardState()


# --- login replies (pure) ----------------------------------------------------------------------


def _raw(status: int, body: Any, ctype: str = "application/json") -> RawReply:
    text = body if isinstance(body, str) else json.dumps(body)
    return RawReply(status=status, text=text, headers={"Content-Type": ctype})


def _judge(raw: RawReply, cookies: dict[str, str] | None = None, **kw: Any) -> Any:
    claims = kw.pop("claims", {})
    return judge_login(raw, path="/login/login.json", cookies=cookies or {}, claims=claims, **kw)


@pytest.mark.parametrize("status", [200, 401, 403, 429, 503])
def test_too_many_active_sessions_is_a_lockout_at_any_status(status: int) -> None:
    with pytest.raises(SessionLockoutError):
        _judge(_raw(status, load_fixture("login_2026_lockout")), form=False)
    page = "<html><body><p>Too many active sessions.</p></body></html>"
    with pytest.raises(SessionLockoutError):
        _judge(_raw(status, page, "text/html"), form=True)


def test_an_empty_body_is_success_from_the_cookies() -> None:
    cookies = {
        "enlighten_session": "sid-from-cookie",
        "enlighten_manager_token_production": "j.w.t",
    }
    reply = _judge(_raw(200, load_fixture("login_2026_empty")), cookies, form=False)
    assert (reply.kind, reply.session_id, reply.manager_token) == (
        "authenticated",
        "sid-from-cookie",
        "j.w.t",
    )


def test_without_a_session_cookie_the_jwt_session_claim_is_the_session() -> None:
    cookies = {"enlighten_manager_token_production": "j.w.t"}
    reply = _judge(_raw(200, {}), cookies, claims={"session_id": "sid-claim"}, form=False)
    assert reply.session_id == "sid-claim"


def test_the_session_cookie_names_are_tried_in_order() -> None:
    cookies = {"_enlighten_session": "third", "enlighten_session": "second"}
    assert _judge(_raw(200, {}), cookies, form=False).session_id == "second"


def test_login_5xx_is_the_service_down_not_the_password() -> None:
    with pytest.raises(AuthServiceDownError) as caught:
        _judge(_raw(502, {"message": "Bad Gateway"}), form=False)
    assert not isinstance(caught.value, InvalidCredentialsError)
    assert "retry later" in caught.value.user_message()


def test_the_form_page_without_a_session_is_a_refused_password() -> None:
    with pytest.raises(InvalidCredentialsError):
        _judge(_raw(200, "<html>Invalid email or password</html>", "text/html"), form=True)


def test_the_json_reply_with_tokens_is_unchanged() -> None:
    reply = _judge(_raw(200, load_fixture("login_2026")), form=False)
    assert (reply.kind, reply.session_id) == ("authenticated", "<session_id>")


def test_entrez_reply_and_its_missing_expiry() -> None:
    token = parse_entrez_reply(load_fixture("entrez_token_2026"), exp_claim=None)
    assert token is not None
    assert token.expires_at == 1777633200
    token = parse_entrez_reply(load_fixture("entrez_token_2026_no_expiry"), exp_claim=42.0)
    assert token is not None
    assert token.expires_at == 42.0
    assert parse_entrez_reply({"expires_at": 1}, exp_claim=None) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("search_sites_2026", [(1000001, "Home")]),
        ("search_sites_2026_no_title", [(1000001, None)]),
        ("search_sites_2026_systems_wrapper", [(1000002, "Cabin")]),
        ("search_sites_2026_data_items", [(1000003, "Workshop")]),
        ("search_sites_2026_empty", []),
    ],
)
def test_search_sites_is_parsed_tolerantly(name: str, expected: list[Any]) -> None:
    assert [(s.site_id, s.name) for s in parse_sites(load_fixture(name))] == expected


# --- the authenticator against a mocked cloud ----------------------------------------------


@pytest.fixture
async def make_auth(tmp_path: Path) -> AsyncIterator[Callable[..., Authenticator]]:
    clock = {"now": T0}
    made: list[Transport] = []

    def build(**kw: Any) -> Authenticator:
        transport = Transport(base_url=ROOT)
        made.append(transport)
        auth = Authenticator(
            transport,
            email=EMAIL,
            password_provider=lambda: PASSWORD,
            store=SessionStore(tmp_path),
            clock=lambda: clock["now"],
            guard=LoginGuard(tmp_path),
            entrez_url="https://entrez.enphaseenergy.com",
            **kw,
        )
        auth.clock_box = clock  # type: ignore[attr-defined]
        return auth

    yield build
    for transport in made:
        await transport.close()


def _logins(mocked: aioresponses) -> int:
    return sum(
        len(calls) for (verb, url), calls in mocked.requests.items() if "/login/" in str(url)
    )


async def test_a_406_on_the_json_login_falls_back_to_the_browser_form(
    make_auth: Callable[..., Authenticator], tmp_path: Path
) -> None:
    auth = make_auth()
    with aioresponses() as mocked:
        mocked.post(LOGIN, status=406, body="Not Acceptable")
        mocked.post(
            FORM,
            status=302,
            headers={
                "Location": "/web/1000001",
                "Set-Cookie": "_enlighten_4_session=sid-form-1; Path=/",
            },
        )
        mocked.post(ENTREZ, payload=load_fixture("entrez_token_2026"))
        await auth.login()
        form = mocked.requests[("POST", _yarl(FORM))][0].kwargs["headers"]
    assert auth.state.session_id == "sid-form-1"
    assert form["Accept"].startswith("text/html")
    assert form["Origin"] == ROOT
    assert form["Referer"] == ROOT + "/"
    assert "X-Requested-With" not in form
    assert auth.state.entrez_token == "<entrez_jwt>"
    saved = json.loads((tmp_path / "session.json").read_text())
    assert saved["entrez_token"] == "<entrez_jwt>"
    assert saved["entrez_expires_at"] == 1777633200
    assert stat.S_IMODE((tmp_path / "session.json").stat().st_mode) == 0o600


async def test_entrez_refusing_the_session_is_a_refused_login(
    make_auth: Callable[..., Authenticator],
) -> None:
    auth = make_auth()
    with aioresponses() as mocked:
        mocked.post(LOGIN, payload=load_fixture("login_2026"))
        mocked.post(ENTREZ, status=401, payload={"message": "Unauthorized"})
        with pytest.raises(InvalidCredentialsError, match="Entrez"):
            await auth.login()
    assert not auth.has_session


@pytest.mark.parametrize("status", [404, 422, 429, 500])
async def test_other_entrez_failures_carry_on_with_cookies(
    make_auth: Callable[..., Authenticator], status: int
) -> None:
    auth = make_auth()
    with aioresponses() as mocked:
        mocked.post(LOGIN, payload=load_fixture("login_2026"))
        mocked.post(ENTREZ, status=status, payload={})
        await auth.login()
    assert auth.has_session
    assert auth.state.entrez_token is None


async def test_a_lockout_stops_automatic_logins_for_a_day(
    make_auth: Callable[..., Authenticator], tmp_path: Path
) -> None:
    auth = make_auth()
    with aioresponses() as mocked:
        mocked.post(LOGIN, status=401, payload=load_fixture("login_2026_lockout"))
        with pytest.raises(SessionLockoutError) as caught:
            await auth.ensure()
        assert caught.value.exit_code == EXIT_AUTH
        assert _logins(mocked) == 1
        # A restarted process (a new authenticator on the same state dir) holds back too.
        for later in (60.0, 3600.0, BLOCK_S - 60):
            again = make_auth()
            again.clock_box["now"] = T0 + later  # type: ignore[attr-defined]
            with pytest.raises(SessionLockoutError, match="too many active sessions"):
                await again.ensure()
        assert _logins(mocked) == 1
        mocked.post(LOGIN, payload=load_fixture("login_2026"))
        resumed = make_auth()
        resumed.clock_box["now"] = T0 + BLOCK_S + 1  # type: ignore[attr-defined]
        await resumed.ensure()
    assert resumed.has_session
    assert LoginGuard(tmp_path).state == GuardState()


async def test_three_rejections_suspend_and_a_person_clears_it(
    make_auth: Callable[..., Authenticator],
) -> None:
    auth = make_auth()
    box = auth.clock_box  # type: ignore[attr-defined]
    with aioresponses() as mocked:
        mocked.post(LOGIN, status=401, payload={"message": "Unauthorized"}, repeat=True)
        for n in range(3):
            box["now"] = T0 + n * (COOLDOWN_S + 1)
            with pytest.raises(InvalidCredentialsError):
                await auth.reauthenticate(auth.state.generation + n, reason="test")
            auth._refused = None  # a later tick: the per-generation memo does not apply
        box["now"] += COOLDOWN_S + 1
        with pytest.raises(LoginSuspendedError, match="refused the password"):
            await auth.reauthenticate(auth.state.generation, reason="test")
        assert _logins(mocked) == 3
        view = auth.login_state()
        assert view["automatic"] == "suspended"
    with aioresponses() as mocked:
        mocked.post(LOGIN, payload=load_fixture("login_2026"))
        await auth.login(manual=True)  # a person may, and it clears the suspension
    assert auth.login_state()["automatic"] == "allowed"


def _yarl(url: str) -> URL:
    return URL(url)


@pytest.mark.parametrize("body", [None, {}, {"success": True, "isValid": True}])
def test_an_otp_reply_without_a_session_recovers_it_from_the_cookies(body: Any) -> None:
    cookies = {"_enlighten_4_session": "sid-after-otp"}
    reply = judge_otp(body, cookies=cookies, claims={})
    assert (reply.kind, reply.session_id) == ("authenticated", "sid-after-otp")
    assert judge_otp({"isValid": False}, cookies=cookies, claims={}).kind == "invalid"


async def test_the_login_wall_during_a_refusal_cooldown_blocks_for_a_day(
    tmp_path: Path,
) -> None:
    """The cloud showing its sign-in page right after refusing the password is holding the
    account: no re-login now, none for a day (reference section 6)."""
    status = f"{ROOT}/service/evse_controller/1234567/ev_chargers/status"
    LoginGuard(tmp_path).set(after_failure(GuardState(), time.time()))
    async with EnlightenClient(
        base_url=ROOT, email=EMAIL, password_provider=lambda: PASSWORD, state_dir=tmp_path
    ) as client:
        client.transport.state.session_id = "sid-wall-1"
        with aioresponses() as mocked:
            page = "<!DOCTYPE html><html><form action='/login'>Sign in</form></html>"
            mocked.get(status, body=page, content_type="text/html")
            with pytest.raises(SessionLockoutError, match="login page again"):
                await client.status(1234567)
            assert _logins(mocked) == 0
    assert LoginGuard(tmp_path).state.reason == "login_wall"


def test_entrez_url_is_a_config_key_with_a_sensible_default(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("enlighten:\n  entrez_url: https://entrez.example.test/\n", encoding="utf-8")
    assert load_config(path).enlighten.entrez_url == "https://entrez.example.test"
    path.write_text("enlighten:\n  entrez_url: entrez.example.test\n", encoding="utf-8")
    with pytest.raises(YamlFileError, match=r"entrez_url: .*must start with http"):
        load_config(path)
    assert default_entrez_url(ROOT) == "https://entrez.enphaseenergy.com"
    assert default_entrez_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"


async def test_a_failing_entrez_leaves_the_fake_cloud_login_working(tmp_path: Path) -> None:
    cloud = FakeCloud()
    cloud.add_fault("status", path="/tokens", status=503)
    async with served_client(cloud, state_dir=tmp_path) as client:
        await client.auth.ensure()
        assert client.transport.state.entrez_token is None
        assert (await client.status(1234567)).chargers
