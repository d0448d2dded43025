"""The lockstep clock (optimizer/service/lockstep.py): time moves only when every loop sleeps.

No real time is measured: each test checks what simulated time each loop saw.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.service.lockstep import LockstepClock

T0 = datetime(2025, 1, 15, 1, 0, tzinfo=UTC)


async def test_time_stands_still_while_one_loop_is_busy() -> None:
    """Loop B's 'tick' spans many event-loop turns (real I/O would); A, asleep for 30 s, is
    not woken before B sleeps too, and B sees no time pass inside its tick."""
    clock = LockstepClock(T0, loops=2)
    seen: dict[str, list[datetime]] = {"a": [], "b": []}
    stop = asyncio.Event()

    async def loop(name: str, busy_turns: int) -> None:
        for _ in range(4):
            before = clock.now()
            for _ in range(busy_turns):
                await asyncio.sleep(0)
            assert clock.now() == before  # nothing moved during the tick
            seen[name].append(before)
            await clock.sleep(30, wake=stop)

    await asyncio.gather(loop("a", 0), loop("b", 50))
    expected = [T0 + timedelta(seconds=30 * i) for i in range(4)]
    assert seen == {"a": expected, "b": expected}


async def test_loops_with_different_intervals_wake_at_their_own_times() -> None:
    clock = LockstepClock(T0, loops=2)
    woke: list[tuple[str, float]] = []
    stop = asyncio.Event()

    async def loop(name: str, every: float, times: int) -> None:
        for _ in range(times):
            await clock.sleep(every, wake=stop)
            woke.append((name, (clock.now() - T0).total_seconds()))
        clock.leave()

    await asyncio.gather(loop("fast", 30, 6), loop("slow", 75, 2))
    assert [t for n, t in woke if n == "fast"] == [30, 60, 90, 120, 150, 180]
    assert [t for n, t in woke if n == "slow"] == [75, 150]
    assert [t for _, t in woke] == sorted(t for _, t in woke)  # one timeline


async def test_hooks_run_at_their_time_and_advance_is_told_each_step() -> None:
    steps: list[float] = []
    calls: list[tuple[str, float]] = []

    async def moved(seconds: float) -> None:
        await asyncio.sleep(0)
        steps.append(seconds)

    clock = LockstepClock(T0, loops=1, advance=moved)
    stop = asyncio.Event()
    clock.after(45, lambda: calls.append(("sync", (clock.now() - T0).total_seconds())))

    async def later() -> None:
        await asyncio.sleep(0)
        calls.append(("async", (clock.now() - T0).total_seconds()))
        stop.set()

    clock.at(T0 + timedelta(seconds=100), later)
    while not stop.is_set():
        await clock.sleep(30, wake=stop)
    assert calls == [("sync", 45.0), ("async", 100.0)]
    assert steps == [30, 15, 15, 30, 10]  # 30, 45 (hook), 60, 90, 100 (hook and stop)
    assert sum(steps) == (clock.now() - T0).total_seconds()


async def test_a_wake_cuts_the_sleep_short_without_moving_time() -> None:
    clock = LockstepClock(T0, loops=2)
    wake = asyncio.Event()

    async def sleeper() -> datetime:
        await clock.sleep(600, wake=wake)
        return clock.now()

    task = asyncio.create_task(sleeper())
    await asyncio.sleep(0)
    wake.set()
    assert await task == T0  # the other loop never slept: time stood still


async def test_a_clock_that_cannot_move_on_ends_every_loop() -> None:
    def broken(seconds: float) -> None:
        raise ConnectionError("the fake's clock is gone")

    clock = LockstepClock(T0, loops=2, advance=broken)
    stop = asyncio.Event()
    results = await asyncio.gather(
        clock.sleep(30, wake=stop), clock.sleep(60, wake=stop), return_exceptions=True
    )
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    assert clock.now() == T0


def test_a_clock_needs_a_timezone_and_a_loop() -> None:
    with pytest.raises(ValueError, match="timezone"):
        LockstepClock(datetime(2025, 1, 1), loops=1)
    with pytest.raises(ValueError, match="at least one loop"):
        LockstepClock(T0, loops=0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(min_value=0, max_value=600), min_size=1, max_size=8),
        min_size=1,
        max_size=5,
    ),
    st.lists(st.integers(min_value=0, max_value=20), min_size=5, max_size=5),
)
def test_every_loop_wakes_exactly_at_its_end_on_one_timeline(
    plans: list[list[int]], turns: list[int]
) -> None:
    """Whatever the loops' sleeps and however long their ticks take in event-loop turns, each
    wakes exactly when its sleep ends, and time never goes back."""

    async def run() -> tuple[list[list[float]], list[float]]:
        clock = LockstepClock(T0, loops=len(plans))
        stop = asyncio.Event()
        timeline: list[float] = []

        async def loop(index: int, sleeps: list[int]) -> list[float]:
            woke = []
            for seconds in sleeps:
                for _ in range(turns[index]):
                    await asyncio.sleep(0)
                start = (clock.now() - T0).total_seconds()
                await clock.sleep(seconds, wake=stop)
                now = (clock.now() - T0).total_seconds()
                assert now == start + seconds
                woke.append(now)
                timeline.append(now)
            clock.leave()
            return woke

        woke = await asyncio.gather(*(loop(i, p) for i, p in enumerate(plans)))
        return list(woke), timeline

    woke, timeline = asyncio.run(run())
    for sleeps, times in zip(plans, woke, strict=True):
        assert times == [float(sum(sleeps[: i + 1])) for i in range(len(sleeps))]
    assert timeline == sorted(timeline)
