"""Reply builders shared by the cloud routes, the fault injector and the admin routes."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web

from optimizer.fakecloud.faults import DEFAULT_MESSAGES

LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Enlighten | Sign in</title></head>
<body>
<h1>Sign in to Enlighten</h1>
<form action="/login/login" method="post">
<input type="email" name="user[email]"><input type="password" name="user[password]">
<button type="submit">Sign in</button>
</form>
</body>
</html>
"""


def reason_phrase(status: int) -> str:
    """A reason phrase even for the cloud's non-standard codes (466, 468, 472, 55x)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return DEFAULT_MESSAGES.get(status, "Error")


def json_reply(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(data, status=status, reason=reason_phrase(status), headers=headers)


def error_reply(status: int, message: str | None = None, **extra: Any) -> web.Response:
    """The services' error envelope: ``{"status": "error", "message": ...}`` plus extras."""
    body: dict[str, Any] = {
        "status": "error",
        "message": message or DEFAULT_MESSAGES.get(status, reason_phrase(status)),
    }
    body.update(extra)
    return json_reply(body, status=status)


def login_wall(page: str = LOGIN_PAGE, headers: dict[str, str] | None = None) -> web.Response:
    """What a dead session gets from some deployments: the sign-in page, status 200."""
    return web.Response(text=page, content_type="text/html", headers=headers)


def not_authorized() -> web.Response:
    return json_reply({"message": "Not Authorized"}, status=401)
