"""The service keeps the gateway token alive: a new one from Entrez before the old one ends.

An owner's token lasts a year. Like Home Assistant's Enphase coordinator (a new token under 30
days left, checked daily), the service fetches a new one through `evopt gateway token --fetch`'s
own code (:func:`~optimizer.gateway.fetch.fetch_and_store`) when the stored token has fewer than
:data:`RENEW_AHEAD` left, or when the gateway refuses it (401 after a new setup, or no token
file at all). At most one attempt per :data:`ATTEMPT_EVERY`, remembered beside the token so a
restart (or `evopt run --once` from a timer) does not ask again; a request the account's budget
holds back is no attempt. Nothing here raises into the tick: a failure is kept, logged once, and
shown by `evopt status` until an attempt succeeds. A token pasted by hand is renewed the same
way (it is the same file); without an Enlighten password the renewal fails and says so, and
the pasted token works until it expires, as before.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optimizer.enlighten.errors import BudgetHeldError, EnlightenError
from optimizer.gateway.fetch import fetch_and_store
from optimizer.gateway.token import load_token, token_facts
from optimizer.logsafe import redact
from optimizer.statefile import write_private_json

if TYPE_CHECKING:
    from optimizer.enlighten.client import EnlightenClient
    from optimizer.gateway.source import GatewaySource

__all__ = ["ATTEMPT_EVERY", "RENEW_AHEAD", "TokenKeeper", "TokenState", "renewal_due"]

_LOGGER = logging.getLogger(__name__)

RENEW_AHEAD = timedelta(days=30)
ATTEMPT_EVERY = timedelta(days=1)
STATE_SUFFIX = ".renewal.json"  # beside the token: gateway.token.renewal.json


@dataclass(frozen=True)
class TokenState:
    """What `evopt status` shows of the token (never the token): when it ends, the last
    renewal attempt and, when it failed, why."""

    expires_at: datetime | None = None
    attempted_at: datetime | None = None
    renewed_at: datetime | None = None
    failure: str | None = None

    def as_json(self) -> dict[str, Any]:
        def iso(at: datetime | None) -> str | None:
            return at.astimezone(UTC).isoformat() if at is not None else None

        return {
            "expires_at": iso(self.expires_at),
            "renewed_at": iso(self.renewed_at),
            "renewal_attempted_at": iso(self.attempted_at),
            "renewal_failed": self.failure,
            "next_renewal_after": iso(
                self.attempted_at + ATTEMPT_EVERY if self.failure and self.attempted_at else None
            ),
        }

    @classmethod
    def from_json(cls, data: Any) -> TokenState:
        """A stored state; anything unreadable is a fresh start (the worst case is one
        attempt more), never an error."""
        if not isinstance(data, dict):
            return cls()

        def at(key: str) -> datetime | None:
            value = data.get(key)
            try:
                return datetime.fromisoformat(value) if isinstance(value, str) else None
            except ValueError:
                return None

        failure = data.get("renewal_failed")
        return cls(
            expires_at=at("expires_at"),
            attempted_at=at("renewal_attempted_at"),
            renewed_at=at("renewed_at"),
            failure=failure if isinstance(failure, str) else None,
        )


def renewal_due(
    *, expires_at: datetime | None, refused: bool, attempted_at: datetime | None, now: datetime
) -> bool:
    """A new token is wanted (under 30 days left, or the gateway refuses the one it has) and
    no attempt was made in the last day. Pure: the whole policy in one place."""
    wanted = refused or (expires_at is not None and expires_at - now < RENEW_AHEAD)
    recent = attempted_at is not None and now - attempted_at < ATTEMPT_EVERY
    return wanted and not recent


class TokenKeeper:
    """One gateway token file's renewal; the service calls :meth:`tick` before each read."""

    def __init__(self, token_path: Path) -> None:
        self.token_path = token_path
        self.state_path = token_path.with_name(token_path.name + STATE_SUFFIX)
        self.state = self._load()

    def _load(self) -> TokenState:
        try:
            return TokenState.from_json(json.loads(self.state_path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return TokenState()

    def _save(self) -> None:
        try:
            write_private_json(self.state_path, self.state.as_json())
        except OSError as err:  # the renewal still happened; only its memory is lost
            _LOGGER.warning("cannot write %s: %s", self.state_path, err.strerror)

    def _expiry(self) -> datetime | None:
        """The stored token's ``exp`` (None without a readable token)."""
        try:
            return token_facts(load_token(self.token_path)).expires_at
        except EnlightenError:
            return None

    async def tick(self, client: EnlightenClient, source: GatewaySource, now: datetime) -> None:
        """Renew when due; never raises (a failure is kept in :attr:`state` for status)."""
        expires = self._expiry()
        refused = source.token_refused  # refused, or no token file at all (firmware 7+)
        state = self.state
        if expires != state.expires_at:
            self.state = state = TokenState(
                expires, state.attempted_at, state.renewed_at, state.failure
            )
        if not renewal_due(
            expires_at=expires, refused=refused, attempted_at=state.attempted_at, now=now
        ):
            return
        why = "the gateway refuses the token" if refused else "it expires within 30 days"
        _LOGGER.info("fetching a new gateway token from Entrez (%s)", why)
        try:
            facts = await fetch_and_store(client, source, self.token_path)
        except BudgetHeldError:
            return  # not sent: no attempt, the next tick asks again
        except EnlightenError as err:
            failure = redact(err.user_message())
            if failure != state.failure:
                _LOGGER.warning("the gateway token could not be renewed: %s", failure)
            self.state = TokenState(expires, now, state.renewed_at, failure)
            self._save()
            return
        _LOGGER.info(
            "a new gateway token is stored, valid until %s",
            f"{facts.expires_at:%Y-%m-%d}" if facts.expires_at else "an unknown date",
        )
        self.state = TokenState(facts.expires_at, now, now, None)
        self._save()
        source.token_renewed()
