"""The service against the fake's 2026 profile: a charger in SMART_CHARGING is left to Enphase's
AI optimisation, and a scheduler outage of hours is ridden out without mode writes."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.test_service import ALWAYS_16, MIDDAY, World, applied, world_at

GREEN_BY_DAY = """\
policies:
  - name: green-by-day
    kind: charge_mode
    mode: green
"""
# The same wish to follow the surplus, but this rule names SMART: it may leave it.
LEAVE_SMART = """\
policies:
  - name: solar-even-in-smart
    kind: excess_solar
    variant: min_pv
    min_amps: 16
    max_amps: 16
    when:
      mode: [smart, manual]
"""


@pytest.fixture
async def smart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    async for world in world_at(MIDDAY, tmp_path, monkeypatch):
        world.cloud.set_site(battery_profile="ai_optimisation")
        world.cloud.update_charger(scheduler_mode="SMART_CHARGING")
        yield world


def mode_puts(world: World) -> list[Any]:
    return world.cloud.requests("/preference", method="PUT")


async def test_in_smart_no_policy_sends_amps_or_a_mode_change_and_says_why(smart: World) -> None:
    service = smart.service(smart.config(ALWAYS_16))
    assert await service.run(max_ticks=40) == 0

    assert mode_puts(smart) == []
    assert smart.cloud.requests("/start_charging") == []
    assert smart.cloud.requests("/stop_charging") == []
    assert smart.cloud.charger().scheduler_mode == "SMART_CHARGING"
    rows = smart.rows()
    assert rows
    assert {r["action"] for r in rows} == {"hold"}
    reasons = " ".join(r["reason"] for r in rows)
    assert "charger is in SMART_CHARGING (Enphase AI optimisation)" in reasons
    assert "policy always-16 wants MANUAL at 16 A: not overriding the user's choice" in reasons


async def test_a_rule_that_names_smart_may_leave_it(smart: World) -> None:
    service = smart.service(smart.config(LEAVE_SMART))
    assert await service.run(max_ticks=10) == 0

    assert [r.json for r in mode_puts(smart)] == [{"mode": "MANUAL_CHARGING"}]
    assert smart.cloud.charger().scheduler_mode == "MANUAL_CHARGING"
    assert applied(smart.rows(), "set_mode")


async def test_a_start_in_smart_carries_no_level(smart: World) -> None:
    """A charge_mode policy choosing SMART is the user's wish; the charger then runs itself."""
    smart.cloud.update_charger(scheduler_mode="MANUAL_CHARGING")
    rules = "policies:\n  - name: ai\n    kind: charge_mode\n    mode: SMART_CHARGING\n"
    service = smart.service(smart.config(rules))
    assert await service.run(max_ticks=5) == 0
    assert [r.json for r in mode_puts(smart)] == [{"mode": "SMART_CHARGING"}]
    assert all(not (r.json or {}).get("chargingLevel") for r in smart.cloud.requests("/start"))


@pytest.fixture
async def manual(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    async for world in world_at(MIDDAY, tmp_path, monkeypatch):
        yield world


async def test_a_three_hour_scheduler_outage_is_ridden_out(
    manual: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # The charger is MANUAL; the rule wants GREEN. The scheduler is down from the start;
    # after the first tick has seen one good status, the status fails with it.
    manual.cloud.scheduler_outage(3 * 3600)
    manual.clock.hooks[1] = lambda: setattr(manual.cloud.outage, "status", True)
    service = manual.service(manual.config(GREEN_BY_DAY))
    ticks = 4 * 120  # four hours of 30 s ticks
    assert await service.run(max_ticks=ticks) == 0
    await check_outage(manual, ticks)
    assert "scheduler service down" in caplog.text
    assert "scheduler service back after" in caplog.text


async def check_outage(world: World, ticks: int) -> None:
    end = world.cloud.outage.until
    assert end is not None
    puts = mode_puts(world)
    assert len(puts) == 1, "one mode change, after the outage"
    assert datetime.fromisoformat(puts[0].time).timestamp() >= end
    assert world.cloud.charger().scheduler_mode == "GREEN_CHARGING"

    rows = world.rows()
    # The service went on deciding: unchanged holds are recorded as a heartbeat (15 min).
    stamps = sorted({datetime.fromisoformat(r["ts"].replace("Z", "+00:00")) for r in rows})
    assert len(stamps) >= ticks * 30 / (15 * 60)
    assert max(b - a for a, b in itertools.pairwise(stamps)) <= timedelta(minutes=15)
    held = [r for r in rows if r["action"] == "hold" and "scheduler" in r["reason"]]
    assert held, "a decision that needed a mode change held and said why"
    assert any("status is" in r["reason"] and "old" in r["reason"] for r in held)
    assert any(json.loads(r["inputs"]).get("status_age_s") for r in rows)
    hourly = world.rows("SELECT hour, sum(count) AS n FROM requests GROUP BY hour")
    assert max(h["n"] for h in hourly) < 200  # bounded: no retry storm against a dead service
    scheduler_calls = [
        r for r in world.cloud.requests("/service/evse_scheduler/") if r.status == 503
    ]
    assert len(scheduler_calls) <= 3 * 3600 / 30 / 10  # backed off, not once per tick
    assert any("scheduler down" in s for s in world.notes.said("status"))
    assert "req/h" in world.notes.said("status")[-1]
    assert "scheduler down" not in world.notes.said("status")[-1]  # recovered
