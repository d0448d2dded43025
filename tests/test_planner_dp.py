"""The planner's ``method: dp`` (optimizer/planner/dp.py) and the traced programme under it.

The traced programme (the one the planner reads its levels from) must find what the ceiling's
untraced one finds, and the schedule it rebuilds must, replayed by the replay's rules, reach
that value; the rule key validates. Issue 15's property over small synthetic histories (never
above the optimum, every feasible plan met) is tests/test_planner_replay.py's, for both
methods.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from optimizer.engine.rules import Policy, SolarPlan
from optimizer.planner.dp import (
    FAR_FLOOR,
    HEDGE_KWH,
    OVER_KWH,
    SESSION_BUDGET,
    _best,
    _penalty,
    _surplus,
    commands_left,
    solve,
)
from optimizer.planner.outlook import STEP_S, SurplusOutlook
from optimizer.planner.problem import PRICE_SPREAD, PlanInput
from optimizer.planner.slots import cut
from optimizer.simulate.command_limited import (
    Forward,
    Options,
    Programme,
    best_by_commands,
    forward,
    schedule,
)
from tests.test_command_limited import programmes, replayed


@settings(max_examples=120, deadline=None)
@given(programmes(), st.integers(0, 4), st.integers(0, 3))
def test_the_traced_programme_finds_the_same_and_its_schedule_reaches_it(
    prog: Programme, most: int, start: int
) -> None:
    width = len(prog.energy[0])
    start = min(start, width)
    if start == 0:
        untraced = best_by_commands(prog, most)
        traced = forward(prog, most, Options(trace=True))
        assert traced is not None
        accumulated = [float(x) for x in np.maximum.accumulate(traced.done)]
        assert accumulated == pytest.approx(untraced, abs=1e-6)
    found = forward(prog, most, Options(start=start, trace=True))
    assert found is not None
    for commands, value in enumerate(found.done):
        if not math.isfinite(value):
            assert found.filled[commands] is None
            continue
        levels = schedule(found, commands)
        solar, sent, delivered = replayed(prog, levels, start)
        assert sent == commands
        assert delivered >= prog.need - 1e-6
        assert solar == pytest.approx(float(value), abs=1e-4)


def test_the_method_key_validates() -> None:
    adapter: TypeAdapter[SolarPlan] = TypeAdapter(Policy)
    base = {"name": "p", "kind": "solar_plan"}
    assert adapter.validate_python(base).method == "milp"
    assert adapter.validate_python({**base, "method": "dp"}).method == "dp"
    with pytest.raises(ValidationError):
        adapter.validate_python({**base, "method": "greedy"})


SURE_START = datetime(2025, 6, 2, 9, 7, tzinfo=UTC)


def _six_hours(p10_w: float) -> PlanInput:
    """Six hours from :data:`SURE_START` of a flat forecast: ``p10_w``, a p50 of 3 kW."""
    first = int(SURE_START.timestamp()) // STEP_S * STEP_S
    outlook = SurplusOutlook(first, first, (p10_w,) * 40, (3000.0,) * 40, (4000.0,) * 40)
    slots = cut(
        SURE_START,
        SURE_START + timedelta(hours=6),
        outlook=outlook,
        quantile="p50",
        price_at=lambda _: None,
    )
    return PlanInput(slots=slots, low=6, high=32, step=1, kw_per_amp=0.23, now_amps=0, need_kwh=5.0)


def test_past_the_sure_hours_the_programme_counts_on_the_cautious_band() -> None:
    start = SURE_START
    data = _six_hours(1000.0)
    slots = data.slots
    counted = _surplus(data, 1.0)
    for at, hours, got in zip(slots.starts, slots.hours, counted, strict=True):
        watts = 3000.0 if at - start < timedelta(hours=1) else 1000.0
        assert got == pytest.approx(watts * hours / 1000)
    assert _surplus(data, None) == pytest.approx(slots.surplus_kwh)


def _horizon(
    start: datetime, hours: float, watts: tuple[float, ...], price: Callable[[datetime], float]
) -> PlanInput:
    """Slots of ``hours`` from ``start`` over ``watts`` (p10 = p50 = p90, from ``start``'s
    quarter hour) and ``price``; 6-32 A at 0.23 kW an amp, nothing charging now."""
    first = int(start.timestamp()) // STEP_S * STEP_S
    outlook = SurplusOutlook(first, first, watts, watts, watts)
    slots = cut(
        start, start + timedelta(hours=hours), outlook=outlook, quantile="p50", price_at=price
    )
    return PlanInput(slots=slots, low=6, high=32, step=1, kw_per_amp=0.23, now_amps=0, need_kwh=0)


def _night(hours_known: float) -> tuple[PlanInput, datetime]:
    """A 6 h horizon with no sun as far as the forecast goes (``hours_known``), grid cheap
    only in its first half hour, 1.5 kWh to deliver."""
    start = datetime(2025, 6, 2, 20, 0, tzinfo=UTC)
    early = start + timedelta(minutes=30)
    data = _horizon(
        start, 6, (0.0,) * round(hours_known * 4), lambda at: 0.10 if at < early else 0.12
    )
    return replace(data, need_kwh=1.5), early


def test_the_hedge_keeps_the_grid_late_while_a_sun_may_still_come() -> None:
    """Past the forecast's end the sun is unknown: the grid waits for the last slot, past
    a cheaper early price (a sun may still come first); with no sun to come before the
    ready-by it goes by price (the hedge has nothing to protect: docs/planner.md "Eighth
    pass")."""
    unknown, early = _night(2.0)
    dark, _ = _night(10.0)
    plans = (solve(unknown, hedge=0.0), solve(unknown), solve(dark))
    charging = [[i for i, e in enumerate(plan.energy_kwh) if e > 0] for plan in plans]
    assert all(unknown.slots.starts[i] < early for i in charging[0])  # by price
    assert charging[1] == [len(unknown.slots) - 1]  # hedged: the last slot
    assert all(dark.slots.starts[i] < early for i in charging[2])  # nothing to hedge
    assert HEDGE_KWH > PRICE_SPREAD  # lateness outweighs the price's tie-break
    for plan in plans:
        assert plan.unmet_kwh == 0.0
        assert sum(plan.energy_kwh) >= 1.5 - 0.05


def test_a_weak_sun_s_grid_is_priced_as_the_cheapest_slot_s() -> None:
    """An evening's weak sun at the peak price (600 W, under the 6 A level) goes into the car
    with the grid beside it, as the MILP's second stage buys its grid there first; the peak
    slots without a sun keep the price's tie-break."""
    start = datetime(2025, 6, 2, 17, 0, tzinfo=UTC)
    peak_until = start + timedelta(hours=4)
    watts = tuple(600.0 if i < 8 else 0.0 for i in range(40))
    data = _horizon(start, 8, watts, lambda at: 0.30 if at < peak_until else 0.09)
    data = replace(data, need_kwh=6.0)
    slots = data.slots
    penalty = _penalty(data)
    sunny = [i for i in range(len(slots)) if slots.surplus_kwh[i] > 0]
    dark_peak = [i for i in range(len(slots)) if slots.starts[i] < peak_until and i not in sunny]
    assert sunny
    assert dark_peak
    assert all(penalty[i] < PRICE_SPREAD / 10 for i in sunny)
    assert all(penalty[i] > PRICE_SPREAD - 0.01 for i in dark_peak)
    plan = solve(data)
    assert sum(plan.solar_kwh) >= 0.8 * sum(slots.surplus_kwh[i] for i in sunny)
    assert plan.unmet_kwh == 0.0


def test_past_the_sure_hours_the_count_is_at_least_the_floor_of_the_quantile() -> None:
    """Seattle's p10 is a fifth of its p50 and less: counted alone, no sun ahead looked worth
    waiting for (docs/planner.md "Sixth pass"); the floor keeps half the p50."""
    data = _six_hours(500.0)
    slots = data.slots
    counted = _surplus(data, 1.0, FAR_FLOOR)
    for at, hours, got in zip(slots.starts, slots.hours, counted, strict=True):
        watts = 3000.0 if at - SURE_START < timedelta(hours=1) else 3000.0 * FAR_FLOOR
        assert got == pytest.approx(watts * hours / 1000)
    # A p10 above the floor is counted as it is.
    assert _surplus(data, 1.0, 0.1)[-1] == pytest.approx(500.0 * slots.hours[-1] / 1000)


def test_a_command_past_the_session_s_budget_costs_more() -> None:
    """The session's budget is soft (``OVER_KWH`` a command past it): a third command that
    wins 0.3 kWh is worth it with the budget left, not past it; one that wins more than the
    extra cost still goes (a spent budget must not keep a grid charge going before a sun)."""
    found = Forward(np.array([1.0, 1.2, 1.5]), need=1, came=[], steps=[], filled=[])
    assert _best(found, 0.1, None, OVER_KWH)[1] == 2
    assert _best(found, 0.1, 4, OVER_KWH)[1] == 2
    assert _best(found, 0.1, 1, OVER_KWH)[1] == 1
    assert _best(found, 0.1, 0, OVER_KWH)[1] == 0
    found = Forward(np.array([1.0, 1.2, 3.0]), need=1, came=[], steps=[], filled=[])
    assert _best(found, 0.1, 0, OVER_KWH)[1] == 2


def test_the_budget_is_per_started_day_from_the_plug_in_to_the_ready_by() -> None:
    plugged = datetime(2025, 5, 2, 18, 0, tzinfo=UTC)
    overnight = plugged + timedelta(hours=13)
    weekend = plugged + timedelta(days=2, hours=13)
    assert commands_left(plugged, overnight, 0) == SESSION_BUDGET
    assert commands_left(plugged, overnight, 3) == SESSION_BUDGET - 3
    assert commands_left(plugged, overnight, 9) == 0
    assert commands_left(plugged, weekend, 5) == 3 * SESSION_BUDGET - 5
    assert commands_left(plugged, None, 1) == SESSION_BUDGET - 1
