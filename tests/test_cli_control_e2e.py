"""`evopt` write commands end to end against the fake cloud: region profiles, benign replies,
faults, the amps restart, scheduler writes. The fake's request log is the witness."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from optimizer.fakecloud.model import GREEN
from optimizer.fakecloud.profile import LEGACY_2024
from tests.cli_env import Env

START = "/start_charging"
STOP = "/stop_charging"

CAMEL = {"chargingLevel": 16, "connectorId": 1}
SNAKE = {"charging_level": 16, "connector_id": 1}


@dataclass(frozen=True)
class Region:
    """A fake-cloud control profile and the variant it accepts (start with a level; stop)."""

    profile: str
    method: str
    path: str
    body: dict[str, Any]
    stop_method: str


REGIONS = [
    Region("any", "POST", "/ev_chargers/", CAMEL, "PUT"),
    Region("put_singular_snake", "PUT", "/ev_charger/", SNAKE, "PUT"),
    Region("put_only", "PUT", "/ev_chargers/", CAMEL, "PUT"),
    Region("singular_only", "POST", "/ev_charger/", CAMEL, "PUT"),
]


def writes(env: Env, action: str) -> list[Any]:
    return env.cloud.requests(action)


def plug_in(env: Env, **changes: Any) -> None:
    env.cloud.update_charger(plugged_in=True, **changes)


@pytest.mark.parametrize("region", REGIONS, ids=lambda r: r.profile)
def test_region_profile_probe_then_remembered_then_kept_after_restart(
    env: Env, region: Region
) -> None:
    profile, method, path, body, stop_method = (
        region.profile,
        region.method,
        region.path,
        region.body,
        region.stop_method,
    )
    env.cloud.set_profile(control_profile=profile)
    plug_in(env)
    code, out, err = env.run("charge", "start", "--amps", "16")
    assert code == 0, err
    assert out.strip() == "charging started at 16 A"
    first = writes(env, START)
    assert first[-1].method == method
    assert path in first[-1].path
    assert first[-1].json == body
    assert env.cloud.charger().charging

    code, _, err = env.run("charge", "stop")
    assert code == 0, err
    assert writes(env, STOP)[-1].method == stop_method

    # The second start goes straight to the remembered variant: one request.
    env.cloud.log.clear()
    code, _, _ = env.run("charge", "start", "--amps", "16")
    assert code == 0
    second = writes(env, START)
    assert len(second) == 1
    assert (second[0].method, second[0].json) == (method, body)
    assert path in second[0].path

    # After a restart the remembered variant is read from the state dir: each `evopt` builds
    # its own client, whose VariantMemory loads variants.json (no variant is kept at module
    # level), so the in-process run is a restart as far as variants go; the installed program
    # as a process is tested in test_cli_e2e.py (0.5 s of CPU each here as a subprocess).
    env.run("charge", "stop")
    env.cloud.log.clear()
    code, _, err = env.run("charge", "start")
    assert code == 0, err
    assert env.cloud.violations() == []
    variants = json.loads((env.state_dir / "variants.json").read_text())
    assert any(k.endswith("start_charging:level") for k in variants)


def test_first_probe_costs_requests_only_once(env: Env) -> None:
    env.cloud.set_profile(control_profile="put_singular_snake")
    plug_in(env)
    env.run("charge", "start", "--amps", "16")
    probed = len(writes(env, START))
    assert probed == 8  # POST/PUT x plural/singular x camel, then snake: the last one works
    env.run("charge", "stop")
    env.run("charge", "start", "--amps", "20")
    assert len(writes(env, START)) == probed + 1


def test_level_less_start_uses_the_known_route(env: Env) -> None:
    env.cloud.set_profile(control_profile="put_singular_snake")
    plug_in(env)
    env.run("charge", "start", "--amps", "16")
    env.run("charge", "stop")
    env.cloud.log.clear()
    assert env.run("charge", "start")[0] == 0
    (only,) = writes(env, START)
    assert (only.method, only.json) == ("PUT", {"connector_id": 1})
    assert "/ev_charger/" in only.path


def test_no_level_region(env: Env) -> None:
    env.cloud.set_profile(control_profile="no_level")
    plug_in(env)
    code, out, _ = env.run("charge", "start")
    assert code == 0
    assert "last level" in out


# --- benign replies: one clear line, a documented exit code --------------------------------


def test_start_without_a_car(env: Env) -> None:
    code, out, err = env.run("charge", "start", "--amps", "16")
    assert code == 1
    assert out.strip() == (
        'charger not ready: no vehicle plugged in (the cloud said: "Charger is not plugged to '
        'EV"); nothing changed'
    )
    assert "Traceback" not in err
    assert len(writes(env, START)) == 1  # benign: not retried, not probed further


def test_start_while_charging_is_benign(env: Env) -> None:
    plug_in(env, charging=True, level=16)
    code, out, _ = env.run("charge", "start")
    assert code == 0
    assert out.strip() == (
        'charger already charging (the cloud said: "Charger is already in charging state"); '
        "nothing changed"
    )


def test_stop_without_a_session(env: Env) -> None:
    code, out, _ = env.run("charge", "stop")
    assert code == 0
    assert out.strip().startswith("no active charging session to stop")
    assert out.strip().endswith("nothing changed")


def test_out_of_range_amps_sends_nothing(env: Env) -> None:
    plug_in(env)
    code, _, err = env.run("charge", "start", "--amps", "40")
    assert code == 1
    assert "40 A is outside the allowed 6-32 A" in err
    assert "nothing was sent" in err
    assert writes(env, START) == []
    assert env.cloud.violations() == []


def test_site_limit_caps_the_level(env: Env) -> None:
    with env.config.open("a") as handle:
        handle.write("  max_current: 20\n")  # the config ends in its `site:` section
    plug_in(env)
    code, _, err = env.run("charge", "start", "--amps", "24")
    assert code == 1
    assert "outside the allowed 6-20 A" in err
    assert env.run("charge", "start", "--amps", "20")[0] == 0


# --- amps on an active session --------------------------------------------------------------


def test_new_amps_restart_a_manual_session(env: Env) -> None:
    plug_in(env, charging=True, level=16)
    code, out, err = env.run("charge", "start", "--amps", "24", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["outcome"] == "accepted"
    assert [s["command"] for s in result["steps"]] == ["stop_charging", "start_charging"]
    assert "stopped, waited 30 s, restarted" in result["detail"]
    kinds = [r.path.rsplit("/", 1)[-1] for r in env.cloud.requests("_charging")]
    assert kinds == ["stop_charging", "start_charging"]
    assert env.cloud.charger().level == 24
    assert env.cloud.charger().charging


def test_same_amps_change_nothing(env: Env) -> None:
    env.cloud.set_profile(charge_level_reported=True)  # 2024: the status says the level
    plug_in(env, charging=True, level=16)
    code, out, _ = env.run("charge", "start", "--amps", "16")
    assert code == 0
    assert out.strip() == "already charging at 16 A; nothing changed"
    assert env.cloud.requests("_charging") == []


def test_same_amps_as_commanded_change_nothing_with_a_null_charge_level(env: Env) -> None:
    """2026: charge_level is null; the level this client commanded (kept in the state dir,
    so another process sees it) is the level in effect."""
    plug_in(env)
    assert env.run("charge", "start", "--amps", "16")[0] == 0
    assert env.json("status")[0]["amps"] == 16
    code, out, _ = env.run("charge", "start", "--amps", "16")
    assert code == 0
    assert out.strip() == "already charging at 16 A; nothing changed"
    assert [r.path.rsplit("/", 1)[-1] for r in env.cloud.requests("_charging")] == [
        "start_charging"
    ]


def test_restart_refused_says_the_charger_is_stopped(env: Env) -> None:
    plug_in(env, charging=True, level=16, settle_s=30)  # the fake clock does not move
    code, _, err = env.run("charge", "start", "--amps", "24")
    assert code == 4
    assert "the charger is now stopped" in err
    assert "evopt charge start" in err


def test_direct_amps_for_chargers_that_take_levels_live(env: Env) -> None:
    with env.config.open("a") as handle:
        handle.write("charger:\n  direct_amps: true\n")
    plug_in(env, charging=True, level=16, live_level=True)
    code, out, _ = env.run("charge", "start", "--amps", "24")
    assert code == 0
    assert "without a restart" in out
    assert env.cloud.requests(STOP) == []
    assert env.cloud.charger().level == 24


def test_green_start_carries_no_level(env: Env) -> None:
    env.run("mode", "set", "GREEN_CHARGING")
    plug_in(env)
    assert env.cloud.charger().mode == GREEN
    code, out, _ = env.run("charge", "start")
    assert code == 0
    assert "GREEN" in out
    assert writes(env, START)[-1].json == {"connectorId": 1}


def test_green_refuses_an_amps_change(env: Env) -> None:
    env.run("mode", "set", "green")
    plug_in(env, charging=True)
    code, _, err = env.run("charge", "start", "--amps", "20")
    assert code == 1
    assert "GREEN mode" in err
    assert env.cloud.requests("_charging") == []


# --- faults on writes ------------------------------------------------------------------------


def test_rate_limited_start_is_retried_because_it_did_not_happen(env: Env) -> None:
    plug_in(env)
    env.cloud.add_fault("status", path=START, status=429, retry_after="1")
    assert env.run("charge", "start", "--amps", "16")[0] == 0
    assert [r.status for r in writes(env, START)] == [429, 200]


def test_unavailable_stop_is_retried(env: Env) -> None:
    plug_in(env, charging=True, level=16)
    env.cloud.add_fault("status", path=STOP, status=503)
    assert env.run("charge", "stop")[0] == 0
    assert [r.status for r in writes(env, STOP)] == [503, 200]


@pytest.mark.parametrize("kind", ["status-500", "timeout"])
def test_ambiguous_failure_is_never_resent(env: Env, kind: str) -> None:
    plug_in(env)
    if kind == "timeout":
        config = env.config.read_text()
        env.config.write_text(config.replace("enlighten:\n", "enlighten:\n  timeout: 0.3\n"))
        env.cloud.add_fault("timeout", path=START, delay_s=2, after=True)
    else:
        env.cloud.add_fault("status", path=START, status=500, after=True)
    code, _, err = env.run("charge", "start", "--amps", "16")
    assert code == 4
    assert "may or may not have taken effect" in err
    assert "evopt status" in err
    assert len(writes(env, START)) == 1


def test_offline_charger(env: Env) -> None:
    plug_in(env, connected=False)
    code, _, err = env.run("charge", "start", "--amps", "16")
    assert code == 4
    assert "may or may not have taken effect" in err
    assert len(writes(env, START)) == 1


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (466, "IQ Gateway unsupported or offline"),
        (468, "site not found"),
        (473, "IQ Gateway not reporting"),
        (551, "Enlighten cloud error"),
    ],
)
def test_custom_codes_on_a_write(env: Env, status: int, words: str) -> None:
    plug_in(env)
    env.cloud.add_fault("status", path=START, status=status, times=0)
    code, _, err = env.run("charge", "start", "--amps", "16")
    assert code in (1, 4)
    assert words in err
    assert err.count("\n") == 1
    assert env.cloud.charger().charging is False


def test_session_expiry_before_a_write(env: Env) -> None:
    plug_in(env)
    env.run("status")
    env.cloud.expire_sessions()
    assert env.run("charge", "start", "--amps", "16")[0] == 0
    assert env.cloud.charger().charging


# --- scheduler writes -------------------------------------------------------------------------


def test_mode_set_only_when_it_changes(env: Env) -> None:
    code, out, _ = env.run("mode", "set", "MANUAL_CHARGING")
    assert code == 0
    assert out.strip() == "already in MANUAL_CHARGING; nothing changed"
    assert env.cloud.requests("/preference", method="PUT") == []
    code, out, _ = env.run("mode", "set", "scheduled")
    assert code == 0
    assert out.strip() == "charge mode MANUAL_CHARGING -> SCHEDULED_CHARGING"
    assert env.json("mode", "get")[0]["mode"] == "SCHEDULED_CHARGING"


def test_mode_set_rejects_an_unknown_mode(env: Env) -> None:
    with pytest.raises(SystemExit) as exc:
        env.run("mode", "set", "TURBO")
    assert exc.value.code == 2


def test_battery_set(env: Env) -> None:
    code, out, _ = env.run("battery", "set", "on")
    assert (code, out.strip()) == (0, "battery use already on; nothing changed")
    code, out, _ = env.run("battery", "set", "off")
    assert (code, out.strip()) == (0, "battery use in green mode off")
    assert env.cloud.charger().green_use_battery is False


def test_battery_set_where_unsupported(env: Env) -> None:
    env.cloud.update_charger(supports_use_battery=False)
    code, _, err = env.run("battery", "set", "off")
    assert code == 1
    assert "does not support" in err
    assert env.cloud.requests("/settings", method="PUT") == []


def patched_slots(env: Env) -> list[dict[str, Any]]:
    """The slots of the one full-list PATCH (a refused state-only PATCH before it aside)."""
    (patch,) = [r for r in env.cloud.requests("/schedules", method="PATCH") if "data" in r.json]
    return list(patch.json["data"])


def test_schedule_edits_keep_every_other_slot(env: Env) -> None:
    env.cloud.set_profile(**LEGACY_2024)  # no single-slot calls: the full list is the fallback
    before = [dict(s) for s in env.cloud.charger().schedule_slots]
    code, out, err = env.run("schedule", "disable", "1")
    assert code == 0, err
    assert "disabled" in out
    sent = patched_slots(env)
    assert len(sent) == len(before)
    assert sent[0]["enabled"] is False
    assert {k: v for k, v in sent[0].items() if k != "enabled"} == {
        k: v for k, v in before[0].items() if k != "enabled"
    }
    assert sent[1] == before[1]


def test_schedule_add_set_delete(env: Env) -> None:
    env.cloud.set_profile(**LEGACY_2024)  # no single-slot calls: the full list is the fallback
    code, out, err = env.run(
        "schedule", "add", "--start", "1:00", "--end", "05:00", "--days", "mon-fri", "--amps", "16"
    )
    assert code == 0, err
    assert "added slot 3" in out
    slots = env.json("schedule", "list")[0]["slots"]
    assert len(slots) == 3
    assert (slots[2]["startTime"], slots[2]["days"], slots[2]["chargingLevel"]) == (
        "01:00",
        [1, 2, 3, 4, 5],
        16,
    )
    env.cloud.log.clear()
    code, out, _ = env.run("schedule", "set", "3", "--start", "02:00")
    assert code == 0
    assert "02:00" in out
    env.cloud.log.clear()
    code, out, _ = env.run("schedule", "delete", slots[2]["id"].rsplit(":", 1)[1][:8])
    assert code == 0
    assert "deleted slot 3" in out
    assert len(patched_slots(env)) == 2


def test_schedule_bad_edits_send_nothing(env: Env) -> None:
    for args, words in [
        (["schedule", "delete", "2"], "OFF_PEAK"),
        (["schedule", "enable", "9"], "slot"),
        (["schedule", "add", "--start", "01:00", "--end", "02:00", "--amps", "99"], "99 A"),
    ]:
        code, _, err = env.run(*args)
        assert code == 1, args
        assert words in err, (args, err)
        assert err.count("\n") == 1, err
    assert env.cloud.requests("/schedules", method="PATCH") == []


@pytest.mark.parametrize(
    "args",
    [
        ("schedule", "add", "--start", "01:00", "--end", "02:00", "--days", "funday"),
        ("schedule", "set", "1", "--start", "25:00"),
        ("schedule", "add", "--start", "1am", "--end", "02:00"),
    ],
)
def test_schedule_malformed_days_or_times_are_usage_errors(env: Env, args: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit) as exc:
        env.run(*args)
    assert exc.value.code == 2
    assert env.cloud.requests() == []  # refused before any login or request


# --- live stream and trigger ------------------------------------------------------------------


def test_live_stream(env: Env) -> None:
    code, out, _ = env.run("live", "start")
    assert code == 0
    assert "live stream started for 900 s" in out
    assert env.run("live", "stop")[1].strip() == "live stream stopped"


def test_live_stream_not_supported(env: Env) -> None:
    env.cloud.add_fault("status", path="start_live_stream", status=472)
    code, _, err = env.run("live", "start")
    assert code == 4
    assert "live stream not supported" in err


def test_trigger_message(env: Env) -> None:
    code, out, _ = env.run("trigger", "metervalues")
    assert code == 0
    assert out.startswith("charger asked to send MeterValues")
    (sent,) = env.cloud.requests("/trigger_message")
    assert sent.json == {"requestedMessage": "MeterValues"}
    code, _, err = env.run("trigger", "Reboot")
    assert code == 1
    assert "MeterValues" in err
    assert len(env.cloud.requests("/trigger_message")) == 1
