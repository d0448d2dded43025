"""The simulated home battery: self-consumption, bucket by bucket.

Enphase batteries in self-consumption mode charge from the solar the loads leave and discharge
to cover the loads. For the car, the battery only helps while green mode's "use battery for EV
charging" (``USE_BATTERY_FOR_SELF_CONSUMPTION``) is on and the charger is in GREEN mode (spec
section 4.3: "battery supplementation"); otherwise it covers the house alone and the car's
draw beyond the solar comes from the grid. Losses are split evenly between charging and
discharging (``sqrt`` of the round-trip efficiency each way). The reserve is never used.

The replay steps one :class:`Battery` as it goes, so the engine sees the flows and the state
of charge it would have seen live; :func:`run_battery` applies the same model to a finished
profile (the baselines), so every column of the report shares one battery.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from optimizer.config import BatteryConfig
from optimizer.simulate.series import BUCKET_H, SiteSeries

__all__ = ["Battery", "BatteryFlows", "BatteryTrack", "run_battery"]


@dataclass(frozen=True)
class BatteryFlows:
    """Per bucket: kWh into the battery (from solar), kWh out of it, and SoC % at its start."""

    charge_kwh: tuple[float, ...]
    discharge_kwh: tuple[float, ...]
    soc_pct: tuple[float, ...]

    def kwh(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(into, out of) the battery per bucket, as :func:`figures` takes them."""
        return self.charge_kwh, self.discharge_kwh


class Battery:
    def __init__(self, config: BatteryConfig) -> None:
        self.capacity = config.capacity_kwh
        self.limit = config.max_power_kw * BUCKET_H
        self.efficiency = math.sqrt(config.round_trip_efficiency)
        self.reserve = config.capacity_kwh * config.reserve_pct / 100
        self.soc = max(self.reserve, config.capacity_kwh * config.initial_soc_pct / 100)

    @property
    def soc_pct(self) -> float:
        return 100 * self.soc / self.capacity

    def step(self, *, pv: float, house: float, ev: float, feeds_ev: bool) -> tuple[float, float]:
        """One bucket (kWh): returns (charged from solar, discharged to the loads)."""
        spare = pv - house - ev
        if spare > 0:
            room = (self.capacity - self.soc) / self.efficiency
            charged = max(0.0, min(spare, self.limit, room))
            self.soc += charged * self.efficiency
            return charged, 0.0
        deficit = -spare
        covered = deficit if feeds_ev else min(deficit, max(0.0, house - pv))
        available = max(0.0, (self.soc - self.reserve) * self.efficiency)
        given = max(0.0, min(covered, self.limit, available))
        self.soc -= given / self.efficiency
        return 0.0, given


class BatteryTrack:
    """One battery over a series, bucket by bucket: what it did and its state of charge at
    each bucket's start. The replay steps it as it goes (the engine sees its past flows);
    :func:`run_battery` steps it over a finished profile."""

    def __init__(self, series: SiteSeries, config: BatteryConfig) -> None:
        self.series = series
        self.battery = Battery(config)
        count = len(series.starts)
        self.charge = [0.0] * count
        self.discharge = [0.0] * count
        self.soc = [0.0] * count

    def soc_pct(self, index: int) -> float:
        """The state of charge at the start of bucket ``index`` (and remembered as such)."""
        self.soc[index] = self.battery.soc_pct
        return self.soc[index]

    def seen_w(self, index: int) -> tuple[float, float]:
        """Charge and discharge (W) over bucket ``index``, as an energy bucket reports them."""
        to_w = 1000 / BUCKET_H
        return self.charge[index] * to_w, self.discharge[index] * to_w

    def step(self, index: int, ev: float, *, feeds_ev: bool) -> None:
        """Bucket ``index`` with the car taking ``ev`` kWh; missing buckets move nothing (their
        flows are unknown, and :func:`figures` skips them)."""
        if self.series.missing[index]:
            return
        self.charge[index], self.discharge[index] = self.battery.step(
            pv=self.series.pv_kwh[index],
            house=self.series.house_kwh[index],
            ev=ev,
            feeds_ev=feeds_ev,
        )

    def flows(self) -> BatteryFlows:
        return BatteryFlows(tuple(self.charge), tuple(self.discharge), tuple(self.soc))


def run_battery(
    series: SiteSeries,
    ev_kwh: Sequence[float],
    config: BatteryConfig,
    feeds_ev: Sequence[bool] | None = None,
) -> BatteryFlows:
    """The battery over a whole profile."""
    track = BatteryTrack(series, config)
    for index in range(len(series.starts)):
        track.soc_pct(index)
        feeds = bool(feeds_ev[index]) if feeds_ev is not None else False
        track.step(index, ev_kwh[index], feeds_ev=feeds)
    return track.flows()
