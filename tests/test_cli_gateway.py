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
