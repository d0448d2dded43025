"""`evopt simulate` on one-minute history: what a fresh surplus source buys, on the same days.

Taken when ``--minutes`` is given (the database's recorded minutes, or an exported file), with
``--sample --minutes`` (the bundled year made minute-level by the seeded method of
optimizer/simulate/sample/minutes.py), or by itself when neither ``--energy`` nor ``--sample``
is given and the database holds recorded minutes with readings for the site. Each source
replays the same minutes (optimizer/simulate/minutes.py); ``--compare-sources`` prints both
side by side. Nothing is sent to the cloud, nothing is written.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from optimizer.cli.args.simulate import minute_flags
from optimizer.cli.context import Context
from optimizer.cli.output import print_json
from optimizer.config import Config
from optimizer.decisions.minutefile import read_minutes
from optimizer.decisions.minutes import MinuteRow, PowerHistory
from optimizer.decisions.store import DecisionStore
from optimizer.engine.loader import load_config_rules
from optimizer.enlighten.errors import ConfigError
from optimizer.simulate.minutes import (
    SOURCES,
    MinuteFigures,
    MinuteSeries,
    Source,
    replay_minutes,
    series_from_rows,
)
from optimizer.simulate.sample.minutes import minute_series

__all__ = ["minute_mode", "run_minutes"]


class InputError(ConfigError):
    """One-minute history that cannot be replayed as asked (exit 1)."""

    hint = "see `evopt simulate --help` and docs/surplus.md"


def minute_mode(ctx: Context) -> bool:
    """Whether this `evopt simulate` replays one-minute history (see the module)."""
    chosen = minute_flags(ctx.args)
    return chosen if chosen is not None else _stored_site(ctx.config, ctx) is not None


def _stored_site(config: Config, ctx: Context) -> int | None:
    """The site whose recorded minutes have readings (PV and house load), if the database has
    any: a service on the cloud's sources records only the chargers, nothing to replay."""
    path = config.database_path
    if not path.is_file():
        return None
    try:
        store = DecisionStore.open_readonly(path)
    except ConfigError:  # an older schema (before the one-minute history): none recorded
        return None
    with store:
        history = PowerHistory(store)
        wanted = ctx.chosen_site_id() if getattr(ctx.args, "site", None) else None
        wanted = wanted or config.enlighten.site_id
        sites = history.sites(with_readings=True)
        if wanted is not None:
            return wanted if wanted in sites else None
        return sites[0] if len(sites) == 1 else None


def _rows(ctx: Context) -> tuple[list[MinuteRow], str]:
    args, config = ctx.args, ctx.config
    if args.minutes:
        path = Path(args.minutes).expanduser()
        rows = read_minutes(path)
        sites = sorted({row.site_id for row in rows})
        if len(sites) > 1:
            wanted = config.enlighten.site_id
            if wanted not in sites:
                raise InputError(
                    f"{path} holds minutes of several sites ({', '.join(map(str, sites))})",
                    hint="export one site (`evopt history export --site ID`) or set "
                    "enlighten.site_id",
                )
            rows = [row for row in rows if row.site_id == wanted]
        return rows, str(path)
    site = _stored_site(config, ctx)
    if site is None:
        raise InputError(
            f"no one-minute history in {config.database_path}",
            hint="the service records it as it runs (service.record_minutes); or pass "
            "--minutes FILE, or --sample --minutes",
        )
    with DecisionStore.open_readonly(config.database_path) as store:
        rows = list(PowerHistory(store).rows(site_id=site))
    return rows, f"{config.database_path} (site {site})"


def build_minutes(ctx: Context) -> tuple[MinuteSeries, str]:
    """The one-minute series to replay and a name for it."""
    from optimizer.cli.simulate import _period, build_series  # noqa: PLC0415 - no cycle

    args = ctx.args
    if args.sample:
        buckets, _, _ = build_series(ctx)
        return minute_series(buckets, seed=args.seed), f"the bundled sample (seed {args.seed})"
    if args.energy or args.sessions:
        raise InputError(
            "--minutes replays one-minute history; --energy and --sessions are 15-minute",
            hint="drop --minutes to replay them, or give --minutes FILE alone",
        )
    rows, name = _rows(ctx)
    timezone = ctx.config.site.timezone or "UTC"
    start, end = _period(args, timezone)
    chosen = [
        row
        for row in rows
        if (start is None or row.minute >= start) and (end is None or row.minute < end)
    ]
    if not chosen:
        raise InputError(f"{name}: no one-minute history in the chosen period")
    return series_from_rows(chosen, timezone=timezone, start=start, end=end), name


def _sources(args: argparse.Namespace, config: Config) -> list[Source]:
    if args.compare_sources:
        return list(SOURCES)
    if args.source is not None:
        return [args.source]
    return ["gateway" if str(config.surplus.source) == "gateway" else "lifetime_energy"]


def run_minutes(ctx: Context) -> int:
    from optimizer.cli.simulate import site_setup  # noqa: PLC0415 - no cycle

    args, config = ctx.args, ctx.config
    if args.tick < 1:
        raise InputError("--tick must be at least 1 (minutes)")
    if args.compare or args.plot or args.plans not in (None, "none"):
        raise InputError(
            "--compare, --plot and --plans replay 15-minute history",
            hint="leave them out of a one-minute replay (--minutes, --source, --compare-sources)",
        )
    series, name = build_minutes(ctx)
    site = site_setup(config, None, zone=series.timezone)
    policies = load_config_rules(config).enabled
    results: dict[Source, MinuteFigures] = {}
    for source in _sources(args, config):
        replayed = replay_minutes(
            series,
            policies,
            source=source,
            config=config,
            limits=site.limits,
            voltage_v=site.voltage_v,
            tick=args.tick,
            site_id=config.enlighten.site_id,
        )
        results[source] = replayed.figures
    report = minute_report(series, results, tick=args.tick)
    if args.json:
        print_json(report)
    else:
        print(minute_text(series, results, name=name, tick=args.tick))
    return 0


def minute_report(
    series: MinuteSeries, results: dict[Source, MinuteFigures], *, tick: int
) -> dict[str, Any]:
    """The JSON: the first source's figures at the top (the keys of a 15-minute replay that
    apply), every source's under ``sources``."""
    first = next(iter(results.values()))
    return {
        "period": {"start": series.start.isoformat(), "end": series.end.isoformat()},
        "resolution": "1m",
        "tick_minutes": tick,
        "minutes": len(series),
        "missing_minutes": sum(series.missing),
        "buckets": -(-len(series) // 15),
        "missing_buckets": series.missing_buckets(),
        "source": first.source,
        "ev_energy_kwh": round(first.ev_energy_kwh, 3),
        "ev_solar_kwh": round(first.ev_solar_kwh, 3),
        "solar_share": round(first.solar_share, 4),
        "ev_grid_kwh": round(first.ev_grid_kwh, 3),
        "unmet_kwh": round(first.unmet_kwh, 3),
        "commands": first.commands,
        "commands_per_session": first.to_json()["commands_per_session"],
        "sources": {source: figures.to_json() for source, figures in results.items()},
    }


_ROWS: Sequence[tuple[str, str, str]] = (
    ("car energy", "ev_energy_kwh", "kWh"),
    ("solar into the car", "ev_solar_kwh", "kWh"),
    ("solar share", "solar_share", "%"),
    ("grid into the car", "ev_grid_kwh", "kWh"),
    ("left unmet", "unmet_kwh", "kWh"),
    ("commands", "commands", ""),
    ("sessions", "sessions", ""),
    ("commands per session", "commands_per_session", ""),
)


def minute_text(
    series: MinuteSeries, results: dict[Source, MinuteFigures], *, name: str, tick: int
) -> str:
    local = series.start.astimezone(ZoneInfo(series.timezone))
    days = len(series) / 1440
    lines = [
        f"one-minute replay of {name}: {local:%Y-%m-%d %H:%M} for {days:.1f} days "
        f"({len(series)} minutes, {sum(series.missing)} without a reading), "
        f"engine every {tick} min",
    ]
    width = max(len(label) for label, _, _ in _ROWS)
    lines.append(f"{'':<{width}}  " + "  ".join(f"{s:>16}" for s in results))
    for label, key, unit in _ROWS:
        cells = []
        for figures in results.values():
            value = figures.to_json()[key]
            if value is None:
                cells.append(f"{'-':>16}")
            elif unit == "%":
                cells.append(f"{value * 100:>15.1f}%")
            elif isinstance(value, float) and unit:
                cells.append(f"{value:>12.2f} {unit:<3}")
            elif isinstance(value, float):
                cells.append(f"{value:>16.2f}")
            else:
                cells.append(f"{value:>16}")
        lines.append(f"{label:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)
