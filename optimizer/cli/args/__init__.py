"""`evopt`'s argument parser, built without importing any command's implementation.

`evopt --help` (and `evopt X --help`, `--version`, a usage error) must answer at once (issue 16:
0.25 s on a busy 2-core box, where aiohttp, pydantic, sqlite-utils and the engine together cost
more than a second). So this package imports nothing but argparse and the standard library:
handlers are named, not imported (``"cli.account:login"``, resolved by :func:`lazy.resolve` after
parsing), converters that need the library are wrapped by :func:`lazy_type`, and the few
constants help texts and choices show are copied here (tests/test_startup.py pins each copy to
its original). One module per command group, as the implementations are.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime
from typing import Any

from optimizer import __version__
from optimizer.cli.args import forecast, gateway, log, rules, run, simulate, steer, why
from optimizer.cli.args.lazy import arg_type, lazy_type

__all__ = ["LOG_LEVELS", "build_parser"]

# `charge start --amps` and the slot's `--amps` need no library; the rest are named here so a
# help text never imports the module that owns them.
MODES_HELP = "MANUAL_CHARGING, SCHEDULED_CHARGING, GREEN_CHARGING or SMART_CHARGING"
# optimizer.enlighten.control.TRIGGER_MESSAGES (pinned by tests/test_startup.py).
TRIGGER_MESSAGES = (
    "BootNotification",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
)
DEFAULT_MAX_REQUESTS = 200  # per `history fetch` run: a third of the ~600/hour the notes allow
LOG_LEVELS = ("debug", "info", "warning", "error")
SLOT_HELP = "the slot: its id, its number in `evopt schedule list`, or a unique part of its id"


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


def site_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--site",
        metavar="NAME|ID",
        help="a site of the config's sites: list by name or id, or a site id (default: from "
        "config)",
    )


def _charger_flag(parser: argparse.ArgumentParser) -> None:
    site_flag(parser)
    parser.add_argument("--charger", metavar="SN", help="one charger's serial (default: all)")


MODE_TYPE = lazy_type("cli.control:parse_mode", MODES_HELP)
DAYS_TYPE = lazy_type("timespec:parse_days", "days like 1,2,3 or mon-fri, weekdays, weekends, all")
DATE_TYPE = arg_type(date.fromisoformat, "a date like 2025-01-15")


def _day_or_time(text: str) -> date | datetime:
    """A local day (2025-01-15) or a time (2025-01-15T10:30, with or without a zone)."""
    return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)


DAY_OR_TIME_TYPE = arg_type(_day_or_time, "a date like 2025-01-15 or a time like 2025-01-15T10:30")
# A slot time is checked for its form here (exit 2, before any login or request) and kept as
# written: whether it makes sense for the slot is the edit's business (exit 1).
CLOCK_TYPE = lazy_type("timespec:parse_clock", "a time of day like 07:30", keep_text=True)


# `plan set --energy`: the check MQTT's plan entities use too (optimizer/steer.py), imported
# when a value is converted; its message says what is valid.
ENERGY_TYPE = lazy_type("steer:parse_energy", None)


def _slot_times(parser: argparse.ArgumentParser, *, required: bool) -> None:
    start, end = "start time", "end time"
    parser.add_argument("--start", required=required, type=CLOCK_TYPE, metavar="HH:MM", help=start)
    parser.add_argument("--end", required=required, type=CLOCK_TYPE, metavar="HH:MM", help=end)
    parser.add_argument("--days", type=DAYS_TYPE, help="days (default for a new slot: all)")
    parser.add_argument("--amps", type=int, metavar="N", help="charging level in amps")


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - the flat list of commands
    common = _common_options(top=False)
    parser = argparse.ArgumentParser(
        prog="evopt",
        description="Solar-aware charging automation for the Enphase IQ EV Charger 2.",
        parents=[_common_options(top=True)],
    )
    parser.add_argument("--version", action="version", version=f"evopt {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, handler: str | None = None) -> argparse.ArgumentParser:
        """A command; ``handler`` names its coroutine (``"cli.account:login"``)."""
        sub = commands.add_parser(name, help=help_text, description=help_text, parents=[common])
        if handler is not None:
            sub.set_defaults(handler=handler)
        return sub

    login = command("login", "log in to Enlighten and store the session", "cli.account:login")
    site_flag(login)
    login.add_argument("--otp", metavar="CODE", help="complete a pending login with this code")
    login.add_argument(
        "--resend-otp", action="store_true", help="ask Enphase to send a new one-time code"
    )

    sites = command("sites", "list the sites this account can see", "cli.account:sites")
    _json_flag(sites)

    status = command(
        "status",
        "show each charger's normalized status and the service's view of it",
        "cli.account:status",
    )
    site_flag(status)
    _json_flag(status)
    status.set_defaults(all_sites=True)

    def group(name: str, help_text: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        sub = command(name, help_text)
        return sub.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(
        actions: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        help_text: str,
        handler: str,
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
        "cli.control:charge_start",
    )
    start.add_argument("--amps", type=int, metavar="N", help="charging level in amps")
    start.add_argument(
        "--force",
        action="store_true",
        help="send the start even to a charger with session authentication on (it then "
        "waits for someone to authenticate in the app or with a card)",
    )
    action(charge, "stop", "stop charging", "cli.control:charge_stop")

    mode = group("mode", "read or set the charge mode (MANUAL, SCHEDULED, GREEN or SMART charging)")
    action(mode, "get", "show each charger's charge mode preference", "cli.scheduler:mode_get")
    mode_set = action(
        mode, "set", "set the charge mode (nothing sent if already in it)", "cli.control:mode_set"
    )
    mode_set.add_argument(
        "mode",
        type=MODE_TYPE,
        metavar="MODE",
        help=f"{MODES_HELP} (or manual, scheduled, green, smart)",
    )

    battery = group("battery", "read or set green mode's 'use battery for EV charging'")
    action(battery, "get", "show the green-mode battery setting", "cli.scheduler:battery_get")
    battery_set = action(
        battery, "set", "turn green mode's battery use on or off", "cli.control:battery_set"
    )
    battery_set.add_argument("state", choices=("on", "off"), help="on or off")

    schedule = group("schedule", "read and edit the charger's own schedule slots")
    action(schedule, "list", "list schedule slots", "cli.scheduler:schedule_list")
    add = action(schedule, "add", "add a CUSTOM slot", "cli.control:schedule_add")
    _slot_times(add, required=True)
    add.add_argument("--disabled", action="store_true", help="add it switched off")
    edit = action(
        schedule,
        "set",
        "change a slot's times, days or amps (a time edit enables it)",
        "cli.control:schedule_set",
    )
    edit.add_argument("slot", metavar="SLOT", help=SLOT_HELP)
    _slot_times(edit, required=False)
    for name, handler, text in (
        ("enable", "cli.control:schedule_enable", "switch a slot on"),
        ("disable", "cli.control:schedule_disable", "switch a slot off"),
        ("delete", "cli.control:schedule_delete", "delete a CUSTOM slot"),
    ):
        action(schedule, name, text, handler).add_argument("slot", metavar="SLOT", help=SLOT_HELP)

    live = group("live", "start or stop the live stream (faster status updates for ~15 min)")
    for name in ("start", "stop"):
        action(live, name, f"{name} the live stream", "cli.control:live")

    trigger = command(
        "trigger", "ask the charger to send one OCPP message now", "cli.control:trigger"
    )
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
        "cli.history:fetch",
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
        default=DEFAULT_MAX_REQUESTS,
        metavar="N",
        help="stop asking for sessions after this many requests "
        f"(default {DEFAULT_MAX_REQUESTS}); run again later to continue",
    )
    export = action(
        history_group,
        "export",
        "write the one-minute power history (CSV, or JSON) for a spreadsheet or evopt simulate",
        "cli.history:export",
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
        "cli.plan:plan_set",
    )
    plan_set.add_argument(
        "--by", required=True, metavar="HH:MM|DATETIME", help="ready by (the next HH:MM)"
    )
    plan_set.add_argument(
        "--energy",
        required=True,
        type=ENERGY_TYPE,
        metavar="KWH",
        help="kWh the car should have taken since plug-in by then",
    )
    action(plans, "show", "show the departure plans", "cli.plan:plan_show")
    action(plans, "clear", "remove the plan (of --charger, else every plan)", "cli.plan:plan_clear")
    learn = action(
        plans,
        "learn",
        "show the departure habits learned from session history (what `plans: auto` uses)",
        "cli.plan:plan_learn",
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
