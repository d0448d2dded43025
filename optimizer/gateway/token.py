"""The gateway owner's token: stored 0600 in the state dir, read at start, never logged.

Firmware 7+ answers only with a token Enphase issues to the owner (entrez.enphaseenergy.com,
valid about a year for an owner). The owner pastes it once (`evopt gateway token`); it is
written through the state dir's 0600 writer and registered with the log redaction as soon as
it is read, so no line of the service, the CLI or the decision log can carry it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from optimizer.enlighten.errors import AuthError, ConfigError
from optimizer.logsafe import register_secret
from optimizer.statefile import FILE_MODE, write_private_text

__all__ = [
    "GatewayTokenError",
    "TokenFacts",
    "load_token",
    "store_token",
    "token_facts",
]

_LOGGER = logging.getLogger(__name__)
FETCH_STEP = (
    "the service fetches a new one with the Enlighten login at its next tick; or run "
    "`evopt gateway token --fetch`, or get the owner's token at entrez.enphaseenergy.com "
    "and store it with `evopt gateway token`"
)


class GatewayTokenError(AuthError):
    """No usable gateway token: missing, unreadable, not a token, or refused by the gateway."""

    hint = FETCH_STEP


@dataclass(frozen=True)
class TokenFacts:
    """What a token says about itself (its claims, read without verifying: the gateway
    verifies); never the token."""

    expires_at: datetime | None
    user_type: str | None  # owner or installer
    serial: str | None  # the gateway it was issued for (``aud``)


def token_facts(token: str) -> TokenFacts:
    """The claims of a JWT; a token that is no JWT is refused with what was expected."""
    parts = token.split(".")
    if len(parts) != 3:
        raise GatewayTokenError("the gateway token is not a JWT (three parts joined by dots)")
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError) as err:
        raise GatewayTokenError("the gateway token's claims cannot be read") from err
    if not isinstance(claims, dict):
        raise GatewayTokenError("the gateway token's claims are not an object")
    exp = claims.get("exp")
    expires = datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else None
    user = claims.get("enphaseUser")
    serial = claims.get("aud")
    return TokenFacts(
        expires_at=expires,
        user_type=user if isinstance(user, str) else None,
        serial=serial if isinstance(serial, str) else None,
    )


def load_token(path: Path) -> str:
    """The token in ``path``, registered as a secret. A file others may read is made 0600
    (with a warning: the token may have been read, a new one revokes nothing but is safer)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError as err:
        raise GatewayTokenError(f"no gateway token at {path}") from err
    except OSError as err:
        raise ConfigError(f"cannot read the gateway token file {path}: {err.strerror}") from err
    if mode & 0o077:
        path.chmod(FILE_MODE)
        _LOGGER.warning(
            "the gateway token file %s was readable by others (mode %o); it is now 0600. "
            "If others use this machine, consider fetching a new token",
            path,
            mode,
        )
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read the gateway token file {path}") from err
    if not token:
        raise GatewayTokenError(f"the gateway token file {path} is empty")
    register_secret(token)
    return token


def store_token(path: Path, token: str) -> TokenFacts:
    """Check that ``token`` looks like a gateway token, then write it 0600 (atomically)."""
    token = token.strip()
    register_secret(token)
    facts = token_facts(token)
    write_private_text(path, token + "\n")
    return facts
