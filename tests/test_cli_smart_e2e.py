"""`evopt mode get|set`, `status` and `charge start` with SMART_CHARGING, against the fake's
2026 profile (AI optimisation site), and the mode PUT quirks as the CLI shows them."""

from __future__ import annotations

from optimizer.fakecloud.model import GREEN
from tests.cli_env import Env


def ai_site(env: Env, mode: str = "MANUAL_CHARGING") -> None:
    env.cloud.set_site(battery_profile="ai_optimisation")
    env.cloud.update_charger(scheduler_mode=mode)


def test_mode_set_smart_then_get_and_status_show_it(env: Env) -> None:
    ai_site(env)
    code, out, err = env.run("mode", "set", "SMART_CHARGING")
    assert code == 0, err
    assert out.strip() == "charge mode MANUAL_CHARGING -> SMART_CHARGING"
    assert env.cloud.charger().scheduler_mode == "SMART_CHARGING"

    (got,) = env.json("mode", "get")
    assert got["mode"] == "SMART_CHARGING"
    assert got["battery_profile"] == "ai_optimisation"
    assert got["notes"] == []
    (status,) = env.json("status")
    assert status["mode"] == "SMART_CHARGING"

    # The shorthand, again: a same-mode PUT is never sent (the cloud would answer 400).
    env.cloud.log.clear()
    code, out, _ = env.run("mode", "set", "smart")
    assert (code, out.strip()) == (0, "already in SMART_CHARGING; nothing changed")
    assert env.cloud.requests("/preference", method="PUT") == []


def test_mode_get_reports_the_storm_guard(env: Env) -> None:
    ai_site(env, "SMART_CHARGING")
    env.cloud.set_site(storm_active=True)
    code, out, _ = env.run("mode", "get")
    assert code == 0
    assert "SMART_CHARGING" in out
    assert "storm guard active" in out
    code, out, _ = env.run("status")
    assert "storm guard active" in out


def test_a_400_that_applied_is_a_success(env: Env) -> None:
    env.cloud.set_profile(mode_put_400_applied=True)
    code, out, err = env.run("mode", "set", "green")
    assert code == 0, err
    assert "read-back shows it applied" in out
    assert env.cloud.charger().scheduler_mode == "GREEN_CHARGING"


def test_scheduled_without_an_enabled_slot_says_what_to_do(env: Env) -> None:
    slots = [dict(slot, enabled=False) for slot in env.cloud.charger().schedule_slots]
    env.cloud.update_charger(schedule_slots=slots)
    code, _, err = env.run("mode", "set", "SCHEDULED_CHARGING")
    assert code == 1
    assert "No Schedules enabled for Scheduled Charging" in err
    assert "evopt schedule enable N" in err
    assert len(env.cloud.requests("/preference", method="PUT")) == 1  # no read-back loop
    assert env.cloud.charger().scheduler_mode == "MANUAL_CHARGING"


def test_mode_set_during_a_scheduler_outage_exits_4_and_changes_nothing(env: Env) -> None:
    env.cloud.scheduler_outage(3 * 3600)
    code, _, err = env.run("mode", "set", "GREEN_CHARGING")
    assert code == 4
    assert "scheduler" in err
    assert env.cloud.charger().scheduler_mode == "MANUAL_CHARGING"
    (status,) = env.json("status")  # the status still answers; the mode comes from it
    assert status["mode"] == "MANUAL_CHARGING"
    assert "scheduler service down" in status["mode_notes"][0]


def test_charge_start_in_smart_sends_no_level_and_amps_are_refused(env: Env) -> None:
    ai_site(env, "SMART_CHARGING")
    env.cloud.update_charger(plugged_in=True)
    assert env.cloud.charger().mode == GREEN  # SMART charges like GREEN in the fake
    code, _, err = env.run("charge", "start", "--amps", "16")
    assert code == 1
    assert "ignores the amps level" in err
    assert env.cloud.requests("/start_charging") == []
    code, _, err = env.run("charge", "start")
    assert code == 0, err
    (start,) = env.cloud.requests("/start_charging")
    assert not (start.json or {}).get("chargingLevel")


def test_status_during_an_outage_shows_the_last_status_marked_stale(env: Env) -> None:
    env.cloud.scheduler_outage(3 * 3600, status=True)
    code, _, err = env.run("status")
    assert code == 4  # nothing seen yet: nothing to show
    assert "scheduler" in err

    env.cloud.scheduler_outage(0)
    (fresh,) = env.json("status")
    assert (fresh["stale"], fresh["status_age_s"]) == (False, None)

    env.cloud.scheduler_outage(3 * 3600, status=True)
    (stale,) = env.json("status")
    assert stale["stale"] is True
    assert stale["status_age_s"] >= 0
    assert stale["sn"] == fresh["sn"]
    assert "scheduler service down" in stale["mode_notes"][0]
    code, out, err = env.run("status")
    assert code == 0
    assert "stale: this status is" in out
    assert "showing the last status seen" in err
