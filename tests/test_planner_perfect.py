"""The perfect forecast (optimizer/planner/perfect.py): the series' own surplus ahead.

A diagnostic for benchmarks/planner.py --perfect-forecast; it must be the real surplus,
bucket for bucket, or the split it gives (forecast against structure) means nothing.
"""

from __future__ import annotations

import pytest

from optimizer.planner.causal import HORIZON_H
from optimizer.planner.perfect import PerfectOutlooks
from tests.test_baselines import site


def test_the_outlook_is_the_real_surplus_ahead_without_a_band() -> None:
    pv = [0.0, 0.5, 1.25, 2.0, 0.25]
    house = [0.25, 0.25, 0.5, 0.5, 0.5]
    series = site(pv, [(0, 5, 3.0)], house=house, missing=[False, False, False, True, False])
    outlook = PerfectOutlooks(series).at(1)
    # kWh per 15 minutes -> W; the bucket without data has no surplus.
    assert outlook.p50_w == pytest.approx((1000.0, 3000.0, 0.0, -1000.0))
    assert outlook.p10_w == outlook.p50_w == outlook.p90_w
    assert outlook.first_s == int(series.starts[1].timestamp())
    assert outlook.replan == "change"
    assert outlook.source == "perfect"


def test_the_outlook_reaches_the_forecast_horizon() -> None:
    steps = int(HORIZON_H * 4)
    series = site([1.0] * (steps + 10), [(0, 4, 1.0)])
    assert PerfectOutlooks(series).at(0).steps == steps
    assert PerfectOutlooks(series).at(steps + 5).steps == 5
