"""Session history into the local database, a window of days at a time: what `evopt history
fetch` and the service (``plans: auto``, optimizer/service/sessions.py) share.

Every day of a window is stored, with or without sessions, so a row means "this day was
fetched"; a complete day is never asked for again. The cloud files a session under the local
day it *started* (the request's site-local dates, 2026 reference section 4, select sessions by
their start, as the fake cloud answers them), and lists it only once it has ended, so a day
is complete only when it was fetched after its end **and** no session
begun on or before it was still going then: an overnight session started yesterday and still
plugged in when yesterday was fetched at 02:00 would otherwise never be stored (a window of
today's date does not hold it). Such a day is stored as fetched at that session's plug-in, so
it counts as incomplete and is fetched again (docs/decision-log.md, ``history_sessions``).

A window is stored in one transaction once all its pages arrived: a degraded service or an
interrupted run keeps what was stored and nothing half.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from optimizer.enlighten.models import parse_session_history_page

if TYPE_CHECKING:
    from optimizer.decisions.store import DecisionStore
    from optimizer.enlighten.client import EnlightenClient
    from optimizer.enlighten.models import SiteStatus

__all__ = [
    "WINDOW_DAYS",
    "by_day",
    "complete",
    "day_end",
    "fetch_window",
    "incomplete_days",
    "open_sessions",
    "windows",
]

WINDOW_DAYS = 7  # days of sessions asked for in one request window
# A car plugged in at an unknown time (no ``plg_in_at``) counts as plugged in since this long
# before now: the overnight session it most likely is began yesterday.
UNKNOWN_PLUG_IN = timedelta(days=1)


def day_end(day: date, zone: ZoneInfo) -> datetime:
    """The instant a local day is over (the next local midnight), in UTC."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)


def complete(day: date, fetched_at: datetime | None, zone: ZoneInfo) -> bool:
    """Whether a stored day holds all its sessions: fetched (or, with a session still going
    at the fetch, stored as of its plug-in, :func:`fetch_window`) after the day was over."""
    return fetched_at is not None and fetched_at >= day_end(day, zone)


def incomplete_days(
    period: Iterable[date], stored: Mapping[date, datetime], zone: ZoneInfo
) -> list[date]:
    """The days of ``period`` still to fetch: never stored, or stored before they were over."""
    return [day for day in period if not complete(day, stored.get(day), zone)]


def open_sessions(status: SiteStatus, *, now: datetime) -> dict[str, datetime]:
    """The plug-in of each charger's session still going (by serial), for :func:`fetch_window`."""
    return {
        c.sn: min(c.session.plugged_in_at or now - UNKNOWN_PLUG_IN, now)
        for c in status.chargers
        if c.plugged_in is True
    }


def windows(days: list[date], size: int = WINDOW_DAYS) -> Iterator[list[date]]:
    """Consecutive runs of ``days`` (sorted), each cut into chunks of at most ``size``."""
    run: list[date] = []
    for day in days:
        if run and (day != run[-1] + timedelta(days=1) or len(run) >= size):
            yield run
            run = []
        run.append(day)
    if run:
        yield run


def by_day(entries: list[Any], window: list[date], zone: ZoneInfo) -> dict[date, list[Any]]:
    """The window's raw entries grouped by the local day their session started (every day of
    the window present, even without sessions: a stored day is a fetched day)."""
    days: dict[date, list[Any]] = {day: [] for day in window}
    page = parse_session_history_page({"data": {"result": entries, "hasMore": False}})
    for raw, session in zip(entries, page.sessions, strict=True):
        day = session.started_at.astimezone(zone).date()
        days[min(max(day, window[0]), window[-1])].append(raw)
    return days


async def fetch_window(
    client: EnlightenClient,
    store: DecisionStore,
    *,
    site_id: int,
    sn: str,
    window: list[date],
    timezone: str,
    fetched_at: datetime,
    open_since: datetime | None = None,
) -> int:
    """Fetch one window of a charger's sessions and store its days; the sessions stored.

    ``open_since`` is the plug-in of the charger's session still going (None: unplugged):
    the days from its local day on are stored as of that instant, before their end, so they
    are fetched again once it has ended and been filed. Raises what the client raises
    (:class:`~optimizer.enlighten.history.HistoryDegradedError` for "try later"); nothing of
    the window is stored then.
    """
    zone = ZoneInfo(timezone)
    entries = await client.session_history_raw(
        site_id, sn, start=window[0], end=window[-1], timezone=timezone
    )
    days = by_day(entries, window, zone)
    if open_since is None or open_since >= fetched_at:
        store.save_history_sessions(site_id, sn, days, fetched_at=fetched_at)
        return len(entries)
    first_open = open_since.astimezone(zone).date()
    done = {day: items for day, items in days.items() if day < first_open}
    still = {day: items for day, items in days.items() if day >= first_open}
    store.save_history_days(site_id, sn, [(done, fetched_at), (still, open_since)])
    return len(entries)
