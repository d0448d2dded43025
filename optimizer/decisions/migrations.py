"""Schema migrations of the decision log, registered in code as an ordered list of functions.

A migration's version is its position in :data:`MIGRATIONS` (the first is version 1). Opening
the store applies the missing ones in order, each inside one ``BEGIN IMMEDIATE`` transaction
together with its row in ``migrations``: a crash, or a second process opening the same file at
the same moment, never leaves a half-migrated schema. Shipped migrations are never edited or
reordered (a database in the field has already run them); a change is a new function,
registered with :func:`register` after the others.

The schema is written as plain SQL rather than through ``Table.create`` because it carries
CHECK constraints: a bad mode, action or outcome fails loudly at the write, and every tool
that reads the file (``sqlite3``, ``sqlite-utils``, Datasette) shows the allowed values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from optimizer.decisions.sqlitedb import Database

Migration = Callable[[Database], None]

_LOGGER = logging.getLogger(__name__)

MIGRATIONS: list[Migration] = []

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""
_RECORD = (
    "INSERT INTO migrations (version, name, applied_at)"
    " VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"
)


def register(step: Migration) -> Migration:
    """Append ``step`` to the registry (a decorator): it becomes the next version."""
    MIGRATIONS.append(step)
    return step


def latest_version() -> int:
    return len(MIGRATIONS)


@contextmanager
def transaction(db: Database) -> Iterator[Database]:
    """One write transaction, taken with ``BEGIN IMMEDIATE``.

    IMMEDIATE takes the write lock at the start, so a second writer waits (busy_timeout)
    instead of failing half-way with SQLITE_BUSY when a read would have to become a write.
    sqlite-utils calls inside nest as savepoints and commit with this block, not before.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    db.execute("COMMIT")


def current_version(db: Database) -> int:
    """The highest version applied to ``db``; 0 for a database without the table."""
    # SQL, not ``db.table(...).exists()``: the service's Database answers it without
    # sqlite-utils, and a sqlite-utils Database (a test's) answers it alike.
    found = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'"
    if db.execute(found).fetchone() is None:
        return 0
    row = db.execute("SELECT max(version) FROM migrations").fetchone()
    return int(row[0] or 0)


def migrate(db: Database) -> list[int]:
    """Apply every registered migration ``db`` lacks, in order; returns the versions applied."""
    applied: list[int] = []
    if current_version(db) >= latest_version():
        return applied
    for version, step in enumerate(list(MIGRATIONS), start=1):
        with transaction(db):
            db.execute(_MIGRATIONS_TABLE)
            # Checked again under the write lock: another process may have just done it.
            if current_version(db) >= version:
                continue
            step(db)
            db.execute(_RECORD, [version, step.__name__])
        applied.append(version)
    return applied


def _create_index(db: Database, table: str, columns: list[str], name: str) -> None:
    """sqlite-utils' ``Table.create_index`` as it wrote these, to the letter (the schema text
    of a file made now is that of one made before), without importing sqlite-utils."""
    quoted = ", ".join(f'"{column}"' for column in columns)
    db.execute(f'CREATE INDEX "{name}"\n    ON "{table}" ({quoted});')


# --- version 1 -----------------------------------------------------------------------------

# The allowed modes, actions and outcomes are written out as they were when version 1 shipped:
# SQLite cannot alter a CHECK, so a new action needs a new migration (a test records every
# action the engine knows, so one added there without a migration fails the suite).
_V1_TABLES = (
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        mode TEXT NOT NULL CHECK (mode IN ('live', 'dry_run', 'simulation')),
        site_id INTEGER,
        config_hash TEXT NOT NULL,
        rules_hash TEXT NOT NULL,
        version TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'running'
    )
    """,
    """
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY,
        ts TEXT NOT NULL CHECK (ts GLOB '????-??-??T??:??:??Z'),
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        mode TEXT NOT NULL CHECK (mode IN ('live', 'dry_run', 'simulation')),
        site_id INTEGER,
        charger_sn TEXT,
        policy TEXT NOT NULL,
        target TEXT,
        action TEXT NOT NULL CHECK (action IN ('set_amps', 'start', 'stop', 'set_mode',
            'set_battery', 'patch_schedules', 'hold')),
        params TEXT NOT NULL DEFAULT '{}',
        reason TEXT NOT NULL,
        inputs TEXT NOT NULL DEFAULT '{}',
        overruled TEXT NOT NULL DEFAULT '[]',
        outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'noop', 'dry_run', 'rejected',
            'failed')),
        error TEXT,
        commands INTEGER NOT NULL DEFAULT 0 CHECK (commands >= 0)
    )
    """,
    """
    CREATE TABLE state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE requests (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        hour TEXT NOT NULL,
        family TEXT NOT NULL,
        count INTEGER NOT NULL DEFAULT 0 CHECK (count >= 0),
        PRIMARY KEY (run_id, hour, family)
    )
    """,
)

# The review queries filter on one of these and order by time (newest first).
_V1_INDEXES = (
    ["ts"],
    ["charger_sn", "ts"],
    ["policy", "ts"],
    ["outcome", "ts"],
    ["run_id", "ts"],
)


@register
def create_decision_log(db: Database) -> None:
    """Version 1: runs, decisions, state, requests, and the indexes of the review queries."""
    for statement in _V1_TABLES:
        db.execute(statement)
    for columns in _V1_INDEXES:
        _create_index(db, "decisions", columns, f"idx_decisions_{'_'.join(columns)}")
    _create_index(db, "requests", ["hour"], "idx_requests_hour")


# --- version 2 -----------------------------------------------------------------------------

_V2_TABLES = (
    # lifetime_energy is one payload covering everything since start_date: the latest wins.
    """
    CREATE TABLE history_energy (
        site_id INTEGER NOT NULL,
        fetched_at TEXT NOT NULL CHECK (fetched_at GLOB '????-??-??T??:??:??Z'),
        start_date TEXT NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (site_id)
    )
    """,
    # One local day's sessions of one charger, every page merged into one session-history
    # page ({"data": {"result": [...], "hasMore": false}}); a row means the day was fetched.
    """
    CREATE TABLE history_sessions (
        site_id INTEGER NOT NULL,
        sn TEXT NOT NULL,
        day TEXT NOT NULL CHECK (day GLOB '????-??-??'),
        fetched_at TEXT NOT NULL CHECK (fetched_at GLOB '????-??-??T??:??:??Z'),
        payload TEXT NOT NULL,
        PRIMARY KEY (site_id, sn, day)
    )
    """,
)


@register
def create_history(db: Database) -> None:
    """Version 2: the history `evopt history fetch` downloads and `evopt simulate` replays."""
    for statement in _V2_TABLES:
        db.execute(statement)


# --- version 3 -----------------------------------------------------------------------------


@register
def remove_simulations(db: Database) -> None:
    """Version 3: simulated decisions leave the live log (they now go to simulations.db).

    Earlier versions wrote every `evopt simulate` run into the live log: a year's replay is
    about 100 MB, and `evopt log stats` counted each simulated day beside the real one. They
    are dropped rather than moved: a simulation is reproducible from its history and rules
    (`evopt simulate`), a live decision is not. The store reclaims the space afterwards.
    """
    runs = "SELECT run_id FROM runs WHERE mode = 'simulation'"
    removed = db.execute("DELETE FROM decisions WHERE mode = 'simulation'").rowcount
    db.execute(f"DELETE FROM decisions WHERE run_id IN ({runs})")  # noqa: S608 - constant SQL
    db.execute(f"DELETE FROM requests WHERE run_id IN ({runs})")  # noqa: S608 - constant SQL
    gone = db.execute("DELETE FROM runs WHERE mode = 'simulation'").rowcount
    if removed or gone:
        _LOGGER.warning(
            "removed %d simulated decisions (%d simulation runs) from the decision log: "
            "simulations now write to simulations.db, and `evopt simulate` reproduces them",
            removed,
            gone,
        )


# --- version 4 -----------------------------------------------------------------------------


@register
def name_runs(db: Database) -> None:
    """Version 4: a run's name; a simulation replaces the earlier run of the same name."""
    db.execute("ALTER TABLE runs ADD COLUMN name TEXT")
    _create_index(db, "runs", ["name"], "idx_runs_name")


# --- version 5 -----------------------------------------------------------------------------


@register
def index_changes(db: Database) -> None:
    """Version 5: the index `evopt log` walks to find changes of the policy in control.

    Rows of one charger and target in time order, with the columns the comparison reads, so
    the window function over them reads the index alone and sorts nothing.
    """
    db.execute(
        "CREATE INDEX idx_decisions_changes ON decisions"
        " (charger_sn, target, ts, policy, action, outcome)"
    )


# --- version 6 -----------------------------------------------------------------------------


@register
def create_power_minutes(db: Database) -> None:
    """Version 6: the site's power once a minute (decisions/minutes.py), for `evopt simulate`.

    One row per site and UTC minute, integers in W, keyed and ordered by (site_id, minute)
    WITHOUT ROWID, so a day of a site is 1,440 short rows read in key order. A power column
    is NULL when the minute had no fresh reading of it: a gap, never a repeated value.
    """
    db.execute(
        """
        CREATE TABLE power_minutes (
            site_id INTEGER NOT NULL,
            minute TEXT NOT NULL CHECK (minute GLOB '????-??-??T??:??:00Z'),
            pv_w INTEGER CHECK (pv_w >= 0),
            house_w INTEGER CHECK (house_w >= 0),
            evse_w INTEGER CHECK (evse_w >= 0),
            battery_charge_w INTEGER CHECK (battery_charge_w >= 0),
            battery_discharge_w INTEGER CHECK (battery_discharge_w >= 0),
            plugged INTEGER CHECK (plugged >= 0),
            chargers TEXT,
            source TEXT NOT NULL,
            age_s INTEGER,
            PRIMARY KEY (site_id, minute)
        ) WITHOUT ROWID
        """
    )


# --- version 7 -----------------------------------------------------------------------------


@register
def create_simulation_days(db: Database) -> None:
    """Version 7: a simulated day's figures per bucket (optimizer/simulate/daylog.py).

    A simulation logs commands and the holds that say something new, a dozen rows a day, too
    few to draw a day's surplus and levels from (`evopt log plot --simulation`); the replay's
    own figures go here instead, one row per run, charger and local day: the surplus the
    engine read at each tick and the level the charger drew (JSON lists, null for a missing
    bucket or no charging), from ``day_start`` on at ``step_s``. A rowid table: rows of 1 KB
    fill a WITHOUT ROWID table's pages four times over (1.7 MB a year against 0.5).
    """
    db.execute(
        """
        CREATE TABLE simulation_days (
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            charger_sn TEXT NOT NULL,
            day_start TEXT NOT NULL,
            step_s INTEGER NOT NULL CHECK (step_s > 0),
            surplus_w TEXT NOT NULL,
            amps TEXT NOT NULL,
            PRIMARY KEY (run_id, charger_sn, day_start)
        )
        """
    )
