"""`evopt gateway token`, `evopt gateway check`, and the surplus source in `evopt status`.

In-process against the fake cloud and the fake gateway (each on its own thread, on one site
model and a real-time clock, so the service's clock and the fakes' agree): the owner stores a
token, checks the gateway, the service runs a tick, status says where the surplus came from;
when the token expires the tick still works, from the buckets, and status says what to do.
"""

from __future__ import annotations

import io
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from optimizer.fakecloud import FakeClock, FakeCloud
from optimizer.gateway.fake import FakeGateway, run_gateway_in_thread
from optimizer.gateway.token import store_token
from tests.cli_env import Env, make_env
from tests.test_service import HOLD_ONLY


@pytest.fixture
def site(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Env, FakeGateway]]:
    cloud = FakeCloud(clock=FakeClock(realtime=True))
    gateway = FakeGateway(cloud)
    with run_gateway_in_thread(gateway) as host:
        for env in make_env(cloud, tmp_path, capsys, monkeypatch, site_id=1234567):
            with env.config.open("a", encoding="utf-8") as config:
                config.write(f"surplus:\n  source: gateway\ngateway:\n  host: {host}\n")
                rules = tmp_path / "rules.yaml"
                rules.write_text(HOLD_ONLY, encoding="utf-8")
                config.write(f"rules: ['{rules}']\n")
            yield env, gateway


def test_store_a_token_check_the_gateway_and_see_the_source_in_status(
    site: tuple[Env, FakeGateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    env, gateway = site
    token = gateway.issue_token()
    monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
    code, out, err = env.run("gateway", "token", "--from-file", "-")
    assert code == 0, err
    path = env.state_dir / "gateway.token"
    assert f"Stored an owner token for gateway {gateway.serial}, valid until" in out
    assert f"in {path} (mode 0600)" in out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    printed = [out, err]

    checked = env.json("gateway", "check")
    assert checked["answers"] is True
    assert "net consumption" in checked["features"]
    assert checked["production_w"] is not None

    code, out, err = env.run("run", "--once")
    assert code == 0, err
    printed += [out, err]
    [charger] = env.json("status")
    assert charger["service"]["surplus_source"] == "gateway"
    code, out, _ = env.run("status")
    assert "surplus from gateway" in out

    gateway.expire_tokens()  # a year later
    code, out, err = env.run("run", "--once")
    assert code == 0, err  # the tick did not fail: the buckets stood in
    printed += [out, err]
    [charger] = env.json("status")
    assert charger["service"]["surplus_source"].startswith(
        "lifetime_energy (gateway refused the token since "
    )
    code, out, err = env.run("gateway", "check")
    assert code == 3
    assert "evopt gateway token" in out
    printed += [out, err]

    # The token is never printed back, logged, nor written anywhere but its own file.
    assert all(token not in text for text in printed)
    for file in env.state_dir.iterdir():
        if file != path:
            assert token.encode() not in file.read_bytes(), file


def test_an_expired_token_is_not_stored(site: tuple[Env, FakeGateway]) -> None:
    env, gateway = site
    token_file = env.state_dir.parent / "old.token"
    token_file.write_text(gateway.issue_token(lifetime_s=-60))
    code, _, err = env.run("gateway", "token", "--from-file", str(token_file))
    assert code == 3
    assert "expired" in err
    assert not (env.state_dir / "gateway.token").exists()


def test_check_without_a_gateway_block_says_what_to_add(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for env in make_env(FakeCloud(), tmp_path, capsys, monkeypatch):
        code, _, err = env.run("gateway", "check")
        assert code == 1
        assert "add gateway.host" in err


# --- `evopt gateway token --fetch`: the token through the Enlighten login (issue 14) --------


def _printed_nowhere(token: str, env: Env, texts: list[str]) -> None:
    """The token is in no output, and in no state file but its own."""
    assert all(token not in text for text in texts)
    for file in env.state_dir.iterdir():
        if file.name != "gateway.token":
            assert token.encode() not in file.read_bytes(), file


def test_fetch_logs_in_asks_entrez_and_the_gateway_accepts_the_token(
    site: tuple[Env, FakeGateway],
) -> None:
    env, gateway = site
    code, out, err = env.run("login")
    assert code == 0, err
    logins = env.logins()

    code, out, err = env.run("gateway", "token", "--fetch")
    assert code == 0, err
    path = env.state_dir / "gateway.token"
    token = path.read_text(encoding="utf-8").strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"Fetched and stored an owner token for gateway {gateway.serial}" in out
    assert "(364 days)" in out or "(365 days)" in out  # an owner's year
    assert env.logins() == logins  # the stored session served: no second login
    asked = [r.json for r in env.cloud.requests("/tokens", method="POST")]
    assert [body["serial_num"] for body in asked if "serial_num" in body] == [gateway.serial]
    assert gateway.requests["/info"] >= 1  # the serial came from the gateway itself

    checked = env.json("gateway", "check")  # the fake gateway takes the fetched token
    assert checked["answers"] is True
    code, out2, err2 = env.run("run", "--once")
    assert code == 0, err2
    [charger] = env.json("status")
    assert charger["service"]["surplus_source"] == "gateway"
    _printed_nowhere(token, env, [out, err, out2, err2])


def test_fetch_without_a_session_logs_in_once(site: tuple[Env, FakeGateway]) -> None:
    env, _ = site
    result = env.json("gateway", "token", "--fetch")
    assert result["source"] == "entrez"
    assert result["user_type"] == "owner"
    assert env.logins() == 1


def test_without_a_terminal_and_nothing_piped_in_the_token_is_fetched(
    site: tuple[Env, FakeGateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    env, gateway = site
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # systemd, cron: stdin is /dev/null
    result = env.json("gateway", "token")
    assert result["source"] == "entrez"
    assert result["gateway_serial"] == gateway.serial


def test_fetch_with_a_wrong_password_exits_3(
    site: tuple[Env, FakeGateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    env, _ = site
    monkeypatch.setenv("ENLIGHTEN_PASSWORD", "wrong")
    code, out, err = env.run("gateway", "token", "--fetch")
    assert code == 3
    assert "refused the e-mail or password" in err
    assert not (env.state_dir / "gateway.token").exists()
    assert "wrong" not in out + err


def test_entrez_refusing_a_gateway_of_another_account_exits_3_with_the_reason(
    site: tuple[Env, FakeGateway],
) -> None:
    env, gateway = site
    env.cloud.gateways.pop(gateway.serial)  # Entrez does not know this gateway for us
    code, _, err = env.run("gateway", "token", "--fetch")
    assert code == 3
    assert f"Entrez refused a token for gateway {gateway.serial} (HTTP 403" in err
    assert "not a gateway of this account's sites" in err
    assert not (env.state_dir / "gateway.token").exists()


def test_entrez_failing_exits_4_and_keeps_the_stored_token(
    site: tuple[Env, FakeGateway],
) -> None:
    env, _ = site
    path = env.state_dir / "gateway.token"
    env.json("gateway", "token", "--fetch")
    before = path.read_text(encoding="utf-8")
    env.cloud.add_fault("status", path="/tokens", method="POST", status=503)
    code, _, err = env.run("gateway", "token", "--fetch")
    assert code == 4, err
    assert "Entrez is not issuing tokens now (HTTP 503" in err
    assert path.read_text(encoding="utf-8") == before


def test_an_unreachable_gateway_exits_4(site: tuple[Env, FakeGateway]) -> None:
    env, gateway = site
    gateway.faults.add("disconnect", path="/info", times=None)
    text = env.config.read_text(encoding="utf-8")  # pyenphase retries /info within this
    env.config.write_text(text.replace("gateway:\n", "gateway:\n  timeout: 1s\n"), "utf-8")
    code, _, err = env.run("gateway", "token", "--fetch")
    assert code == 4
    assert "does not tell its serial" in err
    assert not [r for r in env.cloud.requests("/tokens", method="POST") if "serial_num" in r.json]


def test_fetch_and_from_file_are_exclusive(site: tuple[Env, FakeGateway]) -> None:
    env, _ = site
    with pytest.raises(SystemExit) as exited:
        env.run("gateway", "token", "--fetch", "--from-file", "-")
    assert exited.value.code == 2


def test_status_says_when_the_token_expires_and_why_its_renewal_failed(
    site: tuple[Env, FakeGateway],
) -> None:
    env, gateway = site
    path = env.state_dir / "gateway.token"
    env.state_dir.mkdir(parents=True, exist_ok=True)
    store_token(path, gateway.issue_token(lifetime_s=10 * 86400))
    env.cloud.gateways.pop(gateway.serial)  # Entrez refuses to renew it
    code, out, err = env.run("run", "--once")
    assert code == 0, err  # the tick did not fail
    [charger] = env.json("status")
    token = charger["service"]["gateway_token"]
    assert token["expires_at"] is not None
    assert "HTTP 403" in token["renewal_failed"]
    assert token["next_renewal_after"] is not None
    code, out, _ = env.run("status")
    assert "gateway token until " in out
    assert "gateway token renewal failed: Entrez refused a token for gateway" in out


def test_a_stored_session_the_cloud_ended_gets_one_fresh_login(
    site: tuple[Env, FakeGateway],
) -> None:
    env, gateway = site
    assert env.run("login")[0] == 0
    env.cloud.auth.expire_all()  # the session ended on the server; locally it looks alive
    result = env.json("gateway", "token", "--fetch")
    assert result["gateway_serial"] == gateway.serial
    assert env.logins() == 2  # one more login, after Entrez's 401, and no more


def test_entrez_unreachable_exits_4(site: tuple[Env, FakeGateway]) -> None:
    env, _ = site
    assert env.run("login")[0] == 0
    env.cloud.add_fault("disconnect", path="/tokens", method="POST", times=None)
    code, _, err = env.run("gateway", "token", "--fetch")
    assert code == 4, err
    assert not (env.state_dir / "gateway.token").exists()
