"""The account budget as the service meets it: metered in the service's clock, never inside a
tick. A simulated tick is one instant (the fake cloud's clock moves only between ticks), so a
request the budget holds back fails the tick unsent and the next tick comes after the wait.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from optimizer.config import Config
from optimizer.enlighten.errors import BudgetHeldError
from optimizer.enlighten.ratelimit import (
    HOUR_S,
    SPARE_KEEP,
    AccountLimiter,
    account_limiter,
    spare_requests,
)
from optimizer.enlighten.transport import Transport
from optimizer.fakecloud import FakeCloud, FakeCloudServer
from tests.test_ratelimit import SimTime
from tests.test_service import MIDDAY, STATUS_PATH, World, parse_ts, world_at


@pytest.fixture
async def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    async for each in world_at(MIDDAY, tmp_path, monkeypatch):
        yield each


def _with_budget(config: Config, budget: int) -> Config:
    enlighten = config.enlighten.model_copy(update={"budget_per_hour": budget})
    return config.model_copy(update={"enlighten": enlighten})


async def test_a_limiter_that_may_not_wait_refuses_unsent_and_spends_nothing() -> None:
    sim = SimTime()
    limiter = AccountLimiter(
        budget_per_hour=600, burst=3, clock=sim.clock, sleep=sim.sleep, max_wait_s=0.0
    )
    for _ in range(3):
        await limiter.acquire()
    with pytest.raises(BudgetHeldError) as caught:
        await limiter.acquire(what="GET /status")
    assert sim.slept == []  # it did not wait
    assert caught.value.retry_after == pytest.approx(HOUR_S / 597)
    assert "GET /status not sent" in caught.value.message
    sim.now += caught.value.retry_after  # the wait it named is enough
    await limiter.acquire()
    assert sim.slept == []


async def test_a_held_request_is_neither_sent_nor_counted_nor_retried() -> None:
    sim = SimTime()
    cloud = FakeCloud()
    limiter = AccountLimiter(budget_per_hour=600, clock=sim.clock, max_wait_s=0.0)
    limiter.retry_after(45)
    async with FakeCloudServer(cloud) as server, aiohttp.ClientSession() as session:
        transport = Transport(base_url=server.base_url, session=session, limiter=limiter)
        with pytest.raises(BudgetHeldError) as caught:
            await transport.request("GET", "/probe", family="status", authenticated=False)
    assert caught.value.retry_after == pytest.approx(45)
    assert "Retry-After" in caught.value.message
    assert cloud.requests() == []
    assert sum(transport.counter.last_hour().values()) == 0


async def test_a_429_ends_the_tick_at_its_instant_and_the_next_comes_after_retry_after(
    world: World,
) -> None:
    """Before: the limiter slept the Retry-After inside the tick, moving the fake cloud's
    clock (and the car's energy) under a tick stamped with its start."""
    service = world.service(world.config())
    assert (await service.tick()).problem is None
    world.cloud.add_fault("status", status=429, retry_after=120, path=STATUS_PATH, times=1)
    world.cloud.advance(30)
    at = world.cloud.clock.now()
    report = await service.tick()
    assert report.problem == "rate_limited"
    assert world.cloud.clock.now() == at  # no simulated time passed inside the tick
    assert world.clock.sleeps == []
    assert report.delay_s >= 120
    # The status read was sent once: the hold kept the transport from asking again.
    assert len([r for r in world.cloud.requests(STATUS_PATH) if r.time >= at.isoformat()]) <= 1
    world.cloud.advance(report.delay_s)
    assert (await service.tick()).problem is None
    await service.shutdown()


async def test_the_service_stays_within_a_small_budget_and_ticks_stay_instants(
    world: World,
) -> None:
    budget = 40
    service = world.service(_with_budget(world.config(), budget))
    assert await service.run(max_ticks=400) == 0
    times = sorted(parse_ts(r.time) for r in world.cloud.requests())
    assert len(times) > budget  # the budget was the limit, not the policies
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + timedelta(hours=1)) <= budget
    # Every sleep was between ticks: one per tick but the last, and nothing moved the clock
    # otherwise (the simulated span is exactly the sum of those sleeps).
    assert len(world.clock.sleeps) == 399
    span = world.cloud.clock.now() - MIDDAY
    assert span == timedelta(seconds=sum(world.clock.sleeps))


async def test_requests_that_can_be_put_off_leave_tokens_for_those_that_cannot() -> None:
    sim = SimTime()
    limiter = AccountLimiter(
        budget_per_hour=600, burst=10, clock=sim.clock, sleep=sim.sleep, max_wait_s=0.0
    )
    with spare_requests():
        for _ in range(10 - SPARE_KEEP):
            await limiter.acquire()
        with pytest.raises(BudgetHeldError):
            await limiter.acquire()
    for _ in range(SPARE_KEEP):  # the status reads and writes still go
        await limiter.acquire()
    with pytest.raises(BudgetHeldError):
        await limiter.acquire()


def test_clients_metered_in_one_time_share_a_limiter_and_no_other() -> None:
    """The service's sites on one clock share the account's budget; a command run in the same
    process (a test's harness) is not refused by, nor waits on, a simulated service's clock."""
    clock = SimTime()
    url, email = "http://127.0.0.1:7", "owner@example.com"
    site_a = account_limiter(url, email, clock=clock.clock, max_wait_s=0.0, meter=clock)
    site_b = account_limiter(url, email, clock=clock.clock, max_wait_s=0.0, meter=clock)
    command = account_limiter(url, email)
    assert site_a is site_b
    assert command is not site_a
    assert (command.max_wait_s, site_a.max_wait_s) == (float("inf"), 0.0)
