"""The Entrez token (2026 reference section 6): the bearer history and timeseries prefer.

After a login the web app trades the session for a token at ``<entrez>/tokens``. Only a 401 or
403 there means anything for the login (the credentials are invalid); every other failure
leaves the client working with cookies alone, which is how it worked before Entrez existed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from optimizer.enlighten.errors import CloudUnreachableError, InvalidCredentialsError
from optimizer.enlighten.transport import Transport
from optimizer.logsafe import register_secret

__all__ = ["DEFAULT_ENTREZ_URL", "EntrezToken", "fetch_entrez_token", "parse_entrez_reply"]

_LOGGER = logging.getLogger(__name__)

DEFAULT_ENTREZ_URL = "https://entrez.enphaseenergy.com"
TOKENS_PATH = "/tokens"


@dataclass(frozen=True)
class EntrezToken:
    token: str
    expires_at: float | None


def parse_entrez_reply(body: Any, *, exp_claim: float | None) -> EntrezToken | None:
    """``{"token", "expires_at"}``; a missing ``expires_at`` falls back to the JWT's ``exp``."""
    if not isinstance(body, dict):
        return None
    token = body.get("token")
    if not isinstance(token, str) or not token:
        return None
    raw = body.get("expires_at")
    if not isinstance(raw, int | float) or isinstance(raw, bool):
        return EntrezToken(token, exp_claim)
    expires = float(raw)
    return EntrezToken(token, expires / 1000 if expires > 1e12 else expires)  # ms or s


async def fetch_entrez_token(
    transport: Transport,
    entrez_url: str,
    *,
    session_id: str,
    email: str,
    exp_of: Callable[[str], float | None],
) -> EntrezToken | None:
    """The token, or None to carry on with cookies; raises only for refused credentials.

    ``exp_of`` maps a token to its ``exp`` claim (auth's ``token_expiry``, passed in to keep
    this module free of the login code).
    """
    url = entrez_url.rstrip("/") + TOKENS_PATH
    try:
        raw = await transport.exchange(
            "POST",
            url,
            family="entrez",
            json_body={"session_id": session_id, "email": email},
            authenticated=False,
        )
    except CloudUnreachableError as err:
        _LOGGER.info("no Entrez token (%s); carrying on with cookies", type(err).__name__)
        return None
    if raw.status in (401, 403):
        raise InvalidCredentialsError(
            f"Entrez refused the session (HTTP {raw.status}): the credentials are not valid"
        )
    if not 200 <= raw.status < 300:
        _LOGGER.info("no Entrez token (HTTP %s); carrying on with cookies", raw.status)
        return None
    try:
        body = json.loads(raw.text) if raw.text.strip() else None
    except (ValueError, RecursionError):
        body = None
    token = parse_entrez_reply(body, exp_claim=None)
    if token is None:
        _LOGGER.info("Entrez answered without a token; carrying on with cookies")
        return None
    register_secret(token.token)
    if token.expires_at is None:
        token = EntrezToken(token.token, exp_of(token.token))
    return token
