"""The site's expected PV and surplus for the next hours, from its own history (offline).

Why this shape: a planner that waits for the sun needs to know how much sun is coming, and the
only data every site has is its own production. So the model is physical where physics is
certain and learned where it is not (docs/forecast.md):

1. **Clear sky** for the site (pvlib: solar position, Ineichen clear-sky irradiance, the
   Hay-Davies plane-of-array transposition) on the panels' plane. The plane (tilt, azimuth) and
   the array's size (``peak_w``, watts at 1000 W/m2 on the plane) come from the config or are
   **learned** (:func:`learn_orientation`): the clearest days of the last weeks are chosen by
   their smooth, high production, and a grid search then a least-squares refinement fit the
   plane whose clear-sky shape matches them best, the size in closed form.
2. **A clear-sky index** (measured / clear-sky energy) learned from recent history
   (:func:`learn_index`): per band of the solar day (morning, midday, afternoon) the 10th,
   50th and 90th percentiles of each day's index over the last ``index_days``; and the index
   of the last hours, which persists into the next ones and fades (time constant ``tau_h``)
   into the climatological one further out. The percentiles give the p10/p50/p90 band.
3. **The house load** by day type (weekday, Saturday, Sunday) and local quarter hour: the median
   of the last ``load_days`` (:func:`house_profile`). Surplus is PV minus that load.

Everything is a function of arrays (numpy) and of ``now``: :func:`forecast_at` uses only the
buckets that ended by ``now`` (no peeking; a test changes the future and sees nothing change).
Sun geometry and clear-sky irradiance are computed once per UTC day and remembered
(:func:`sky`), so a planner can rebuild the forecast each tick cheaply (``make bench``).

pvlib and pandas are imported inside the functions that need them: this module is imported
only by code that forecasts, and never at the CLI's, the config's or the service's import.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from optimizer.forecast.site import Site

if TYPE_CHECKING:
    from optimizer.enlighten.models import LifetimeEnergy
    from optimizer.forecast.online import OnlinePV

__all__ = [
    "STEP_S",
    "Forecast",
    "ForecastError",
    "ForecastReuse",
    "Orientation",
    "PowerHistory",
    "Site",
    "Sky",
    "SkyIndex",
    "clear_sky_w",
    "forecast_at",
    "house_profile",
    "learn_index",
    "learn_orientation",
    "sky",
]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

STEP_S = 900  # Enlighten's 15-minute buckets, and the forecast's steps
DAY_S = 86_400
STEPS_PER_DAY = DAY_S // STEP_S
# The Ineichen model's Linke turbidity: a fixed mid value. The site's real haze is part of
# what the learned clear-sky index absorbs, so a per-month lookup (an HDF5 file) buys little.
LINKE_TURBIDITY = 3.0
ALBEDO = 0.25
# Cloud enhancement lets a bucket exceed clear sky by a little, never by this much: a reading
# above it is not physics (a meter glitch, a wrong unit) and is left out of the index.
K_MAX = 1.4
# Below this share of peak the clear-sky power is too small for a ratio to mean anything.
MIN_CLEAR_SHARE = 0.05
# Solar-hour edges of the index bands: morning, midday, afternoon.
BAND_EDGES_H = (0.0, 10.0, 14.0, 24.0)
MIN_INDEX_DAYS = 5  # days of a band below which the pooled bands stand in
# With no usable history at all: a cautious guess, wide (docs/forecast.md).
DEFAULT_INDEX = (0.3, 0.7, 1.0)
MIN_CLEAR_DAYS = 3
MAX_CLEAR_DAYS = 12
CLEAR_DAY_RMS = 0.1  # relative RMS error under which a day counts as clear (second pass)
SKY_CACHE_DAYS = 2_000
CLIPPED_SHARE = 0.97  # of the clear days' highest reading: above it, maybe inverter clipping

Band = tuple[float, float, float]


class ForecastError(ValueError):
    """The history cannot support a forecast (too short, no clear day); the message says what
    would help."""


@dataclass(frozen=True)
class Orientation:
    """The panels' plane and size; ``azimuth_deg`` as pvlib: 180 faces south, 0 north."""

    tilt_deg: float
    azimuth_deg: float
    peak_w: float  # output at 1000 W/m2 on the plane (a kWp-equivalent, losses included)
    source: Literal["config", "learned"] = "config"
    clear_days: int = 0  # days the fit used
    rms: float | None = None  # the fit's relative RMS error on those days

    def to_json(self) -> dict[str, Any]:
        return {
            "tilt_deg": round(self.tilt_deg, 1),
            "azimuth_deg": round(self.azimuth_deg, 1),
            "peak_w": round(self.peak_w),
            "source": self.source,
            "clear_days": self.clear_days,
            "rms": None if self.rms is None else round(self.rms, 3),
        }


@dataclass(frozen=True)
class PowerHistory:
    """Average power per 15-minute bucket, oldest first; NaN is a gap (never zero).

    ``start_s`` are the buckets' starts in UTC epoch seconds, on quarter hours, increasing.
    ``house_w`` is the house's own load (consumption minus the car).
    """

    start_s: Ints
    pv_w: Floats
    house_w: Floats

    def __post_init__(self) -> None:
        n = len(self.start_s)
        if len(self.pv_w) != n or len(self.house_w) != n:
            raise ValueError("start_s, pv_w and house_w must have one value per bucket")
        if n and (np.any(self.start_s % STEP_S) or np.any(np.diff(self.start_s) <= 0)):
            raise ValueError("bucket starts must be increasing quarter hours (UTC epoch s)")

    def __len__(self) -> int:
        return len(self.start_s)

    def before(self, now_s: float) -> PowerHistory:
        """The buckets that had ended by ``now_s``: all a causal forecast may see."""
        cut = int(np.searchsorted(self.start_s + STEP_S, now_s, side="right"))
        return self._slice(0, cut)

    def last_days(self, days: float, *, now_s: float) -> PowerHistory:
        """The buckets that started within ``days`` before ``now_s``."""
        first = int(np.searchsorted(self.start_s, now_s - days * DAY_S, side="left"))
        return self._slice(first, len(self))

    def _slice(self, first: int, last: int) -> PowerHistory:
        return PowerHistory(
            self.start_s[first:last], self.pv_w[first:last], self.house_w[first:last]
        )

    @classmethod
    def from_lifetime(cls, energy: LifetimeEnergy) -> PowerHistory:
        """From Enlighten's ``lifetime_energy`` (15-minute buckets of Wh)."""
        if energy.interval.total_seconds() != STEP_S:
            raise ForecastError(
                "the forecast needs 15-minute lifetime energy buckets, "
                f"got {energy.interval.total_seconds():g} s ones"
            )
        n = energy.bucket_count
        origin = int(energy.bucket_start(0).astimezone(UTC).timestamp())
        start_s = origin + STEP_S * np.arange(n, dtype=np.int64)
        per_hour = 3600 / STEP_S
        pv = _column(energy.values("production"), n) * per_hour
        consumption = _column(energy.values("consumption"), n)
        evse_values = energy.values("evse")
        evse = _column(evse_values, n) if evse_values else np.zeros(n)  # no charger, no draw
        return cls(start_s, pv, (consumption - evse) * per_hour)


def _column(values: tuple[float | None, ...], n: int) -> Floats:
    out = np.full(n, np.nan)
    out[: len(values)] = [np.nan if v is None else v for v in values]
    return out


# --- sun and clear sky -------------------------------------------------------------------------


@dataclass(frozen=True)
class Sky:
    """Sun and clear-sky irradiance at each bucket's midpoint (degrees, W/m2)."""

    zenith: Floats
    azimuth: Floats
    dni: Floats
    ghi: Floats
    dhi: Floats
    dni_extra: Floats


_SKY_CACHE: OrderedDict[tuple[float, float, float, int], npt.NDArray[np.float64]] = OrderedDict()


def _sky_days(site: Site, days: list[int]) -> None:
    """Compute and remember the sky of whole UTC days at once (one pvlib call for all)."""
    import pandas as pd  # noqa: PLC0415 - lazy: pvlib and pandas load only to forecast
    from pvlib.irradiance import get_extra_radiation  # noqa: PLC0415
    from pvlib.location import Location  # noqa: PLC0415

    starts = np.concatenate([day * DAY_S + STEP_S * np.arange(STEPS_PER_DAY) for day in days])
    times = pd.DatetimeIndex(pd.to_datetime(starts + STEP_S // 2, unit="s", utc=True))
    location = Location(site.latitude, site.longitude, "UTC", site.altitude_m)
    position = location.get_solarposition(times)
    clear = location.get_clearsky(
        times, model="ineichen", solar_position=position, linke_turbidity=LINKE_TURBIDITY
    )
    dni_extra = get_extra_radiation(times)
    table = np.vstack(
        [
            position["apparent_zenith"].to_numpy(dtype=float),
            position["azimuth"].to_numpy(dtype=float),
            clear["dni"].to_numpy(dtype=float),
            clear["ghi"].to_numpy(dtype=float),
            clear["dhi"].to_numpy(dtype=float),
            np.asarray(dni_extra, dtype=float),
        ]
    )
    for index, day in enumerate(days):
        key = (site.latitude, site.longitude, site.altitude_m, day)
        _SKY_CACHE[key] = table[:, index * STEPS_PER_DAY : (index + 1) * STEPS_PER_DAY]
    while len(_SKY_CACHE) > SKY_CACHE_DAYS:
        _SKY_CACHE.popitem(last=False)


def sky(site: Site, start_s: Ints) -> Sky:
    """The sky over buckets starting at ``start_s``, from per-day tables computed once."""
    days = start_s // DAY_S
    wanted = sorted({int(d) for d in np.unique(days)})
    missing = [
        d for d in wanted if (site.latitude, site.longitude, site.altitude_m, d) not in _SKY_CACHE
    ]
    if missing:
        _sky_days(site, missing)
    if not wanted:
        return Sky(*(np.empty(0) for _ in range(6)))
    slots = (start_s % DAY_S) // STEP_S
    # One gather from the days' tables stacked (a mask per day was a year's clear sky cost:
    # 366 passes over 35,000 buckets each time the planner's replay fitted its plane).
    tables = np.stack(
        [_SKY_CACHE[(site.latitude, site.longitude, site.altitude_m, day)] for day in wanted]
    )
    out = tables[np.searchsorted(wanted, days), :, slots].T
    return Sky(out[0], out[1], out[2], out[3], out[4], out[5])


def _plane_w_per_w(tilt: Any, azimuth: Any, where: Sky) -> Floats:
    """Clear-sky plane-of-array irradiance / 1000 W/m2 (watts per watt of peak); ``tilt`` and
    ``azimuth`` may be arrays of shape (k, 1) to evaluate k planes at once."""
    from pvlib.irradiance import get_total_irradiance  # noqa: PLC0415 - lazy, see module doc

    poa = get_total_irradiance(
        tilt,
        azimuth,
        where.zenith,
        where.azimuth,
        where.dni,
        where.ghi,
        where.dhi,
        dni_extra=where.dni_extra,
        albedo=ALBEDO,
        model="haydavies",
    )["poa_global"]
    return np.asarray(np.nan_to_num(poa, nan=0.0), dtype=float) / 1000.0


def clear_sky_w(site: Site, orientation: Orientation, start_s: Ints) -> Floats:
    """The array's clear-sky output (W) over each bucket."""
    where = sky(site, start_s)
    return orientation.peak_w * _plane_w_per_w(orientation.tilt_deg, orientation.azimuth_deg, where)


def solar_hour(site: Site, start_s: Ints) -> Floats:
    """Mean solar time (hours) at each bucket's midpoint: the sun's clock, free of DST."""
    shifted = start_s + STEP_S / 2 + site.longitude / 360 * DAY_S
    return np.asarray((shifted % DAY_S) / 3600, dtype=float)


def solar_day(site: Site, start_s: Ints) -> Ints:
    """The solar day of each bucket (days since the epoch, cut at solar midnight), so a day's
    daylight is never split whatever the time zone."""
    return np.asarray((start_s + site.longitude / 360 * DAY_S) // DAY_S, dtype=np.int64)


# --- orientation -------------------------------------------------------------------------------


def _clear_days(pv: Floats, where: Sky, day: Ints) -> list[int]:
    """The days most likely cloudless: complete, high production against the sun's, smooth.

    First pass, before any plane is known: a day's energy against horizontal clear-sky
    energy ranks how sunny it was (a cloudy day is low whatever the plane), and the second
    difference of its curve against its energy ranks how smooth (passing clouds make jumps).
    """
    daylight = where.ghi > 20
    stats: list[tuple[int, float, float]] = []
    for d in np.unique(day[daylight]):
        mask = daylight & (day == d)
        values = pv[mask]
        if mask.sum() < 16 or np.isnan(values).any() or values.sum() <= 0:
            continue
        ratio = float(values.sum() / where.ghi[mask].sum())
        rough = float(np.abs(np.diff(values, n=2)).sum() / values.sum())
        stats.append((int(d), ratio, rough))
    if not stats:
        return []
    ratios = np.array([s[1] for s in stats])
    floor = 0.8 * float(np.quantile(ratios, 0.9))
    sunny = sorted((s for s in stats if s[1] >= floor), key=lambda s: s[2])
    return [s[0] for s in sunny[:MAX_CLEAR_DAYS]]


def _fit_peak(unit: Floats, pv: Floats) -> tuple[Floats, Floats]:
    """Best size per candidate plane (closed form) and its sum of squared errors."""
    peak = (unit @ pv) / np.maximum((unit * unit).sum(axis=-1), 1e-12)
    errors = pv - peak[..., None] * unit
    return peak, (errors * errors).sum(axis=-1)


def _fit_plane(
    where: Sky, pv: Floats, *, tilt: float | None, azimuth: float | None
) -> tuple[float, float, float]:
    """Grid search over planes (5 by 10 degrees), then a least-squares refinement."""
    from scipy.optimize import least_squares  # type: ignore[import-untyped]  # noqa: PLC0415

    tilts = np.arange(0.0, 91.0, 5.0) if tilt is None else np.array([tilt])
    azimuths = np.arange(0.0, 360.0, 10.0) if azimuth is None else np.array([azimuth])
    grid_t, grid_a = np.meshgrid(tilts, azimuths, indexing="ij")
    candidates_t, candidates_a = grid_t.reshape(-1, 1), grid_a.reshape(-1, 1)
    unit = _plane_w_per_w(candidates_t, candidates_a, where)
    peak, sse = _fit_peak(unit, pv)
    best = int(np.argmin(sse))
    t0, a0 = float(candidates_t[best, 0]), float(candidates_a[best, 0])
    if tilt is not None and azimuth is not None:
        return t0, a0, float(peak[best])

    def residuals(x: Floats) -> Floats:
        t = x[0] if tilt is None else tilt
        a = x[1] if azimuth is None else azimuth
        u = _plane_w_per_w(t, a, where)
        p, _ = _fit_peak(u[None, :], pv)
        return np.asarray(pv - p[0] * u, dtype=float)

    lower = [0.0, a0 - 20.0]
    upper = [90.0, a0 + 20.0]
    start = [min(max(t0, 0.5), 89.5), a0]
    fit = least_squares(residuals, start, bounds=(lower, upper), x_scale=[10.0, 10.0])
    t = float(fit.x[0]) if tilt is None else tilt
    a = float(fit.x[1]) % 360 if azimuth is None else azimuth
    u = _plane_w_per_w(t, a, where)
    p, _ = _fit_peak(u[None, :], pv)
    return t, a, float(p[0])


def learn_orientation(
    history: PowerHistory,
    site: Site,
    *,
    now_s: float,
    days: float = 60,
    tilt: float | None = None,
    azimuth: float | None = None,
) -> Orientation:
    """The panels' plane and size fitted to the clearest recent days (docs/forecast.md).

    ``tilt``/``azimuth`` given (the config) are kept and only the rest is fitted. Two passes:
    the first picks clear days without a plane (:func:`_clear_days`); the second keeps the
    days the first fit explains within :data:`CLEAR_DAY_RMS` and fits again, so one hazy day
    taken for clear does not bend the plane. Raises ForecastError with fewer than
    :data:`MIN_CLEAR_DAYS` such days (a cloudy month has no clear-sky shape to fit).
    """
    recent = history.before(now_s).last_days(days, now_s=now_s)
    pv = np.where(recent.pv_w < 0, np.nan, recent.pv_w)  # negative production is no reading
    where = sky(site, recent.start_s)
    day = solar_day(site, recent.start_s)
    chosen = _clear_days(pv, where, day)
    if len(chosen) < MIN_CLEAR_DAYS:
        raise ForecastError(
            f"{len(chosen)} clear day(s) with complete production in the last {days:g} days, "
            f"need {MIN_CLEAR_DAYS} to learn the panels' orientation; set forecast.tilt, "
            "forecast.azimuth and forecast.peak_w in the config"
        )
    fit = _fit_on_days(where, pv, day, chosen, tilt=tilt, azimuth=azimuth)
    again = _explained_days(where, pv, day, fit)
    if len(again) < MIN_CLEAR_DAYS:  # the sunniest days were not clear ones: no shape to fit
        raise ForecastError(
            f"{len(again)} day(s) in the last {days:g} days look cloudless (a clear-sky curve "
            f"fits them within {CLEAR_DAY_RMS:.0%}), need {MIN_CLEAR_DAYS} to learn the "
            "panels' orientation; set forecast.tilt, forecast.azimuth and forecast.peak_w "
            "in the config"
        )
    if set(again) != set(chosen):
        fit, chosen = _fit_on_days(where, pv, day, again, tilt=tilt, azimuth=azimuth), again
    return replace(fit, clear_days=len(chosen), rms=_rms(where, pv, day, chosen, fit))


def _fit_on_days(
    where: Sky,
    pv: Floats,
    day: Ints,
    chosen: list[int],
    *,
    tilt: float | None,
    azimuth: float | None,
) -> Orientation:
    mask = np.isin(day, chosen) & (where.ghi > 20) & np.isfinite(pv)
    # An inverter smaller than the array clips the clear-day peak flat: those buckets say how
    # big the inverter is, not how the panels face, so the fit leaves them out.
    if mask.any():
        mask &= pv < CLIPPED_SHARE * float(np.nanmax(pv[mask]))
    t, a, p = _fit_plane(_take(where, mask), pv[mask], tilt=tilt, azimuth=azimuth)
    return Orientation(tilt_deg=t, azimuth_deg=a, peak_w=p, source="learned")


def _take(where: Sky, mask: npt.NDArray[np.bool_]) -> Sky:
    return Sky(*(np.asarray(getattr(where, name))[mask] for name in Sky.__dataclass_fields__))


def _day_rms(where: Sky, pv: Floats, day: Ints, fit: Orientation) -> dict[int, float]:
    model = fit.peak_w * _plane_w_per_w(fit.tilt_deg, fit.azimuth_deg, where)
    out: dict[int, float] = {}
    daylight = where.ghi > 20
    for d in np.unique(day[daylight]):
        mask = daylight & (day == d)
        if mask.sum() < 16 or np.isnan(pv[mask]).any() or model[mask].mean() <= 0:
            continue
        error = pv[mask] - model[mask]
        out[int(d)] = float(np.sqrt(np.mean(error * error)) / model[mask].mean())
    return out


def _explained_days(where: Sky, pv: Floats, day: Ints, fit: Orientation) -> list[int]:
    ranked = sorted((rms, d) for d, rms in _day_rms(where, pv, day, fit).items())
    return [d for rms, d in ranked if rms < CLEAR_DAY_RMS][:MAX_CLEAR_DAYS]


def _rms(where: Sky, pv: Floats, day: Ints, chosen: list[int], fit: Orientation) -> float:
    errors = _day_rms(where, pv, day, fit)
    values = [errors[d] for d in chosen if d in errors]
    return float(np.mean(values)) if values else math.nan


# --- clear-sky index ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SkyIndex:
    """Measured / clear-sky energy: per band the p10, p50, p90 of recent days, and the last
    hours' value (None at night or without readings)."""

    bands: tuple[Band, ...]
    recent: float | None
    days: int  # days with a band value behind the percentiles

    def to_json(self) -> dict[str, Any]:
        names = ("morning", "midday", "afternoon")
        return {
            "bands": {
                name: [round(q, 3) for q in band]
                for name, band in zip(names, self.bands, strict=True)
            },
            "recent": None if self.recent is None else round(self.recent, 3),
            "days": self.days,
        }


def _band_of(hours: Floats) -> Ints:
    return np.asarray(np.searchsorted(BAND_EDGES_H, hours, side="right") - 1, dtype=np.int64)


def learn_index(
    history: PowerHistory,
    site: Site,
    orientation: Orientation,
    *,
    now_s: float,
    days: float = 30,
    recent_h: float = 2.0,
) -> SkyIndex:
    """The clear-sky index of the last ``days`` (per band and day) and of the last hours.

    A bucket counts only where the clear-sky output is at least :data:`MIN_CLEAR_SHARE` of
    peak, its reading is a number, not negative and not above :data:`K_MAX` times clear sky
    (physics: such a reading is a glitch, not sun).
    """
    recent = history.before(now_s).last_days(days, now_s=now_s)
    clear = clear_sky_w(site, orientation, recent.start_s)
    pv = recent.pv_w
    valid = (
        (clear >= MIN_CLEAR_SHARE * orientation.peak_w)
        & np.isfinite(pv)
        & (pv >= 0)
        & (pv <= K_MAX * clear)
    )
    band = _band_of(solar_hour(site, recent.start_s))
    day = solar_day(site, recent.start_s)
    per_band: list[list[float]] = [[] for _ in range(len(BAND_EDGES_H) - 1)]
    sunlit = clear >= MIN_CLEAR_SHARE * orientation.peak_w
    for d in np.unique(day[sunlit]):
        for b in range(len(per_band)):
            cell = sunlit & (day == d) & (band == b)
            good = cell & valid
            if cell.sum() and good.sum() >= max(2, cell.sum() / 2):
                per_band[b].append(float(pv[good].sum() / clear[good].sum()))
    pooled = [k for ks in per_band for k in ks]
    bands = tuple(
        _quantiles(ks) if len(ks) >= MIN_INDEX_DAYS else _quantiles(pooled) for ks in per_band
    )
    last = valid & (recent.start_s + STEP_S > now_s - recent_h * 3600)
    index = float(pv[last].sum() / clear[last].sum()) if last.sum() >= 2 else None
    days_seen = len({int(d) for d in day[sunlit & valid]})
    return SkyIndex(bands=bands, recent=index, days=days_seen)


def _quantiles(values: list[float]) -> Band:
    if len(values) < MIN_INDEX_DAYS:
        return DEFAULT_INDEX
    low, mid, high = np.quantile(np.asarray(values), [0.1, 0.5, 0.9])
    return float(low), float(mid), float(high)


# --- house load --------------------------------------------------------------------------------


def _local_slots(timezone: str, start_s: Ints) -> tuple[Ints, Ints]:
    """Day type (0 weekday, 1 Saturday, 2 Sunday) and local quarter hour of each bucket."""
    import pandas as pd  # noqa: PLC0415 - lazy, see module doc

    local = pd.DatetimeIndex(pd.to_datetime(start_s, unit="s", utc=True)).tz_convert(timezone)
    weekday = local.day_of_week.to_numpy()
    kind = np.where(weekday < 5, 0, weekday - 4)
    slot = (local.hour.to_numpy() * 60 + local.minute.to_numpy()) // 15
    return np.asarray(kind, dtype=np.int64), np.asarray(slot, dtype=np.int64)


def house_profile(
    history: PowerHistory, site: Site, start_s: Ints, *, now_s: float, days: float = 28
) -> Floats:
    """The house's expected load over buckets ``start_s``: the median of the last ``days`` at
    the same local quarter hour on the same day type (weekday, Saturday, Sunday), else on
    any day, else the median of all; NaN without any reading. Medians, so a single wrong
    reading moves nothing; a negative load is not physics and is left out."""
    recent = history.before(now_s).last_days(days, now_s=now_s)
    house = np.where(recent.house_w < 0, np.nan, recent.house_w)
    kind, slot = _local_slots(site.timezone, recent.start_s)
    good = np.isfinite(house)
    by_type = np.full(3 * STEPS_PER_DAY, np.nan)
    by_slot = np.full(STEPS_PER_DAY, np.nan)
    order = np.lexsort((house[good], kind[good] * STEPS_PER_DAY + slot[good]))
    keys = (kind[good] * STEPS_PER_DAY + slot[good])[order]
    values = house[good][order]
    for key, part in _groups(keys, values):
        if len(part) >= 2:
            by_type[key] = float(np.median(part))
    slot_order = np.lexsort((house[good], slot[good]))
    for key, part in _groups(slot[good][slot_order], house[good][slot_order]):
        by_slot[key] = float(np.median(part))
    overall = float(np.median(house[good])) if good.any() else math.nan
    want_kind, want_slot = _local_slots(site.timezone, start_s)
    out = by_type[want_kind * STEPS_PER_DAY + want_slot]
    out = np.where(np.isnan(out), by_slot[want_slot], out)
    return np.asarray(np.where(np.isnan(out), overall, out), dtype=float)


def _groups(keys: Ints, values: Floats) -> list[tuple[int, Floats]]:
    """Runs of equal ``keys`` (sorted) with their values."""
    if not len(keys):
        return []
    edges = np.flatnonzero(np.diff(keys)) + 1
    starts = np.concatenate([[0], edges])
    return [
        (int(keys[s]), values[s:e])
        for s, e in zip(starts, np.concatenate([edges, [len(keys)]]), strict=True)
    ]


# --- the forecast ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forecast:
    """Expected PV and surplus per 15-minute step from ``start_s[0]`` (the step holding
    ``made_at``), with the p10-p90 band of the clear-sky index. Surplus is PV minus the
    house's expected load; the load's own spread is not in the band (docs/forecast.md)."""

    made_at_s: float
    start_s: Ints
    clear_sky_w: Floats
    pv_p10_w: Floats
    pv_p50_w: Floats
    pv_p90_w: Floats
    house_w: Floats
    orientation: Orientation
    index: SkyIndex
    source: str = "the learned clear-sky index"  # or the online forecast that replaced it

    @property
    def surplus_p10_w(self) -> Floats:
        return self.pv_p10_w - self.house_w

    @property
    def surplus_p50_w(self) -> Floats:
        return self.pv_p50_w - self.house_w

    @property
    def surplus_p90_w(self) -> Floats:
        return self.pv_p90_w - self.house_w

    def energy_kwh(self, series: Floats) -> float:
        """A power series of this forecast summed to kWh (NaN steps left out)."""
        return float(np.nansum(series) * STEP_S / 3_600_000)

    def to_json(self) -> dict[str, Any]:
        def rounded(values: Floats) -> list[float | None]:
            return [None if math.isnan(v) else round(float(v)) for v in values]

        return {
            "made_at": datetime.fromtimestamp(self.made_at_s, UTC).isoformat(),
            "step_s": STEP_S,
            "orientation": self.orientation.to_json(),
            "index": self.index.to_json(),
            "source": self.source,
            "pv_kwh": {
                "p10": round(self.energy_kwh(self.pv_p10_w), 2),
                "p50": round(self.energy_kwh(self.pv_p50_w), 2),
                "p90": round(self.energy_kwh(self.pv_p90_w), 2),
            },
            "steps": [
                {
                    "start": datetime.fromtimestamp(int(s), UTC).isoformat(),
                    "clear_sky_w": c,
                    "pv_p10_w": p10,
                    "pv_p50_w": p50,
                    "pv_p90_w": p90,
                    "house_w": h,
                    "surplus_p50_w": None if p50 is None or h is None else p50 - h,
                }
                for s, c, p10, p50, p90, h in zip(
                    self.start_s,
                    rounded(self.clear_sky_w),
                    rounded(self.pv_p10_w),
                    rounded(self.pv_p50_w),
                    rounded(self.pv_p90_w),
                    rounded(self.house_w),
                    strict=True,
                )
            ],
        }


@dataclass(frozen=True)
class _Parts:
    """What a forecast made within one step from the same history shares: everything but
    the blend of the last hours' index into the bands, which moves with ``now``."""

    start_s: Ints
    clear_sky_w: Floats
    bands: Floats  # (steps, 3): the day's p10/p50/p90 index at each step, before the blend
    house_w: Floats
    index: SkyIndex


class ForecastReuse:
    """The costly parts of the last forecast, for the next one made from the same history.

    The live planner forecasts at every 30 s tick, while what the forecast learns from
    changes once per 15-minute bucket: the clear-sky index's days and last hours, the
    house's days, the steps ahead. Those parts are kept under a key of exactly what they
    read (the history object and the first and last bucket of each window), so a reused
    forecast is the one :func:`forecast_at` would have made, to the last bit; only the
    blend of the recent index, which depends on the minute, is made again."""

    def __init__(self) -> None:
        self._history: PowerHistory | None = None
        self._key: tuple[object, ...] | None = None
        self._parts: _Parts | None = None
        self.reused = 0

    def get(self, history: PowerHistory, key: tuple[object, ...]) -> _Parts | None:
        if self._history is history and self._key == key:
            self.reused += 1
            return self._parts
        return None

    def keep(self, history: PowerHistory, key: tuple[object, ...], parts: _Parts) -> None:
        self._history, self._key, self._parts = history, key, parts


def forecast_at(
    history: PowerHistory,
    now: datetime | float,
    *,
    site: Site,
    orientation: Orientation | None = None,
    horizon_h: float = 48,
    index_days: float = 30,
    load_days: float = 28,
    orientation_days: float = 60,
    recent_h: float = 2.0,
    tau_h: float = 3.0,
    reuse: ForecastReuse | None = None,
    online: OnlinePV | None = None,
) -> Forecast:
    """The forecast as it could be made at ``now``, from the buckets that ended by then only.

    Without ``orientation`` it is learned first (:func:`learn_orientation`, the slow part: a
    planner learns it once a day and passes it in). Step ``i`` of the horizon uses the index
    ``w * recent + (1 - w) * q`` for each percentile ``q`` of its band, ``w = exp(-lead /
    tau_h)``: the last hours' sky persists for the next ones, the climate takes over later.
    With ``reuse``, the parts that only change with a new bucket are kept between calls.
    With ``online`` (optimizer/forecast/online.py), its index is the bands' p50 where it
    reaches, before the last hours' index is blended in.
    """
    now_s = now.timestamp() if isinstance(now, datetime) else float(now)
    known = history.before(now_s)
    if orientation is None:
        orientation = learn_orientation(known, site, now_s=now_s, days=orientation_days)
    first = int(now_s // STEP_S) * STEP_S
    steps = max(1, math.ceil(horizon_h * 3600 / STEP_S))
    parts = key = None
    if reuse is not None:
        starts = known.start_s
        key = (
            len(known),
            int(np.searchsorted(starts, now_s - index_days * DAY_S, side="left")),
            int(np.searchsorted(starts, now_s - load_days * DAY_S, side="left")),
            int(np.searchsorted(starts + STEP_S, now_s - recent_h * 3600, side="right")),
            first,
            steps,
            site,
            orientation,
        )
        parts = reuse.get(history, key)
    if parts is None:
        index = learn_index(
            known, site, orientation, now_s=now_s, days=index_days, recent_h=recent_h
        )
        start_s = first + STEP_S * np.arange(steps, dtype=np.int64)
        parts = _Parts(
            start_s=start_s,
            clear_sky_w=clear_sky_w(site, orientation, start_s),
            bands=np.asarray(index.bands)[_band_of(solar_hour(site, start_s))],
            house_w=house_profile(known, site, start_s, now_s=now_s, days=load_days),
            index=index,
        )
        if reuse is not None and key is not None:
            reuse.keep(history, key, parts)
    bands, clear = parts.bands, parts.clear_sky_w
    source = "the learned clear-sky index"
    if online is not None:
        bands = online.bands(parts.start_s, clear, bands)
        source = online.source
    if parts.index.recent is not None:
        lead_h = np.maximum(parts.start_s + STEP_S / 2 - now_s, 0.0) / 3600
        weight = np.exp(-lead_h / tau_h)[:, None]
        bands = weight * parts.index.recent + (1 - weight) * bands
    return Forecast(
        made_at_s=now_s,
        start_s=parts.start_s,
        clear_sky_w=clear,
        pv_p10_w=clear * bands[:, 0],
        pv_p50_w=clear * bands[:, 1],
        pv_p90_w=clear * bands[:, 2],
        house_w=parts.house_w,
        orientation=orientation,
        index=parts.index,
        source=source,
    )
