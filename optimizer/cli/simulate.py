"""`evopt simulate`: replay history through the policies, offline, and compare with baselines.

Inputs are Enlighten's own JSON shapes (a lifetime-energy reply with 15-minute buckets and
session-history pages), from files or, without ``--energy``, as `evopt history fetch` stored
them in the database; the site's timezone, tariffs, limits and rules come from the config.
Nothing is sent to the cloud. Decisions are logged as mode ``simulation`` in their own file,
``simulations.db`` beside the live log (never in it), as a run named ``--name`` that replaces
the previous run of that name; `evopt log --simulation NAME` reads them.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from optimizer import __version__
from optimizer.cli.args.simulate import minute_flags
from optimizer.cli.context import Context
from optimizer.config import Config
from optimizer.decisions.store import DecisionStore
from optimizer.engine.loader import load_config_rules, load_rules
from optimizer.engine.rules import PolicyBase
from optimizer.enlighten.errors import ConfigError, ParseError
from optimizer.enlighten.models import (
    ChargingSession,
    LifetimeEnergy,
    parse_lifetime_energy,
    parse_session_history_page,
)
from optimizer.limits import Limits
from optimizer.observe.view import DEFAULT_LIMITS, DEFAULT_VOLTAGE
from optimizer.service.setup import file_hash, files_hash
from optimizer.simulate.baseline_cache import Ahead
from optimizer.simulate.learned import LearnedPlans, series_plans
from optimizer.simulate.logdb import open_simulations, simulations_path
from optimizer.simulate.replay import ReplayResult, replay
from optimizer.simulate.report import (
    Ranked,
    build_report,
    compare_json,
    compare_text,
    optimal_figures,
    solve_optimum_ahead,
)
from optimizer.simulate.sample import SAMPLES, sample_paths, sample_shift, sample_site
from optimizer.simulate.series import Figures, SiteSeries, figures, series_from_history

__all__ = ["simulate"]


class InputError(ConfigError):
    """A history file that cannot be used (exit 1, one line naming the file)."""

    hint = "pass Enlighten's lifetime_energy JSON (15-minute buckets) and session-history pages"


def plan_margin(args: argparse.Namespace) -> timedelta | None:
    """The margin of the exact departure plans the replay gives the policies, or None."""
    return args.plan_margin if args.plans == "exact" else None


def session_plans(
    args: argparse.Namespace,
    series: SiteSeries,
    config: Config,
    known: Sequence[ChargingSession] = (),
) -> LearnedPlans | None:
    """With ``--plans learned``, each session's learned plan (causal); else None.

    ``known``: every session the history holds, those before ``--from`` too: the service
    with ``plans: auto`` has learned from them by then, so a replay of June learns from
    January to May as well (each day still only from the sessions that had ended)."""
    if plans_kind(args, config) != "learned":
        return None
    return series_plans(series, known=known, settings=config.habits.settings())


def plans_kind(args: argparse.Namespace, config: Config) -> str:
    """The departure plans replayed: ``--plans`` when given, else what the service would
    have: learned with ``plans: auto`` in the config (a replay without them would show a
    household that sets no plans, not the service this config runs), none with ``manual``."""
    if args.plans is not None:
        return str(args.plans)
    return "learned" if config.plans == "auto" else "none"


def _learned_count(plans: LearnedPlans | None) -> tuple[int, int] | None:
    """Sessions with a learned plan, and sessions: every one gets a plan (LearnedPlans), so
    the count asks for none of them (each half of a replay in two processes learned its own;
    counting here would learn the second half's again)."""
    if plans is None:
        return None
    return len(plans), len(plans)


@dataclass(frozen=True)
class SiteSetup:
    limits: Limits
    voltage_v: float
    timezone: str


def site_setup(
    config: Config, energy: LifetimeEnergy | None, *, zone: str | None = None
) -> SiteSetup:
    """Limits, voltage and zone; ``zone``: the history's own, when the config has none."""
    top = DEFAULT_LIMITS.max_amps
    site_max = config.site.max_current
    limits = Limits(DEFAULT_LIMITS.min_amps, min(top, site_max or top), 1, site_max)
    zone = config.site.timezone or zone
    zone = zone or (energy.timezone if energy is not None else None) or "UTC"
    return SiteSetup(limits, float(config.site.voltage or DEFAULT_VOLTAGE), zone)


def _read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not JSON ({err})") from err
    except (ValueError, RecursionError) as err:  # a number past int's digit limit; nesting
        raise InputError(f"{path}: JSON that Python cannot read ({err})") from err


read_json = _read_json  # `evopt plan learn` reads session pages the same way


def load_history(
    energy_path: str, session_paths: Sequence[str], *, timezone: str
) -> tuple[LifetimeEnergy, list[ChargingSession]]:
    """Parse the files; any problem becomes one InputError naming the file."""
    try:
        energy = parse_lifetime_energy(_read_json(energy_path), timezone=timezone)
    except ParseError as err:
        raise InputError(f"{energy_path}: {err}") from err
    sessions: list[ChargingSession] = []
    for path in session_paths:
        try:
            sessions.extend(parse_session_history_page(_read_json(path)).sessions)
        except ParseError as err:
            raise InputError(f"{path}: {err}") from err
    return energy, sessions


def _shifted(sessions: list[ChargingSession], by: timedelta) -> list[ChargingSession]:
    """The sessions ``by`` later (a bundled history read in another zone: sample_shift)."""
    if not by:
        return sessions
    return [
        s.model_copy(
            update={
                "started_at": s.started_at + by,
                "ended_at": None if s.ended_at is None else s.ended_at + by,
            }
        )
        for s in sessions
    ]


def _period(args: argparse.Namespace, timezone: str) -> tuple[datetime | None, datetime | None]:
    zone = ZoneInfo(timezone)
    start = end = None
    try:
        if args.date_from is not None:
            start = datetime.combine(args.date_from, time(), tzinfo=zone).astimezone(UTC)
        if args.date_to is not None:
            after = args.date_to + timedelta(days=1)  # --to is inclusive
            end = datetime.combine(after, time(), tzinfo=zone).astimezone(UTC)
    except OverflowError as err:  # year 1 or 9999 in a zone that pushes it off the calendar
        raise InputError(
            f"--from/--to: {err}", hint="give dates within the history to simulate"
        ) from err
    return start, end


def load_stored_history(
    config: Config, args: argparse.Namespace, *, timezone: str
) -> tuple[LifetimeEnergy, list[ChargingSession], str]:
    """What `evopt history fetch` stored for the site; returns it and a name for errors."""
    path = config.database_path
    fetch_hint = "run `evopt history fetch` first, or pass --energy FILE and --sessions FILE"
    if not path.is_file():
        raise InputError(f"no history to simulate: no database at {path}", hint=fetch_hint)
    with DecisionStore(path) as store:
        site_id = getattr(args, "site", None) or config.enlighten.site_id
        if site_id is None:
            sites = store.history_sites()
            if len(sites) > 1:
                raise InputError(
                    f"{path} holds history of several sites ({', '.join(map(str, sites))})",
                    hint="set `enlighten.site_id` in the config",
                )
            site_id = sites[0] if sites else None
        stored = store.load_history_energy(site_id) if site_id is not None else None
        if site_id is None or stored is None:
            raise InputError(f"no history to simulate in {path}", hint=fetch_hint)
        day_before = args.date_from - timedelta(days=1) if args.date_from else None
        if plans_kind(args, config) == "learned":
            day_before = None  # the habits learn from the sessions before the period too
        pages = store.load_history_sessions(site_id, start=day_before, end=args.date_to)
    name = f"{path} (site {site_id})"
    try:
        energy = parse_lifetime_energy(stored[0], timezone=timezone)
        seen: set[str] = set()
        sessions: list[ChargingSession] = []
        for page in pages:
            for session in parse_session_history_page(page).sessions:
                if session.id not in seen:
                    seen.add(session.id)
                    sessions.append(session)
    except ParseError as err:
        raise InputError(f"{name}: {err}") from err
    return energy, sessions, name


def expand_sessions(items: Sequence[str]) -> list[str]:
    """The session pages named by files, directories and globs, in order, each once.

    A glob is expanded here (quoted, the shell leaves it to us; unquoted, it arrives as many
    files): a pattern or directory that names no file is an error, never an empty history.
    """
    found: list[str] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            matches = sorted(str(p) for p in path.glob("*.json") if p.is_file())
            if not matches:
                raise InputError(f"--sessions {item}: a directory without *.json files")
        elif any(char in item for char in "*?["):
            matches = sorted(p for p in glob.glob(str(path)) if Path(p).is_file())
            if not matches:
                raise InputError(
                    f"--sessions '{item}': no file matches",
                    hint="check the pattern (quote it so the shell leaves it to evopt)",
                )
        else:
            matches = [item]  # read later: a missing file is named there
        found += [m for m in matches if m not in found]
    return found


def _history_files(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """The energy file and session pages: the bundled sample, the files given, or none."""
    if not args.sample:
        return args.energy, expand_sessions(args.sessions)
    if args.energy or args.sessions:
        raise InputError(
            "--sample replays the bundled history; --energy and --sessions name your own",
            hint="give --sample alone, or --energy FILE and --sessions PATH",
        )
    energy, pages = sample_paths(args.sample)
    return str(energy), [str(page) for page in pages]


def build_series(ctx: Context) -> tuple[SiteSeries, SiteSetup, list[ChargingSession]]:
    """The period's series, the site, and every session the history holds (the learned
    plans' past)."""
    config, args = ctx.config, ctx.args
    # The sample's own zone unless the config names one: its days are then the sample's.
    site = site_setup(config, None, zone=SAMPLES[args.sample].timezone if args.sample else None)
    energy_path, session_paths = _history_files(args)
    if energy_path:
        energy, sessions = load_history(energy_path, session_paths, timezone=site.timezone)
        source = f"the bundled sample {args.sample}" if args.sample else energy_path
        if args.sample:  # read in the config's zone: the household moves with its buckets
            sessions = _shifted(sessions, sample_shift(args.sample, site.timezone))
    else:
        if args.sessions:
            raise InputError(
                "--sessions needs --energy", hint="pass --energy FILE as well, or --sample"
            )
        energy, sessions, source = load_stored_history(config, args, timezone=site.timezone)
    start, end = _period(args, site.timezone)
    try:
        series = series_from_history(
            energy,
            sessions,
            tariffs=config.tariffs,
            timezone=site.timezone,
            start=start,
            end=end,
        )
    except ParseError as err:
        raise InputError(f"{source}: {err}") from err
    if not series.starts:
        raise InputError(f"{source}: no 15-minute buckets in the chosen period")
    return series, site, sessions


async def simulate(ctx: Context) -> int:
    if minute_flags(ctx.args) is not False:
        # Only here: a 15-minute source never needs the one-minute replay (0.1 s of imports).
        from optimizer.cli import simulate_minutes  # noqa: PLC0415

        if simulate_minutes.minute_mode(ctx):
            return simulate_minutes.run_minutes(ctx)
    series, site, known = build_series(ctx)
    # The optimum's solves on the other core while the replay runs here (collected at the
    # report; ended unread when anything below fails).
    ahead = solve_optimum_ahead(series, site.limits, site.voltage_v)
    try:
        return _simulate_series(ctx, series, site, ahead, known)
    finally:
        if ahead is not None:
            ahead.close()


def _simulate_series(
    ctx: Context,
    series: SiteSeries,
    site: SiteSetup,
    ahead: Ahead | None,
    known: Sequence[ChargingSession],
) -> int:
    config, args = ctx.config, ctx.args
    if args.compare:
        paths = [Path(p) for p in args.compare]
        return _compare(
            series,
            site,
            config,
            paths,
            args.json,
            margin=plan_margin(args),
            plans=session_plans(args, series, config, known),
            ahead=ahead,
        )
    plans = session_plans(args, series, config, known)
    loaded = load_config_rules(config)
    policies: Sequence[PolicyBase] = loaded.enabled
    store = run_id = None
    logged = 0
    if not args.no_log:
        store = open_simulations(config)
        run_id = store.start_run(
            name=args.name,
            mode="simulation",
            site_id=config.enlighten.site_id,
            config_hash=file_hash(config.source),
            rules_hash=files_hash(Path(name) for name in loaded.files),
            version=__version__,
            started_at=datetime.now(UTC),
        )
    try:
        result = replay(
            series,
            policies,
            config=config,
            limits=site.limits,
            voltage_v=site.voltage_v,
            store=store,
            run_id=run_id,
            site_id=config.enlighten.site_id,
            plan_margin=plan_margin(args),
            plans=plans,
            forecast_site=sample_site(args.sample, site.timezone) if args.sample else None,
        )
        if store is not None and run_id is not None:
            store.end_run(run_id, ended_at=datetime.now(UTC), status="finished")
            logged = store.run_rows(run_id)
    finally:
        if store is not None:
            store.close()
    report = build_report(
        series,
        result.ev_kwh,
        commands=result.commands,
        limits=site.limits,
        voltage_v=site.voltage_v,
        currency=config.tariffs.currency,
        run_id=run_id,
        rules=tuple(loaded.files),
        decisions=result.decisions,
        by_action=result.by_action,
        plan_margin_min=_minutes(plan_margin(args)),
        plans_learned=_learned_count(plans),
        battery=config.site.battery,
        battery_flows=result.battery,
        ahead=ahead,
    )
    if args.plot:
        _plot(series, result, args, currency=config.tariffs.currency)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.to_text())
        if run_id is not None:
            print(
                f"\ndecisions: {result.decisions}, {logged} logged (commands and changes) "
                f"in {simulations_path(config)} as '{args.name}' "
                f"(evopt log --simulation={args.name})"
            )
        else:
            print(f"\ndecisions: {result.decisions} (not logged: --no-log)")
        if args.plot:
            print(f"plot: {args.plot}")
        if args.plans is None and config.plans == "auto":
            print(
                "departure plans learned as the service would (the config's `plans: auto`); "
                "`--plans none` replays without them"
            )
    return 0


def _plot(
    series: SiteSeries, result: ReplayResult, args: argparse.Namespace, *, currency: str
) -> None:
    from optimizer.simulate.plot import plot_replay  # noqa: PLC0415 - matplotlib is slow to import

    plot_replay(
        series,
        result,
        Path(args.plot),
        day=args.plot_day,
        week=args.plot_week,
        currency=currency,
    )


def _minutes(margin: timedelta | None) -> float | None:
    return None if margin is None else margin / timedelta(minutes=1)


def _compare(
    series: SiteSeries,
    site: SiteSetup,
    config: Config,
    paths: list[Path],
    as_json: bool,
    *,
    margin: timedelta | None,
    plans: LearnedPlans | None = None,
    ahead: Ahead | None = None,
) -> int:
    """Each rule file on the same series, ranked by :func:`rank_key`, beside the optimum."""
    rows = []
    for path in paths:
        loaded = load_rules([path], tariffs=config.tariffs)
        policies: Sequence[PolicyBase] = loaded.enabled
        if not policies and loaded.policies:
            # An alternative shipped disabled (rules/min-solar.yaml: "to use it, set enabled:
            # true"): compared as it would run once enabled, not as a file that does nothing.
            policies = [p.model_copy(update={"enabled": True}) for p in loaded.policies]
            print(
                f"{path}: every policy is disabled; compared with them enabled",
                file=sys.stderr,
            )
        result = replay(
            series,
            policies,
            config=config,
            limits=site.limits,
            voltage_v=site.voltage_v,
            plan_margin=margin,
            plans=plans,
        )
        home = result.battery.kwh() if result.battery is not None else None
        rows.append(
            (str(path), figures(series, result.ev_kwh, commands=result.commands, battery=home))
        )
    rows.sort(key=lambda row: rank_key(row[1]))
    ranked = [Ranked(n, name, f) for n, (name, f) in enumerate(rows, 1)]
    best = optimal_figures(series, site.limits, site.voltage_v, config.site.battery, ahead=ahead)
    if as_json:
        print(json.dumps(compare_json(ranked, best), indent=2))
    else:
        print("\n".join(compare_text(ranked, best)))
    return 0


def rank_key(f: Figures) -> tuple[float, float, float, int]:
    """Less energy left unmet first (a cheap run that leaves the car short is no winner),
    then more solar into the car, then a lower cost per kWh delivered, then fewer commands."""
    unmet = round(f.unmet_kwh, 1) if f.leaves_unmet else 0.0
    per_kwh = f.cost_per_kwh
    return (unmet, -f.ev_solar_kwh, per_kwh if per_kwh is not None else math.inf, f.commands)
