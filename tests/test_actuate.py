"""The actuator: a write only when the desired state differs from the observed one.

``plan`` is checked as a table against charger views; ``Actuator.apply`` against the fake
cloud (every outcome, the request count, cache invalidation, the live stream) and against a
stub client (one command at a time per charger).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from optimizer.actuate import (
    Actuator,
    Command,
    Skip,
    UnusableDecision,
    parse_edit,
    plan,
)
from optimizer.config import Config
from optimizer.engine.decision import Decision
from optimizer.engine.snapshot import ChargerView, Snapshot
from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.control import CommandResult, Outcome
from optimizer.enlighten.models import ChargeMode
from optimizer.enlighten.ratelimit import AccountLimiter
from optimizer.enlighten.schedule_edit import AddSlot, DisableSlot, EnableSlot, SetSlot
from optimizer.fakecloud import FakeCloud
from optimizer.fakecloud.requestlog import LoggedRequest
from optimizer.observe import ObserveCache, observe_live
from tests.cli_env import SITE_ID
from tests.served import served_client

SN = "EV9876543210"
MANUAL = ChargeMode.MANUAL_CHARGING
CONFIG = Config.model_validate({"site": {"timezone": "Australia/Melbourne"}})
WRITE_METHODS = ("POST", "PUT", "PATCH")


def is_config_read(request: LoggedRequest) -> bool:
    """The charger-config read is a POST (2026 reference section 8), not a write."""
    return request.method == "POST" and request.path.endswith("/ev_charger_config")


def decision(action: str, target: str = "charging", **params: Any) -> Decision:
    return Decision("test-policy", SN, target, action, params, "because", {})  # type: ignore[arg-type]


def view(**changes: Any) -> ChargerView:
    base = ChargerView(
        sn=SN,
        connected=True,
        plugged_in=True,
        charging=False,
        faulted=False,
        min_amps=6,
        max_amps=32,
        amps=32,
        mode=ChargeMode.MANUAL_CHARGING,
        status_mode=ChargeMode.MANUAL_CHARGING,
        use_battery=True,
    )
    return replace(base, **changes)


# --- plan: the comparison, as a table ------------------------------------------------------------

PLANS: list[tuple[str, Decision, ChargerView, Command | Skip]] = [
    ("hold", decision("hold"), view(), Skip("hold")),
    (
        "start idle",
        decision("start", amps=16),
        view(),
        Command("start_charging", amps=16, green=False, preference=MANUAL),
    ),
    (
        "start idle, no level",
        decision("start"),
        view(status_mode=None),
        Command("start_charging", green=None, preference=MANUAL),
    ),
    (
        "start at its level",
        decision("start", amps=16),
        view(charging=True, amps=16),
        Skip("already charging at 16 A"),
    ),
    ("start, any level", decision("start"), view(charging=True), Skip("already charging")),
    (
        "start at another level",
        decision("start", amps=10),
        view(charging=True, amps=16),
        Command("set_amps", amps=10, preference=MANUAL),
    ),
    (
        "same amps",
        decision("set_amps", amps=16),
        view(charging=True, amps=16),
        Skip("already charging at 16 A"),
    ),
    (
        "other amps",
        decision("set_amps", amps=8),
        view(charging=True),
        Command("set_amps", amps=8, preference=MANUAL),
    ),
    (
        "amps while idle",
        decision("set_amps", amps=8),
        view(amps=8),
        Command("set_amps", amps=8, preference=MANUAL),
    ),
    ("stop idle", decision("stop"), view(), Skip("not charging")),
    (
        "stop charging",
        decision("stop"),
        view(charging=True),
        Command("stop_charging", preference=MANUAL),
    ),
    (
        "mode as is",
        decision("set_mode", "mode", mode="MANUAL_CHARGING"),
        view(),
        Skip("already in MANUAL_CHARGING"),
    ),
    (
        "mode change",
        decision("set_mode", "mode", mode="GREEN_CHARGING"),
        view(),
        Command("set_charge_mode", mode=ChargeMode.GREEN_CHARGING),
    ),
    (
        "mode unknown",
        decision("set_mode", "mode", mode="MANUAL_CHARGING"),
        view(mode=None),
        Command("set_charge_mode", mode=ChargeMode.MANUAL_CHARGING),
    ),
    (
        "battery as is",
        decision("set_battery", "battery", enabled=True),
        view(),
        Skip("battery use already on"),
    ),
    (
        "battery change",
        decision("set_battery", "battery", enabled=False),
        view(),
        Command("set_green_battery", enabled=False),
    ),
    (
        "no edits",
        decision("patch_schedules", "schedules", edits=[]),
        view(),
        Skip("no schedule edits"),
    ),
    (
        "edits",
        decision(
            "patch_schedules",
            "schedules",
            edits=[{"op": "enable", "slot_id": "a"}, {"op": "disable", "slot_id": "b"}],
        ),
        view(),
        Command("edit_schedule", edits=(EnableSlot("a"), DisableSlot("b"))),
    ),
]


@pytest.mark.parametrize(
    ("name", "wanted", "charger", "expected"), PLANS, ids=[p[0] for p in PLANS]
)
def test_plan(name: str, wanted: Decision, charger: ChargerView, expected: Command | Skip) -> None:
    assert plan(wanted, charger) == expected


@pytest.mark.parametrize(
    "wanted",
    [
        decision("set_mode", "mode", mode="TURBO"),
        decision("set_battery", "battery", enabled="yes"),
        decision("set_amps"),
        decision("start", amps=16.5),
        decision("patch_schedules", "schedules", edits=[{"op": "delete", "slot_id": "a"}]),
    ],
)
def test_plan_refuses_what_the_engine_never_produces(wanted: Decision) -> None:
    with pytest.raises(UnusableDecision):
        plan(wanted, view())


def test_parse_edit() -> None:
    add = {"op": "add", "start_time": "23:00", "end_time": "07:00", "days": [1, 2]}
    assert parse_edit({**add, "charging_level": 32}) == AddSlot("23:00", "07:00", (1, 2), 32)
    assert parse_edit({"op": "set", "slot_id": "x", "charging_level": 16}) == SetSlot(
        "x", charging_level=16
    )
    with pytest.raises(UnusableDecision, match="op"):
        parse_edit({"slot_id": "x"})
    with pytest.raises(UnusableDecision, match="colour"):
        parse_edit({"op": "enable", "slot_id": "x", "colour": "red"})


# --- apply, against the fake cloud ---------------------------------------------------------------


@dataclass
class Rig:
    cloud: FakeCloud
    client: EnlightenClient
    cache: ObserveCache

    async def snapshot(self) -> Snapshot:
        now = self.cloud.clock.now()
        return await observe_live(
            self.client, site_id=SITE_ID, config=CONFIG, now=now, cache=self.cache
        )

    def actuator(self, *, dry_run: bool = False) -> Actuator:
        return Actuator(self.client, site_id=SITE_ID, dry_run=dry_run, cache=self.cache)

    def writes(self) -> list[str]:
        return [
            f"{r.method} {r.path.rsplit('/', 1)[-1]}"
            for r in self.cloud.requests()
            if r.method in WRITE_METHODS
            and "login" not in r.path
            and r.path != "/tokens"
            and not is_config_read(r)
        ]

    def live_streams(self) -> int:
        return len(self.cloud.requests("start_live_stream"))


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    cloud = FakeCloud()
    cloud.update_charger(plugged_in=True)
    async with served_client(cloud, state_dir=tmp_path) as client:
        yield Rig(cloud, client, ObserveCache())


async def test_start_applied_then_noop(rig: Rig) -> None:
    actuator = rig.actuator()
    done = await actuator.apply(decision("start", amps=16), await rig.snapshot())
    assert (done.outcome, done.commands, done.error) == ("applied", 1, None)
    assert "16 A" in done.detail
    charger = rig.cloud.charger()
    assert (charger.charging, charger.level) == (True, 16)
    assert rig.writes() == ["POST start_charging"]
    assert rig.live_streams() == 1

    again = await actuator.apply(decision("start", amps=16), await rig.snapshot())
    assert (again.outcome, again.commands) == ("noop", 0)
    assert rig.writes() == ["POST start_charging"]  # nothing more was sent


async def test_set_amps_to_the_commanded_level_sends_nothing(rig: Rig) -> None:
    """2026: charge_level is null, so the level we commanded is the level in effect."""
    actuator = rig.actuator()
    await actuator.apply(decision("start", amps=16), await rig.snapshot())
    snapshot = await rig.snapshot()
    assert snapshot.chargers[0].amps == 16
    same = await actuator.apply(decision("set_amps", amps=16), snapshot)
    assert (same.outcome, same.commands) == ("noop", 0)
    assert rig.writes() == ["POST start_charging"]


async def test_safe_limit_while_charging_reads_as_the_minimum(rig: Rig) -> None:
    actuator = rig.actuator()
    await actuator.apply(decision("start", amps=16), await rig.snapshot())
    rig.cloud.update_charger(safe_limit_state=1)
    charger = (await rig.snapshot()).chargers[0]
    assert (charger.amps, charger.safe_limited) == (6, True)
    rig.cloud.update_charger(charging=False)
    idle = (await rig.snapshot()).chargers[0]
    assert (idle.amps, idle.safe_limited) == (16, False)  # not charging: it means nothing


async def test_start_at_another_level_restarts_the_session(rig: Rig) -> None:
    rig.cloud.set_profile(charge_level_reported=True)
    rig.cloud.update_charger(charging=True, level=16)
    done = await rig.actuator().apply(decision("start", amps=10), await rig.snapshot())
    assert (done.outcome, done.commands) == ("applied", 2)
    assert rig.writes() == ["PUT stop_charging", "POST start_charging"]
    assert rig.cloud.charger().level == 10


async def test_set_amps_and_stop(rig: Rig) -> None:
    rig.cloud.set_profile(charge_level_reported=True)  # 2024: the status says the level
    rig.cloud.update_charger(charging=True, level=16)
    actuator = rig.actuator()
    same = await actuator.apply(decision("set_amps", amps=16), await rig.snapshot())
    assert (same.outcome, same.commands) == ("noop", 0)
    stop = await actuator.apply(decision("stop"), await rig.snapshot())
    assert (stop.outcome, stop.commands) == ("applied", 1)
    idle = await actuator.apply(decision("stop"), await rig.snapshot())
    assert idle.outcome == "noop"
    assert rig.writes() == ["PUT stop_charging"]


async def test_a_refused_start_is_rejected(rig: Rig) -> None:
    snapshot = await rig.snapshot()  # says plugged in...
    rig.cloud.update_charger(plugged_in=False)  # ...but the car has gone meanwhile
    done = await rig.actuator().apply(decision("start", amps=16), snapshot)
    assert (done.outcome, done.commands) == ("rejected", 1)
    assert done.error is not None
    assert "plugged in" in done.error
    assert rig.live_streams() == 0


async def test_a_failed_write_is_reported_not_raised(rig: Rig) -> None:
    rig.cloud.add_fault("status", path="/start_charging", status=500)
    done = await rig.actuator().apply(decision("start", amps=16), await rig.snapshot())
    assert (done.outcome, done.commands, done.auth_needed) == ("failed", 1, False)
    assert done.error is not None
    assert "may or may not have taken effect" in done.error


async def test_a_level_out_of_range_costs_no_request(rig: Rig) -> None:
    done = await rig.actuator().apply(decision("start", amps=40), await rig.snapshot())
    assert (done.outcome, done.commands) == ("failed", 0)
    assert rig.writes() == []


async def test_authentication_failure_is_flagged(rig: Rig) -> None:
    snapshot = await rig.snapshot()
    rig.cloud.expire_sessions()
    rig.cloud.set_account(mfa=True)  # the re-login now needs a one-time code
    done = await rig.actuator().apply(decision("start", amps=16), snapshot)
    assert (done.outcome, done.auth_needed) == ("failed", True)
    assert done.error is not None
    assert "one-time code" in done.error
    [refused] = rig.cloud.requests("/start_charging")
    assert refused.status == 401  # refused before it could take effect
    assert not rig.cloud.charger().charging


async def test_dry_run_sends_nothing(rig: Rig) -> None:
    actuator = rig.actuator(dry_run=True)
    snapshot = await rig.snapshot()
    start = await actuator.apply(decision("start", amps=16), snapshot)
    assert (start.outcome, start.commands) == ("dry_run", 0)
    assert start.detail == "dry run: would start charging at 16 A"
    mode = await actuator.apply(decision("set_mode", "mode", mode="GREEN_CHARGING"), snapshot)
    assert mode.outcome == "dry_run"
    # What is already as wanted is a noop, dry run or not.
    hold = await actuator.apply(decision("set_mode", "mode", mode="MANUAL_CHARGING"), snapshot)
    assert hold.outcome == "noop"
    assert rig.writes() == []
    assert rig.live_streams() == 0


async def test_mode_and_battery_invalidate_the_cache(rig: Rig) -> None:
    actuator = rig.actuator()
    snapshot = await rig.snapshot()
    assert rig.cache.modes[SN].next_at is not None
    mode = await actuator.apply(decision("set_mode", "mode", mode="GREEN_CHARGING"), snapshot)
    assert (mode.outcome, mode.commands) == ("applied", 1)
    assert rig.cache.modes[SN].next_at is None  # read again next tick
    assert rig.cache.battery_settings[SN].next_at is not None
    battery = await actuator.apply(decision("set_battery", "battery", enabled=False), snapshot)
    assert (battery.outcome, battery.commands) == ("applied", 1)
    assert rig.cache.battery_settings[SN].next_at is None
    assert rig.cloud.charger().scheduler_mode == "GREEN_CHARGING"
    assert rig.cloud.charger().green_use_battery is False
    after = await rig.snapshot()
    assert after.chargers[0].mode is ChargeMode.GREEN_CHARGING
    again = await actuator.apply(decision("set_mode", "mode", mode="GREEN_CHARGING"), after)
    assert again.outcome == "noop"
    assert rig.writes() == ["PUT preference", "PUT settings"]
    assert rig.live_streams() == 0  # only charging commands start the stream


async def test_schedule_edits_in_order(rig: Rig) -> None:
    snapshot = await rig.snapshot()
    slots = snapshot.chargers[0].schedule_slots
    assert slots is not None
    custom = next(s for s in slots if s.schedule_type == "CUSTOM")
    edits = [
        {"op": "add", "start_time": "01:00", "end_time": "05:00", "days": [6, 7]},
        {"op": "disable", "slot_id": custom.id},
    ]
    patch = decision("patch_schedules", "schedules", edits=edits)
    done = await rig.actuator().apply(patch, snapshot)
    assert (done.outcome, done.commands) == ("applied", 2)
    # 2026: a single-slot create, then a state-only PATCH (no full-list rewrite).
    assert rig.writes() == ["POST schedule", "PATCH schedules"]
    assert rig.cache.schedules[SN].next_at is None
    stored = rig.cloud.charger().schedule_slots
    assert [s["startTime"] for s in stored] == ["23:00", None, "01:00"]
    assert stored[0]["enabled"] is False

    unchanged = [{"op": "disable", "slot_id": custom.id}]
    same = await rig.actuator().apply(
        decision("patch_schedules", "schedules", edits=unchanged), await rig.snapshot()
    )
    assert (same.outcome, same.commands) == ("noop", 0)
    assert len(rig.writes()) == 2


async def test_live_stream_at_most_every_15_minutes(rig: Rig) -> None:
    rig.cloud.add_fault("status", path="/start_live_stream", status=472, times=1)
    actuator = rig.actuator()
    first = await actuator.apply(decision("start", amps=16), await rig.snapshot())
    assert first.outcome == "applied"  # a site without live stream: ignored
    await actuator.apply(decision("stop"), await rig.snapshot())
    rig.cloud.advance(60)
    await actuator.apply(decision("start", amps=16), await rig.snapshot())
    assert rig.live_streams() == 1
    rig.cloud.advance(timedelta(minutes=15).total_seconds())
    await actuator.apply(decision("stop"), await rig.snapshot())
    assert rig.live_streams() == 2


# --- one command at a time per charger -----------------------------------------------------------


class SlowClient:
    """Records when each command starts and ends; each takes a few loop turns."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def start_charging(
        self, site_id: int, sn: str, *, amps: int | None = None, **_: Any
    ) -> CommandResult:
        self.events.append(f"begin {sn}")
        for _ in range(3):
            await asyncio.sleep(0)
        self.events.append(f"end {sn}")
        return CommandResult("start_charging", Outcome.ACCEPTED, "started", attempts=("POST",))

    async def start_live_stream(self, site_id: int) -> None:
        return None


def two_chargers() -> Snapshot:
    return Snapshot(
        now=datetime(2025, 1, 15, 2, tzinfo=UTC),
        timezone="UTC",
        chargers=(view(), view(sn="EV2")),
    )


async def test_one_command_at_a_time_per_charger() -> None:
    client = SlowClient()
    actuator = Actuator(client, site_id=SITE_ID, dry_run=False)  # type: ignore[arg-type]
    snapshot = two_chargers()
    other = replace(decision("start", amps=16), charger_sn="EV2")
    results = await asyncio.gather(
        actuator.apply(decision("start", amps=16), snapshot),
        actuator.apply(decision("start", amps=16), snapshot),
        actuator.apply(other, snapshot),
    )
    assert [r.outcome for r in results] == ["applied"] * 3
    mine = [e for e in client.events if e.endswith(SN)]
    assert mine == [f"begin {SN}", f"end {SN}"] * 2  # never two at once on one charger
    # Another charger is not held up: its command ran alongside.
    assert client.events.index("begin EV2") < client.events.index(f"end {SN}")


# --- 2026 replies on the service's actuation path -------------------------------------------------


async def test_iq40_policy_start_goes_without_the_level_and_says_so(rig: Rig) -> None:
    rig.cloud.update_charger(iq40_backend=True)
    done = await rig.actuator().apply(decision("start", amps=16), await rig.snapshot())
    assert done.outcome == "applied"
    assert "16 A level was not applied" in done.detail
    assert done.error == done.detail  # kept in the decision log
    assert "Invalid charge level" in done.detail
    assert rig.cloud.charger().charging
    assert [r.json for r in rig.cloud.requests("/start_charging")] == [
        {"chargingLevel": 16, "connectorId": 1},
        {"connectorId": 1},
    ]


async def test_already_charging_from_a_stale_snapshot_is_done_in_one_request(rig: Rig) -> None:
    stale = await rig.snapshot()  # idle
    rig.cloud.update_charger(charging=True)
    done = await rig.actuator().apply(decision("start", amps=16), stale)
    assert (done.outcome, done.commands) == ("noop", 1)
    # The cloud's words reach the decision log's error column, though nothing failed.
    assert done.error is not None
    assert "Charger is already in charging state" in done.error
    assert len(rig.cloud.requests("/start_charging")) == 1


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize(
    ("action", "target", "params"),
    [
        ("stop", "charging", {}),
        ("start", "charging", {"amps": 32}),
        ("set_amps", "charging", {"amps": 10}),
        ("set_mode", "mode", {"mode": "GREEN_CHARGING"}),
        ("set_battery", "battery", {"enabled": True}),
    ],
)
async def test_a_users_own_change_is_recorded_and_nothing_is_sent(
    rig: Rig, dry_run: bool, action: str, target: str, params: dict[str, Any]
) -> None:
    """An observed row (the user's change seen in the status) would differ from this status,
    yet it is a record, not a command: noop, no request, in a dry run too."""
    rig.cloud.update_charger(charging=True, level=16)
    seen = replace(
        decision(action, target, **params), policy="user-override", inputs={"observed": True}
    )
    done = await rig.actuator(dry_run=dry_run).apply(seen, await rig.snapshot())
    assert (done.outcome, done.commands, done.error) == ("noop", 0, None)
    assert "nothing to send" in done.detail
    assert rig.writes() == []
    assert rig.cloud.charger().charging


async def test_a_command_the_budget_holds_back_sent_nothing_and_keeps_the_cache(rig: Rig) -> None:
    """The account's limiter refuses the edit before anything goes: a failure that cost no
    request and changed nothing, so the charger's cached reads stay as they are. Counted as
    "may have been sent" it invalidated them, and their re-reads spent the budget that refused
    the next try, every tick (the scale benchmark, two sites on one account)."""
    snapshot = await rig.snapshot()
    assert rig.cache.schedules[SN].next_at is not None
    limiter = AccountLimiter(budget_per_hour=600, burst=1, clock=lambda: 0.0, max_wait_s=0)
    await limiter.acquire()  # the bucket is empty now, and its clock never moves
    rig.client.transport.limiter = limiter
    edits = [{"op": "add", "start_time": "01:00", "end_time": "05:00", "days": [6, 7]}]
    held = await rig.actuator().apply(
        decision("patch_schedules", "schedules", edits=edits), snapshot
    )
    assert (held.outcome, held.commands) == ("failed", 0)
    assert "not sent" in (held.error or "")
    assert rig.writes() == []
    assert rig.cache.schedules[SN].next_at is not None  # not invalidated
    assert rig.cache.schedules[SN].stale is False
