"""The per-account request budget: past it, the fake answers 429 with ``Retry-After``.

The 2026 reference (section 10, and the field notes) says the cloud keeps each *account* below
~600 requests per hour and throttles heavier traffic. The fake counts, per account, the requests
of the last hour on the fake clock; the one past the budget answers 429 with ``Retry-After`` in
whole seconds until the oldest counted request leaves the window (the minimum wait the client
must honour). Counting is per account, never per process, so one busy account cannot starve
another; a refused request is not counted, so a client that waits as told is served again.

Pure bookkeeping: the HTTP side (which account a request belongs to, the reply) is in ``app``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

WINDOW_S = 3600.0


@dataclass
class RequestBudget:
    """Sliding one-hour windows of request times, one per account (keyed by e-mail)."""

    window_s: float = WINDOW_S
    _seen: dict[str, deque[float]] = field(default_factory=dict)

    def take(self, account: str, now: float, per_hour: int) -> float | None:
        """Count one request of ``account`` at ``now``; None when within ``per_hour``, else
        the seconds to wait (the request is then refused and not counted)."""
        seen = self._seen.setdefault(account.lower(), deque())
        while seen and seen[0] <= now - self.window_s:
            seen.popleft()
        if len(seen) >= per_hour:
            return max(0.0, seen[0] + self.window_s - now)
        seen.append(now)
        return None

    def used(self, account: str, now: float) -> int:
        """Requests of ``account`` counted in the window that ends at ``now``."""
        seen = self._seen.get(account.lower(), deque())
        return sum(1 for t in seen if t > now - self.window_s)

    def reset(self) -> None:
        self._seen.clear()


def retry_after_header(wait_s: float) -> str:
    """Whole seconds, rounded up and at least 1, so honouring it never retries too early."""
    return str(max(1, math.ceil(wait_s)))
