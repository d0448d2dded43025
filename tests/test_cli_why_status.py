"""`evopt status` (the service's view) and `evopt why` after a simulated afternoon.

The service runs on a simulated clock against the fake cloud (as in tests/test_service.py):
the car starts charging from the surplus at 13:32, the house load jumps at 13:45, and the
solar policy stops the car once the surplus has stayed below its stop threshold. Then the
CLI runs in a worker thread (its own event loop; the fake keeps serving from the test's) with
its clock pinned to the fake's, once with the service stopped and once while it "runs".
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from optimizer.cli import account, main, why
from optimizer.config import load_config
from optimizer.decisions import DecisionStore
from optimizer.decisions.review import DecisionRow
from optimizer.engine.snapshot import DeparturePlan
from optimizer.forecast.kept import kept_path
from optimizer.plans import save_plan
from optimizer.service.heartbeat import STALE_TICKS
from optimizer.service.view import in_control, next_text
from tests.cli_env import STATUS_KEYS
from tests.test_service import SN, World, world_at

AFTERNOON = datetime(2025, 1, 15, 2, 30, tzinfo=UTC)  # 13:30 in Melbourne
MELBOURNE = ZoneInfo("Australia/Melbourne")
RULES = """\
policies:
  - name: solar-surplus
    kind: excess_solar
    priority: 50
    variant: pv
    min_amps: 6
    max_amps: 32
    start_threshold_w: 1400
    stop_threshold_w: 700
    start_delay: 2m
    stop_delay: 5m
    min_on_time: 10m
    min_off_time: 10m
  - name: manual-by-day
    kind: charge_mode
    priority: 30
    mode: MANUAL_CHARGING
"""
SERVICE_KEYS = {"running", "policy", "action", "reason", "since", "next"}
WHY_KEYS = {
    "charger_sn",
    "at",
    "state",
    "decision_id",
    "policy",
    "action",
    "reason",
    "overruled",
    "inputs",
}


@pytest.fixture
async def afternoon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> AsyncIterator[World]:
    async for world in world_at(AFTERNOON, tmp_path, monkeypatch):
        monkeypatch.setattr(account, "_now", world.clock.now)
        monkeypatch.setattr(why, "_now", world.clock.now)
        yield world


def house_load_jumps(world: World) -> None:
    """At the 30th sleep (13:45) the house starts drawing 9 kW: the surplus goes."""

    def jump() -> None:
        with world.cloud.mutate() as model:
            model.curves.base_load_w = 9000.0

    world.clock.hooks[30] = jump


async def cli(world: World, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, ["--config", str(world.tmp / "config.yaml"), *args])
    out, err = capsys.readouterr()
    return code, out, err


async def cli_json(world: World, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = await cli(world, capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def local(ts: str) -> str:
    """A stored UTC time as the site-local time a person types."""
    return datetime.fromisoformat(ts).astimezone(MELBOURNE).replace(tzinfo=None).isoformat()


def charging_rows(world: World) -> list[Any]:
    return world.rows("SELECT * FROM decisions WHERE target = 'charging' ORDER BY id")


async def afternoon_run(world: World) -> tuple[Any, Any]:
    """Run 13:30-14:10 and stop the service; the applied start and stop rows."""
    house_load_jumps(world)
    service = world.service(world.config(RULES))
    assert await service.run(max_ticks=80) == 0
    rows = charging_rows(world)
    [start] = [r for r in rows if r["action"] == "start" and r["outcome"] == "applied"]
    [stop] = [r for r in rows if r["action"] == "stop" and r["outcome"] == "applied"]
    return start, stop


# --- why ---------------------------------------------------------------------------------------


async def test_why_the_car_stopped(afternoon: World, capsys: pytest.CaptureFixture[str]) -> None:
    _, stop = await afternoon_run(afternoon)

    found = await cli_json(afternoon, capsys, "why", local(stop["ts"]))
    assert set(found) >= WHY_KEYS
    assert found["charger_sn"] == SN
    assert found["at"] == stop["ts"]
    assert (found["decision_id"], found["policy"], found["action"]) == (
        stop["id"],
        "solar-surplus",
        "stop",
    )
    assert found["reason"] == stop["reason"]
    assert "below stop threshold" in found["reason"]
    assert found["state"] == "stopped (plugged in)"
    assert found["command"]["decision_id"] == stop["id"]
    assert found["inputs"]["surplus_w"] < 0
    assert found["inputs"]["surplus_age_s"] is not None
    assert found["inputs"]["tariff"] is None  # 13:55 is outside every window of the config
    assert found["inputs"]["price"] == 0.30
    assert found["inputs"]["plugged_in"] is True
    assert found["mode"] == "live"
    assert found["overruled"] == []

    code, out, err = await cli(afternoon, capsys, "why", local(stop["ts"]))
    assert (code, err) == (0, "")
    stop_local = local(stop["ts"]).replace("T", " ")
    assert out.splitlines()[0] == f"{SN} at {stop_local}: stopped (plugged in)."
    assert f"Command in effect: stop, sent at {stop_local} by solar-surplus" in out
    assert "below stop threshold 0.7 kW for 5 min" in out
    assert "Inputs that mattered: surplus -" in out
    assert "tariff default at 0.3/kWh" in out
    assert "; live.\n" in out
    assert out.rstrip().endswith("Next: start when surplus >= 1.4 kW for 2 min (now -4.4 kW).")


async def test_why_between_the_start_and_the_stop(
    afternoon: World, capsys: pytest.CaptureFixture[str]
) -> None:
    start, stop = await afternoon_run(afternoon)
    middle = datetime.fromisoformat(stop["ts"]) - timedelta(minutes=2, seconds=10)
    found = await cli_json(afternoon, capsys, "why", local(middle.isoformat()), "--charger", SN)
    # A hold is the latest decision; the start is the command still in effect.
    assert found["action"] == "hold"
    assert "stop delay" in found["reason"]  # the countdown towards the stop
    assert found["state"] == "charging at 22 A"
    assert found["command"]["decision_id"] == start["id"]
    assert found["command"]["action"] == "start"
    assert found["command"]["params"] == {"amps": 22}
    holds = [
        r
        for r in charging_rows(afternoon)
        if r["action"] == "hold" and start["id"] < r["id"] < stop["id"]
    ]
    assert found["since"] == holds[0]["ts"]  # unbroken holds since just after the start
    assert found["decided_at"] <= middle.strftime("%Y-%m-%dT%H:%M:%SZ")

    code, out, _ = await cli(afternoon, capsys, "why", local(middle.isoformat()))
    assert code == 0
    assert "Command in effect: start at 22 A, sent at 2025-01-15 13:32:00" in out
    assert "Latest decision: hold (noop) at " in out
    assert "unchanged since 2025-01-15 13:32:30" in out


async def test_why_before_any_decision_and_with_a_mistyped_serial(
    afternoon: World, capsys: pytest.CaptureFixture[str]
) -> None:
    await afternoon_run(afternoon)
    found = await cli_json(afternoon, capsys, "why", "2025-01-15T12:00")
    assert found["charger_sn"] == SN
    assert found["decision_id"] is None
    assert found["state"] is None
    assert found["command"] is None
    code, out, _ = await cli(afternoon, capsys, "why", "2025-01-15T12:00")
    assert code == 0
    assert out == f"{SN} at 2025-01-15 12:00:00: no decision for {SN} at or before then.\n"

    code, out, err = await cli(afternoon, capsys, "why", "--charger", SN[:-1] + "1")
    assert code == 1
    assert out == ""
    assert f"did you mean '{SN}'?" in err
    assert "Traceback" not in err


async def test_why_explains_each_charger_and_the_overruled(
    afternoon: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log with two chargers, one decision overruling another (hand-written rows)."""
    await afternoon_run(afternoon)
    with _writable(afternoon) as db:
        run_id = db.execute("SELECT run_id FROM runs").fetchone()[0]
        db.execute(
            "INSERT INTO decisions (ts, run_id, mode, site_id, charger_sn, policy, target,"
            " action, params, reason, inputs, overruled, outcome, error, commands) VALUES"
            " ('2025-01-15T03:00:00Z', ?, 'live', 1234567, 'EV2', 'safety', 'charging',"
            " 'hold', '{}', 'The charger reports a fault.',"
            ' \'{"in_control": "safety", "next": "start when the fault clears"}\','
            ' \'[{"policy": "solar-surplus", "action": "start", "params": {},'
            ' "reason": "surplus 5 kW"}]\', \'noop\', NULL, 0)',
            [run_id],
        )
    found = await cli_json(afternoon, capsys, "why", "2025-01-15T14:30")
    assert [f["charger_sn"] for f in found] == ["EV2", SN]
    ev2 = found[0]
    assert ev2["overruled"] == [
        {"policy": "solar-surplus", "action": "start", "reason": "surplus 5 kW"}
    ]
    assert ev2["next"] == "start when the fault clears"
    assert ev2["in_control"] == "safety"
    code, out, _ = await cli(afternoon, capsys, "why", "2025-01-15T14:30", "--charger", "EV2")
    assert code == 0
    assert "It overruled solar-surplus, which wanted start: surplus 5 kW." in out
    assert "Next: start when the fault clears." in out


@contextmanager
def _writable(world: World) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to the world's log, committed on exit."""
    db = sqlite3.connect(world.database)
    try:
        yield db
        db.commit()
    finally:
        db.close()


# --- status ------------------------------------------------------------------------------------


async def test_status_with_the_service_stopped(
    afternoon: World, capsys: pytest.CaptureFixture[str]
) -> None:
    _, stop = await afternoon_run(afternoon)
    [charger] = await cli_json(afternoon, capsys, "status")
    assert set(charger) >= STATUS_KEYS
    service = charger["service"]
    assert set(service) >= SERVICE_KEYS
    assert service["running"] is False
    assert service["service_state"] == "stopped"
    assert service["policy"] == "solar-surplus"
    last = charging_rows(afternoon)[-1]
    assert (service["action"], service["reason"]) == (last["action"], last["reason"])
    after_stop = [r for r in charging_rows(afternoon) if r["id"] > stop["id"]]
    assert service["since"] == after_stop[0]["ts"]  # holds ever since the stop
    assert service["command"]["decision_id"] == stop["id"]
    assert service["next"].startswith("start when surplus >= 1.4 kW for 2 min")
    assert service["mode"] == "live"
    assert service["plans"] == []

    code, out, _ = await cli(afternoon, capsys, "status")
    assert code == 0
    assert f"{SN}: the service is not running (stopped; last tick " in out
    assert f"{SN}: command in effect: stop at " in out


async def test_status_while_the_service_runs(
    afternoon: World, capsys: pytest.CaptureFixture[str]
) -> None:
    service = afternoon.service(afternoon.config(RULES), dry_run=True)
    for _ in range(6):
        await service.tick()
        afternoon.cloud.advance(30)
    store = service.store
    save_plan(
        store,
        SN,
        _plan(afternoon.clock.now() + timedelta(hours=2)),
        now=afternoon.clock.now(),
    )

    [charger] = await cli_json(afternoon, capsys, "status")
    view = charger["service"]
    assert (view["running"], view["healthy"], view["mode"]) == (True, True, "dry_run")
    assert view["last_tick_age_s"] == 30
    assert view["problem"] is None
    # Dry: nothing starts the car, so the engine asks for the start again every tick.
    assert (view["action"], view["outcome"]) == ("start", "dry_run")
    assert view["command"]["decision_id"] == view["decision_id"]
    assert view["since"] == "2025-01-15T02:32:00Z"
    assert view["plans"] == [{"ready_by": "2025-01-15T04:33:00Z", "energy_kwh": 12.0}]
    code, out, _ = await cli(afternoon, capsys, "status")
    assert code == 0
    assert f"{SN}: the service runs, healthy, dry run (nothing is sent) (last tick 13:32" in out
    assert f"{SN}: plan: ready by 15:33 with 12 kWh" in out

    # A service that stopped ticking without saying so (killed): not running after a while.
    afternoon.cloud.advance(STALE_TICKS * 30 + 1)
    [charger] = await cli_json(afternoon, capsys, "status")
    assert charger["service"]["running"] is False
    assert charger["service"]["service_state"] == "not responding"
    await service.shutdown()


def _plan(ready_by: datetime) -> DeparturePlan:
    return DeparturePlan(ready_by=ready_by, energy_kwh=12.0)


async def test_status_before_the_service_ever_ran(
    afternoon: World, capsys: pytest.CaptureFixture[str]
) -> None:
    afternoon.config(RULES)
    [charger] = await cli_json(afternoon, capsys, "status")
    view = charger["service"]
    assert {key: view[key] for key in SERVICE_KEYS} == {
        "running": False,
        "policy": None,
        "action": None,
        "reason": None,
        "since": None,
        "next": None,
    }
    assert "has not run yet" in view["note"]
    code, out, _ = await cli(afternoon, capsys, "status")
    assert code == 0
    assert f"{SN}: the service has not run yet (no decision log at " in out
    assert not afternoon.database.exists()  # reading never creates it

    code, out, _ = await cli(afternoon, capsys, "why")
    assert code == 0
    assert "the service has not run yet (no decision log at " in out

    DecisionStore(afternoon.database).close()  # a log without decisions
    code, out, _ = await cli(afternoon, capsys, "why", "--charger", SN)
    assert code == 0
    assert out.endswith(f"{SN} at 2025-01-15 13:30:00: the decision log has no decisions yet.\n")


# --- the view's reading of the engine's hints ----------------------------------------------------


def _row(inputs: dict[str, Any]) -> DecisionRow:
    return DecisionRow(
        1,
        AFTERNOON,
        "run",
        "live",
        1,
        SN,
        "solar",
        "charging",
        "hold",
        {},
        "r",
        inputs,
        [],
        "noop",
        None,
        0,
    )


def test_in_control_and_next_come_from_the_inputs_when_present() -> None:
    assert in_control(_row({})) == "solar"
    assert in_control(_row({"in_control": "overnight"})) == "overnight"
    assert next_text(_row({})) is None
    assert next_text(_row({"next": "top-up 01:00-03:45"})) == "top-up 01:00-03:45"
    assert next_text(_row({"next": {"text": "start when surplus >= 1.4 kW for 2 min"}})) == (
        "start when surplus >= 1.4 kW for 2 min"
    )


async def test_status_says_what_learned_plans_go_on(
    afternoon: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """With `plans: auto`: before the service ran, that nothing is stored yet and who fetches
    it; after one tick, how much of the look-back it stored and learned from (the fake
    cloud's own 28 days of sessions). With `plans: manual` no such line, and a null."""
    config = afternoon.config(RULES).model_copy(update={"plans": "auto"})
    path = afternoon.tmp / "config.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "plans: auto\n", encoding="utf-8")
    code, out, _ = await cli(afternoon, capsys, "status")
    assert code == 0
    assert f"{SN}: learned plans (plans: auto): no session history stored yet" in out

    service = afternoon.service(config, dry_run=True)
    await service.tick()
    await service.shutdown()
    [charger] = await cli_json(afternoon, capsys, "status")
    held = charger["learned_from"]
    assert held["days"] == 90
    assert held["days_stored"] == 90  # the look-back in one window at the first tick
    assert held["sessions"] >= 10
    assert held["fetched_at"] == "2025-01-15T02:30:00Z"
    code, out, _ = await cli(afternoon, capsys, "status")
    assert (
        f"{SN}: learned plans (plans: auto) from {held['sessions']} sessions in 90 of the "
        "last 90 days (history fetched 13:30)"
    ) in out

    path.write_text(path.read_text(encoding="utf-8").replace("plans: auto", "plans: manual"))
    [charger] = await cli_json(afternoon, capsys, "status")
    assert charger["learned_from"] is None
    code, out, _ = await cli(afternoon, capsys, "status")
    assert "learned plans" not in out


async def test_status_says_whether_the_planner_has_an_online_forecast(
    afternoon: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `forecast.online`: no reply kept yet, then the one the service kept (in use while
    at most max_age old), then too old; without it, no line and a null."""
    monkeypatch.setenv("EVOPT_CACHE_DIR", str(afternoon.tmp / "cache"))
    afternoon.config(RULES)
    path = afternoon.tmp / "config.yaml"
    plain = path.read_text(encoding="utf-8")
    path.write_text(plain + "forecast:\n  online:\n    max_age: 6h\n", encoding="utf-8")
    code, out, _ = await cli(afternoon, capsys, "status")
    assert code == 0
    assert "solar forecast (forecast.online): no Forecast.Solar reply kept yet" in out
    [charger] = await cli_json(afternoon, capsys, "status")
    assert charger["online_forecast"] == {
        "provider": "forecast_solar",
        "fetched_at": None,
        "age_s": None,
        "in_use": False,
    }
    config = load_config(path)
    site = config.site
    assert site.latitude is not None
    assert site.longitude is not None
    now = afternoon.clock.now()
    kept = kept_path(None, site.latitude, site.longitude)
    kept.parent.mkdir(parents=True, exist_ok=True)
    for ago, says in (
        (timedelta(minutes=38), "Forecast.Solar, fetched 12:52"),
        (timedelta(hours=7), "the last Forecast.Solar reply (fetched 06:30) is too old"),
    ):
        fetched = (now - ago).isoformat()
        record = {"version": 1, "provider": "forecast_solar", "fetched_at": fetched}
        kept.write_text(json.dumps(record), encoding="utf-8")
        code, out, err = await cli(afternoon, capsys, "status")
        assert code == 0, err
        assert f"solar forecast (forecast.online): {says}" in out, out
        [charger] = await cli_json(afternoon, capsys, "status")
        assert charger["online_forecast"]["age_s"] == ago.total_seconds()
        assert charger["online_forecast"]["in_use"] is (ago < timedelta(hours=6))
    path.write_text(plain, encoding="utf-8")
    [charger] = await cli_json(afternoon, capsys, "status")
    assert charger["online_forecast"] is None
    code, out, _ = await cli(afternoon, capsys, "status")
    assert "solar forecast" not in out
