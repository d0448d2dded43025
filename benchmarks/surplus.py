"""`make bench` (and `make surplus`): the one-minute replay's speed and what a fresh source buys.

- Speed: the bundled sample year made minute-level (525,600 minutes) replayed through the
  example rules with the gateway source at the default tick, in minutes per second, beside
  the 10,000 target; and the same with the engine deciding every minute (30 days), beside the
  same target (met, the default tick would be 1).
- Figures for docs/surplus.md, ``gateway`` against ``lifetime_energy``, the example rules:
  1. the bundled sample year, minute-level by the seeded method (seed 1);
  2. recorded fake-site days: the fake cloud's site model (the one the fake gateway serves)
     sampled every minute over a week with a car plugged in from 09:00 to 17:00 each day,
     recorded through the service's own writer into a decision log, read back and replayed.

Run: ``.venv/bin/python benchmarks/surplus.py`` (``--quick``: a month of the sample).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optimizer.config import Config, load_config  # noqa: E402
from optimizer.decisions.minutes import MinuteRow, PowerHistory  # noqa: E402
from optimizer.decisions.store import DecisionStore  # noqa: E402
from optimizer.engine.loader import load_rules  # noqa: E402
from optimizer.engine.rules import PolicyBase  # noqa: E402
from optimizer.fakecloud.model import SiteModel  # noqa: E402
from optimizer.limits import Limits  # noqa: E402
from optimizer.simulate.minutes import (  # noqa: E402
    DEFAULT_TICK,
    SOURCES,
    MinuteFigures,
    MinuteSeries,
    replay_minutes,
    series_from_rows,
)
from optimizer.simulate.sample.minutes import minute_series  # noqa: E402

TARGET_MINUTES_PER_S = 10_000
FAKE_DAYS = 7
FAKE_TIMEZONE = "Australia/Melbourne"
FAKE_FIRST_DAY = datetime(2025, 1, 6, tzinfo=ZoneInfo(FAKE_TIMEZONE))  # a summer Monday
PLUG_IN, UNPLUG = 9 * 60, 17 * 60  # local minutes of the day the car is plugged in
CAR_WANTS_KWH = 15.0  # what the car took each day (at 32 A from plug-in, as the fake's history)
FAKE_PV_PEAKS_W = (6000.0, 3500.0)  # the fake's default array, and a marginal one


def policies() -> list[PolicyBase]:
    return list(load_rules(sorted((ROOT / "rules").glob("*.yaml")), tariffs=None).enabled)


def sample_minutes(days: int | None) -> tuple[MinuteSeries, Config]:
    """The bundled year (or its first ``days`` from June) made minute-level, seed 1."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from run import sample_series  # noqa: PLC0415

    buckets, config = sample_series(1)
    minutes = minute_series(buckets, seed=1)
    if days is None:
        return minutes, config
    first = 151 * 1440  # 1 June
    cut = slice(first, first + days * 1440)
    return (
        replace(
            minutes,
            start=minutes.start + timedelta(minutes=first),
            pv_w=minutes.pv_w[cut],
            house_w=minutes.house_w[cut],
            missing=minutes.missing[cut],
        ),
        config,
    )


def record_fake_days(path: Path, *, pv_peak_w: float, seed: int = 3) -> list[MinuteRow]:
    """A week of the fake site, one row a minute, written as the service writes them."""
    start = FAKE_FIRST_DAY.astimezone(UTC)
    model = SiteModel(now=start.timestamp(), seed=seed, timezone=FAKE_TIMEZONE, pv_peak_w=pv_peak_w)
    watts = 32 * 230.0
    need_minutes = round(CAR_WANTS_KWH * 1000 / watts * 60)
    with DecisionStore(path) as store:
        history = PowerHistory(store)
        for minute in range(FAKE_DAYS * 1440):
            at = start + timedelta(minutes=minute)
            t = at.timestamp() + 30  # the minute's midpoint
            of_day = minute % 1440
            plugged = PLUG_IN <= of_day < UNPLUG
            draw = round(watts) if plugged and of_day - PLUG_IN < need_minutes else 0
            history.record(
                MinuteRow(
                    site_id=model.site_id,
                    minute=at,
                    pv_w=round(model.curves.pv_w(t)),
                    house_w=round(model.curves.load_w(t)),
                    evse_w=draw,
                    battery_charge_w=None,
                    battery_discharge_w=None,
                    plugged=int(plugged),
                    chargers={"202301000001": draw},
                    source="gateway",
                    age_s=3,
                )
            )
        return list(history.rows(site_id=model.site_id))


def fake_config() -> Config:
    text = (
        "site:\n  latitude: -37.81\n  longitude: 144.96\n  timezone: Australia/Melbourne\n"
        "  voltage: 230\n  max_current: 32\n"
        "tariffs:\n  currency: AUD\n  import_price: 0.30\n  export_price: 0.05\n  windows:\n"
        '    off_peak: {price: 0.18, times: "23:00-07:00"}\n'
        '    peak: {price: 0.45, times: "15:00-21:00", days: weekdays}\n'
        "rules: []\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(text, encoding="utf-8")
        return load_config(path)


def compare(
    series: MinuteSeries, config: Config, limits: Limits, voltage: float, tick: int
) -> dict[str, MinuteFigures]:
    rules = policies()
    return {
        source: replay_minutes(
            series,
            rules,
            source=source,
            config=config,
            limits=limits,
            voltage_v=voltage,
            tick=tick,
        ).figures
        for source in SOURCES
    }


def table(title: str, results: dict[str, MinuteFigures]) -> None:
    print(title)
    print(f"  {'':<22}{'gateway':>16}{'lifetime_energy':>18}")
    rows = (
        ("car energy, kWh", lambda f: f"{f.ev_energy_kwh:.1f}"),
        ("solar into car, kWh", lambda f: f"{f.ev_solar_kwh:.1f}"),
        ("solar share", lambda f: f"{f.solar_share * 100:.1f}%"),
        ("grid into car, kWh", lambda f: f"{f.ev_grid_kwh:.1f}"),
        ("unmet, kWh", lambda f: f"{f.unmet_kwh:.1f}"),
        ("commands", lambda f: str(f.commands)),
        ("sessions", lambda f: str(f.sessions)),
        (
            "commands per session",
            lambda f: "-" if f.commands_per_session is None else f"{f.commands_per_session:.2f}",
        ),
    )
    for label, show in rows:
        print(f"  {label:<22}{show(results['gateway']):>16}{show(results['lifetime_energy']):>18}")


def bench_speed(series: MinuteSeries, config: Config) -> None:
    """Minutes per second: 30 days deciding every minute (the default tick, and the target's
    case) and the whole series every 5 minutes; wall and CPU (two cores shared here)."""
    rules = policies()
    limits = Limits(6, 32, 1)
    for tick, length in ((1, min(len(series), 30 * 1440)), (5, len(series))):
        part = replace(
            series,
            pv_w=series.pv_w[:length],
            house_w=series.house_w[:length],
            missing=series.missing[:length],
        )
        started, cpu = time.perf_counter(), time.process_time()
        replay_minutes(
            part, rules, source="gateway", config=config, limits=limits, voltage_v=240.0, tick=tick
        )
        rate = length / (time.perf_counter() - started)
        cpu_rate = length / (time.process_time() - cpu)
        target = f"target: {TARGET_MINUTES_PER_S:,} deciding every minute"
        default = ", the default tick" if tick == DEFAULT_TICK else ""
        print(
            f"one-minute replay, {length:>7} minutes, engine every {tick} min{default}: "
            f"{rate:,.0f} minutes/s wall, {cpu_rate:,.0f} per CPU s ({target})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a month of the sample, not a year")
    parser.add_argument("--speed-only", action="store_true", help="only the replay speed")
    args = parser.parse_args()
    series, config = sample_minutes(30 if args.quick else None)
    bench_speed(series, config)
    if args.speed_only:
        return 0
    what = "June" if args.quick else "the year"
    table(
        f"bundled sample, {what}, minute-level (seed 1), engine every {DEFAULT_TICK} min:",
        compare(series, config, Limits(6, 32, 1), 240.0, DEFAULT_TICK),
    )
    for peak in FAKE_PV_PEAKS_W:
        with tempfile.TemporaryDirectory() as tmp:
            rows = record_fake_days(Path(tmp) / "decisions.db", pv_peak_w=peak)
        fake = series_from_rows(rows, timezone=FAKE_TIMEZONE)
        for tick in (1, 5):
            table(
                f"fake site with {peak / 1000:.1f} kWp, {FAKE_DAYS} recorded days from "
                f"{FAKE_FIRST_DAY:%Y-%m-%d}, car plugged 09:00-17:00 wanting "
                f"{CAR_WANTS_KWH:.0f} kWh, engine every {tick} min:",
                compare(fake, fake_config(), Limits(6, 32, 1), 230.0, tick),
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
