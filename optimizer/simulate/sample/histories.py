"""The seeded histories' sites and people: where, what they have, who drives, the seed.

Data only; :mod:`optimizer.simulate.sample.synth` turns each :class:`History` into a year of
Enlighten-shaped files (its docstring says how). Each history's folder holds its
``sample-config.yaml`` (site, tariffs, limits, battery: what the simulator reads) and ``data/``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

__all__ = ["HISTORIES", "PHOENIX", "SEATTLE", "Battery", "Climate", "History", "House"]

YEAR = 2025
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Climate:
    """The weather process: per month (January first) the chance a day is clear and the mean
    air temperature (deg C), the day-night swing, and the monsoon's storms."""

    clear_p: tuple[float, ...]
    mean_c: tuple[float, ...]
    swing_c: float
    persistence: float = 0.6
    overcast_share: float = 0.5  # of the cloudy days, how many are overcast (else broken)
    storm_months: frozenset[int] = frozenset()
    storm_p: float = 0.0


@dataclass(frozen=True)
class House:
    """Base load by local hour (kW) and the temperature-driven part."""

    weekday_kw: tuple[float, ...]
    weekend_kw: tuple[float, ...]
    heat_below_c: float
    heat_kw_per_c: float
    cool_above_c: float
    cool_kw_per_c: float


@dataclass(frozen=True)
class Battery:
    capacity_kwh: float
    power_kw: float
    efficiency: float  # round trip, split evenly between charging and discharging
    reserve_pct: float


@dataclass(frozen=True)
class History:
    """One synthetic site: where, what it has, who drives, and the seed."""

    name: str
    latitude: float
    longitude: float
    altitude: float
    timezone: str
    dc_kw: float
    ac_kw: float
    tilt: float
    azimuth: float
    climate: Climate
    house: House
    driver: str  # a key of DRIVERS
    amps: int
    voltage: int
    car_kwh: float  # the car's usable battery: no session wants more
    kwh_per_day: float  # driving on a day the car is used
    seed: int
    system_id: int
    serial: str
    holidays: frozenset[date] = frozenset()
    trips: tuple[tuple[date, date], ...] = ()
    null_days: tuple[date, ...] = ()
    battery: Battery | None = None
    miles_per_kwh: float = 3.5
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def charge_w(self) -> float:
        return float(self.amps * self.voltage)

    @property
    def folder(self) -> Path:
        return HERE / self.name

    def away(self, day: date) -> bool:
        return any(first <= day <= last for first, last in self.trips)

    def at(self, day: date, hours: float, rng: random.Random) -> datetime:
        """Local ``day`` plus ``hours`` (may pass midnight), as UTC, with random seconds."""
        local = datetime.combine(day, time(), tzinfo=ZoneInfo(self.timezone))
        moment = local + timedelta(hours=hours)
        return moment.astimezone(UTC) + timedelta(milliseconds=rng.randint(0, 59_999))


US_HOLIDAYS = frozenset(
    date(YEAR, m, d)
    for m, d in ((1, 1), (1, 20), (5, 26), (7, 4), (9, 1), (11, 27), (11, 28), (12, 25))
)

SEATTLE = History(
    name="seattle",
    latitude=47.61,
    longitude=-122.33,
    altitude=50,
    timezone="America/Los_Angeles",
    dc_kw=5.0,
    ac_kw=4.0,
    tilt=30,
    azimuth=200,  # south-south-west
    climate=Climate(
        clear_p=(0.08, 0.14, 0.22, 0.35, 0.55, 0.6, 0.75, 0.7, 0.55, 0.25, 0.1, 0.06),
        mean_c=(5.5, 6.5, 8.5, 11.0, 14.0, 17.0, 19.5, 19.5, 16.5, 12.0, 8.0, 5.5),
        swing_c=7.0,
        persistence=0.5,
        overcast_share=0.7,
    ),
    house=House(
        weekday_kw=(
            *(0.28, 0.25, 0.24, 0.24, 0.26, 0.42, 0.70, 0.62, 0.40, 0.32, 0.30, 0.30),
            *(0.31, 0.30, 0.30, 0.34, 0.45, 0.66, 0.80, 0.78, 0.66, 0.52, 0.40, 0.32),
        ),
        weekend_kw=(
            *(0.30, 0.27, 0.25, 0.24, 0.24, 0.25, 0.30, 0.44, 0.60, 0.64, 0.60, 0.56),
            *(0.58, 0.54, 0.50, 0.50, 0.55, 0.68, 0.80, 0.76, 0.66, 0.54, 0.42, 0.34),
        ),
        heat_below_c=14.0,
        heat_kw_per_c=0.03,  # a heat pump: about 6 kWh a day more in a 6 C January
        cool_above_c=26.0,
        cool_kw_per_c=0.08,
    ),
    driver="commuter",
    amps=32,
    voltage=240,
    car_kwh=60.0,
    kwh_per_day=8.5,
    seed=20250202,
    system_id=5_230_881,
    serial="482502027741",
    holidays=US_HOLIDAYS,
    trips=(
        (date(YEAR, 3, 22), date(YEAR, 3, 29)),
        (date(YEAR, 8, 9), date(YEAR, 8, 23)),
        (date(YEAR, 12, 20), date(YEAR, 12, 27)),
    ),
    null_days=(date(YEAR, 11, 19),),  # a windstorm power cut: the gateway is down all day
    extra={"leave_h": 7.0, "home_h": 18.0, "skip_p": 0.2, "weekend_plug_p": 0.3},
)

PHOENIX = History(
    name="phoenix",
    latitude=33.45,
    longitude=-112.07,
    altitude=340,
    timezone="America/Phoenix",  # no daylight saving time
    dc_kw=8.0,
    ac_kw=7.6,
    tilt=20,
    azimuth=180,
    climate=Climate(
        clear_p=(0.8, 0.8, 0.84, 0.9, 0.94, 0.95, 0.6, 0.62, 0.82, 0.88, 0.84, 0.78),
        mean_c=(13.5, 15.5, 19.0, 23.0, 28.0, 33.5, 35.0, 34.5, 31.5, 25.0, 18.0, 13.0),
        swing_c=13.0,
        persistence=0.55,
        overcast_share=0.3,
        storm_months=frozenset({7, 8, 9}),
        storm_p=0.3,
    ),
    house=House(
        weekday_kw=(
            *(0.35, 0.32, 0.30, 0.30, 0.32, 0.42, 0.55, 0.50, 0.42, 0.38, 0.38, 0.40),
            *(0.42, 0.42, 0.44, 0.50, 0.62, 0.78, 0.85, 0.82, 0.72, 0.60, 0.48, 0.40),
        ),
        weekend_kw=(
            *(0.38, 0.34, 0.32, 0.30, 0.30, 0.32, 0.38, 0.48, 0.58, 0.62, 0.60, 0.58),
            *(0.60, 0.58, 0.56, 0.58, 0.66, 0.80, 0.86, 0.82, 0.72, 0.60, 0.50, 0.42),
        ),
        heat_below_c=12.0,
        heat_kw_per_c=0.06,
        cool_above_c=25.0,
        cool_kw_per_c=0.2,  # central air: about 3 kW on a 40 C afternoon
    ),
    driver="shift_worker",
    amps=32,  # the simulator's chargers go to 32 A (observe.view.DEFAULT_LIMITS)
    voltage=240,
    car_kwh=75.0,
    kwh_per_day=15.0,
    seed=20250303,
    system_id=6_114_027,
    serial="482503031822",
    holidays=US_HOLIDAYS,
    null_days=(date(YEAR, 8, 6),),  # a storm took the internet down for the day
    battery=Battery(capacity_kwh=10.0, power_kw=3.84, efficiency=0.9, reserve_pct=10),
    extra={"unplugged_p": 0.15, "trip_every_days": 49.0},
)

HISTORIES: dict[str, History] = {h.name: h for h in (SEATTLE, PHOENIX)}
