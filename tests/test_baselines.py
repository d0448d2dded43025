"""The baselines on hand-made series with known answers, and "the optimum is never beaten"."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.limits import Limits
from optimizer.simulate.baselines import immediate, optimal
from optimizer.simulate.series import BUCKET_H, Session, SiteSeries, figures

T0 = datetime(2024, 6, 1, tzinfo=UTC)
BUCKET = timedelta(hours=BUCKET_H)
VOLTS = 240.0
LIMITS = Limits(6, 32, 1)
EMIN = 6 * VOLTS * BUCKET_H / 1000  # 0.36 kWh in a whole bucket
EMAX = 32 * VOLTS * BUCKET_H / 1000  # 1.92 kWh


def at(bucket: float) -> datetime:
    return T0 + bucket * BUCKET


def site(
    pv: Sequence[float],
    sessions: Sequence[tuple[float, float, float]],
    *,
    house: Sequence[float] | None = None,
    prices: Sequence[float] | None = None,
    missing: Sequence[bool] | None = None,
    export_price: float = 0.05,
) -> SiteSeries:
    """A series from per-bucket lists; sessions as (start bucket, end bucket, kWh)."""
    n = len(pv)
    return SiteSeries(
        starts=tuple(at(i) for i in range(n)),
        pv_kwh=tuple(pv),
        house_kwh=tuple(house) if house is not None else (0.0,) * n,
        missing=tuple(missing) if missing is not None else (False,) * n,
        import_price=tuple(prices) if prices is not None else (0.30,) * n,
        export_price=export_price,
        timezone="UTC",
        sessions=tuple(Session(at(a), at(b), kwh) for a, b, kwh in sessions),
    )


def both(series: SiteSeries) -> tuple[tuple[tuple[float, ...], int], tuple[tuple[float, ...], int]]:
    return immediate(series, LIMITS, VOLTS), optimal(series, LIMITS, VOLTS)


def test_flat_surplus_covering_the_need_is_all_solar_for_the_optimum() -> None:
    series = site([2.0] * 8, [(0, 8, 6.0)], house=[0.5] * 8)
    (now_ev, now_cmds), (best_ev, best_cmds) = both(series)
    now, best = figures(series, now_ev, commands=now_cmds), figures(series, best_ev, commands=0)
    assert best.ev_energy_kwh == pytest.approx(6.0)
    assert best.ev_solar_kwh == pytest.approx(6.0)
    assert best.solar_share == pytest.approx(1.0)
    # Full power overshoots the 1.5 kWh surplus in each of its first three buckets.
    assert now.ev_solar_kwh == pytest.approx(3 * 1.5 + (6.0 - 3 * EMAX))
    assert now_cmds == 2
    assert best_cmds >= 2


def test_late_sun_the_optimum_waits_while_immediate_charges_from_the_grid() -> None:
    pv = [0.0] * 8 + [2.0] * 8
    series = site(pv, [(0, 16, 4.0)])
    (now_ev, _), (best_ev, _) = both(series)
    assert now_ev[:3] == pytest.approx([EMAX, EMAX, 4.0 - 2 * EMAX])
    assert figures(series, now_ev, commands=2).ev_solar_kwh == pytest.approx(0.0)
    assert sum(best_ev[:8]) == pytest.approx(0.0, abs=1e-9)
    assert figures(series, best_ev, commands=0).ev_solar_kwh == pytest.approx(4.0)


def test_session_longer_than_the_sun_takes_all_the_surplus_and_the_rest_from_the_grid() -> None:
    pv = [0.0] * 4 + [1.0] * 4 + [0.0] * 16
    series = site(pv, [(0, 24, 10.0)])
    (_, _), (best_ev, _) = both(series)
    result = figures(series, best_ev, commands=0)
    assert result.ev_energy_kwh == pytest.approx(10.0)
    assert result.unmet_kwh == pytest.approx(0.0, abs=1e-9)
    assert result.ev_solar_kwh == pytest.approx(4.0)


def test_a_surplus_below_the_minimum_power_cannot_be_used_alone() -> None:
    # 0.2 kWh of surplus per bucket is below the 6 A (0.36 kWh) minimum. Each charging bucket
    # takes >= 0.36 kWh (0.2 solar), except the one where the car gets full: five at the
    # minimum-ish plus a partial last bucket is the most buckets 2 kWh can spread over.
    series = site([0.2] * 8, [(0, 8, 2.0)])
    best_ev, _ = optimal(series, LIMITS, VOLTS)
    charged = [e for e in best_ev if e > 1e-9]
    assert all(e >= EMIN - 1e-9 for e in charged[:-1])
    last = max(i for i, e in enumerate(best_ev) if e > 1e-9)
    assert all(e <= 1e-9 for e in best_ev[last + 1 :])
    assert len(charged) == 6
    assert figures(series, best_ev, commands=0).ev_solar_kwh == pytest.approx(1.2)


def test_minimum_power_with_an_unfillable_need_has_no_partial_bucket() -> None:
    # The car is never full (it wants more than the window gives at full power), so every
    # charging bucket is at >= 6 A, even where only 0.1 kWh of surplus is on offer.
    series = site([0.1] * 4, [(0, 4, 50.0)])
    best_ev, _ = optimal(series, LIMITS, VOLTS)
    assert best_ev == pytest.approx([EMAX] * 4)


def test_unmet_when_the_window_is_too_short_both_deliver_the_maximum() -> None:
    series = site([0.0] * 4, [(1, 3, 10.0)])
    (now_ev, now_cmds), (best_ev, best_cmds) = both(series)
    for ev in (now_ev, best_ev):
        assert ev == pytest.approx([0.0, EMAX, EMAX, 0.0])
        assert figures(series, ev, commands=0).unmet_kwh == pytest.approx(10.0 - 2 * EMAX)
    assert now_cmds == best_cmds == 2


def test_partial_buckets_at_plug_in_and_unplug_scale_the_power() -> None:
    series = site([0.0] * 4, [(0.5, 2.25, 10.0)])
    (now_ev, _), (best_ev, _) = both(series)
    expected = [EMAX * 0.5, EMAX, EMAX * 0.25, 0.0]
    assert now_ev == pytest.approx(expected)
    assert best_ev == pytest.approx(expected)


def test_without_sun_the_optimum_charges_in_the_cheapest_buckets() -> None:
    prices = [0.40, 0.40, 0.10, 0.10, 0.10, 0.40, 0.40, 0.40]
    series = site([0.0] * 8, [(0, 8, 3.0)], prices=prices)
    (now_ev, _), (best_ev, best_cmds) = both(series)
    assert sum(best_ev[i] for i in (0, 1, 5, 6, 7)) == pytest.approx(0.0, abs=1e-9)
    best = figures(series, best_ev, commands=best_cmds)
    assert best.cost == pytest.approx(0.30)
    assert best.cost < figures(series, now_ev, commands=2).cost
    # One block: a start, a stop and at most one level change (full power, then the rest).
    assert 2 <= best_cmds <= 3


def test_solar_comes_strictly_before_cost() -> None:
    # Grid is free at night and export pays well, so the cheapest schedule is all grid; the
    # optimum still puts every solar kWh it can into the car (most solar first, cost second).
    pv = [0.0] * 4 + [1.0] * 4
    series = site(pv, [(0, 8, 4.0)], prices=[0.0] * 8, export_price=0.50)
    best_ev, _ = optimal(series, LIMITS, VOLTS)
    best = figures(series, best_ev, commands=0)
    assert best.ev_solar_kwh == pytest.approx(4.0)
    grid_only = [1.0] * 4 + [0.0] * 4
    assert figures(series, grid_only, commands=0).cost < best.cost


def test_among_equal_solar_the_optimum_is_cheapest() -> None:
    # 1 kWh of sun, 3 kWh needed: the other 2 kWh go to the cheap buckets, not the dear ones.
    pv = [0.0, 0.0, 1.0, 0.0, 0.0]
    prices = [0.50, 0.10, 0.30, 0.10, 0.50]
    series = site(pv, [(0, 5, 3.0)], prices=prices)
    best_ev, _ = optimal(series, LIMITS, VOLTS)
    best = figures(series, best_ev, commands=0)
    assert best.ev_solar_kwh == pytest.approx(1.0)
    assert best_ev[0] + best_ev[4] == pytest.approx(0.0, abs=1e-9)
    # Site cost: 2 kWh imported at 0.10; the sun went into the car, so nothing was exported.
    assert best.cost == pytest.approx(2 * 0.10)


def test_missing_buckets_offer_no_surplus() -> None:
    pv = [3.0, 3.0, 1.0, 1.0]
    series = site(pv, [(0, 4, 2.0)], missing=[True, True, False, False])
    best_ev, _ = optimal(series, LIMITS, VOLTS)
    assert best_ev[2] + best_ev[3] == pytest.approx(2.0)


def test_sessions_sharing_a_bucket_share_its_surplus() -> None:
    # One car leaves and the next arrives within bucket 2, the only sunny one.
    pv = [0.0, 0.0, 1.0, 0.0, 0.0]
    series = site(pv, [(0, 2.5, 0.5), (2.5, 5, 0.5)])
    (_, now_cmds), (best_ev, best_cmds) = both(series)
    best = figures(series, best_ev, commands=best_cmds)
    assert best.ev_energy_kwh == pytest.approx(1.0)
    assert best.ev_solar_kwh == pytest.approx(min(1.0, 2 * 0.5 * EMAX))
    assert now_cmds == 4
    assert best_cmds == 4


def test_no_feasible_level_charges_nothing() -> None:
    series = site([1.0] * 4, [(0, 4, 2.0)])
    for baseline in (immediate, optimal):
        ev, commands = baseline(series, Limits(6, 5, 1), VOLTS)
        assert ev == (0.0,) * 4
        assert commands == 0


def test_empty_session_sends_no_command() -> None:
    series = site([1.0] * 4, [(0, 4, 0.0)])
    (now_ev, now_cmds), (best_ev, best_cmds) = both(series)
    assert sum(now_ev) == sum(best_ev) == 0.0
    assert now_cmds == best_cmds == 0


def synthetic_year(days: int = 250, seed: int = 7) -> SiteSeries:
    """A year of sessions of 2-15 h, one a day, with broken sun and a night tariff.

    Shared with `make bench` (benchmarks/run.py), which times the optimum on it: a unit test
    asserts what the solve gives, never how long it took (a loaded machine is no measure)."""
    rng = random.Random(seed)
    pv: list[float] = []
    prices: list[float] = []
    for _ in range(days):
        for q in range(96):
            hour = q / 4
            sun = max(0.0, 1 - abs(hour - 13) / 6) * rng.uniform(0.2, 1.0) * 1.5
            pv.append(sun)
            prices.append(0.15 if hour < 7 or hour >= 23 else 0.35)
    sessions = []
    for day in range(days):
        begin = day * 96 + rng.choice([8 * 4, 17 * 4 + 2])
        length = rng.randint(8, 60)
        sessions.append((begin + 0.3, begin + length + 0.6, rng.uniform(3.0, 25.0)))
    return site(pv, sessions, house=[0.2] * len(pv), prices=prices)


@pytest.mark.parametrize(
    "days",
    [
        30,  # a month: the same program in every shape, a ninth of the solves
        pytest.param(250, marks=pytest.mark.soak),  # a working year: `make soak`
    ],
)
def test_many_days_of_sessions_solve_to_sane_figures(days: int) -> None:
    """The days solve: the same energy as charging at once (each session's need, or its
    window's maximum), at least its solar and never more than the surplus, every bucket within
    full power; how fast is `make bench`'s figure ("the optimal baseline alone, synthetic
    year"), never a unit-test assertion (a loaded machine is no measure)."""
    series = synthetic_year(days)
    best_ev, best_commands = optimal(series, LIMITS, VOLTS)
    now_ev, _ = immediate(series, LIMITS, VOLTS)
    now, best = figures(series, now_ev, commands=0), figures(series, best_ev, commands=0)
    assert best.ev_solar_kwh >= now.ev_solar_kwh - 1e-6
    assert best.unmet_kwh == pytest.approx(now.unmet_kwh, abs=1e-6)
    surplus = sum(max(p - h, 0.0) for p, h in zip(series.pv_kwh, series.house_kwh, strict=True))
    assert best.ev_solar_kwh <= surplus + 1e-6
    assert sum(best_ev) == pytest.approx(sum(now_ev), abs=1e-5)
    charged = sum(1 for s in series.sessions if s.energy_kwh > 0)
    assert best_commands >= 2 * charged
    assert all(0.0 <= e <= LIMITS.high * VOLTS * BUCKET_H / 1000 + 1e-9 for e in best_ev)


# --- the optimum is never beaten -------------------------------------------------------------


def random_schedule(series: SiteSeries, rng: random.Random, limits: Limits) -> list[float]:
    """Any schedule the model allows: per bucket 0 or min..high, the car stops when full."""
    per_amp = VOLTS * BUCKET_H / 1000
    ev = [0.0] * len(series.starts)
    for session in series.sessions:
        left = session.energy_kwh
        for index in series.window(session):
            if left <= 1e-12:
                break
            share = series.fraction(index, session)
            if rng.random() < 0.4:
                continue
            amps = rng.uniform(limits.low, limits.high)
            give = min(amps * per_amp * share, left)
            ev[index] += give
            left -= give
    return ev


@st.composite
def small_series(draw: st.DrawFn) -> SiteSeries:
    n = draw(st.integers(2, 10))
    energy = st.floats(0.0, 3.0, allow_nan=False)
    pv = draw(st.lists(energy, min_size=n, max_size=n))
    house = draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n))
    prices = draw(st.lists(st.floats(0.0, 0.6), min_size=n, max_size=n))
    missing = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    cuts = sorted(draw(st.lists(st.floats(0.0, float(n)), min_size=2, max_size=4, unique=True)))
    sessions = []
    for a, b in zip(cuts[::2], cuts[1::2], strict=False):
        if b - a > 0.05:
            sessions.append((a, b, draw(st.floats(0.0, 12.0))))
    return site(
        pv,
        sessions,
        house=house,
        prices=prices,
        missing=missing,
        export_price=draw(st.floats(0.0, 0.3)),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    small_series(), st.integers(0, 2**32 - 1), st.sampled_from([Limits(6, 32, 1), Limits(6, 16, 2)])
)
def test_the_optimum_is_never_beaten(series: SiteSeries, seed: int, limits: Limits) -> None:
    best_ev, _ = optimal(series, limits, VOLTS)
    now_ev, _ = immediate(series, limits, VOLTS)
    best = figures(series, best_ev, commands=0)
    now = figures(series, now_ev, commands=0)
    assert best.ev_solar_kwh >= now.ev_solar_kwh - 1e-6
    # Each session gets min(its energy, its window at full power): the same as immediate.
    # (Summed over the series: a bucket two sessions touch holds both of their energy, so
    # figures' per-window unmet would depend on how that bucket is split between them.)
    # abs 1e-5: the solver's feasibility tolerance; a 1e-6 kWh session may be left to it.
    assert sum(best_ev) == pytest.approx(sum(now_ev), abs=1e-5)
    rng = random.Random(seed)
    for _ in range(5):
        other = figures(series, random_schedule(series, rng, limits), commands=0)
        assert best.ev_solar_kwh >= other.ev_solar_kwh - 1e-6


def test_solver_chatter_never_reaches_stdout(capfd: pytest.CaptureFixture[str]) -> None:
    """`simulate --json` must print JSON only, whatever the C++ solver writes."""
    from optimizer.simulate.baselines import quiet_stdout  # noqa: PLC0415

    with quiet_stdout():
        os.write(1, b"HighsMipSolverData::transformNewIntegerFeasibleSolution\n")
    print("after")
    assert capfd.readouterr().out == "after\n"
