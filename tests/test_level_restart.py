"""A MANUAL level change that does not block the tick (issue 13, item 3): the stop now, the
restart at the new level in a later tick once the settle time has passed; both halves in the
decision log; the pending restart survives a restart of the service without a second command.
"""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from optimizer.config import Config, load_config
from optimizer.decisions.ticklog import TickRecording
from optimizer.engine.decision import ChargerMemory, Decision, PendingRestart
from optimizer.engine.restart import settle_restart
from optimizer.fakecloud import FakeCloud, run_in_thread
from optimizer.fakecloud.model import Charger
from tests.cli_env import SITE_ID
from tests.conftest import SleepRecorder
from tests.test_service import MIDDAY, World, parse_ts, world_at
from tests.test_service_process import SN, Site, wait_for, write_run_config

SNS = ("EV0000000001", "EV0000000002")
SETTLE_S = 30
ALWAYS_24 = """\
policies:
  - name: always-24
    kind: excess_solar
    variant: min_pv
    min_amps: 24
    max_amps: 24
"""
RULES_24 = """\
policies:
  - name: all-day
    kind: tariff_window
    windows: [always]
    amps: 24
"""


@pytest.fixture
async def two_at_16(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    """Two cars charging at 16 A; the fake refuses a start within 30 s of a stop."""
    chargers = [
        Charger(sn=sn, plugged_in=True, charging=True, level=16, settle_s=SETTLE_S) for sn in SNS
    ]
    async for world in world_at(MIDDAY, tmp_path, monkeypatch, chargers=chargers):
        world.cloud.set_profile(charge_level_reported=True)
        yield world


def _config(world: World) -> Config:
    """The world's config with a site limit that lets both cars have 24 A."""
    world.config(ALWAYS_24)
    path = world.tmp / "config.yaml"
    text = path.read_text(encoding="utf-8").replace("max_current: 32", "max_current: 64")
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def _levels(world: World) -> dict[str, tuple[bool, int | None]]:
    return {c.sn: (c.charging, c.level) for c in world.cloud.model.chargers}


async def test_two_level_changes_stop_in_one_tick_and_restart_in_a_later_one(
    two_at_16: World, sleeps: SleepRecorder
) -> None:
    world = two_at_16
    service = world.service(_config(world))
    first = await service.tick()
    # Both stops went in the first tick, and nothing waited the settle time inside it.
    assert len(world.cloud.requests("stop_charging")) == 2
    assert world.cloud.requests("start_charging") == []
    assert SETTLE_S not in sleeps.delays
    assert world.clock.sleeps == []
    assert _levels(world) == dict.fromkeys(SNS, (False, 16))
    assert {sn: service.memory.chargers[sn].restart.amps for sn in SNS} == dict.fromkeys(SNS, 24)  # type: ignore[union-attr]
    stops = world.rows("SELECT * FROM decisions WHERE action = 'stop' ORDER BY id")
    assert [r["charger_sn"] for r in stops] == list(SNS)
    for row in stops:
        assert row["reason"].startswith("level change 16 -> 24 A: stop, restart at 24 A after 30 s")
        assert json.loads(row["params"]) == {"restart_amps": 24, "from_amps": 16}
        assert (row["outcome"], row["commands"]) == ("applied", 1)

    # Before the settle time has passed: no start, and no override taken from the stopped car.
    world.cloud.advance(15)
    early = await service.tick()
    assert early.problem is None
    assert world.cloud.requests("start_charging") == []
    assert all(service.memory.chargers[sn].restart is not None for sn in SNS)
    assert all(not service.memory.chargers[sn].overrides for sn in SNS)

    world.cloud.advance(SETTLE_S - 15)
    await service.tick()
    starts = world.cloud.requests("start_charging")
    assert len(starts) == 2  # one restart each
    assert _levels(world) == dict.fromkeys(SNS, (True, 24))
    assert all(service.memory.chargers[sn].restart is None for sn in SNS)
    begun = first.at.astimezone(ZoneInfo("Australia/Melbourne")).strftime("%H:%M:%S")
    restarts = world.rows("SELECT * FROM decisions WHERE action = 'start' ORDER BY id")
    assert [r["reason"] for r in restarts] == [
        f"restart at 24 A (level change begun at {begun})"
    ] * 2
    assert all(parse_ts(r["ts"]) - first.at == timedelta(seconds=SETTLE_S) for r in restarts)

    # Afterwards the engine holds: nothing more is sent.
    world.cloud.advance(30)
    await service.tick()
    await service.shutdown()
    assert len(world.cloud.requests("start_charging")) == 2
    assert len(world.cloud.requests("stop_charging")) == 2
    assert world.clock.sleeps == []


class Killed(BaseException):
    """Stands for a SIGKILL: nothing after it runs, nothing is cleaned up."""


async def test_a_kill_between_the_halves_restarts_once_after_a_restart(
    two_at_16: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = two_at_16
    config = _config(world)
    service = world.service(config)

    def die(self: TickRecording, memory: object) -> list[int]:
        raise Killed  # after the stops' rows were committed, before the tick's end

    with monkeypatch.context() as patch:
        patch.setattr(TickRecording, "finish", die)
        with pytest.raises(Killed):
            await service.tick()
    assert len(world.cloud.requests("stop_charging")) == 2
    assert len(world.rows("SELECT * FROM decisions WHERE action = 'stop'")) == 2

    world.cloud.advance(SETTLE_S)
    again = world.service(config)  # a new process: the memory comes from the database
    await again.tick()
    await again.tick()
    await again.shutdown()
    assert len(world.cloud.requests("start_charging")) == 2  # one restart each, not two
    assert len(world.cloud.requests("stop_charging")) == 2  # and the stop not sent again
    assert _levels(world) == dict.fromkeys(SNS, (True, 24))
    assert len(world.rows("SELECT * FROM decisions WHERE action = 'start'")) == 2


def _charging(action: str, **params: object) -> Decision:
    return Decision("p", SNS[0], "charging", action, dict(params), "policy's reason", {})  # type: ignore[arg-type]


def test_a_stop_cancels_a_pending_restart_and_another_level_moves_it() -> None:
    pending = PendingRestart(amps=24, since=MIDDAY, due=MIDDAY + timedelta(seconds=30))
    known = ChargerMemory(restart=pending)
    stop, after = settle_restart(_charging("stop"), known, MIDDAY + timedelta(seconds=5), None)
    assert (stop.action, after.restart) == ("stop", None)
    moved, after = settle_restart(
        _charging("set_amps", amps=20), known, MIDDAY + timedelta(seconds=5), None
    )
    assert moved.action == "hold"
    assert after.restart is not None
    assert after.restart.amps == 20
    assert "restart at 20 A" in moved.reason
    due, after = settle_restart(_charging("hold"), known, MIDDAY + timedelta(seconds=30), None)
    assert (due.action, due.params, after.restart) == ("start", {"amps": 24}, None)
    # Nothing pending: the decision is the policy's, untouched.
    plain = _charging("set_amps", amps=20)
    assert settle_restart(plain, ChargerMemory(), MIDDAY, None) == (plain, ChargerMemory())


async def test_a_restart_the_safety_rules_hold_is_not_sent_and_not_taken_for_an_override(
    two_at_16: World,
) -> None:
    """The restart is a start like any other: a faulted charger gets none, and the level
    change ends there (the car stays stopped, as the stop left it)."""
    world = two_at_16
    service = world.service(_config(world))
    await service.tick()
    world.cloud.update_charger(SNS[0], faulted=True)
    world.cloud.advance(SETTLE_S)
    await service.tick()
    starts = world.cloud.requests("start_charging")
    assert [SNS[1] in r.path for r in starts] == [True]  # only the other charger restarted
    known = service.memory.chargers[SNS[0]]
    assert (known.restart, known.commanded_on) == (None, False)
    world.cloud.update_charger(SNS[0], faulted=False)
    for _ in range(6):  # past the engine's settle: the stopped charger is no user override
        world.cloud.advance(30)
        await service.tick()
    await service.shutdown()
    assert not service.memory.chargers[SNS[0]].overrides


def test_sigkill_between_the_halves_restarts_once(tmp_path: Path) -> None:
    """`evopt run` as a real process, killed after the stop's row is committed and before the
    restart is due: the restarted service sends the restart once and the stop never again."""
    cloud = FakeCloud()
    cloud.set_profile(charge_level_reported=True)
    # The fake's clock stands still here: the service's settle_delay (real time) is what waits.
    cloud.update_charger(plugged_in=True, charging=True, level=16)
    with run_in_thread(cloud) as base_url:
        config = write_run_config(tmp_path, base_url, tmp_path / "state", poll="200ms")
        (tmp_path / "rules.yaml").write_text(RULES_24, encoding="utf-8")
        text = config.read_text(encoding="utf-8").replace("settle_delay: 0s", "settle_delay: 3s")
        config.write_text(text, encoding="utf-8")
        site = Site(cloud, tmp_path, config, tmp_path / "rules.yaml")
        try:
            proc = site.start()
            wait_for(
                "the stop's row",
                lambda: (
                    site.decisions() > 0
                    and bool(site.query("SELECT id FROM decisions WHERE action = 'stop'"))
                ),
                proc,
            )
            proc.signal(signal.SIGKILL)
            assert proc.finish()[0] == -signal.SIGKILL
            assert cloud.requests("start_charging") == []  # killed between the halves
            assert len(cloud.requests("stop_charging")) == 1
            saved = json.loads(
                site.query("SELECT value FROM state WHERE key = ?", f"memory:{SITE_ID}")[0][0]
            )
            assert saved["chargers"][SN]["restart"]["amps"] == 24

            again = site.start()
            wait_for("the restart", lambda: bool(cloud.requests("start_charging")), again)
            ticks = site.ticks()
            wait_for("a few more ticks", lambda: site.ticks() >= ticks + 5, again)
            again.signal(signal.SIGTERM)
            assert again.finish()[0] == 0
        finally:
            for each in site.procs:
                each.end()
    assert len(cloud.requests("start_charging")) == 1  # once, not twice
    assert len(cloud.requests("stop_charging")) == 1  # and the stop not sent again
    assert (cloud.charger().charging, cloud.charger().level) == (True, 24)
    [restart] = site.query("SELECT * FROM decisions WHERE action = 'start'")
    assert restart["reason"].startswith("restart at 24 A (level change begun at ")
