"""`evopt charge` and `evopt schedule` end to end against the fake cloud's 2026 profile (the
default): the cloud's own refusals and words, the IQ 40 level fallback, the SCHEDULED
re-assert, single-slot schedule calls and the concurrency token. The request log is the
witness."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.schedule_edit import (
    AddSlot,
    DeleteSlot,
    DisableSlot,
    EnableSlot,
    ScheduleEditError,
    SetSlot,
)
from optimizer.fakecloud.profile import LEGACY_2024
from optimizer.fakecloud.schedule_state import mark_changed
from tests.cli_env import EMAIL, PASSWORD, SITE_ID, Env

START = "/start_charging"
SCHEDULES = "/SCHEDULED_CHARGING/"


def plug_in(env: Env, **changes: Any) -> None:
    env.cloud.update_charger(plugged_in=True, **changes)


def client_of(env: Env) -> EnlightenClient:
    """A client of the fake with the CLI's state dir (its session and remembered variants)."""
    return EnlightenClient(
        base_url=env.base_url,
        email=EMAIL,
        password_provider=lambda: PASSWORD,
        state_dir=env.state_dir,
    )


def with_start_amps(env: Env, amps: int) -> None:
    with env.config.open("a", encoding="utf-8") as config:
        config.write(f"charger:\n  start_amps: {amps}\n")


# --- charge start / stop -----------------------------------------------------------------------


def test_already_charging_is_one_request_exit_0_and_the_clouds_words(env: Env) -> None:
    plug_in(env, charging=True)
    code, out, err = env.run("charge", "start")
    assert code == 0, err
    assert 'the cloud said: "Charger is already in charging state"' in out
    assert len(env.cloud.requests(START)) == 1
    result = env.json("charge", "start")
    assert (result["outcome"], result["changed"]) == ("already_charging", False)


def test_not_plugged_is_exit_1_nothing_changed_with_the_clouds_words(env: Env) -> None:
    code, out, _ = env.run("charge", "start", "--amps", "16")
    assert code == 1
    assert 'the cloud said: "Charger is not plugged to EV"' in out
    assert out.strip().endswith("nothing changed")
    assert len(env.cloud.requests(START)) == 1


def test_iq40_default_level_is_dropped_and_the_user_told(env: Env) -> None:
    with_start_amps(env, 16)
    plug_in(env, iq40_backend=True)
    code, out, err = env.run("charge", "start")
    assert code == 0, err
    assert "16 A level was not applied" in out
    assert env.cloud.charger().charging
    assert [r.json for r in env.cloud.requests(START)] == [
        {"chargingLevel": 16, "connectorId": 1},
        {"connectorId": 1},
    ]
    env.run("charge", "stop")
    env.cloud.log.clear()
    code, out, _ = env.run("charge", "start")
    assert code == 0
    assert "not applied" in out
    assert [r.json for r in env.cloud.requests(START)] == [{"connectorId": 1}]  # remembered


def test_iq40_with_explicit_amps_is_a_failure(env: Env) -> None:
    plug_in(env, iq40_backend=True)
    code, out, err = env.run("charge", "start", "--amps", "16")
    assert code == 1
    assert out == ""
    assert "16 A" in err
    assert "Invalid charge level" in err
    assert not env.cloud.charger().charging
    assert len(env.cloud.requests(START)) == 1


def test_a_404_on_start_rereads_the_status(env: Env) -> None:
    plug_in(env, charging=True)
    env.cloud.add_fault("status", path=START, status=404, times=1)
    code, out, err = env.run("charge", "start")
    assert code == 0, err
    assert "already charging" in out
    assert len(env.cloud.requests(START)) == 1


def test_scheduled_is_reasserted_after_a_manual_start_and_stop(env: Env) -> None:
    plug_in(env, scheduler_mode="SCHEDULED_CHARGING")
    code, out, err = env.run("charge", "start", "--amps", "16")
    assert code == 0, err
    assert "SCHEDULED_CHARGING re-asserted" in out
    assert env.cloud.charger().scheduler_mode == "SCHEDULED_CHARGING"
    code, out, err = env.run("charge", "stop")
    assert code == 0, err
    assert "re-asserted" in out
    assert env.cloud.charger().scheduler_mode == "SCHEDULED_CHARGING"


def test_no_reassert_where_the_mode_does_not_flip(env: Env) -> None:
    env.cloud.set_profile(scheduled_flip=False)
    plug_in(env, scheduler_mode="SCHEDULED_CHARGING")
    code, out, _ = env.run("charge", "start", "--amps", "16")
    assert code == 0
    assert "re-asserted" not in out
    assert env.cloud.requests("/preference", method="PUT") == []


def test_the_2024_cloud_still_works(env: Env) -> None:
    env.cloud.set_profile(**LEGACY_2024)
    code, out, _ = env.run("charge", "start", "--amps", "16")
    assert code == 1
    assert out.startswith("charger not ready: no vehicle plugged in")
    assert env.run("live", "stop")[1].strip() == "live stream stopped"


def test_live_stream_2026(env: Env) -> None:
    code, out, _ = env.run("live", "start")
    assert (code, out.strip()) == (0, "live stream started for 900 s: status updates come faster")
    code, out, _ = env.run("live", "stop")
    assert (code, out.strip()) == (0, "live stream stopped")


# --- schedules -----------------------------------------------------------------------------------


def slot_writes(env: Env) -> list[tuple[str, str]]:
    return [
        (r.method, r.path.split(SCHEDULES, 1)[1].split("/", 2)[-1])
        for r in env.cloud.requests(SCHEDULES)
        if r.method != "GET"
    ]


def test_schedule_commands_use_single_slot_calls(env: Env) -> None:
    custom_id = env.cloud.charger().schedule_slots[0]["id"]
    assert env.run("schedule", "disable", "1")[0] == 0
    assert env.run("schedule", "enable", "1")[0] == 0
    code, out, err = env.run("schedule", "add", "--start", "01:00", "--end", "05:00")
    assert code == 0, err
    assert "added slot 3" in out
    added = env.cloud.charger().schedule_slots[2]["id"]
    assert env.run("schedule", "set", "3", "--amps", "16")[0] == 0
    assert env.run("schedule", "delete", "3")[0] == 0
    assert slot_writes(env) == [
        ("PATCH", "schedules"),
        ("PATCH", "schedules"),
        ("POST", "schedule"),
        ("PATCH", f"schedule/{added}"),
        ("DELETE", f"schedule/{added}"),
    ]
    states = [r.json for r in env.cloud.requests("/schedules", method="PATCH")]
    assert states == [{custom_id: "DISABLED"}, {custom_id: "ENABLED"}]
    assert env.cloud.charger().schedule_slots[0]["id"] == custom_id
    assert len(env.cloud.charger().schedule_slots) == 2


def test_full_list_patch_echoes_the_reads_timestamp(env: Env) -> None:
    env.cloud.set_profile(schedule_slot_routes=False)  # a scheduler without single-slot calls
    code, _, err = env.run("schedule", "disable", "1")
    assert code == 0, err
    reads = [r for r in env.cloud.requests("/schedules") if r.method == "GET"]
    (patch,) = [r for r in env.cloud.requests("/schedules", method="PATCH") if "data" in r.json]
    stamp = patch.json["meta"]["serverTimeStamp"]
    assert stamp.startswith("2025-01-15T")  # the fake clock's, never the local one
    assert stamp.endswith("+00:00")
    assert patch.status == 200
    assert reads  # always read before a full-list PATCH
    assert env.cloud.charger().schedule_slots[0]["enabled"] is False


def test_a_stale_token_is_refused_by_the_fake(env: Env) -> None:
    env.cloud.set_profile(schedule_slot_routes=False)
    schedules = env.json("schedule", "list")
    assert schedules  # listing works
    code, _, err = env.run("schedule", "disable", "1")
    assert code == 0, err
    sent = [r for r in env.cloud.requests("/schedules", method="PATCH") if "data" in r.json]
    body = json.loads(json.dumps(sent[-1].json))
    # The same body again: its token is now older than the list it would overwrite.
    import aiohttp  # noqa: PLC0415 - only this test talks to the fake directly

    async def replay() -> int:
        async with aiohttp.ClientSession() as session:
            url = env.base_url + sent[-1].path
            async with session.patch(url, json=body, headers=sent[-1].headers) as resp:
                return resp.status

    assert asyncio.run(replay()) == 409


# --- property: no sequence of edits loses a slot the user did not delete -----------------------

EDITS = st.lists(
    st.tuples(
        st.sampled_from(["add", "set", "enable", "disable", "delete"]),
        st.integers(0, 5),
        st.integers(0, 23),
    ),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(edits=EDITS, routes=st.booleans())
def test_no_edit_sequence_loses_a_slot(env: Env, edits: list[Any], routes: bool) -> None:
    env.cloud.set_profile(schedule_slot_routes=routes)
    original = [dict(s) for s in env.cloud.charger().schedule_slots[:2]]
    env.cloud.update_charger(schedule_slots=original)

    async def run() -> None:
        async with client_of(env) as client:
            for op, pick, hour in edits:
                before = {s["id"] for s in env.cloud.charger().schedule_slots}
                slots = env.cloud.charger().schedule_slots
                target = slots[pick % len(slots)]["id"] if slots else "none"
                edit = {
                    "add": AddSlot(f"{hour:02d}:00", f"{(hour + 1) % 24:02d}:30"),
                    "set": SetSlot(target, charging_level=6 + hour),
                    "enable": EnableSlot(target),
                    "disable": DisableSlot(target),
                    "delete": DeleteSlot(target),
                }[op]
                # An edit refused before sending (deleting OFF_PEAK) changes nothing either.
                with contextlib.suppress(ScheduleEditError):
                    await client.edit_schedule(SITE_ID, env.cloud.charger().sn, edit)
                after = {s["id"] for s in env.cloud.charger().schedule_slots}
                kept = before - {target} if op == "delete" else before
                assert kept <= after, (op, before - after)
                assert len(after) <= len(before) + (op == "add")

    asyncio.run(run())


def test_a_write_from_elsewhere_between_read_and_patch_is_kept(env: Env) -> None:
    """Optimistic concurrency end to end: the app adds a slot after our read; our full-list
    PATCH is refused (409), read again, and sent with the app's slot in it."""
    env.cloud.set_profile(schedule_slot_routes=False)
    charger = env.cloud.charger()
    app_slot = {**charger.schedule_slots[0], "id": f"{SITE_ID}:{charger.sn}:from-the-app"}
    first_id = charger.schedule_slots[0]["id"]

    async def edit() -> None:
        async with client_of(env) as client:
            read = client._schedules_for_write
            calls = 0

            async def read_then_the_app_writes(site_id: int, sn: str) -> Any:
                nonlocal calls
                calls += 1
                answer = await read(site_id, sn)
                if calls == 1:
                    live = env.cloud.charger()
                    live.schedule_slots = [*live.schedule_slots, dict(app_slot)]
                    mark_changed(live, env.cloud.clock.timestamp())
                return answer

            client._schedules_for_write = read_then_the_app_writes  # type: ignore[method-assign]
            await client.edit_schedule(SITE_ID, charger.sn, DisableSlot(first_id))

    asyncio.run(edit())
    patches = [r for r in env.cloud.requests("/schedules", method="PATCH") if "data" in r.json]
    assert [p.status for p in patches] == [409, 200]
    ids = [s["id"] for s in env.cloud.charger().schedule_slots]
    assert app_slot["id"] in ids  # the app's slot survived our rewrite
    assert env.cloud.charger().schedule_slots[0]["enabled"] is False
