"""The per-account request budget: never above it, Retry-After for everyone, one per account."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.config import load_config
from optimizer.connect import client_for
from optimizer.enlighten.errors import BudgetHeldError, RateLimitedError
from optimizer.enlighten.ratelimit import (
    HOUR_S,
    AccountLimiter,
    TokenBucket,
    account_limiter,
    whole_command,
)
from optimizer.enlighten.transport import Transport
from optimizer.fakecloud import FakeCloud, FakeCloudServer


class SimTime:
    """A monotonic clock that only moves when the limiter sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _admitted(bucket: TokenBucket, asks: list[float]) -> list[float]:
    """Send times when each ask (a time) waits for the bucket, one after the other."""
    sent: list[float] = []
    now = bucket.stamp
    for ask in asks:
        now = max(now, ask)
        while not bucket.take(now):
            now += bucket.wait_s(now)
        sent.append(now)
    return sent


@settings(max_examples=200, deadline=None)
@given(
    budget=st.integers(min_value=2, max_value=1200),
    burst=st.integers(min_value=1, max_value=50),
    gaps=st.lists(st.floats(min_value=0, max_value=120), min_size=1, max_size=400),
)
def test_no_rolling_hour_exceeds_the_budget(budget: int, burst: int, gaps: list[float]) -> None:
    bucket = TokenBucket.full(budget_per_hour=budget, burst=burst, now=0.0)
    asks: list[float] = []
    t = 0.0
    for gap in gaps:
        t += gap
        asks.append(t)
    sent = _admitted(bucket, asks)
    assert sent == sorted(sent)
    assert all(s >= a for s, a in zip(sent, asks, strict=True))
    for i, start in enumerate(sent):
        in_hour = sum(1 for s in sent[i:] if s < start + HOUR_S)
        assert in_hour <= budget
        in_minute = sum(1 for s in sent[i:] if s < start + 60)
        # The burst, plus the minute's share of the refill.
        assert in_minute <= bucket.burst + (budget - bucket.burst) * 60 / HOUR_S + 1


@settings(max_examples=100, deadline=None)
@given(
    budget=st.integers(min_value=20, max_value=1200),
    hold=st.floats(min_value=0.5, max_value=3600),
    at=st.floats(min_value=0, max_value=100),
)
def test_retry_after_is_the_minimum_wait(budget: int, hold: float, at: float) -> None:
    bucket = TokenBucket.full(budget_per_hour=budget, burst=10, now=0.0)
    bucket.hold(at, hold)
    assert not bucket.take(at)
    assert bucket.wait_s(at) == pytest.approx(hold) or bucket.wait_s(at) > hold
    assert not bucket.take(at + hold * 0.999)
    assert bucket.take(at + hold)
    # A shorter Retry-After afterwards never cuts the longer one short.
    bucket.hold(at, hold / 2)
    assert bucket.hold_until == at + hold


def test_a_budget_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="budget_per_hour must be at least 1"):
        TokenBucket.full(budget_per_hour=0, burst=10, now=0.0)


async def test_burst_goes_at_once_then_requests_are_spaced() -> None:
    sim = SimTime()
    limiter = AccountLimiter(budget_per_hour=600, burst=10, clock=sim.clock, sleep=sim.sleep)
    for _ in range(10):
        await limiter.acquire()
    assert sim.slept == []
    await limiter.acquire()
    # 590 tokens an hour for the rest: one every 3600/590 s.
    assert sum(sim.slept) == pytest.approx(3600 / 590)


async def test_waiters_run_side_by_side_within_the_budget() -> None:
    """Acquiring holds no lock: many requests of the account may be in flight at once."""
    sim = SimTime()
    limiter = AccountLimiter(budget_per_hour=600, burst=4, clock=sim.clock, sleep=sim.sleep)
    inside = 0
    most = 0
    release = asyncio.Event()

    async def request() -> None:
        nonlocal inside, most
        await limiter.acquire()
        inside += 1
        most = max(most, inside)
        await release.wait()
        inside -= 1

    tasks = [asyncio.create_task(request()) for _ in range(4)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*tasks)
    assert most == 4


def test_one_limiter_per_account() -> None:
    a = account_limiter("http://127.0.0.1:1/", "Owner@Example.com")
    b = account_limiter("http://127.0.0.1:1", " owner@example.com")
    other = account_limiter("http://127.0.0.1:1", "neighbour@example.com")
    assert a is b
    assert other is not a
    # A new budget from a reloaded config applies to the limiter already shared.
    assert account_limiter("http://127.0.0.1:1", "owner@example.com", budget_per_hour=300) is a
    assert a.budget_per_hour == 300


async def test_a_429_holds_every_client_of_the_account_until_retry_after() -> None:
    """One client's 429 with Retry-After stops the account's other client too (fake cloud)."""
    sim = SimTime()
    cloud = FakeCloud()
    async with FakeCloudServer(cloud) as server, aiohttp.ClientSession() as session:
        limiter = account_limiter(
            server.base_url, "shared@example.com", clock=sim.clock, sleep=sim.sleep
        )
        elsewhere = account_limiter(
            server.base_url, "other@example.com", clock=sim.clock, sleep=sim.sleep
        )
        first = Transport(base_url=server.base_url, session=session, limiter=limiter)
        second = Transport(base_url=server.base_url, session=session, limiter=limiter)
        third = Transport(base_url=server.base_url, session=session, limiter=elsewhere)
        cloud.add_fault("status", status=429, retry_after=120, path="/probe", times=1)
        with pytest.raises(RateLimitedError):
            await first.request(
                "GET", "/probe", family="status", authenticated=False, retry="never"
            )
        assert limiter.held_for_s() == pytest.approx(120)
        assert elsewhere.held_for_s() == 0
        # Another account is not held: its request goes without waiting.
        await third.exchange("GET", "/probe", family="status", authenticated=False)
        assert sim.slept == []
        # The same account's other client waits out the Retry-After before sending.
        await second.exchange("GET", "/probe", family="status", authenticated=False)
        assert sum(sim.slept) >= 120


def test_clients_of_one_account_share_the_configured_budget(tmp_path: Path) -> None:
    """`client_for` twice (a reload, a second site of the account): one budget between them."""
    path = tmp_path / "config.yaml"
    path.write_text(
        "enlighten:\n  base_url: http://127.0.0.1:9\n  email: same@example.com\n"
        "  budget_per_hour: 240\n"
        f"service:\n  state_dir: {tmp_path / 'state'}\n",
        encoding="utf-8",
    )
    config = load_config(path)
    one = client_for(config, password_provider=None)
    two = client_for(config, password_provider=None)
    assert one.transport.limiter is not None
    assert one.transport.limiter is two.transport.limiter
    assert one.transport.limiter.budget_per_hour == 240


async def test_a_command_is_refused_whole_rather_than_after_its_read() -> None:
    """With one token left, a command (a read of the state, then the write) is refused before
    its read goes: metered one by one, the read would spend the last token and the write find
    none, and the next tick's try would read again (a livelock on a tight budget)."""
    sim = SimTime()
    limiter = AccountLimiter(
        budget_per_hour=600, burst=3, clock=sim.clock, sleep=sim.sleep, max_wait_s=0
    )
    await limiter.acquire()
    await limiter.acquire()
    assert limiter.bucket.tokens == pytest.approx(1)
    with pytest.raises(BudgetHeldError), whole_command():
        await limiter.acquire(what="GET schedules")
    assert limiter.bucket.tokens == pytest.approx(1)  # nothing spent
    sim.now += 3600 / 597  # one more token
    with whole_command():
        await limiter.acquire(what="GET schedules")
        assert limiter.bucket.tokens == pytest.approx(0)  # both reserved at once
        await limiter.acquire(what="POST schedule")  # the write has its token
    assert limiter.bucket.tokens == pytest.approx(0)


async def test_what_a_command_did_not_use_goes_back() -> None:
    sim = SimTime()
    limiter = AccountLimiter(budget_per_hour=600, burst=10, clock=sim.clock, sleep=sim.sleep)
    with whole_command(requests=3):
        await limiter.acquire()  # a noop: the read showed nothing to write
    assert limiter.bucket.tokens == pytest.approx(9)
    with whole_command(requests=2):
        for _ in range(4):  # more than reserved: the rest are metered one by one
            await limiter.acquire()
    assert limiter.bucket.tokens == pytest.approx(5)
