"""The service's heartbeat: one small row per site in the decision log's ``state`` table.

`evopt status` runs in another process and must say whether the service runs and is healthy
without asking it (there is no socket, and under systemd `systemctl` is not the homeowner's
tool). So every tick the service upserts ``service:<site_id>``: when it ticked, when it will
tick next, its mode, pid, run, the trouble it is in (no secrets: the message is redacted) and
the status line; on shutdown it marks itself stopped. One upsert per tick keeps it cheap.

Reading it back is :func:`judge` (pure): a heartbeat that says "running" but is older than a
few ticks (a killed process, a hung host) is not running.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from optimizer.decisions.store import DecisionStore, parse_utc, utc_text
from optimizer.logsafe import redact

__all__ = [
    "HEARTBEAT_PREFIX",
    "STALE_TICKS",
    "Health",
    "Heartbeat",
    "TickFacts",
    "heartbeat_key",
    "heartbeat_record",
    "judge",
    "stopped_record",
]

HEARTBEAT_PREFIX = "service:"
UNKNOWN_SITE = "unknown"
# A heartbeat older than this many poll intervals past its announced next tick is dead.
STALE_TICKS = 3


class Tick(Protocol):
    """What the heartbeat needs of a tick report (``TickReport`` has it)."""

    @property
    def at(self) -> datetime: ...
    @property
    def delay_s(self) -> float: ...
    @property
    def problem(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def status(self) -> str: ...


@dataclass(frozen=True)
class TickFacts:
    """One tick and the service around it, as the heartbeat stores them."""

    tick: Tick
    poll_s: float
    mode: str
    run_id: str | None
    pid: int


def heartbeat_key(site_id: int | None) -> str:
    """``service:<site_id>``; ``service:unknown`` before the site is known (a login that
    fails before discovery still shows up)."""
    return HEARTBEAT_PREFIX + (str(site_id) if site_id is not None else UNKNOWN_SITE)


def heartbeat_record(facts: TickFacts, *, started_at: datetime) -> dict[str, Any]:
    """The stored value after one tick (JSON-ready, UTC times as the log writes them)."""
    tick = facts.tick
    return {
        "state": "running",
        "started_at": utc_text(started_at),
        "last_tick_at": utc_text(tick.at),
        "next_tick_at": utc_text(tick.at + timedelta(seconds=tick.delay_s)),
        "poll_interval_s": facts.poll_s,
        "mode": facts.mode,
        "pid": facts.pid,
        "run_id": facts.run_id,
        "problem": tick.problem,
        "message": redact(tick.error) if tick.error else None,
        "status": redact(tick.status),
        "surplus_source": getattr(tick, "surplus_source", None),
        "gateway_token": getattr(tick, "gateway_token", None),
        "stopped_at": None,
    }


def stopped_record(previous: dict[str, Any], *, now: datetime, status: str) -> dict[str, Any]:
    """The last heartbeat marked as ended (``stopped``, ``crashed``)."""
    return previous | {"state": status, "stopped_at": utc_text(now), "next_tick_at": None}


class Heartbeat:
    """Writes the service's heartbeat; remembers the last one to mark it stopped."""

    def __init__(self) -> None:
        self.started_at: datetime | None = None
        self.key: str | None = None
        self.last: dict[str, Any] | None = None

    def beat(
        self,
        store: DecisionStore | None,
        tick: Tick,
        *,
        site_id: int | None,
        poll_s: float,
        mode: str,
        run_id: str | None,
    ) -> None:
        """Store this tick's heartbeat (one upsert)."""
        if store is None:
            return
        now = tick.at
        if self.started_at is None:
            self.started_at = now
        key = heartbeat_key(site_id)
        if self.key is not None and self.key != key and self.last is not None:
            # The site became known (or changed): the old key must not look alive.
            moved = stopped_record(self.last, now=now, status="moved")
            store.save_state(self.key, moved, updated_at=now)
        facts = TickFacts(tick, poll_s=poll_s, mode=mode, run_id=run_id, pid=os.getpid())
        self.key, self.last = key, heartbeat_record(facts, started_at=self.started_at)
        store.save_state(key, self.last, updated_at=now)

    def stop(self, store: DecisionStore | None, *, now: datetime, status: str) -> None:
        if store is None or self.key is None or self.last is None:
            return
        self.last = stopped_record(self.last, now=now, status=status)
        store.save_state(self.key, self.last, updated_at=now)


@dataclass(frozen=True)
class Health:
    """What a reader makes of a heartbeat at ``now``."""

    running: bool
    healthy: bool
    state: str | None  # as stored: running, stopped, crashed; None: never ran
    last_tick_at: datetime | None
    last_tick_age_s: float | None
    problem: str | None
    message: str | None
    mode: str | None
    status: str | None
    poll_interval_s: float | None
    # ``gateway``, or ``lifetime_energy (gateway unreachable since 13:05)`` (docs/gateway.md)
    surplus_source: str | None = None
    # The gateway token's expiry and renewal, never the token (optimizer/gateway/renew.py)
    gateway_token: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "healthy": self.healthy,
            "service_state": self.state,
            "last_tick_at": utc_text(self.last_tick_at) if self.last_tick_at else None,
            "last_tick_age_s": self.last_tick_age_s,
            "problem": self.problem,
            "problem_message": self.message,
            "mode": self.mode,
            "status_line": self.status,
            "poll_interval_s": self.poll_interval_s,
            "surplus_source": self.surplus_source,
            "gateway_token": self.gateway_token,
        }


NEVER_RAN = Health(False, False, None, None, None, None, None, None, None, None)


def judge(record: Any, *, now: datetime) -> Health:
    """The heartbeat read back: running only if it says so and is not overdue; healthy if
    running without trouble. A damaged record reads as never ran, not as an error."""
    try:
        last = parse_utc(record["last_tick_at"])
        poll = float(record["poll_interval_s"])
        nxt = parse_utc(record["next_tick_at"]) if record.get("next_tick_at") else last
        state = str(record["state"])
    except (KeyError, TypeError, ValueError):
        return NEVER_RAN
    age = max(0.0, (now - last).total_seconds())
    deadline = max(last + timedelta(seconds=STALE_TICKS * poll), nxt + timedelta(seconds=2 * poll))
    running = state == "running" and now <= deadline
    problem = record.get("problem")
    return Health(
        running=running,
        healthy=running and problem is None,
        state=state if running or state != "running" else "not responding",
        last_tick_at=last,
        last_tick_age_s=round(age),
        problem=problem,
        message=record.get("message"),
        mode=record.get("mode"),
        status=record.get("status"),
        poll_interval_s=poll,
        surplus_source=record.get("surplus_source"),
        gateway_token=token if isinstance(token := record.get("gateway_token"), dict) else None,
    )
