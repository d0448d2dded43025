"""Scheduler outages of hours (2026 reference section 10), on the fake clock.

The scheduler family is the cloud's least reliable service: it fails for 2-3 h typically, up to
9-12 h, and the status read can fail with it (a 503 whose ``displayMessage`` names the
scheduler). A fault rule counts requests; an outage lasts a span of fake time, so a test can
jump the clock through three hours and see every scheduler call fail until it ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from optimizer.fakecloud.preference import error_2026

__all__ = ["SCHEDULER_DOWN", "SchedulerOutage", "outage_middleware"]

SCHEDULER_DOWN = "evse_scheduler service is temporarily unavailable"
_SCHEDULER = "/service/evse_scheduler/"
_STATUS_SUFFIXES = ("/ev_chargers/status", "/ev_charger/status")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class SchedulerOutage:
    """``until`` in fake epoch seconds (None: no outage); ``status``: status fails too."""

    until: float | None = None
    status: bool = False

    def start(self, now: float, duration_s: float, *, status: bool = False) -> None:
        if duration_s <= 0:
            raise ValueError(f"an outage needs a positive duration, not {duration_s} s")
        self.until, self.status = now + duration_s, status

    def clear(self) -> None:
        self.until, self.status = None, False

    def active(self, now: float) -> bool:
        return self.until is not None and now < self.until

    def hits(self, path: str, now: float) -> bool:
        if not self.active(now):
            return False
        return path.startswith(_SCHEDULER) or (self.status and path.endswith(_STATUS_SUFFIXES))

    def to_dict(self) -> dict[str, object]:
        return {"until": self.until, "status": self.status}


def outage_middleware(outage: SchedulerOutage, now: Callable[[], float]) -> Middleware:
    """Answers 503 with the service-unavailable body for every call the outage covers (admin
    routes never match: they are not under the cloud's service paths)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        moment = now()
        if outage.hits(request.path, moment):
            return error_2026(moment, 503, SCHEDULER_DOWN)
        return await handler(request)

    return middleware
