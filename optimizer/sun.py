"""Where the sun is at the site: elevation, azimuth, sunrise and sunset.

The engine uses the sun to tell a cloudy hour from an evening (both lack PV), and ``observe``
can scale a quarter-hour-old PV figure by how the clear-sky irradiance changed since. Pure and
deterministic: time comes in as an argument, so the simulator gets the same answers as the
live service.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache
from math import acos, asin, cos, degrees, radians, sin, tan
from typing import Any
from zoneinfo import ZoneInfo

from astral import Observer, refraction_at_zenith
from astral.sun import sunrise, sunset

from optimizer.engine.frozen import maker
from optimizer.engine.snapshot import Sun

_new_sun = maker(Sun)

__all__ = [
    "SunTrack",
    "clear_sky_factor",
    "day_events",
    "elevation_beside",
    "sun_at",
    "zenith_and_azimuth",
]

ELEVATION_RATE_DEG_PER_S = 0.26 / 60
"""More than the sun's elevation, refraction aside, can change in a second: the hour angle
turns 15 degrees an hour (the equation of time and the declination add under a hundredth of
that), and an elevation changes by at most as much as the hour angle (its derivative by the
hour angle is cos(latitude) sin(azimuth) in size). tests/test_sun.py checks the bound."""
REFRACTION_SPAN_DEG = 0.6
"""More than astral's refraction correction ever adds (0 to 0.575 degrees, at the horizon):
the refracted elevation moves by at most this beyond the rate above."""


def sun_at(
    now: datetime,
    *,
    latitude: float,
    longitude: float,
    timezone: str,
    local: datetime | None = None,
) -> Sun:
    """The sun at ``now`` (aware) for the site, with the sunrise and sunset of its local day.

    Sunrise and sunset are None on a polar day or night, when the sun never crosses the
    horizon (astral raises ValueError then). Times are returned in UTC like the snapshot's.
    ``local``: ``now`` in ``timezone`` when the caller has it already (a replay converts each
    tick's time once, for the sun's day and the snapshot's local time both).
    """
    if now.tzinfo is None:
        raise ValueError("sun_at needs a timezone-aware datetime")
    local_day = (local if local is not None else now.astimezone(ZoneInfo(timezone))).date()
    # Elevation is 90 - the refracted zenith, exactly as astral.sun.elevation returns it.
    zenith, azimuth = zenith_and_azimuth(latitude, longitude, now)
    rises, sets = day_events(latitude, longitude, timezone, local_day)
    return _new_sun(  # Sun(...) without its frozen __init__: a replay asks every tick
        elevation_deg=90.0 - zenith, azimuth_deg=azimuth, sunrise=rises, sunset=sets
    )


class SunTrack:
    """The sun at one site for a run of instants (a replay's ticks), each worked out only if
    read. Most ticks of a replay reuse the last evaluation and compare the sun only by which
    side of a few elevations it is on (the idle reuse's key, optimizer/simulate/idle.py),
    which the last elevation worked out tells while the sun cannot have crossed any of them
    since (:func:`elevation_beside`); the sun was a tenth of a replay's CPU (docs/performance.md,
    tenth pass). A read field is :func:`sun_at`'s, to the bit."""

    __slots__ = ("known", "latitude", "longitude", "timezone")

    def __init__(self, *, latitude: float, longitude: float, timezone: str) -> None:
        self.latitude, self.longitude, self.timezone = latitude, longitude, timezone
        self.known: tuple[datetime, float] | None = None  # the last elevation worked out

    def at(self, now: datetime, local: datetime) -> Sun:
        """The sun at ``now`` (``local``: the same instant in the site's zone), its fields
        worked out on first read."""
        sun = _new_later(_SunLater)
        sun.__dict__.update(_track=self, _now=now, _local=local)
        return sun


_new_later = object.__new__
_SUN_FIELDS = frozenset({"elevation_deg", "azimuth_deg", "sunrise", "sunset"})


class _SunLater(Sun):
    """A :class:`Sun` made by :meth:`SunTrack.at`: :func:`sun_at`'s fields, worked out when
    one is first read (they are not in the instance's dict until then)."""

    def __getattr__(self, name: str) -> Any:
        if name not in _SUN_FIELDS:
            raise AttributeError(name)
        state = self.__dict__
        track: SunTrack = state["_track"]
        now = state["_now"]
        sun = sun_at(
            now,
            latitude=track.latitude,
            longitude=track.longitude,
            timezone=track.timezone,
            local=state["_local"],
        )
        state.update(sun.__dict__)
        track.known = now, sun.elevation_deg
        return state[name]

    def __eq__(self, other: object) -> bool:
        """As two :class:`Sun`s compare (a Sun's own ``__eq__`` wants the same class)."""
        if not isinstance(other, Sun):
            return NotImplemented
        return _fields(self) == _fields(other)

    __hash__ = Sun.__hash__


def _fields(sun: Sun) -> tuple[float, float, datetime | None, datetime | None]:
    return sun.elevation_deg, sun.azimuth_deg, sun.sunrise, sun.sunset


def elevation_beside(sun: Sun, lines: Sequence[float]) -> float:
    """``sun``'s elevation, or for a sun of a :class:`SunTrack` not yet read, the last
    elevation its track worked out when the sun cannot have crossed any of ``lines`` since
    (:data:`ELEVATION_RATE_DEG_PER_S`, :data:`REFRACTION_SPAN_DEG`): a figure on the same side
    of each line as the elevation, for a reader that compares it with those lines only."""
    state = sun.__dict__
    if not isinstance(sun, _SunLater) or "elevation_deg" in state:
        return sun.elevation_deg
    known: tuple[datetime, float] | None = state["_track"].known
    if known is not None:
        at, elevation = known
        reach = abs((state["_now"] - at).total_seconds()) * ELEVATION_RATE_DEG_PER_S
        reach += REFRACTION_SPAN_DEG
        for line in lines:
            if not abs(elevation - line) > reach:  # near, or not a number
                return sun.elevation_deg
        return elevation
    return sun.elevation_deg


@lru_cache(maxsize=64)
def _observer(latitude: float, longitude: float) -> Observer:
    return Observer(latitude=latitude, longitude=longitude)


@lru_cache(maxsize=1024)
def day_events(
    latitude: float, longitude: float, timezone: str, day: date
) -> tuple[datetime | None, datetime | None]:
    """Sunrise and sunset (UTC) of the site's local ``day``, computed once per day: they were
    two thirds of each :func:`sun_at` call, and the live service and the simulator ask for the
    same day thousands of times (issue 16). The cache holds a few years of days per site."""
    observer = _observer(latitude, longitude)
    zone = ZoneInfo(timezone)
    return _crossing(sunrise, observer, day, zone), _crossing(sunset, observer, day, zone)


def zenith_and_azimuth(latitude: float, longitude: float, when: datetime) -> tuple[float, float]:
    """The refracted zenith and the azimuth (degrees) at ``when`` (aware): astral 3.2's
    ``zenith_and_azimuth`` to the last bit, the same operations in the same order, only
    without its twenty calls that work the same terms out again (the mean longitude and the
    obliquity twice each) and with the date's part of the Julian day from a per-day table.
    It was the larger part of a replay's snapshot (docs/performance.md); tests/test_sun.py
    compares the two on instants of many years, zones and latitudes for exact equality."""
    latitude = max(-89.8, min(89.8, latitude)) if abs(latitude) > 89.8 else latitude
    offset = when.utcoffset()
    if offset is None:
        raise ValueError("zenith_and_azimuth needs a timezone-aware datetime")
    zone = -offset.total_seconds() / 3600.0
    utc = when if when.tzinfo is UTC else when.astimezone(UTC)  # the same fields, no copy
    whole_days, b = _julian_date(utc.year, utc.month, utc.day)
    seconds = int(utc.hour * 3600 + utc.minute * 60 + utc.second)
    jd = whole_days + seconds / (24 * 60 * 60) + b - 1524.5
    declination, eqtime = _declination_and_eqtime((jd - 2451545.0) / 36525.0)
    # The observer's part (astral.sun.zenith_and_azimuth from its solarTimeFix on).
    true_solar_time = (
        when.hour * 60.0
        + when.minute
        + when.second / 60.0
        + (eqtime + (4.0 * longitude) + (60 * zone))
    )
    while true_solar_time > 1440:
        true_solar_time = true_solar_time - 1440
    hourangle = true_solar_time / 4.0 - 180.0
    if hourangle < -180:
        hourangle = hourangle + 360.0
    ch = cos(radians(hourangle))
    cl, sl = _latitude_terms(latitude)
    declination_rad = radians(declination)
    sd = sin(declination_rad)
    cd = cos(declination_rad)
    csz = cl * cd * ch + sl * sd
    if csz > 1.0:
        csz = 1.0
    elif csz < -1.0:
        csz = -1.0
    zenith = degrees(acos(csz))
    zenith_rad = radians(zenith)
    az_denom = cl * sin(zenith_rad)
    if abs(az_denom) > 0.001:
        az_rad = ((sl * cos(zenith_rad)) - sd) / az_denom
        if abs(az_rad) > 1.0:
            az_rad = -1.0 if az_rad < 0 else 1.0
        azimuth = 180.0 - degrees(acos(az_rad))
        if hourangle > 0.0:
            azimuth = -azimuth
    else:
        azimuth = 180.0 if latitude > 0.0 else 0.0
    if azimuth < 0.0:
        azimuth = azimuth + 360.0
    return zenith - refraction_at_zenith(zenith), azimuth


def _declination_and_eqtime(t: float) -> tuple[float, float]:
    """The sun's declination (degrees) and the equation of time (minutes) at Julian century
    ``t``: astral.sun's geom_mean_long_sun ... eq_of_time, each term worked out once."""
    l0 = (280.46646 + t * (36000.76983 + 0.0003032 * t)) % 360.0
    m = 357.52911 + t * (35999.05029 - 0.0001537 * t)
    eccentricity = 0.016708634 - t * (0.000042037 + 0.0000001267 * t)
    mrad = radians(m)
    sinm = sin(mrad)
    center = (
        sinm * (1.914602 - t * (0.004817 + 0.000014 * t))
        + sin(mrad + mrad) * (0.019993 - 0.000101 * t)
        + sin(mrad + mrad + mrad) * 0.000289
    )
    omega = 125.04 - 1934.136 * t
    seconds_of_arc = 21.448 - t * (46.815 + t * (0.00059 - t * (0.001813)))
    omega_rad = radians(omega)
    obliquity = 23.0 + (26.0 + (seconds_of_arc / 60.0)) / 60.0 + 0.00256 * cos(omega_rad)
    apparent_long = l0 + center - 0.00569 - 0.00478 * sin(omega_rad)
    obliquity_rad = radians(obliquity)
    y = tan(obliquity_rad / 2.0)
    y = y * y
    l0rad = radians(l0)
    sin2l0 = sin(2.0 * l0rad)
    cos2l0 = cos(2.0 * l0rad)
    sin4l0 = sin(4.0 * l0rad)
    sin2m = sin(2.0 * mrad)
    etime = (
        y * sin2l0
        - 2.0 * eccentricity * sinm
        + 4.0 * eccentricity * y * sinm * cos2l0
        - 0.5 * y * y * sin4l0
        - 1.25 * eccentricity * eccentricity * sin2m
    )
    declination = degrees(asin(sin(obliquity_rad) * sin(radians(apparent_long))))
    return declination, degrees(etime) * 4.0


@lru_cache(maxsize=64)
def _latitude_terms(latitude: float) -> tuple[float, float]:
    """cos and sin of the latitude, once per site (the same values every call)."""
    return cos(radians(latitude)), sin(radians(latitude))


@lru_cache(maxsize=4096)
def _julian_date(year: int, month: int, day: int) -> tuple[int, int]:
    """The date's whole part of astral's Julian day (before the day's fraction) and its
    Gregorian correction ``b``, kept apart because astral adds them in that order."""
    if month <= 2:
        year -= 1
        month += 12
    a = int(year / 100)
    b = 2 - a + int(a / 4)
    return int(365.25 * (year + 4716)) + int(30.6001 * (month + 1)) + day, b


def clear_sky_factor(elevation_deg: float) -> float:
    """Relative clear-sky irradiance on a horizontal surface: sin(elevation), 0 below it.

    Only the ratio of two factors is used (now against a bucket's midpoint), so the scale
    does not matter; panels that are tilted follow the same shape closely enough for that.
    """
    return max(0.0, math.sin(math.radians(elevation_deg)))


def _crossing(
    event: Callable[..., datetime], observer: Observer, day: date, zone: tzinfo
) -> datetime | None:
    try:
        return event(observer, day, tzinfo=zone).astimezone(UTC)
    except ValueError:  # "Sun is always above/below the horizon on this day"
        return None
