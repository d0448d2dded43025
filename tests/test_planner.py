"""The planner behind `solar_plan`: valid levels, plans met, reasons from the solved plan."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from optimizer.engine.decision import Memory
from optimizer.engine.evaluate import evaluate
from optimizer.engine.rules import SolarPlan
from optimizer.engine.snapshot import ChargerView, DeparturePlan, Snapshot, Surplus
from optimizer.planner import problem
from optimizer.planner.explain import expectation
from optimizer.planner.outlook import STEP_S, SurplusOutlook
from optimizer.planner.problem import PlanInput, solve
from optimizer.planner.slots import cut

ZONE = ZoneInfo("America/New_York")
NOW = datetime(2025, 6, 20, 18, 0, tzinfo=ZONE).astimezone(UTC)


def _sunny(now: datetime, peak_w: float = 5000.0, house_w: float = 600.0) -> SurplusOutlook:
    first = int(now.timestamp() // STEP_S) * STEP_S
    values = []
    for i in range(192):
        local = datetime.fromtimestamp(first + i * STEP_S, UTC).astimezone(ZONE)
        hour = local.hour + local.minute / 60
        sun = peak_w * math.sin(math.pi * (hour - 6) / 14) if 6 < hour < 20 else 0.0
        values.append(sun - house_w)
    p50 = tuple(values)
    return SurplusOutlook(now.timestamp(), first, tuple(v * 0.5 for v in p50), p50, p50)


def _price(at: datetime) -> float:
    hour = at.astimezone(ZONE).hour
    return 0.09 if hour >= 23 or hour < 7 else (0.30 if 15 <= hour < 21 else 0.14)


def test_a_sunny_tomorrow_is_waited_for_and_the_reason_says_so() -> None:
    slots = cut(
        NOW, NOW + timedelta(hours=22), outlook=_sunny(NOW), quantile="p50", price_at=_price
    )
    result = solve(PlanInput(slots, 6, 32, 1, 0.24, 0, 12.0))
    assert result.ok
    assert result.amps[0] == 0  # nothing from the grid tonight: the sun will do it
    assert sum(result.solar_kwh) > 10.0
    text = expectation(slots, result, ZONE, need_kwh=12.0)
    assert text.startswith("sun from 08:00 covers ")
    assert "of 12.0 kWh" in text or "all 12.0 kWh" in text


def test_without_sun_the_grid_goes_to_the_cheapest_slots() -> None:
    slots = cut(NOW, NOW + timedelta(hours=12), outlook=None, quantile="p50", price_at=_price)
    result = solve(PlanInput(slots, 6, 32, 1, 0.24, 0, 10.0))
    assert result.unmet_kwh == 0
    charged = [s for s, a in zip(slots.starts, result.amps, strict=True) if a]
    assert charged
    assert all(_price(s) == 0.09 for s in charged)
    assert "grid 04:00-06:00 for 10.0 kWh" in expectation(slots, result, ZONE, need_kwh=10.0)


@settings(max_examples=25, deadline=None)
@given(
    hours=st.floats(min_value=1, max_value=30),
    need=st.floats(min_value=0.5, max_value=60),
    low=st.integers(min_value=6, max_value=10),
    high=st.integers(min_value=10, max_value=40),
    step=st.integers(min_value=1, max_value=3),
    start_h=st.integers(min_value=0, max_value=23),
    now_amps=st.integers(min_value=0, max_value=40),
)
# Found by a run of this property: the weak sun of the first hour took only its own level
# and every other slot at full power left 0.51 kWh of a feasible 21 kWh unmet.
@example(hours=7.0, need=21.0, low=6, high=14, step=1, start_h=0, now_amps=0)
# And: a run under way at 33 A (off the 2 A steps from 6) was kept at 33 A, a level the
# charger cannot be set to.
@example(hours=9.0, need=53.0, low=6, high=34, step=2, start_h=7, now_amps=33)
def test_levels_are_valid_and_feasible_plans_are_met(
    *, hours: float, need: float, low: int, high: int, step: int, start_h: int, now_amps: int
) -> None:
    now = NOW + timedelta(hours=start_h, minutes=7)
    slots = cut(
        now, now + timedelta(hours=hours), outlook=_sunny(now), quantile="p50", price_at=_price
    )
    top = low + (high - low) // step * step
    data = PlanInput(slots, low, top, step, 0.23, now_amps if low <= now_amps <= top else 0, need)
    result = solve(data)
    assert result.ok
    for amps in result.amps:
        assert amps == 0 or (low <= amps <= top and (amps - low) % step == 0)
    capacity = sum(top * 0.23 * h for h in slots.hours)
    if need <= capacity - 1e-6:
        assert result.unmet_kwh <= 1e-6
        assert sum(result.energy_kwh) >= need - 1e-6
    assert sum(result.solar_kwh) <= sum(max(0.0, s) for s in slots.surplus_kwh) + 1e-6


@settings(max_examples=25, deadline=None)
@given(
    peak_w=st.floats(min_value=3000, max_value=9000),
    need=st.floats(min_value=1, max_value=8),
    start_h=st.integers(min_value=7, max_value=10),
)
def test_with_a_plan_the_sun_is_not_topped_up_from_the_grid_early(
    *, peak_w: float, need: float, start_h: int
) -> None:
    """A morning ramp the sun alone covers: no slot takes more grid than half the minimum
    level beside its sun (the old plan held one level above the rising surplus, buying grid
    early that the noon sun would have given)."""
    now = datetime(2025, 6, 21, start_h, 0, tzinfo=ZONE).astimezone(UTC)
    slots = cut(
        now,
        now + timedelta(hours=17 - start_h),
        outlook=_sunny(now, peak_w=peak_w),
        quantile="p50",
        price_at=_price,
    )
    result = solve(PlanInput(slots, 6, 32, 1, 0.24, 0, need))
    assert result.ok
    assert result.unmet_kwh <= 1e-6
    for k, grid in enumerate(result.grid_kwh):
        assert grid <= 0.5 * 6 * 0.24 * slots.hours[k] + 1e-6, (k, result.amps[k], grid)


def test_the_grid_a_plan_needs_takes_a_weak_evening_sun_first() -> None:
    """An evening plug-in with 0.8 kW of sun for two hours (below the 6 A minimum), then
    dark, flat prices: the grid the plan must buy goes beside that sun at the minimum level,
    so the sun goes into the car too (before, the latest dark slots took it all)."""
    now = datetime(2025, 6, 20, 17, 0, tzinfo=ZONE).astimezone(UTC)
    first = int(now.timestamp() // STEP_S) * STEP_S
    weak = tuple(800.0 if i < 8 else 0.0 for i in range(64))
    outlook = SurplusOutlook(now.timestamp(), first, weak, weak, weak)
    slots = cut(
        now, now + timedelta(hours=14), outlook=outlook, quantile="p50", price_at=lambda _: 0.14
    )
    result = solve(PlanInput(slots, 6, 32, 1, 0.24, 0, 10.0))
    assert result.unmet_kwh <= 1e-6
    sunny = [k for k in range(len(slots)) if slots.surplus_kwh[k] > 0]
    assert sunny
    assert all(result.amps[k] == 6 for k in sunny if k > 0)
    assert sum(result.solar_kwh[k] for k in sunny) >= 0.7 * sum(slots.surplus_kwh[k] for k in sunny)


def _snapshot(
    now: datetime,
    *,
    plan: DeparturePlan | None,
    charging: bool,
    amps: int | None,
    outlook: SurplusOutlook | None,
    surplus_w: float,
) -> Snapshot:
    view = ChargerView(
        sn="SN1",
        connected=True,
        plugged_in=True,
        charging=charging,
        faulted=False,
        min_amps=6,
        max_amps=32,
        amps=amps,
        plan=plan,
        session_kwh=0.0,
    )
    return Snapshot(
        now=now,
        timezone="America/New_York",
        chargers=(view,),
        surplus=Surplus(surplus_w, "lifetime_energy"),
        outlook=outlook,
    )


POLICY = SolarPlan(name="plan", kind="solar_plan")


def test_the_guard_charges_at_full_power_when_the_rest_no_longer_fits() -> None:
    plan = DeparturePlan(NOW + timedelta(minutes=100), 20.0)
    decisions, _ = evaluate(
        _snapshot(NOW, plan=plan, charging=False, amps=None, outlook=_sunny(NOW), surplus_w=0.0),
        [POLICY],
        Memory(),
    )
    charging = next(d for d in decisions if d.target == "charging")
    assert charging.action == "start"
    assert charging.params == {"amps": 32}
    assert charging.reason.startswith("guard: 20.0 kWh by ")


def test_the_plan_is_in_the_reason_and_the_inputs() -> None:
    plan = DeparturePlan(NOW + timedelta(hours=22), 12.0)
    decisions, _ = evaluate(
        _snapshot(NOW, plan=plan, charging=False, amps=None, outlook=_sunny(NOW), surplus_w=0.0),
        [POLICY],
        Memory(),
    )
    charging = next(d for d in decisions if d.target == "charging")
    assert charging.action == "hold"
    assert "12.0 kWh by 16:00: sun from 08:00 covers " in charging.reason
    assert charging.inputs["plan"]["next"] == "08:00 start at 9 A"
    assert charging.inputs["plan"]["need_kwh"] == 12.0
    assert charging.inputs["plan"]["solar_kwh"] > 10


def test_without_a_forecast_it_says_so() -> None:
    decisions, _ = evaluate(
        _snapshot(
            NOW - timedelta(hours=5),
            plan=None,
            charging=False,
            amps=None,
            outlook=None,
            surplus_w=3000.0,
        ),
        [POLICY],
        Memory(),
    )
    charging = next(d for d in decisions if d.target == "charging")
    assert "no forecast, following the current surplus" in charging.reason
    assert charging.action == "start"


def _no_solver(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("HiGHS was asked")


def test_a_night_with_no_level_to_hold_is_planned_without_the_solver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No slot's sun can carry even the minimum level: the plan is all grid, stage 2's."""
    monkeypatch.setattr(problem, "milp", _no_solver)
    slots = cut(NOW, NOW + timedelta(hours=12), outlook=None, quantile="p50", price_at=_price)
    result = solve(PlanInput(slots, 6, 32, 1, 0.24, 0, 10.0))
    assert result.ok
    assert result.unmet_kwh == 0
    assert all(_price(s) == 0.09 for s, a in zip(slots.starts, result.amps, strict=True) if a)


def test_a_kept_plan_holds_through_the_house_load_at_night(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The simulator keeps a plan while the surplus stays in its band; the band is of
    surplus floored at 0, so a night's house load (-600 W) is inside it, no new solve."""
    night = datetime(2025, 6, 20, 22, 0, tzinfo=ZONE).astimezone(UTC)
    dark = SurplusOutlook(
        night.timestamp(),
        int(night.timestamp() // STEP_S) * STEP_S,
        (0.0,) * 96,
        (0.0,) * 96,
        (0.0,) * 96,
        replan="change",
    )
    plan = DeparturePlan(night + timedelta(hours=12), 10.0)
    first = _snapshot(night, plan=plan, charging=False, amps=None, outlook=dark, surplus_w=-600.0)
    decisions, memory = evaluate(first, [POLICY], Memory())
    made = next(d for d in decisions if d.target == "charging")
    monkeypatch.setattr(problem, "solve", _no_solver)
    later = night + timedelta(minutes=15)
    again = _snapshot(later, plan=plan, charging=False, amps=None, outlook=dark, surplus_w=-600.0)
    decisions, _ = evaluate(again, [POLICY], memory)
    kept = next(d for d in decisions if d.target == "charging")
    assert kept.inputs["plan"] == made.inputs["plan"]


def _night_then_sun(need: float, ready_h: float, guard_h: float) -> tuple[list[int], list[int]]:
    """A plan from 02:00 (UTC as local) with cheap grid until 07:00 and a morning sun rising
    from 07:00: (levels of the grid run before 07:00, levels from 07:00)."""
    now = datetime(2025, 6, 21, 2, 0, tzinfo=UTC)
    first = int(now.timestamp() // STEP_S) * STEP_S
    sun = []
    for i in range(96):
        at = now + timedelta(minutes=15 * i)
        hour = at.hour + at.minute / 60
        sun.append(max(0.0, (hour - 7) * 600.0) if 7 <= hour < 12 else 0.0)
    outlook = SurplusOutlook(now.timestamp(), first, tuple(sun), tuple(sun), tuple(sun))
    slots = cut(
        now,
        now + timedelta(hours=ready_h),
        outlook=outlook,
        quantile="p50",
        price_at=lambda at: 0.09 if at.hour < 7 else 0.14,
    )
    result = solve(PlanInput(slots, 6, 32, 1, 0.24, 0, need, guard_h=guard_h))
    assert result.unmet_kwh == 0
    run = [a for s, a in zip(slots.starts, result.amps, strict=True) if a and s.hour < 7]
    later = [a for s, a in zip(slots.starts, result.amps, strict=True) if a and s.hour >= 7]
    return run, later


def test_the_night_run_gives_just_the_rest_at_one_level() -> None:
    """The grid run at full power would overshoot the need by part of a slot and fill the
    car before the morning sun: it runs at one lower level that gives just the rest."""
    run, later = _night_then_sun(need=12.0, ready_h=7.5, guard_h=0.25)
    assert run
    assert len(set(run)) == 1
    assert 6 <= run[0] < 32
    assert later  # the morning sun still has room


def test_a_tight_night_run_stays_at_full_power_before_the_guard() -> None:
    """The run is the hour before 07:00 and the plan ends at 07:03: at 30 A the guard's
    margin would be in reach during it, so it stays at full power (the guard would raise it
    anyway: a command more)."""
    run, _ = _night_then_sun(need=7.0, ready_h=5.05, guard_h=0.25)
    assert run
    assert set(run) == {32}
