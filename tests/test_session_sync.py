"""The service keeps the session history stored for ``plans: auto`` (optimizer/service/sessions.py).

First the rule alone (which window is due when), then the service against the fake cloud:
from an empty database it stores the look-back at its first tick and plans from it at once,
stores the session it saw end, waits out a degraded history service without a failed tick,
and sends nothing with ``plans: manual``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.config import Config, HabitsConfig
from optimizer.decisions import DecisionStore
from optimizer.engine.snapshot import Snapshot, Surplus
from optimizer.enlighten.models import parse_session_history_page
from optimizer.fakecloud.model import Charger
from optimizer.observe.history import day_end
from optimizer.service import TickReport
from optimizer.service.sessions import (
    AFTER_UNPLUG,
    CHECKED_KEY,
    REFRESH,
    Due,
    SessionSync,
    next_fetch,
)
from tests.cli_env import SITE_ID
from tests.test_engine_sim import make_charger
from tests.test_service import MORNING, World, world_at
from tests.test_service import SN as FAKE_SN

ZONE = ZoneInfo("Australia/Melbourne")
NOW = datetime(2025, 1, 15, 2, 0, tzinfo=UTC)  # 13:00 on 15 January in Melbourne
TODAY = date(2025, 1, 15)
SN = "EV1"
HISTORY = "/sessions/"
SURPLUS = Surplus(0.0, "latest_power")


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def complete_days(first: date, last: date) -> dict[date, datetime]:
    """Days stored after their end (the fetch an hour after the last one ended)."""
    return dict.fromkeys(days(first, last), day_end(last, ZONE) + timedelta(hours=1))


def due(
    stored: dict[date, datetime] | None = None,
    *,
    now: datetime = NOW,
    last: datetime | None = NOW - timedelta(hours=1),
    ended: datetime | None = None,
    plugged: datetime | None = None,
    keep_days: int = 28,
) -> Due | None:
    return next_fetch(
        [SN],
        {SN: stored or {}},
        now=now,
        zone=ZONE,
        keep_days=keep_days,
        last_recent={} if last is None else {SN: last},
        ended={} if ended is None else {SN: ended},
        plugged={} if plugged is None else {SN: plugged},
    )


# --- which window, when --------------------------------------------------------------------


def test_a_charger_with_nothing_stored_gets_its_look_back_in_one_window() -> None:
    assert due(last=None) == Due(SN, days(date(2024, 12, 19), TODAY), "first")
    assert due(last=None, keep_days=365) == Due(SN, days(date(2024, 10, 18), TODAY), "first")
    old = complete_days(date(2024, 1, 1), date(2024, 3, 1))  # stored, but all before the 28
    assert due(old) == Due(SN, days(date(2024, 12, 19), TODAY), "first")


def test_the_last_week_again_from_its_first_incomplete_day() -> None:
    stored = complete_days(date(2025, 1, 9), date(2025, 1, 13)) | {TODAY: NOW}
    assert due(stored, last=None) == Due(SN, days(date(2025, 1, 14), TODAY), "recent")


def test_then_the_older_days_newest_first_within_the_look_back() -> None:
    stored = complete_days(date(2025, 1, 9), date(2025, 1, 14))
    assert due(stored) == Due(SN, days(date(2024, 12, 19), date(2025, 1, 8)), "older")
    assert due(stored, keep_days=90) == Due(SN, days(date(2024, 12, 10), date(2025, 1, 8)), "older")
    stored |= complete_days(date(2024, 12, 19), date(2025, 1, 8))
    assert due(stored) is None  # 28 days: nothing older is asked for
    assert due(stored, keep_days=29) == Due(SN, [date(2024, 12, 18)], "older")


def test_a_day_stored_before_its_end_is_asked_for_again() -> None:
    stored = complete_days(date(2024, 12, 19), date(2025, 1, 14))
    stored[date(2025, 1, 3)] = day_end(date(2025, 1, 3), ZONE) - timedelta(minutes=1)
    assert due(stored) == Due(SN, [date(2025, 1, 3)], "older")


def test_an_unplug_asks_for_the_last_week_once_the_cloud_has_filed_it() -> None:
    stored = complete_days(date(2024, 12, 19), date(2025, 1, 14))
    end = NOW - timedelta(minutes=10)
    last = NOW - timedelta(hours=3)
    assert due(stored, last=last, ended=end) is None
    later = end + AFTER_UNPLUG
    assert due(stored, now=later, last=last, ended=end) == Due(SN, [TODAY], "recent")
    assert due(stored, now=later, last=later, ended=end) is None  # fetched since


def test_the_last_week_at_least_once_a_day() -> None:
    stored = complete_days(date(2024, 12, 19), date(2025, 1, 14))
    assert due(stored, last=NOW - REFRESH + timedelta(minutes=1)) is None
    assert due(stored, last=NOW - REFRESH) == Due(SN, [TODAY], "recent")


def test_days_of_a_session_still_going_wait_for_its_end() -> None:
    """A car plugged in for days (a trip): its days are not fetched again and again."""
    stored = complete_days(date(2024, 12, 19), date(2025, 1, 14))
    stored[date(2025, 1, 5)] = datetime(2025, 1, 5, 8, tzinfo=UTC)  # stored as of its plug-in
    plugged = datetime(2025, 1, 5, 8, tzinfo=UTC)
    assert due(stored, plugged=plugged) is None
    assert due(stored) == Due(SN, [date(2025, 1, 5)], "older")


def test_chargers_take_turns_the_last_weeks_first() -> None:
    stored = {"A": complete_days(date(2025, 1, 9), date(2025, 1, 14)), "B": {}}
    got = next_fetch(
        ["A", "B"],
        stored,
        now=NOW,
        zone=ZONE,
        keep_days=28,
        last_recent={"A": NOW},
        ended={},
        plugged={},
    )
    assert got == Due("B", days(date(2024, 12, 19), TODAY), "first")


# --- the service against the fake cloud ----------------------------------------------------


@pytest.fixture
async def morning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    async for world in world_at(MORNING, tmp_path, monkeypatch):
        yield world


def auto(world: World, plans: str = "auto") -> Config:
    """The example rules at a 60 s poll, ``plans`` as given and 28 days of habits (the fake
    cloud's history)."""
    config = world.config(poll="60s")
    return config.model_copy(update={"plans": plans, "habits": HabitsConfig(days=28)})


def windows_asked(world: World) -> list[tuple[str, str]]:
    params = [r.json["params"] for r in world.cloud.requests(HISTORY, method="POST")]
    return [(p["startDate"], p["endDate"]) for p in params]


def stored_sessions(world: World) -> tuple[dict[date, datetime], set[datetime]]:
    with DecisionStore(world.database) as store:
        (sn,) = {c.sn for c in world.cloud.model.chargers}
        stored = store.history_session_days(SITE_ID, sn)
        pages = store.load_history_sessions(SITE_ID)
    starts = {s.started_at for page in pages for s in parse_session_history_page(page).sessions}
    return stored, starts


async def test_from_nothing_the_look_back_then_the_session_that_ended(morning: World) -> None:
    seen: dict[str, Any] = {}

    def on_tick(report: TickReport) -> None:
        assert report.snapshot is not None
        if report.at == MORNING:
            seen["first plan"] = report.snapshot.chargers[0].plan
        if report.at == MORNING + timedelta(minutes=59):
            seen.update(windows=windows_asked(morning), stored=stored_sessions(morning))
            seen["plan"] = report.snapshot.chargers[0].plan
            morning.cloud.update_charger(plugged_in=False)  # gone: the session is filed
            morning.cloud.log.clear()

    morning.cloud.update_charger(charging=True)  # a dry run sends nothing: the car charges on
    service = morning.service(auto(morning), dry_run=True, on_tick=on_tick)
    assert await service.run(max_ticks=90) == 0  # 08:00-09:29, no failed tick
    # The whole look-back at the first tick, in one window (one page), and nothing more.
    assert seen["windows"] == [("19-12-2024", "15-01-2025")]
    stored, starts = seen["stored"]
    assert sorted(stored) == days(date(2024, 12, 19), TODAY)
    # The car plugged in at 08:00 is still there: its day is kept to be fetched again.
    assert stored[TODAY] <= MORNING
    assert len(starts) >= 10  # the fake's generated weeks
    # ...and the habits learned from them give the car plugged in a plan, from the first tick
    # (fetched before the plans are made).
    for plan in (seen["first plan"], seen["plan"]):
        assert plan is not None
        assert plan.learned is not None
        assert "sessions" in plan.learned
        assert "full car at once" not in plan.learned

    # Unplugged at 08:59, seen at 09:00: the last week 15 minutes later, with the session.
    assert windows_asked(morning) == [("15-01-2025", "15-01-2025")]
    stored, starts = stored_sessions(morning)
    assert MORNING in starts
    assert stored[TODAY] >= MORNING + timedelta(minutes=75)


async def test_a_degraded_history_service_is_asked_again_later(morning: World) -> None:
    morning.cloud.degrade_history(20 * 60)  # 550 until 08:20
    service = morning.service(auto(morning), dry_run=True)
    assert await service.run(max_ticks=50) == 0  # no tick fails for it
    stored, _ = stored_sessions(morning)
    assert windows_asked(morning) == [("19-12-2024", "15-01-2025")] * 3
    assert sorted(stored)[0] == date(2024, 12, 19)  # at 08:30 (08:00 and 08:15 degraded)
    tries = [r.status for r in morning.cloud.requests(HISTORY, method="POST")]
    assert tries == [550, 550, 200]  # 08:00 and 08:15 degraded: not hammered


async def test_manual_plans_fetch_no_history(morning: World) -> None:
    service = morning.service(auto(morning, "manual"), dry_run=True)
    assert await service.run(max_ticks=20) == 0
    assert morning.cloud.requests("/enho_historical_events_ms/") == []


async def test_a_database_that_cannot_hold_the_history_fails_no_tick(
    morning: World, caplog: pytest.LogCaptureFixture
) -> None:
    """The history's table unreadable (here: gone): said once, asked again later with a
    growing wait, and every tick still decides; the cloud is not asked for what cannot be
    stored."""
    service = morning.service(auto(morning), dry_run=True)
    service.start()
    with sqlite3.connect(morning.database) as db:
        db.execute("DROP TABLE history_sessions")
    assert await service.run(max_ticks=60) == 0
    warned = [r for r in caplog.records if "cannot keep the session history" in r.getMessage()]
    assert len(warned) == 1
    assert "no such table" in warned[0].getMessage()
    assert windows_asked(morning) == []
    assert len(morning.rows()) > 0  # the ticks decided and logged as ever
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_plug_in_of_unknown_time_is_held_from_when_it_was_first_seen() -> None:
    """Without the status's plg_in_at the session counts from a day before the service first
    saw the car (the overnight stay it most likely is), and stays so as ticks go by; the
    unplug then remembers that plug-in for the days the cloud has yet to file."""
    sync = SessionSync()

    def tick(at: datetime, *, plugged: bool) -> None:
        view = make_charger(sn=SN, plugged_in=plugged, plugged_in_at=None)
        sync.watch(Snapshot(now=at, timezone=str(ZONE), chargers=(view,), surplus=SURPLUS))

    tick(NOW, plugged=True)
    tick(NOW + timedelta(hours=5), plugged=True)
    assert sync._plugged == {SN: NOW - timedelta(days=1)}
    tick(NOW + timedelta(hours=6), plugged=False)
    assert sync._plugged == {}
    assert sync._ended == {SN: (NOW + timedelta(hours=6), NOW - timedelta(days=1))}


# --- the rule as a property: every day of the look-back is fetched, none twice for nothing ---


@settings(max_examples=150, deadline=None)
@given(
    keep_days=st.integers(min_value=7, max_value=200),
    stored_offsets=st.sets(st.integers(min_value=0, max_value=250), max_size=120),
    early=st.sets(st.integers(min_value=0, max_value=250), max_size=20),
    plugged_days=st.none() | st.integers(min_value=0, max_value=20),
    minute=st.integers(min_value=0, max_value=24 * 60 - 1),
)
def test_the_look_back_is_fetched_whole_in_few_windows(
    keep_days: int,
    stored_offsets: set[int],
    early: set[int],
    plugged_days: int | None,
    minute: int,
) -> None:
    """From any stored state, a service starting now fetches windows until nothing is due:
    each inside the look-back and never past today, a handful of them, and afterwards every
    day of the look-back is complete except today and the days of a session still going."""
    now = datetime(2025, 6, 20, tzinfo=ZONE) + timedelta(minutes=minute)
    today = now.date()
    first = today - timedelta(days=keep_days - 1)
    stored: dict[date, datetime] = {}
    for offset in stored_offsets:
        day = today - timedelta(days=offset)
        fetched = day_end(day, ZONE) - timedelta(hours=1)  # fetched before it was over
        stored[day] = fetched if offset in early else max(fetched + timedelta(days=2), now)
    stored = {day: min(at, now) for day, at in stored.items()}
    plugged = None if plugged_days is None else now - timedelta(days=plugged_days, hours=1)
    last_recent: dict[str, datetime] = {}
    windows_taken = 0
    while (
        got := next_fetch(
            [SN],
            {SN: stored},
            now=now,
            zone=ZONE,
            keep_days=keep_days,
            last_recent=last_recent,
            ended={},
            plugged={} if plugged is None else {SN: plugged},
        )
    ) is not None:
        windows_taken += 1
        assert windows_taken <= 2 + keep_days // 30 + 1, "windows keep coming"
        assert got.window == days(got.window[0], got.window[-1])
        assert first <= got.window[0]
        assert got.window[-1] <= today
        open_day = None if plugged is None else plugged.astimezone(ZONE).date()
        for day in got.window:  # stored as fetch_window stores them
            stored[day] = plugged if open_day is not None and day >= open_day else now
        if got.why != "older":
            last_recent[SN] = now
    open_from = today if plugged is None else min(today, plugged.astimezone(ZONE).date())
    for day in days(first, open_from - timedelta(days=1)):
        assert day in stored
        assert stored[day] >= day_end(day, ZONE), day


@pytest.fixture
async def two_chargers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    chargers = [Charger(sn="EV1"), Charger(sn="EV2")]
    async for world in world_at(MORNING, tmp_path, monkeypatch, chargers=chargers):
        yield world


async def test_every_charger_s_first_window_comes_in_the_same_tick(two_chargers: World) -> None:
    """Two chargers, nothing stored: both get their look-back at the first tick, so neither
    plans "a full car at once" for a tick; the next windows come one a minute."""
    world = two_chargers
    plans: list[list[str | None]] = []

    def on_tick(report: TickReport) -> None:
        assert report.snapshot is not None
        plans.append([v.plan.learned if v.plan else None for v in report.snapshot.chargers])

    world.cloud.update_charger("EV2", plugged_in=True)
    service = world.service(auto(world), dry_run=True, on_tick=on_tick)
    assert await service.run(max_ticks=3) == 0
    sent = [r.path.split("/")[-2] for r in world.cloud.requests(HISTORY, method="POST")]
    assert sent == ["EV1", "EV2"]  # both in the first tick, and nothing more is due
    for learned in plans[0]:
        assert learned is not None
        assert "sessions" in learned


async def test_days_stored_before_the_open_session_rule_are_fetched_again_once(
    morning: World,
) -> None:
    """A database filled before a day holding a session still going counted as incomplete
    may lack every overnight session (a nightly fetch stored their days empty, as complete):
    the service fetches the look-back whole once, and says so in the state table, so a
    restart does not fetch it again."""
    with DecisionStore(morning.database) as store:
        lost = {d: [] for d in days(TODAY - timedelta(days=89), TODAY - timedelta(days=1))}
        store.save_history_sessions(SITE_ID, FAKE_SN, lost, fetched_at=MORNING)
    for _ in range(2):  # a service, then the same service restarted
        service = morning.service(auto(morning), dry_run=True)
        assert await service.run(max_ticks=2) == 0
    assert windows_asked(morning) == [("19-12-2024", "15-01-2025"), ("15-01-2025", "15-01-2025")]
    _, starts = stored_sessions(morning)
    assert len(starts) >= 10  # the fake's sessions, where the database held none
    with DecisionStore(morning.database) as store:
        assert store.load_state(CHECKED_KEY.format(site_id=SITE_ID, sn=FAKE_SN)) is True
