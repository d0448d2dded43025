"""`evopt log` with `show`, `stats` and `plot` (implemented in optimizer/cli/log.py, logsim.py
and logplot.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from optimizer.cli.args import lazy

DEFAULT_LIMIT = 100
# optimizer.engine.decision.ACTIONS, optimizer.decisions.store.OUTCOMES and RUN_MODES (pinned
# by tests/test_startup.py): the engine and the store cost pydantic and SQLite to import.
ACTIONS = ("set_amps", "start", "stop", "set_mode", "set_battery", "patch_schedules", "hold")
OUTCOMES = ("applied", "noop", "dry_run", "rejected", "failed")
RUN_MODES = ("live", "dry_run", "simulation")
ALL_SIMULATIONS = ""  # `--simulation` without a NAME: every simulation
_RELATIVE_DAYS = ("today", "yesterday")

WHEN_TYPE = lazy.lazy_type(
    "cli.log:parse_when", "a time like 2025-01-15T14:05, a date, or a span back (30m, 2h)"
)
# `--since` and `--until` say what is valid themselves (parse_when's message lists the forms).
_SINCE_TYPE = lazy.lazy_type("cli.log:parse_when", None)


def _limit_type(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (no limit) or more")
    return value


_limit_type.__name__ = "limit"


def _choice(name: str, values: Sequence[str]) -> Callable[[str], str]:
    """An argparse type for a fixed set of values whose error suggests the closest one."""

    def parse(text: str) -> str:
        if text not in values:
            hint = lazy.call("explain:did_you_mean", text, values)
            raise argparse.ArgumentTypeError(
                f"no {name} '{text}'{hint}; valid: {', '.join(values)}"
            )
        return text

    parse.__name__ = name
    return parse


def _day_type(text: str) -> date | str:
    if text in _RELATIVE_DAYS:
        return text  # resolved in the site's zone, which comes with the config
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a day; expected 2025-01-15, today or yesterday"
        ) from None


def register(
    command: Callable[..., argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add `log` (with `show`, `stats` and `plot`) through build_parser's ``command`` helper.

    ``common`` carries --config and --log-level, so they work after the actions too. Options
    repeated on the actions default to SUPPRESS: a value given before the action (`evopt log
    --since 1d stats`) is not overwritten by the action's default.
    """
    log = command(
        "log", "review the decision log: list decisions, show one, or summarise", "cli.log:log_list"
    )
    _filter_options(log, default=None)
    log.add_argument(
        "--site",
        metavar="NAME|ID",
        help="one site's decisions: a site of the config's sites: list, or a site id",
    )
    log.set_defaults(all_sites=True)
    log.add_argument(
        "--limit",
        type=_limit_type,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N decisions, newest first (default {DEFAULT_LIMIT}; 0: all)",
    )
    log.add_argument(
        "--all",
        action="store_true",
        help="every decision, holds included (default: changes only: commands, failures, "
        "user overrides, and holds where another policy takes control)",
    )
    _format_options(log, default=False, csv_help="print CSV (all columns, UTC times)")
    # Optional: without an action, `evopt log` lists decisions.
    actions = log.add_subparsers(dest="log_action", metavar="[show ID | stats | plot]")

    show = _action(actions, common, "show", "explain one decision: reason, inputs, overruled")
    show.add_argument("id", type=int, metavar="ID", help="the decision's id (from `evopt log`)")
    show.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    show.set_defaults(handler="cli.log:log_show")

    stats = _action(
        actions, common, "stats", "per day: decisions, commands, outcomes, policies, requests"
    )
    _filter_options(stats, default=argparse.SUPPRESS)
    _format_options(
        stats, default=argparse.SUPPRESS, csv_help="print the per-day and per-policy counts as CSV"
    )
    stats.set_defaults(handler="cli.log:log_stats")

    plot = _action(
        actions,
        common,
        "plot",
        "draw one day: surplus, amps observed and commanded, commands, the policy in control",
    )
    plot.add_argument(
        "--day",
        required=True,
        type=_day_type,
        metavar="DATE",
        help="the site's local day: 2025-01-15, today or yesterday",
    )
    plot.add_argument(
        "--out", metavar="FILE.png", help="where to write the picture (default evopt-DATE.png)"
    )
    plot.add_argument(
        "--charger",
        default=argparse.SUPPRESS,
        metavar="SN",
        help="the charger (needed when the day has several)",
    )
    plot.set_defaults(handler="cli.logplot:log_plot")

    _simulation_option(log, default=None)
    for parser in (show, stats, plot):
        # SUPPRESS: `evopt log --simulation x stats` keeps x, not the action's default.
        _simulation_option(parser, default=argparse.SUPPRESS)


def _action(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    name: str,
    help_text: str,
) -> argparse.ArgumentParser:
    return actions.add_parser(name, help=help_text, description=help_text, parents=[common])


def _filter_options(parser: argparse.ArgumentParser, *, default: Any) -> None:
    when = (
        "12:05 (today at 12:05 site time; yesterday's when that is still to come), today, "
        "yesterday, 90m, 2h, 3d, 2026-12-05 or '2026-12-05 12:05' (site time unless a zone "
        "is given)"
    )
    parser.add_argument(
        "--since", type=_SINCE_TYPE, default=default, metavar="WHEN", help=f"from {when}"
    )
    parser.add_argument(
        "--until",
        type=_SINCE_TYPE,
        default=default,
        metavar="WHEN",
        help="before WHEN (a date, today or yesterday: up to the end of that day)",
    )
    parser.add_argument("--charger", default=default, metavar="SN", help="one charger's serial")
    parser.add_argument("--policy", default=default, metavar="NAME", help="one policy")
    for name, values in (("action", ACTIONS), ("outcome", OUTCOMES), ("mode", RUN_MODES)):
        parser.add_argument(
            f"--{name}",
            type=_choice(name, values),
            choices=values,
            default=default,
            help=f"one {name}" + (" (holds are then shown too)" if name == "action" else ""),
        )
    parser.add_argument(
        "--run", default=default, metavar="ID", help="one run (its id or first characters)"
    )


def _format_options(parser: argparse.ArgumentParser, *, default: Any, csv_help: str) -> None:
    formats = parser.add_mutually_exclusive_group()
    formats.add_argument(
        "--json", action="store_true", default=default, help="print JSON instead of a table"
    )
    formats.add_argument("--csv", action="store_true", default=default, help=csv_help)


def _simulation_option(parser: argparse.ArgumentParser, *, default: Any) -> None:
    parser.add_argument(
        "--simulation",
        nargs="?",
        const=ALL_SIMULATIONS,
        default=default,
        metavar="NAME",
        help="read simulations.db (written by `evopt simulate`) instead of the live log; "
        "with NAME, only that simulation",
    )
