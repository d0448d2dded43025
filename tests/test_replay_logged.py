"""A logged replay (optimizer/simulate/daylog.py, replay.py): what a simulation logs, and that a
logged replay may reuse its settled ticks and run in two processes like an unlogged one.

The rows are checked against the plainest way to make them: every tick evaluated in one
process, each decision offered to the log (``skip_idle=False, split=False``). The bundled
years were checked the same way when the rule came in (greensboro, seattle, phoenix with the
example rules: 3,676 / 3,635 / 6,807 rows, equal to the byte); tests/test_simulate_golden.py
pins June's rows.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import optimizer.simulate.replay as replay_module
from optimizer.config import Config
from optimizer.decisions.store import DecisionStore
from optimizer.engine.decision import Decision
from optimizer.engine.loader import load_config_rules
from optimizer.engine.rules import PolicyBase
from optimizer.engine.snapshot import DeparturePlan
from optimizer.simulate import daylog
from optimizer.simulate.daylog import DayLog
from optimizer.simulate.replay import ReplayResult
from optimizer.simulate.series import SiteSeries
from tests.test_replay_idle import _config, _series
from tests.test_replay_split import _replay, cuts_seen, same

COLUMNS = (
    "ts, mode, site_id, charger_sn, policy, target, action, params, reason, inputs, overruled,"
    " outcome, error, commands"
)


def _logged(
    tmp: Path,
    name: str,
    series: SiteSeries,
    config: Config,
    policies: list[PolicyBase],
    **extra: Any,
) -> tuple[ReplayResult, list[tuple[Any, ...]]]:
    """The replay with a simulation log, and the rows it wrote, in order."""
    path = tmp / f"{name}.db"
    with DecisionStore(path) as store:
        run_id = store.start_run(
            mode="simulation",
            site_id=None,
            config_hash="c",
            rules_hash="r",
            version="t",
            started_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        result = _replay(series, config, policies, store=store, run_id=run_id, **extra)
    with sqlite3.connect(path) as db:
        rows = list(db.execute(f"SELECT {COLUMNS} FROM decisions ORDER BY id"))  # noqa: S608
    return result, rows


@pytest.mark.parametrize(
    ("first", "last", "battery", "plans"),
    [
        # The battery rule of apr-sep in control from the start, long before the child's:
        # its row of 1 July ("jul in ...") must quote this process's start of control.
        # Overnight tariff targets, whose words name the slots they pick.
        ((6, 12), (7, 3), False, False),
        ((3, 1), (3, 22), True, False),  # the clocks change; a home battery
        # Each session's departure plan, asking more than the car takes: its last moment's
        # reasons quote the time left, and say when it can no longer all be delivered.
        ((10, 20), (11, 10), False, True),
    ],
)
def test_a_logged_replay_reused_and_split_logs_what_every_tick_would(  # noqa: PLR0917
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    first: tuple[int, int],
    last: tuple[int, int],
    battery: bool,
    plans: bool,
) -> None:
    config = _config(tmp_path, battery=battery)
    series = _series(config, first, last)
    policies: list[PolicyBase] = list(load_config_rules(config).enabled)
    extra: dict[str, Any] = {}
    if plans:
        extra["plans"] = [
            DeparturePlan(
                ready_by=session.end - timedelta(minutes=15), energy_kwh=session.energy_kwh + 8
            )
            for session in series.sessions
        ]
    plain, plain_rows = _logged(
        tmp_path, "plain", series, config, policies, skip_idle=False, split=False, **extra
    )
    monkeypatch.setattr(replay_module, "MIN_SPLIT_BUCKETS", 96 * 7)  # weeks split as a year
    monkeypatch.setattr(replay_module, "WARM_UP", 96)
    seen = cuts_seen(monkeypatch)
    fast, fast_rows = _logged(tmp_path, "fast", series, config, policies, **extra)
    assert seen[-1] is True  # the child's half was taken
    same(fast, plain)
    assert fast_rows == plain_rows
    # What it logs: every command, and far fewer holds than ticks.
    commands = sum(1 for row in fast_rows if row[6] != "hold")
    assert commands == fast.commands
    assert len(fast_rows) < fast.decisions / 5


def _hold(reason: str, *, target: str = "charging", policy: str = "solar") -> Decision:
    return Decision(
        policy=policy,
        charger_sn="SN1",
        target=target,  # type: ignore[arg-type]
        action="hold",
        params={},
        reason=reason,
        inputs={"surplus_w": 100.0},
    )


def test_the_log_keeps_commands_and_holds_that_say_another_thing() -> None:
    log = DayLog(None, None, None, ZoneInfo("UTC"), collect=True)
    now = datetime(2025, 6, 1, tzinfo=UTC)
    first = _hold("surplus -0.8 kW below start threshold 1.4 kW: not starting")
    log.add(first, now, 0)
    log.add(first, now + timedelta(minutes=15), 0)  # the same decision again
    log.add(_hold("surplus 0.4 kW below start threshold 1.4 kW: not starting"), now, 0)
    log.add(_hold("no vehicle plugged in"), now, 0)  # another thing
    log.add(_hold("no vehicle plugged in", target="mode"), now, 0)  # another target
    log.add(_hold("no vehicle plugged in", policy="night"), now, 0)  # another policy
    start = Decision(
        policy="solar",
        charger_sn="SN1",
        target="charging",
        action="start",
        params={"amps": 6},
        reason="surplus 1.5 kW",
        inputs={},
    )
    log.add(start, now, 1)
    log.add(start, now, 1)  # a command is always logged
    reasons = [(item[0].policy, item[0].target, item[0].reason) for item in log.kept]
    assert reasons == [
        ("solar", "charging", "surplus -0.8 kW below start threshold 1.4 kW: not starting"),
        ("solar", "charging", "no vehicle plugged in"),
        ("solar", "mode", "no vehicle plugged in"),
        ("night", "charging", "no vehicle plugged in"),
        ("solar", "charging", "surplus 1.5 kW"),
        ("solar", "charging", "surplus 1.5 kW"),
    ]
    assert [item[2] for item in log.kept][-1] == "applied"
    assert json.dumps(log.state())  # what the split compares: plain values


class _Batches:
    """A store that keeps each transaction's rows' times."""

    def __init__(self) -> None:
        self.batches: list[list[datetime]] = []

    def record_many(self, items: list[Any], **_: Any) -> int:
        self.batches.append([item[1] for item in items])
        return len(items)


def test_each_local_day_is_one_transaction_across_a_clock_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Days are the site's: in New York on 9 March 2025 (23 hours) and the days either side,
    each its own transaction when a transaction holds one day."""
    monkeypatch.setattr(daylog, "DAYS_PER_COMMIT", 1)
    zone = ZoneInfo("America/New_York")
    store = _Batches()
    log = DayLog(store, "run", None, zone, buckets=10)  # type: ignore[arg-type]
    start = datetime(2025, 3, 8, 5, tzinfo=UTC)  # local midnight, 8 March (EST)
    for step in range(3 * 96 - 4):  # to local midnight of 11 March (EDT from the 9th)
        now = start + timedelta(minutes=15 * step)
        log.day_of(now)
        log.add(_hold("a command, always logged"), now, 1)
    log.close()
    days = [{moment.astimezone(zone).date() for moment in batch} for batch in store.batches]
    assert [len(day) for day in days] == [1, 1, 1]
    assert [len(batch) for batch in store.batches] == [96, 92, 96]


def test_a_logged_replay_whose_cuts_never_agree_logs_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """States made to differ at every cut: the child's rows are never taken, and this process
    logs the whole period itself, the same rows."""
    config = _config(tmp_path, battery=False)
    series = _series(config, (6, 12), (7, 3))
    policies: list[PolicyBase] = list(load_config_rules(config).enabled)
    _, plain_rows = _logged(tmp_path, "plain", series, config, policies, split=False)
    monkeypatch.setattr(replay_module, "MIN_SPLIT_BUCKETS", 96 * 7)
    monkeypatch.setattr(replay_module, "WARM_UP", 96)
    seen = cuts_seen(monkeypatch, verdict=False)
    _, rows = _logged(tmp_path, "alone", series, config, policies)
    assert seen == [False] * replay_module.CUTS
    assert rows == plain_rows
