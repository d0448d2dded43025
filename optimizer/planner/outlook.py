"""What the site expects its solar surplus to be: the planner's view of the forecast.

The engine is pure and reads only its snapshot, so the forecast reaches it as this small frozen
value, made outside the engine: live by the service from the site's stored history, in
`evopt simulate` causally from the buckets before each tick (:mod:`optimizer.planner.causal`).
Surplus is PV minus the house's own load (the car excluded), in W, per 15-minute step from
the step holding ``made_at``; the band is the clear-sky index's p10/p50/p90 (docs/forecast.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["LEARNED_SOURCE", "QUANTILES", "STEP_S", "Quantile", "SurplusOutlook"]

STEP_S = 900
Quantile = Literal["p10", "p50", "p90"]
QUANTILES: tuple[Quantile, ...] = ("p10", "p50", "p90")
ReplanRule = Literal["tick", "change"]
LEARNED_SOURCE = "forecast"
"""The source of an outlook the site's own history made (live and replayed); an online
forecast's names itself (optimizer/forecast/online.py)."""


@dataclass(frozen=True)
class SurplusOutlook:
    """Expected surplus (W) per 15-minute step starting at ``first_s`` (UTC epoch seconds).

    ``replan``: ``tick`` (live) solves again at every tick; ``change`` (the simulator, whose
    year is 35,040 ticks) keeps the last plan until something material changes
    (docs/planner.md, "When it plans again").
    """

    made_at_s: float
    first_s: int
    p10_w: tuple[float, ...]
    p50_w: tuple[float, ...]
    p90_w: tuple[float, ...]
    source: str = LEARNED_SOURCE
    replan: ReplanRule = "tick"

    def __post_init__(self) -> None:
        if not len(self.p10_w) == len(self.p50_w) == len(self.p90_w):
            raise ValueError("p10_w, p50_w and p90_w must have one value per step")
        if self.first_s % STEP_S:
            raise ValueError("first_s must be on a quarter hour")

    @property
    def steps(self) -> int:
        return len(self.p50_w)

    @property
    def end_s(self) -> int:
        return self.first_s + STEP_S * self.steps

    def band(self, quantile: Quantile) -> tuple[float, ...]:
        return {"p10": self.p10_w, "p50": self.p50_w, "p90": self.p90_w}[quantile]

    def at(self, when_s: float, quantile: Quantile) -> float | None:
        """The step holding ``when_s``, or None outside the outlook."""
        index = int((when_s - self.first_s) // STEP_S)
        if 0 <= index < self.steps:
            return self.band(quantile)[index]
        return None

    def to_json(self) -> dict[str, Any]:
        """A short description for decision inputs (never the whole series)."""
        return {
            "source": self.source,
            "made_at": datetime.fromtimestamp(self.made_at_s, UTC).isoformat(),
            "hours": round(self.steps * STEP_S / 3600, 2),
        }
