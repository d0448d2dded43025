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
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, TextIO

from optimizer.cli import logsim
from optimizer.cli.context import Context, display_zone
from optimizer.cli.output import print_json, print_table
from optimizer.config import Config
from optimizer.decisions import review
from optimizer.decisions.store import DecisionStore
from optimizer.engine.decision import OVERRIDE
from optimizer.engine.loader import check_rules, rule_paths
from optimizer.enlighten.errors import ConfigError
from optimizer.explain import did_you_mean
from optimizer.yamlpos import YamlFileError

EXIT_OK = 0
MIN_REASON_WIDTH = 30
REASON_INDENT = 4
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
    """A ``--since`` / ``--until`` (or `evopt why`) time: a span back from now, a day, a time
    of day, or a date and time.

    Parsed when the command line is (a typo is a usage error), resolved later against the
    clock and the site's zone, which come from the config.
    """

    ago: timedelta | None = None
    at: datetime | None = None
    whole_day: bool = False
    # A time of day (``12:05``): today's, or yesterday's when today's is still to come.
    clock: time | None = None
    # ``today`` (0) or ``yesterday`` (1): that whole local day.
    days_back: int | None = None

    def resolve(self, *, now: datetime, tz: tzinfo, end: bool = False) -> datetime:
        """The UTC instant; a whole day as ``--until`` (``end``) means the end of that day."""
        if self.ago is not None:
            return now - self.ago
        at = self._local(now.astimezone(tz), tz)
        if self.whole_day and end:
            at = datetime.combine(at.date() + timedelta(days=1), time(), tzinfo=at.tzinfo)
        return at.astimezone(UTC)

    def _local(self, local_now: datetime, tz: tzinfo) -> datetime:
        if self.clock is not None:
            at = datetime.combine(local_now.date(), self.clock, tzinfo=tz)
            return at - timedelta(days=1) if at > local_now else at
        if self.days_back is not None:
            day = local_now.date() - timedelta(days=self.days_back)
            return datetime.combine(day, time(), tzinfo=tz)
        if self.at is None:  # pragma: no cover - parse_when always sets one
            raise ValueError("empty time")
        return self.at if self.at.tzinfo is not None else self.at.replace(tzinfo=tz)


WHEN_FORMS = (
    "a time of day (12:05: today, or yesterday when 12:05 is still to come), today, "
    "yesterday, a span back from now (90m, 2h, 3d, 2w), a date (2026-12-05) or a date and "
    "time (2026-12-05 12:05, 2026-12-05T12:05, a zone like Z or +11:00 optional)"
)


def parse_when(text: str) -> When:
    """Any of :data:`WHEN_FORMS`; ValueError (saying what is valid) for anything else."""
    try:
        when = _parse_when(text)
        # A year typo is a usage error now, not an overflow when resolved in the site's zone.
        for zone in (_FURTHEST_EAST, _FURTHEST_WEST):
            for end in (False, True):
                when.resolve(now=datetime.now(UTC), tz=zone, end=end)
    except OverflowError:
        raise ValueError(f"'{text}' is outside the calendar (years 1 to 9999)") from None
    return when


_DAYS_BACK = {"today": 0, "yesterday": 1}
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


def _parse_when(text: str) -> When:
    match = _AGO.match(text)
    if match:
        return When(ago=timedelta(seconds=float(match.group(1)) * _AGO_SECONDS[match.group(2)]))
    word = text.strip().lower()
    if word in _DAYS_BACK:
        return When(days_back=_DAYS_BACK[word], whole_day=True)
    clock = _CLOCK.match(text)
    try:
        if clock:
            hour, minute, second = (int(part or 0) for part in clock.groups())
            return When(clock=time(hour, minute, second))
        if _DATE.match(text):
            return When(at=datetime.combine(date.fromisoformat(word), time()), whole_day=True)
        return When(at=datetime.fromisoformat(text.strip()))
    except ValueError:
        raise ValueError(f"'{text}' is not a time; use {WHEN_FORMS}") from None


# --- registration --------------------------------------------------------------------------


# --- handlers ------------------------------------------------------------------------------


def _now() -> datetime:
    """The clock (one function, so tests can pin it)."""
    return datetime.now(UTC)


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


def _site_filter(ctx: Context) -> int | None:
    """``--site NAME|ID``: one site's rows (a site of ``sites:``, or a site id)."""
    if getattr(ctx.args, "site", None) is None:
        return None
    return ctx.chosen_site_id()


async def log_list(ctx: Context) -> int:
    zone = display_zone(ctx.config)
    # An --action names what to see: `--action hold` shows holds without --all.
    changes = not (ctx.args.all or ctx.args.action)
    with _open(ctx) as store:
        absent = unknown_filter_values(store, ctx.args, rule_names(ctx.config))
        rows = review.query(
            store,
            **_filters(ctx.args, zone),
            limit=ctx.args.limit or None,
            changes=changes,
            site=_site_filter(ctx),
        )
    if ctx.args.json:
        print_json([row.as_json() for row in rows])
    elif ctx.args.csv:
        print_csv(review.COLUMNS, [row.as_text_row() for row in rows])
    elif rows:
        print_decisions(rows, zone, width=shutil.get_terminal_size((100, 24)).columns)
    else:
        sys.stderr.write(no_match_message(absent, changes=changes))
    return EXIT_OK


# The filters whose values come from the log itself, and the column each one reads.
FILTER_COLUMNS = {
    "charger": "charger_sn",
    "policy": "policy",
    "action": "action",
    "outcome": "outcome",
    "mode": "mode",
}


def rule_names(config: Config) -> set[str]:
    """The policies of the current rules (none when they cannot be read: `validate` says why)."""
    try:
        loaded, _ = check_rules(rule_paths(config), tariffs=None)
    except YamlFileError:
        return set()
    return {policy.name for policy in loaded.policies}


def unknown_filter_values(
    store: DecisionStore, args: argparse.Namespace, rules: set[str]
) -> list[str]:
    """Why filter values that never occur in the log match nothing.

    A charger or policy nobody knows is a typo: ConfigError (exit 1) with the closest known
    value and the known ones. A valid action, outcome or mode the log lacks, or a policy of
    the current rules that has not decided yet, is a fact: returned as a sentence.
    """
    facts = []
    for name, column in FILTER_COLUMNS.items():
        value = getattr(args, name, None)
        if value is None or review.occurs(store, column, value):
            continue
        seen = review.distinct(store, column)
        known = sorted(set(seen) | (rules if name == "policy" else set()))
        if name == "policy" and value in rules:
            facts.append(f"policy '{value}' (in the rules) has not decided anything yet")
        elif name in ("charger", "policy"):
            noun = "charger" if name == "charger" else "policy named"
            raise ConfigError(
                f"no {noun} '{value}' in the log{' or the rules' if name == 'policy' else ''}"
                f"{did_you_mean(value, known)}",
                hint=f"known: {', '.join(known) or 'none yet'}",
            )
        else:
            facts.append(f"no {name} '{value}' in the log (it has {', '.join(known) or 'none'})")
    return facts


def no_match_message(absent: Sequence[str], *, changes: bool) -> str:
    if absent:
        return f"no decisions match: {'; '.join(absent)}\n"
    more = " (only changes are listed; --all shows holds too)" if changes else ""
    return f"no decisions match{more}\n"


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
        unknown_filter_values(store, ctx.args, rule_names(ctx.config))  # a typo: exit 1
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
    """One decision per row; its reason wraps under the reason column instead of being cut.

    When the other columns leave the reason less than MIN_REASON_WIDTH characters (80 columns
    with long policy names), each reason goes on the lines below its row, indented by
    REASON_INDENT, rather than a few words a line: whole either way.
    """
    out = out or sys.stdout
    cells = [_decision_cells(row, zone) for row in rows]
    fixed = [
        max(len(DECISION_HEADERS[i]), *(len(c[i]) for c in cells))
        for i in range(len(DECISION_HEADERS) - 1)
    ]
    indent = sum(fixed) + 2 * len(fixed)
    beside = width - indent >= MIN_REASON_WIDTH
    if not beside:
        indent = REASON_INDENT
    room = max(MIN_REASON_WIDTH, width - indent)
    header = [h.upper().ljust(w) for h, w in zip(DECISION_HEADERS, fixed, strict=False)]
    out.write("  ".join([*header, DECISION_HEADERS[-1].upper()]) + "\n")
    for line in cells:
        lead = "  ".join(v.ljust(w) for v, w in zip(line, fixed, strict=False))
        reason = textwrap.wrap(" ".join(line[-1].split()), room, break_on_hyphens=False) or [""]
        if beside:
            out.write(f"{lead}  {reason.pop(0)}".rstrip() + "\n")
        else:
            out.write(lead.rstrip() + "\n")
        for more in reason:
            out.write(" " * indent + more + "\n")


def _decision_cells(row: review.DecisionRow, zone: tzinfo) -> list[str]:
    # The error first: on a failed row it is what the reader is looking for.
    reason = f"[{row.error}] {row.reason}" if row.error else row.reason
    return [
        str(row.id),
        row.ts.astimezone(zone).strftime(TABLE_TIME_FORMAT),
        row.charger_sn or "-",
        row.policy,
        action_text(row),
        truncate(short_params(row.params), PARAMS_WIDTH),
        row.outcome,
        reason,
    ]


def action_text(row: review.DecisionRow) -> str:
    """``user stop`` for a change the user made (in the app or at the charger), so it never
    reads as the service's own command."""
    if row.policy == OVERRIDE and row.action != "hold":
        return f"user {row.action}"
    return row.action


def short_params(params: dict[str, Any]) -> str:
    """``amps=16 mode=GREEN_CHARGING``; nested values as compact JSON."""
    parts = []
    for key, value in params.items():
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        parts.append(f"{key}={text}")
    return " ".join(parts) or "-"


def truncate(text: str, width: int) -> str:
    """One line of at most ``width`` characters; what is cut ends in an ellipsis."""
    text = " ".join(text.split())  # one line, whatever the text holds
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
