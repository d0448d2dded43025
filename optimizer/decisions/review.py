"""Read-only queries over the decision log, for `evopt log` (and anyone scripting it).

Pure queries: each takes an open store and filters, and returns plain dataclasses; printing
is the CLI's business. Times in filters are aware datetimes (the CLI turns `--since 2h` into
one); the file's UTC text is compared directly, which is what the ``ts`` indexes are for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta, tzinfo
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
    site: int | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE fragment (fixed text, values bound) for the filters given (``site``: one
    site's rows, for a log that holds several)."""
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
        ("site_id", site),
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
    changes: bool = False,
    site: int | None = None,
) -> list[DecisionRow]:
    """Decisions matching every filter given, newest first, at most ``limit`` (None: all).

    ``changes`` keeps only the rows a person reviews (see :data:`CHANGE_SQL`); the policy,
    action and outcome filters then apply to those, so ``--policy night`` shows when night
    took control and what it sent, not the holds in between.
    """
    if changes:
        return _changes(
            store,
            since=since,
            until=until,
            charger=charger,
            policy=policy,
            action=action,
            outcome=outcome,
            mode=mode,
            run=run,
            limit=limit,
            site=site,
        )
    where, args = _where(
        since=since,
        until=until,
        charger=charger,
        policy=policy,
        action=action,
        outcome=outcome,
        mode=mode,
        run=run,
        site=site,
    )
    rows = store.db.table("decisions").rows_where(
        where, args, order_by="ts DESC, id DESC", select=", ".join(COLUMNS), limit=limit
    )
    return [DecisionRow.from_row(row) for row in rows]


# The rows `evopt log` shows by default: what the service sent (any action but hold), what
# went wrong (rejected, failed), and a hold whose policy differs from the previous row of the
# same charger and target (another policy took control). A user's own change is a row of
# policy user-override with the action the user took (outcome noop): not a hold, so shown;
# the override's holds after it are the same policy, so they do not repeat it.
#
# The previous row is found with LAG over the rows in range, in the order of the
# (charger_sn, target, ts) index; for the first row of each charger and target in range, by
# one seek in that index to the row just before the range. So a row is a change or not
# whatever range it is seen in, and the wide JSON columns are read for the rows shown only.
CHANGE_SQL = """
WITH ordered AS (
    SELECT id, ts, charger_sn, target, policy, action, outcome,
        LAG(policy) OVER (PARTITION BY charger_sn, target ORDER BY ts, id) AS previous
    FROM decisions
    WHERE {scope}
), shown AS (
    SELECT id, ts FROM ordered
    WHERE (action != 'hold' OR outcome IN ('rejected', 'failed')
        OR coalesce(previous, {before}, '') != policy) AND {within}
    ORDER BY ts DESC, id DESC {limit}
)
SELECT {columns} FROM decisions JOIN shown USING (id) ORDER BY shown.ts DESC, shown.id DESC
"""
# The policy of the last row of the same charger and target before the range (its filters
# other than time apply too: unqualified columns are the inner table's). One seek in the
# changes index, which holds the rowid (id) last: ts DESC, id DESC is its own order.
_BEFORE_SQL = """(
    SELECT policy FROM decisions INDEXED BY idx_decisions_changes
    WHERE charger_sn IS ordered.charger_sn AND target IS ordered.target AND ts < ? AND {rest}
    ORDER BY ts DESC, id DESC LIMIT 1
)"""
# Without --since the newest changes are looked for in the last day, then further back until
# enough are found: the window function then reads a day of rows, not the whole log.
_LOOK_BACK = (timedelta(days=1), timedelta(days=7), timedelta(days=31), timedelta(days=366))


def _changes(
    store: DecisionStore, *, since: datetime | None, limit: int | None, **filters: Any
) -> list[DecisionRow]:
    newest = _newest(store, **filters) if since is None and limit is not None else None
    if newest is not None and limit is not None:
        for span in _LOOK_BACK:
            sql, args = _changes_sql(since=newest - span, limit=limit, **filters)
            rows = store.db.query(sql, args)
            found = [DecisionRow.from_row(row) for row in rows]
            if len(found) >= limit:
                return found
    sql, args = _changes_sql(since=since, limit=limit, **filters)
    return [DecisionRow.from_row(row) for row in store.db.query(sql, args)]


def _newest(
    store: DecisionStore,
    *,
    until: datetime | None,
    charger: str | None,
    mode: str | None,
    run: str | None,
    site: int | None = None,
    **_: Any,
) -> datetime | None:
    where, args = _where(until=until, charger=charger, mode=mode, run=run, site=site)
    sql = f"SELECT max(ts) FROM decisions WHERE {where}"  # noqa: S608 - values are bound
    row = store.db.execute(sql, args).fetchone()
    return None if row[0] is None else parse_utc(row[0])


def explain_changes(store: DecisionStore, **filters: Any) -> list[str]:
    """SQLite's plan for the changes query (for `make bench`: which indexes, what is sorted)."""
    sql, args = _changes_sql(**{"limit": 100, **filters})
    return [row[-1] for row in store.db.execute(f"EXPLAIN QUERY PLAN {sql}", args).fetchall()]


def _changes_sql(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    charger: str | None = None,
    policy: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    mode: str | None = None,
    run: str | None = None,
    limit: int | None = None,
    site: int | None = None,
) -> tuple[str, list[Any]]:
    # The window runs over every policy and action (a change of policy is seen against the
    # row before it, whichever that is); the policy, action and outcome filters come after.
    scope, scope_args = _where(
        since=since, until=until, charger=charger, mode=mode, run=run, site=site
    )
    within, within_args = _where(policy=policy, action=action, outcome=outcome)
    before, before_args = "NULL", []
    if since is not None:
        rest, rest_args = _where(charger=charger, mode=mode, run=run, site=site)
        before, before_args = _BEFORE_SQL.format(rest=rest), [utc_text(since), *rest_args]
    sql = CHANGE_SQL.format(
        scope=scope,
        before=before,
        within=within,
        limit="" if limit is None else f"LIMIT {int(limit)}",
        columns=", ".join(f"decisions.{name}" for name in COLUMNS),
    )
    return sql, [*scope_args, *before_args, *within_args]


# Columns a filter value can be checked against (each has an index that starts with it).
_VALUE_COLUMNS = frozenset({"charger_sn", "policy", "action", "outcome", "mode"})


def occurs(store: DecisionStore, column: str, value: str) -> bool:
    """Whether any decision has ``value`` in ``column``."""
    if column not in _VALUE_COLUMNS:
        raise ValueError(f"not a filter column: {column}")
    sql = f"SELECT 1 FROM decisions WHERE {column} = ? LIMIT 1"  # noqa: S608 - a fixed name
    return store.db.execute(sql, [value]).fetchone() is not None


def distinct(store: DecisionStore, column: str) -> list[str]:
    """The values ``column`` holds, sorted (for did-you-mean)."""
    if column not in _VALUE_COLUMNS:
        raise ValueError(f"not a filter column: {column}")
    sql = f"SELECT DISTINCT {column} FROM decisions WHERE {column} IS NOT NULL"  # noqa: S608
    return sorted(str(row[0]) for row in store.db.execute(sql))


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
