"""Capped exponential backoff, the one rule behind every retry pause (the service's failed
ticks, an observed source that keeps failing)."""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

__all__ = ["MAX_DOUBLINGS", "doubled"]

MAX_DOUBLINGS = 16
"""2**16 intervals is far past any cap: bounding the exponent keeps a failure that lasts for
months from overflowing a float or a timedelta (the fault soak found the timedelta case)."""

T = TypeVar("T", float, timedelta)


def doubled(base: T, doublings: int, cap: T) -> T:
    """``base x 2^doublings``, at most ``cap``."""
    return min(base * (1 << min(max(doublings, 0), MAX_DOUBLINGS)), cap)
