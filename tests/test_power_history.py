"""The one-minute power history: what a tick records, gaps as NULL, retention, the service."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from optimizer.config import load_config
from optimizer.decisions.minutes import FRESH_S, PowerHistory, minute_of, minute_row
from optimizer.decisions.store import DecisionStore
from optimizer.engine.snapshot import ChargerView, Snapshot, Surplus
from tests.test_service import HOLD_ONLY, MIDDAY, World, world_at

NOW = datetime(2025, 1, 15, 2, 0, 20, tzinfo=UTC)
SITE = 42


def charger(*, sn: str = "A1", plugged: bool = True, amps: int | None = 16) -> ChargerView:
    return ChargerView(
        sn=sn,
        connected=True,
        plugged_in=plugged,
        charging=amps is not None,
        faulted=False,
        min_amps=6,
        max_amps=32,
        amps=amps,
        voltage_v=230.0,
    )


def snap(surplus: Surplus, *, now: datetime = NOW, stale: float | None = None) -> Snapshot:
    return Snapshot(
        now=now,
        timezone="UTC",
        chargers=(charger(), charger(sn="B2", plugged=False, amps=None)),
        surplus=surplus,
        stale_status_s=stale,
    )


def gateway_like(age_s: float, pv: float = 4321.4, house: float = 987.6) -> Surplus:
    """A fresh whole-site reading, as a local gateway gives one (source name aside)."""
    return Surplus(
        pv - house,
        "latest_power",
        pv_w=pv,
        house_w=house,
        evse_w=3680.0,
        battery_charge_w=500.2,
        battery_discharge_w=0.0,
        measured_at=NOW - timedelta(seconds=age_s),
        age_s=age_s,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DecisionStore]:
    with DecisionStore(tmp_path / "decisions.db") as opened:
        yield opened


def test_a_fresh_reading_is_stored_in_whole_watts_in_its_minute() -> None:
    row = minute_row(snap(gateway_like(5)), site_id=SITE)
    assert row.minute == datetime(2025, 1, 15, 2, 0, tzinfo=UTC)
    assert (row.pv_w, row.house_w, row.evse_w) == (4321, 988, 3680)
    assert (row.battery_charge_w, row.battery_discharge_w) == (500, 0)
    assert row.plugged == 1
    assert row.chargers == {"A1": 3680, "B2": 0}
    assert (row.source, row.age_s) == ("latest_power", 5)


def test_a_cloud_bucket_is_not_a_reading_of_this_minute() -> None:
    """A 15-minute bucket is an average of another time, even just after it ended."""
    bucket = Surplus(2000.0, "lifetime_energy", pv_w=3000.0, house_w=1000.0, evse_w=0.0, age_s=30.0)
    row = minute_row(snap(bucket), site_id=SITE)
    assert (row.pv_w, row.house_w, row.battery_charge_w) == (None, None, None)
    # The chargers' status is read every tick: their draw and plug state are this minute's.
    assert (row.evse_w, row.plugged) == (3680, 1)
    assert (row.source, row.age_s) == ("lifetime_energy", 30)


def test_a_power_sample_keeps_pv_and_drops_the_old_house_load() -> None:
    sample = Surplus(
        1000.0,
        "latest_power",
        pv_w=1800.0,
        house_w=800.0,
        age_s=420.0,
        pv_age_s=40.0,
        house_age_s=420.0,
    )
    row = minute_row(snap(sample), site_id=SITE)
    assert (row.pv_w, row.house_w) == (1800, None)


def test_an_old_status_during_an_outage_records_no_charger_figures() -> None:
    row = minute_row(snap(gateway_like(5), stale=300.0), site_id=SITE)
    assert (row.plugged, row.chargers) == (None, None)
    assert row.evse_w == 3680  # the fresh whole-site reading still has it


def test_broken_and_negative_readings_are_not_stored_as_values() -> None:
    broken = Surplus(None, "latest_power", pv_w=float("nan"), house_w=-40.0, age_s=3.0)
    row = minute_row(snap(broken), site_id=SITE)
    assert row.pv_w is None
    assert row.house_w == 0  # a meter's small negative reading is no load, never below 0
    assert minute_row(snap(gateway_like(FRESH_S + 1)), site_id=SITE).pv_w is None


def test_a_second_tick_fills_in_its_minute_and_never_erases(store: DecisionStore) -> None:
    history = PowerHistory(store)
    old = Surplus(None, "lifetime_energy", pv_w=3000.0, house_w=900.0, age_s=600.0)
    history.record(minute_row(snap(old), site_id=SITE))
    first = list(history.rows())
    assert [(r.pv_w, r.house_w) for r in first] == [(None, None)]
    later = NOW + timedelta(seconds=30)
    history.record(minute_row(snap(gateway_like(4), now=later), site_id=SITE))
    history.record(minute_row(snap(old, now=later + timedelta(seconds=5)), site_id=SITE))
    (row,) = history.rows()
    assert (row.pv_w, row.house_w, row.source, row.age_s) == (4321, 988, "latest_power", 4)
    next_minute = NOW + timedelta(minutes=1)
    history.record(minute_row(snap(gateway_like(3, pv=100.0), now=next_minute), site_id=SITE))
    history.record(minute_row(snap(gateway_like(3), now=next_minute), site_id=SITE + 1))
    assert [r.pv_w for r in history.rows(site_id=SITE)] == [4321, 100]
    assert history.count() == 3
    assert history.sites() == [SITE, SITE + 1]


def test_rows_between_two_times(store: DecisionStore) -> None:
    history = PowerHistory(store)
    for minute in range(10):
        at = NOW + timedelta(minutes=minute)
        history.record(minute_row(snap(gateway_like(2, pv=minute), now=at), site_id=SITE))
    start = NOW + timedelta(minutes=3)
    picked = list(history.rows(site_id=SITE, start=start, end=start + timedelta(minutes=4)))
    assert [r.pv_w for r in picked] == [3, 4, 5, 6]


def test_retention_by_age_and_by_size(store: DecisionStore) -> None:
    history = PowerHistory(store)
    for day in range(5):
        for minute in range(0, 1440, 10):
            at = NOW + timedelta(days=day, minutes=minute)
            history.record(minute_row(snap(gateway_like(2), now=at), site_id=SITE))
    assert history.count() == 5 * 144
    now = NOW + timedelta(days=5)
    deleted = history.apply_retention(days=3, now=now)
    assert deleted > 0
    assert min(r.minute for r in history.rows()) == minute_of(now - timedelta(days=3))
    one_day = history.used_bytes() / 3
    deleted = history.apply_size_limit(max_bytes=int(one_day * 1.5))
    assert deleted > 0
    days = {r.minute.date() for r in history.rows()}
    assert max(days) == (NOW + timedelta(days=4, minutes=1430)).date()  # the newest day stays
    assert history.used_bytes() <= one_day * 1.5 or len(days) == 1


# --- the service ----------------------------------------------------------------------------


@pytest.fixture
async def midday(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    async for world in world_at(MIDDAY, tmp_path, monkeypatch):
        yield world


async def test_the_service_records_one_row_per_minute_with_gaps_as_null(midday: World) -> None:
    service = midday.service(midday.config(HOLD_ONLY))
    assert await service.run(max_ticks=20) == 0  # ten minutes at a 30 s poll
    with sqlite3.connect(midday.database) as db:
        rows = db.execute(
            "SELECT site_id, minute, pv_w, house_w, evse_w, plugged, source FROM power_minutes"
            " ORDER BY minute"
        ).fetchall()
    minutes = [datetime.fromisoformat(r[1].replace("Z", "+00:00")) for r in rows]
    assert minutes == [MIDDAY + timedelta(minutes=n) for n in range(10)]
    assert {r[0] for r in rows} == {service.site_id}
    # The default source is the cloud's 15-minute bucket: no fresh PV or house reading, so
    # those are gaps; the charger's status is read every tick.
    assert {(r[2], r[3]) for r in rows} == {(None, None)}
    assert {r[5] for r in rows} == {1}
    assert {r[6] for r in rows} == {"lifetime_energy"}


async def test_recording_can_be_switched_off(midday: World) -> None:
    service = midday.service(midday.config(HOLD_ONLY, record_minutes="false"))
    assert await service.run(max_ticks=4) == 0
    with sqlite3.connect(midday.database) as db:
        assert db.execute("SELECT count(*) FROM power_minutes").fetchone()[0] == 0


def test_the_retention_keys_load(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("service:\n  history_retention_days: 30\n  max_history_mb: 5\n")
    service = load_config(path).service
    assert (service.history_retention_days, service.max_history_mb) == (30, 5)
    assert service.record_minutes is True
