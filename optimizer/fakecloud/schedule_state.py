"""The scheduler's bookkeeping around a charger's slot list: its concurrency token and whether
the charger has taken the latest list (``scheduleSyncStatus``).

The 2026 reference says a full-list PATCH echoes the last GET's ``meta.serverTimeStamp`` and
that what the server does with a stale one is undocumented. Our model (inferred, documented in
docs/fakecloud.md): the list has a version, the epoch ms of its last write, strictly rising;
a GET's token is the later of now and that version, and a PATCH whose token is older than the
version (someone wrote since that read) or newer than any token issued is refused with 409.
Integer milliseconds throughout, so the ISO text round-trips exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from optimizer.fakecloud.model import Charger

SYNC_S = 30.0
"""Seconds (fake clock) a reachable charger takes to acknowledge a new slot list."""


def _ms(now: float) -> int:
    return int(now * 1000)


def format_ms(ms: int) -> str:
    """``2025-01-15T02:00:00.000+00:00``: the scheduler's ISO style, exact to the ms."""
    dt = datetime.fromtimestamp(ms // 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+00:00"


def parse_token(value: Any) -> int | None:
    """A token as a client echoes it (ISO with an offset, or epoch ms); None if unreadable."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return int(value) if value.strip().isdigit() else None
    if stamp.tzinfo is None:
        return None
    return round(stamp.timestamp() * 1000)


def current_token(charger: Charger, now: float) -> str:
    return format_ms(max(_ms(now), charger.schedules_version_ms))


def mark_changed(charger: Charger, now: float) -> None:
    """A write happened: the version moves past every token issued so far (all stale now)."""
    charger.schedules_version_ms = max(_ms(now), charger.schedules_version_ms) + 1
    charger.schedules_changed_at = now


def token_problem(charger: Charger, now: float, body: Any) -> tuple[int, str] | None:
    """Why a full-list PATCH's token is refused (status, message), or None when it is good."""
    meta = body.get("meta") if isinstance(body, dict) else None
    raw = meta.get("serverTimeStamp") if isinstance(meta, dict) else None
    if raw is None:
        return 400, "meta.serverTimeStamp is required"
    token = parse_token(raw)
    if token is None:
        return 400, f"meta.serverTimeStamp {raw!r} is not a timestamp"
    if token < charger.schedules_version_ms:
        return 409, "Schedules were modified since they were read; read them again"
    if token > max(_ms(now), charger.schedules_version_ms):
        return 409, "Unknown serverTimeStamp; read the schedules first"
    return None


def sync_status(charger: Charger, now: float) -> str:
    """``pending`` for a while after a write, until the charger has taken the latest list."""
    changed = charger.schedules_changed_at
    return "pending" if changed is not None and now - changed < SYNC_S else "synced"
