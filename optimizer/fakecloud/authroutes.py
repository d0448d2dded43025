"""The 2026 login variants, the browser form login, Entrez ``/tokens`` and the site search.

Shaped from the 2026 reference (sections 5 and 6): the JSON login can answer 406 (then only
the browser form ``POST /login/login`` logs in), succeed with an empty ``{}`` body and only
Set-Cookie headers, or refuse with "too many active sessions"; Entrez trades a session for a
token; discovery is ``/app-api/search_sites.json``. The switches are ``Profile`` fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from optimizer.fakecloud.auth import AuthSession, make_jwt
from optimizer.fakecloud.cloud import FakeCloud
from optimizer.fakecloud.responses import LOGIN_PAGE, error_reply, json_reply, not_authorized

if TYPE_CHECKING:  # app imports this module to register the routes
    from optimizer.fakecloud.app import Ctx
    from optimizer.fakecloud.writes import AddRoute

__all__ = ["LOCKOUT_MESSAGE", "MANAGER_COOKIE", "AuthRoutes", "login_variant", "set_cookies"]

SESSION_COOKIE = "_enlighten_4_session"
MANAGER_COOKIE = "enlighten_manager_token_production"
LOCKOUT_MESSAGE = "Too many active sessions. Please sign out of other sessions or try again later."
LOCKOUT_PAGE = LOGIN_PAGE.replace(
    "<h1>Sign in to Enlighten</h1>", f"<p class=alert>{LOCKOUT_MESSAGE}</p>"
)
REFUSED_PAGE = LOGIN_PAGE.replace(
    "<h1>Sign in to Enlighten</h1>", "<p class=alert>Invalid email or password.</p>"
)

# Entrez's gateway-token refusals (tests/fixtures/entrez_gateway_token_*: the same texts).
ENTREZ_401_PAGE = """<html>
<head><title>401 Authorization Required</title></head>
<body>
<center><h1>401 Authorization Required</h1></center>
</body>
</html>
"""
ENTREZ_FORBIDDEN = "Forbidden: the serial number is not a gateway of this account's sites"
ENTREZ_NO_SERIAL = "Bad Request: serial_num is required"


def set_cookies(response: web.StreamResponse, session: AuthSession, *, manager: bool) -> None:
    """The cookies of an authenticated session; ``manager``: the manager-token JWT too."""
    response.set_cookie(SESSION_COOKIE, session.session_id, path="/", httponly=True)
    response.set_cookie("XSRF-TOKEN", session.xsrf_token, path="/")
    response.set_cookie("BP-XSRF-Token", session.bp_xsrf_token, path="/")
    if manager:
        response.set_cookie(MANAGER_COOKIE, session.manager_token, path="/", httponly=True)


def login_variant(cloud: FakeCloud) -> web.Response | None:
    """The JSON login's 2026 refusals that come before the password is looked at."""
    if cloud.profile.login_lockout:
        body = {"success": False, "isBlocked": False, "message": LOCKOUT_MESSAGE}
        return json_reply(body, status=cloud.profile.login_failure_status)
    if cloud.profile.login_json_406:
        return json_reply({"status": 406, "message": "Not Acceptable"}, status=406)
    return None


def empty_body_reply(session: AuthSession) -> web.Response:
    """``{}`` and cookies only: the session and the manager token live in Set-Cookie."""
    response = json_reply({})
    set_cookies(response, session, manager=True)
    return response


class AuthRoutes:
    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud

    def register(self, add: AddRoute) -> None:
        add("POST", "/login/login", self.form_login, auth="none")
        add("POST", "/tokens", self.entrez_tokens, auth="none")
        add("GET", "/app-api/search_sites.json", self.search_sites, auth="session")

    def form_login(self, ctx: Ctx) -> web.StreamResponse:
        """The browser form: HTML Accept; success is a redirect that sets the cookies."""
        cloud = self.cloud
        if "text/html" not in ctx.request.headers.get("Accept", ""):
            return json_reply({"status": 406, "message": "Not Acceptable"}, status=406)
        if cloud.profile.login_lockout:
            return web.Response(text=LOCKOUT_PAGE, content_type="text/html")
        form = ctx.form
        outcome = cloud.auth.login(
            form.get("user[email]", ""), form.get("user[password]", ""), ctx.now
        )
        if outcome.session is None:  # refused, blocked, or an MFA account (not via the form)
            return web.Response(text=REFUSED_PAGE, content_type="text/html")
        site_id = cloud.auth.system_ids.get(outcome.session.email.lower(), cloud.model.site_id)
        response = web.Response(status=302, headers={"Location": f"/web/{site_id}"})
        set_cookies(response, outcome.session, manager=True)
        return response

    def entrez_tokens(self, ctx: Ctx) -> web.StreamResponse:
        """``{"session_id", "email"}`` -> ``{"token", "expires_at"}`` for a live session;
        with ``serial_num`` (and ``username``) the gateway owner's token instead."""
        body: Any = ctx.body.json
        if isinstance(body, dict) and "serial_num" in body:
            return self.gateway_token(ctx, body)
        if not isinstance(body, dict):
            return error_reply(422, "session_id and email are required")
        session = self.cloud.auth.sessions.get(str(body.get("session_id", "")))
        email = str(body.get("email", "")).strip().lower()
        if session is None or not session.valid(ctx.now) or email != session.email.lower():
            return not_authorized()
        account = self.cloud.auth.find(session.email) or self.cloud.account
        expires = int(ctx.now + self.cloud.auth.token_lifetime_s)
        token = make_jwt(
            {
                "iss": "fakecloud-entrez",
                "data": {
                    "session_id": session.session_id,
                    "user_id": str(account.user_id),
                },
                "session_id": session.session_id,
                "exp": expires,
            }
        )
        return json_reply({"token": token, "expires_at": expires})

    def gateway_token(self, ctx: Ctx, body: dict[str, Any]) -> web.StreamResponse:
        """``{"session_id", "serial_num", "username"}`` -> the owner's token as plain text
        (what pyenphase's ``EnvoyTokenAuth`` reads), signed by the fake gateway of that serial.

        Refusals, one per variant (``tests/fixtures/entrez_gateway_*``): a dead session or
        another user's name is nginx's 401 page; a serial that is not a gateway of the
        account's sites is a 403 (observed as a bare "Forbidden" in the field; its body is
        inferred); no serial at all is a 400.
        """
        cloud = self.cloud
        serial = str(body.get("serial_num") or "").strip()
        if not serial:
            return web.Response(status=400, text=ENTREZ_NO_SERIAL, content_type="text/plain")
        session = cloud.auth.sessions.get(str(body.get("session_id", "")))
        username = str(body.get("username", "")).strip().lower()
        if session is None or not session.valid(ctx.now) or username != session.email.lower():
            return web.Response(status=401, text=ENTREZ_401_PAGE, content_type="text/html")
        gateway = cloud.gateways.get(serial)
        owned = {model.site_id for model in cloud.sites.of(session.email)}
        if gateway is None or gateway.site_id not in owned:
            return web.Response(status=403, text=ENTREZ_FORBIDDEN, content_type="text/plain")
        return web.Response(text=gateway.issue_token(), content_type="text/plain")

    def search_sites(self, ctx: Ctx) -> web.StreamResponse:
        """The web app's site search; it sends the XSRF cookie back as ``X-CSRF-Token``."""
        request = ctx.request
        if not self.cloud.profile.search_sites:
            return error_reply(404)
        csrf = request.headers.get("X-CSRF-Token")
        if not csrf or csrf != request.cookies.get("XSRF-TOKEN"):
            return error_reply(403, "Forbidden", reason="X-CSRF-Token does not match XSRF-TOKEN")
        owner = self.cloud.account_of(
            request.headers.get("e-auth-token"), request.cookies.get(SESSION_COOKIE)
        )
        wanted = request.query.get("searchText", "").strip().lower()
        favourites_only = request.query.get("favourite", "false").lower() == "true"
        sites = [  # the account's own sites only
            {
                "id": model.site_id,
                "path": f"/web/{model.site_id}?v=3.4.0",
                "title": model.name,
                "favourite": False,
            }
            for model in (self.cloud.sites.of(owner) if owner is not None else [])
        ]
        found = [
            site
            for site in sites
            if (not wanted or wanted in f"{site['id']} {site['title']}".lower())
            and (not favourites_only or site["favourite"])
        ]
        return json_reply({"sites": found})
