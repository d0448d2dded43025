"""Seeded synthetic histories in other climates: ``python -m optimizer.simulate.sample.synth``.

The bundled sample (:mod:`generate`) is one house in North Carolina with one commuter. A policy
tuned on it may only be good at it, so two more years are made here, each with another climate
and another way of driving, and each in the same Enlighten shapes (a ``lifetime_energy`` reply
with 15-minute buckets and monthly session-history pages), beside its own site config:

The sites and people are :mod:`histories` (data); this module is the method.

* ``seattle``: a cloudy maritime climate (47.6 N): short, grey winter days, long clear summer
  ones; an electrically heated house; a commuter who leaves at 07:00 on weekdays, skips some
  evenings (the next session then needs more), and sometimes leaves the car plugged from Friday
  evening to Monday morning.
* ``phoenix``: a sunny, hot climate (33.4 N) with monsoon storms on July-September afternoons;
  an air-conditioned house with a 10 kWh home battery; a shift worker on a rotating day /
  night / swing roster (plugged in the morning after a night shift, after midnight after a swing
  shift), days not plugged in at all, and a long weekend trip every six to eight weeks.

How (all of it seeded by the history's ``seed``; the same seed gives the same bytes):

1. **Clear-sky PV**: pvlib's Ineichen clear sky (Linke turbidity from pvlib's monthly
   climatology) at the site, transposed to the array's plane (Hay-Davies), PVWatts DC with the
   SAPM cell temperature under a seasonal air temperature, and the PVWatts inverter curve capped
   at the inverter's AC rating, at each quarter-hour's midpoint.
2. **Weather**: a clear-sky index ``k`` (0-1) per quarter-hour multiplies that clear-sky power.
   Each day has a regime drawn from a two-state persistent Markov chain (clear or not, the
   month's clear-day probability, ``persistence`` the chance a day repeats yesterday's); a clear
   day's ``k`` is near 1, a cloudy day is broken cloud or overcast, with an AR(1) process for
   the quarter-hours. Monsoon afternoons (``storm_p`` in ``storm_months``) drop ``k`` to
   0.05-0.3 for one to four hours from 13:00-17:00. Because ``k <= 1``, no bucket exceeds
   what the panels give under a clear sky, nor the inverter's rating.
3. **House**: an hourly base shape (weekday and weekend), heating below ``heat_below_c`` and
   cooling above ``cool_above_c`` driven by the same air temperature (cloudy days are cooler by
   day), appliance events and AR(1) noise.
4. **Car**: the driver's plug-in windows; the energy each session wants is the driving since
   the last session (kWh per day of use, plus trips), capped by the car's battery. The real
   charging is "full power from plug-in until full" (the ``evse`` flow); so no bucket holds more
   than the charger's ``amps * volts`` over 15 minutes.
5. **Home battery** (Phoenix): in self-consumption mode on the real profile: it charges from
   what PV leaves after the house and the car, discharges for both, never below its reserve;
   the ``charge``, ``discharge``, ``solar_battery`` and ``battery_home`` flows say so, and the
   grid flows are what is left.

``null_days`` are whole local days null in every flow (a gateway outage), as in the sample.
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from optimizer.config import load_config
from optimizer.simulate.sample import CONFIG_FILE
from optimizer.simulate.sample.generate import (
    QUARTER,
    Plug,
    charge,
    null_days,
    round_keeping_total,
    session_records,
    site_flows,
    write_files,
)
from optimizer.simulate.sample.histories import (
    HISTORIES,
    PHOENIX,
    SEATTLE,
    YEAR,
    Battery,
    History,
)

__all__ = [
    "HISTORIES",
    "PHOENIX",
    "SEATTLE",
    "History",
    "build",
    "clear_sky_wh",
    "main",
    "plugs",
]

FLOW_ORDER = (
    *("production", "consumption", "solar_home", "solar_grid", "grid_home", "import", "export"),
    *("charge", "discharge", "solar_battery", "battery_home", "battery_grid", "grid_battery"),
    "evse",
)  # as in Enlighten's reply (spec 2.6)


# --- PV: pvlib's clear sky through the array, times the weather -------------------------------


def _starts(history: History) -> tuple[datetime, int]:
    """The first bucket's start (UTC, local midnight of 1 January) and the year's buckets."""
    zone = ZoneInfo(history.timezone)
    origin = datetime(YEAR, 1, 1, tzinfo=zone).astimezone(UTC)
    end = datetime(YEAR + 1, 1, 1, tzinfo=zone).astimezone(UTC)
    return origin, int((end - origin) / QUARTER)


def air_temperature(history: History, day_temp: list[float]) -> list[float]:
    """Air temperature (deg C) per bucket: the day's mean plus a swing peaking at 15:00."""
    origin, count = _starts(history)
    zone = ZoneInfo(history.timezone)
    result = []
    for index in range(count):
        local = (origin + index * QUARTER).astimezone(zone)
        hour = local.hour + local.minute / 60 + 0.125
        daily = math.cos(2 * math.pi * (hour - 15) / 24)
        result.append(day_temp[local.timetuple().tm_yday - 1] + history.climate.swing_c / 2 * daily)
    return result


def clear_sky_wh(history: History, temps: list[float]) -> list[float]:
    """AC energy (Wh) per bucket under a clear sky: pvlib Ineichen, Hay-Davies, PVWatts."""
    import pandas as pd  # noqa: PLC0415 - only the generator needs pvlib and pandas
    import pvlib  # noqa: PLC0415
    from pvlib.temperature import TEMPERATURE_MODEL_PARAMETERS  # noqa: PLC0415

    origin, count = _starts(history)
    mid = pd.date_range(origin + QUARTER / 2, periods=count, freq="15min")
    location = pvlib.location.Location(
        history.latitude, history.longitude, tz="UTC", altitude=history.altitude
    )
    sky = location.get_clearsky(mid, model="ineichen")
    sun = location.get_solarposition(mid)
    poa = pvlib.irradiance.get_total_irradiance(
        history.tilt,
        history.azimuth,
        sun["apparent_zenith"],
        sun["azimuth"],
        dni=sky["dni"],
        ghi=sky["ghi"],
        dhi=sky["dhi"],
        dni_extra=pvlib.irradiance.get_extra_radiation(mid),
        model="haydavies",
    )["poa_global"].fillna(0.0)
    params = TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_polymer"]
    cell = pvlib.temperature.sapm_cell(poa, pd.Series(temps, index=mid), 1.5, **params)
    dc = pvlib.pvsystem.pvwatts_dc(poa, cell, history.dc_kw * 1000, -0.0037)
    dc = dc * (1 - 0.14)  # PVWatts' default system losses
    ac = pvlib.inverter.pvwatts(dc, history.ac_kw * 1000 / 0.96, eta_inv_nom=0.96)
    watts = ac.fillna(0.0).clip(lower=0.0, upper=history.ac_kw * 1000)
    return [float(w) / 4 for w in watts.to_numpy()]  # mean W over 15 minutes -> Wh


def weather(history: History) -> tuple[list[float], list[float]]:
    """The clear-sky index per bucket and the air temperature per day (deg C)."""
    origin, count = _starts(history)
    zone = ZoneInfo(history.timezone)
    climate = history.climate
    rng = random.Random(history.seed)  # noqa: S311 - synthetic data, not security
    index_k: list[float] = []
    day_temp: list[float] = []
    clear = True
    day = date(YEAR, 1, 1)
    latent = 0.0
    while day.year == YEAR:
        month = day.month - 1
        if rng.random() >= climate.persistence:
            clear = rng.random() < climate.clear_p[month]
        overcast = not clear and rng.random() < climate.overcast_share
        storm = (
            clear
            and day.month in climate.storm_months
            and rng.random() < climate.storm_p / climate.clear_p[month]
        )
        storm_from = rng.uniform(13.0, 17.0)
        storm_to = storm_from + rng.uniform(1.0, 4.0)
        storm_k = rng.uniform(0.05, 0.3)
        # A cloudy day is cooler by day (the swing is around the mean, so a little on average).
        doy = day.timetuple().tm_yday
        seasonal = _interpolate_month(climate.mean_c, doy)
        day_temp.append(seasonal + rng.gauss(0.0, 1.5) - (1.5 if overcast else 0.0))
        first = int((datetime.combine(day, time(), tzinfo=zone) - origin) / QUARTER)
        after = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
        last = min(int((after - origin) / QUARTER), count)
        for bucket in range(first, last):
            local = (origin + bucket * QUARTER).astimezone(zone)
            hour = local.hour + local.minute / 60
            latent = 0.75 * latent + rng.gauss(0.0, 0.66)  # unit variance, 15-min correlation
            if clear:
                k = 0.97 + 0.02 * latent
            elif overcast:
                k = 0.25 + 0.08 * latent
            else:
                k = 0.6 + 0.25 * latent
            if storm and storm_from <= hour < storm_to:
                k = storm_k + 0.03 * latent
            index_k.append(min(max(k, 0.03), 1.0))
        day += timedelta(days=1)
    return index_k[:count], day_temp


def _interpolate_month(values: tuple[float, ...], doy: int) -> float:
    """A monthly mean (at each month's middle) interpolated to day-of-year ``doy``."""
    position = (doy - 15.5) / 30.44
    low = math.floor(position)
    frac = position - low
    return values[low % 12] + (values[(low + 1) % 12] - values[low % 12]) * frac


# --- the house ---------------------------------------------------------------------------------


def house_wh(history: History, temps: list[float]) -> list[float]:
    """House energy (Wh) per bucket: base shape, heating or cooling, appliances, noise."""
    origin, count = _starts(history)
    zone = ZoneInfo(history.timezone)
    house = history.house
    rng = random.Random(history.seed + 2)  # noqa: S311 - synthetic data, not security
    result = []
    noise = 0.0
    event_left = 0
    event_kw = 0.0
    for index in range(count):
        local = (origin + index * QUARTER).astimezone(zone)
        free = local.weekday() >= 5 or local.date() in history.holidays
        shape = house.weekend_kw if free else house.weekday_kw
        frac = local.minute / 60
        base = shape[local.hour] + (shape[(local.hour + 1) % 24] - shape[local.hour]) * frac
        temp = temps[index]
        hvac = house.heat_kw_per_c * max(0.0, house.heat_below_c - temp)
        hvac += house.cool_kw_per_c * max(0.0, temp - house.cool_above_c)
        noise = 0.8 * noise + rng.gauss(0.0, 0.06)
        if event_left == 0 and 6 <= local.hour < 23 and rng.random() < 0.035:
            event_left = rng.randint(1, 4)
            event_kw = rng.uniform(0.8, 2.4)  # oven, dryer, dishwasher, kettle
        extra = event_kw if event_left > 0 else 0.0
        event_left = max(event_left - 1, 0)
        result.append(max(base * (1 + noise) + hvac + extra, 0.12) * 250)  # kW -> Wh/15 min
    return result


# --- drivers -----------------------------------------------------------------------------------


SLACK = timedelta(minutes=45)
"""A plan's margin (15 min), the report lag (up to a bucket) and a restart's pause."""


class _Tank:
    """Energy the car needs at its next plug-in: driving since the last session, capped."""

    def __init__(self, history: History, rng: random.Random) -> None:
        self.history = history
        self.rng = rng
        self.need = 0.0

    def drive(self, days: float = 1.0) -> None:
        daily = self.history.kwh_per_day * self.rng.uniform(0.7, 1.3)
        self.need = min(self.need + daily * days, self.history.car_kwh * 0.9)

    def take(self, start: datetime, end: datetime) -> float:
        """What the car takes in a session from ``start`` to ``end``: the need, but no more
        than the charger gives in the window less :data:`SLACK` (the rest waits for the next
        session). So every session can be met by a policy that knows its departure, as in
        the bundled sample; the optimum, which needs no slack, never decides the figures."""
        hours = (end - start - SLACK) / timedelta(hours=1)
        cap = math.floor(self.history.charge_w / 100 * max(hours, 0.1)) / 10  # 0.1 kWh, down
        wanted = min(round(max(self.need, 1.0), 1), cap)
        self.need = max(self.need - wanted, 0.0)
        return wanted


def _commuter(history: History) -> Iterator[Plug]:
    """Leaves at ``leave_h`` on working days, home around ``home_h``; skips some evenings;
    some weekends the car stays plugged from Friday evening to Monday morning, others it
    charges on Saturday in the day; away on trips."""
    rng = random.Random(history.seed + 1)  # noqa: S311 - synthetic data, not security
    extra = history.extra
    tank = _Tank(history, rng)
    day = date(YEAR, 1, 1)
    last_unplug: datetime | None = None
    skip_until = day
    while day.year == YEAR:
        tomorrow = day + timedelta(days=1)
        working = day.weekday() < 5 and day not in history.holidays
        if history.away(day):
            tank.drive(1.6)  # a road trip
        elif working:
            tank.drive()
        if history.away(day) or day < skip_until:
            day = tomorrow
            continue
        start: datetime | None = None
        end: datetime | None = None
        if working and rng.random() >= extra["skip_p"]:
            start = history.at(day, min(max(rng.gauss(extra["home_h"], 0.5), 16.5), 21.0), rng)
            after = tomorrow
            leave = rng.gauss(extra["leave_h"] - 0.05, 0.08)
            if day.weekday() == 4 and rng.random() < extra["weekend_plug_p"]:
                after = day + timedelta(days=3)  # plugged all weekend, off on Monday
                while after in history.holidays:
                    after += timedelta(days=1)
            elif after.weekday() >= 5 or after in history.holidays:
                leave = rng.gauss(9.5, 1.0)  # out on the free morning
            if history.away(after):
                leave = rng.gauss(8.0, 0.5)
            end = history.at(after, leave, rng)
            skip_until = after
        elif not working and rng.random() < 0.35:
            start = history.at(day, rng.gauss(11.0, 1.0), rng)
            end = start + timedelta(hours=rng.uniform(3.0, 6.0))
            tank.drive(0.4)
        if start is not None and end is not None:
            if last_unplug is not None:
                start = max(start, last_unplug + timedelta(minutes=40))
            if end - start >= timedelta(hours=1):
                last_unplug = end
                yield Plug(start, end, tank.take(start, end))
        day = tomorrow


# Shift hours (start, end of the shift, local): the car plugs in after it, leaves before the next.
SHIFTS = {"day": (6.0, 14.0), "night": (22.0, 30.0), "swing": (14.0, 22.0)}
ROSTER = ("day", "night", "swing")  # a week each, in turn


def _shift_worker(history: History) -> Iterator[Plug]:
    """A rotating roster, five shifts a week on random days, a week per shift type; drives
    to work in the car (plugs in after the shift, leaves 40 minutes before the next one), does
    not plug in at all on some days, and goes on a long weekend trip every few weeks."""
    rng = random.Random(history.seed + 1)  # noqa: S311 - synthetic data, not security
    extra = history.extra
    tank = _Tank(history, rng)
    first = date(YEAR, 1, 1)
    day = first - timedelta(days=first.weekday())  # the roster's weeks start on Mondays
    shifts: list[tuple[datetime, datetime]] = []  # UTC, work periods
    next_trip = day + timedelta(days=int(rng.uniform(20, 40)))
    trips: list[tuple[datetime, datetime]] = []
    while day.year <= YEAR:
        week = (day - first).days // 7
        if day.weekday() == 0:
            kind = ROSTER[week % len(ROSTER)]
            off = set(rng.sample(range(7), 2))
            for offset in range(7):
                when = day + timedelta(days=offset)
                if offset not in off and when.year == YEAR:
                    hours = SHIFTS[kind]
                    shifts.append(
                        (history.at(when, hours[0], rng), history.at(when, hours[1], rng))
                    )
        if day >= next_trip and day.weekday() == 4:
            back = day + timedelta(days=rng.choice((3, 4)))
            trips.append((history.at(day, 7.0, rng), history.at(back, 19.0, rng)))
            next_trip = day + timedelta(days=int(rng.gauss(extra["trip_every_days"], 5)))
        day += timedelta(days=1)
    # Away on a trip: no shift, no plug-in.
    shifts = [s for s in shifts if not any(t0 <= s[1] and s[0] <= t1 for t0, t1 in trips)]
    events = sorted([(s[0], s[1], False) for s in shifts] + [(t0, t1, True) for t0, t1 in trips])
    last_end: datetime | None = None
    for (begin, finish, trip), following in zip(events, [*events[1:], None], strict=True):
        if trip:
            days = (finish - begin) / timedelta(days=1)
            tank.drive(days * 3.0)
        else:
            tank.drive(0.9 + rng.uniform(0.0, 0.3))  # the commute, an errand
        if following is None or rng.random() < extra["unplugged_p"]:
            continue
        start = finish + timedelta(minutes=rng.uniform(25, 60))
        end = following[0] - timedelta(minutes=rng.uniform(35, 55))
        if last_end is not None:
            start = max(start, last_end + timedelta(minutes=40))
        # A free day before the next shift: out in the car for a few hours midway.
        if end - start > timedelta(hours=30):
            middle = start + (end - start) / 2
            errand = timedelta(hours=rng.uniform(2.0, 5.0))
            if middle - start >= timedelta(hours=1):
                yield Plug(start, middle, tank.take(start, middle))
                tank.drive(0.5)
            start = middle + errand
        if end - start >= timedelta(hours=1):
            last_end = end
            yield Plug(start, end, tank.take(start, end))


DRIVERS = {"commuter": _commuter, "shift_worker": _shift_worker}


def plugs(history: History) -> list[Plug]:
    """The driver's plug-in windows for the year, in order, never overlapping."""
    return list(DRIVERS[history.driver](history))


# --- the home battery, on the real profile -------------------------------------------------------


def battery_flows(
    battery: Battery, production: list[int], load: list[int]
) -> tuple[list[float], list[float]]:
    """Wh into (from PV) and out of (to house and car) the battery per bucket."""
    one_way = math.sqrt(battery.efficiency)
    floor = battery.capacity_kwh * 1000 * battery.reserve_pct / 100
    top = battery.capacity_kwh * 1000
    step = battery.power_kw * 250
    stored = (floor + top) / 2
    into: list[float] = []
    out: list[float] = []
    for made, used in zip(production, load, strict=True):
        spare = made - used
        # The headrooms never below nothing: emptied to the reserve, ``stored`` can land a
        # rounding under it (-1e-13 Wh), which read as a negative discharge (hypothesis found
        # it in tests/test_histories.py).
        charge_wh = min(max(spare, 0.0), step, max(0.0, (top - stored) / one_way))
        give = min(max(-spare, 0.0), step, max(0.0, (stored - floor) * one_way))
        stored += charge_wh * one_way - give / one_way
        into.append(charge_wh)
        out.append(give)
    return into, out


# --- writing -----------------------------------------------------------------------------------


def build(history: History, out: Path | None = None) -> dict[str, float]:
    """Write the history's ``data/`` files (or into ``out``) and return the yearly figures."""
    config = load_config(history.folder / CONFIG_FILE)
    origin, count = _starts(history)
    end = origin + count * QUARTER

    index_k, day_temp = weather(history)
    temps = air_temperature(history, day_temp)
    clear = clear_sky_wh(history, temps)
    production = round_keeping_total([c * k for c, k in zip(clear, index_k, strict=True)])
    house = round_keeping_total(house_wh(history, temps))

    evse_exact = [0.0] * count
    sessions = []
    for plug in plugs(history):
        sessions.append((plug, charge(plug, origin, evse_exact, charge_w=history.charge_w)))
    evse = round_keeping_total(evse_exact)
    records, kwh_total = session_records(
        sessions,
        evse,
        origin=origin,
        tariffs=config.tariffs,
        timezone=history.timezone,
        serial=history.serial,
        charge_w=history.charge_w,
    )

    consumption = [h + e for h, e in zip(house, evse, strict=True)]
    solar_home = [min(p, c) for p, c in zip(production, consumption, strict=True)]
    nothing: list[int | None] = [None] * count
    flows: dict[str, list[int | None]] = {}
    if history.battery is not None:
        into, given = battery_flows(history.battery, production, consumption)
        charged = round_keeping_total(into)
        discharged = round_keeping_total(given)
        # Rounding may not push a bucket past what PV left or the house and car used.
        charged = [
            max(min(b, p - s), 0) for b, p, s in zip(charged, production, solar_home, strict=True)
        ]
        discharged = [
            max(min(b, c - s), 0)
            for b, c, s in zip(discharged, consumption, solar_home, strict=True)
        ]
        flows |= {
            "charge": list(charged),
            "discharge": list(discharged),
            "solar_battery": list(charged),
            "battery_home": list(discharged),
            "battery_grid": [0] * count,
            "grid_battery": [0] * count,
        }
    else:
        charged = discharged = [0] * count
        flows |= dict.fromkeys(
            ("charge", "discharge", "solar_battery", "battery_home", "battery_grid"), nothing
        )
        flows["grid_battery"] = nothing
    flows |= site_flows(
        production, consumption, solar_home, evse, charged=charged, discharged=discharged
    )
    real = [values for values in flows.values() if values is not nothing]
    null_days(real, history.null_days, origin=origin, timezone=history.timezone)
    payload: dict[str, Any] = {
        "system_id": history.system_id,
        "start_date": f"{YEAR}-01-01",
        "last_report_date": int(end.timestamp()),
        "update_pending": False,
    }
    payload |= {name: flows[name] for name in FLOW_ORDER}
    payload |= {"heatpump": [], "water_heater": []}
    write_files(out or history.folder / "data", payload, records, end=end)
    days = count / 96
    return {
        "pv_kwh": sum(production) / 1000,
        "house_kwh_per_day": sum(house) / 1000 / days,
        "ev_kwh": sum(evse) / 1000,
        "sessions_kwh": kwh_total,
        "sessions": float(len(sessions)),
        "battery_charged_kwh": sum(charged) / 1000,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m optimizer.simulate.sample.synth")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"of {', '.join(HISTORIES)}")
    parser.add_argument("--out", type=Path, help="write here (NAME/ below it), not the package")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in HISTORIES]
    if unknown:
        parser.error(f"unknown history {', '.join(unknown)}; valid: {', '.join(HISTORIES)}")
    for name in args.names or HISTORIES:
        history = HISTORIES[name]
        target = args.out / name if args.out else None
        figures = build(history, target)
        shown = ", ".join(f"{key} {value:,.1f}" for key, value in figures.items())
        print(f"{name}: {shown}")


if __name__ == "__main__":
    main()
