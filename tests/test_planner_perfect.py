"""The perfect forecast (optimizer/planner/perfect.py): the series' own surplus ahead, or
one of its two parts (PV, the house load) beside the causal forecast's other.

A diagnostic for benchmarks/planner.py --perfect-forecast; it must be the real surplus,
bucket for bucket, or the split it gives (forecast against structure) means nothing.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pytest

from optimizer.planner.causal import HORIZON_H, CausalOutlooks
from optimizer.planner.perfect import HalfPerfectOutlooks, PerfectOutlooks
from optimizer.simulate.series import SiteSeries
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


class _Forecast:
    """A causal forecast's two parts, fixed: PV 2 kW with a band, the house 500 W."""

    def __init__(self, series: SiteSeries) -> None:
        self.series = series

    def parts(self, index: int) -> tuple[int, np.ndarray, np.ndarray]:
        now_s = int(self.series.starts[index].timestamp())
        pv = np.tile([1000.0, 2000.0, 3000.0], (3, 1))
        return now_s, pv, np.full(3, 500.0)

    def state(self) -> tuple[object, ...]:
        return ("kept",)


@pytest.mark.parametrize(
    ("perfect", "p10", "p50"),
    [
        # the real PV (1, 3, 5 kW) beside the forecast house: no band left
        ("pv", (500.0, 2500.0, 4500.0), (500.0, 2500.0, 4500.0)),
        # the forecast PV beside the real house (1, 1, 2 kW): the PV's band kept
        ("load", (0.0, 0.0, -1000.0), (1000.0, 1000.0, 0.0)),
    ],
)
def test_half_perfect_swaps_one_part_for_the_truth(
    perfect: str, p10: tuple[float, ...], p50: tuple[float, ...]
) -> None:
    series = site([0.25, 0.25, 0.75, 1.25, 0.5], [(0, 5, 3.0)], house=[0.5, 0.25, 0.25, 0.5, 0.5])
    forecast = _Forecast(series)
    outlook = HalfPerfectOutlooks(cast(CausalOutlooks, forecast), perfect=perfect).at(1)  # type: ignore[arg-type]
    assert outlook is not None
    assert outlook.p10_w == pytest.approx(p10)
    assert outlook.p50_w == pytest.approx(p50)
    assert outlook.source == f"perfect {perfect}"
    # the replay split in two compares the forecast's state through it
    assert HalfPerfectOutlooks(cast(CausalOutlooks, forecast), perfect="pv").state() == ("kept",)
