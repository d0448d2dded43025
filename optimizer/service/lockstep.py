"""Simulated time for several service loops at once: time moves only when every loop sleeps.

A fleet (optimizer/service/fleet.py) runs one loop per site. To run it for simulated days in
seconds (tests, the scale benchmark, the fault soak) the clock must not jump while any site is
still in its tick: a site that is slow to answer, or one whose cloud is failing, would
otherwise see time pass under it that the others did not. :class:`LockstepClock` lets time jump
to the earliest wake-up only once all ``loops`` loops sleep, so "site A ticked every 30 s
while site B was in trouble" is a statement about one timeline.

Why an event per sleeper rather than polling: with hundreds of sites a sleeper that spins on
``asyncio.sleep(0)`` until the clock reaches its end would burn the CPU the scale benchmark
measures. Here a sleeper waits on its own future and the clock wakes exactly those whose end
came, so a simulated poll costs the ticks and nothing else.

``advance`` is told how far time moved, to keep something else in step (an in-process fake
cloud's clock, or the clock of a fake in another process over HTTP); it may be a coroutine.
Hooks (:meth:`at`) run at their time, before the sleepers due then wake: a fault lifted, a
figure read, a stop asked for.
"""

from __future__ import annotations

import asyncio
import bisect
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["LockstepClock"]

Hook = Callable[[], Awaitable[object] | object]


@dataclass
class _Sleeper:
    end: float  # seconds since the clock's start
    done: asyncio.Future[None]
    wake: asyncio.Event

    @property
    def asleep(self) -> bool:
        return not self.done.done() and not self.wake.is_set()


@dataclass(order=True)
class _Hook:
    when: float
    seq: int
    run: Hook = field(compare=False)


class LockstepClock:
    """A :class:`~optimizer.service.clock.Clock` shared by ``loops`` loops.

    ``start`` is the simulated time at creation; ``advance(seconds)`` is called (and awaited
    when it returns an awaitable) each time the clock moves on, before anyone wakes. A loop
    that stops for good must say so (:meth:`leave`) or the others would wait for it forever;
    a fleet's loops all stop together, so the fleet never needs to.
    """

    def __init__(
        self,
        start: datetime,
        *,
        loops: int,
        advance: Callable[[float], object] | None = None,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated start needs a timezone (UTC for a fake cloud)")
        if loops < 1:
            raise ValueError(f"a lockstep clock needs at least one loop, not {loops}")
        self.start = start
        self.loops = loops
        self._advance = advance
        self._elapsed = 0.0
        self._sleepers: list[_Sleeper] = []
        self._hooks: list[_Hook] = []
        self._seq = 0
        self._driver: asyncio.Task[None] | None = None

    # --- the Clock protocol --------------------------------------------------------------------

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self._elapsed)

    def timestamp(self) -> float:
        return self.now().timestamp()

    async def sleep(self, seconds: float, *, wake: asyncio.Event) -> None:
        """Return when the clock reaches now + ``seconds``, or at once when ``wake`` is set."""
        if wake.is_set():
            return
        loop = asyncio.get_running_loop()
        sleeper = _Sleeper(self._elapsed + max(0.0, seconds), loop.create_future(), wake)
        self._sleepers.append(sleeper)
        woken = loop.create_task(wake.wait())
        try:
            self._kick()
            await asyncio.wait((sleeper.done, woken), return_when=asyncio.FIRST_COMPLETED)
            if sleeper.done.done() and sleeper.done.exception() is not None:
                sleeper.done.result()  # the clock could not move on: say why in this loop
        finally:
            woken.cancel()
            self._sleepers.remove(sleeper)
            if not sleeper.done.done():
                sleeper.done.cancel()

    # --- what the driver of a run uses ---------------------------------------------------------

    def at(self, when: datetime, hook: Hook) -> None:
        """Run ``hook`` when the simulated time reaches ``when`` (at once if it has)."""
        self._seq += 1
        bisect.insort(self._hooks, _Hook((when - self.start).total_seconds(), self._seq, hook))

    def after(self, seconds: float, hook: Hook) -> None:
        """Run ``hook`` ``seconds`` from now on the simulated clock."""
        self.at(self.now() + timedelta(seconds=seconds), hook)

    def leave(self) -> None:
        """One loop stopped for good: the clock no longer waits for it."""
        self.loops -= 1
        self._kick()

    # --- moving on -----------------------------------------------------------------------------

    def _all_asleep(self) -> list[_Sleeper] | None:
        asleep = [s for s in self._sleepers if s.asleep]
        return asleep if asleep and len(asleep) >= self.loops else None

    def _kick(self) -> None:
        if self._driver is None and self._all_asleep() is not None:
            self._driver = asyncio.get_running_loop().create_task(self._drive())

    async def _drive(self) -> None:
        """While every loop sleeps: move to the next hook or wake-up, run the hooks due, wake
        the sleepers due. A failure to move on (the fake's clock unreachable) is raised in
        every sleeper, so the loops end instead of waiting forever."""
        try:
            while (asleep := self._all_asleep()) is not None:
                target = min(s.end for s in asleep)
                if self._hooks:
                    target = min(target, self._hooks[0].when)
                if target > self._elapsed:
                    step = target - self._elapsed
                    if self._advance is not None:
                        moved = self._advance(step)
                        if inspect.isawaitable(moved):
                            await moved
                    self._elapsed = target
                while self._hooks and self._hooks[0].when <= self._elapsed:
                    result = self._hooks.pop(0).run()
                    if inspect.isawaitable(result):
                        await result
                for sleeper in asleep:
                    if sleeper.end <= self._elapsed and not sleeper.done.done():
                        sleeper.done.set_result(None)
        except Exception as err:  # noqa: BLE001 - handed to every sleeper, never lost
            for sleeper in self._sleepers:
                if not sleeper.done.done():
                    sleeper.done.set_exception(err)
        finally:
            self._driver = None
