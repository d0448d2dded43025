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
from zoneinfo import ZoneInfo

from astral import Observer
from astral.sun import azimuth, elevation, sunrise, sunset

from optimizer.engine.snapshot import Sun

__all__ = ["clear_sky_factor", "sun_at"]


def sun_at(now: datetime, *, latitude: float, longitude: float, timezone: str) -> Sun:
    """The sun at ``now`` (aware) for the site, with the sunrise and sunset of its local day.

    Sunrise and sunset are None on a polar day or night, when the sun never crosses the
    horizon (astral raises ValueError then). Times are returned in UTC like the snapshot's.
    """
    if now.tzinfo is None:
        raise ValueError("sun_at needs a timezone-aware datetime")
    observer = Observer(latitude=latitude, longitude=longitude)
    zone = ZoneInfo(timezone)
    local_day = now.astimezone(zone).date()
    return Sun(
        elevation_deg=elevation(observer, now),
        azimuth_deg=azimuth(observer, now),
        sunrise=_crossing(sunrise, observer, local_day, zone),
        sunset=_crossing(sunset, observer, local_day, zone),
    )


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
