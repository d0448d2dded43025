"""One plug-in's learned plan (`Habits.expect`): the departure from similar plug-ins, the
energy from sessions after a similar time away, the "no history yet" plan; the plan fixed at
the plug-in live (`HabitCache.plugged_at`) and moved on past its departure (`overdue`)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.config import Config
from optimizer.engine.snapshot import DeparturePlan, Snapshot
from optimizer.forecast.habits import (
    NO_HISTORY,
    HabitSettings,
    PastSession,
    habits_at,
    possible,
)
from optimizer.plans import (
    ALL_CHARGERS,
    MORE,
    MORE_STEP_KWH,
    OVERDUE,
    HabitCache,
    learned_plan,
    overdue,
    with_plans,
)
from optimizer.simulate.replay import replay
from optimizer.simulate.series import Session, figures
from tests.test_engine_sim import make_charger
from tests.test_planner_replay import LIMITS, POLICY, T0, VOLTS, _series

TZ = "Europe/Berlin"
ZONE = ZoneInfo(TZ)


def mixed(seed: int, *, days: int = 60, first: date = date(2025, 3, 3)) -> list[PastSession]:
    """Weekday evenings: plugged 18:00, gone at 07:30 +- 15 min, 8-12 kWh after a day away
    (Mondays: 25-30 kWh after the weekend's trip). Weekends: plugged 10:00 +- 30 min for
    5 h +- 30 min, 3-5 kWh."""
    rng = random.Random(seed)
    out: list[PastSession] = []
    for n in range(days):
        day = first + timedelta(days=n)
        if day.weekday() < 5:
            plugged = datetime.combine(day, time(18), tzinfo=ZONE)
            left = plugged + timedelta(hours=13.5, minutes=rng.uniform(-15, 15))
            kwh = rng.uniform(25, 30) if day.weekday() == 0 else rng.uniform(8, 12)
        else:
            plugged = datetime.combine(day, time(10), tzinfo=ZONE)
            plugged += timedelta(minutes=rng.uniform(-30, 30))
            left = plugged + timedelta(hours=5, minutes=rng.uniform(-30, 30))
            kwh = rng.uniform(3, 5)
        out.append(PastSession(plugged.astimezone(UTC), left.astimezone(UTC), kwh))
    return out


SESSIONS = mixed(3)
NOW = datetime(2025, 5, 5, tzinfo=ZONE)  # a Monday after the history
HABITS = habits_at(SESSIONS, NOW, timezone=TZ)


def test_the_departure_comes_from_similar_plug_ins() -> None:
    evening = datetime(2025, 5, 6, 18, 20, tzinfo=ZONE)  # Tuesday
    plan = HABITS.expect(evening)
    # An overnight stay says when the car leaves by its end's clock time (07:30 +- 15 min),
    # not by its length counted from this later plug-in (which would say 07:50).
    ends = sorted(
        s.ended_at.astimezone(ZONE).time()
        for s in SESSIONS
        if s.started_at.astimezone(ZONE).weekday() < 5
        and s.started_at > NOW.astimezone(UTC) - timedelta(days=90)
    )
    ready = plan.ready_by.astimezone(ZONE)
    assert ready.date() == date(2025, 5, 7)
    assert ends[0].replace(second=0, microsecond=0) <= ready.time() <= ends[len(ends) // 2]
    assert plan.source.startswith("weekday plug-ins 16:20-20:20 (9 on Tuesdays), ")
    saturday = datetime(2025, 5, 10, 10, 5, tzinfo=ZONE)
    weekend = HABITS.expect(saturday)
    # The day's habit cannot tell these apart: a Saturday 10:00 plug-in leaves about 15:00.
    assert timedelta(hours=4) <= weekend.ready_by - saturday <= timedelta(hours=5)
    assert weekend.source.startswith("weekend plug-ins 08:05-12:05 (8 on Saturdays), ")


def test_the_energy_comes_from_sessions_after_a_similar_time_away() -> None:
    monday = datetime(2025, 5, 12, 18, tzinfo=ZONE)
    after_weekend = HABITS.expect(monday, last_end=monday - timedelta(hours=50))
    after_a_day = HABITS.expect(monday, last_end=monday - timedelta(hours=10, minutes=30))
    assert after_weekend.energy_kwh >= 25  # Mondays' sessions followed the weekend away
    assert 10 <= after_a_day.energy_kwh <= 12  # a high quantile of 8-12 kWh
    assert "after 50 h away" in after_weekend.source
    assert "after 10 h away" in after_a_day.source
    # Without last_end: the time since the newest session in the history ended.
    latest = max(s.ended_at for s in SESSIONS if s.ended_at < NOW.astimezone(UTC))
    assert HABITS.expect(monday) == HABITS.expect(monday, last_end=latest)


def test_higher_quantiles_plan_earlier_and_more() -> None:
    evening = datetime(2025, 5, 6, 18, tzinfo=ZONE)
    last_end = evening - timedelta(hours=10, minutes=30)
    usual = habits_at(SESSIONS, NOW, timezone=TZ).expect(evening, last_end=last_end)
    careful = habits_at(
        SESSIONS, NOW, timezone=TZ, settings=HabitSettings(leave_quantile=0.05, energy_quantile=1)
    ).expect(evening, last_end=last_end)
    assert careful.ready_by < usual.ready_by
    assert careful.energy_kwh > usual.energy_kwh


def test_without_history_a_full_car_at_once() -> None:
    now = datetime(2025, 5, 6, 18, tzinfo=ZONE)
    empty = habits_at([], now, timezone=TZ)
    plan = learned_plan(empty, now)
    assert plan == DeparturePlan(now.astimezone(UTC) + timedelta(hours=12), 150.0, NO_HISTORY)
    # Below min_sessions (5) sessions, as no habit is claimed from fewer: the same.
    few = habits_at(SESSIONS[:4], now, timezone=TZ)
    early = learned_plan(few, now)
    assert (early.energy_kwh, early.ready_by) == (150.0, plan.ready_by)
    assert early.learned == "only 4 sessions yet: a full car at once"
    fifth = SESSIONS[4].ended_at + timedelta(hours=10)
    assert learned_plan(habits_at(SESSIONS[:5], now, timezone=TZ), fifth).energy_kwh < 150.0


@settings(max_examples=40, deadline=None)
@given(cut=st.integers(5, 55), shift=st.floats(-5, 5), extra=st.floats(0, 30))
def test_sessions_after_the_plug_in_change_nothing(cut: int, shift: float, extra: float) -> None:
    """No peeking: a plan for a plug-in ignores sessions that had not ended by then, even in
    habits learned later."""
    plugged = SESSIONS[cut].started_at
    changed = SESSIONS[:cut] + [
        PastSession(s.started_at, s.ended_at + timedelta(hours=abs(shift)), s.energy_kwh + extra)
        for s in SESSIONS[cut:]
    ]
    later = NOW + timedelta(days=1)
    mine = habits_at(SESSIONS, later, timezone=TZ).expect(plugged)
    theirs = habits_at(changed, later, timezone=TZ).expect(plugged)
    assert mine == theirs


# --- live: fixed at the plug-in, moved on past its departure ---------------------------------


def test_a_live_learned_plan_stays_the_one_of_its_plug_in() -> None:
    cache = HabitCache()
    plug = datetime(2025, 5, 6, 18, tzinfo=ZONE).astimezone(UTC)
    seen = []
    for minutes in (0, 45, 180):
        now = plug + timedelta(minutes=minutes)
        chargers = (make_charger(sn="A", plugged_in=True), make_charger(sn="B", plugged_in=False))
        snapshot = Snapshot(now=now, timezone=TZ, chargers=chargers)
        at = cache.plugged_at(snapshot)
        assert at == {"A": plug}
        planned = with_plans(snapshot, {}, learned={ALL_CHARGERS: HABITS}, plugged_at=at)
        seen.append(planned.chargers[0].plan)
    assert seen[0] == seen[1] == seen[2] == learned_plan(HABITS, plug)
    # Unplugged, then plugged again later: a new plug-in.
    later = plug + timedelta(hours=5)
    gone = Snapshot(now=later, timezone=TZ, chargers=(make_charger(sn="A", plugged_in=False),))
    assert cache.plugged_at(gone) == {}
    back = Snapshot(now=later + timedelta(minutes=1), timezone=TZ, chargers=(make_charger(sn="A"),))
    assert cache.plugged_at(back) == {"A": later + timedelta(minutes=1)}


def test_after_a_restart_the_plan_is_the_one_of_the_status_plug_in() -> None:
    """The status's plg_in_at survives a restart of the service: the plan it gives is the one
    the first run made, not a new stay counted from the restart."""
    plug = datetime(2025, 5, 6, 18, tzinfo=ZONE).astimezone(UTC)
    restart = plug + timedelta(hours=3)

    def seen_at(now: datetime, reported: datetime | None) -> dict[str, datetime]:
        charger = make_charger(sn="A", plugged_in_at=reported)
        return cache.plugged_at(Snapshot(now=now, timezone=TZ, chargers=(charger,)))

    cache = HabitCache()  # the service started again: nothing remembered
    assert seen_at(restart, plug) == {"A": plug}
    snapshot = Snapshot(now=restart, timezone=TZ, chargers=(make_charger(sn="A"),))
    planned = with_plans(snapshot, {}, learned={ALL_CHARGERS: HABITS}, plugged_at={"A": plug})
    assert planned.chargers[0].plan == learned_plan(HABITS, plug)
    assert learned_plan(HABITS, plug) != learned_plan(HABITS, restart)
    # Unplugged and plugged again between two polls: the new plg_in_at is a new plug-in.
    replug = restart + timedelta(minutes=20)
    assert seen_at(replug + timedelta(seconds=30), replug) == {"A": replug}
    # No plg_in_at: the first tick seen plugged in stands for it, and stays.
    cache = HabitCache()
    assert seen_at(restart, None) == {"A": restart}
    assert seen_at(restart + timedelta(minutes=1), None) == {"A": restart}
    # A plg_in_at ahead of the clock (beyond a few minutes of skew) is not a plug-in yet.
    cache = HabitCache()
    assert seen_at(restart, restart + timedelta(hours=2)) == {"A": restart}
    cache = HabitCache()
    assert seen_at(restart, restart + timedelta(minutes=2)) == {"A": restart}


def test_past_its_departure_a_short_learned_plan_moves_on_an_hour_at_a_time() -> None:
    ready = datetime(2025, 5, 7, 7, 30, tzinfo=UTC)
    plan = DeparturePlan(ready, 12.0, "weekday plug-ins 16:00-20:00, 40 sessions")
    assert overdue(plan, ready - timedelta(minutes=1), 2.0) is plan  # still ahead
    assert overdue(plan, ready + timedelta(minutes=5), 11.99) is plan  # met (rounding)
    assert overdue(plan, ready + timedelta(minutes=5), 2.0, taking=False) is plan  # car full
    manual = DeparturePlan(ready, 12.0)
    assert overdue(manual, ready + timedelta(minutes=5), 2.0) is manual  # the driver's own
    first = overdue(plan, ready, 2.0)
    assert first.ready_by == ready + timedelta(hours=1)
    assert first.energy_kwh == 12.0
    assert first.learned == f"{plan.learned}; {OVERDUE}"
    assert overdue(plan, ready + timedelta(minutes=59), 5.0) == first  # the same for the hour
    second = overdue(plan, ready + timedelta(minutes=61), 5.0)
    assert second.ready_by == ready + timedelta(hours=2)
    assert overdue(second, ready + timedelta(hours=2), 6.0).learned == first.learned  # once


def test_a_met_learned_plan_asks_more_while_the_car_draws() -> None:
    ready = datetime(2025, 5, 7, 7, 30, tzinfo=UTC)
    plan = DeparturePlan(ready, 10.0, "after 11 h away, 28 sessions")
    now = ready - timedelta(hours=2)
    assert overdue(plan, now, 9.0, drawing=True) is plan  # short: the plan as it is
    assert overdue(plan, now, 10.0) is plan  # stopped: nothing says the car takes more
    assert overdue(plan, now, 10.0, taking=True) is plan  # the replay's "not full" alone
    manual = DeparturePlan(ready, 10.0)
    assert overdue(manual, now, 10.0, drawing=True) is manual  # the driver's own
    more = overdue(plan, now, 10.0, drawing=True)
    assert more.energy_kwh == 10.0 + MORE_STEP_KWH
    assert more.ready_by == ready
    assert more.learned == f"{plan.learned}; {MORE}"
    assert overdue(plan, now, 14.9, drawing=True) == more  # the same until the step is reached
    assert overdue(plan, now, 15.0, drawing=True).energy_kwh == 10.0 + 2 * MORE_STEP_KWH


def test_live_a_met_learned_plan_asks_more_only_while_the_connector_reads_charging() -> None:
    """The service's side of the rule: ``with_plans`` passes what the status shows."""
    plug = datetime(2025, 5, 6, 18, tzinfo=ZONE).astimezone(UTC)
    plan = learned_plan(HABITS, plug)
    now = plug + timedelta(minutes=30)
    got = {}
    for drawing in (True, False):
        charger = make_charger(sn="A", charging=True, drawing=drawing, session_kwh=plan.energy_kwh)
        snapshot = Snapshot(now=now, timezone=TZ, chargers=(charger,))
        planned = with_plans(snapshot, {}, learned={ALL_CHARGERS: HABITS}, plugged_at={"A": plug})
        got[drawing] = planned.chargers[0].plan
    assert got[False] == plan
    assert got[True] is not None
    assert got[True].energy_kwh == plan.energy_kwh + MORE_STEP_KWH


def test_the_replay_charges_on_past_a_learned_departure_while_the_car_takes_energy() -> None:
    """A night session of 10 h that takes 20 kWh, planned ready 2 h after the plug-in: full
    power cannot meet it by then (about 14 kWh). A learned plan moves on and the car gets all
    20 kWh; the same plan set by the driver ends at its ready-by and the car stays short."""
    session = Session(T0, T0 + timedelta(hours=10), 20.0)
    series = _series(0.0, 0.5, session)
    got = {}
    for learned in ("weekday plug-ins 22:00-02:00, 9 sessions", None):
        plan = DeparturePlan(T0 + timedelta(hours=2), 20.0, learned)
        result = replay(
            series, [POLICY], config=Config(), limits=LIMITS, voltage_v=VOLTS, plans=[plan]
        )
        got[learned is not None] = figures(series, result.ev_kwh, commands=result.commands)
    assert got[True].unmet_kwh < 0.05
    assert got[False].unmet_kwh > 3.0


def test_a_step_once_asked_stays_asked_and_goes_on_past_the_ready_by() -> None:
    ready = datetime(2025, 5, 7, 7, 30, tzinfo=UTC)
    plan = DeparturePlan(ready, 10.0, "after 11 h away, 28 sessions")
    before = ready - timedelta(minutes=40)
    # The planner paused before its last slots: the car draws nothing, the step stays.
    kept = overdue(plan, before, 12.0, asked=15.0)
    assert (kept.energy_kwh, kept.ready_by) == (15.0, ready)
    assert kept.learned == f"{plan.learned}; {MORE}"
    assert overdue(kept, before, 12.0, asked=15.0).learned == kept.learned  # named once
    assert overdue(plan, before, 12.0, asked=8.0) is plan  # less than learned: nothing kept
    # Met by the ready-by with the car still drawing: the next step, by the next hour.
    on = overdue(plan, ready + timedelta(minutes=5), 15.0, drawing=True, asked=15.0)
    assert (on.energy_kwh, on.ready_by) == (15.0 + MORE_STEP_KWH, ready + timedelta(hours=1))
    # Met and stopped past the ready-by: nothing says the car takes more.
    assert overdue(plan, ready + timedelta(minutes=5), 10.0).ready_by == ready


def test_live_the_cache_keeps_a_step_for_the_plug_in() -> None:
    """A step asked while the connector read CHARGING stays when the planner pauses (the
    status then reads no charging), and ends with the plug-in."""
    plug = datetime(2025, 5, 6, 18, tzinfo=ZONE).astimezone(UTC)
    plan = learned_plan(HABITS, plug)
    cache = HabitCache()
    learned = {ALL_CHARGERS: HABITS}

    def tick(now: datetime, *, drawing: bool, plugged: bool = True) -> DeparturePlan | None:
        charger = make_charger(
            sn="A",
            plugged_in=plugged,
            charging=drawing,
            drawing=drawing,
            session_kwh=plan.energy_kwh,
            plugged_in_at=plug if plugged else None,
        )
        snapshot = Snapshot(now=now, timezone=TZ, chargers=(charger,))
        plugged_at = cache.plugged_at(snapshot)
        planned = with_plans(
            snapshot, {}, learned=learned, plugged_at=plugged_at, asked=cache.asked()
        )
        cache.remember(planned)
        return planned.chargers[0].plan

    first = tick(plug + timedelta(hours=1), drawing=True)
    assert first is not None
    assert first.energy_kwh == plan.energy_kwh + MORE_STEP_KWH
    paused = tick(plug + timedelta(hours=1, minutes=1), drawing=False)
    assert paused == first
    assert cache.asked() == {"A": first.energy_kwh}
    tick(plug + timedelta(hours=2), drawing=False, plugged=False)
    assert cache.asked() == {}


def test_the_replay_keeps_a_step_through_the_planners_pause() -> None:
    """A night session of 12 h that takes 20 kWh, learned as 10 kWh by 8 h after the plug-in:
    the planner meets 10 in its last slots, the car still draws, the step asks more, and the
    car gets its 20 kWh by its real departure."""
    session = Session(T0, T0 + timedelta(hours=12), 20.0)
    series = _series(0.0, 0.5, session)
    plan = DeparturePlan(T0 + timedelta(hours=8), 10.0, "weekday plug-ins 22:00-02:00, 9 sessions")
    result = replay(series, [POLICY], config=Config(), limits=LIMITS, voltage_v=VOLTS, plans=[plan])
    assert figures(series, result.ev_kwh, commands=result.commands).unmet_kwh < 0.05


def _local(day: date, hours: float) -> datetime:
    return (datetime.combine(day, time(), tzinfo=ZONE) + timedelta(hours=hours)).astimezone(UTC)


def roster(weeks: int = 9, first: date = date(2025, 3, 3)) -> list[PastSession]:
    """A shift worker's swing weeks as `evopt simulate --sample phoenix` has them: plugged in
    at 22:30 after the shift, gone at 13:15 before the next one; but the Sunday-night plug-in
    leaves at 05:15, for Monday's early shift of the week after."""
    out: list[PastSession] = []
    for n in range(weeks * 7):
        day = first + timedelta(days=n)
        leave = 24 + 5.25 if day.weekday() == 6 else 24 + 13.25
        out.append(PastSession(_local(day, 22.5), _local(day, leave), 12.0))
    return out


def test_same_weekday_plug_ins_weigh_more_in_the_departure() -> None:
    sessions = roster()
    now = datetime(2025, 5, 5, tzinfo=ZONE)
    habits = habits_at(sessions, now, timezone=TZ)
    sunday = datetime(2025, 5, 11, 22, 40, tzinfo=ZONE)
    # One plug-in in seven at this clock time leaves at 05:15; counted five times it is the
    # early quantile, so Monday's early shift is not planned for 13:00.
    plan = habits.expect(sunday)
    assert plan.ready_by.astimezone(ZONE) <= datetime(2025, 5, 12, 5, 15, tzinfo=ZONE)
    assert "(8 on Sundays)" in plan.source
    tuesday = habits.expect(datetime(2025, 5, 6, 22, 40, tzinfo=ZONE))
    assert tuesday.ready_by.astimezone(ZONE) >= datetime(2025, 5, 7, 13, 0, tzinfo=ZONE)


def test_few_similar_plug_ins_cap_the_departure_at_the_shortest_of_them() -> None:
    """Weekday evenings overnight, and two Saturday late mornings of 4 h: a third Saturday
    11:00 plug-in is planned by all the stays (overnight), but no later than 4 h."""
    first = date(2025, 3, 3)  # a Monday
    sessions = [
        PastSession(_local(first + timedelta(days=n), 18), _local(first + timedelta(days=n), 31), 9)
        for n in range(40)
        if (first + timedelta(days=n)).weekday() < 5
    ]
    for saturday in (date(2025, 3, 8), date(2025, 3, 22)):
        sessions.append(PastSession(_local(saturday, 11), _local(saturday, 15), 4.0))
    habits = habits_at(sessions, datetime(2025, 4, 12, tzinfo=ZONE), timezone=TZ)
    plugged = datetime(2025, 4, 12, 11, 10, tzinfo=ZONE)
    plan = habits.expect(plugged)
    assert plan.ready_by - plugged == timedelta(hours=4)
    assert "all plug-ins (at most the shortest of 2 at 09:10-13:10)" in plan.source


def test_after_an_absence_longer_than_any_before_a_full_car() -> None:
    """Seattle's trips: a car back after 9 days took 54 kWh where every session before had
    followed at most a weekend away; the plan asks a full car, as with no history."""
    monday = datetime(2025, 5, 12, 18, tzinfo=ZONE)
    longest = max(
        b.started_at - a.ended_at for a, b in pairwise(SESSIONS) if b.ended_at < NOW.astimezone(UTC)
    )
    back = HABITS.expect(monday, last_end=monday - 2 * longest)
    assert back.energy_kwh == 150.0
    assert back.source.endswith("longer than any before: a full car")
    within = HABITS.expect(monday, last_end=monday - longest)
    assert within.energy_kwh < 150.0


def test_after_a_long_unusual_absence_the_most_the_nearest_took() -> None:
    """Phoenix's trips: three came back after 70 h away and took 30-40 kWh, every other
    session followed a 10 h shift; too few sessions followed an absence like this 75 h one,
    and the nearest five include two of the shifts: the most any of them took (40), not
    their high quantile (which the shifts pull down)."""
    day = date(2025, 3, 3)
    sessions: list[PastSession] = []
    start = _local(day, 18)
    for n in range(33):
        trip = n % 11 == 10  # the session after a trip (70 h away)
        sessions.append(
            PastSession(start, start + timedelta(hours=12), 30.0 + 5 * (n // 11) if trip else 10.0)
        )
        start += timedelta(hours=12) + timedelta(hours=70 if (n + 1) % 11 == 10 else 10)
    habits = habits_at(sessions, start, timezone=TZ)
    plan = habits.expect(start + timedelta(hours=75), last_end=start)
    assert "after 75 h away, 5 sessions" in plan.source
    assert plan.energy_kwh == 40.0
    # Four days away or more (within 1.5 times the longest absence, so not "longer than any
    # before"): a trip, whose need the battery bounds, not the shorter absences: a full car.
    trip = habits.expect(start + timedelta(hours=96), last_end=start)
    assert trip.energy_kwh == 150.0
    assert trip.source.endswith("after 96 h away, few like it: a full car")


def test_the_history_s_drawing_time_tells_a_full_car_from_one_that_left_short() -> None:
    """With the history's active charge time: a stay as fast on average as any but drawing
    for half of it was full, not short; one drawing all its stay at a third of the power the
    car takes (the service itself following a weak sun, live) was not at full power; one
    drawing all or 83 % of its stay at full power (a trip's return) left short, as before.
    Without the drawing time, the average alone takes all four for a car that left short."""
    full_kw = 7.4
    end = SESSIONS[-1].ended_at

    def plan_after(energy: float, active_h: float | None, *, known: bool = True) -> float:
        history = [
            PastSession(s.started_at, s.ended_at, s.energy_kwh, s.energy_kwh / full_kw * 3600)
            if known
            else s
            for s in SESSIONS
        ]
        active_s = None if active_h is None else active_h * 3600
        last = PastSession(end + timedelta(hours=2), end + timedelta(hours=5), energy, active_s)
        habits = habits_at([*history, last], NOW + timedelta(days=2), timezone=TZ)
        return habits.expect(last.ended_at + timedelta(hours=3)).energy_kwh

    short = [(22.0, 22.0 / full_kw), (2.5 * full_kw, 2.5)]  # all its 3 h, 83 % of them
    full = [(11.0, 11.0 / full_kw), (full_kw, 3.0)]  # full after half; a third of the power
    for energy, active_h in short:
        assert plan_after(energy, active_h) == 150.0
    for energy, active_h in full:
        assert plan_after(energy, active_h) < 150.0
    for energy, _ in short + full:
        assert plan_after(energy, None, known=False) == 150.0


def test_a_record_no_charger_could_make_steers_no_plan() -> None:
    """One session record in Wh read as kWh (12,000 kWh in 3 h), one drawing longer than its
    stay, one ending before it began: each is left out, and the plans after it are those of
    the history without it (before, 12,000 kWh became the fastest session ever and "the most
    the nearest took")."""
    end = SESSIONS[-1].ended_at
    begun = end + timedelta(hours=2)
    glitches = [
        PastSession(begun, begun + timedelta(hours=3), 12_000.0),
        PastSession(begun, begun + timedelta(hours=3), 20.0, 5 * 3600.0),
        PastSession(begun, begun - timedelta(hours=1), 5.0),
    ]
    later = [begun + timedelta(hours=h) for h in (6, 30, 80)]
    clean = habits_at(SESSIONS, NOW + timedelta(days=2), timezone=TZ)
    for glitch in glitches:
        assert not possible(glitch)
        habits = habits_at([*SESSIONS, glitch], NOW + timedelta(days=2), timezone=TZ)
        assert habits.sessions == clean.sessions
        for at in later:
            assert habits.expect(at, last_end=end) == clean.expect(at, last_end=end)
    assert possible(PastSession(begun, begun + timedelta(hours=1), 22.0, 3600.0))  # 3 x 32 A


def test_a_car_that_left_while_charging_at_full_power_asks_a_full_car() -> None:
    """The last session took energy all its stay at the highest power any session reached
    (seattle's trip return: 22.7 kWh in 3.7 h, the car took 42 kWh more the next evening):
    the car most likely left short, so the next plan asks a full car; unless most sessions
    do so, when that is just the car's usual short stay."""
    last = SESSIONS[-1]
    rushed = PastSession(last.ended_at + timedelta(hours=2), last.ended_at + timedelta(hours=5), 22)
    habits = habits_at([*SESSIONS, rushed], NOW + timedelta(days=2), timezone=TZ)
    plugged = rushed.ended_at + timedelta(hours=3)
    plan = habits.expect(plugged)
    assert plan.energy_kwh == 150.0
    assert plan.source.endswith("the last session charged at full power until it left: a full car")
    # The same last session when every session charges all its stay: the usual charge.
    day = date(2025, 3, 3)
    short = [
        PastSession(_local(day + timedelta(days=n), 12), _local(day + timedelta(days=n), 15), 22)
        for n in range(30)
    ]
    usual = habits_at(short, datetime(2025, 4, 2, tzinfo=ZONE), timezone=TZ)
    assert usual.expect(datetime(2025, 4, 2, 12, tzinfo=ZONE)).energy_kwh == 22.0
