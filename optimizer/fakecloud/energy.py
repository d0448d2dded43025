"""Quarter-hour energy series (Wh) the way ``lifetime_energy`` and ``today`` report them.

Each complete bucket combines the PV curve, the house-load curve and what the chargers drew,
split into the flows Enlighten names (solar to home, solar to grid, grid to home). The site has
no battery in these series, so the battery flows are nulls; heat pump and water heater are
absent (empty arrays). Buckets marked missing are null in every series, as the real cloud does
when the gateway failed to report.
"""

from __future__ import annotations

import math

from optimizer.fakecloud.curves import BUCKET_S
from optimizer.fakecloud.model import SiteModel

FLOW_SERIES = (
    "production",
    "consumption",
    "solar_home",
    "solar_grid",
    "grid_home",
    "import",
    "export",
)
BATTERY_SERIES = (
    "charge",
    "discharge",
    "solar_battery",
    "battery_home",
    "battery_grid",
    "grid_battery",
)
ABSENT_SERIES = ("heatpump", "water_heater")

Series = dict[str, list[int | None]]


def evse_wh(model: SiteModel, first: float, count: int) -> list[float]:
    """Energy all chargers drew in each of ``count`` buckets from ``first`` (epoch s)."""
    out = [0.0] * count
    end_all = first + count * BUCKET_S
    for charger in model.chargers:
        for seg in charger.draw:
            start, end = max(seg.start, first), min(seg.end, end_all)
            if end <= start:
                continue
            index = int((start - first) // BUCKET_S)
            while index < count:
                b_start = first + index * BUCKET_S
                overlap = min(end, b_start + BUCKET_S) - max(start, b_start)
                if overlap <= 0:
                    break
                out[index] += seg.watts * overlap / 3600.0
                index += 1
    return out


def series(model: SiteModel, first: float, count: int, complete_until: float) -> Series:
    """All series for ``count`` buckets from ``first``; buckets ending after
    ``complete_until`` (not yet complete) and missing buckets are null."""
    ev = evse_wh(model, first, count)
    out: Series = {name: [] for name in (*FLOW_SERIES, *BATTERY_SERIES, "evse")}
    for name in ABSENT_SERIES:
        out[name] = []
    for i in range(count):
        start = first + i * BUCKET_S
        for name in BATTERY_SERIES:
            out[name].append(None)
        if start + BUCKET_S > complete_until or int(start) in model.missing_buckets:
            for name in (*FLOW_SERIES, "evse"):
                out[name].append(None)
            continue
        production = round(model.curves.pv_wh(start))
        evse = round(ev[i])
        consumption = round(model.curves.load_wh(start)) + evse
        solar_home = min(production, consumption)
        values = {
            "production": production,
            "consumption": consumption,
            "solar_home": solar_home,
            "solar_grid": production - solar_home,
            "grid_home": consumption - solar_home,
            "import": consumption - solar_home,
            "export": production - solar_home,
            "evse": evse,
        }
        for name, value in values.items():
            out[name].append(value)
    return out


def complete_buckets(model: SiteModel, now: float) -> int:
    """How many whole buckets lie between the start of the history and ``now``."""
    return max(0, math.floor((now - model.energy_start) / BUCKET_S))
