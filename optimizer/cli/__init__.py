"""`evopt`: the command line.

Thin over the library: each command builds a :class:`Context`, calls the client, prints a
table or JSON. Every failure becomes one line on stderr and a documented exit code
(0 ok, 1 invalid config or input, 2 usage, 3 authentication, 4 cloud), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import date, datetime
from typing import Any

from optimizer import __version__
from optimizer.cli import (
    account,
    control,
    forecast,
    gateway,
    history,
    log,
    plan,
    rules,
    run,
    scheduler,
    simulate,
    steer,
    why,
)
from optimizer.cli.context import Context, pick_site
from optimizer.config import Config, find_config
from optimizer.enlighten.control import TRIGGER_MESSAGES
from optimizer.enlighten.errors import EXIT_INVALID, EnlightenError
from optimizer.logsafe import RedactingFormatter
from optimizer.timespec import parse_clock, parse_days
from optimizer.yamlpos import YamlFileError

EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70
ENV_LOG_LEVEL = "EVOPT_LOG_LEVEL"
EVOPT_HANDLER = "evopt-stderr"
LOG_LEVELS = ("debug", "info", "warning", "error")

Handler = Callable[[Context], Coroutine[Any, Any, int]]


def _common_options(*, top: bool) -> argparse.ArgumentParser:
    """Options accepted both before and after the command.

    The sub-command copies default to SUPPRESS so that a value given before the command is
    not overwritten by the sub-parser's default.
    """
    parent = argparse.ArgumentParser(add_help=False)
    default: Any = None if top else argparse.SUPPRESS
    parent.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="config file (default: $EVOPT_CONFIG, else ./config.yaml)",
    )
    parent.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=default,
        help="log verbosity on stderr (default: $EVOPT_LOG_LEVEL, else warning)",
    )
    return parent


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _site_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--site",
        metavar="NAME|ID",
        help="a site of the config's sites: list by name or id, or a site id (default: from "
        "config)",
    )


def _charger_flag(parser: argparse.ArgumentParser) -> None:
    _site_flag(parser)
    parser.add_argument("--charger", metavar="SN", help="one charger's serial (default: all)")


def _arg_type(parse: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    """An argparse type whose error names the value and what would be valid (exit 2)."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"{err}; expected {what}") from err

    convert.__name__ = what
    return convert


MODES_HELP = "MANUAL_CHARGING, SCHEDULED_CHARGING, GREEN_CHARGING or SMART_CHARGING"
MODE_TYPE = _arg_type(control.parse_mode, MODES_HELP)
DAYS_TYPE = _arg_type(parse_days, "days like 1,2,3 or mon-fri, weekdays, weekends, all")
DATE_TYPE = _arg_type(date.fromisoformat, "a date like 2025-01-15")


def _day_or_time(text: str) -> date | datetime:
    """A local day (2025-01-15) or a time (2025-01-15T10:30, with or without a zone)."""
    return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)


DAY_OR_TIME_TYPE = _arg_type(_day_or_time, "a date like 2025-01-15 or a time like 2025-01-15T10:30")


def _clock(text: str) -> str:
    """A slot time, checked for its form here (exit 2, before any login or request) and kept
    as written: whether it makes sense for the slot is the edit's business (exit 1)."""
    parse_clock(text)
    return text


CLOCK_TYPE = _arg_type(_clock, "a time of day like 07:30")


def _slot_times(parser: argparse.ArgumentParser, *, required: bool) -> None:
    start, end = "start time", "end time"
    parser.add_argument("--start", required=required, type=CLOCK_TYPE, metavar="HH:MM", help=start)
    parser.add_argument("--end", required=required, type=CLOCK_TYPE, metavar="HH:MM", help=end)
    parser.add_argument("--days", type=DAYS_TYPE, help="days (default for a new slot: all)")
    parser.add_argument("--amps", type=int, metavar="N", help="charging level in amps")


SLOT_HELP = "the slot: its id, its number in `evopt schedule list`, or a unique part of its id"


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - the flat list of commands
    common = _common_options(top=False)
    parser = argparse.ArgumentParser(
        prog="evopt",
        description="Solar-aware charging automation for the Enphase IQ EV Charger 2.",
        parents=[_common_options(top=True)],
    )
    parser.add_argument("--version", action="version", version=f"evopt {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(
        name: str, help_text: str, handler: Handler | None = None
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, parents=[common])
        if handler is not None:
            sub.set_defaults(handler=handler)
        return sub

    login = command("login", "log in to Enlighten and store the session", account.login)
    _site_flag(login)
    login.add_argument("--otp", metavar="CODE", help="complete a pending login with this code")
    login.add_argument(
        "--resend-otp", action="store_true", help="ask Enphase to send a new one-time code"
    )

    sites = command("sites", "list the sites this account can see", account.sites)
    _json_flag(sites)

    status = command(
        "status",
        "show each charger's normalized status and the service's view of it",
        account.status,
    )
    _site_flag(status)
    _json_flag(status)
    status.set_defaults(all_sites=True)

    def group(name: str, help_text: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        sub = command(name, help_text)
        return sub.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(
        actions: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        help_text: str,
        handler: Handler,
    ) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text, description=help_text, parents=[common])
        sub.set_defaults(handler=handler)
        _charger_flag(sub)
        _json_flag(sub)
        return sub

    charge = group("charge", "start or stop charging, or change the amps")
    start = action(
        charge,
        "start",
        "start charging; with --amps, at that level (a running session is restarted at it)",
        control.charge_start,
    )
    start.add_argument("--amps", type=int, metavar="N", help="charging level in amps")
    start.add_argument(
        "--force",
        action="store_true",
        help="send the start even to a charger with session authentication on (it then "
        "waits for someone to authenticate in the app or with a card)",
    )
    action(charge, "stop", "stop charging", control.charge_stop)

    mode = group("mode", "read or set the charge mode (MANUAL, SCHEDULED, GREEN or SMART charging)")
    action(mode, "get", "show each charger's charge mode preference", scheduler.mode_get)
    mode_set = action(
        mode, "set", "set the charge mode (nothing sent if already in it)", control.mode_set
    )
    mode_set.add_argument(
        "mode",
        type=MODE_TYPE,
        metavar="MODE",
        help=f"{MODES_HELP} (or manual, scheduled, green, smart)",
    )

    battery = group("battery", "read or set green mode's 'use battery for EV charging'")
    action(battery, "get", "show the green-mode battery setting", scheduler.battery_get)
    battery_set = action(
        battery, "set", "turn green mode's battery use on or off", control.battery_set
    )
    battery_set.add_argument("state", choices=("on", "off"), help="on or off")

    schedule = group("schedule", "read and edit the charger's own schedule slots")
    action(schedule, "list", "list schedule slots", scheduler.schedule_list)
    add = action(schedule, "add", "add a CUSTOM slot", control.schedule_add)
    _slot_times(add, required=True)
    add.add_argument("--disabled", action="store_true", help="add it switched off")
    edit = action(
        schedule,
        "set",
        "change a slot's times, days or amps (a time edit enables it)",
        control.schedule_set,
    )
    edit.add_argument("slot", metavar="SLOT", help=SLOT_HELP)
    _slot_times(edit, required=False)
    for name, handler, text in (
        ("enable", control.schedule_enable, "switch a slot on"),
        ("disable", control.schedule_disable, "switch a slot off"),
        ("delete", control.schedule_delete, "delete a CUSTOM slot"),
    ):
        action(schedule, name, text, handler).add_argument("slot", metavar="SLOT", help=SLOT_HELP)

    live = group("live", "start or stop the live stream (faster status updates for ~15 min)")
    for name in ("start", "stop"):
        action(live, name, f"{name} the live stream", control.live)

    trigger = command("trigger", "ask the charger to send one OCPP message now", control.trigger)
    trigger.add_argument(
        "message",
        metavar="MESSAGE",
        help="one of: " + ", ".join(TRIGGER_MESSAGES),
    )
    _charger_flag(trigger)
    _json_flag(trigger)
    history_group = group("history", "download history into the local database")
    fetch = action(
        history_group,
        "fetch",
        "download lifetime energy and session history (resumable, within the request budget)",
        history.fetch,
    )
    fetch.add_argument(
        "--from",
        dest="date_from",
        type=DATE_TYPE,
        metavar="D",
        help="first local day (default: the start of the site's lifetime energy)",
    )
    fetch.add_argument(
        "--to", dest="date_to", type=DATE_TYPE, metavar="D", help="last local day (default: today)"
    )
    fetch.add_argument(
        "--max-requests",
        type=int,
        default=history.DEFAULT_MAX_REQUESTS,
        metavar="N",
        help="stop asking for sessions after this many requests "
        f"(default {history.DEFAULT_MAX_REQUESTS}); run again later to continue",
    )
    export = action(
        history_group,
        "export",
        "write the one-minute power history (CSV, or JSON) for a spreadsheet or evopt simulate",
        history.export,
    )
    export.add_argument(
        "--from",
        dest="date_from",
        type=DAY_OR_TIME_TYPE,
        metavar="D|TIME",
        help="first local day, or a time (default: the oldest minute)",
    )
    export.add_argument(
        "--to",
        dest="date_to",
        type=DAY_OR_TIME_TYPE,
        metavar="D|TIME",
        help="last local day (inclusive), or a time (exclusive) (default: the newest minute)",
    )
    export.add_argument(
        "--format", choices=("csv", "json"), default="csv", help="csv (default) or json"
    )
    export.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    export.set_defaults(all_sites=True)  # every site's minutes unless --site names one
    plans = group("plan", "the driver's departure plan: ready by a time with some energy")
    plan_set = action(
        plans,
        "set",
        "set a plan: this much energy since plug-in by that time (replaces an earlier one)",
        plan.plan_set,
    )
    plan_set.add_argument(
        "--by", required=True, metavar="HH:MM|DATETIME", help="ready by (the next HH:MM)"
    )
    plan_set.add_argument(
        "--energy",
        required=True,
        type=plan.energy_type,
        metavar="KWH",
        help="kWh the car should have taken since plug-in by then",
    )
    action(plans, "show", "show the departure plans", plan.plan_show)
    action(plans, "clear", "remove the plan (of --charger, else every plan)", plan.plan_clear)
    learn = action(
        plans,
        "learn",
        "show the departure habits learned from session history (what `plans: auto` uses)",
        plan.plan_learn,
    )
    learn.add_argument(
        "--sessions",
        action="append",
        metavar="FILE",
        help="session-history JSON pages (files, directories, globs; repeatable) instead of "
        "the database `evopt history fetch` fills",
    )
    learn.add_argument(
        "--at",
        metavar="DATETIME",
        help="learn as known at this time (default: now; with --sessions, just after the "
        "newest session)",
    )
    rules.register(command)
    steer.register(command, common)
    log.register(command, common)
    gateway.register(command, common)
    run.register(command)
    simulate.register(command)
    forecast.register(command)
    why.register(command)
    return parser


def setup_logging(level: str | None) -> None:
    """Logs go to stderr; without timestamps under journald, which adds its own."""
    chosen = (level or os.environ.get(ENV_LOG_LEVEL) or "warning").lower()
    if chosen not in LOG_LEVELS:
        chosen = "warning"
    handler = logging.StreamHandler(sys.stderr)
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("JOURNAL_STREAM"):
        fmt = "%(asctime)s " + fmt
    handler.setFormatter(RedactingFormatter(fmt))
    handler.set_name(EVOPT_HANDLER)
    root = logging.getLogger()
    # Replace only our own handler: a second `main()` in one process (tests, the demo) must
    # not stack handlers, and handlers others installed (pytest's capture) stay.
    for old in [h for h in root.handlers if h.get_name() == EVOPT_HANDLER]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(chosen.upper())


def _error(message: str) -> None:
    sys.stderr.write(f"evopt: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        loads_config = getattr(args, "loads_config", True)
        config = find_config(args.config) if loads_config else Config()
        chosen = getattr(args, "site", None)
        config = pick_site(config, chosen, all_sites=getattr(args, "all_sites", False))
        ctx = Context(config=config, args=args)
        handler: Handler = args.handler
        return asyncio.run(handler(ctx))
    except YamlFileError as err:
        for problem in err.problems:
            sys.stderr.write(f"{problem}\n")
        return EXIT_INVALID
    except EnlightenError as err:
        _error(err.user_message())
        return err.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `evopt log --csv | head`: the reader left; not an error. Point stdout at devnull so
        # the interpreter's final flush does not fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:  # the last line of defence: one line, not a traceback
        logging.getLogger(__name__).debug("internal error", exc_info=True)
        _error(
            f"internal error: {type(err).__name__}: {err} "
            "(run with --log-level debug for details and please report it)"
        )
        return EXIT_INTERNAL
