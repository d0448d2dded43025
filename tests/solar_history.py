"""Synthetic site histories made with pvlib, for the forecast's tests (a known truth to recover).

Made with pvlib independently of the forecast's code (its own solar position, Ineichen clear sky
and Hay-Davies transposition calls); ``turbidity`` other than the forecast's fixed 3.0 gives a
history whose haze the forecast's model does not share, as a real site's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from pvlib.irradiance import get_total_irradiance
from pvlib.location import Location

from optimizer.forecast.solar import STEP_S, PowerHistory, Site

GREENSBORO = Site(latitude=36.07, longitude=-79.79, timezone="America/New_York")


@dataclass(frozen=True)
class Truth:
    history: PowerHistory
    clear_w: np.ndarray  # the array's clear-sky output per bucket
    day_index: np.ndarray  # each local day's cloud index (the realised weather)


def synthetic_history(
    *,
    site: Site = GREENSBORO,
    start: datetime = datetime(2025, 4, 1, tzinfo=UTC),
    days: int = 60,
    tilt: float = 25.0,
    azimuth: float = 200.0,
    peak_w: float = 6000.0,
    clear_share: float = 0.3,
    seed: int = 1,
    turbidity: float = 3.0,
) -> Truth:
    """``days`` of 15-minute PV and house load: each day either clear (index ~1) or cloudy
    (a day index drawn from 0.15-0.9 with bucket noise); a house of ~400 W with an evening
    peak on weekdays."""
    rng = np.random.default_rng(seed)
    n = days * 96
    start_s = int(start.timestamp()) + STEP_S * np.arange(n, dtype=np.int64)
    times = pd.DatetimeIndex(pd.to_datetime(start_s + STEP_S // 2, unit="s", utc=True))
    location = Location(site.latitude, site.longitude, "UTC")
    position = location.get_solarposition(times)
    clear = location.get_clearsky(times, solar_position=position, linke_turbidity=turbidity)
    poa = get_total_irradiance(
        tilt,
        azimuth,
        position["apparent_zenith"],
        position["azimuth"],
        clear["dni"],
        clear["ghi"],
        clear["dhi"],
        dni_extra=1361.0,
        model="haydavies",
    )["poa_global"].fillna(0.0)
    clear_w = peak_w * poa.to_numpy() / 1000
    local = times.tz_convert(site.timezone)
    ordinals = np.array([d.toordinal() for d in local.date], dtype=np.int64)
    day_of = ordinals - ordinals.min()
    sunny = rng.random(day_of.max() + 1) < clear_share
    day_index = np.where(sunny, 1.0, rng.uniform(0.15, 0.9, day_of.max() + 1))
    noise = np.where(sunny[day_of], 1.0, rng.uniform(0.6, 1.4, n))
    pv = np.clip(clear_w * day_index[day_of] * noise, 0, None)
    hour = local.hour.to_numpy() + local.minute.to_numpy() / 60
    weekday = local.day_of_week.to_numpy() < 5
    house = 350 + 900 * ((hour >= 17) & (hour < 21) & weekday) + rng.normal(0, 40, n)
    return Truth(PowerHistory(start_s, pv, np.clip(house, 0, None)), clear_w, day_index)
