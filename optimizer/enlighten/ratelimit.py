"""One request budget per Enlighten account, shared by every client of that account.

The cloud throttles an *account*, not a charger or a client (2026 reference section 10: keep
below ~600 requests per hour; honour ``Retry-After`` as the minimum wait). With several
chargers and sites in one process, each client counting on its own would add up past the
budget, and a 429 seen by one client would not stop the others from walking into the next one.
So the process keeps one :class:`AccountLimiter` per account (:func:`account_limiter`) and every
:class:`~optimizer.enlighten.transport.Transport` of that account takes a token from it before
each request.

The limiter only meters *when* a request may start; it holds no lock while the request runs, so
reads and writes for different chargers still run side by side (the transport's own gate keeps
reads to two in flight).

Where a request may wait depends on who sends it. A one-off command (`evopt status`) sleeps
until its token comes. The service may not: a tick is one instant of its clock (every row of
the tick carries the tick's time, and in simulated time only the service moves the clock,
between ticks), so a sleep inside a tick would either move the simulated world under a tick
that is still reading it, or, on the real clock, make the tick act on readings older than the
wait and run past its watchdog. So the service's limiter has ``max_wait_s=0``: a request that
would have to wait is not sent and raises :class:`~optimizer.enlighten.errors.BudgetHeldError`
naming the wait, and the service takes that as a 429 with ``Retry-After``: the tick ends and
the next one comes after the wait, in the service's own clock (simulated or real).

The bucket is sized so that no rolling hour can exceed the budget: ``burst`` tokens to start,
refilled at ``(budget - burst)`` per hour. Any window of ``w`` seconds then admits at most
``burst + (budget - burst) * w / 3600`` requests, which is ``budget`` for a full hour. The
decision of how long to wait is the pure :meth:`TokenBucket.wait_s`; waiting is at the edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from optimizer.enlighten.errors import BudgetHeldError

# 2026 reference section 10: "keep each account below ~600 requests per hour".
DEFAULT_BUDGET_PER_HOUR = 600
# Requests that may go out back to back: the first tick's login and discovery (about 15 for
# one charger) plus a few chargers' reads, so a start-up is not spaced out over minutes.
DEFAULT_BURST = 30
HOUR_S = 3600.0
# Float slack: a wait shorter than this is none (a clock at 1e5 s cannot move by less).
EPSILON_S = 1e-9


@dataclass
class TokenBucket:
    """The arithmetic of the budget, with time passed in (no clock, no sleeping).

    ``tokens`` is what may be spent now, ``stamp`` when it was last brought up to date and
    ``hold_until`` the end of a ``Retry-After`` the cloud asked for (no request before it).
    """

    budget_per_hour: int
    burst: int
    tokens: float
    stamp: float
    hold_until: float = float("-inf")

    @classmethod
    def full(cls, *, budget_per_hour: int, burst: int, now: float) -> TokenBucket:
        if budget_per_hour < 1:
            raise ValueError(f"budget_per_hour must be at least 1, got {budget_per_hour}")
        # A burst at or above the budget would let one hour run past it: keep one token of
        # refill at least, so the bucket still refills.
        burst = max(1, min(burst, budget_per_hour - 1)) if budget_per_hour > 1 else 1
        return cls(budget_per_hour=budget_per_hour, burst=burst, tokens=float(burst), stamp=now)

    @property
    def rate_per_s(self) -> float:
        """Refill rate: what is left of the hour's budget once the burst is spent."""
        return max(1, self.budget_per_hour - self.burst) / HOUR_S

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate_per_s)
            self.stamp = now

    def wait_s(self, now: float, *, keep: int = 0) -> float:
        """Seconds from ``now`` until a request may go: 0 when it may go at once.

        ``keep`` tokens must stay in the bucket after it (a request that can be put off
        leaves them to those that cannot); never more than the burst less one.
        """
        self._refill(now)
        keep = max(0, min(keep, self.burst - 1))
        hold = max(0.0, self.hold_until - now)
        # Tokens keep refilling during a hold, so the two waits overlap rather than add.
        short = max(0.0, 1.0 + keep - self.tokens) / self.rate_per_s
        return max(hold, short)

    def take(self, now: float, *, keep: int = 0) -> bool:
        """Spend one token if a request may go at ``now``; False (nothing spent) if not."""
        if self.wait_s(now, keep=keep) > EPSILON_S:
            return False
        self.tokens -= 1.0
        return True

    def take_many(self, now: float, count: int, *, keep: int = 0) -> bool:
        """Spend ``count`` tokens at once if they are all there (and ``keep`` more); False,
        nothing spent, if not. A command's requests are reserved together this way."""
        if count < 1:
            raise ValueError(f"a reservation is at least one request, not {count}")
        if self.wait_s(now, keep=keep + count - 1) > EPSILON_S:
            return False
        self.tokens -= float(count)
        return True

    def give_back(self, count: int) -> None:
        """Return reserved tokens a command did not use (never past the burst)."""
        self.tokens = min(float(self.burst), self.tokens + max(0, count))

    def hold(self, now: float, seconds: float) -> None:
        """No request before ``now + seconds`` (a 429's ``Retry-After``); never shortens one."""
        self.hold_until = max(self.hold_until, now + max(0.0, seconds))


class AccountLimiter:
    """The bucket of one account, with the clock and the sleep at the edge.

    ``acquire`` is called by every request of the account, whichever client or charger it is
    for; waiters are served in no promised order, but none is starved for long because each
    re-checks after sleeping just the time the bucket names. A wait longer than ``max_wait_s``
    is not slept: the request is refused unsent (:class:`BudgetHeldError`), for callers whose
    time may not pass mid-request (the service's tick, see the module docstring).
    """

    def __init__(
        self,
        *,
        budget_per_hour: int = DEFAULT_BUDGET_PER_HOUR,
        burst: int = DEFAULT_BURST,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_wait_s: float = math.inf,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self.max_wait_s = max_wait_s
        self.bucket = TokenBucket.full(budget_per_hour=budget_per_hour, burst=burst, now=clock())

    @property
    def budget_per_hour(self) -> int:
        return self.bucket.budget_per_hour

    async def acquire(self, *, what: str = "request") -> None:
        """Wait until this account may send one more request, then count it.

        Raises :class:`BudgetHeldError` (nothing spent) when the wait is above ``max_wait_s``;
        ``what`` names the request in that error (a path, never the account).
        """
        keep = SPARE_KEEP if _SPARE.get() else 0
        command = _COMMAND.get()
        reserved = command is not None and command.limiter is self and command.left > 0
        if command is not None and reserved and self.bucket.hold_until <= self._clock():
            command.left -= 1  # reserved when the command began
            return
        count = 1
        if command is not None and command.limiter is None:
            count = command.requests
        while not self.bucket.take_many(self._clock(), count, keep=keep):
            wait = self.bucket.wait_s(self._clock(), keep=keep + count - 1)
            if wait > self.max_wait_s:
                held = self.bucket.hold_until > self._clock()
                why = "Enlighten's Retry-After holds" if held else "the request budget spent for"
                raise BudgetHeldError(
                    f"{what} not sent: {why} this account ({self.budget_per_hour}/h); "
                    f"it may go in {wait:.0f} s",
                    url=what,
                    retry_after=wait,
                )
            await self._sleep(wait)
        if count > 1 and command is not None:
            command.limiter, command.left = self, count - 1

    def retry_after(self, seconds: float) -> None:
        """Hold every request of the account for ``seconds`` (the cloud said so in a 429)."""
        self.bucket.hold(self._clock(), seconds)

    def held_for_s(self) -> float:
        """Seconds left of a ``Retry-After`` hold: 0 when none (for status lines)."""
        return max(0.0, self.bucket.hold_until - self._clock())


# Weak: a limiter lives as long as a client of its account does, so a later client of the same
# account (a reload) shares it while one is alive, and a process that is done with an account
# (a test's fake cloud, whose port may come back) does not keep its clock.
# Requests that can be put off (a cache refresh that keeps its last value) go only while this
# many tokens stay for those that cannot (the status every tick, a write): with the budget
# tight, the slow reads give first and the status reads last.
SPARE_KEEP = 5
_SPARE: contextvars.ContextVar[bool] = contextvars.ContextVar("spare_requests", default=False)


@contextlib.contextmanager
def spare_requests() -> Iterator[None]:
    """The requests made inside (in this task) may be put off: they leave ``SPARE_KEEP``."""
    token = _SPARE.set(True)
    try:
        yield
    finally:
        _SPARE.reset(token)


# A command is a few requests that are worth nothing apart: the read of the charger's state or
# schedule list it starts from, then the write. Metered one by one, with the budget tight, the
# read would take the last token and the write find none; the command fails unsent, is
# decided again next tick, reads again and fails again, and those reads eat every token the
# writes need (the scale benchmark found it at two sites of two chargers on one account:
# 150 scheduler reads an hour per site and no schedule ever written). So a command's first
# requests are reserved together, or none is sent.
COMMAND_REQUESTS = 2


@dataclass
class _Command:
    requests: int
    limiter: AccountLimiter | None = None  # where the reservation was taken
    left: int = 0  # reserved tokens not yet used


_COMMAND: contextvars.ContextVar[_Command | None] = contextvars.ContextVar(
    "command_requests", default=None
)


@contextlib.contextmanager
def whole_command(requests: int = COMMAND_REQUESTS) -> Iterator[None]:
    """The requests made inside (in this task) are one command: the first ``requests`` of
    them are reserved together when the first is sent (all there, or it is refused unsent),
    and what the command did not use goes back to the bucket at the end."""
    command = _Command(requests)
    token = _COMMAND.set(command)
    try:
        yield
    finally:
        _COMMAND.reset(token)
        if command.limiter is not None and command.left:
            command.limiter.bucket.give_back(command.left)


_LIMITERS: weakref.WeakValueDictionary[tuple[str, str, object], AccountLimiter] = (
    weakref.WeakValueDictionary()
)


def account_key(base_url: str, email: str | None) -> tuple[str, str]:
    """Which account a client talks to: the cloud it talks to and the login, case-folded.

    The key stays in this module's memory only; it is never logged (it holds the e-mail).
    A client without an e-mail (a stored session only) counts as the one account of its cloud.
    """
    return base_url.rstrip("/").lower(), (email or "").strip().casefold()


def account_limiter(
    base_url: str,
    email: str | None,
    *,
    budget_per_hour: int = DEFAULT_BUDGET_PER_HOUR,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_wait_s: float = math.inf,
    meter: object = None,
) -> AccountLimiter:
    """The process's one limiter for this account, made on first use.

    A second client of the same account gets the same limiter, so their requests share one
    budget. A different ``budget_per_hour`` for an account already in use replaces the budget
    (a config reload), keeping the tokens already spent. ``clock``, ``sleep`` and ``max_wait_s``
    apply only to a limiter made here (tests run simulated time through them).

    ``meter`` names the time the budget is metered in (the service passes its clock object;
    None: the process's own monotonic time), and is part of the key: every client metered in
    the same time shares the account's limiter, while a command run in-process beside a
    simulated service (tests do) never waits on, or refuses by, the simulated clock.
    """
    key = (*account_key(base_url, email), meter)
    limiter = _LIMITERS.get(key)
    if limiter is None:
        limiter = AccountLimiter(
            budget_per_hour=budget_per_hour, clock=clock, sleep=sleep, max_wait_s=max_wait_s
        )
        _LIMITERS[key] = limiter
    elif limiter.budget_per_hour != budget_per_hour:
        old = limiter.bucket
        new = TokenBucket.full(budget_per_hour=budget_per_hour, burst=old.burst, now=old.stamp)
        new.tokens = min(old.tokens, float(new.burst))
        new.hold_until = old.hold_until
        limiter.bucket = new
    return limiter
