"""What the service records, and when: unchanged holds only on change or as a heartbeat, the
engine memory once per tick in the same transaction as the tick's rows, and the size limit.

Pure rules (decisions/dedupe.py) with hypothesis where they are invariants; the tick log
(decisions/ticklog.py) against a real store, counting its transactions; the service itself
against the fake cloud over a run of identical ticks.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimizer.config import Config
from optimizer.decisions.dedupe import Fingerprint, material, reason_shape, should_record
from optimizer.decisions.store import DecisionStore
from optimizer.decisions.ticklog import TickLog
from optimizer.engine.decision import Decision
from tests.test_service import HOLD_ONLY, MIDDAY, SN, World, world_at

NOW = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
HEARTBEAT = timedelta(minutes=15)
INPUTS: dict[str, Any] = {
    "now": NOW.isoformat(),
    "local_time": "2026-12-05 13:00",
    "surplus_w": 820.0,
    "surplus_age_s": 42.0,
    "pv_age_s": 3.0,
    "sun_elevation_deg": 61.2,
    "tariff": "shoulder",
    "price": 0.25,
    "battery_soc_pct": 64,
    "charger": {
        "sn": SN,
        "plugged_in": True,
        "charging": False,
        "amps": 16,
        "mode": "MANUAL_CHARGING",
        "session_kwh": 3.2,
    },
    "available_w": 820,
}


def hold(
    reason: str = "surplus 0.8 kW is below the 1.4 kW start threshold", **inputs: Any
) -> Decision:
    return Decision(
        policy="excess_solar",
        charger_sn=SN,
        target="charging",
        action="hold",
        params={},
        reason=reason,
        inputs={**INPUTS, **inputs},
    )


def recorded(decision: Decision, at: datetime = NOW) -> Fingerprint:
    return Fingerprint.of(decision, at)


# --- the rules -----------------------------------------------------------------------------


def test_an_identical_hold_is_not_recorded_again() -> None:
    last = recorded(hold())
    later = NOW + timedelta(seconds=30)
    assert not should_record(hold(), "noop", last=last, now=later, heartbeat=HEARTBEAT)


def test_the_heartbeat_records_an_unchanged_hold() -> None:
    last = recorded(hold())
    at = NOW + HEARTBEAT
    assert should_record(hold(), "noop", last=last, now=at, heartbeat=HEARTBEAT)
    assert should_record(hold(), "noop", last=last, now=NOW, heartbeat=timedelta(0))


@pytest.mark.parametrize(
    "changed",
    [
        hold(reason="no vehicle plugged in"),
        hold(charger={**INPUTS["charger"], "plugged_in": False}),
        hold(charger={**INPUTS["charger"], "charging": True}),
        hold(charger={**INPUTS["charger"], "amps": 10}),
        hold(charger={**INPUTS["charger"], "mode": "GREEN_CHARGING"}),
        hold(tariff="peak"),
        hold(price=0.45),
        hold(surplus_w=1900.0),  # another 500 W band
        hold(surplus_w=None),  # unknown now
        hold(battery_soc_pct=95),
        hold(status_age_s=95.0),  # the status is a kept, stale one now
        hold(pv_age_s=None),  # no PV sample any more
        Decision("night", SN, "charging", "hold", {}, hold().reason, INPUTS),
        Decision("excess_solar", SN, "charging", "hold", {"amps": 6}, hold().reason, INPUTS),
    ],
)
def test_a_hold_that_says_something_new_is_recorded(changed: Decision) -> None:
    last = recorded(hold())
    at = NOW + timedelta(seconds=30)
    assert should_record(changed, "noop", last=last, now=at, heartbeat=HEARTBEAT)


@pytest.mark.parametrize(
    "same",
    [
        hold(now=(NOW + timedelta(seconds=30)).isoformat(), local_time="2026-12-05 13:01"),
        hold(surplus_age_s=12.0, pv_age_s=40.0, sun_elevation_deg=61.4),
        hold(surplus_w=910.0, available_w=910),  # the same 500 W band
        hold(charger={**INPUTS["charger"], "session_kwh": 3.4}),
        hold(reason="surplus 0.9 kW is below the 1.4 kW start threshold"),
    ],
)
def test_clock_readings_ages_and_drift_within_a_band_are_not_news(same: Decision) -> None:
    last = recorded(hold())
    at = NOW + timedelta(seconds=30)
    assert not should_record(same, "noop", last=last, now=at, heartbeat=HEARTBEAT)


@given(
    action=st.sampled_from(["set_amps", "start", "stop", "set_mode", "set_battery"]),
    outcome=st.sampled_from(["applied", "noop", "dry_run", "rejected", "failed"]),
    seconds=st.integers(0, 3600),
)
def test_commands_and_failures_are_always_recorded(action: str, outcome: str, seconds: int) -> None:
    decision = Decision("excess_solar", SN, "charging", action, {}, "x", INPUTS)  # type: ignore[arg-type]
    last = recorded(decision)
    at = NOW + timedelta(seconds=seconds)
    assert should_record(decision, outcome, last=last, now=at, heartbeat=HEARTBEAT)
    for failed in ("rejected", "failed"):
        assert should_record(hold(), failed, last=recorded(hold()), now=at, heartbeat=HEARTBEAT)


@given(st.text(max_size=60), st.lists(st.floats(0, 1e5, allow_nan=False), max_size=4))
def test_a_reason_shape_ignores_only_its_numbers(words: str, numbers: list[float]) -> None:
    text = words + " ".join(f"{n:.1f} kW" for n in numbers)
    other = words + " ".join(f"{n + 1:.1f} kW" for n in numbers)
    assert reason_shape(text) == reason_shape(other)
    assert reason_shape("no vehicle plugged in") != reason_shape("vehicle plugged in")


def test_material_inputs_keep_the_facts() -> None:
    kept = material(INPUTS)
    assert set(kept) == {
        "surplus_w",
        "surplus_age_s",
        "pv_age_s",
        "tariff",
        "price",
        "battery_soc_pct",
        "charger",
        "available_w",
    }
    assert (kept["surplus_age_s"], kept["pv_age_s"]) == (True, True)  # there is a reading
    assert kept["charger"] == {
        "sn": SN,
        "plugged_in": True,
        "charging": False,
        "amps": 16,
        "mode": "MANUAL_CHARGING",
    }
    assert kept["surplus_w"] == 1  # 500-999 W


# --- one tick's writes ---------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DecisionStore]:
    with DecisionStore(tmp_path / "decisions.db") as opened:
        yield opened


def count_transactions(store: DecisionStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each write transaction the store opens, as the number of decisions then in the file."""
    seen: list[int] = []
    real = store.write_tick

    def counted(rows: Any, **kwargs: Any) -> list[int]:
        ids = real(rows, **kwargs)
        seen.append(len(rows))
        return ids

    monkeypatch.setattr(store, "write_tick", counted)
    return seen


def memory_rows(store: DecisionStore) -> list[tuple[str, str]]:
    return [tuple(row) for row in store.db.execute("SELECT key, updated_at FROM state")]


def test_a_tick_writes_its_rows_and_the_memory_once(
    store: DecisionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = count_transactions(store, monkeypatch)
    log = TickLog(store)
    run = store.start_run(
        mode="live", site_id=1, config_hash="c", rules_hash="r", version="t", started_at=NOW
    )
    tick = log.begin(run_id=run, mode="live", site_id=1, ts=NOW, memory_key="memory:1")
    for target in ("charging", "mode", "battery"):
        decision = Decision("excess_solar", SN, target, "hold", {}, "as wanted", INPUTS)  # type: ignore[arg-type]
        assert tick.add(decision, outcome="noop", error=None, commands=0, memory=None)
    ids = tick.finish({"version": 1, "chargers": {}})
    assert writes == [3]  # one transaction: three rows and the memory
    assert len(ids) == 3
    assert memory_rows(store) == [("memory:1", "2026-12-05T02:00:00Z")]
    assert store.db.execute("SELECT count(*) FROM decisions").fetchone()[0] == 3


def test_a_command_is_committed_at_once_with_its_memory(
    store: DecisionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = count_transactions(store, monkeypatch)
    log = TickLog(store)
    run = store.start_run(
        mode="live", site_id=1, config_hash="c", rules_hash="r", version="t", started_at=NOW
    )
    tick = log.begin(run_id=run, mode="live", site_id=1, ts=NOW, memory_key="memory:1")
    mode = Decision("green", SN, "mode", "hold", {}, "mode as wanted", INPUTS)
    start = Decision("green", SN, "charging", "start", {"amps": 16}, "go", INPUTS)
    tick.add(mode, outcome="noop", error=None, commands=0, memory=None)
    tick.add(start, outcome="applied", error=None, commands=1, memory={"after": "start"})
    assert writes == [2]  # the hold before it and the command, with the memory knowing it
    assert store.load_state("memory:1") == {"after": "start"}
    tick.finish({"after": "tick"})
    assert writes == [2, 0]  # the tick's final memory, no rows left
    assert store.load_state("memory:1") == {"after": "tick"}


def test_an_unchanged_tick_writes_nothing(
    store: DecisionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = TickLog(store)
    run = store.start_run(
        mode="live", site_id=1, config_hash="c", rules_hash="r", version="t", started_at=NOW
    )
    memory = {"version": 1, "chargers": {}}
    first = log.begin(run_id=run, mode="live", site_id=1, ts=NOW, memory_key="memory:1")
    first.add(hold(), outcome="noop", error=None, commands=0, memory=None)
    first.finish(memory)
    writes = count_transactions(store, monkeypatch)
    for tick in range(1, 30):  # 14.5 minutes of identical ticks
        ts = NOW + timedelta(seconds=30 * tick)
        again = log.begin(run_id=run, mode="live", site_id=1, ts=ts, memory_key="memory:1")
        assert not again.add(hold(), outcome="noop", error=None, commands=0, memory=None)
        assert again.finish(memory) == []
    assert writes == []
    beat = log.begin(run_id=run, mode="live", site_id=1, ts=NOW + HEARTBEAT, memory_key="memory:1")
    assert beat.add(hold(), outcome="noop", error=None, commands=0, memory=None)
    assert len(beat.finish(memory)) == 1
    assert writes == [1]


# --- the service over a run of identical ticks ---------------------------------------------


@pytest.fixture
async def midday(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    async for world in world_at(MIDDAY, tmp_path, monkeypatch):
        yield world


async def test_a_run_of_identical_ticks_records_changes_and_heartbeats(midday: World) -> None:
    service = midday.service(midday.config(HOLD_ONLY))
    ticks = 121  # an hour at 30 s, both ends included
    assert await service.run(max_ticks=ticks) == 0
    rows = midday.rows()
    # The first tick, then a heartbeat every 15 minutes: 5 rows for the hour, not 120.
    stamps = sorted({row["ts"] for row in rows})
    assert len(stamps) == 5
    assert [
        datetime.fromisoformat(s.replace("Z", "+00:00")) - midday_start(rows) for s in stamps
    ] == [timedelta(minutes=15 * k) for k in range(5)]
    assert {row["action"] for row in rows} == {"hold"}
    # The memory is one row per site, saved with the first tick (nothing changed after it).
    [(key, updated)] = midday.rows("SELECT key, updated_at FROM state WHERE key LIKE 'memory:%'")
    assert key.startswith("memory:")
    assert updated >= stamps[0]


def midday_start(rows: list[Any]) -> datetime:
    return min(datetime.fromisoformat(row["ts"].replace("Z", "+00:00")) for row in rows)


async def test_a_plug_in_is_recorded_at_the_tick_it_happens(midday: World) -> None:
    service = midday.service(midday.config(HOLD_ONLY))
    midday.cloud.update_charger(plugged_in=False)
    midday.clock.hooks[10] = lambda: midday.cloud.update_charger(plugged_in=True)
    assert await service.run(max_ticks=20) == 0
    rows = midday.rows()
    assert {r["target"] for r in rows} == {"mode"}
    plugged = [json.loads(r["inputs"])["charger"]["plugged_in"] for r in rows]
    assert plugged == [False, True]


# --- the size limit ------------------------------------------------------------------------


def test_the_size_limit_deletes_the_oldest_days_first(store: DecisionStore) -> None:
    run = store.start_run(
        mode="live", site_id=1, config_hash="c", rules_hash="r", version="t", started_at=NOW
    )
    padding = "x" * 2000
    for day in range(6):
        for n in range(40):
            decision = Decision("p", SN, "charging", "start", {}, f"{padding} {n}", INPUTS)
            store.record(
                decision,
                run_id=run,
                mode="live",
                site_id=1,
                ts=NOW + timedelta(days=day, minutes=n),
                outcome="applied",
                commands=1,
            )
    full = store.used_bytes()
    deleted = store.apply_size_limit(max_bytes=full // 2)
    assert store.used_bytes() <= full // 2
    days = [row[0] for row in store.db.execute("SELECT DISTINCT substr(ts, 1, 10) FROM decisions")]
    assert deleted == 40 * (6 - len(days))
    assert days == [(NOW + timedelta(days=d)).date().isoformat() for d in range(6 - len(days), 6)]
    # The newest day is kept whatever the limit.
    store.apply_size_limit(max_bytes=1)
    newest = (NOW + timedelta(days=5)).date().isoformat()
    assert [
        row[0] for row in store.db.execute("SELECT DISTINCT substr(ts, 1, 10) FROM decisions")
    ] == [newest]


def test_a_log_under_the_limit_is_left_alone(store: DecisionStore) -> None:
    run = store.start_run(
        mode="live", site_id=1, config_hash="c", rules_hash="r", version="t", started_at=NOW
    )
    store.record(hold(), run_id=run, mode="live", site_id=1, ts=NOW, outcome="noop")
    assert store.apply_size_limit(max_bytes=10_000_000) == 0
    assert store.db.execute("SELECT count(*) FROM decisions").fetchone()[0] == 1


def test_the_config_keys_have_sane_defaults() -> None:
    service = Config.model_validate({}).service
    assert service.heartbeat == HEARTBEAT
    assert service.max_log_mb == 500
    assert Config.model_validate({"service": {"heartbeat": "0s"}}).service.heartbeat == timedelta(0)


def test_the_next_hint_counts_without_its_numbers() -> None:
    """The engine's "what next" quotes the surplus of the moment; a new number is no news, a
    new plan is."""
    now = material({"next": "start when surplus >= 1.4 kW for 2 min (now 0.8 kW)"})
    later = material({"next": "start when surplus >= 1.4 kW for 2 min (now 0.3 kW)"})
    other = material({"next": "top-up 01:00-03:45"})
    assert now == later
    assert now != other
