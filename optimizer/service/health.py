"""How the loop rides out failures: how long to wait, and logging each trouble once.

A failing cloud must neither crash the service nor be hammered: a 429 waits at least as long
as the cloud asked, other failures back off exponentially, and a login that needs a person is
checked again only every few minutes (from the stored session, never by a new login that
would send another one-time code). The failure is logged once when it starts and once when it
ends (Home Assistant's ``DataUpdateCoordinator`` habit), not on every tick.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from optimizer.backoff import doubled

__all__ = ["AUTH_RETRY_S", "MAX_BACKOFF_S", "Problem", "Trouble", "delay_after"]

_LOGGER = logging.getLogger(__name__)

Problem = Literal["auth", "rate_limited", "cloud", "config", "internal"]
MAX_BACKOFF_S = 15 * 60.0
AUTH_RETRY_S = 5 * 60.0

WHAT: dict[Problem, str] = {
    "auth": "authentication needed",
    "rate_limited": "rate limited by Enlighten",
    "cloud": "Enlighten failing",
    "config": "local files need fixing",
    "internal": "internal error",
}
LEVELS: dict[Problem, int] = {
    "auth": logging.ERROR,
    "rate_limited": logging.WARNING,
    "cloud": logging.WARNING,
    "config": logging.ERROR,
    "internal": logging.ERROR,
}


def delay_after(
    problem: Problem | None, failures: int, *, poll_s: float, retry_after_s: float | None = None
) -> float:
    """Seconds until the next tick after ``failures`` failed ticks in a row.

    A 429 with ``Retry-After`` waits ``max(poll, Retry-After)``; authentication waits for a
    person (``AUTH_RETRY_S``); everything else ``poll x 2^failures``, at most 15 minutes.
    """
    if problem is None:
        return poll_s
    if problem in ("auth", "config"):  # both wait for a person
        return max(poll_s, AUTH_RETRY_S)
    if problem == "rate_limited" and retry_after_s is not None:
        return max(poll_s, retry_after_s)
    return doubled(poll_s, failures, max(MAX_BACKOFF_S, poll_s))


@dataclass
class Trouble:
    """The loop's current failure: logged when it starts (or changes), and when it ends."""

    problem: Problem | None = None
    failures: int = 0

    def failed(self, problem: Problem, message: str, *, traceback: bool = False) -> int:
        """Count one failed tick; returns how many in a row. ``traceback``: log the exception
        being handled with it (an unexpected one: a bug to report)."""
        if problem != self.problem:
            _LOGGER.log(LEVELS[problem], "%s: %s", WHAT[problem], message, exc_info=traceback)
        else:
            _LOGGER.debug(
                "%s (again, %d in a row): %s",
                WHAT[problem],
                self.failures + 1,
                message,
                exc_info=traceback,
            )
        self.problem = problem
        self.failures += 1
        return self.failures

    def ok(self) -> None:
        if self.problem is not None:
            _LOGGER.info("%s no more: ok after %d failed ticks", WHAT[self.problem], self.failures)
        self.problem = None
        self.failures = 0
