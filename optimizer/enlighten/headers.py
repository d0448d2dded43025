"""Which headers the Enlighten web app sends on each route (2026 reference section 0).

Since about April 2026 the cloud answers 406 to a request whose User-Agent is not a
browser's, and on some routes to an ``Accept``/``Referer`` pair the web app would not send.
The pair depends only on the route, so it is decided here by a pure function of (method, path,
site id): every caller gets it right without passing anything, and a test can check the table
without a network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ACCEPT_ANY",
    "ACCEPT_HTML",
    "ACCEPT_JSON",
    "BROWSER_USER_AGENT",
    "SEARCH_SITES_PATH",
    "HeaderProfile",
    "RouteFamily",
    "header_profile",
    "route_family",
    "site_in_path",
]

# A current desktop Chrome on Windows, as the web app's own users send it. The cloud only checks
# that the string is a browser's; one constant keeps every call (Enlighten and Entrez) the same.
# Refresh it when Chrome's major version moves on by a year or so.
# The cloud's address (the config's default enlighten.base_url). Here, not in transport.py,
# so that the config can name it without importing aiohttp (issue 16: a fast `evopt`).
DEFAULT_BASE_URL = "https://enlighten.enphaseenergy.com"
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"
)
# Discovery (2026 reference section 5): sends the Entrez token as bearer and e-auth-token.
SEARCH_SITES_PATH = "/app-api/search_sites.json"
ACCEPT_ANY = "*/*"
ACCEPT_JSON = "application/json, text/javascript, */*; q=0.01"
ACCEPT_HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

RouteFamily = Literal["ev_read", "ev_json", "app_read", "login", "login_form", "other"]

# The site is the first all-digit segment after the service's fixed words (serials come later).
_SITE_PATTERNS = (
    re.compile(r"^/service/[a-z_]+/(?:api/v\d+/)?(?:[A-Za-z_-]+/)*(\d+)(?:/|$)"),
    re.compile(r"^/(?:app-api|pv/systems|pv/settings|web)/(\d+)(?:/|$)"),
    re.compile(r"[?&]site_id=(\d+)"),
)
# EV reads that take the plain browser Accept: status, summary, live stream, feature flags.
_EV_SERVICES = ("/service/evse_controller/", "/service/evse_management/")


@dataclass(frozen=True)
class HeaderProfile:
    """The ``Accept``/``Referer`` pair and whether the call is an XHR (every call but the form
    login is). ``name`` goes into 406 messages so a refusal says what was sent."""

    name: RouteFamily
    accept: str
    referer: str
    xhr: bool = True


def site_in_path(path: str) -> int | None:
    """The site id a route is about, when its path (or query) names one."""
    for pattern in _SITE_PATTERNS:
        match = pattern.search(path)
        if match:
            return int(match.group(1))
    return None


def route_family(method: str, path: str) -> RouteFamily:
    """The web app's header family for one call (section 0's table).

    Writes, the scheduler, charger config and the history/timeseries services are the web
    app's jQuery JSON calls; the controller and management GETs are its plain reads.
    """
    method = method.upper()
    bare = path.split("?", 1)[0]
    if bare == "/login/login.json":
        return "login"
    if bare == "/login/login":
        return "login_form"
    if bare.startswith(("/app-api/", "/pv/")):
        return "app_read" if method == "GET" else "ev_json"
    if bare.startswith("/service/"):
        if method == "GET" and bare.startswith(_EV_SERVICES) and "ev_charger_config" not in bare:
            return "ev_read"
        return "ev_json"
    return "other"


def header_profile(
    method: str,
    path: str,
    site_id: int | None,
    *,
    root: str,
    app_version: str | None = None,
) -> HeaderProfile:
    """Accept and Referer for ``method path`` on the Enlighten host at ``root``."""
    family = route_family(method, path)
    root = root.rstrip("/")
    if family == "login":
        return HeaderProfile(family, ACCEPT_ANY, root + "/")
    if family == "login_form":
        return HeaderProfile(family, ACCEPT_HTML, root + "/", xhr=False)
    if site_id is None or family == "other":
        return HeaderProfile(family, ACCEPT_ANY if family != "ev_json" else ACCEPT_JSON, root + "/")
    if family == "app_read":
        return HeaderProfile(family, ACCEPT_ANY, f"{root}/web/{site_id}/history/graph/years")
    today = f"{root}/web/{site_id}/today/graph/hours"
    if app_version:
        today += f"?v={app_version}"
    accept = ACCEPT_ANY if family == "ev_read" else ACCEPT_JSON
    return HeaderProfile(family, accept, today)
