"""The simulator's forecast: what the site could have expected at each tick, from the past only.

Costs matter (the sample year is 35,040 ticks), so the forecast of docs/forecast.md is split
by how fast each part moves:

- **Once a week** the panels' plane (:func:`~optimizer.forecast.solar.learn_orientation`,
  the slow fit), and with it the clear-sky output of every bucket of the series at once;
- **once a day** (local midnight) the clear-sky index's p10/p50/p90 per band of the solar
  day and the house-load profile for the next :data:`DAY_AHEAD_H` hours;
- **per tick** only the last hours' index (measured / clear sky over the buckets that had
  ended), faded into the day's bands with lead time as :func:`forecast_at` does.

Before the history supports a plane (the first days) there is no outlook, and the
``solar_plan`` kind follows the current surplus, saying so.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from optimizer.config import Config
from optimizer.forecast import solar
from optimizer.planner.outlook import STEP_S, SurplusOutlook
from optimizer.planner.plane import plane
from optimizer.simulate.series import BUCKET_H, SiteSeries

__all__ = ["CausalOutlooks", "surplus_outlook"]

ORIENTATION_DAYS = 7
WARM_PROBE_DAYS = 8 * ORIENTATION_DAYS
"""How far :meth:`CausalOutlooks.warm_from` looks for the first plane: each try is a fit
(50-500 ms) made before a split replay forks, so a site whose sky never fits is not tried all
year ahead of the replay (the sample's first plane holds on day 35)."""
DAY_AHEAD_H = 72
HORIZON_H = 48
RECENT_H = 2.0
TAU_H = 3.0


def surplus_outlook(
    now_s: int, pv: np.ndarray, house: np.ndarray, *, source: str
) -> SurplusOutlook:
    """The outlook of PV (steps, 3: p10/p50/p90) minus the house load (steps), from now."""
    surplus = pv - house[:, None]
    return SurplusOutlook(
        made_at_s=float(now_s),
        first_s=now_s - now_s % STEP_S,
        p10_w=tuple(float(v) for v in surplus[:, 0]),
        p50_w=tuple(float(v) for v in surplus[:, 1]),
        p90_w=tuple(float(v) for v in surplus[:, 2]),
        source=source,
        replan="change",
    )


@dataclass
class _Day:
    first_s: int
    bands: np.ndarray  # (steps, 3) index per step
    house_w: np.ndarray


class CausalOutlooks:
    """``at(index)``: the outlook at the start of bucket ``index``, or None."""

    def __init__(
        self, series: SiteSeries, config: Config, *, site: solar.Site | None = None
    ) -> None:
        configured = config.site
        self.series = series
        self.zone = ZoneInfo(series.timezone)
        if site is None and configured.latitude is not None and configured.longitude is not None:
            site = solar.Site(configured.latitude, configured.longitude, series.timezone)
        self.site = site
        self.settings = config.forecast
        to_w = 1000 / BUCKET_H
        start_s = np.array([int(s.timestamp()) for s in series.starts], dtype=np.int64)
        missing = np.array(series.missing, dtype=bool)
        pv = np.where(missing, np.nan, np.array(series.pv_kwh) * to_w)
        house = np.where(missing, np.nan, np.array(series.house_kwh) * to_w)
        self.history = solar.PowerHistory(start_s, pv, house)
        self.origin = int(start_s[0]) if len(start_s) else 0
        self.orientation: solar.Orientation | None = None
        self.oriented_on: date | None = None
        self.clear: np.ndarray | None = None
        self.days: dict[date, _Day | None] = {}
        self.fits: dict[date, solar.Orientation | None] = {}

    def _fit(self, day: date) -> solar.Orientation | None:
        """The plane as fitted at ``day``'s local midnight (None: the history could not
        support one), each day's fit made once: :meth:`warm_from` fits ahead of the replay,
        and the replay's own call, or a child's :meth:`resume` after a fork, reads it."""
        if self.site is None:
            return None
        if day not in self.fits:
            midnight = datetime.combine(day, time(0), tzinfo=self.zone).timestamp()
            try:
                self.fits[day] = plane(self.history, self.site, self.settings, now_s=midnight)
            except solar.ForecastError:
                self.fits[day] = None
        return self.fits[day]

    def _orient(self, day: date) -> None:
        if self.site is None:
            return
        if self.oriented_on is not None and (day - self.oriented_on).days < ORIENTATION_DAYS:
            return
        self.oriented_on = day
        orientation = self._fit(day)
        if orientation is None:
            return
        if orientation != self.orientation:
            self.orientation = orientation
            ahead = self.history.start_s
            tail = ahead[-1] + STEP_S * np.arange(1, DAY_AHEAD_H * 4 + 1, dtype=np.int64)
            self.clear = solar.clear_sky_w(self.site, orientation, np.concatenate([ahead, tail]))

    def _day(self, day: date) -> _Day | None:
        if day in self.days:
            return self.days[day]
        midnight = datetime.combine(day, time(0), tzinfo=self.zone).timestamp()
        self._orient(day)
        found: _Day | None = None
        if self.site is not None and self.orientation is not None:
            cfg = self.settings
            index = solar.learn_index(
                self.history, self.site, self.orientation, now_s=midnight, days=cfg.index_days
            )
            first = int(midnight // STEP_S) * STEP_S
            steps = first + STEP_S * np.arange(DAY_AHEAD_H * 4, dtype=np.int64)
            bands = np.asarray(index.bands)[solar._band_of(solar.solar_hour(self.site, steps))]
            house = solar.house_profile(
                self.history, self.site, steps, now_s=midnight, days=cfg.load_days
            )
            if index.days > 0 and np.isfinite(house).any():
                found = _Day(first, bands, house)
        self.days = {d: v for d, v in self.days.items() if (day - d).days < 2}
        self.days[day] = found
        return found

    def resume(self, index: int) -> None:
        """Fresh, take the plane as calls at every plugged-in tick before bucket ``index``
        would have left it: the second process of a replay split in two (replay.py) starts
        there. A replay asks at plugged-in ticks only, and the plane is fitted again at the
        first asked day :data:`ORIENTATION_DAYS` or more after the last fit (kept where a fit
        fails), so the days it was fitted on follow from the sessions alone; only the last
        fit that held is made. The days' bands are left to the replay's warm-up (a replay
        compares them at the cut)."""
        if self.site is None or self.oriented_on is not None or self.days:
            return
        refits = [day for _, day in self._refits(index)]
        for day in reversed(refits):
            self._orient(day)
            if self.orientation is not None:
                break
            self.oriented_on = None
        self.oriented_on = refits[-1] if refits else None

    def _refits(self, stop: int) -> Iterator[tuple[int, date]]:
        """The days the plane is fitted on (or tried) in a replay up to bucket ``stop``, each
        with its first plugged-in bucket: a replay asks at plugged-in ticks only, and fits
        again at the first asked day :data:`ORIENTATION_DAYS` or more after the last try."""
        series = self.series
        last: date | None = None
        tried: date | None = None
        for at in range(stop):
            if series.session_index(at) < 0:
                continue
            day = series.starts[at].astimezone(self.zone).date()
            if day == last:
                continue
            last = day
            if tried is None or (day - tried).days >= ORIENTATION_DAYS:
                tried = day
                yield at, day

    def warm_from(self, within_days: int = WARM_PROBE_DAYS) -> int | None:
        """The first bucket whose plugged-in ticks have a plane to forecast with, looked for
        in the first ``within_days`` of the series (None: none there, or no site). Before it,
        the ``solar_plan`` kind follows the current surplus and plans again at every tick, two
        to three times the work of a tick with a forecast (docs/performance.md): a replay in
        two processes weighs its cut by it (replay.py). The fits made here are the replay's
        own (:meth:`_fit`), made ahead."""
        if self.site is None or not self.series.starts:
            return None
        end = self.series.starts[0] + timedelta(days=within_days)
        stop = bisect_left(self.series.starts, end)
        for at, day in self._refits(stop):
            if self._fit(day) is not None:
                return at
        return None

    def state(self) -> tuple[object, ...]:
        """What it carries from one call to the next (the plane fitted and when, the clear-sky
        curve, the days' bands kept): a replay split in two compares it (replay.py)."""
        return self.oriented_on, self.orientation, self.clear, self.days

    def at(self, index: int) -> SurplusOutlook | None:
        found = self.parts(index)
        if found is None:
            return None
        now_s, pv, house = found
        return surplus_outlook(now_s, pv, house, source="forecast")

    def parts(self, index: int) -> tuple[int, np.ndarray, np.ndarray] | None:
        """The forecast at the start of bucket ``index`` in its two parts: ``now_s``, the PV
        (steps, 3: p10/p50/p90, W) and the house load (steps, W) from the step holding now;
        None without a forecast. :mod:`.perfect` swaps one part for the truth."""
        now = self.series.starts[index]
        day = self._day(now.astimezone(self.zone).date())
        if day is None or self.clear is None:
            return None
        now_s = int(now.timestamp())
        offset = (now_s - day.first_s) // STEP_S
        steps = min(HORIZON_H * 4, len(day.house_w) - offset)
        if steps <= 0:
            return None
        at = (now_s - self.origin) // STEP_S
        clear = self.clear[at : at + steps]
        bands = day.bands[offset : offset + steps]
        lead_h = (np.arange(steps) * STEP_S + STEP_S / 2) / 3600
        recent = self._recent(at)
        if recent is not None:
            weight = np.exp(-lead_h / TAU_H)[:, None]
            bands = weight * recent + (1 - weight) * bands
        house = day.house_w[offset : offset + steps]
        return now_s, clear[:, None] * bands, np.where(np.isfinite(house), house, 0.0)

    def _recent(self, at: int) -> float | None:
        """Measured / clear-sky output over the last :data:`RECENT_H` hours of ended buckets."""
        if self.clear is None or self.orientation is None:
            return None
        first = max(0, at - int(RECENT_H * 4))
        pv = self.history.pv_w[first:at]
        clear = self.clear[first:at]
        valid = (
            np.isfinite(pv)
            & (clear >= solar.MIN_CLEAR_SHARE * self.orientation.peak_w)
            & (pv >= 0)
            & (pv <= solar.K_MAX * clear)
        )
        if valid.sum() < 2:
            return None
        value = float(pv[valid].sum() / clear[valid].sum())
        return value if math.isfinite(value) else None
