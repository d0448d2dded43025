"""`evopt` commands end to end against the fake Enlighten cloud on a free port.

The CLI runs in-process (its `main` is what the console script calls) so that the fake's
request log and state can be asserted on; a few tests run it as a real subprocess to prove the
exit codes and the absence of tracebacks from the outside.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from optimizer.cli import main
from optimizer.fakecloud.profile import LEGACY_2024
from tests.cli_env import PASSWORD, SITE_ID, STATUS_KEYS, Env, write_config

# --- login and reads ---------------------------------------------------------------------------


def test_login_then_every_read_command(env: Env) -> None:
    code, out, _ = env.run("login")
    assert code == 0
    assert "Logged in" in out
    session_file = env.state_dir / "session.json"
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    assert PASSWORD not in session_file.read_text()

    assert env.json("sites") == [{"site_id": SITE_ID, "name": "Example Home"}]

    chargers = env.json("status")
    assert len(chargers) == 1
    assert set(chargers[0]) >= STATUS_KEYS
    assert chargers[0]["sn"] == env.cloud.charger().sn
    assert chargers[0]["mode"] in {"MANUAL_CHARGING", "SCHEDULED_CHARGING", "GREEN_CHARGING"}

    modes = env.json("mode", "get")
    assert [{"sn": m["sn"], "mode": m["mode"]} for m in modes] == [
        {"sn": chargers[0]["sn"], "mode": chargers[0]["mode"]}
    ]
    assert modes[0]["notes"] == []
    battery = env.json("battery", "get")
    assert battery[0]["use_battery"] == env.cloud.charger().green_use_battery
    schedules = env.json("schedule", "list")
    assert [s["id"] for s in schedules[0]["slots"]] == [
        slot["id"] for slot in env.cloud.charger().schedule_slots
    ]
    # One login served every command: the session file was reused.
    assert env.logins() == 1


def test_tables_are_readable(env: Env) -> None:
    env.run("login")
    code, out, _ = env.run("status")
    assert code == 0
    header = out.splitlines()[0].split()
    assert header[:3] == ["SN", "NAME", "STATE"]
    assert env.cloud.charger().sn in out
    code, out, _ = env.run("schedule", "list")
    assert code == 0
    assert out.splitlines()[0].split()[:5] == ["SN", "#", "ID", "TYPE", "START"]


def test_status_reflects_a_charging_session_in_kwh(env: Env) -> None:
    env.cloud.update_charger(plugged_in=True)
    assert env.run("charge", "start", "--amps", "16")[0] == 0
    env.cloud.advance(3600)  # an hour at 16 A x 230 V is about 3.7 kWh
    charger = env.json("status")[0]
    assert charger["plugged_in"] is True
    assert charger["charging"] is True
    assert charger["charge_level_amps"] is None  # 2026: always null
    assert (charger["amps"], charger["amps_source"]) == (16, "remembered")
    assert 2.0 < charger["session_kwh"] < 5.0


def test_status_of_a_session_start_is_in_small_kwh(env: Env) -> None:
    """The first reports of a session carry e_c below 200 Wh: that is Wh, not 150 kWh."""
    env.cloud.update_charger(plugged_in=True, charging=True, level=6)
    env.cloud.advance(300)  # one report: 6 A x 230 V x 5 min = 115 Wh
    assert env.json("status")[0]["session_kwh"] == pytest.approx(0.115)


def test_2024_status_reports_the_charge_level(env: Env) -> None:
    env.cloud.set_profile(**LEGACY_2024)
    env.cloud.update_charger(plugged_in=True, charging=True, level=16)
    env.cloud.advance(3600)
    charger = env.json("status")[0]
    assert charger["charge_level_amps"] == 16
    assert (charger["amps"], charger["amps_source"]) == (16, "status")
    assert 2.0 < charger["session_kwh"] < 5.0


def test_status_reports_the_safe_limit_as_the_minimum(env: Env) -> None:
    env.cloud.update_charger(plugged_in=True)
    assert env.run("charge", "start", "--amps", "16")[0] == 0
    env.cloud.update_charger(safe_limit_state=1)
    charger = env.json("status")[0]
    assert (charger["amps"], charger["amps_source"], charger["safe_limit"]) == (
        6,
        "safe_limit",
        True,
    )
    assert charger["commanded_amps"] == 16


def test_commands_log_in_by_themselves_with_a_password(env: Env) -> None:
    assert env.json("sites")[0]["site_id"] == SITE_ID
    assert env.logins() == 1


def test_config_option_is_accepted_after_the_command(env: Env) -> None:
    code = main(["sites", "--json", "--config", str(env.config)])
    out, _ = env.capsys.readouterr()
    assert code == 0
    assert json.loads(out)[0]["site_id"] == SITE_ID


def test_site_discovery_falls_back(env: Env) -> None:
    """An older deployment without the search API: the old paths, in order."""
    env.cloud.set_profile(search_sites=False, disabled_discovery=["evse_controller", "api_v1"])
    assert env.json("sites") == [{"site_id": SITE_ID, "name": "Example Home"}]
    assert env.cloud.requests("/sites.json")


# --- MFA -----------------------------------------------------------------------------------


def test_mfa_login_with_otp_in_a_second_command(mfa_env: Env) -> None:
    code, _, err = mfa_env.run("login")
    assert code == 3
    assert "evopt login --otp CODE" in err
    code, out, err = mfa_env.run("login", "--otp", "123456")
    assert code == 0, err
    assert "Logged in" in out
    otp_calls = mfa_env.cloud.requests("/app-api/validate_login_otp")
    assert len(otp_calls) == 1
    assert mfa_env.json("status")[0]["sn"]
    assert mfa_env.logins() == 1


def test_mfa_wrong_code_then_right_code(mfa_env: Env) -> None:
    mfa_env.run("login")
    code, _, err = mfa_env.run("login", "--otp", "000000")
    assert code == 3
    assert "did not accept the one-time code" in err
    assert "Traceback" not in err
    code, _, err = mfa_env.run("login", "--otp", "123456")
    assert code == 0, err


def test_mfa_otp_without_a_pending_login(mfa_env: Env) -> None:
    code, _, err = mfa_env.run("login", "--otp", "123456")
    assert code == 3
    assert "no login is waiting" in err


def test_mfa_resend_code(mfa_env: Env) -> None:
    mfa_env.run("login")
    code, out, _ = mfa_env.run("login", "--resend-otp")
    assert code == 0
    assert "new one-time code" in out
    code, _, err = mfa_env.run("login", "--resend-otp")
    assert code == 3
    assert "30 s" in err


def test_mfa_account_whose_session_expires_needs_a_person(mfa_env: Env) -> None:
    mfa_env.run("login")
    assert mfa_env.run("login", "--otp", "123456")[0] == 0
    mfa_env.cloud.expire_sessions()
    code, _, err = mfa_env.run("status")
    assert code == 3
    assert "one-time code" in err


# --- session expiry, shapes, retries ---------------------------------------------------------


def test_session_expiry_mid_run_logs_in_again_once(env: Env) -> None:
    assert env.run("login")[0] == 0
    assert env.json("status")
    env.cloud.expire_sessions()
    assert env.json("status")[0]["sn"]
    assert env.logins() == 2


def test_session_expiry_without_password_says_run_login(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert env.run("login")[0] == 0
    env.cloud.expire_sessions()
    monkeypatch.delenv("ENLIGHTEN_PASSWORD")
    code, _, err = env.run("status")
    assert code == 3
    assert "run `evopt login`" in err


def test_login_wall_instead_of_401_also_logs_in_again(env: Env) -> None:
    env.cloud.set_profile(login_wall=True)
    assert env.run("login")[0] == 0
    env.cloud.expire_sessions()
    assert env.json("sites")
    assert env.logins() == 2


def test_legacy_status_shape_is_normalized(env: Env) -> None:
    env.cloud.update_charger(plugged_in=True, charging=True, level=24)
    env.cloud.advance(1800)
    nested = env.json("status")[0]
    env.cloud.set_profile(status_shape="legacy")
    legacy = env.json("status")[0]
    assert set(legacy) >= STATUS_KEYS
    for key in ("sn", "plugged_in", "charging", "faulted", "connector_status"):
        assert legacy[key] == nested[key], key
    assert legacy["session_kwh"] == pytest.approx(nested["session_kwh"], rel=0.01)


def test_singular_status_path_is_found_and_remembered(env: Env) -> None:
    env.cloud.set_profile(status_shape="singular_only")
    assert env.json("status")[0]["sn"]
    assert env.cloud.requests("/ev_charger/status")


def test_rate_limit_then_success(env: Env) -> None:
    env.run("login")
    env.cloud.add_fault("status", path="/ev_chargers/status", status=429, retry_after="1")
    chargers = env.json("status")
    assert chargers[0]["sn"]
    statuses = [r.status for r in env.cloud.requests("/ev_chargers/status")]
    assert statuses == [429, 200]


def test_persistent_5xx_is_exit_4(env: Env) -> None:
    env.run("login")
    env.cloud.add_fault("status", path="/ev_chargers/status", status=503, times=0)
    code, _, err = env.run("status")
    assert code == 4
    assert "HTTP 503" in err
    assert len(env.cloud.requests("/ev_chargers/status")) == 4  # bounded retries


# --- bad input: one clear line, a documented exit code --------------------------------------


def test_wrong_password(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENLIGHTEN_PASSWORD", "wrong")
    code, _, err = env.run("login")
    assert code == 3
    assert "refused the e-mail or password" in err


def test_wrong_password_as_http_401(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.cloud.set_profile(login_failure_status=401)
    monkeypatch.setenv("ENLIGHTEN_PASSWORD", "wrong")
    code, _, err = env.run("login")
    assert code == 3
    assert "refused the e-mail or password" in err


def test_blocked_account(env: Env) -> None:
    env.cloud.set_account(blocked=True)
    code, _, err = env.run("login")
    assert code == 3
    assert "blocked" in err


def test_unknown_site(env: Env) -> None:
    code, _, err = env.run("status", "--site", "999")
    assert code == 1
    assert "site not found" in err
    assert "evopt sites" in err


def test_unknown_charger(env: Env) -> None:
    code, _, err = env.run("mode", "get", "--charger", "EV000")
    assert code == 1
    assert "no charger EV000" in err


def test_html_login_page_that_does_not_go_away(env: Env) -> None:
    env.run("login")
    env.cloud.add_fault("html_login", path="/ev_chargers/status", times=0)
    code, _, err = env.run("status")
    assert code == 3
    assert "HTML page" in err


def test_truncated_json(env: Env) -> None:
    env.run("login")
    env.cloud.add_fault("malformed_json", path="/ev_chargers/status", times=0)
    env.cloud.add_fault("malformed_json", path="/ev_charger/status", times=0)
    code, _, err = env.run("status")
    assert code == 4
    assert "not valid JSON" in err
    assert "Traceback" not in err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENLIGHTEN_PASSWORD", PASSWORD)
    config = write_config(
        tmp_path / "c.yaml", f"http://127.0.0.1:{free_port()}", tmp_path / "s", site_id=SITE_ID
    )
    code = main(["--config", str(config), "status"])
    _, err = capsys.readouterr()
    assert code == 4
    assert "cannot reach" in err


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", str(tmp_path / "nope.yaml"), "sites"])
    _, err = capsys.readouterr()
    assert code == 1
    assert "nope.yaml:1:1: config file not found" in err


def test_invalid_config_names_file_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "enlighten:\n  base_url: ftp://x\n  emial: a@b.c\nservice:\n  poll_interval: 5s\n"
    )
    code = main(["--config", str(config), "sites"])
    _, err = capsys.readouterr()
    assert code == 1
    assert f"{config}:2:3: enlighten.base_url" in err
    assert (
        f"{config}:3:3: unknown key 'emial' in 'enlighten' (did you mean 'email'?); valid keys: "
        in err
    )
    assert f"{config}:5:3: service.poll_interval" in err
    assert "at least 30s" in err


def test_usage_error_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["status", "--no-such-flag"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["mode"])
    assert exc.value.code == 2


def test_subprocess_exit_codes_and_no_traceback(env: Env) -> None:
    """The installed program, as a user runs it: exit codes come from outside too."""
    run_env = {**os.environ, "ENLIGHTEN_PASSWORD": PASSWORD}
    ok = subprocess.run(
        [sys.executable, "-m", "optimizer", "sites", "--json", "--config", str(env.config)],
        capture_output=True,
        text=True,
        env=run_env,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)[0]["site_id"] == SITE_ID
    env.cloud.add_fault("malformed_json", path="/ev_charger", times=0)
    bad = subprocess.run(
        [sys.executable, "-m", "optimizer", "--config", str(env.config), "status"],
        capture_output=True,
        text=True,
        env=run_env,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 4
    assert "Traceback" not in bad.stderr
    assert bad.stderr.count("\n") == 1  # one line


def test_output_into_a_closed_pipe_is_not_an_error() -> None:
    """`evopt schema | head -c 10`: the reader leaving early is the reader's business."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "optimizer", "schema"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # no reader: the first write fails with EPIPE
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert b"internal error" not in err
    assert b"Traceback" not in err
