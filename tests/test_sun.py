"""The sun at the site: astral's positions, and None where it never rises or sets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import astral.sun as astral_sun
import pytest
from astral import Observer
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.sun import clear_sky_factor, sun_at, zenith_and_azimuth
from tests.profiles import examples

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


def test_the_sun_is_astrals_every_quarter_hour_of_a_year() -> None:
    """The same on a replay's own instants: every 15 minutes of a leap year, at the sample's
    site and at a southern and a northern one."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for latitude, longitude in ((-37.81, 144.96), (-33.87, 151.21), (59.33, 18.07)):
        observer = Observer(latitude=latitude, longitude=longitude)
        for step in range(366 * 96):
            when = start + timedelta(minutes=15 * step)
            assert zenith_and_azimuth(latitude, longitude, when) == (
                astral_sun.zenith_and_azimuth(observer, when)
            ), when
