"""Regenerate the bundled sample history: ``python -m optimizer.simulate.sample.generate``.

Needs the ``sample`` extra (``pip install -e '.[sample]'``, i.e. pvlib); nothing else in the
project does. The output is deterministic: the same pvlib data file and seed give the same
bytes.

What goes in:

* **Weather**: the TMY3 typical-year file for Greensboro, NC (USAF 723170) that pvlib ships in
  ``pvlib/data/723170TYA.CSV``: measured and modelled hourly irradiance and temperature from
  NSRDB, one month chosen from each of many years. Its rows are laid end to end as calendar
  year :data:`YEAR`, in local standard time (UTC-5) as the file is.
* **PV**: a 6 kWp south-facing roof array (25 degree tilt) on a 5 kW inverter, modelled with
  pvlib's PVWatts model chain (Hay-Davies transposition, SAPM cell temperature, 14 % system
  losses). Hourly mean AC power is spread over the four quarter-hours by interpolating power
  between hour midpoints and rescaling so each hour keeps exactly its energy.
* **House**: a synthetic profile with the shape of standard residential load profiles such
  as the BDEW H0 household profile (a night trough, a breakfast shoulder, a midday plateau that
  is higher at weekends, an evening peak at 18-21 h, more lighting in winter), plus heating
  and air conditioning driven by the same TMY dry-bulb temperature, appliance events and noise,
  scaled to about 10 kWh a day. Seeded, so deterministic.
* **Car**: a commuter who plugs in on working-day evenings around 18:00 (until about 07:30 the
  next morning, later before a free day) needing 8-15 kWh, charges on some Saturdays, Sundays
  and holidays during the day (5-20 kWh), and is away on four trips. The real historical
  charging is "charge at 32 A from plug-in until full" at 240 V; that is the ``evse`` flow.

What comes out (``data/``): ``lifetime_energy.json`` in the shape of Enlighten's
``/pv/systems/<id>/lifetime_energy`` reply (Wh per 15-minute bucket, the first bucket starting
at local midnight of ``start_date``, quarter-hours counting elapsed time across DST) with the
whole of :data:`NULL_DAY` missing (a gateway outage; the charger's session history still has
that day's session), and ``sessions-YYYY-MM.json``, one session-history page per month of plug-in
(newest first, ``hasMore`` false) in the shape of ``.../sessions/<sn>/history``.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from optimizer.config import load_config
from optimizer.tariffs import Tariffs

YEAR = 2025
TIMEZONE = "America/New_York"  # sample.TIMEZONE
SYSTEM_ID = 4_710_325
CHARGER_SERIAL = "482501015537"
SEED = 20250101
TMY_FILE = "723170TYA.CSV"
# A Saturday with a daytime session: the gateway is offline all day, so every flow is null.
NULL_DAY = date(YEAR, 6, 14)

PV_DC_KW = 6.0
INVERTER_AC_KW = 5.0
VOLTAGE = 240
CHARGE_AMPS = 32
CHARGE_W = VOLTAGE * CHARGE_AMPS
MILES_PER_KWH = 3.4
HOUSE_KWH_PER_DAY = 10.0

QUARTER = timedelta(minutes=15)
HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "data"
CONFIG_FILE = HERE / "sample-config.yaml"

# Away: no sessions from the first day to the last (inclusive).
TRIPS = (
    (date(YEAR, 4, 17), date(YEAR, 4, 21)),
    (date(YEAR, 7, 12), date(YEAR, 7, 20)),
    (date(YEAR, 11, 26), date(YEAR, 11, 30)),
    (date(YEAR, 12, 23), date(YEAR, 12, 28)),
)
HOLIDAYS = frozenset(
    {
        date(YEAR, 1, 1),
        date(YEAR, 1, 20),
        date(YEAR, 5, 26),
        date(YEAR, 7, 4),
        date(YEAR, 9, 1),
        date(YEAR, 11, 27),
        date(YEAR, 11, 28),
        date(YEAR, 12, 25),
        date(YEAR, 12, 26),
    }
)

# House base load by local hour (kW), before scaling: H0-like shapes.
WEEKDAY_KW = (
    *(0.30, 0.26, 0.24, 0.24, 0.25, 0.30, 0.48, 0.62, 0.50, 0.38, 0.34, 0.34),
    *(0.36, 0.34, 0.33, 0.36, 0.45, 0.62, 0.78, 0.80, 0.72, 0.60, 0.46, 0.36),
)
WEEKEND_KW = (
    *(0.32, 0.28, 0.25, 0.24, 0.24, 0.26, 0.30, 0.40, 0.55, 0.62, 0.58, 0.55),
    *(0.58, 0.52, 0.48, 0.48, 0.52, 0.65, 0.78, 0.78, 0.70, 0.60, 0.48, 0.38),
)


@dataclass(frozen=True)
class Weather:
    """Per hour of the year from local (standard-time) midnight on 1 January."""

    pv_wh: tuple[float, ...]
    temp_c: tuple[float, ...]
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Plug:
    plug_in: datetime  # UTC
    unplug: datetime  # UTC
    wanted_kwh: float


# --- weather and PV (the only part that needs pvlib) -------------------------------------------


def model_weather() -> Weather:
    import pandas as pd  # noqa: PLC0415 - only the generator needs pvlib and pandas
    import pvlib  # noqa: PLC0415
    from pvlib.temperature import TEMPERATURE_MODEL_PARAMETERS  # noqa: PLC0415

    path = Path(pvlib.__file__).parent / "data" / TMY_FILE
    data, meta = pvlib.iotools.read_tmy3(path, map_variables=True)
    offset = float(meta["TZ"])
    # Row i is the hour ending at hour i + 1 of the year (local standard time); use midpoints.
    zone = f"Etc/GMT{-int(offset):+d}"
    times = pd.date_range(f"{YEAR}-01-01 00:30", periods=len(data), freq="h", tz=zone)
    weather = pd.DataFrame(
        {
            column: data[column].to_numpy(dtype=float)
            for column in ("ghi", "dni", "dhi", "temp_air", "wind_speed")
        },
        index=times,
    )
    location = pvlib.location.Location(
        meta["latitude"], meta["longitude"], tz=zone, altitude=meta["altitude"]
    )
    system = pvlib.pvsystem.PVSystem(
        surface_tilt=25,
        surface_azimuth=180,
        module_parameters={"pdc0": PV_DC_KW * 1000, "gamma_pdc": -0.0037},
        inverter_parameters={"pdc0": INVERTER_AC_KW * 1000 / 0.96, "eta_inv_nom": 0.96},
        temperature_model_parameters=TEMPERATURE_MODEL_PARAMETERS["sapm"][
            "open_rack_glass_polymer"
        ],
    )
    chain = pvlib.modelchain.ModelChain.with_pvwatts(
        system, location, transposition_model="haydavies", losses_model="pvwatts"
    )
    chain.run_model(weather)
    ac = chain.results.ac.fillna(0.0).clip(lower=0.0)
    return Weather(
        pv_wh=tuple(float(w) for w in ac.to_numpy()),  # mean W over an hour = Wh
        temp_c=tuple(float(t) for t in weather["temp_air"].to_numpy()),
        latitude=float(meta["latitude"]),
        longitude=float(meta["longitude"]),
    )


# --- quarter-hour series -----------------------------------------------------------------------


def quarters_from_hours(hourly_wh: Sequence[float], cap: float = math.inf) -> list[float]:
    """Four quarter-hour energies per hour, power interpolated, each hour's total kept.

    ``cap`` is the most one quarter can hold (the inverter's limit), so no quarter is clipped.
    """
    count = len(hourly_wh)
    result: list[float] = []
    for hour, energy in enumerate(hourly_wh):
        shares = []
        for quarter in range(4):
            at = hour + (quarter + 0.5) / 4 - 0.5  # in hour-midpoint coordinates
            low = math.floor(at)
            frac = at - low
            a = hourly_wh[min(max(low, 0), count - 1)]
            b = hourly_wh[min(max(low + 1, 0), count - 1)]
            shares.append(max(a + (b - a) * frac, 0.0))
        total = sum(shares)
        if energy <= 0:
            result.extend([0.0] * 4)
        elif total <= 0:
            result.extend([energy / 4] * 4)
        else:
            result.extend(_cap([share * energy / total for share in shares], cap))
    return result


def _cap(quarters: list[float], cap: float) -> list[float]:
    """No quarter above the inverter's limit: the excess moves to quarters with headroom."""
    excess = sum(max(q - cap, 0.0) for q in quarters)
    capped = [min(q, cap) for q in quarters]
    room = sum(cap - q for q in capped)
    if excess <= 0 or room <= 0:
        return capped
    return [q + (cap - q) * min(excess / room, 1.0) for q in capped]


def house_quarters(origin: datetime, count: int, temps: Sequence[float]) -> list[float]:
    """House energy (Wh) per quarter-hour from ``origin`` (UTC), local clock shape."""
    rng = random.Random(SEED)  # noqa: S311 - synthetic data, not security
    zone = ZoneInfo(TIMEZONE)
    raw: list[float] = []
    noise = 0.0
    event_left = 0
    event_kw = 0.0
    for index in range(count):
        local = (origin + index * QUARTER).astimezone(zone)
        free = local.weekday() >= 5 or local.date() in HOLIDAYS
        shape = WEEKEND_KW if free else WEEKDAY_KW
        hour = local.hour + local.minute / 60
        low = shape[local.hour]
        high = shape[(local.hour + 1) % 24]
        base = low + (high - low) * (hour - local.hour)
        season = 1 + 0.12 * math.cos(2 * math.pi * (local.timetuple().tm_yday - 15) / 365)
        temp = temps[min(index // 4, len(temps) - 1)]
        hvac = 0.05 * max(0.0, 15.0 - temp) + 0.11 * max(0.0, temp - 24.0)
        noise = 0.8 * noise + rng.gauss(0.0, 0.06)
        if event_left == 0 and 6 <= local.hour < 23 and rng.random() < 0.035:
            event_left = rng.randint(1, 4)
            event_kw = rng.uniform(0.8, 2.4)  # oven, dryer, dishwasher, kettle
        extra = event_kw if event_left > 0 else 0.0
        event_left = max(event_left - 1, 0)
        raw.append(max(base * season * (1 + noise) + hvac + extra, 0.12) * 250)  # kW -> Wh/15m
    days = count / 96
    scale = HOUSE_KWH_PER_DAY * 1000 * days / sum(raw)
    return [value * scale for value in raw]


def round_keeping_total(values: Sequence[float]) -> list[int]:
    """Whole Wh per bucket whose running total never drifts more than half a Wh."""
    result = []
    carried = 0.0
    emitted = 0
    for value in values:
        carried += value
        whole = round(carried) - emitted
        result.append(whole)
        emitted += whole
    return result


# --- the commuter ------------------------------------------------------------------------------


def _away(day: date) -> bool:
    return any(first <= day <= last for first, last in TRIPS)


def _working(day: date) -> bool:
    return day.weekday() < 5 and day not in HOLIDAYS and not _away(day)


def _at(day: date, hours: float, rng: random.Random) -> datetime:
    local = datetime.combine(day, time(), tzinfo=ZoneInfo(TIMEZONE)) + timedelta(hours=hours)
    return local.astimezone(UTC) + timedelta(milliseconds=rng.randint(0, 59_999))


def plugs() -> Iterator[Plug]:
    rng = random.Random(SEED + 1)  # noqa: S311 - synthetic data, not security
    day = date(YEAR, 1, 1)
    last_unplug: datetime | None = None
    while day.year == YEAR:
        tomorrow = day + timedelta(days=1)
        if not _away(day) and not _working(day):
            chance = 1.0 if day == NULL_DAY else 0.3 if day.weekday() == 6 else 0.6
            if rng.random() < chance:
                start = _at(day, rng.gauss(10.5, 0.6), rng)
                if last_unplug is not None:
                    start = max(start, last_unplug + timedelta(minutes=40))
                end = start + timedelta(hours=rng.uniform(4.0, 6.5))
                last_unplug = end
                yield Plug(start, end, round(rng.uniform(5.0, 20.0), 1))
        if _working(day):
            start = _at(day, min(max(rng.gauss(18.0, 0.45), 17.0), 20.5), rng)
            leave = rng.gauss(7.5, 0.15) if _working(tomorrow) else rng.gauss(9.0, 0.5)
            if _away(tomorrow):
                leave = rng.gauss(7.0, 0.3)
            end = _at(tomorrow, leave, rng)
            last_unplug = end
            yield Plug(start, end, round(rng.uniform(8.0, 15.0), 1))
        day = tomorrow


def charge(plug: Plug, origin: datetime, evse: list[float], *, charge_w: float = CHARGE_W) -> range:
    """Add the session's charging at ``charge_w`` from plug-in to ``evse`` (Wh per bucket);
    the buckets it touched."""
    seconds = min(
        plug.wanted_kwh * 1000 / charge_w * 3600, (plug.unplug - plug.plug_in).total_seconds()
    )
    start = plug.plug_in
    stop = start + timedelta(seconds=seconds)
    first = index = int((start - origin) / QUARTER)
    while True:
        bucket_start = origin + index * QUARTER
        bucket_end = bucket_start + QUARTER
        overlap = (min(stop, bucket_end) - max(start, bucket_start)).total_seconds()
        if overlap <= 0 or index >= len(evse):
            break
        evse[index] += charge_w * overlap / 3600
        index += 1
    return range(first, index)


# --- writing -----------------------------------------------------------------------------------


def site_flows(
    production: Sequence[int],
    consumption: Sequence[int],
    solar_home: Sequence[int],
    evse: Sequence[int],
    *,
    charged: Sequence[int] | None = None,
    discharged: Sequence[int] | None = None,
) -> dict[str, list[int | None]]:
    """The grid-side flows of a bucket series: PV not used at home (nor stored in a home
    battery, ``charged``) is exported; consumption not met by PV (nor by the battery,
    ``discharged``) is imported."""
    charged = charged or [0] * len(production)
    discharged = discharged or [0] * len(production)
    solar_grid = [p - s - b for p, s, b in zip(production, solar_home, charged, strict=True)]
    grid_home = [c - s - b for c, s, b in zip(consumption, solar_home, discharged, strict=True)]
    return {
        "production": list(production),
        "consumption": list(consumption),
        "solar_home": list(solar_home),
        "solar_grid": list(solar_grid),
        "grid_home": list(grid_home),
        "import": list(grid_home),
        "export": list(solar_grid),
        "evse": list(evse),
    }


def null_days(
    flows: Iterable[list[int | None]], days: Iterable[date], *, origin: datetime, timezone: str
) -> None:
    """Make whole local ``days`` null in every one of ``flows`` (a gateway outage)."""
    zone = ZoneInfo(timezone)
    for day in days:
        first = int((datetime.combine(day, time(), tzinfo=zone) - origin) / QUARTER)
        after = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
        last = int((after - origin) / QUARTER)
        for values in flows:
            values[first:last] = [None] * (last - first)


def session_records(
    sessions: Sequence[tuple[Plug, range]],
    evse: Sequence[int],
    *,
    origin: datetime,
    tariffs: Tariffs,
    timezone: str,
    serial: str,
    charge_w: float,
) -> tuple[dict[str, list[dict[str, Any]]], float]:
    """Session-history records (spec 2.5) by local month of plug-in, and their kWh in total.

    A session's energy is the whole Wh it put in its buckets (sessions never share one: the
    car unplugs well before it plugs in again), its cost that energy at each bucket's price.
    """
    zone = ZoneInfo(timezone)
    records: dict[str, list[dict[str, Any]]] = {}
    kwh_total = 0.0
    for plug, touched in sessions:
        wh = sum(evse[i] for i in touched)
        cost = sum(
            evse[i] / 1000 * (tariffs.window_at((origin + i * QUARTER).astimezone(zone))[1] or 0.0)
            for i in touched
        )
        kwh = round(wh / 1000, 2)
        kwh_total += kwh
        session_id = int(plug.plug_in.timestamp())
        month = plug.plug_in.astimezone(zone).strftime("%Y-%m")
        records.setdefault(month, []).append(
            {
                "id": f"{serial}:{session_id}",
                "sessionId": session_id,
                "startTime": _enlighten_time(plug.plug_in),
                "endTime": _enlighten_time(plug.unplug),
                "authType": None,
                "authIdentifier": None,
                "authToken": None,
                "aggEnergyValue": kwh,
                "activeChargeTime": round(wh / charge_w * 3600),
                "milesAdded": round(kwh * MILES_PER_KWH, 1),
                "sessionCost": round(cost, 2),
                "costCalculated": True,
                "manualOverridden": True,
                "avgCostPerUnitEnergy": round(cost / kwh, 2) if kwh else 0.0,
                "sessionCostState": "COST_CALCULATED",
                "chargeProfileStackLevel": 4,
            }
        )
    return records, kwh_total


def write_files(
    out: Path,
    payload: dict[str, Any],
    records: dict[str, list[dict[str, Any]]],
    *,
    end: datetime,
) -> None:
    """``lifetime_energy.json`` and one ``sessions-YYYY-MM.json`` page per month into ``out``
    (stale JSON there removed first)."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.json"):
        stale.unlink()
    _dump(out / "lifetime_energy.json", payload)
    stamp = _enlighten_time(end).removesuffix("[UTC]")
    for month, result in sorted(records.items()):
        first = date.fromisoformat(f"{month}-01")
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        result.sort(key=lambda record: record["sessionId"], reverse=True)
        _dump(
            out / f"sessions-{month}.json",
            {
                "source": "evse",
                "timestamp": stamp,
                "data": {
                    "result": result,
                    "hasMore": False,
                    "startDate": f"{first:%d-%m-%Y}",
                    "endDate": f"{last:%d-%m-%Y}",
                    "offset": 0,
                    "limit": max(len(result), 20),
                },
            },
        )


def _enlighten_time(when: datetime) -> str:
    when = when.astimezone(UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z[UTC]"


def _dump(path: Path, payload: Any) -> int:
    text = json.dumps(payload, separators=(",", ":")) + "\n"
    path.write_text(text, encoding="utf-8")
    return len(text)


def build(weather: Weather, out: Path = DATA_DIR) -> dict[str, float]:
    """Write the data files into ``out`` and return the yearly figures."""
    config = load_config(CONFIG_FILE)
    zone = ZoneInfo(TIMEZONE)
    origin = datetime(YEAR, 1, 1, tzinfo=zone).astimezone(UTC)
    end = datetime(YEAR + 1, 1, 1, tzinfo=zone).astimezone(UTC)
    count = int((end - origin) / QUARTER)

    production = round_keeping_total(
        quarters_from_hours(weather.pv_wh, INVERTER_AC_KW * 250)[:count]
    )
    house = round_keeping_total(house_quarters(origin, count, weather.temp_c))

    evse_exact = [0.0] * count
    sessions = []
    for plug in plugs():
        sessions.append((plug, charge(plug, origin, evse_exact)))
    evse = round_keeping_total(evse_exact)

    # Per session, its energy is the whole Wh it put in its buckets (sessions never share one:
    # the car unplugs at least 40 min before it plugs in again).
    records, kwh_total = session_records(
        sessions,
        evse,
        origin=origin,
        tariffs=config.tariffs,
        timezone=TIMEZONE,
        serial=CHARGER_SERIAL,
        charge_w=CHARGE_W,
    )

    consumption = [h + e for h, e in zip(house, evse, strict=True)]
    solar_home = [min(p, c) for p, c in zip(production, consumption, strict=True)]
    flows = site_flows(production, consumption, solar_home, evse)
    null_days(flows.values(), (NULL_DAY,), origin=origin, timezone=TIMEZONE)
    nothing: list[None] = [None] * count
    payload = {
        "system_id": SYSTEM_ID,
        "start_date": f"{YEAR}-01-01",
        "last_report_date": int(end.timestamp()),
        "update_pending": False,
        **{name: flows[name] for name in ("production", "consumption", "solar_home")},
        **{name: flows[name] for name in ("solar_grid", "grid_home", "import", "export")},
        **dict.fromkeys(("charge", "discharge", "solar_battery", "battery_home"), nothing),
        "battery_grid": nothing,
        "grid_battery": nothing,
        "evse": flows["evse"],
        "heatpump": [],
        "water_heater": [],
    }
    write_files(out, payload, records, end=end)
    return {
        "pv_kwh": sum(production) / 1000,
        "house_kwh": sum(house) / 1000,
        "ev_kwh": sum(evse) / 1000,
        "sessions_kwh": kwh_total,
        "sessions": float(len(sessions)),
    }


def main() -> None:
    weather = model_weather()
    figures = build(weather)
    for name, value in figures.items():
        print(f"{name}: {value:,.1f}" if name != "sessions" else f"{name}: {value:.0f}")


if __name__ == "__main__":
    main()
