"""One backoff for the whole scheduler family during an outage (2026 reference section 10).

The scheduler (mode, green settings, schedules) fails for hours at a time, and the status read
can fail with it. Each source already backs off on its own; but three sources per charger each
probing a service that is down, and a status read retried on every tick, would spend the
account's budget for nothing. So the first scheduler failure starts one shared pause of
``max(30, min(600, slow x 2^(n-1)))`` s; while it runs no scheduler read is made and a status
that failed with the scheduler is served from the last good one (its age shown). The first
success ends it, logged once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from optimizer.backoff import doubled

__all__ = ["MAX_PAUSE", "MIN_PAUSE", "SchedulerOutage"]

_LOGGER = logging.getLogger(__name__)

MIN_PAUSE = timedelta(seconds=30)
MAX_PAUSE = timedelta(seconds=600)


@dataclass
class SchedulerOutage:
    """``slow``: the slow polling interval the pause doubles from."""

    slow: timedelta = timedelta(seconds=60)
    failures: int = 0
    since: datetime | None = None
    next_at: datetime | None = None
    status_down: bool = False  # the status read failed with the scheduler

    @property
    def active(self) -> bool:
        return self.failures > 0

    def pause(self) -> timedelta:
        return max(MIN_PAUSE, doubled(self.slow, self.failures - 1, MAX_PAUSE))

    def due(self, now: datetime) -> bool:
        return self.next_at is None or now >= self.next_at

    def failed(self, now: datetime, why: object, *, status: bool = False) -> None:
        self.failures += 1
        if self.since is None:
            self.since = now
            _LOGGER.warning(
                "Enlighten scheduler service down (%s); serving the last known mode, schedules"
                "%s and making no mode changes until it is back",
                why,
                " and status" if status else "",
            )
        self.status_down = self.status_down or status
        self.next_at = now + self.pause()

    def status_back(self) -> None:
        self.status_down = False

    def ok(self, now: datetime) -> None:
        if self.since is not None:
            _LOGGER.info(
                "Enlighten scheduler service back after %s (%d failed probes)",
                now - self.since,
                self.failures,
            )
        self.failures, self.since, self.next_at, self.status_down = 0, None, None, False
