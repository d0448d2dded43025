"""Deterministic PV production and house-load curves for the fake site.

The optimizer's job is to follow solar surplus, so the fake needs a believable day: no
production at night, a sine-ish arc from sunrise to sunset whose height and length follow the
season and latitude, weather that differs day to day, and a house load with morning and evening
peaks. All "randomness" comes from a hash of (seed, key), never from global state, so the same
seed gives the same curve whatever order the buckets are asked for in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

_MASK64 = (1 << 64) - 1
BUCKET_S = 900  # Enlighten's quarter-hour interval


def noise(seed: int, *keys: int) -> float:
    """A uniform number in [0, 1) from (seed, keys): splitmix64, cheap and stable across runs."""
    x = seed & _MASK64
    for key in keys:
        x = (x ^ (key & _MASK64)) + 0x9E3779B97F4A7C15 & _MASK64
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK64
        x ^= x >> 31
    return (x >> 11) / float(1 << 53)


@lru_cache(maxsize=4096)
def _daylight(latitude: float, noon: float) -> tuple[float, float, float]:
    """(sunrise, sunset, noon elevation) of the solar day whose noon is ``noon``: one per day,
    where every PV reading used to recompute it (a fresh site's 28 days took 0.29 s)."""
    doy = datetime.fromtimestamp(noon, UTC).timetuple().tm_yday
    decl = -23.44 * math.cos(2.0 * math.pi / 365.0 * (doy + 10))
    lat_r, decl_r = math.radians(latitude), math.radians(decl)
    cos_w0 = max(-1.0, min(1.0, -math.tan(lat_r) * math.tan(decl_r)))
    half_day_s = math.degrees(math.acos(cos_w0)) / 15.0 * 3600.0
    elevation = 90.0 - abs(latitude - decl)
    return noon - half_day_s, noon + half_day_s, elevation


@lru_cache(maxsize=4096)
def _day_weather(seed: int, day: int) -> float:
    """Fraction of clear-sky output for the day: mostly sunny, sometimes overcast."""
    r = noise(seed, 1, day)
    if r < 0.2:
        return 0.25 + 0.3 * noise(seed, 2, day)
    return 0.8 + 0.2 * noise(seed, 3, day)


_BUCKETS: dict[tuple[object, ...], dict[int, float]] = {}
"""Bucket integrals (Wh) by the curve's parameters and the bucket: shared by every site with the
same parameters, so each test's fresh fake does not integrate the same 28 days again (11% of
the suite's CPU). A pure function's memo: a changed parameter is a different key."""


@dataclass
class SiteCurves:
    """PV and house-load power (W) as functions of epoch seconds, plus bucket integrals (Wh)."""

    latitude: float = -37.81
    longitude: float = 144.96
    timezone: str = "Australia/Melbourne"
    pv_peak_w: float = 6000.0
    base_load_w: float = 350.0
    morning_peak_w: float = 1100.0
    evening_peak_w: float = 1900.0
    seed: int = 0

    def __post_init__(self) -> None:
        self._tz = ZoneInfo(self.timezone)

    # --- PV ----------------------------------------------------------------------------------

    def _solar_day(self, t: float) -> tuple[int, float]:
        """(day index, solar-noon epoch) of the solar day containing ``t``."""
        noon0 = (12.0 - self.longitude / 15.0) * 3600.0
        n = round((t - noon0) / 86400.0)
        return n, noon0 + n * 86400.0

    def daylight(self, t: float) -> tuple[float, float, float]:
        """(sunrise, sunset, noon elevation in degrees) of the solar day containing ``t``."""
        _, noon = self._solar_day(t)
        return _daylight(self.latitude, noon)

    def day_weather(self, t: float) -> float:
        """Fraction of clear-sky output for the day: mostly sunny, sometimes overcast."""
        n, _ = self._solar_day(t)
        return _day_weather(self.seed, n)

    def pv_w(self, t: float) -> float:
        sunrise, sunset, elevation = self.daylight(t)
        if not sunrise < t < sunset:
            return 0.0
        x = (t - sunrise) / (sunset - sunrise)
        season = max(0.0, math.sin(math.radians(elevation))) / math.sin(math.radians(75.0))
        shape = float(math.sin(math.pi * x) ** 1.3)
        # Passing clouds: a quarter-hour-scale dip, stronger on poor days.
        slot = int(t // BUCKET_S)
        weather = self.day_weather(t)
        cloud = 1.0 - (1.0 - weather) * 0.5 * noise(self.seed, 4, slot)
        return max(0.0, self.pv_peak_w * min(1.0, season) * shape * weather * cloud)

    # --- house load --------------------------------------------------------------------------

    def load_w(self, t: float) -> float:
        local = datetime.fromtimestamp(t, self._tz)
        hour = local.hour + local.minute / 60.0 + local.second / 3600.0
        morning = self.morning_peak_w * math.exp(-(((hour - 7.5) / 1.0) ** 2) / 2.0)
        evening = self.evening_peak_w * math.exp(-(((hour - 18.75) / 1.6) ** 2) / 2.0)
        midday = 0.25 * self.morning_peak_w * math.exp(-(((hour - 12.5) / 1.5) ** 2) / 2.0)
        slot = int(t // BUCKET_S)
        jitter = 0.85 + 0.3 * noise(self.seed, 5, slot)
        return (self.base_load_w + morning + evening + midday) * jitter

    # --- integrals ---------------------------------------------------------------------------

    def pv_wh(self, start: float) -> float:
        """PV energy in the quarter-hour bucket starting at ``start`` (epoch s)."""
        return self._bucket("pv", start)

    def load_wh(self, start: float) -> float:
        """House load (without the EV charger) in the bucket starting at ``start``."""
        return self._bucket("load", start)

    def buckets_wh(self, first: float, count: int) -> tuple[list[float], list[float]]:
        """PV and house load (Wh) of ``count`` buckets from ``first``: each `lifetime_energy`
        reply reads its whole history, so the memo's keys are made here once per reply's
        parameters rather than per bucket."""
        pv = self._column("pv", first, count)
        load = self._column("load", first, count)
        return pv, load

    def _bucket(self, series: str, start: float) -> float:
        return self._column(series, start, 1)[0]

    def _params(self, series: str) -> tuple[object, ...]:
        if series == "pv":
            return (series, self.seed, self.latitude, self.longitude, self.pv_peak_w)
        return (
            series,
            self.seed,
            self.timezone,
            self.base_load_w,
            self.morning_peak_w,
            self.evening_peak_w,
        )

    def _column(self, series: str, first: float, count: int) -> list[float]:
        memo = _BUCKETS.setdefault(self._params(series), {})
        f = self.pv_w if series == "pv" else self.load_w
        step = BUCKET_S / 4.0
        out = []
        for i in range(count):
            at = first + i * BUCKET_S
            value = memo.get(int(at))
            if value is None:
                # Simpson's rule on five points: smooth curves, exact enough for Wh integers.
                ys = [f(at + k * step) for k in range(5)]
                watts = (ys[0] + 4 * ys[1] + 2 * ys[2] + 4 * ys[3] + ys[4]) / 12.0
                value = watts * BUCKET_S / 3600.0
                memo[int(at)] = value
            out.append(value)
        return out
