"""The session history the service keeps stored for ``plans: auto``.

Learned plans come from the session history in the local database (docs/forecast.md). Before
this, only `evopt history fetch` filled it: a service whose owner never ran it learned
nothing (no plug-in got a learned plan), and one whose owner ran it once learned from a
history that ended that day. So with ``plans: auto`` the service fetches it itself, through
the same client and within the same request budget, one window of days per tick (every
charger's first in the same tick), before the tick's plans are made (so they use it at once):

* **from nothing** (no day of the look-back stored for a charger, or days stored before the
  rule for sessions still going, :data:`CHECKED_KEY`, once): the last
  :data:`FIRST_WINDOW_DAYS` in one window (a page holds 50 sessions: one to three requests),
  every such charger's in the same tick, so the first tick already plans from the
  household's habits, not "a full car at once";
* **the last week** (the days not complete, :mod:`optimizer.observe.history`): at the first
  tick, :data:`AFTER_UNPLUG` after a car was unplugged (the cloud files the session under
  the day it began, once it has ended), and at least every :data:`REFRESH` (an unplug the
  service did not see);
* **older days** of the look-back (``habits.days``) not stored yet: up to
  :data:`OLDER_WINDOW_DAYS` per window, newest first;
* never two windows of a site within :data:`SPACING`, but for the first ones. After them a
  site costs 2-3 requests per session (the page, and the filter criteria the history service
  wants before it at most every 10 minutes) and a refresh a day.

A degraded history service is asked again after :data:`RETRY_DEGRADED` (2026 reference
section 4); any other failure after 15 minutes doubling to a day, logged when it begins and
when it ends. Nothing of a failed window is stored, and a failure never fails the tick.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from optimizer.enlighten.errors import EnlightenError
from optimizer.enlighten.history import HistoryDegradedError
from optimizer.observe.history import (
    UNKNOWN_PLUG_IN,
    WINDOW_DAYS,
    fetch_window,
    incomplete_days,
)

if TYPE_CHECKING:
    from optimizer.decisions.store import DecisionStore
    from optimizer.engine.snapshot import Snapshot
    from optimizer.enlighten.client import EnlightenClient

__all__ = [
    "AFTER_UNPLUG",
    "FIRST_WINDOW_DAYS",
    "OLDER_WINDOW_DAYS",
    "REFRESH",
    "RETRY_DEGRADED",
    "SPACING",
    "Due",
    "SessionSync",
    "next_fetch",
]

_LOGGER = logging.getLogger(__name__)

AFTER_UNPLUG = timedelta(minutes=15)  # the cloud has filed the ended session by then
REFRESH = timedelta(days=1)  # the last week at least this often
SPACING = timedelta(minutes=1)  # between two windows of one site
RETRY_DEGRADED = timedelta(minutes=15)  # 2026 reference section 4: "retry after ~15 min"
RETRY_MAX = timedelta(days=1)
OLDER_WINDOW_DAYS = 30  # older days per window: one or two pages of 50 sessions
FIRST_WINDOW_DAYS = 90  # the first window of a charger with nothing stored (habits.days' default)
# State key (per site and charger) saying its stored days were fetched whole under the rule of
# optimizer/observe/history.py: days fetched before it counted a day as complete while a session
# begun on it still went on, so an overnight session fetched at night was never stored.
CHECKED_KEY = "session_history_checked:{site_id}:{sn}"


@dataclass(frozen=True)
class Due:
    """The window of days to fetch next for one charger, and why."""

    sn: str
    window: list[date]
    why: Literal["first", "recent", "older"]


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def next_fetch(
    serials: list[str],
    stored: Mapping[str, Mapping[date, datetime]],
    *,
    now: datetime,
    zone: ZoneInfo,
    keep_days: int,
    last_recent: Mapping[str, datetime],
    ended: Mapping[str, datetime],
    plugged: Mapping[str, datetime],
    unchecked: Collection[str] = (),
) -> Due | None:
    """The one window to fetch now, or None (pure; the rule is the module's docstring).

    ``stored``: each charger's stored days and when each was fetched; ``last_recent``: when
    this service last fetched a charger's last week; ``ended``: when it saw a car unplugged;
    ``plugged``: the plug-in of a session still going (or just ended and not yet filed),
    whose days are not fetched again until it has been (a car away on a trip stays plugged
    in for days). ``unchecked``: chargers whose stored days may predate the rule that keeps
    a day holding a session still going incomplete: their look-back is fetched whole once, as
    from nothing (:data:`CHECKED_KEY`).
    """
    today = now.astimezone(zone).date()
    week = today - timedelta(days=WINDOW_DAYS - 1)
    first = today - timedelta(days=keep_days - 1)
    for sn in serials:
        if sn in unchecked or not any(first <= day <= today for day in stored.get(sn, {})):
            start = today - timedelta(days=min(keep_days, FIRST_WINDOW_DAYS) - 1)
            return Due(sn, _days(start, today), "first")
    for sn in serials:
        last, end = last_recent.get(sn), ended.get(sn)
        unplugged = end is not None and (last is None or last < end + AFTER_UNPLUG <= now)
        if last is None or now - last >= REFRESH or unplugged:
            recent = incomplete_days(_days(week, today), stored.get(sn, {}), zone)
            return Due(sn, _days(min(recent, default=today), today), "recent")
    for sn in serials:
        older = incomplete_days(_days(first, week - timedelta(days=1)), stored.get(sn, {}), zone)
        since = plugged.get(sn)
        if since is not None:
            older = [day for day in older if day < since.astimezone(zone).date()]
        if older:
            # From the newest day missing back over up to a month, the complete days between
            # the missing ones asked for again: one request rather than one per gap.
            newest = older[-1]
            span = [d for d in older if d > newest - timedelta(days=OLDER_WINDOW_DAYS)]
            return Due(sn, _days(span[0], newest), "older")
    return None


class SessionSync:
    """What one site's service remembers between ticks to keep its session history stored."""

    def __init__(self) -> None:
        self._last_recent: dict[str, datetime] = {}
        # By serial: (when the service saw the car unplugged, that session's plug-in).
        self._ended: dict[str, tuple[datetime, datetime]] = {}
        self._plugged: dict[str, datetime] = {}
        self._next_at: datetime | None = None
        self._failures = 0
        # The stored days of each charger (by serial), read once and again after each window
        # stored: reading and parsing them every tick was a sixth of the daemon's CPU. A
        # concurrent `evopt history fetch` is not seen until then; at worst a window is asked
        # for again.
        self._stored: dict[str, dict[date, datetime]] = {}
        self._unchecked: set[str] = set()  # chargers whose look-back is fetched whole once

    def watch(self, snapshot: Snapshot) -> None:
        """Note each plug-in and unplug the tick's status shows."""
        now = snapshot.now
        for view in snapshot.chargers:
            if view.plugged_in and view.plugged_in_at is not None:
                self._plugged[view.sn] = min(view.plugged_in_at, now)
            elif view.plugged_in:  # no plg_in_at: counted from a day before it was first seen
                self._plugged.setdefault(view.sn, now - UNKNOWN_PLUG_IN)
            elif (since := self._plugged.pop(view.sn, None)) is not None:
                self._ended[view.sn] = (now, since)

    async def step(
        self,
        client: EnlightenClient,
        store: DecisionStore,
        *,
        site_id: int,
        snapshot: Snapshot,
        keep_days: int,
    ) -> Due | None:
        """Fetch and store the window due now, if any; returns the last stored.

        One window a tick, but every charger with nothing stored gets its first one in the
        same tick: the tick's plans need it (a charger left for the next tick had no learned
        plan for it)."""
        self.watch(snapshot)
        if self._next_at is not None and snapshot.now < self._next_at:
            return None
        stored: Due | None = None
        for _ in range(len(snapshot.chargers) + 1):
            due = await self._one(
                client, store, site_id=site_id, snapshot=snapshot, keep_days=keep_days
            )
            stored = due or stored
            if due is None or due.why != "first":
                break
        return stored

    async def _one(
        self,
        client: EnlightenClient,
        store: DecisionStore,
        *,
        site_id: int,
        snapshot: Snapshot,
        keep_days: int,
    ) -> Due | None:
        now = snapshot.now
        serials = [view.sn for view in snapshot.chargers]
        # Until the cloud has filed a session just ended, its days count as still open.
        unfiled = {
            sn: since
            for sn, (unplugged, since) in self._ended.items()
            if now < unplugged + AFTER_UNPLUG
        }
        open_since = unfiled | self._plugged
        try:
            for sn in serials:
                if sn not in self._stored:
                    self._stored[sn] = store.history_session_days(site_id, sn)
                    if store.load_state(CHECKED_KEY.format(site_id=site_id, sn=sn)) is None:
                        self._unchecked.add(sn)
            due = next_fetch(
                serials,
                self._stored,
                now=now,
                zone=ZoneInfo(snapshot.timezone),
                keep_days=keep_days,
                last_recent=self._last_recent,
                ended={sn: unplugged for sn, (unplugged, _) in self._ended.items()},
                plugged=open_since,
                unchecked=self._unchecked,
            )
            if due is None:
                self._next_at = now + SPACING  # nothing is due sooner than an unplug's wait
                return None
            sessions = await fetch_window(
                client,
                store,
                site_id=site_id,
                sn=due.sn,
                window=due.window,
                timezone=snapshot.timezone,
                fetched_at=now,
                open_since=open_since.get(due.sn),
            )
            self._stored[due.sn] = store.history_session_days(site_id, due.sn)
            if due.why == "first":
                store.save_state(
                    CHECKED_KEY.format(site_id=site_id, sn=due.sn), True, updated_at=now
                )
                self._unchecked.discard(due.sn)
        except HistoryDegradedError:
            self._next_at = now + RETRY_DEGRADED
            _LOGGER.info("session history degraded; asked again in 15 min (plans: auto)")
            return None
        except (EnlightenError, sqlite3.Error, OSError) as err:
            # The cloud refused or sent what cannot be read, or the database cannot be
            # read or written: tried again later, said once, never every tick.
            self._failures += 1
            wait = min(RETRY_DEGRADED * 2 ** (self._failures - 1), RETRY_MAX)
            self._next_at = now + wait
            if self._failures == 1:
                _LOGGER.warning(
                    "cannot keep the session history for learned plans (%s); trying again "
                    "after %d min, then less often",
                    err.message if isinstance(err, EnlightenError) else err,
                    wait // timedelta(minutes=1),
                )
            return None
        if self._failures:
            _LOGGER.info("session history fetched again after %d failure(s)", self._failures)
        self._failures = 0
        self._next_at = now + SPACING
        if due.why != "older":  # the first window holds the last week too
            self._last_recent[due.sn] = now
            if due.sn not in unfiled:
                self._ended.pop(due.sn, None)
        _LOGGER.info(
            "session history: %s to %s stored for %s (%d session(s); plans: auto)",
            due.window[0],
            due.window[-1],
            due.sn,
            sessions,
        )
        return due
