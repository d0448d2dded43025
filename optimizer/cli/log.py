"""`evopt log`, `evopt log show ID`, `evopt log stats`: review the decision log.

Read-only: the file is opened with SQLite's read-only mode, so reviewing never blocks or
changes what the running service writes. Times print in the site's zone (``site.timezone``,
else the machine's), dates given without a zone are read in it too; the file itself and the
``--json`` / ``--csv`` exports keep UTC, as stored, so scripts never guess a zone.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from optimizer.cli import logplot, logsim
from optimizer.cli.context import Context
from optimizer.cli.output import print_json, print_table
from optimizer.config import Config
from optimizer.decisions import review
from optimizer.decisions.store import OUTCOMES, RUN_MODES, DecisionStore
from optimizer.engine.decision import ACTIONS
from optimizer.enlighten.errors import ConfigError

EXIT_OK = 0
DEFAULT_LIMIT = 100
MIN_REASON_WIDTH = 20
PARAMS_WIDTH = 24
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# The table keeps minutes (ids order decisions within one); `show` has the seconds.
TABLE_TIME_FORMAT = "%Y-%m-%d %H:%M"

_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$")
_AGO_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_DATE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")
_FURTHEST_EAST, _FURTHEST_WEST = timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))


# --- time arguments ------------------------------------------------------------------------


@dataclass(frozen=True)
class When:
    """A ``--since`` / ``--until`` value: a span back from now, or a date or time.

    Parsed when the command line is (a typo is a usage error), resolved later against the
    clock and the site's zone, which come from the config.
    """

    ago: timedelta | None = None
    at: datetime | None = None
    whole_day: bool = False

    def resolve(self, *, now: datetime, tz: tzinfo, end: bool = False) -> datetime:
        """The UTC instant; a bare date as ``--until`` means the end of that day."""
        if self.ago is not None:
            return now - self.ago
        if self.at is None:  # pragma: no cover - parse_when always sets one
            raise ValueError("empty time")
        at = self.at if self.at.tzinfo is not None else self.at.replace(tzinfo=tz)
        if self.whole_day and end:
            at = datetime.combine(at.date() + timedelta(days=1), time(), tzinfo=at.tzinfo)
        return at.astimezone(UTC)


def parse_when(text: str) -> When:
    """``2h``, ``30m``, ``1d``, ``2w``; ``2025-01-15``; ``2025-01-15T10:00`` (zone optional)."""
    try:
        when = _parse_when(text)
        # A year typo is a usage error now, not an overflow when resolved in the site's zone.
        for zone in (_FURTHEST_EAST, _FURTHEST_WEST):
            for end in (False, True):
                when.resolve(now=datetime.now(UTC), tz=zone, end=end)
    except OverflowError:
        raise ValueError(f"'{text}' is outside the calendar (years 1 to 9999)") from None
    return when


def _parse_when(text: str) -> When:
    match = _AGO.match(text)
    if match:
        return When(ago=timedelta(seconds=float(match.group(1)) * _AGO_SECONDS[match.group(2)]))
    if _DATE.match(text):
        return When(at=datetime.combine(date.fromisoformat(text.strip()), time()), whole_day=True)
    try:
        return When(at=datetime.fromisoformat(text.strip()))
    except ValueError:
        raise ValueError(f"'{text}' is not a time") from None


def _when_type(text: str) -> When:
    try:
        return parse_when(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"{err}; expected a span back from now (30m, 2h, 1d, 2w), "
            "a date (2025-01-15) or a time (2025-01-15T10:00)"
        ) from err


_when_type.__name__ = "time"


def _limit_type(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (no limit) or more")
    return value


_limit_type.__name__ = "limit"


# --- registration --------------------------------------------------------------------------


def register(
    command: Callable[..., argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add `log` (with `show` and `stats`) through build_parser's ``command`` helper.

    ``common`` carries --config and --log-level, so they work after `show` and `stats` too.
    Options repeated on `show` and `stats` default to SUPPRESS: a value given before the
    action (`evopt log --since 1d stats`) is not overwritten by the action's default.
    """
    log = command(
        "log", "review the decision log: list decisions, show one, or summarise", log_list
    )
    _filter_options(log, default=None)
    log.add_argument(
        "--limit",
        type=_limit_type,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N decisions, newest first (default {DEFAULT_LIMIT}; 0: all)",
    )
    _format_options(log, default=False, csv_help="print CSV (all columns, UTC times)")
    # Optional: without an action, `evopt log` lists decisions.
    actions = log.add_subparsers(dest="log_action", metavar="[show ID | stats | plot]")

    show = _action(actions, common, "show", "explain one decision: reason, inputs, overruled")
    show.add_argument("id", type=int, metavar="ID", help="the decision's id (from `evopt log`)")
    show.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    show.set_defaults(handler=log_show)

    stats = _action(
        actions, common, "stats", "per day: decisions, commands, outcomes, policies, requests"
    )
    _filter_options(stats, default=argparse.SUPPRESS)
    _format_options(
        stats, default=argparse.SUPPRESS, csv_help="print the per-day and per-policy counts as CSV"
    )
    stats.set_defaults(handler=log_stats)
    logsim.add_option(log, show, stats, logplot.register(actions, common))


def _action(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    name: str,
    help_text: str,
) -> argparse.ArgumentParser:
    return actions.add_parser(name, help=help_text, description=help_text, parents=[common])


def _filter_options(parser: argparse.ArgumentParser, *, default: Any) -> None:
    when = "30m, 2h, 1d, 2025-01-15 or 2025-01-15T10:00 (site time unless a zone is given)"
    parser.add_argument(
        "--since", type=_when_type, default=default, metavar="WHEN", help=f"from {when}"
    )
    parser.add_argument(
        "--until",
        type=_when_type,
        default=default,
        metavar="WHEN",
        help="before WHEN (a bare date: up to the end of that day)",
    )
    parser.add_argument("--charger", default=default, metavar="SN", help="one charger's serial")
    parser.add_argument("--policy", default=default, metavar="NAME", help="one policy")
    parser.add_argument("--action", choices=ACTIONS, default=default, help="one action")
    parser.add_argument("--outcome", choices=OUTCOMES, default=default, help="one outcome")
    parser.add_argument("--mode", choices=RUN_MODES, default=default, help="one mode")
    parser.add_argument(
        "--run", default=default, metavar="ID", help="one run (its id or first characters)"
    )


def _format_options(parser: argparse.ArgumentParser, *, default: Any, csv_help: str) -> None:
    formats = parser.add_mutually_exclusive_group()
    formats.add_argument(
        "--json", action="store_true", default=default, help="print JSON instead of a table"
    )
    formats.add_argument("--csv", action="store_true", default=default, help=csv_help)


# --- handlers ------------------------------------------------------------------------------


def _now() -> datetime:
    """The clock (one function, so tests can pin it)."""
    return datetime.now(UTC)


def display_zone(config: Config) -> tzinfo:
    """The site's zone, else the machine's: the zone a person thinks in."""
    if config.site.timezone:
        return ZoneInfo(config.site.timezone)
    return datetime.now().astimezone().tzinfo or UTC


def _zone_name(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or str(zone)


def _open(ctx: Context) -> DecisionStore:
    return logsim.open_log(ctx, actions=("show", "stats", "plot"))


def _filters(args: argparse.Namespace, zone: tzinfo) -> dict[str, Any]:
    """The review filters from the command line, times resolved in ``zone``."""
    now = _now()
    since: When | None = args.since
    until: When | None = args.until
    return {
        "since": since.resolve(now=now, tz=zone) if since else None,
        "until": until.resolve(now=now, tz=zone, end=True) if until else None,
        "charger": args.charger,
        "policy": args.policy,
        "action": args.action,
        "outcome": args.outcome,
        "mode": args.mode,
        "run": args.run,
    }


async def log_list(ctx: Context) -> int:
    zone = display_zone(ctx.config)
    with _open(ctx) as store:
        rows = review.query(store, **_filters(ctx.args, zone), limit=ctx.args.limit or None)
    if ctx.args.json:
        print_json([row.as_json() for row in rows])
    elif ctx.args.csv:
        print_csv(review.COLUMNS, [row.as_text_row() for row in rows])
    elif rows:
        print_decisions(rows, zone, width=shutil.get_terminal_size((100, 24)).columns)
    else:
        sys.stderr.write("no decisions match\n")
    return EXIT_OK


async def log_show(ctx: Context) -> int:
    zone = display_zone(ctx.config)
    with _open(ctx) as store:
        row = review.get(store, ctx.args.id)
    if row is None:
        raise ConfigError(
            f"no decision {ctx.args.id} in {ctx.config.database_path}",
            hint="list decisions and their ids with `evopt log`",
        )
    if ctx.args.json:
        print_json(row.as_json())
    else:
        print_decision(row, zone)
    return EXIT_OK


async def log_stats(ctx: Context) -> int:
    zone = display_zone(ctx.config)
    filters = _filters(ctx.args, zone)
    with _open(ctx) as store:
        days = review.stats(store, **filters, tz=zone)
        requests = review.request_stats(
            store, since=filters["since"], until=filters["until"], run=filters["run"]
        )
    if ctx.args.json:
        print_json(
            {
                "timezone": _zone_name(zone),
                "days": [day.as_json() for day in days],
                "requests": [r.as_json() for r in requests],
            }
        )
    elif ctx.args.csv:
        print_csv(STATS_CSV_COLUMNS, stats_csv_rows(days))
    else:
        print_stats(days, requests, zone)
    return EXIT_OK


# --- printing ------------------------------------------------------------------------------


def print_csv(
    columns: Sequence[str], rows: Iterable[dict[str, Any]], *, out: TextIO | None = None
) -> None:
    writer = csv.DictWriter(out or sys.stdout, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


DECISION_HEADERS = ("id", "time", "charger", "policy", "action", "params", "outcome", "reason")


def print_decisions(
    rows: Sequence[review.DecisionRow], zone: tzinfo, *, width: int, out: TextIO | None = None
) -> None:
    """One line per decision; the reason is cut to what the terminal has left.

    The reason keeps at least MIN_REASON_WIDTH characters: on a very narrow terminal a line
    wraps rather than lose the reason altogether.
    """
    cells = [_decision_cells(row, zone) for row in rows]
    fixed = [
        max(len(DECISION_HEADERS[i]), *(len(c[i]) for c in cells))
        for i in range(len(DECISION_HEADERS) - 1)
    ]
    room = max(MIN_REASON_WIDTH, width - sum(fixed) - 2 * len(fixed))
    for line in cells:
        line[-1] = truncate(line[-1], room)
    print_table(DECISION_HEADERS, cells, out=out)


def _decision_cells(row: review.DecisionRow, zone: tzinfo) -> list[str]:
    # The error first: on a failed row it is what the reader is looking for.
    reason = f"[{row.error}] {row.reason}" if row.error else row.reason
    return [
        str(row.id),
        row.ts.astimezone(zone).strftime(TABLE_TIME_FORMAT),
        row.charger_sn or "-",
        row.policy,
        row.action,
        truncate(short_params(row.params), PARAMS_WIDTH),
        row.outcome,
        reason,
    ]


def short_params(params: dict[str, Any]) -> str:
    """``amps=16 mode=GREEN_CHARGING``; nested values as compact JSON."""
    parts = []
    for key, value in params.items():
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        parts.append(f"{key}={text}")
    return " ".join(parts) or "-"


def truncate(text: str, width: int) -> str:
    text = " ".join(text.split())  # one line, whatever the reason holds
    return text if len(text) <= width else text[: max(width - 3, 0)] + "..."


def print_decision(row: review.DecisionRow, zone: tzinfo, *, out: TextIO | None = None) -> None:
    """Everything about one decision, for a person: why, with what, and what it beat."""
    out = out or sys.stdout
    local = row.ts.astimezone(zone).strftime(TIME_FORMAT)
    sent = f"{row.commands} command{'s' if row.commands != 1 else ''} sent"
    fields = [
        ("charger", row.charger_sn or "-"),
        ("site", str(row.site_id) if row.site_id is not None else "-"),
        ("policy", row.policy + (f" (target {row.target})" if row.target else "")),
        ("action", f"{row.action} {json.dumps(row.params, ensure_ascii=False)}"),
        ("outcome", f"{row.outcome}, {sent}"),
    ]
    if row.error:
        fields.append(("error", row.error))
    fields.append(("mode", f"{row.mode}, run {row.run_id}"))
    out.write(f"decision {row.id} at {local} {_zone_name(zone)} ({row.as_json()['ts']})\n")
    for name, value in fields:
        out.write(f"  {name:<8} {value}\n")
    out.write(f"reason\n  {row.reason}\n")
    out.write("inputs\n")
    for line in json.dumps(row.inputs, indent=2, ensure_ascii=False).splitlines():
        out.write(f"  {line}\n")
    out.write("overruled\n")
    if not row.overruled:
        out.write("  (none)\n")
    for other in row.overruled:
        params = json.dumps(other.get("params", {}), ensure_ascii=False)
        out.write(f"  - {other.get('policy')}: {other.get('action')} {params}\n")
        out.write(f"    {other.get('reason')}\n")


STATS_CSV_COLUMNS = ("day", "mode", "policy", *review.COUNT_NAMES)
ALL_POLICIES = "*"


def stats_csv_rows(days: Iterable[review.DayStats]) -> list[dict[str, Any]]:
    """Per day and mode, first all policies (policy ``*``), then each policy."""
    rows: list[dict[str, Any]] = []
    for day in days:
        base = {"day": day.day.isoformat(), "mode": day.mode}
        rows.append({**base, "policy": ALL_POLICIES, **review.Counts.as_json(day)})
        for name, counts in sorted(day.policies.items()):
            rows.append({**base, "policy": name, **counts.as_json()})
    return rows


def print_stats(
    days: Sequence[review.DayStats],
    requests: Sequence[review.RequestStats],
    zone: tzinfo,
    *,
    out: TextIO | None = None,
) -> None:
    out = out or sys.stdout
    counts = review.COUNT_NAMES
    if days:
        out.write(f"decisions per day ({_zone_name(zone)})\n")
        print_table(
            ("day", "mode", *counts),
            [(d.day.isoformat(), d.mode, *(getattr(d, n) for n in counts)) for d in days],
            out=out,
        )
        out.write("\nper policy\n")
        print_table(("day", "mode", "policy", *counts), _policy_lines(days), out=out)
    else:
        out.write("no decisions in this range\n")
    out.write("\nrequests per endpoint family\n")
    if requests:
        print_table(
            ("family", "total", "hours", "per hour", "peak hour"),
            [(r.family, r.total, r.hours, f"{r.per_hour:.1f}", r.peak_hour) for r in requests],
            out=out,
        )
    else:
        out.write("none counted in this range\n")


def _policy_lines(days: Iterable[review.DayStats]) -> list[tuple[Any, ...]]:
    return [
        (d.day.isoformat(), d.mode, name, *(getattr(c, n) for n in review.COUNT_NAMES))
        for d in days
        for name, c in sorted(d.policies.items())
    ]
