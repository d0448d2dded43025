"""The decision log: one SQLite file (WAL) holding every decision, the runs, and the state the
service must remember across restarts.

Every write is one short transaction, committed before the call returns, so a crash of the
process loses at most the decision being written. WAL lets `evopt log` (and the plain
``sqlite3`` / ``sqlite-utils`` command lines) read while the service writes; ``busy_timeout``
makes a second writer wait rather than fail. Only what the engine decided is stored: no
tokens, cookies or passwords ever reach this file (see docs/decision-log.md).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from optimizer.decisions.migrations import current_version, latest_version, migrate, transaction
from optimizer.decisions.sqlitedb import Database
from optimizer.engine.decision import Decision, Overruled
from optimizer.enlighten.errors import ConfigError
from optimizer.statefile import create_private

Outcome = Literal["applied", "noop", "dry_run", "rejected", "failed"]
RunMode = Literal["live", "dry_run", "simulation"]
OUTCOMES: tuple[Outcome, ...] = ("applied", "noop", "dry_run", "rejected", "failed")
RUN_MODES: tuple[RunMode, ...] = ("live", "dry_run", "simulation")

# Every time in the file: UTC, to the second, with a 'Z'. One fixed width, so text order is
# time order and plain SQL can compare them (`ts >= '2025-01-15T00:00:00Z'`).
TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
BUSY_TIMEOUT_MS = 5000
RECLAIM_MIN_PAGES = 256  # 1 MB of 4 KB pages: below that a VACUUM is not worth its rewrite

_LOGGER = logging.getLogger(__name__)


def utc_text(when: datetime) -> str:
    """An aware datetime as the file stores it; a naive one is refused (its zone is a guess)."""
    if when.tzinfo is None:
        raise ValueError("the decision log needs timezone-aware datetimes")
    return when.astimezone(UTC).strftime(TS_FORMAT)


def parse_utc(text: str) -> datetime:
    return datetime.strptime(text, TS_FORMAT).replace(tzinfo=UTC)


def to_json(value: Any) -> str:
    """Compact JSON that every reader accepts: no NaN or Infinity (they are not JSON).

    Almost every value is plain already, so the encoder is asked first to refuse a non-finite
    float (``allow_nan=False``) and a mapping that is not a dict (``_json_default``): only
    then is the value rewritten by ``_finite`` and encoded again. The walk over every value
    of every row was half the cost of a logged `evopt simulate` (issue 16), and the text is
    the same either way (tests/test_scale_paths.py).
    """
    try:
        return json.dumps(value, default=_json_default, ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError):
        return json.dumps(_finite(value), default=_json_default, ensure_ascii=False)


def _finite(value: Any) -> Any:
    # Every row's params and inputs and the engine memory pass here: the plain JSON kinds
    # first, by exact type (an ABC isinstance check costs several times more).
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot store {type(value).__name__} in the decision log")


class OlderSchemaError(ConfigError):
    """A file an older evopt wrote, opened read-only: whoever owns it must upgrade it first."""


class DecisionStore:
    """The service's handle on the decision log (and, read-only, `evopt log`'s)."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        """Open (creating it and its directory if needed) and migrate; see open_readonly."""
        self.path = path
        self.readonly = readonly
        self._lock = threading.Lock()
        if readonly:
            self.db = Database(_connect_readonly(path))
            self._pragmas()
            self._check_readable()
        else:
            create_private(path)
            self.db = Database(_connect(path))
            self.db.enable_wal()
            self._pragmas()
            applied = migrate(self.db)
            if applied:
                _LOGGER.info("decision log %s: applied migrations %s", path, applied)
                self._reclaim()

    @classmethod
    def open_readonly(cls, path: Path) -> DecisionStore:
        """For review: never creates, migrates or writes; a missing file is a ConfigError."""
        if not path.is_file():
            raise ConfigError(
                f"no decision log at {path}",
                hint="the service creates it on its first run (`evopt run`); "
                "or set service.database to the file's path",
            )
        return cls(path, readonly=True)

    def _pragmas(self) -> None:
        self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.db.execute("PRAGMA foreign_keys = ON")
        if not self.readonly:
            # In WAL, NORMAL syncs at checkpoints: a killed process loses nothing committed.
            self.db.execute("PRAGMA synchronous = NORMAL")

    def _reclaim(self) -> None:
        """Give back the space a migration freed (simulations dropped from a live log).

        Only when at least a quarter of the file is free pages: a VACUUM rewrites the whole
        file, worth it for the hundreds of MB old simulations took, not for a few pages.
        """
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        free = self.db.execute("PRAGMA freelist_count").fetchone()[0]
        if pages and free * 4 >= pages and free > RECLAIM_MIN_PAGES:
            self.db.execute("VACUUM")
            _LOGGER.info("decision log %s: reclaimed %d free pages", self.path, free)

    def _check_readable(self) -> None:
        """A reader of an unmigrated or older file would fail later with a cryptic error."""
        try:
            version = current_version(self.db)
        except sqlite3.DatabaseError as err:
            self.close()
            raise ConfigError(f"{self.path} is not a decision log ({err})") from err
        if version == 0:
            self.close()
            raise ConfigError(f"{self.path} is not a decision log (it has no schema)")
        if version < latest_version():
            self.close()
            raise OlderSchemaError(
                f"the decision log {self.path} has schema version {version}; "
                f"this evopt reads version {latest_version()}",
                hint="restart the service (it upgrades the file) and try again",
            )

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return current_version(self.db)

    @contextmanager
    def _write(self) -> Iterator[Database]:
        """One short transaction; the lock keeps threads (asyncio.to_thread) from interleaving."""
        with self._lock, transaction(self.db) as db:
            yield db

    # --- runs ------------------------------------------------------------------------------

    def start_run(
        self,
        *,
        mode: RunMode,
        site_id: int | None,
        config_hash: str,
        rules_hash: str,
        version: str,
        started_at: datetime,
        name: str | None = None,
    ) -> str:
        """Record a service (or simulation) run; its id tags every decision it writes.

        A named run replaces every earlier run of that name, its decisions and request counts
        included, in the same transaction: a simulation is reproducible, and running it again
        must not add a second copy (`make demo` twice would double the file).
        """
        run_id = uuid.uuid4().hex
        row = {
            "run_id": run_id,
            "started_at": utc_text(started_at),
            "ended_at": None,
            "mode": mode,
            "site_id": site_id,
            "config_hash": config_hash,
            "rules_hash": rules_hash,
            "version": version,
            "status": "running",
            "name": name,
        }
        with self._write() as db:
            if name is not None:
                _delete_runs(db, "SELECT run_id FROM runs WHERE name = ?", [name])
            db.execute(_INSERT_RUN, [row[column] for column in _RUN_COLUMNS])
        return run_id

    def runs_named(self, name: str) -> list[str]:
        """The ids of the runs called ``name`` (one, since a named run replaces the last)."""
        with self._lock:
            rows = self.db.execute(
                "SELECT run_id FROM runs WHERE name = ? ORDER BY started_at DESC", [name]
            ).fetchall()
        return [str(row[0]) for row in rows]

    def run_names(self) -> list[str]:
        """Every run name in the file, for a did-you-mean."""
        with self._lock:
            rows = self.db.execute(
                "SELECT DISTINCT name FROM runs WHERE name IS NOT NULL ORDER BY name"
            ).fetchall()
        return [str(row[0]) for row in rows]

    def save_simulation_days(
        self, run_id: str, charger_sn: str, days: Sequence[tuple[datetime, list[Any], list[Any]]]
    ) -> None:
        """A simulation's figures per bucket, a row per local day: (its first bucket's start,
        the surplus in W the engine read at each tick, the level drawn), 15 minutes apart."""
        rows = [
            (run_id, charger_sn, utc_text(start), 900, to_json(surplus), to_json(amps))
            for start, surplus, amps in days
        ]
        with self._write() as db:
            db.conn.executemany(
                "INSERT INTO simulation_days"
                " (run_id, charger_sn, day_start, step_s, surplus_w, amps)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

    def simulation_buckets(
        self, run_ids: Sequence[str], charger_sn: str, since: datetime, until: datetime
    ) -> list[tuple[datetime, float | None, float | None]]:
        """The simulated buckets of ``charger_sn`` in [since, until): (start, surplus W, level
        drawn), from the runs given (:meth:`save_simulation_days`)."""
        if not run_ids:
            return []
        marks = ", ".join("?" * len(run_ids))
        with self._lock:
            rows = self.db.execute(
                "SELECT day_start, step_s, surplus_w, amps FROM simulation_days"  # noqa: S608
                f" WHERE run_id IN ({marks}) AND charger_sn = ?"
                " AND day_start < ? AND day_start >= ? ORDER BY day_start",
                [*run_ids, charger_sn, utc_text(until), utc_text(since - timedelta(days=2))],
            ).fetchall()
        found = []
        for day_start, step_s, surplus, amps in rows:
            start = datetime.fromisoformat(str(day_start).replace("Z", "+00:00"))
            step = timedelta(seconds=int(step_s))
            for number, (watts, level) in enumerate(
                zip(json.loads(surplus), json.loads(amps), strict=True)
            ):
                at = start + number * step
                if since <= at < until:
                    found.append((at, watts, level))
        return found

    def run_rows(self, run_id: str) -> int:
        """How many decisions the run wrote."""
        found = self.db.execute("SELECT count(*) FROM decisions WHERE run_id = ?", [run_id])
        return int(found.fetchone()[0])

    def end_run(self, run_id: str, *, ended_at: datetime, status: str = "stopped") -> None:
        """Close a run (a run without an end was still running, or crashed); KeyError if unknown."""
        with self._write() as db:
            changed = db.execute(
                "UPDATE runs SET ended_at = ?, status = ? WHERE run_id = ?",
                [utc_text(ended_at), status, run_id],
            ).rowcount
        if not changed:
            raise KeyError(f"no run {run_id} in the decision log")

    # --- decisions -------------------------------------------------------------------------

    def record(
        self,
        decision: Decision,
        *,
        run_id: str,
        mode: RunMode,
        site_id: int | None,
        ts: datetime,
        outcome: Outcome,
        error: str | None = None,
        commands: int = 0,
        state: tuple[str, Any] | None = None,
    ) -> int:
        """Write one decision in its own transaction; returns its id.

        ``commands`` counts the write requests sent to the cloud for it (0 for a hold, a noop
        or a dry run). ``state`` (key, value) is saved in the same transaction: the service
        passes the engine memory that matches the decisions recorded so far, so a crash can
        never leave a recorded command that the restored memory does not know about.
        """
        row = decision_row(
            decision,
            run_id=run_id,
            mode=mode,
            site_id=site_id,
            ts=ts,
            outcome=outcome,
            error=error,
            commands=commands,
        )
        with self._write() as db:
            rowid = db.execute(_INSERT_DECISION, [row[name] for name in _ROW_COLUMNS]).lastrowid
            if state is not None:
                key, value = state
                db.execute(_UPSERT_STATE, [key, to_json(value), row["ts"]])
        if rowid is None:  # pragma: no cover - an insert always has a rowid
            raise RuntimeError("the decision log returned no row id")
        return rowid

    def record_many(
        self,
        items: Iterable[tuple[Decision, datetime, Outcome, int]],
        *,
        run_id: str,
        mode: RunMode,
        site_id: int | None,
    ) -> int:
        """Write many decisions (decision, ts, outcome, commands) in one transaction.

        For the simulator: a year replays tens of thousands of decisions, and one transaction
        each would make logging slower than the replay itself. Returns how many were written.
        """
        rows = [
            decision_row(
                decision,
                run_id=run_id,
                mode=mode,
                site_id=site_id,
                ts=ts,
                outcome=outcome,
                error=None,
                commands=commands,
            )
            for decision, ts, outcome, commands in items
        ]
        if rows:
            # Plain SQL, as write_tick: sqlite-utils' insert_all works out the columns and
            # types of every batch again, and cost more than the encoding (issue 16).
            with self._write() as db:
                db.conn.executemany(
                    _INSERT_DECISION, ([row[name] for name in _ROW_COLUMNS] for row in rows)
                )
        return len(rows)

    def write_tick(
        self,
        rows: Sequence[Mapping[str, Any]],
        *,
        state: tuple[str, str] | None,
        updated_at: datetime,
    ) -> list[int]:
        """Write a tick's rows (from :func:`decision_row`) and the engine memory together.

        One transaction with plain ``sqlite3`` (the service's every tick: sqlite-utils' table
        introspection per insert costs more than the insert). ``state`` is (key, JSON text),
        saved in the same transaction, so the memory in the file always matches the rows in
        it. Returns the rows' ids, in order.
        """
        ids: list[int] = []
        with self._write() as db:
            for row in rows:
                cursor = db.conn.execute(_INSERT_DECISION, [row[name] for name in _ROW_COLUMNS])
                if cursor.lastrowid is None:  # pragma: no cover - an insert always has one
                    raise RuntimeError("the decision log returned no row id")
                ids.append(cursor.lastrowid)
            if state is not None:
                db.conn.execute(_UPSERT_STATE, [*state, utc_text(updated_at)])
        return ids

    # --- state -----------------------------------------------------------------------------

    def load_state(self, key: str) -> Any | None:
        """The JSON value saved under ``key``, or None if nothing was."""
        with self._lock:  # not in the middle of another thread's write on this connection
            row = self.db.execute("SELECT value FROM state WHERE key = ?", [key]).fetchone()
        return None if row is None else json.loads(row[0])

    def save_state(self, key: str, value: Any, *, updated_at: datetime) -> None:
        """Replace the value under ``key`` (engine memory, variants, override timers)."""
        # Plain SQL, as write_tick: the heartbeat saves one per site and tick, and sqlite-utils'
        # upsert (table introspection first) cost a tenth of a small site's tick.
        with self._write() as db:
            db.conn.execute(_UPSERT_STATE, [key, to_json(value), utc_text(updated_at)])

    def update_state(
        self, key: str, change: Callable[[Any | None], Any], *, updated_at: datetime
    ) -> Any:
        """Read, change and write back the value under ``key`` in one write transaction.

        For state two processes write: `evopt pause` in a shell while the service takes the
        commands waiting for it (optimizer/steer.py). ``BEGIN IMMEDIATE`` holds the write
        lock from the read on, so neither update is lost. Returns the new value.
        """
        with self._write() as db:
            row = db.conn.execute("SELECT value FROM state WHERE key = ?", [key]).fetchone()
            value = change(None if row is None else json.loads(row[0]))
            db.conn.execute(_UPSERT_STATE, [key, to_json(value), utc_text(updated_at)])
        return value

    def update_state_with_rows(
        self,
        key: str,
        change: Callable[[Any | None], tuple[Any, Sequence[Mapping[str, Any]]]],
        *,
        updated_at: datetime,
    ) -> tuple[Any, list[int]]:
        """:meth:`update_state` that also writes decision rows (:func:`decision_row`) made
        from the old value, in the same transaction: a user's command taken from the state
        is in the log, or still waiting, never neither. Returns the new value and row ids."""
        ids: list[int] = []
        with self._write() as db:
            row = db.conn.execute("SELECT value FROM state WHERE key = ?", [key]).fetchone()
            value, rows = change(None if row is None else json.loads(row[0]))
            for decision in rows:
                cursor = db.conn.execute(
                    _INSERT_DECISION, [decision[name] for name in _ROW_COLUMNS]
                )
                if cursor.lastrowid is not None:
                    ids.append(cursor.lastrowid)
            db.conn.execute(_UPSERT_STATE, [key, to_json(value), utc_text(updated_at)])
        return value, ids

    # --- request budget --------------------------------------------------------------------

    def add_requests(self, run_id: str, *, hour: datetime, counts: Mapping[str, int]) -> None:
        """Add ``counts`` (requests per endpoint family) to the run's row for that UTC hour."""
        hour_text = utc_text(hour.astimezone(UTC).replace(minute=0, second=0, microsecond=0))
        rows = [(run_id, hour_text, family, n) for family, n in counts.items() if n]
        if any(n < 0 for *_, n in rows):
            raise ValueError(f"request counts cannot be negative: {dict(counts)}")
        if not rows:
            return
        with self._write() as db:
            db.conn.executemany(
                "INSERT INTO requests (run_id, hour, family, count) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (run_id, hour, family) DO UPDATE SET count = count + excluded.count",
                rows,
            )

    # --- history (`evopt history fetch`, read by `evopt simulate`) ----------------------------

    def save_history_energy(
        self, site_id: int, payload: Any, *, start_date: date, fetched_at: datetime
    ) -> None:
        """Replace the site's lifetime-energy reply: it covers everything since start_date."""
        row = {
            "site_id": site_id,
            "fetched_at": utc_text(fetched_at),
            "start_date": start_date.isoformat(),
            "payload": to_json(payload),
        }
        with self._write() as db:
            db.table("history_energy").upsert(row, pk="site_id")

    def load_history_energy(self, site_id: int) -> tuple[Any, datetime] | None:
        """The stored lifetime-energy reply and when it was fetched, or None."""
        with self._lock:
            row = self.db.execute(
                "SELECT payload, fetched_at FROM history_energy WHERE site_id = ?", [site_id]
            ).fetchone()
        return None if row is None else (json.loads(row[0]), parse_utc(row[1]))

    def history_sites(self) -> list[int]:
        """Sites with stored lifetime energy."""
        with self._lock:
            rows = self.db.execute("SELECT site_id FROM history_energy ORDER BY site_id")
            return [int(row[0]) for row in rows]

    def save_history_sessions(
        self,
        site_id: int,
        sn: str,
        days: Mapping[date, list[Any]],
        *,
        fetched_at: datetime,
    ) -> None:
        """Store each day's sessions (raw entries, possibly none) as one merged page.

        All days in one transaction: an interrupted fetch keeps whole windows, never half.
        """
        self.save_history_days(site_id, sn, [(days, fetched_at)])

    def save_history_days(
        self,
        site_id: int,
        sn: str,
        parts: Sequence[tuple[Mapping[date, list[Any]], datetime]],
    ) -> None:
        """:meth:`save_history_sessions` for one window whose days are complete as of
        different instants (optimizer/observe/history.py), still in one transaction."""
        rows = [
            (
                site_id,
                sn,
                day.isoformat(),
                utc_text(fetched_at),
                to_json({"data": {"result": list(items), "hasMore": False}}),
            )
            for days, fetched_at in parts
            for day, items in days.items()
        ]
        if rows:
            # Plain SQL: the service writes these too (plans: auto), and sqlite-utils would
            # cost the daemon 3.3 MB of resident memory for one upsert (issue 16's 60 MB).
            with self._write() as db:
                db.conn.executemany(_UPSERT_HISTORY_DAY, rows)

    def history_session_days(self, site_id: int, sn: str) -> dict[date, datetime]:
        """The days stored for one charger and when each was fetched."""
        with self._lock:
            rows = self.db.execute(
                "SELECT day, fetched_at FROM history_sessions WHERE site_id = ? AND sn = ?",
                [site_id, sn],
            ).fetchall()
        return {date.fromisoformat(day): parse_utc(fetched) for day, fetched in rows}

    def load_history_sessions(
        self, site_id: int, *, start: date | None = None, end: date | None = None
    ) -> list[Any]:
        """Stored session-history pages (one per charger and day) between two days, inclusive."""
        sql = "SELECT payload FROM history_sessions WHERE site_id = ?"
        params: list[Any] = [site_id]
        if start is not None:
            sql += " AND day >= ?"
            params.append(start.isoformat())
        if end is not None:
            sql += " AND day <= ?"
            params.append(end.isoformat())
        with self._lock:
            rows = self.db.execute(sql + " ORDER BY sn, day", params).fetchall()
        return [json.loads(row[0]) for row in rows]

    def load_history_sessions_by_charger(
        self, site_id: int, *, start: date | None = None
    ) -> list[tuple[str, Any]]:
        """Stored session-history pages with their charger's serial, from ``start`` on."""
        sql = "SELECT sn, payload FROM history_sessions WHERE site_id = ?"
        params: list[Any] = [site_id]
        if start is not None:
            sql += " AND day >= ?"
            params.append(start.isoformat())
        with self._lock:
            rows = self.db.execute(sql + " ORDER BY sn, day", params).fetchall()
        return [(str(row[0]), json.loads(row[1])) for row in rows]

    # --- retention -------------------------------------------------------------------------

    def apply_retention(self, *, days: int, now: datetime) -> int:
        """Delete decisions and request counts older than ``days``; returns decisions deleted.

        Runs go too once they ended before the cut-off and nothing refers to them any more; a
        run without an end (running, or crashed) is kept.
        """
        if days < 1:
            raise ValueError("retention must keep at least 1 day")
        cutoff = utc_text(now - timedelta(days=days))
        with self._write() as db:
            deleted = db.execute("DELETE FROM decisions WHERE ts < ?", [cutoff]).rowcount
            db.execute("DELETE FROM requests WHERE hour < ?", [cutoff])
            db.execute(
                "DELETE FROM runs WHERE ended_at IS NOT NULL AND ended_at < ?"
                " AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.run_id = runs.run_id)"
                " AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.run_id = runs.run_id)",
                [cutoff],
            )
        return int(deleted)

    def apply_size_limit(self, *, max_bytes: int) -> int:
        """Delete the oldest days of decisions while the log uses more than ``max_bytes``.

        Whole UTC days, oldest first, each in its own short transaction (request counts of
        those days go too); the newest day is always kept. The file does not shrink (SQLite
        reuses the freed pages), it stops growing. Returns how many decisions were deleted.
        """
        if max_bytes < 1:
            raise ValueError("the size limit must be at least 1 byte")
        deleted = 0
        while self.used_bytes() > max_bytes:
            with self._write() as db:
                oldest, newest = db.execute("SELECT min(ts), max(ts) FROM decisions").fetchone()
                if oldest is None or oldest[:10] == newest[:10]:
                    break
                cutoff = utc_text(parse_utc(oldest[:10] + "T00:00:00Z") + timedelta(days=1))
                deleted += db.execute("DELETE FROM decisions WHERE ts < ?", [cutoff]).rowcount
                db.execute("DELETE FROM requests WHERE hour < ?", [cutoff])
        return deleted

    def used_bytes(self) -> int:
        """The bytes the file's pages in use take (its size less the free pages)."""
        with self._lock:
            pages = self.db.execute("PRAGMA page_count").fetchone()[0]
            free = self.db.execute("PRAGMA freelist_count").fetchone()[0]
            size = self.db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)


def decision_row(
    decision: Decision,
    *,
    run_id: str,
    mode: RunMode,
    site_id: int | None,
    ts: datetime,
    outcome: Outcome,
    error: str | None,
    commands: int,
) -> dict[str, Any]:
    return {
        "ts": utc_text(ts),
        "run_id": run_id,
        "mode": mode,
        "site_id": site_id,
        "charger_sn": decision.charger_sn,
        "policy": decision.policy,
        "target": decision.target,
        "action": decision.action,
        "params": to_json(decision.params),
        "reason": decision.reason,
        "inputs": to_json(decision.inputs),
        "overruled": to_json([_overruled(o) for o in decision.overruled]),
        "outcome": outcome,
        "error": error,
        "commands": commands,
    }


def _overruled(item: Overruled) -> dict[str, Any]:
    """``dataclasses.asdict`` of an overruled proposal (its fields in order) without the deep
    copy: the row encodes it to JSON at once."""
    return dict(vars(item))


def _delete_runs(db: Database, runs_sql: str, params: list[Any]) -> int:
    """Delete the runs ``runs_sql`` selects with everything that refers to them."""
    deleted = db.execute(
        f"DELETE FROM decisions WHERE run_id IN ({runs_sql})",  # noqa: S608 - our own SQL
        params,
    ).rowcount
    db.execute(f"DELETE FROM requests WHERE run_id IN ({runs_sql})", params)  # noqa: S608
    db.execute(f"DELETE FROM simulation_days WHERE run_id IN ({runs_sql})", params)  # noqa: S608
    db.execute(f"DELETE FROM runs WHERE run_id IN ({runs_sql})", params)  # noqa: S608
    return int(deleted)


_ROW_COLUMNS = (
    "ts",
    "run_id",
    "mode",
    "site_id",
    "charger_sn",
    "policy",
    "target",
    "action",
    "params",
    "reason",
    "inputs",
    "overruled",
    "outcome",
    "error",
    "commands",
)


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    """An INSERT of one row's ``columns`` (fixed names), values bound in their order."""
    names, marks = ", ".join(columns), ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608 - fixed names


_INSERT_DECISION = _insert_sql("decisions", _ROW_COLUMNS)
_RUN_COLUMNS = (
    "run_id",
    "started_at",
    "ended_at",
    "mode",
    "site_id",
    "config_hash",
    "rules_hash",
    "version",
    "status",
    "name",
)
_INSERT_RUN = _insert_sql("runs", _RUN_COLUMNS)
_UPSERT_HISTORY_DAY = (
    "INSERT INTO history_sessions (site_id, sn, day, fetched_at, payload) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (site_id, sn, day) DO UPDATE"
    " SET fetched_at = excluded.fetched_at, payload = excluded.payload"
)
_UPSERT_STATE = (
    "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: no implicit BEGIN from the sqlite3 module; every write goes through
    # an explicit transaction. check_same_thread=False: the service may call from a worker
    # thread; the store's lock serialises its writes.
    return sqlite3.connect(
        str(path),
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
    )


def _connect_readonly(path: Path) -> sqlite3.Connection:
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        return sqlite3.connect(
            uri,
            uri=True,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as err:
        raise ConfigError(f"cannot open the decision log {path}: {err}") from err
