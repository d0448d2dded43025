"""benchmarks/learned.py's attribution (unmet by cause, solar lost against exact plans) and
`series_plans` judged by the replayed period; the sample with `--plans learned` held at the
figures reached (docs/planner.md, "Learned plans")."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from optimizer.engine.snapshot import DeparturePlan
from optimizer.simulate.learned import within
from optimizer.simulate.series import Session

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_learned", ROOT / "benchmarks" / "learned.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_learned"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


learned = _load()
T0 = datetime(2025, 6, 2, 18, tzinfo=UTC)
SESSION = Session(T0, T0 + timedelta(hours=13), 10.0)


def test_a_plan_past_the_period_is_ready_by_its_end() -> None:
    end = T0 + timedelta(hours=6)
    plan = DeparturePlan(T0 + timedelta(hours=12), 10.0, learned="weekday plug-ins")
    assert within(plan, end) == DeparturePlan(end, 10.0, learned="weekday plug-ins")
    early = DeparturePlan(T0 + timedelta(hours=5), 10.0, learned="x")
    assert within(early, end) is early


@pytest.mark.parametrize(
    ("ready_h", "kwh", "expected"),
    [
        (11.0, 10.5, "departure early"),  # 2 h before the real departure
        (12.5, 12.0, "energy high"),
        (11.0, 12.0, "both"),
        (12.5, 10.5, "neither"),  # within the hour and the kWh
        (14.0, 8.0, "neither"),  # later and less: it can only gain solar
    ],
)
def test_each_plan_is_classed_by_how_it_differs_from_the_truth(
    ready_h: float, kwh: float, expected: str
) -> None:
    plan = DeparturePlan(T0 + timedelta(hours=ready_h), kwh, learned="x")
    assert learned.lost_class(SESSION, plan) == expected


def test_unmet_is_asked_first_then_late_or_planner() -> None:
    end = T0 + timedelta(days=1)
    short_and_late = DeparturePlan(T0 + timedelta(hours=14), 7.0, learned="x")
    assert learned.attribute(SESSION, short_and_late, 5.0, end) == learned.Short(
        asked=3.0, late=2.0
    )
    in_time = DeparturePlan(T0 + timedelta(hours=12), 12.0, learned="x")
    assert learned.attribute(SESSION, in_time, 8.0, end) == learned.Short(planner=2.0)
    cut = learned.attribute(SESSION, in_time, 8.0, T0 + timedelta(hours=6))
    assert cut == learned.Short(cut=2.0)
    # Cut by the period's end, the plan still asked too little: that part is the plan's.
    assert learned.attribute(SESSION, short_and_late, 5.0, T0 + timedelta(hours=6)) == (
        learned.Short(asked=3.0, cut=2.0)
    )


def _run(sample: str, date_from: str, date_to: str, method: str | None) -> dict[str, Any]:
    args = argparse.Namespace(
        date_from=date_from,
        date_to=date_to,
        method=method,
        leave_quantile=None,
        energy_quantile=None,
        plans="learned",
        no_optimum=False,
        split=False,
    )
    result: dict[str, Any] = learned.run_sample(sample, args)
    return result


# (sample, from, to, method): (unmet share at most, solar share at least, commands per
# session at most), the figures `make learned` gives (docs/planner.md, "Learned plans" and
# "Eighth pass"), each with a little room so a rounding-size change does not fail it; they
# fail when the plans get worse by a step (without the period-end cap, June leaves 5.1 %
# unmet, not 1.4 %). `make test` holds June with the MILP (3 s of CPU; the DP's June takes
# 20 s), `make soak` June with the DP as shipped and the years (40-190 s of CPU each).
# The departures by the end's clock and the weekday, the full car after unusual absences,
# the kept "more" step (docs/planner.md, "Departures and energies conditioned on more"), the
# MILP: June 1.3 % / 0.703 / 3.70 (commands were 4.0); the year greensboro 0.2 % / 0.717 /
# 3.28 (was 0.6 % / 0.745 / 3.47), seattle 0.2 % / 0.264 / 4.34 (6.2 % / 0.331 / 3.71),
# phoenix 1.5 % / 0.644 / 7.48 (4.7 % / 0.636 / 7.66). The DP (eighth pass): June 1.25 % /
# 0.705 / 3.78; the years 0.36 % / 0.725 / 2.82, 0.02 % / 0.274 / 2.98, 1.40 % / 0.679 /
# 5.60.
REACHED = {
    ("greensboro", "06-01", "06-30", "milp"): (0.014, 0.70, 3.75),
}
SOAK = {
    ("greensboro", "06-01", "06-30", "dp"): (0.013, 0.70, 3.80),
    ("greensboro", "01-01", "12-31", "dp"): (0.004, 0.72, 2.85),
    ("seattle", "01-01", "12-31", "dp"): (0.001, 0.27, 3.0),
    ("phoenix", "01-01", "12-31", "dp"): (0.0145, 0.67, 5.65),
}


@pytest.mark.parametrize(
    "period",
    [
        *(pytest.param(key, id=f"{key[0]}-{key[1]}-{key[3]}") for key in REACHED),
        *(
            pytest.param(key, id=f"{key[0]}-{key[1]}-{key[3]}", marks=pytest.mark.soak)
            for key in SOAK
        ),
    ],
)
def test_the_learned_plans_hold_the_figures_reached(period: tuple[str, str, str, str]) -> None:
    unmet, share, commands = {**REACHED, **SOAK}[period]
    result = _run(*period)
    assert result["sessions_with_plan"] == result["sessions"]
    assert result["unmet_share"] <= unmet
    assert result["solar_share"] >= share
    assert result["commands_per_session"] <= commands
    # The year's (the period's) last session is ready by the period's end: nothing of what
    # is left is the period's cut unless the plan had no time for it.
    assert result["by_cause_kwh"]["cut by the period's end"] <= 0.05
