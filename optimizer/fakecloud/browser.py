"""The 2026 cloud's header checks (reference section 0) and a gauge of reads in flight.

Since about April 2026 the cloud answers 406 to a request whose User-Agent is not a browser's,
and on some routes to an ``Accept``/``Referer`` pair its web app would not send. This table is
the fake's own reading of the reference, kept apart from the client's so that a client bug
cannot be mirrored here: EV reads come from the site's today graph page, ``/app-api`` and
``/pv`` reads from its history page, the JSON login from the site root; all of them accept
``*/*``. A missing Referer is let through (privacy settings strip it); a wrong one is not.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from optimizer.fakecloud.responses import json_reply

__all__ = ["ReadGauge", "header_refusal", "is_browser"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_BROWSER = re.compile(r"^Mozilla/5\.0 \(.+\) .*(Chrome|Firefox|Safari|Edg)/\d+")
_BOTS = re.compile(r"bot|crawl|spider|python|aiohttp|curl|wget|httpx|requests", re.IGNORECASE)

# (method, path pattern, the Referer path the web app sends; {site} is the path's site id).
_HISTORY_PAGE = "/web/{site}/history/graph/years"
_CHECKED: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"^/login/login\.json$"), "/"),
    (
        "GET",
        re.compile(r"^/service/evse_controller/(?:api/v2/)?(?P<site>\d+)/ev_chargers?/"),
        "/web/{site}/today/graph/hours",
    ),
    ("GET", re.compile(r"^/app-api/(?P<site>\d+)/"), "/web/{site}/history/graph/years"),
    (
        "GET",
        re.compile(r"^/pv/(?:systems|settings)/(?P<site>\d+)/"),
        "/web/{site}/history/graph/years",
    ),
)


def is_browser(user_agent: str | None) -> bool:
    """A desktop or mobile browser's User-Agent, not a library's or a client-branded one."""
    if not user_agent or _BOTS.search(user_agent):
        return False
    return _BROWSER.search(user_agent) is not None


def header_refusal(method: str, path: str, headers: dict[str, str]) -> str | None:
    """Why the 2026 cloud would answer 406, or None when it would not."""
    if not is_browser(headers.get("User-Agent")):
        return "the User-Agent is not a browser's"
    for verb, pattern, page in _CHECKED:
        match = pattern.match(path)
        if verb != method or match is None:
            continue
        accept = headers.get("Accept", "*/*")
        if "*/*" not in accept:
            return f"Accept {accept!r} is not what the web app sends here (*/*)"
        referer = headers.get("Referer")
        if referer is None:
            return None
        want = page.format(site=match.groupdict().get("site", ""))
        if urlsplit(referer).path != want:
            return f"Referer {referer!r} is not the web app's page for this route ({want})"
    return None


def not_acceptable(reason: str) -> web.Response:
    return json_reply({"status": 406, "message": "Not Acceptable", "reason": reason}, status=406)


@dataclass
class ReadGauge:
    """GET requests being answered right now, and the most there ever were at once."""

    in_flight: int = 0
    peak: int = 0

    def reset(self) -> None:
        self.in_flight = self.peak = 0

    async def around(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "GET":
            return await handler(request)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1
