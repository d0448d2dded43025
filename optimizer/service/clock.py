"""Time for the service loop, injected so tests can run simulated hours in seconds.

The loop asks the clock for ``now`` (every timestamp it writes and every snapshot it builds)
and sleeps through it between ticks. :class:`SystemClock` is the real one; a test's clock
advances the fake cloud's clock instead of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    async def sleep(self, seconds: float, *, wake: asyncio.Event) -> None:
        """Wait ``seconds``, or less if ``wake`` is set (a stop or reload was asked for)."""
        ...


class SystemClock:
    """Wall-clock time in UTC; a sleep a signal can cut short."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float, *, wake: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=max(0.0, seconds))
