"""`evopt simulate` (implemented in optimizer/cli/simulate.py and simulate_minutes.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date, timedelta

from optimizer.cli.args import lazy

DEFAULT_PLAN_MARGIN = timedelta(minutes=15)
# Copies pinned by tests/test_startup.py: optimizer.simulate.logdb.DEFAULT_NAME,
# optimizer.simulate.minutes.SOURCES and DEFAULT_TICK (the simulator imports numpy and the
# engine); the seed is the CLI's own.
DEFAULT_NAME = "default"
SOURCES = ("gateway", "lifetime_energy")
DEFAULT_TICK = 1
DEFAULT_SEED = 1
# optimizer.simulate.sample.DEFAULT_SAMPLE and each sample's name and summary (pinned too).
DEFAULT_SAMPLE = "greensboro"
SAMPLES = {
    "greensboro": "Greensboro, NC: humid subtropical, measured weather; an evening commuter",
    "seattle": "Seattle, WA: cloudy maritime, short winter days; a commuter who leaves at 07:00",
    "phoenix": "Phoenix, AZ: sunny, hot, monsoon afternoons, home battery; a shift worker",
}


def _margin(text: str) -> timedelta:
    try:
        value: timedelta = lazy.call("config:parse_duration", text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: {err}") from err
    if value < timedelta(0):
        raise argparse.ArgumentTypeError(f"{text!r}: a margin cannot be negative")
    return value


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add `simulate` through build_parser's ``command(name, help, handler)``."""
    parser = command(
        "simulate",
        "replay history through the policies and compare with baselines",
        "cli.simulate:simulate",
    )
    parser.add_argument(
        "--energy",
        metavar="FILE",
        help="lifetime_energy JSON (15-minute); default: what `evopt history fetch` stored",
    )
    parser.add_argument(
        "--sessions",
        metavar="PATH",
        action="extend",
        nargs="+",
        default=[],
        help="session-history JSON pages: files, a directory (its *.json) or a quoted glob "
        "('hist/sessions-*.json'); several after one flag, or the flag repeated",
    )
    parser.add_argument(
        "--sample",
        nargs="?",
        const=DEFAULT_SAMPLE,
        default=None,
        choices=tuple(SAMPLES),
        metavar="NAME",
        help="replay a bundled sample year instead of --energy/--sessions: "
        + "; ".join(f"{name}: {summary}" for name, summary in SAMPLES.items())
        + f" (default {DEFAULT_SAMPLE}; each has its site config, docs/simulation.md)",
    )
    parser.add_argument("--from", dest="date_from", type=date.fromisoformat, metavar="D")
    parser.add_argument("--to", dest="date_to", type=date.fromisoformat, metavar="D")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--plot", metavar="FILE.png", help="write a plot of one day or week")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--plot-day", type=date.fromisoformat, metavar="YYYY-MM-DD")
    which.add_argument("--plot-week", type=date.fromisoformat, metavar="YYYY-MM-DD")
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="RULES.yaml",
        help="replay each rule file on the same history and rank them",
    )
    parser.add_argument(
        "--no-log", action="store_true", help="do not write decisions to simulations.db"
    )
    parser.add_argument(
        "--name",
        default=DEFAULT_NAME,
        metavar="NAME",
        help="the run's name in simulations.db; it replaces the last run of that name "
        f"(default {DEFAULT_NAME!r})",
    )
    parser.add_argument(
        "--plans",
        nargs="?",
        const="exact",
        choices=("exact", "learned", "none"),
        default=None,
        help="give each session a departure plan: exact (the default when --plans has no "
        "value): ready by its unplug time minus --plan-margin with the energy it took, as a "
        "driver using `evopt plan set` would; learned: the plan `plans: auto` would give, "
        "from habits learned only from sessions that ended before that day; none: no plans. "
        "Without --plans: learned when the config has `plans: auto`, else none",
    )
    parser.add_argument(
        "--plan-margin",
        type=_margin,
        default=DEFAULT_PLAN_MARGIN,
        metavar="DURATION",
        help="how much earlier than the real unplug the plans say ready by (default 15m)",
    )
    _minute_arguments(parser)


def minute_flags(args: argparse.Namespace) -> bool | None:
    """Whether the options ask for the one-minute replay (True), for a 15-minute source
    (False), or neither, when the database decides (None): so `evopt simulate --sample`
    does not import the one-minute replay (a tenth of a second) to be told no."""
    if args.minutes is not None or args.compare_sources or args.source is not None:
        return True
    if args.energy or args.sample or args.sessions:
        return False
    return None


def _minute_arguments(parser: argparse.ArgumentParser) -> None:
    """The one-minute replay's options (optimizer/cli/simulate_minutes.py)."""
    parser.add_argument(
        "--minutes",
        nargs="?",
        const="",
        metavar="FILE",
        help="replay one-minute history: the minutes the service recorded (no FILE), or a "
        "file `evopt history export` wrote; with --sample, the sample made minute-level",
    )
    parser.add_argument(
        "--source",
        choices=SOURCES,
        help="the surplus source the engine sees in a one-minute replay: gateway (the last "
        "minute) or lifetime_energy (the last complete 15-minute bucket); default: the "
        "config's surplus.source when it is gateway, else lifetime_energy",
    )
    parser.add_argument(
        "--compare-sources",
        action="store_true",
        help="replay the one-minute history with each source and print them side by side",
    )
    parser.add_argument(
        "--tick",
        type=int,
        default=DEFAULT_TICK,
        metavar="MIN",
        help=f"minutes between engine decisions in a one-minute replay (default {DEFAULT_TICK})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        metavar="N",
        help=f"seed of the sample's minute-level variability (default {DEFAULT_SEED})",
    )
