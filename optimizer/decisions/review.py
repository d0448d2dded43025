"""Read-only queries over the decision log, for `evopt log` (and anyone scripting it).

Pure queries: each takes an open store and filters, and returns plain dataclasses; printing
is the CLI's business. Times in filters are aware datetimes (the CLI turns `--since 2h` into
one); the file's UTC text is compared directly, which is what the ``ts`` indexes are for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from optimizer.decisions.store import DecisionStore, parse_utc, utc_text

COLUMNS: tuple[str, ...] = (
    "id",
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
_JSON_COLUMNS = ("params", "inputs", "overruled")


@dataclass(frozen=True)
class DecisionRow:
    """One row of ``decisions``, with its JSON columns parsed."""

    id: int
    ts: datetime
    run_id: str
    mode: str
    site_id: int | None
    charger_sn: str | None
    policy: str
    target: str | None
    action: str
    params: dict[str, Any]
    reason: str
    inputs: dict[str, Any]
    overruled: list[dict[str, Any]]
    outcome: str
    error: str | None
    commands: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> DecisionRow:
        values = {name: row[name] for name in COLUMNS}
        values["ts"] = parse_utc(row["ts"])
        for name in _JSON_COLUMNS:
            values[name] = json.loads(row[name])
        return cls(**values)

    def as_json(self) -> dict[str, Any]:
        """The row as scripts get it: ``ts`` as stored (UTC text), JSON columns as values."""
        data = {name: getattr(self, name) for name in COLUMNS}
        data["ts"] = utc_text(self.ts)
        return data

    def as_text_row(self) -> dict[str, Any]:
        """The row as the file holds it (JSON columns as text), for CSV."""
        data = self.as_json()
        for name in _JSON_COLUMNS:
            data[name] = json.dumps(data[name], ensure_ascii=False)
        return data


@dataclass
class Counts:
    """Decisions and their outcomes; ``commands`` is the write requests sent for them."""

    decisions: int = 0
    commands: int = 0
    applied: int = 0
    noop: int = 0
    dry_run: int = 0
    rejected: int = 0
    failed: int = 0

    def add(self, outcome: str, decisions: int, commands: int) -> None:
        self.decisions += decisions
        self.commands += commands
        setattr(self, outcome, getattr(self, outcome) + decisions)

    def as_json(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(Counts)}


COUNT_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Counts))


@dataclass
class DayStats(Counts):
    """One day (in the zone asked for) of one mode: totals, and the same per policy.

    Modes are kept apart so that a simulation replaying last month does not show up as
    last month's live activity.
    """

    day: date = date.min
    mode: str = ""
    policies: dict[str, Counts] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "mode": self.mode,
            **super().as_json(),
            "policies": {name: c.as_json() for name, c in sorted(self.policies.items())},
        }


@dataclass(frozen=True)
class RequestStats:
    """Requests to one endpoint family: in total, per hour counted, and in the busiest hour."""

    family: str
    total: int
    hours: int
    per_hour: float
    peak_hour: int

    def as_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(RequestStats)}


def _where(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    charger: str | None = None,
    policy: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    mode: str | None = None,
    run: str | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE fragment (fixed text, values bound) for the filters given."""
    clauses: list[str] = []
    args: list[Any] = []
    if since is not None:
        clauses.append("ts >= ?")
        args.append(utc_text(since))
    if until is not None:
        clauses.append("ts < ?")
        args.append(utc_text(until))
    for column, value in (
        ("charger_sn", charger),
        ("policy", policy),
        ("action", action),
        ("outcome", outcome),
        ("mode", mode),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if run is not None:
        clauses.append(_RUN_PREFIX)
        args.extend(_prefix_bounds(run))
    return " AND ".join(clauses) or "1", args


# A run id or its first characters (like a git hash); a range, so the run_id index serves it.
_RUN_PREFIX = "run_id >= ? AND run_id < ?"


def _prefix_bounds(prefix: str) -> list[str]:
    return [prefix, prefix + "\U0010ffff"]


def query(
    store: DecisionStore,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    charger: str | None = None,
    policy: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    mode: str | None = None,
    run: str | None = None,
    limit: int | None = 100,
) -> list[DecisionRow]:
    """Decisions matching every filter given, newest first, at most ``limit`` (None: all)."""
    where, args = _where(
        since=since,
        until=until,
        charger=charger,
        policy=policy,
        action=action,
        outcome=outcome,
        mode=mode,
        run=run,
    )
    rows = store.db.table("decisions").rows_where(
        where, args, order_by="ts DESC, id DESC", select=", ".join(COLUMNS), limit=limit
    )
    return [DecisionRow.from_row(row) for row in rows]


def get(store: DecisionStore, id: int) -> DecisionRow | None:
    rows = list(store.db.table("decisions").rows_where("id = ?", [id], select=", ".join(COLUMNS)))
    return DecisionRow.from_row(rows[0]) if rows else None


# Counted per UTC quarter hour in SQL, then assigned to days in Python: every zone's offset is
# a multiple of 15 minutes, so each quarter lies within one local day whatever the zone and
# DST, and SQLite (which knows no zones) still does the heavy counting.
_QUARTER = "substr(ts, 1, 14) || printf('%02d', (CAST(substr(ts, 15, 2) AS INTEGER) / 15) * 15)"
_STATS_SQL = (
    "SELECT {quarter} AS quarter, mode, policy, outcome, count(*) AS n,"
    " sum(commands) AS commands FROM decisions WHERE {where}"
    " GROUP BY quarter, mode, policy, outcome"
)


def stats(
    store: DecisionStore,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    charger: str | None = None,
    policy: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    mode: str | None = None,
    run: str | None = None,
    tz: tzinfo = UTC,
) -> list[DayStats]:
    """Per day in ``tz`` and mode: decisions, commands sent, outcomes, and per policy."""
    where, args = _where(
        since=since,
        until=until,
        charger=charger,
        policy=policy,
        action=action,
        outcome=outcome,
        mode=mode,
        run=run,
    )
    days: dict[tuple[date, str], DayStats] = {}
    for row in store.db.query(_STATS_SQL.format(quarter=_QUARTER, where=where), args):
        day = datetime.fromisoformat(row["quarter"]).replace(tzinfo=UTC).astimezone(tz).date()
        key = (day, row["mode"])
        entry = days.setdefault(key, DayStats(day=day, mode=row["mode"]))
        entry.add(row["outcome"], row["n"], row["commands"])
        entry.policies.setdefault(row["policy"], Counts()).add(
            row["outcome"], row["n"], row["commands"]
        )
    return [days[key] for key in sorted(days)]


_REQUESTS_SQL = (
    "WITH hourly AS (SELECT hour, family, sum(count) AS n FROM requests WHERE {where}"
    " GROUP BY hour, family)"
    " SELECT family, sum(n) AS total, max(n) AS peak,"
    " (SELECT count(DISTINCT hour) FROM hourly) AS hours"
    " FROM hourly GROUP BY family ORDER BY family"
)


def request_stats(
    store: DecisionStore,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    run: str | None = None,
) -> list[RequestStats]:
    """Requests per endpoint family: total, average per hour, busiest hour.

    The average is over the hours in which the service counted anything (any family), so
    the hours it was not running do not dilute it. An hour is in range if it overlaps it.
    """
    clauses: list[str] = []
    args: list[Any] = []
    if since is not None:
        clauses.append("hour >= ?")
        args.append(utc_text(since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)))
    if until is not None:
        clauses.append("hour < ?")
        args.append(utc_text(until))
    if run is not None:
        clauses.append(_RUN_PREFIX)
        args.extend(_prefix_bounds(run))
    sql = _REQUESTS_SQL.format(where=" AND ".join(clauses) or "1")
    return [_request_row(row) for row in store.db.query(sql, args)]


def _request_row(row: dict[str, Any]) -> RequestStats:
    hours = int(row["hours"])
    total = int(row["total"])
    return RequestStats(
        family=row["family"],
        total=total,
        hours=hours,
        per_hour=round(total / hours, 1) if hours else 0.0,
        peak_hour=int(row["peak"]),
    )
