"""`evopt history fetch`: download lifetime energy and session history into the local database;
`evopt history export`: write the one-minute power history the service records (CSV or JSON).

What `evopt simulate` replays when no ``--energy`` file is given. The fetch is gentle with the
account's request budget: one request at a time, sessions a week per request window, lifetime
energy once per run, days already stored (and complete) never asked for again, and a cap on
the requests one run may send. Each window is stored in one transaction as soon as it arrives,
so an interrupted fetch (Ctrl-C, a cloud error) keeps what it stored and the next run resumes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from optimizer.cli.context import Context
from optimizer.cli.output import print_json
from optimizer.decisions.minutefile import write_csv, write_json
from optimizer.decisions.minutes import PowerHistory
from optimizer.decisions.store import DecisionStore
from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.errors import ConfigError, EnlightenError
from optimizer.enlighten.history import HistoryDegradedError
from optimizer.enlighten.models import parse_lifetime_energy
from optimizer.observe.history import (
    WINDOW_DAYS,
    day_end,
    fetch_window,
    incomplete_days,
    open_sessions,
    windows,
)

__all__ = ["EXIT_USAGE", "WINDOW_DAYS", "UsageError", "export", "fetch", "windows"]

EXIT_USAGE = 2


class UsageError(EnlightenError):
    """Arguments that parse but do not make sense together (exit 2, like argparse)."""

    exit_code = EXIT_USAGE
    hint = "see `evopt history fetch --help`"


def site_zone(ctx: Context) -> str:
    return ctx.config.site.timezone or "UTC"


class Progress:
    """``history: 12/31 days, 40 requests`` on stderr: rewritten in place at a terminal,
    else one line per 10 %."""

    def __init__(self, total: int, client: EnlightenClient, *, out: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.client = client
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self._last_tenth = -1

    def requests(self) -> int:
        return sum(self.client.counter.totals().values())

    def line(self) -> str:
        return f"history: {self.done}/{self.total} days, {self.requests()} requests"

    def advance(self, days: int) -> None:
        self.done += days
        if self.tty:
            self.out.write(f"\r{self.line()}")
            self.out.flush()
            return
        tenth = 10 if self.total == 0 else self.done * 10 // self.total
        if tenth > self._last_tenth:
            self._last_tenth = tenth
            self.out.write(f"{self.line()}\n")
            self.out.flush()

    def finish(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


@dataclass
class Summary:
    site_id: int
    start: date
    end: date
    chargers: list[str]
    days_fetched: int = 0
    days_skipped: int = 0
    days_left: int = 0
    sessions: int = 0
    buckets: int = 0
    requests: int = 0
    degraded: HistoryDegradedError | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "from": self.start,
            "to": self.end,
            "chargers": self.chargers,
            "days_stored": self.days_fetched + self.days_skipped,
            "days_fetched": self.days_fetched,
            "days_already_stored": self.days_skipped,
            "days_left": self.days_left,
            "sessions": self.sessions,
            "buckets": self.buckets,
            "requests": self.requests,
            "history_degraded": self.degraded is not None,
        }

    def to_text(self) -> str:
        lines = [
            f"site {self.site_id}, {self.start} to {self.end} ({len(self.chargers)} charger(s))",
            f"days stored: {self.days_fetched + self.days_skipped} "
            f"({self.days_fetched} fetched, {self.days_skipped} already stored)",
            f"sessions: {self.sessions}",
            f"buckets: {self.buckets}",
            f"requests used: {self.requests}",
        ]
        if self.degraded is not None:
            lines.append(
                f"session history service degraded with {self.days_left} day(s) left: "
                "nothing stored was changed; try later"
            )
        elif self.days_left:
            lines.append(
                f"stopped at the request budget with {self.days_left} day(s) left; "
                "run `evopt history fetch` again later to continue"
            )
        return "\n".join(lines)


def _check_period(args: Any) -> None:
    if args.date_from is not None and args.date_to is not None and args.date_from > args.date_to:
        raise UsageError(f"--from {args.date_from} is after --to {args.date_to}")
    if args.max_requests < 1:
        raise UsageError("--max-requests must be at least 1")


async def fetch(ctx: Context) -> int:
    args, config = ctx.args, ctx.config
    _check_period(args)
    timezone = site_zone(ctx)
    zone = ZoneInfo(timezone)
    progress: Progress | None = None
    with DecisionStore(config.database_path) as store:
        async with ctx.client() as client:
            site_id = await ctx.site_id(client)
            status = await client.status(site_id)
            serials = ctx.chosen_chargers(status, site_id)
            raw_energy = await client.lifetime_energy_raw(site_id)
            energy = parse_lifetime_energy(raw_energy, timezone=timezone)
            now = datetime.now(UTC)
            # A session still going is filed under its start day once it ends: those days
            # are stored as incomplete (optimizer/observe/history.py).
            open_since = open_sessions(status, now=now)
            store.save_history_energy(
                site_id, raw_energy, start_date=energy.start_date, fetched_at=now
            )
            today = now.astimezone(zone).date()
            start = args.date_from or energy.start_date
            end = args.date_to or today
            summary = Summary(site_id, start, end, serials, buckets=energy.bucket_count)
            period = [start + timedelta(days=n) for n in range((end - start).days + 1)]
            todo: dict[str, list[date]] = {}
            for sn in serials:
                # A day fetched before it was over is incomplete: always fetched again.
                todo[sn] = incomplete_days(period, store.history_session_days(site_id, sn), zone)
                summary.days_skipped += len(period) - len(todo[sn])
            progress = Progress(len(period) * len(serials), client)
            try:
                progress.advance(summary.days_skipped)
                for sn, days in todo.items():
                    for window in windows(days):
                        if summary.degraded or progress.requests() >= args.max_requests:
                            summary.days_left += len(window)
                            continue
                        try:
                            await fetch_window(
                                client,
                                store,
                                site_id=site_id,
                                sn=sn,
                                window=window,
                                timezone=timezone,
                                fetched_at=datetime.now(UTC),
                                open_since=open_since.get(sn),
                            )
                        except HistoryDegradedError as err:
                            # Nothing of this window was stored; what is stored stays.
                            summary.degraded = err
                            summary.days_left += len(window)
                            continue
                        summary.days_fetched += len(window)
                        progress.advance(len(window))
            finally:
                progress.finish()
            summary.requests = progress.requests()
        pages = store.load_history_sessions(site_id, start=start, end=end)
    summary.sessions = sum(len(page["data"]["result"]) for page in pages)
    if args.json:
        print_json(summary.to_json())
    else:
        print(summary.to_text())
    if summary.degraded is not None:
        raise summary.degraded  # exit 4 with "try later"; the CLI prints it without a trace
    return 0


# --- evopt history export ------------------------------------------------------------------


def _bound(value: date | datetime | None, zone: ZoneInfo, *, end: bool) -> datetime | None:
    """A --from/--to value as a UTC instant: a day is local (``--to`` takes the whole day), a
    time without a zone is the site's local time."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)
    if end:
        return day_end(value, zone)
    return datetime.combine(value, time(), tzinfo=zone).astimezone(UTC)


async def export(ctx: Context) -> int:
    """`evopt history export`: the one-minute power history as CSV (default) or JSON."""
    return _export(ctx)  # local files only: nothing to await


def _export(ctx: Context) -> int:
    args, config = ctx.args, ctx.config
    zone = ZoneInfo(site_zone(ctx))
    start = _bound(args.date_from, zone, end=False)
    end = _bound(args.date_to, zone, end=True)
    if start is not None and end is not None and start >= end:
        raise UsageError(f"--from {args.date_from} is not before --to {args.date_to}")
    site_id = ctx.chosen_site_id() if getattr(args, "site", None) else None
    if site_id is None and config.site_index is not None:
        site_id = config.enlighten.site_id  # one site of a sites: list, by name
    writer = write_json if args.json or args.format == "json" else write_csv
    with DecisionStore.open_readonly(config.database_path) as store:
        rows = PowerHistory(store).rows(site_id=site_id, start=start, end=end)
        if args.output is None:
            count = writer(rows, sys.stdout)
        else:
            path = Path(args.output).expanduser()
            try:
                with path.open("w", encoding="utf-8", newline="") as out:
                    count = writer(rows, out)
            except OSError as err:
                raise ConfigError(f"--output {path}: cannot write ({err.strerror or err})") from err
            print(f"{count} minute(s) written to {path}", file=sys.stderr)
    if count == 0:
        print(
            "no one-minute history in that period (the service records it as it runs)",
            file=sys.stderr,
        )
    return 0
