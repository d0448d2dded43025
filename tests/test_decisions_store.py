"""The decision store: schema and migrations, round trips, constraints, retention, readers."""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from optimizer.config import Config
from optimizer.decisions import migrations, review
from optimizer.decisions.store import DecisionStore
from optimizer.engine.decision import ACTIONS, Decision, Overruled
from optimizer.enlighten.errors import ConfigError
from optimizer.simulate.logdb import open_simulations, simulations_path

NOW = datetime(2025, 1, 15, 10, 0, 5, tzinfo=UTC)
SQLITE_UTILS = Path(sys.executable).parent / "sqlite-utils"
DOC = Path(__file__).resolve().parent.parent / "docs" / "decision-log.md"
TABLES = {
    "decisions",
    "runs",
    "state",
    "requests",
    "migrations",
    "power_minutes",
    "simulation_days",
    "history_energy",
    "history_sessions",
}


def make_decision(**changes: Any) -> Decision:
    values: dict[str, Any] = {
        "policy": "excess_solar",
        "charger_sn": "SN1",
        "target": "charging",
        "action": "set_amps",
        "params": {"amps": 16},
        "reason": "Surplus 4200 W has been above the 3700 W start threshold for 5 min.",
        "inputs": {"surplus_w": 4200.0, "charger": {"sn": "SN1", "limits": [6, 32, 1]}},
        "overruled": (),
    }
    values.update(changes)
    return Decision(**values)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "decisions.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[DecisionStore]:
    with DecisionStore(db_path) as opened:
        yield opened


@pytest.fixture
def run_id(store: DecisionStore) -> str:
    return start(store)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> list[migrations.Migration]:
    """A copy of the migration registry that a test may extend."""
    copy = list(migrations.MIGRATIONS)
    monkeypatch.setattr(migrations, "MIGRATIONS", copy)
    return copy


def start(store: DecisionStore, *, at: datetime = NOW) -> str:
    return store.start_run(
        mode="live",
        site_id=1234567,
        config_hash="c0",
        rules_hash="r0",
        version="0.1.0",
        started_at=at,
    )


def record(
    store: DecisionStore,
    run_id: str,
    *,
    ts: datetime = NOW,
    outcome: Any = "applied",
    **changes: Any,
) -> int:
    return store.record(
        make_decision(**changes),
        run_id=run_id,
        mode="live",
        site_id=1234567,
        ts=ts,
        outcome=outcome,
        commands=1 if outcome == "applied" else 0,
    )


def count(store: DecisionStore, table: str) -> int:
    return store.db.table(table).count


# --- schema and migrations -----------------------------------------------------------------


def test_a_new_database_is_created_private_in_wal_at_the_latest_version(
    store: DecisionStore, db_path: Path
) -> None:
    assert set(store.db.table_names()) == TABLES
    assert store.schema_version == migrations.latest_version() >= 1
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700
    applied = list(store.db.table("migrations").rows)
    assert [row["version"] for row in applied] == list(range(1, migrations.latest_version() + 1))
    assert applied[0]["name"] == "create_decision_log"
    assert applied[0]["applied_at"].endswith("Z")


def test_the_review_queries_have_their_indexes(store: DecisionStore) -> None:
    indexed = {tuple(index.columns) for index in store.db.table("decisions").indexes}
    for column in ("ts", "charger_sn", "policy", "outcome", "run_id"):
        assert any(columns[0] == column for columns in indexed), column


def test_reopening_applies_nothing_twice(db_path: Path) -> None:
    DecisionStore(db_path).close()
    with DecisionStore(db_path) as again:
        assert again.db.table("migrations").count == migrations.latest_version()


def test_an_older_database_gets_the_missing_migrations(
    db_path: Path, registry: list[migrations.Migration]
) -> None:
    with DecisionStore(db_path) as old:
        record(old, start(old))
    assert registry == migrations.MIGRATIONS

    @migrations.register
    def add_note(db: Database) -> None:
        db.table("decisions").add_column("note", str)

    with DecisionStore(db_path) as upgraded:
        assert upgraded.schema_version == len(registry)
        assert "note" in upgraded.db.table("decisions").columns_dict
        assert upgraded.db.table("decisions").count == 1  # the old data survived
        names = [row["name"] for row in upgraded.db.table("migrations").rows]
        assert names == [step.__name__ for step in registry]
        assert names[0] == "create_decision_log"
        assert names[-1] == "add_note"


def test_a_failing_migration_leaves_the_database_as_it_was(
    db_path: Path, registry: list[migrations.Migration]
) -> None:
    DecisionStore(db_path).close()
    shipped = len(registry)

    @migrations.register
    def half_done(db: Database) -> None:
        db.execute("CREATE TABLE extra (x INTEGER)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        DecisionStore(db_path)
    db = Database(db_path)
    assert "extra" not in db.table_names()
    assert migrations.current_version(db) == shipped
    db.close()


def test_a_reader_refuses_a_schema_older_than_it_reads(
    db_path: Path, registry: list[migrations.Migration]
) -> None:
    DecisionStore(db_path).close()
    shipped = len(registry)
    migrations.register(lambda db: None)
    with pytest.raises(ConfigError, match=f"schema version {shipped}") as err:
        DecisionStore.open_readonly(db_path)
    assert "restart the service" in err.value.user_message()


def test_a_reader_of_the_simulation_log_upgrades_it(
    tmp_path: Path, registry: list[migrations.Migration]
) -> None:
    """No service owns simulations.db to upgrade it after an update of evopt, so `evopt log
    --simulation` does, keeping its rows (the live log's readers wait for the service)."""
    config = Config.model_validate({"service": {"state_dir": str(tmp_path)}})
    with open_simulations(config) as old:
        record(old, start(old))
    shipped = len(registry)

    @migrations.register
    def add_note(db: Database) -> None:
        db.table("decisions").add_column("note", str)

    with pytest.raises(ConfigError, match=f"schema version {shipped}"):
        DecisionStore.open_readonly(simulations_path(config))
    with open_simulations(config, readonly=True) as reader:
        assert reader.readonly
        assert reader.schema_version == shipped + 1
        assert reader.db.table("decisions").count == 1


def test_a_reader_never_creates_the_file(db_path: Path) -> None:
    with pytest.raises(ConfigError, match="no decision log at"):
        DecisionStore.open_readonly(db_path)
    assert not db_path.exists()
    assert not db_path.parent.exists()


@pytest.mark.parametrize("content", [b"not a database at all" * 100, b""])
def test_a_reader_refuses_a_file_that_is_not_a_decision_log(db_path: Path, content: bytes) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(content)
    with pytest.raises(ConfigError, match="is not a decision log"):
        DecisionStore.open_readonly(db_path)


# --- decisions -----------------------------------------------------------------------------


def test_a_decision_round_trips_unchanged(store: DecisionStore, run_id: str) -> None:
    overruled = (
        Overruled("night", "stop", {}, "Outside the night window."),
        Overruled("battery", "set_battery", {"enabled": False}, "Battery below 20 %."),
    )
    params = {"amps": 16, "slots": [{"start": "23:00", "days": [1, 2]}]}
    # Nothing is redacted on the way in or out: an e-mail-like string stays as it was.
    inputs = {"surplus_w": 4200.5, "note": "owner@example.com", "µ": "ü", "none": None}
    decision_id = record(store, run_id, params=params, inputs=inputs, overruled=overruled)

    row = review.get(store, decision_id)
    assert row is not None
    assert row.params == params
    assert row.inputs == inputs
    assert row.overruled == [
        {"policy": "night", "action": "stop", "params": {}, "reason": "Outside the night window."},
        {
            "policy": "battery",
            "action": "set_battery",
            "params": {"enabled": False},
            "reason": "Battery below 20 %.",
        },
    ]
    assert (row.ts, row.run_id, row.outcome, row.commands) == (NOW, run_id, "applied", 1)
    raw = store.db.table("decisions").get(decision_id)
    assert raw["ts"] == "2025-01-15T10:00:05Z"
    assert json.loads(raw["params"]) == params


def test_times_are_stored_in_utc_whatever_zone_they_come_in(
    store: DecisionStore, run_id: str
) -> None:
    melbourne = NOW.astimezone(timezone(timedelta(hours=11)))
    decision_id = record(store, run_id, ts=melbourne)
    assert store.db.table("decisions").get(decision_id)["ts"] == "2025-01-15T10:00:05Z"


def test_naive_times_are_refused(store: DecisionStore, run_id: str) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        record(store, run_id, ts=NOW.replace(tzinfo=None))


def test_non_finite_numbers_are_stored_as_null(store: DecisionStore, run_id: str) -> None:
    decision_id = record(store, run_id, inputs={"surplus_w": float("nan"), "x": [float("inf")]})
    row = review.get(store, decision_id)
    assert row is not None
    assert row.inputs == {"surplus_w": None, "x": [None]}


def test_every_action_the_engine_knows_can_be_recorded(store: DecisionStore, run_id: str) -> None:
    for action in ACTIONS:
        record(store, run_id, action=action)
    assert count(store, "decisions") == len(ACTIONS)


@pytest.mark.parametrize(
    ("decision", "mode", "outcome"),
    [
        (make_decision(), "live", "maybe"),
        (make_decision(), "test", "applied"),
        (make_decision(action="explode"), "live", "applied"),
    ],
    ids=["outcome", "mode", "action"],
)
def test_check_constraints_reject_bad_values(
    store: DecisionStore, run_id: str, decision: Decision, mode: Any, outcome: Any
) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
        store.record(decision, run_id=run_id, mode=mode, site_id=1, ts=NOW, outcome=outcome)
    assert count(store, "decisions") == 0


def test_a_decision_must_belong_to_a_run(store: DecisionStore) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        record(store, "no-such-run")
    assert count(store, "decisions") == 0


def test_runs_start_and_end(store: DecisionStore) -> None:
    run_id = start(store)
    assert len(run_id) == 32
    row = store.db.table("runs").get(run_id)
    assert (row["status"], row["ended_at"], row["mode"]) == ("running", None, "live")
    assert (row["config_hash"], row["rules_hash"], row["version"]) == ("c0", "r0", "0.1.0")
    store.end_run(run_id, ended_at=NOW + timedelta(hours=1), status="reloaded")
    row = store.db.table("runs").get(run_id)
    assert (row["status"], row["ended_at"]) == ("reloaded", "2025-01-15T11:00:05Z")
    with pytest.raises(KeyError, match="no run"):
        store.end_run("unknown", ended_at=NOW)


# --- state ---------------------------------------------------------------------------------


def test_state_saves_loads_and_replaces(store: DecisionStore) -> None:
    assert store.load_state("memory") is None
    memory = {"version": 1, "chargers": {"SN1": {"commanded_amps": 16}}}
    store.save_state("memory", memory, updated_at=NOW)
    assert store.load_state("memory") == memory
    store.save_state("memory", {"version": 1}, updated_at=NOW + timedelta(minutes=1))
    assert store.load_state("memory") == {"version": 1}
    row = store.db.table("state").get("memory")
    assert row["updated_at"] == "2025-01-15T10:01:05Z"
    assert count(store, "state") == 1


def test_state_survives_a_restart(db_path: Path) -> None:
    with DecisionStore(db_path) as first:
        first.save_state("variants", ["v2", "v1"], updated_at=NOW)
    with DecisionStore(db_path) as second:
        assert second.load_state("variants") == ["v2", "v1"]


# --- requests ------------------------------------------------------------------------------


def test_request_counts_add_up_per_run_hour_and_family(store: DecisionStore, run_id: str) -> None:
    store.add_requests(run_id, hour=NOW, counts={"status": 2, "write": 1, "energy": 0})
    store.add_requests(run_id, hour=NOW + timedelta(minutes=20), counts={"status": 3})
    store.add_requests(run_id, hour=NOW + timedelta(hours=1), counts={"status": 1})
    rows = {
        (r["hour"], r["family"]): r["count"]
        for r in store.db.table("requests").rows_where(order_by="hour")
    }
    assert rows == {
        ("2025-01-15T10:00:00Z", "status"): 5,
        ("2025-01-15T10:00:00Z", "write"): 1,
        ("2025-01-15T11:00:00Z", "status"): 1,
    }
    with pytest.raises(ValueError, match="negative"):
        store.add_requests(run_id, hour=NOW, counts={"status": -1})


# --- retention -----------------------------------------------------------------------------


def test_retention_deletes_what_is_older_and_keeps_the_rest(store: DecisionStore) -> None:
    old_run = start(store, at=NOW - timedelta(days=100))
    record(store, old_run, ts=NOW - timedelta(days=100))
    record(store, old_run, ts=NOW - timedelta(days=91))
    store.add_requests(old_run, hour=NOW - timedelta(days=95), counts={"status": 9})
    store.end_run(old_run, ended_at=NOW - timedelta(days=91))
    crashed_run = start(store, at=NOW - timedelta(days=99))  # no end: kept
    current = start(store)
    kept = record(store, current, ts=NOW - timedelta(days=89))
    store.add_requests(current, hour=NOW, counts={"status": 1})

    assert store.apply_retention(days=90, now=NOW) == 2
    assert [r["id"] for r in store.db.table("decisions").rows] == [kept]
    assert [r["count"] for r in store.db.table("requests").rows] == [1]
    assert {r["run_id"] for r in store.db.table("runs").rows} == {crashed_run, current}
    assert store.apply_retention(days=90, now=NOW) == 0
    with pytest.raises(ValueError, match="at least 1 day"):
        store.apply_retention(days=0, now=NOW)


# --- other readers -------------------------------------------------------------------------


def test_the_sqlite_utils_command_line_reads_it(
    store: DecisionStore, run_id: str, db_path: Path
) -> None:
    record(store, run_id)
    tables = subprocess.run(
        [str(SQLITE_UTILS), "tables", str(db_path)], capture_output=True, text=True, check=True
    )
    assert {t["table"] for t in json.loads(tables.stdout)} == TABLES
    rows = subprocess.run(
        [str(SQLITE_UTILS), "rows", str(db_path), "decisions", "--limit", "5"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [r["policy"] for r in json.loads(rows.stdout)] == ["excess_solar"]


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="no sqlite3 command line")
def test_the_sqlite3_command_line_reads_it(
    store: DecisionStore, run_id: str, db_path: Path
) -> None:
    record(store, run_id)
    sql = "select ts, policy, action, outcome, reason from decisions order by id desc limit 10"
    result = subprocess.run(
        ["sqlite3", str(db_path), sql],  # noqa: S607 - the user's own sqlite3, as documented
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.startswith("2025-01-15T10:00:05Z|excess_solar|set_amps|applied|")


def test_plain_sqlite3_finds_it_intact(store: DecisionStore, run_id: str, db_path: Path) -> None:
    record(store, run_id)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("select count(*) from decisions").fetchone()[0] == 1
    conn.close()


def test_a_reader_reads_while_the_writer_holds_the_write_lock(
    store: DecisionStore, run_id: str, db_path: Path
) -> None:
    record(store, run_id)
    store.db.execute("BEGIN IMMEDIATE")
    store.db.table("decisions").insert(
        {**store.db.table("decisions").get(1), "id": 2, "reason": "not committed yet"}
    )
    with DecisionStore.open_readonly(db_path) as reader:
        # WAL: the reader neither waits for the writer nor sees its open transaction.
        assert [row.id for row in review.query(reader)] == [1]
        store.db.execute("COMMIT")
        assert [row.id for row in review.query(reader)] == [2, 1]


def test_two_writers_take_turns(store: DecisionStore, run_id: str, db_path: Path) -> None:
    with DecisionStore(db_path) as second:
        record(second, run_id)
        record(store, run_id)
    assert count(store, "decisions") == 2


def test_the_docs_describe_every_table_and_column(store: DecisionStore) -> None:
    text = DOC.read_text(encoding="utf-8")
    for table in store.db.tables:
        assert f"### `{table.name}`" in text, table.name
        for column in table.columns:
            assert f"`{column.name}`" in text, f"{table.name}.{column.name}"


def test_a_decision_and_its_memory_are_one_transaction(store: DecisionStore, run_id: str) -> None:
    """The service writes each decision with the memory that matches it: both or neither."""
    store.record(
        make_decision(),
        run_id=run_id,
        mode="live",
        site_id=1,
        ts=NOW,
        outcome="applied",
        state=("memory:1", {"n": 1}),
    )
    assert store.load_state("memory:1") == {"n": 1}
    with pytest.raises(sqlite3.IntegrityError):
        store.record(
            make_decision(),
            run_id=run_id,
            mode="live",
            site_id=1,
            ts=NOW,
            outcome="bogus",  # type: ignore[arg-type]
            state=("memory:1", {"n": 2}),
        )
    assert store.load_state("memory:1") == {"n": 1}  # the failed row took its memory with it
    assert count(store, "decisions") == 1
