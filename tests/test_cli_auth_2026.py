"""`evopt` against the fake cloud's default 2026 profile: headers, logins, discovery, blocks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from optimizer.enlighten.auth import Authenticator
from optimizer.enlighten.loginguard import BLOCK_S, COOLDOWN_S
from optimizer.fakecloud import FakeCloud, FaultRule
from tests.cli_env import EMAIL, PASSWORD, SITE_ID, STATUS_KEYS, Env, make_env

T0 = 1_777_629_600.0


class Clock:
    """The login guard's clock, moved by the test: 24 h pass without anyone waiting."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    defaults = Authenticator.__init__.__kwdefaults__
    assert defaults is not None
    monkeypatch.setitem(defaults, "clock", fake)
    return fake


@pytest.fixture
def env26(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
) -> Iterator[Env]:
    yield from make_env(FakeCloud(), tmp_path, capsys, monkeypatch)


def test_login_sites_and_status_work_on_the_2026_cloud(env26: Env) -> None:
    code, out, err = env26.run("login")
    assert code == 0, err
    assert "Logged in" in out
    assert env26.json("sites") == [{"site_id": SITE_ID, "name": "Example Home"}]
    records = env26.json("status")
    assert set(records[0]) >= STATUS_KEYS
    assert records[0]["login"]["automatic"] == "allowed"
    cloud = env26.cloud
    # Discovery went through the search API; the old paths are gone from the 2026 cloud.
    assert cloud.requests("/app-api/search_sites.json")
    assert not cloud.requests("/service/evse_controller/sites")
    assert all(r.status != 406 for r in cloud.requests())
    # Entrez gave a token, kept with the session (0600) for the calls that want it.
    assert cloud.requests("/tokens", method="POST")
    session = json.loads((env26.state_dir / "session.json").read_text())
    assert session["entrez_token"]
    assert (env26.state_dir / "session.json").stat().st_mode & 0o077 == 0


def test_the_form_login_and_the_empty_body_both_log_in(env26: Env, clock: Clock) -> None:
    env26.cloud.set_profile(login_json_406=True)
    assert env26.run("login")[0] == 0
    assert env26.cloud.requests("/login/login", method="POST")[-1].status == 302
    assert env26.json("status")[0]["sn"]
    env26.cloud.set_profile(login_json_406=False, login_empty_body=True)
    clock.now += 61  # a person logs in at most once a minute
    assert env26.run("login")[0] == 0
    assert env26.json("status")[0]["sn"]


def test_a_lockout_exits_3_and_stops_automatic_logins_for_a_day(env26: Env, clock: Clock) -> None:
    env26.cloud.set_profile(login_lockout=True)
    code, _, err = env26.run("status")
    assert code == 3
    assert "too many active sessions" in err
    assert "sign out" in err
    assert env26.logins() == 1
    for later in (60.0, 3600.0, BLOCK_S - 60):
        clock.now = T0 + later
        code, _, err = env26.run("status")
        assert code == 3
        assert "automatic Enlighten logins stopped until 2026-05-02T10:00:00+00:00" in err
    assert env26.logins() == 1  # no attempt while blocked, across fresh processes
    env26.cloud.set_profile(login_lockout=False)
    clock.now = T0 + BLOCK_S + 1
    assert env26.run("status")[0] == 0  # the block ends by itself
    assert env26.logins() == 2


def test_a_persons_login_through_a_lockout_and_its_end(env26: Env, clock: Clock) -> None:
    assert env26.run("login")[0] == 0
    env26.cloud.set_profile(login_lockout=True)
    clock.now = T0 + 30
    assert env26.run("login")[0] == 3  # a person may try through a block: the lock-out
    assert env26.logins() == 2
    clock.now = T0 + 50
    code, _, err = env26.run("login")
    assert code == 3
    assert "wait 40 s" in err  # a person, too, retries at most once a minute
    assert env26.logins() == 2
    env26.cloud.set_profile(login_lockout=False)
    clock.now = T0 + 200
    assert env26.run("login")[0] == 0
    assert env26.json("status")[0]["login"]["automatic"] == "allowed"  # success cleared it


def test_status_shows_a_standing_block_while_the_session_still_works(env26: Env) -> None:
    assert env26.run("login")[0] == 0
    guard = env26.state_dir / "login_guard.json"
    guard.write_text(json.dumps({"blocked_until": T0 + 3600, "reason": "lockout"}))
    login = env26.json("status")[0]["login"]
    assert login["automatic"] == "blocked"
    assert "too many active sessions" in login["reason"]
    assert login["until"] == "2026-05-01T11:00:00+00:00"
    assert "sign out" in login["action"]
    code, out, _ = env26.run("status")
    assert code == 0
    assert "Logins: automatic Enlighten logins blocked until 2026-05-01T11:00:00+00:00" in out


def test_three_rejections_suspend_and_status_says_so(
    env26: Env, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert env26.run("login")[0] == 0
    monkeypatch.setenv("ENLIGHTEN_PASSWORD", "not-the-password")
    for n in range(3):
        env26.cloud.expire_sessions()
        clock.now = T0 + n * (COOLDOWN_S + 1)
        code, _, err = env26.run("status")
        assert code == 3, err
    assert env26.logins() == 4
    clock.now += COOLDOWN_S + 1
    code, _, err = env26.run("status")
    assert code == 3
    assert "refused the password several times" in err
    assert "ENLIGHTEN_PASSWORD" in err
    assert env26.logins() == 4  # suspended: nothing sent
    # A person fixes the password and logs in: the suspension is gone, status says allowed.
    monkeypatch.setenv("ENLIGHTEN_PASSWORD", PASSWORD)
    assert env26.run("login")[0] == 0
    code, out, _ = env26.run("status")
    assert code == 0
    assert "Logins:" not in out


def test_status_text_names_a_cooldown_when_the_session_works(env26: Env, clock: Clock) -> None:
    assert env26.run("login")[0] == 0
    guard = env26.state_dir / "login_guard.json"
    guard.write_text(json.dumps({"rejections": 1, "cooldown_until": T0 + COOLDOWN_S}))
    code, out, _ = env26.run("status")
    assert code == 0
    assert "Logins: automatic Enlighten logins cooling down until" in out
    assert EMAIL not in out


def test_login_5xx_is_a_cloud_failure_not_a_refused_password(env26: Env) -> None:
    env26.cloud.faults.add(FaultRule(kind="status", path="/login/login.json", status=503))
    code, _, err = env26.run("login")
    assert code == 4
    assert "password was not refused" in err
    assert (
        not (env26.state_dir / "login_guard.json").exists()
        or json.loads((env26.state_dir / "login_guard.json").read_text())["rejections"] == 0
    )


def test_an_empty_search_asks_for_a_numeric_site_id(env26: Env) -> None:
    code, out, err = env26.run("sites", "--json")
    assert code == 0
    assert json.loads(out)
    # An account whose search comes back empty: `sites` says what to set.
    env26.cloud.add_fault(
        "status", path="search_sites.json", status=200, body={"sites": []}, times=0
    )
    code, out, err = env26.run("sites", "--json")
    assert code == 0
    assert json.loads(out) == []
    assert "numeric id" in err
    code, _, err = env26.run("status")
    assert code == 1
    assert "enlighten.site_id" in err
