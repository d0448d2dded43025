"""An online PV forecast that can stand in for the learned clear-sky index: optional, kept on
disk, never required (issue 15 item 1, docs/forecast.md "An online forecast").

The provider is Forecast.Solar's public tier (https://forecast.solar), asked through
``forecast_solar``, the client Home Assistant's own integration uses: the site's place and
the panels' plane (learned from the history, or configured) give the energy expected per hour
for today and tomorrow from a weather model. The learned index only knows the climate of the
last weeks and the last two hours; a weather model knows tomorrow's clouds.

What it replaces (:meth:`OnlinePV.bands`): at each step the reply covers, the p50 of the index
becomes the reply's energy over the step against the clear sky's, and the p10 and p90 keep the
learned index's spread around its p50, so the band stays as wide as this site's weather has
been. The last hours' measured index still fades into the next hours (``forecast_at``). Past
the reply (after tomorrow), at night, and without a reply, the learned index stays.

Why a file: the public tier answers 12 requests an hour per address, so the service asks at
most once per ``refresh`` and a restart reads the last reply; a network down or a rate limit
costs only the reply's age, and past ``max_age`` the learned index takes over again. Nothing
here ever stops a tick: every failure is logged by its kind (never a URL, which would name
the home's place) and the forecast goes on without it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer.cachedir import cache_root
from optimizer.forecast.kept import DAMAGED, kept_path, kept_record, read_kept
from optimizer.forecast.site import Site
from optimizer.forecast.solar import STEP_S, Floats, Ints, Orientation
from optimizer.statefile import write_private_json

if TYPE_CHECKING:
    from optimizer.config import OnlineForecastConfig

__all__ = [
    "CLEAR_MIN_W",
    "OnlineError",
    "OnlineForecasts",
    "OnlinePV",
    "Plane",
    "parse_periods",
]

_LOGGER = logging.getLogger(__name__)

CLEAR_MIN_W = 0.02
"""Watts of clear-sky output per watt of peak below which a step keeps the learned index:
near the horizon a ratio of two small numbers says nothing about the sky."""
INDEX_MAX = 1.3
"""The most a step's index may be (clear-sky output times this): edge-of-cloud light tops
the clear sky by a fifth at most; above that a reply is not believed (its plane is wrong)."""
SLACK_WH = 5.0
"""Round-off a period's energy may have above what the panels could give (Wh)."""
PLANE_DEGREES = 5.0
PLANE_SHARE = 0.1
"""A reply kept for a plane within this many degrees and this share of the peak serves the
plane learned again today (it drifts by less every day): no request for a drift."""


class OnlineError(ValueError):
    """A reply that cannot be used: the field and why."""


@dataclass(frozen=True)
class Plane:
    """The plane as asked: tilt and azimuth in whole degrees (azimuth as pvlib's, 180 faces
    south), the peak in W rounded to 10 W. Forecast.Solar counts its azimuth from south
    (-90 east, 90 west) and the peak in kWp: :meth:`request`."""

    tilt_deg: float
    azimuth_deg: float
    peak_w: float

    @classmethod
    def of(cls, orientation: Orientation) -> Plane:
        return cls(
            float(round(orientation.tilt_deg)),
            float(round(orientation.azimuth_deg) % 360),
            float(round(orientation.peak_w, -1)),
        )

    def request(self) -> tuple[float, float, float]:
        """(declination, azimuth, kwp) as Forecast.Solar takes them."""
        return self.tilt_deg, self.azimuth_deg % 360 - 180, round(self.peak_w / 1000, 2)

    def serves(self, other: Plane) -> bool:
        turn = abs((self.azimuth_deg - other.azimuth_deg + 180) % 360 - 180)
        return (
            abs(self.tilt_deg - other.tilt_deg) <= PLANE_DEGREES
            and turn <= PLANE_DEGREES
            and abs(self.peak_w - other.peak_w) <= PLANE_SHARE * max(self.peak_w, other.peak_w)
        )

    def to_json(self) -> list[float]:
        return [self.tilt_deg, self.azimuth_deg, self.peak_w]


@dataclass(frozen=True)
class OnlinePV:
    """A reply as the forecast reads it: the end of each period (s) and the energy expected
    in the period ending there (Wh), for the plane it was asked for."""

    fetched_s: float
    plane: Plane
    ends_s: Floats
    wh: Floats

    def watts(self, start_s: Ints) -> Floats:
        """The mean power (W) expected over each step from ``start_s``; NaN where the reply
        does not cover the whole step. The energy is spread evenly over each period, so the
        steps of a period add up to its energy."""
        start = np.asarray(start_s, dtype=float)
        ends = self.ends_s
        total = np.cumsum(self.wh)
        before = np.interp(start, ends, total)
        after = np.interp(start + STEP_S, ends, total)
        watts = (after - before) * 3600 / STEP_S
        covered = (start >= ends[0]) & (start + STEP_S <= ends[-1])
        return np.where(covered, watts, np.nan)

    def bands(self, start_s: Ints, clear_w: Floats, bands: Floats) -> Floats:
        """``bands`` (steps, 3: the index's p10/p50/p90) with this reply's index as the p50
        where it covers a step the clear sky lights, the p10 and p90 keeping their ratio to
        the learned p50 (none where that p50 is 0)."""
        watts = self.watts(start_s)
        lit = np.isfinite(watts) & (clear_w > CLEAR_MIN_W * self.plane.peak_w)
        if not lit.any():
            return bands
        out = np.array(bands, dtype=float)
        index = np.clip(
            np.divide(watts, clear_w, out=np.zeros_like(clear_w), where=lit), 0, INDEX_MAX
        )
        learned = out[:, 1:2]
        ratio = np.divide(out, learned, out=np.ones_like(out), where=learned > 0)
        out[lit] = np.minimum(ratio * index[:, None], INDEX_MAX)[lit]
        return out

    @property
    def source(self) -> str:
        made = datetime.fromtimestamp(self.fetched_s, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"Forecast.Solar, fetched {made}"


def parse_periods(periods: Any, *, fetched_s: float, plane: Plane) -> OnlinePV:
    """Forecast.Solar's ``watt_hours_period`` (the energy of each period, keyed by its end
    as ISO 8601 text) as :class:`OnlinePV`.

    Trusts no single value: each period's energy must be a number of Wh the plane's peak
    could give over the period (:data:`SLACK_WH` aside), the periods in time order."""
    field = "watt_hours_period"
    if not isinstance(periods, dict) or len(periods) < 2:
        raise OnlineError(f"{field}: needs at least two periods")
    ends: list[float] = []
    energy: list[float] = []
    for key, value in periods.items():
        where = f"{field}[{key!r}]"
        try:
            end = key if isinstance(key, datetime) else datetime.fromisoformat(str(key))
        except ValueError as err:
            raise OnlineError(f"{where}: not an ISO 8601 time") from err
        if end.tzinfo is None:
            raise OnlineError(f"{where}: a time without its UTC offset")
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            raise OnlineError(f"{where}: {value!r} is not a number of Wh")
        at = end.timestamp()
        if ends and at <= ends[-1]:
            raise OnlineError(f"{where}: the periods are not in time order")
        hours = (at - ends[-1]) / 3600 if ends else 0.0
        if value < 0 or value > plane.peak_w * INDEX_MAX * hours + SLACK_WH:
            raise OnlineError(
                f"{where}: {value} Wh is more than a {plane.peak_w:g} W plane gives in "
                f"{hours:.2f} h (or negative)"
            )
        ends.append(at)
        energy.append(float(value))
    return OnlinePV(fetched_s, plane, np.asarray(ends), np.asarray(energy))


class OnlineForecasts:
    """The online forecast of each site: :meth:`current` for a forecast made now (the last
    reply kept, in memory or on disk), :meth:`refresh` to ask again when it is due."""

    def __init__(self, settings: OnlineForecastConfig, *, directory: Path | None = None) -> None:
        self.settings = settings
        self.directory = directory if directory is not None else cache_root() / "forecast"
        self._kept: dict[tuple[float, float], OnlinePV] = {}
        self._asked: dict[tuple[float, float], float] = {}  # when each site was last asked
        self._read: set[tuple[float, float]] = set()  # sites whose file was read
        self._unwritable = False  # the directory failed once: said once

    def _path(self, site: Site) -> Path:
        return kept_path(self.directory, site.latitude, site.longitude)

    def current(self, site: Site, plane: Plane, now_s: float) -> OnlinePV | None:
        """The last reply for the site if it serves ``plane`` and is at most ``max_age`` old
        at ``now_s`` (and not from the future: a clock set back); else None."""
        key = (site.latitude, site.longitude)
        if key not in self._read:  # the file once per process: a damaged one warns once
            self._read.add(key)
            loaded = self._load(site)
            if loaded is not None and key not in self._kept:
                self._kept[key] = loaded
        kept = self._kept.get(key)
        if kept is None or not kept.plane.serves(plane):
            return None
        age = now_s - kept.fetched_s
        return kept if 0 <= age <= self.settings.max_age.total_seconds() else None

    def due(self, site: Site, plane: Plane, now_s: float) -> bool:
        """Whether to ask now: no usable reply younger than ``refresh``, and none asked for
        within ``refresh`` either (a failed request waits as long as a good one)."""
        refresh = self.settings.refresh.total_seconds()
        key = (site.latitude, site.longitude)
        asked = self._asked.get(key)
        if asked is not None and 0 <= now_s - asked < refresh:
            return False
        kept = self.current(site, plane, now_s)
        return kept is None or now_s - kept.fetched_s >= refresh

    async def refresh(self, site: Site, orientation: Orientation, now: datetime) -> bool:
        """Ask Forecast.Solar when :meth:`due`; True when a new reply was kept. A failure is
        logged by its kind and leaves the last reply as it was."""
        plane = Plane.of(orientation)
        now_s = now.timestamp()
        if not self.due(site, plane, now_s):
            return False
        self._asked[(site.latitude, site.longitude)] = now_s
        try:
            periods = await asyncio.wait_for(
                self._ask(site, plane), self.settings.timeout.total_seconds()
            )
            online = parse_periods(periods, fetched_s=now_s, plane=plane)
        except OnlineError as err:
            _LOGGER.warning("the online solar forecast's reply is not used: %s", err)
            return False
        except Exception as err:  # noqa: BLE001 - the forecast is optional; never the tick
            _LOGGER.warning(
                "no online solar forecast this time (%s); the learned one is used",
                _kind(err),
            )
            return False
        self._kept[(site.latitude, site.longitude)] = online
        self._save(site, online, periods)
        return True

    async def _ask(self, site: Site, plane: Plane) -> dict[str, float]:
        """The periods of Forecast.Solar's estimate for the plane (its public tier)."""
        from forecast_solar import ForecastSolar  # noqa: PLC0415 - only with forecast.online
        from yarl import URL  # noqa: PLC0415

        declination, azimuth, kwp = plane.request()
        client = ForecastSolar(
            latitude=round(site.latitude, 4),
            longitude=round(site.longitude, 4),
            declination=declination,
            azimuth=azimuth,
            kwp=kwp,
        )
        if self.settings.base_url is not None:  # a proxy, or the tests' fake
            client._base_url = URL(self.settings.base_url)  # the library has no public knob
        async with client:
            estimate = await client.estimate()
        return {end.isoformat(): wh for end, wh in estimate.wh_period.items()}

    def _save(self, site: Site, online: OnlinePV, periods: dict[str, float]) -> None:
        """Whole or not at all (statefile: a temporary file renamed over the last, so a crash
        mid-write leaves the last reply); a directory that cannot be written keeps it in
        memory only."""
        path = self._path(site)
        record = kept_record(online.fetched_s, online.plane.to_json(), periods)
        try:
            write_private_json(path, record)
        except OSError as err:
            # Once per process, then quietly: the same directory fails every hour.
            log = _LOGGER.debug if self._unwritable else _LOGGER.warning
            self._unwritable = True
            log(
                "the online solar forecast is kept in memory only: %s cannot be written (%s)",
                path.parent,
                err.strerror or type(err).__name__,
            )

    def _load(self, site: Site) -> OnlinePV | None:
        path = self._path(site)
        try:
            found = read_kept(path)
            if found is None:
                return None
            fetched, record = found
            plane = Plane(*(float(v) for v in record["plane"]))
            return parse_periods(
                record["watt_hours_period"], fetched_s=fetched.timestamp(), plane=plane
            )
        except DAMAGED as err:
            _LOGGER.warning("%s is not read (%s): the next reply replaces it", path, err)
            return None


def _kind(err: BaseException) -> str:
    """An error by its kind, never its text: a client error's text holds the URL, which
    names the home's place."""
    if isinstance(err, TimeoutError):
        return "no answer in time"
    status = getattr(err, "status", None)
    name = type(err).__name__
    return f"{name}, HTTP {status}" if isinstance(status, int) else name
