"""benchmarks/learned.py's attribution: unmet by cause, solar lost against exact plans by how
each plan differed from the truth (docs/planner.md, "Where the solar goes")."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

from optimizer.engine.snapshot import DeparturePlan
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
