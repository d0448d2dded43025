"""One-minute replay: the two lag models, the minute-level variability method, rows to series."""

from __future__ import annotations

import importlib.util
import random
import sys
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.config import Config
from optimizer.decisions.minutes import MinuteRow
from optimizer.engine.decision import Decision
from optimizer.engine.loader import load_rules
from optimizer.limits import Limits
from optimizer.simulate.minutes import (
    MinuteSeries,
    Source,
    minute_figures,
    replay_minutes,
    series_from_rows,
)
from optimizer.simulate.sample.minutes import clear_sky_bounds, minute_series
from optimizer.simulate.series import BUCKET, Session, SiteSeries
from tests.records import same_as_reference, write_record

T0 = datetime(2024, 1, 15, tzinfo=UTC)
RULES = Path(__file__).parents[1] / "rules" / "excess-solar.yaml"
LIMITS = Limits(6, 32, 1)
RECORDS = Path(__file__).parent / "fixtures" / "minute_replay"
DAY = 1440


def step_day(*, up: int = 10 * 60, down: int = 14 * 60, pv: float = 6000.0) -> MinuteSeries:
    """PV steps from nothing to ``pv`` at ``up`` and back at ``down`` (minutes); house 500 W;
    a car plugged in from 08:00 to 18:00 that would take 40 kWh."""
    return MinuteSeries(
        start=T0,
        pv_w=tuple(pv if up <= m < down else 0.0 for m in range(DAY)),
        house_w=(500.0,) * DAY,
        missing=(False,) * DAY,
        sessions=(Session(T0 + timedelta(hours=8), T0 + timedelta(hours=18), 40.0),),
        timezone="UTC",
    )


def run(series: MinuteSeries, source: Source, tick: int = 1) -> tuple[float, ...]:
    policies = load_rules([RULES], tariffs=None).enabled
    result = replay_minutes(
        series,
        policies,
        source=source,
        config=Config(),
        limits=LIMITS,
        voltage_v=230.0,
        tick=tick,
    )
    return result.ev_wh


@pytest.mark.parametrize("tick", [1, 5])
def test_the_gateway_follows_a_step_within_a_tick_and_the_cloud_a_bucket_later(
    tick: int,
) -> None:
    series = step_day()
    gateway, cloud = run(series, "gateway", tick), run(series, "lifetime_energy", tick)
    first_gateway = next(m for m, wh in enumerate(gateway) if wh > 0)
    first_cloud = next(m for m, wh in enumerate(cloud) if wh > 0)
    # The gateway sees the step a minute later and starts after the policy's 2-minute delay;
    # the cloud sees it only once the 10:00-10:15 bucket is complete.
    assert 600 < first_gateway <= 600 + 3 + 2 * tick
    assert first_cloud >= 615
    last_gateway = max(m for m, wh in enumerate(gateway) if wh > 0)
    last_cloud = max(m for m, wh in enumerate(cloud) if wh > 0)
    assert last_gateway < last_cloud  # the cloud keeps charging on the sun that has gone
    by = {
        name: minute_figures(series, ev, source=name, commands=0, decisions=0)
        for name, ev in (("gateway", gateway), ("lifetime_energy", cloud))
    }
    assert by["gateway"].ev_solar_kwh >= by["lifetime_energy"].ev_solar_kwh
    assert by["gateway"].ev_grid_kwh < by["lifetime_energy"].ev_grid_kwh


def test_the_car_draws_what_the_command_says_and_stops_when_unplugged() -> None:
    series = step_day()
    for source in ("gateway", "lifetime_energy"):
        ev = run(series, source)
        assert all(wh == 0 for wh in ev[: 8 * 60])  # not plugged in
        assert all(wh == 0 for wh in ev[18 * 60 :])
        assert max(ev) <= 32 * 230 / 60 + 1e-9  # never above the charger's 32 A


def test_gaps_are_no_reading_for_the_gateway_and_count_in_no_figure() -> None:
    base = step_day()
    gap = [600 <= m < 700 for m in range(DAY)]
    series = MinuteSeries(
        start=T0,
        pv_w=tuple(0.0 if g else p for p, g in zip(base.pv_w, gap, strict=True)),
        house_w=tuple(0.0 if g else h for h, g in zip(base.house_w, gap, strict=True)),
        missing=tuple(gap),
        sessions=base.sessions,
        timezone="UTC",
    )
    ev = run(series, "gateway")
    assert all(wh == 0 for wh in ev[600:700])  # an unknown surplus starts nothing
    figures = minute_figures(series, ev, source="gateway", commands=0, decisions=0)
    assert figures.missing_minutes == 100
    buckets = series.buckets(Config().tariffs)
    assert [i for i, m in enumerate(buckets.missing) if m] == list(range(40, 47))


def test_a_series_must_start_on_a_quarter_hour() -> None:
    with pytest.raises(ValueError, match="quarter-hour"):
        MinuteSeries(T0 + timedelta(minutes=7), (0.0,), (0.0,), (False,), (), "UTC")


def test_recorded_rows_become_a_series_with_gaps_and_plug_in_windows() -> None:
    def row(minute: int, **values: int | None) -> MinuteRow:
        fields: dict[str, int | None] = {"pv_w": 3000, "house_w": 400, "evse_w": 0, "plugged": 0}
        fields.update(values)
        return MinuteRow(
            site_id=1,
            minute=T0 + timedelta(minutes=minute),
            pv_w=fields["pv_w"],
            house_w=fields["house_w"],
            evse_w=fields["evse_w"],
            battery_charge_w=None,
            battery_discharge_w=None,
            plugged=fields["plugged"],
            chargers=None,
            source="gateway",
            age_s=3,
        )

    rows = [row(m) for m in range(3, 10)]
    rows += [row(m, plugged=1, evse_w=1380) for m in range(10, 20)]
    rows += [row(20, plugged=None, pv_w=None, evse_w=1380)]  # a status outage, no PV reading
    rows += [row(m, plugged=1, evse_w=1380) for m in range(21, 25)]
    rows += [row(m) for m in range(26, 30)]  # minute 25 has no row at all
    series = series_from_rows(rows, timezone="UTC")
    assert series.start == T0  # padded back to the quarter-hour
    assert len(series) == 30
    assert [m for m, gap in enumerate(series.missing) if gap] == [0, 1, 2, 20, 25]
    (session,) = series.sessions
    assert session.start == T0 + timedelta(minutes=10)
    assert session.end == T0 + timedelta(minutes=26)  # unplugged at minute 26's row
    assert session.energy_kwh == pytest.approx(15 * 1380 / 60 / 1000)


# --- minute-level variability ----------------------------------------------------------------


def bucket_series(pv_wh: list[float | None], house_wh: list[float]) -> SiteSeries:
    n = len(pv_wh)
    return SiteSeries(
        starts=tuple(T0 + i * BUCKET for i in range(n)),
        pv_kwh=tuple((p or 0.0) / 1000 for p in pv_wh),
        house_kwh=tuple(h / 1000 for h in house_wh),
        missing=tuple(p is None for p in pv_wh),
        import_price=(0.3,) * n,
        export_price=0.05,
        timezone="UTC",
        sessions=(),
    )


energies = st.lists(
    st.one_of(st.none(), st.floats(min_value=0, max_value=2000, allow_nan=False)),
    min_size=96,
    max_size=3 * 96,
)


@settings(max_examples=40, deadline=None)
@given(pv=energies, seed=st.integers(0, 2**32), data=st.data())
def test_each_bucket_keeps_its_energy_to_the_wh_and_no_minute_breaks_the_bounds(
    pv: list[float | None], seed: int, data: st.DataObject
) -> None:
    house = data.draw(
        st.lists(
            st.floats(min_value=0, max_value=3000, allow_nan=False),
            min_size=len(pv),
            max_size=len(pv),
        )
    )
    buckets = bucket_series(pv, house)
    minutes = minute_series(buckets, seed=seed)
    to_w = 4.0  # Wh in a quarter-hour -> mean W
    bounds = clear_sky_bounds([(p or 0.0) * to_w for p in pv], buckets.missing, 15)
    for index, wh in enumerate(pv):
        cut = slice(index * 15, index * 15 + 15)
        if wh is None:
            assert all(minutes.missing[cut])
            continue
        assert not any(minutes.missing[cut])
        assert abs(sum(minutes.pv_w[cut]) / 60 - wh) < 1.0
        assert abs(sum(minutes.house_w[cut]) / 60 - house[index]) < 1.0
        assert min(minutes.pv_w[cut]) >= 0
        assert min(minutes.house_w[cut]) >= 0
        assert max(minutes.pv_w[cut]) <= max(bounds[index], wh * to_w) + 1e-6


def test_the_same_seed_gives_the_same_minutes_and_another_seed_others() -> None:
    rng = random.Random(7)
    pv: list[float | None] = [rng.uniform(0, 1500) for _ in range(192)]
    house = [rng.uniform(50, 800) for _ in range(192)]
    buckets = bucket_series(pv, house)
    assert minute_series(buckets, seed=3) == minute_series(buckets, seed=3)
    assert minute_series(buckets, seed=3).pv_w != minute_series(buckets, seed=4).pv_w


def test_a_cloudy_bucket_has_cloud_edges_and_a_clear_one_is_flat() -> None:
    clear_day = [1500.0] * 96
    cloudy = [1500.0] * 96 + [600.0] * 96  # the second day at 40 % of the first
    buckets = bucket_series(list(clear_day) + cloudy[96:], [200.0] * 192)
    minutes = minute_series(buckets, seed=1)
    first = minutes.pv_w[:15]
    assert max(first) == pytest.approx(min(first))
    second_day = minutes.pv_w[96 * 15 :]
    assert max(second_day) > 2 * min(second_day)  # clear and shaded minutes
    assert max(second_day) <= 6000.0 + 1e-6  # never above the clear day's 1.5 kWh a bucket


def surplus_bench() -> Any:
    """benchmarks/surplus.py as a module (its sample made minute-level, its rules)."""
    bench = Path(__file__).parents[1] / "benchmarks"
    sys.path.insert(0, str(bench))
    spec = importlib.util.spec_from_file_location("bench_surplus", bench / "surplus.py")
    assert spec is not None
    assert spec.loader is not None
    surplus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(surplus)
    return surplus


@cache
def sample_minutes(days: int) -> tuple[Any, Config]:
    """The sample's first ``days`` of June made minute-level (benchmarks/surplus.py), built once
    per process (0.6 s of CPU): the replays only read the series and the config."""
    found: tuple[Any, Config] = surplus_bench().sample_minutes(days)
    return found


def _minute_run(source: Source, days: int, *, skip: bool) -> tuple[Any, ...]:
    """The figures, the energy and the decisions (minute, policy, target, action, params) of
    the sample's first ``days`` of June at tick 1."""
    series, config = sample_minutes(days)
    log: list[tuple[int, Decision]] = []
    result = replay_minutes(
        series,
        surplus_bench().policies(),
        source=source,
        config=config,
        limits=LIMITS,
        voltage_v=240.0,
        tick=1,
        skip_idle=skip,
        log=log,
    )
    return (
        result.figures,
        result.ev_wh,
        [(m, d.policy, d.target, d.action, d.params) for m, d in log],
    )


def _skip_record(source: Source, days: int) -> Path:
    """The fingerprint of the run without the skip (``python -m tests.test_minute_replay``)."""
    return RECORDS / f"no-skip-{source}-{days}.sha256"


@pytest.mark.parametrize("source", ["gateway", "lifetime_energy"])
@pytest.mark.parametrize(
    "days",
    [
        4,  # from 1 June: four sessions, each started, its amps set and stopped or unplugged
        pytest.param(30, marks=pytest.mark.soak),  # June: 5x the CPU, `make soak`
    ],
)
def test_skipping_idle_ticks_changes_no_decision_and_no_figure(source: Source, days: int) -> None:
    """Days of the bundled sample at tick 1, with and without the idle skip: the same
    decisions (minute, policy, target, action, params) and the same figures and energy. The
    run without the skip (every minute evaluated, twice the CPU) is as recorded: it runs only
    where the record differs, and then decides (tests/records.py)."""
    skipped = _minute_run(source, days, skip=True)
    # The window is short: it must still hold sessions the policies acted on.
    assert {"start", "set_amps", "stop"} <= {action for _, _, _, action, _ in skipped[2]}
    plain = partial(_minute_run, source, days, skip=False)
    rerecord = "python -m tests.test_minute_replay"
    same_as_reference(skipped, _skip_record(source, days), plain, rerecord)


if __name__ == "__main__":
    for recorded_days in (4, 30):  # `make test`'s and `make soak`'s
        for recorded_source in ("gateway", "lifetime_energy"):
            found = _minute_run(recorded_source, recorded_days, skip=False)
            write_record(_skip_record(recorded_source, recorded_days), found)
