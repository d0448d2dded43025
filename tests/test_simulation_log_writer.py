"""The simulation log's writer process (optimizer/simulate/daylog.py): the same rows as the
replay writing them itself, in the same order, one transaction per day; its failures fail the
replay with their own error; a failed replay leaves no writer behind.

The sample year's rows through the writer are checked against the recorded June rows by
tests/test_simulate_golden.py; here a few synthetic days, both ways.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from optimizer.config import Config
from optimizer.decisions.store import DecisionStore
from optimizer.engine.loader import load_rules
from optimizer.simulate import daylog
from optimizer.simulate.replay import replay
from optimizer.simulate.series import Session, SiteSeries
from tests.test_plans import LIMITS, ROOT, T0, VOLTS, at, series_of

RULES = sorted((ROOT / "rules").glob("*.yaml"))
ROWS = (
    "SELECT ts, mode, site_id, charger_sn, policy, target, action, params, reason, inputs,"
    " overruled, outcome, error, commands FROM decisions ORDER BY id"
)


def _days() -> SiteSeries:
    """Three days of a sunny house with a car plugged in each afternoon and evening."""
    sun = [max(0.0, 6.0 - abs(h / 4 - 13) * 1.2) for h in range(96)]
    sessions = tuple(Session(at(24 * d + 11), at(24 * d + 22), 18.0) for d in range(3))
    return series_of(sun * 3, 0.6, sessions)


def _logged(path: Path, *, run: str | None = None, site_id: int = 7) -> list[tuple[Any, ...]]:
    """The rows a replay of :func:`_days` logs into a new file at ``path``, under a run the
    file holds (or ``run``, which it may not)."""
    with DecisionStore(path) as store:
        run_id = run or store.start_run(
            mode="simulation",
            site_id=site_id,
            config_hash="",
            rules_hash="",
            version="t",
            started_at=T0,
        )
        replay(
            _days(),
            load_rules(RULES, tariffs=None).enabled,
            config=Config(),
            limits=LIMITS,
            voltage_v=VOLTS,
            store=store,
            run_id=run_id,
            site_id=site_id,
        )
        return [tuple(r) for r in store.db.execute(ROWS)]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The writers the replay starts, kept so a test can see them end."""
    writers: list[Any] = []
    real = daylog._Writer.start

    def start(*args: Any) -> Any:
        writer = real(*args)
        writers.append(writer)
        return writer

    monkeypatch.setattr(daylog._Writer, "start", start)
    monkeypatch.setattr(daylog, "MIN_WRITER_BUCKETS", 96)  # a writer for three days too
    return writers


def test_the_writer_process_writes_the_rows_the_replay_would_have(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[Any]
) -> None:
    through_writer = _logged(tmp_path / "writer.db")
    assert len(started) == 1
    assert started[0] is not None  # it did run in its own process
    assert started[0]._process.returncode == 0
    monkeypatch.setattr(daylog._Writer, "start", lambda *args: None)  # no process to be had
    here = _logged(tmp_path / "here.db")
    actions = {row[6] for row in here}
    assert "hold" in actions  # the holds that said something new
    assert actions - {"hold"}  # and the commands
    assert through_writer == here


def test_the_writer_keeps_a_site_id_of_zero(tmp_path: Path, started: list[Any]) -> None:
    rows = _logged(tmp_path / "d.db", site_id=0)
    assert started[0] is not None
    assert {row[2] for row in rows} == {0}


@pytest.mark.parametrize(("days", "expected"), [(1, 3), (2, 2), (daylog.DAYS_PER_COMMIT, 1)])
def test_whole_simulated_days_per_transaction(
    tmp_path: Path, started: list[Any], days: int, expected: int
) -> None:
    """Days are committed whole, ``DAYS_PER_COMMIT`` at a time: a reader never sees half a
    day (the writer's transactions are the store's record_many, one per batch sent)."""
    batches: list[int] = []
    real_send = daylog._Writer.send

    def send(self: Any, items: Any) -> None:
        batches.append(len(items))
        real_send(self, items)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(daylog._Writer, "send", send)
        patch.setattr(daylog, "DAYS_PER_COMMIT", days)
        rows = _logged(tmp_path / "d.db")
    assert started[0] is not None
    assert len(batches) == expected  # the series' three days (UTC), so many a batch
    assert sum(batches) == len(rows)


def test_a_short_replay_writes_its_own_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under :data:`MIN_WRITER_BUCKETS` no writer is started (its start would cost more than
    the rows), and the rows are the same."""
    calls: list[object] = []
    monkeypatch.setattr(daylog._Writer, "start", lambda *args: calls.append(args))
    rows = _logged(tmp_path / "d.db")
    assert calls == []
    assert len(rows) > 3 * 10  # commands and changes on three days


@pytest.mark.parametrize("error", [OSError("no more processes"), ValueError("no pass_fds")])
def test_without_a_process_the_replay_writes_the_rows_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[Any], error: Exception
) -> None:
    def cannot(*args: Any, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(daylog.subprocess, "Popen", cannot)
    rows = _logged(tmp_path / "d.db")
    assert started == [None]  # asked for, none to be had
    assert len(rows) > 3 * 10  # commands and changes on three days


def test_a_failed_write_fails_the_replay_with_its_own_error(
    tmp_path: Path, started: list[Any]
) -> None:
    """A run the log does not hold: the writer's insert breaks the foreign key, and the
    replay raises that error, as writing in its own process would."""
    with pytest.raises(sqlite3.IntegrityError):
        _logged(tmp_path / "d.db", run="no-such-run")
    assert started[0]._process.poll() is not None  # ended, not left behind


def test_a_writer_that_vanishes_fails_the_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[Any]
) -> None:
    real_send = daylog._Writer.send

    def send_to_a_killed_writer(self: Any, items: Any) -> None:
        self._process.kill()
        self._process.wait()
        real_send(self, items)

    monkeypatch.setattr(daylog._Writer, "send", send_to_a_killed_writer)
    with pytest.raises(daylog.LogWriterError, match="ended unexpectedly"):
        _logged(tmp_path / "d.db")


def test_a_replay_that_fails_ends_its_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[Any]
) -> None:
    """The replay's own error is the one raised, and the writer does not outlive it."""
    import optimizer.simulate.replay as replay_module  # noqa: PLC0415

    real = replay_module._surplus_at  # read at every tick, counted without a snapshot or not
    calls = {"n": 0}

    def fail_on_day_two(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 150:
            raise RuntimeError("the replay broke")
        return real(*args, **kwargs)

    monkeypatch.setattr(replay_module, "_surplus_at", fail_on_day_two)
    monkeypatch.setattr(daylog, "DAYS_PER_COMMIT", 1)  # the writer has a day by then
    with pytest.raises(RuntimeError, match="the replay broke"):
        _logged(tmp_path / "d.db")
    assert started
    assert started[0]._process.poll() is not None
