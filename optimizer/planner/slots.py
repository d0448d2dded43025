"""The horizon cut into slots: 15 minutes near, an hour further out.

Why coarser further out: the programme's size grows with the slots, and a plan is only ever
applied for its first slot and made again at the next tick; what lies hours ahead only has to
be roughly right (how much sun, which hours are cheap) to shape the first step. The first
:data:`FINE_H` hours keep the forecast's 15-minute steps; after that, whole hours. The first
slot runs from now to the next quarter hour (with less than :data:`MIN_FIRST_S` left, to the
one after), and the last ends exactly at the departure.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from optimizer.planner.outlook import STEP_S, Quantile, SurplusOutlook

__all__ = ["FINE_H", "SlotPlan", "cut"]

FINE_H = 4.0
COARSE_S = 3600
MIN_FIRST_S = 300
PriceAt = Callable[[datetime], float | None]


@dataclass(frozen=True)
class SlotPlan:
    """Per slot: start (UTC), length (h), expected surplus (kWh, the planning quantile) with
    its p10/p90 band, and the import price (None: unknown)."""

    starts: tuple[datetime, ...]
    hours: tuple[float, ...]
    surplus_kwh: tuple[float, ...]
    low_kwh: tuple[float, ...]
    high_kwh: tuple[float, ...]
    price: tuple[float | None, ...]
    forecast_ends: datetime | None  # where the outlook stops (no sun is assumed after it)

    def __len__(self) -> int:
        return len(self.starts)

    def end(self, index: int) -> datetime:
        return self.starts[index] + timedelta(hours=self.hours[index])


def _edges(now: datetime, end: datetime) -> list[datetime]:
    """Slot boundaries from ``now`` to ``end`` (see the module's docstring)."""
    now_s, end_s = now.timestamp(), end.timestamp()
    edges = [now_s]
    at = (math.floor(now_s / STEP_S) + 1) * STEP_S
    if at - now_s < MIN_FIRST_S:
        at += STEP_S
    fine_until = now_s + FINE_H * 3600
    while at < end_s:
        edges.append(at)
        step = STEP_S if at < fine_until or at % COARSE_S else COARSE_S
        at += step
    edges.append(end_s)
    return [datetime.fromtimestamp(e, UTC) for e in edges]


def _mean_w(outlook: SurplusOutlook | None, quantile: Quantile, a: float, b: float) -> float:
    """Average surplus (W) the outlook expects over [a, b); 0 where it says nothing."""
    if outlook is None or b <= a:
        return 0.0
    values = outlook.band(quantile)
    total = 0.0
    step = int(a // STEP_S) * STEP_S
    while step < b:
        index = (step - outlook.first_s) // STEP_S
        overlap = min(b, step + STEP_S) - max(a, step)
        if 0 <= index < len(values) and overlap > 0:
            value = values[index]
            total += max(0.0, value) * overlap if math.isfinite(value) else 0.0
        step += STEP_S
    return total / (b - a)


def cut(
    now: datetime,
    end: datetime,
    *,
    outlook: SurplusOutlook | None,
    quantile: Quantile,
    price_at: PriceAt,
    measured_w: float | None = None,
) -> SlotPlan:
    """The slots from ``now`` to ``end``; the first slot's surplus is ``measured_w`` when
    known (the latest reading beats a forecast for the next minutes)."""
    edges = _edges(now, max(end, now + timedelta(seconds=MIN_FIRST_S)))
    starts, hours, mid, low, high, price = [], [], [], [], [], []
    for index, (a, b) in enumerate(itertools.pairwise(edges)):
        sa, sb = a.timestamp(), b.timestamp()
        h = (sb - sa) / 3600
        starts.append(a)
        hours.append(h)
        expected = _mean_w(outlook, quantile, sa, sb)
        p10 = _mean_w(outlook, "p10", sa, sb)
        p90 = _mean_w(outlook, "p90", sa, sb)
        if index == 0 and measured_w is not None and math.isfinite(measured_w):
            expected = p10 = p90 = max(0.0, measured_w)
        mid.append(expected * h / 1000)
        low.append(min(p10, expected) * h / 1000)
        high.append(max(p90, expected) * h / 1000)
        price.append(price_at(a))
    ends = None
    if outlook is not None:
        ends = datetime.fromtimestamp(outlook.end_s, UTC)
    return SlotPlan(
        starts=tuple(starts),
        hours=tuple(hours),
        surplus_kwh=tuple(mid),
        low_kwh=tuple(low),
        high_kwh=tuple(high),
        price=tuple(price),
        forecast_ends=ends,
    )
