"""Where the sun is at the site: elevation, azimuth, sunrise and sunset.

The engine uses the sun to tell a cloudy hour from an evening (both lack PV), and ``observe``
can scale a quarter-hour-old PV figure by how the clear-sky irradiance changed since. Pure and
deterministic: time comes in as an argument, so the simulator gets the same answers as the
live service.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from astral import Observer
from astral.sun import sunrise, sunset, zenith_and_azimuth

from optimizer.engine.snapshot import Sun

__all__ = ["clear_sky_factor", "day_events", "sun_at"]


def sun_at(now: datetime, *, latitude: float, longitude: float, timezone: str) -> Sun:
    """The sun at ``now`` (aware) for the site, with the sunrise and sunset of its local day.

    Sunrise and sunset are None on a polar day or night, when the sun never crosses the
    horizon (astral raises ValueError then). Times are returned in UTC like the snapshot's.
    """
    if now.tzinfo is None:
        raise ValueError("sun_at needs a timezone-aware datetime")
    observer = _observer(latitude, longitude)
    local_day = now.astimezone(ZoneInfo(timezone)).date()
    # astral's elevation() and azimuth() each run this same computation; one call gives both
    # (elevation is 90 - the refracted zenith, exactly as astral.sun.elevation returns it).
    zenith, azimuth = zenith_and_azimuth(observer, now)
    rises, sets = day_events(latitude, longitude, timezone, local_day)
    return Sun(elevation_deg=90.0 - zenith, azimuth_deg=azimuth, sunrise=rises, sunset=sets)


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
