"""A clock the tests control.

Everything in the fake that depends on time (token expiry, OTP throttling, energy buckets,
session energy) reads this clock instead of the system clock, so a test can jump a day ahead in
microseconds and get the same payloads on every run.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

# 02:00 UTC is 13:00 in Melbourne (AEDT): a summer afternoon with the sun high, so a fresh fake
# has PV production and a surplus to play with.
DEFAULT_START = datetime(2025, 1, 15, 2, 0, tzinfo=UTC)


class FakeClock:
    """UTC clock that stands still (default) or runs in real time from a chosen instant.

    ``advance`` and ``set`` work in both modes: in real-time mode they shift the clock and it
    keeps running from the new instant. Thread-safe, because tests mutate it from their own
    thread while the server reads it on its loop thread.
    """

    def __init__(self, start: datetime | None = None, *, realtime: bool = False) -> None:
        if start is None:
            start = datetime.now(UTC) if realtime else DEFAULT_START
        self._lock = threading.Lock()
        self._realtime = realtime
        self._base = _as_utc(start)
        self._mono0 = time.monotonic()

    @property
    def realtime(self) -> bool:
        return self._realtime

    def now(self) -> datetime:
        with self._lock:
            if not self._realtime:
                return self._base
            return self._base + timedelta(seconds=time.monotonic() - self._mono0)

    def timestamp(self) -> float:
        """Epoch seconds of ``now()``, the form most of the model computes with."""
        return self.now().timestamp()

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward (or back, with a negative value) and return the new time."""
        with self._lock:
            self._base += timedelta(seconds=seconds)
        return self.now()

    def set(self, when: datetime) -> datetime:
        with self._lock:
            self._base = _as_utc(when)
            self._mono0 = time.monotonic()
        return self.now()


def _as_utc(when: datetime) -> datetime:
    """Naive datetimes are taken as UTC, so a test can write ``datetime(2025, 1, 15, 2)``."""
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)
