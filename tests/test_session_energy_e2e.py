"""The service against the fake cloud's 2026 profile over the start of a session.

The 2026 status sends ``e_c`` in Wh from the first watt-hour; a policy that stops on "energy
reached" must see small kWh at the start, and must not stop when one reply glitches.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from optimizer.fakecloud.profile import LEGACY_2024
from tests.cli_env import Env
from tests.test_service import World, world_at

EVENING = datetime(2025, 1, 15, 12, 30, tzinfo=UTC)  # 23:30 in Melbourne: off-peak
# 30 kWh by 07:00 at 6 A: every slot is needed, so it charges until 30 kWh are in the car.
TOP_UP = """\
policies:
  - name: top-up
    kind: tariff_window
    priority: 60
    windows: [off_peak]
    amps: 6
    target:
      energy_kwh: 30
      by: "07:00"
"""
IGNORED = "session energy reading ignored"


@pytest.fixture
async def evening(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    async for world in world_at(EVENING, tmp_path, monkeypatch):
        yield world


def session_kwh(world: World) -> list[float | None]:
    rows = world.rows("SELECT inputs FROM decisions WHERE target = 'charging' ORDER BY id")
    return [json.loads(r["inputs"])["charger"]["session_kwh"] for r in rows]


def stops(world: World) -> list[str]:
    rows = world.rows("SELECT reason FROM decisions WHERE action = 'stop' ORDER BY id")
    return [r["reason"] for r in rows]


async def test_the_first_watt_hours_of_a_session_read_as_small_kwh(evening: World) -> None:
    service = evening.service(evening.config(TOP_UP))
    assert await service.run(max_ticks=30) == 0  # 15 minutes: three reports at 6 A
    assert evening.cloud.charger().charging
    readings = [kwh for kwh in session_kwh(evening) if kwh is not None]
    assert readings, "the service should have seen the session's energy"
    # 6 A x 230 V: 115 Wh after five minutes, read as 0.115 kWh and never as 115 kWh.
    assert 0.1 < max(readings) < 0.5
    assert any(0.1 < kwh < 0.2 for kwh in readings)
    assert stops(evening) == []


async def test_one_glitching_reply_does_not_stop_the_car_and_is_logged_once(
    evening: World, caplog: pytest.LogCaptureFixture
) -> None:
    service = evening.service(evening.config(TOP_UP))
    # A spike of 250 kWh at one tick, a unit flip at another, a decrease at a third.
    for tick, glitch in ((14, "spike"), (22, "unit_flip"), (27, "decrease")):
        evening.clock.hooks[tick] = lambda g=glitch: evening.cloud.update_charger(e_c_glitches=g)
    with caplog.at_level(logging.WARNING, logger="optimizer.observe"):
        assert await service.run(max_ticks=40) == 0
    assert stops(evening) == []
    assert evening.cloud.charger().charging
    readings = [kwh for kwh in session_kwh(evening) if kwh is not None]
    assert max(readings) < 1.0  # 20 minutes at 1.4 kW: no 250 kWh, no 2 kWh jump either
    assert readings == sorted(readings)  # neither the flip nor the decrease pulled it down
    warned = [r.getMessage() for r in caplog.records if IGNORED in r.getMessage()]
    assert len(warned) == 1, warned  # once per session, not once per bad reading


async def test_the_2024_cloud_still_reads_as_energy_in_kwh(evening: World) -> None:
    """The first reference's cloud sent small values in kWh even in the wrapped shape; the
    client reads that shape as Wh now, so those few minutes read low, never high."""
    evening.cloud.set_profile(**LEGACY_2024)
    service = evening.service(evening.config(TOP_UP))
    assert await service.run(max_ticks=30) == 0
    assert stops(evening) == []
    readings = [kwh for kwh in session_kwh(evening) if kwh is not None]
    assert max(readings) < 0.5


def test_status_refuses_a_session_energy_no_charger_can_deliver(env: Env) -> None:
    """`evopt status` has one reading and no history: a spike is unknown, not 250 kWh."""
    env.cloud.update_charger(plugged_in=True, charging=True, level=16)
    env.cloud.advance(3600)
    assert 3.0 < env.json("status")[0]["session_kwh"] < 4.0
    env.cloud.update_charger(e_c_glitches="spike")
    assert env.json("status")[0]["session_kwh"] is None
    assert 3.0 < env.json("status")[0]["session_kwh"] < 4.0
