"""The outlook a perfect forecast would give: the series' own surplus ahead (a diagnostic).

Why: the planner falls short of the optimum for two reasons, a forecast the weather then
does not follow and the plan's own structure (two stages, command costs, the guard, the grid
placed late). Replayed with this outlook instead of the causal one (:mod:`.causal`), the
planner knows the surplus of every bucket ahead exactly, so what it still misses against
the command-limited optimum (:mod:`optimizer.simulate.command_limited`) is structure, and
what the causal forecast loses beside it is the forecast's (`benchmarks/planner.py
--perfect-forecast`). Never used live or by `evopt simulate`: it peeks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from optimizer.planner.causal import HORIZON_H, CausalOutlooks, surplus_outlook
from optimizer.planner.outlook import STEP_S, SurplusOutlook
from optimizer.simulate.series import BUCKET_H, SiteSeries

__all__ = ["HalfPerfectOutlooks", "PerfectOutlooks"]


class PerfectOutlooks:
    """Per tick, the real surplus (W) of the next :data:`HORIZON_H` hours as p10 = p50 = p90
    (no band: nothing is uncertain), kept by the simulator's rule (``replan="change"``)."""

    def __init__(self, series: SiteSeries) -> None:
        self.series = series
        self.watts = tuple(
            0.0 if gap else (pv - house) / BUCKET_H * 1000
            for pv, house, gap in zip(series.pv_kwh, series.house_kwh, series.missing, strict=True)
        )

    def state(self) -> tuple[()]:
        """Nothing carried between calls (a replay split in two compares it: replay.py)."""
        return ()

    def at(self, index: int) -> SurplusOutlook:
        now_s = int(self.series.starts[index].timestamp())
        ahead = self.watts[index : index + int(HORIZON_H / BUCKET_H)]
        return SurplusOutlook(
            made_at_s=float(now_s),
            first_s=now_s - now_s % STEP_S,
            p10_w=ahead,
            p50_w=ahead,
            p90_w=ahead,
            source="perfect",
            replan="change",
        )


class HalfPerfectOutlooks:
    """The causal forecast (:mod:`.causal`) with one of its two parts replaced by the truth:
    ``perfect="pv"`` the real PV ahead (p10 = p50 = p90) beside the forecast house load,
    ``perfect="load"`` the forecast PV band beside the real house load. Replayed beside the
    causal and the perfect outlooks, it says which part of the surplus forecast costs the
    planner its solar (`benchmarks/planner.py --forecast-split`). A diagnostic: it peeks."""

    def __init__(self, causal: CausalOutlooks, *, perfect: Literal["pv", "load"]) -> None:
        self.causal = causal
        self.perfect = perfect
        series = causal.series
        self.pv_w = _measured_w(series.pv_kwh, series.missing)
        self.house_w = _measured_w(series.house_kwh, series.missing)

    def state(self) -> tuple[object, ...]:
        return self.causal.state()

    def resume(self, index: int) -> None:
        self.causal.resume(index)

    def at(self, index: int) -> SurplusOutlook | None:
        found = self.causal.parts(index)
        if found is None:
            return None
        now_s, pv, house = found
        steps = len(house)
        known = min(steps, len(self.pv_w) - index)  # past the series' end: the forecast
        if self.perfect == "pv":
            pv = pv.copy()
            pv[:known] = self.pv_w[index : index + known, None]
        else:
            house = house.copy()
            house[:known] = self.house_w[index : index + known]
        return surplus_outlook(now_s, pv, house, source=f"perfect {self.perfect}")


def _measured_w(kwh: Sequence[float], missing: Sequence[bool]) -> np.ndarray:
    """Each bucket's energy as its mean power (W), 0 where the bucket is missing."""
    to_w = 1000 / BUCKET_H
    return np.array([0.0 if gap else v * to_w for v, gap in zip(kwh, missing, strict=True)])
