"""The sun at the site: astral's positions, and None where it never rises or sets."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import astral.sun as astral_sun
import pytest
from astral import Observer, refraction_at_zenith
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.engine.conditions import check, holds
from optimizer.engine.rules import When
from optimizer.engine.snapshot import ChargerView, Snapshot
from optimizer.sun import (
    ELEVATION_RATE_DEG_PER_S,
    REFRACTION_SPAN_DEG,
    SunTrack,
    clear_sky_factor,
    elevation_beside,
    sun_at,
    zenith_and_azimuth,
)
from tests.profiles import examples
from tests.records import same_as_reference, write_record

MELBOURNE = {"latitude": -37.81, "longitude": 144.96, "timezone": "Australia/Melbourne"}
SVALBARD = {"latitude": 78.22, "longitude": 15.65, "timezone": "Arctic/Longyearbyen"}


def test_melbourne_summer_noon_is_high() -> None:
    sun = sun_at(datetime(2025, 1, 15, 2, 20, tzinfo=UTC), **MELBOURNE)  # 13:20 AEDT
    assert sun.elevation_deg > 70
    assert sun.up
    assert sun.sunrise is not None
    assert sun.sunset is not None
    # The local day's sunrise (about 06:15 AEDT) and sunset (about 20:45 AEDT), in UTC.
    assert abs(sun.sunrise - datetime(2025, 1, 14, 19, 15, tzinfo=UTC)) < timedelta(minutes=10)
    assert abs(sun.sunset - datetime(2025, 1, 15, 9, 44, tzinfo=UTC)) < timedelta(minutes=10)
    assert sun.sunrise.tzinfo == UTC


def test_melbourne_midnight_is_below_the_horizon() -> None:
    sun = sun_at(datetime(2025, 1, 14, 13, 0, tzinfo=UTC), **MELBOURNE)  # 00:00 AEDT
    assert sun.elevation_deg < 0
    assert not sun.up
    assert sun.sunrise is not None  # the local day still has a sunrise


def test_same_instant_in_another_zone_is_the_same_sun() -> None:
    utc_now = datetime(2025, 1, 15, 2, 0, tzinfo=UTC)
    assert sun_at(utc_now.astimezone(), **MELBOURNE) == sun_at(utc_now, **MELBOURNE)


@pytest.mark.parametrize(
    ("when", "up"),
    [
        (datetime(2025, 1, 15, 11, 0, tzinfo=UTC), False),  # polar night
        (datetime(2025, 6, 15, 23, 0, tzinfo=UTC), True),  # midnight sun
    ],
)
def test_polar_day_and_night_have_no_sunrise(when: datetime, up: bool) -> None:
    sun = sun_at(when, **SVALBARD)
    assert sun.sunrise is None
    assert sun.sunset is None
    assert sun.up is up


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sun_at(datetime(2025, 1, 15, 2, 0), **MELBOURNE)


@pytest.mark.parametrize(
    ("elevation", "factor"),
    [(90.0, 1.0), (30.0, 0.5), (0.0, 0.0), (-12.0, 0.0)],
)
def test_clear_sky_factor(elevation: float, factor: float) -> None:
    assert clear_sky_factor(elevation) == pytest.approx(factor)


@given(
    when=st.datetimes(
        min_value=datetime(1970, 1, 1),
        max_value=datetime(2100, 12, 31),
        timezones=st.sampled_from(
            [
                UTC,
                ZoneInfo("Australia/Melbourne"),
                ZoneInfo("America/St_Johns"),
                ZoneInfo("Asia/Kathmandu"),
            ]
        ),
    ),
    latitude=st.one_of(st.floats(-90, 90), st.sampled_from([-90.0, -89.9, 0.0, 89.9, 90.0])),
    longitude=st.floats(-180, 180),
)
@settings(max_examples=examples(400), deadline=None)
def test_the_sun_is_astrals_to_the_last_bit(
    when: datetime, latitude: float, longitude: float
) -> None:
    """The inlined computation (optimizer/sun.py) gives astral's zenith and azimuth exactly,
    not approximately: every simulate figure that reads the sun depends on it."""
    observer = Observer(latitude=latitude, longitude=longitude)
    assert zenith_and_azimuth(latitude, longitude, when) == astral_sun.zenith_and_azimuth(
        observer, when
    )


YEAR_SITES = ((-37.81, 144.96), (-33.87, 151.21), (59.33, 18.07))
RECORDS = Path(__file__).parent / "fixtures" / "sun"


def _quarter_hours(sun: Callable[[datetime], tuple[float, float]]) -> list[tuple[float, float]]:
    """``sun`` at every 15 minutes of the leap year 2024."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [sun(start + timedelta(minutes=15 * step)) for step in range(366 * 96)]


def _astrals_year(latitude: float, longitude: float) -> list[tuple[float, float]]:
    observer = Observer(latitude=latitude, longitude=longitude)
    return _quarter_hours(partial(astral_sun.zenith_and_azimuth, observer))


def _year_record(latitude: float, longitude: float) -> Path:
    """The fingerprint of astral's year at the site (``python -m tests.test_sun``)."""
    return RECORDS / f"astral-{latitude}_{longitude}.sha256"


@pytest.mark.parametrize(("latitude", "longitude"), YEAR_SITES)
def test_the_sun_is_astrals_every_quarter_hour_of_a_year(latitude: float, longitude: float) -> None:
    """The same on a replay's own instants: every 15 minutes of a leap year, at the sample's
    site and at a southern and a northern one. Astral's year is as recorded (tests/records.py):
    astral computes it again only where ours differs from the record, and then decides."""
    ours = _quarter_hours(partial(zenith_and_azimuth, latitude, longitude))
    astral = partial(_astrals_year, latitude, longitude)
    same_as_reference(ours, _year_record(latitude, longitude), astral, "python -m tests.test_sun")


@given(
    start=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 12, 31)),
    seconds=st.integers(0, 3 * 86_400),
    latitude=st.floats(-90, 90),
    longitude=st.floats(-180, 180),
)
@settings(max_examples=examples(400), deadline=None)
def test_the_elevation_moves_no_faster_than_the_track_assumes(
    start: datetime, seconds: int, latitude: float, longitude: float
) -> None:
    """The bound :func:`elevation_beside` rests on: between two instants the refracted
    elevation moves by less than the rate times the time between them plus the refraction's
    span."""
    then = start.replace(tzinfo=UTC)
    later = then + timedelta(seconds=seconds)
    moved = abs(
        zenith_and_azimuth(latitude, longitude, then)[0]
        - zenith_and_azimuth(latitude, longitude, later)[0]
    )
    assert moved < seconds * ELEVATION_RATE_DEG_PER_S + REFRACTION_SPAN_DEG


def test_the_refraction_stays_within_its_span() -> None:
    for step in range(180 * 200 + 1):
        assert 0.0 <= refraction_at_zenith(step / 200) < REFRACTION_SPAN_DEG


@pytest.mark.parametrize("site", [MELBOURNE, SVALBARD, {**MELBOURNE, "latitude": 36.1}])
def test_a_tracks_sun_is_sun_at_and_its_sides_are_exact(site: dict[str, Any]) -> None:
    """Every quarter hour of a year: a read field is sun_at's; the stand-in elevation is on
    the same side of every line as the exact one; many ticks never work the sun out."""
    zone = ZoneInfo(site["timezone"])
    track = SunTrack(**site)
    lines = (-6.0, 0.0, 0.5, 12.0)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    worked_out = 0
    for step in range(365 * 96):
        now = start + timedelta(minutes=15 * step)
        sun = track.at(now, now.astimezone(zone))
        stand_in = elevation_beside(sun, lines)
        worked_out += "elevation_deg" in sun.__dict__
        exact = sun_at(now, **site)
        assert bisect_left(lines, stand_in) == bisect_left(lines, exact.elevation_deg), now
        assert bisect_right(lines, stand_in) == bisect_right(lines, exact.elevation_deg), now
        if step % 97 == 0:
            assert sun == exact
            assert exact == sun
            assert hash(sun) == hash(exact)
            assert sun.__dict__["sunset"] == exact.sunset
    assert worked_out < 365 * 96 * 0.7


@pytest.mark.parametrize(
    "when",
    [
        When(sun="up"),
        When(sun="down"),
        When(sun_above=10),
        When(sun_below=-3.5),
        When(sun="up", sun_above=0.3, sun_below=40),
    ],
)
def test_a_tracks_sun_gives_the_conditions_verdicts(when: When) -> None:
    """holds() compares a replay's sun by its sides only; its verdict is the exact sun's."""
    zone = ZoneInfo(MELBOURNE["timezone"])
    track = SunTrack(**MELBOURNE)
    view = ChargerView(
        sn="SN",
        connected=True,
        plugged_in=False,
        charging=False,
        faulted=False,
        min_amps=6,
        max_amps=32,
    )
    start = datetime(2025, 3, 1, tzinfo=UTC)
    for step in range(20 * 96):
        now = start + timedelta(minutes=15 * step)
        lazy = Snapshot(now=now, timezone=MELBOURNE["timezone"], chargers=(view,))
        exact = replace(lazy, sun=sun_at(now, **MELBOURNE))
        lazy = replace(lazy, sun=track.at(now, now.astimezone(zone)))
        assert holds(when, lazy, view) == holds(when, exact, view), now
        assert check(when, lazy, view) == check(when, exact, view), now


if __name__ == "__main__":
    for site in YEAR_SITES:
        write_record(_year_record(*site), _astrals_year(*site))
