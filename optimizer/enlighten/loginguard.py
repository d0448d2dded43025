"""When a login may be sent at all, so that the client can never lock an account out.

The 2026 reference (section 6) gives an observed-safe policy: a refused password cools down for
5 minutes; three refusals in a row suspend automatic logins for 24 h; "too many active
sessions" (or the login wall during a cooldown) blocks every automatic login for 24 h, because
each retry adds a session and lengthens the lock-out. A person's `evopt login` may still try,
at most once a minute, and a success clears everything.

The rules are pure functions of a :class:`GuardState` and the time; :class:`LoginGuard` keeps
that state in the state dir (0600, atomic) so a restarted service honours a block it did not
see happen.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from optimizer.enlighten.errors import AuthError, LoginSuspendedError, SessionLockoutError
from optimizer.statefile import write_private_json

__all__ = [
    "BLOCK_S",
    "COOLDOWN_S",
    "MANUAL_INTERVAL_S",
    "GuardState",
    "LoginGuard",
    "after_failure",
    "after_lockout",
    "after_login_wall",
    "describe",
    "refusal",
]

_LOGGER = logging.getLogger(__name__)

GUARD_FILE = "login_guard.json"
COOLDOWN_S = 300.0
BLOCK_S = 24 * 3600.0
MAX_REJECTIONS = 3
MANUAL_INTERVAL_S = 60.0

BlockReason = Literal["lockout", "suspended", "login_wall"]

WHY: dict[str, str] = {
    "lockout": 'Enlighten reported "too many active sessions" for this account',
    "suspended": "Enlighten refused the password several times in a row",
    "login_wall": "Enlighten showed its login page again right after refusing the password",
}
WHAT_TO_DO: dict[str, str] = {
    "lockout": "sign out of Enlighten on other browsers, phones and apps, then run `evopt login`",
    "suspended": "check ENLIGHTEN_EMAIL / ENLIGHTEN_PASSWORD, then run `evopt login`",
    "login_wall": "wait, or sign in at enlighten.enphaseenergy.com, then run `evopt login`",
}


@dataclass(frozen=True)
class GuardState:
    """What the guard remembers. Times are epoch seconds; None means not set."""

    rejections: int = 0
    cooldown_until: float | None = None
    blocked_until: float | None = None
    reason: BlockReason | None = None
    last_manual: float | None = None

    def blocked(self, now: float) -> bool:
        return self.blocked_until is not None and now < self.blocked_until

    def cooling(self, now: float) -> bool:
        return self.cooldown_until is not None and now < self.cooldown_until


def _at(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _block_error(state: GuardState) -> AuthError:
    assert state.blocked_until is not None  # noqa: S101 - only called while blocked
    reason = state.reason or "suspended"
    message = f"automatic Enlighten logins stopped until {_at(state.blocked_until)}: {WHY[reason]}"
    kind = LoginSuspendedError if reason == "suspended" else SessionLockoutError
    return kind(message, until=state.blocked_until, hint=WHAT_TO_DO[reason])


def refusal(state: GuardState, now: float, *, manual: bool) -> AuthError | None:
    """Why a login must not be sent now, or None when it may.

    A person may try through a block or a cooldown, but not twice within a minute: a lock-out
    is lengthened by every attempt, including a person's.
    """
    if manual:
        if state.last_manual is not None and now - state.last_manual < MANUAL_INTERVAL_S:
            wait = MANUAL_INTERVAL_S - (now - state.last_manual)
            return LoginSuspendedError(
                f"a login was tried {now - state.last_manual:.0f} s ago; wait {wait:.0f} s",
                until=state.last_manual + MANUAL_INTERVAL_S,
                hint="manual logins are limited to one a minute so the account is not locked",
            )
        return None
    if state.blocked(now):
        return _block_error(state)
    if state.cooling(now):
        assert state.cooldown_until is not None  # noqa: S101
        return LoginSuspendedError(
            f"Enlighten refused the password; no automatic login before "
            f"{_at(state.cooldown_until)}",
        )
    return None


def after_failure(state: GuardState, now: float) -> GuardState:
    """A refused password: cool down, and suspend automatic logins after three in a row."""
    rejections = state.rejections + 1
    cooled = replace(state, rejections=rejections, cooldown_until=now + COOLDOWN_S)
    if rejections >= MAX_REJECTIONS:
        return replace(cooled, blocked_until=now + BLOCK_S, reason="suspended")
    return cooled


def after_lockout(state: GuardState, now: float) -> GuardState:
    return replace(state, blocked_until=now + BLOCK_S, reason="lockout")


def after_login_wall(state: GuardState, now: float) -> GuardState:
    """The login page during a rejection cooldown: the cloud is holding the account."""
    if not state.cooling(now):
        return state
    return replace(state, blocked_until=now + BLOCK_S, reason="login_wall")


def describe(state: GuardState, now: float) -> dict[str, Any]:
    """The `evopt status` view: blocked or not, why, until when and what to do."""
    if state.blocked(now):
        assert state.blocked_until is not None  # noqa: S101
        reason = state.reason or "suspended"
        return {
            "automatic": "blocked" if reason != "suspended" else "suspended",
            "reason": WHY[reason],
            "until": _at(state.blocked_until),
            "action": WHAT_TO_DO[reason],
        }
    if state.cooling(now):
        assert state.cooldown_until is not None  # noqa: S101
        return {
            "automatic": "cooling_down",
            "reason": "Enlighten refused the password",
            "until": _at(state.cooldown_until),
            "action": WHAT_TO_DO["suspended"],
        }
    return {"automatic": "allowed", "reason": None, "until": None, "action": None}


class LoginGuard:
    """The guard's state, persisted in the state dir when there is one (tests may omit it)."""

    def __init__(self, state_dir: Path | None, *, account: str | None = None) -> None:
        """One guard per account: a refused password of one account must not hold back
        the logins of another (``account`` as in the session file's name)."""
        name = GUARD_FILE if account is None else f"login_guard-{account}.json"
        self.path = state_dir / name if state_dir is not None else None
        self.state = self._read()

    def _read(self) -> GuardState:
        if self.path is None:
            return GuardState()
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return GuardState()
        except (OSError, ValueError):
            _LOGGER.warning("ignoring unreadable login guard file %s", self.path)
            return GuardState()
        return _from_dict(raw)

    def reload(self) -> GuardState:
        """Another process (`evopt login`, the service) may have changed it."""
        self.state = self._read()
        return self.state

    def set(self, state: GuardState) -> None:
        self.state = state
        if self.path is None:
            return
        write_private_json(self.path, asdict(state))


def _num(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else None


def _from_dict(raw: Any) -> GuardState:
    """Tolerant: a damaged file must not block (or unblock) anything by surprise."""
    if not isinstance(raw, dict):
        return GuardState()
    reason = raw.get("reason")
    rejections = raw.get("rejections")
    return GuardState(
        rejections=rejections if isinstance(rejections, int) and rejections >= 0 else 0,
        cooldown_until=_num(raw.get("cooldown_until")),
        blocked_until=_num(raw.get("blocked_until")),
        reason=reason if reason in WHY else None,
        last_manual=_num(raw.get("last_manual")),
    )
