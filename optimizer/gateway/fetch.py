"""The gateway owner's token fetched from Entrez with the Enlighten login we already have.

What the owner does by hand at entrez.enphaseenergy.com (and pyenphase's ``EnvoyTokenAuth``
does with a cloud username and password): trade an Enlighten session for a token for one
gateway, ``POST <entrez>/tokens`` with ``session_id``, ``serial_num`` and ``username``; the
reply body is the JWT as text. We send it through the shared client's transport, so the
stored session is reused (no second login while it works), the browser headers and the
account's request budget apply, and a failure is one of our typed errors:

- the password refused at login: ``InvalidCredentialsError`` (exit 3), from the login itself;
- Entrez refusing the gateway (403: not this account's gateway; 401 twice: the session is
  refused even after one fresh login): :class:`GatewayTokenRefusedError` (exit 3, the reason);
- Entrez or the network failing (5xx, 429, timeouts): ``CloudUnreachableError`` (exit 4).

The token is registered with the log redaction before anything else is done with it.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from optimizer.enlighten.auth import jwt_claims
from optimizer.enlighten.entrez import TOKENS_PATH
from optimizer.enlighten.errors import (
    AuthError,
    CloudUnreachableError,
    ConfigError,
    InvalidCredentialsError,
)
from optimizer.gateway.token import GatewayTokenError, TokenFacts, store_token, token_facts
from optimizer.logsafe import register_secret

if TYPE_CHECKING:
    from pathlib import Path

    from optimizer.enlighten.client import EnlightenClient
    from optimizer.enlighten.transport import RawReply
    from optimizer.gateway.source import GatewaySource

__all__ = ["GatewayTokenRefusedError", "fetch_and_store", "fetch_owner_token", "judge_reply"]

_LOGGER = logging.getLogger(__name__)
# A refusal's text as the reason shown to the user: enough to recognise it, never a page.
REASON_CHARS = 160


class GatewayTokenRefusedError(AuthError):
    """Entrez answered but would not issue a token for this gateway to this account."""

    hint = (
        "check that the gateway's serial (`evopt gateway check`, or the label on the gateway) "
        "belongs to a site of this Enlighten account, or paste a token from "
        "entrez.enphaseenergy.com with `evopt gateway token`"
    )


def _reason(raw: RawReply) -> str:
    """A short, single-line reason from a refusal's body (HTML reduced to its title)."""
    text = raw.text.strip()
    if "<title>" in text.lower():
        start = text.lower().index("<title>") + len("<title>")
        end = text.lower().find("</title>", start)
        text = text[start : end if end > 0 else None]
    else:
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            text = body["message"]
    text = " ".join(text.split())
    return text[:REASON_CHARS] or f"HTTP {raw.status}"


def judge_reply(raw: RawReply, *, serial: str) -> str:
    """The token in an Entrez reply for ``serial``, or the error the reply means.

    Pure, so each reply variant (tests/fixtures/entrez_gateway_*) is judged the same in the
    CLI, the service and the tests. A 401 raises ``InvalidCredentialsError``: the caller
    decides whether one fresh login is worth it.
    """
    if raw.status == 401:
        raise InvalidCredentialsError(
            f"Entrez refused the Enlighten session (HTTP 401: {_reason(raw)})"
        )
    if raw.status in (429,) or raw.status >= 500:
        raise CloudUnreachableError(
            f"Entrez is not issuing tokens now (HTTP {raw.status}: {_reason(raw)})",
            hint="try again later; the stored token (if any) keeps working until it expires",
        )
    if not 200 <= raw.status < 300:
        raise GatewayTokenRefusedError(
            f"Entrez refused a token for gateway {serial} (HTTP {raw.status}: {_reason(raw)})"
        )
    token = raw.text.strip()
    if token.startswith("{"):  # tolerate a JSON wrapper like the cloud token's
        try:
            body = json.loads(token)
        except ValueError:
            body = None
        token = body.get("token", "") if isinstance(body, dict) else ""
        token = token.strip() if isinstance(token, str) else ""
    register_secret(token)
    try:
        facts = token_facts(token)
    except GatewayTokenError as err:
        raise GatewayTokenRefusedError(
            f"Entrez answered for gateway {serial} but not with a token ({err.message})"
        ) from err
    if facts.serial is not None and facts.serial != serial:
        raise GatewayTokenRefusedError(
            f"Entrez issued a token for gateway {facts.serial}, not {serial}"
        )
    return token


async def fetch_owner_token(client: EnlightenClient, *, serial: str) -> str:
    """A new owner token for gateway ``serial`` through ``client``'s session.

    Logs in only when there is no usable session (``Authenticator.ensure``); an Entrez 401 on
    a stored session gets one fresh login (the session may have ended on the server) and one
    more try, never more.
    """
    auth = client.auth
    if not auth.email:
        raise ConfigError("no Enlighten account e-mail: set ENLIGHTEN_EMAIL or `enlighten.email`")
    await auth.ensure()
    generation = client.transport.state.generation
    try:
        return judge_reply(await _ask(client, serial), serial=serial)
    except InvalidCredentialsError:
        _LOGGER.info("Entrez refused the stored session; logging in once more")
    await auth.reauthenticate(generation, reason="Entrez refused the session")
    return judge_reply(await _ask(client, serial), serial=serial)


async def _ask(client: EnlightenClient, serial: str) -> RawReply:
    """One ``POST /tokens`` for ``serial`` with the client's session as it is now."""
    auth, state = client.auth, client.transport.state
    session_id = state.session_id or jwt_claims(state.manager_token).get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise GatewayTokenRefusedError("the Enlighten login gave no session id for Entrez")
    entrez = client.entrez_url  # the config's enlighten.entrez_url, else Enphase's own
    return await client.transport.exchange(
        "POST",
        entrez.rstrip("/") + TOKENS_PATH,
        family="entrez",
        json_body={"session_id": session_id, "serial_num": serial, "username": auth.email},
        authenticated=False,
    )


async def fetch_and_store(client: EnlightenClient, source: GatewaySource, path: Path) -> TokenFacts:
    """The one path from "no token" or "old token" to a new one on disk, for `evopt gateway
    token --fetch` and the service's renewal alike: the serial from the gateway's ``/info``,
    the token from Entrez, written 0600 where the source reads it (atomically: a failure at
    any step leaves the stored token as it was)."""
    serial = await source.serial()
    token = await fetch_owner_token(client, serial=serial)
    return store_token(path, token)
