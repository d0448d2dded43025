"""Departure habits: the quantiles on a seeded history, the grouping rule, causality
(hypothesis), `plans: auto` in `with_plans` and in the service against the fake cloud, and
`evopt plan learn`."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.cli import main
from optimizer.decisions.store import DecisionStore
from optimizer.engine.snapshot import DeparturePlan, Snapshot
from optimizer.forecast.habits import HabitSettings, PastSession, habits_at, next_departure
from optimizer.plans import ALL_CHARGERS, learned_plan, save_plan, with_plans
from optimizer.service.sessions import CHECKED_KEY
from optimizer.service.view import describe, read_views
from tests.cli_env import SITE_ID
from tests.test_engine_sim import make_charger
from tests.test_service import ROOT, SN, World, applied, midday  # noqa: F401 - the fixture

ZONE = ZoneInfo("Europe/Berlin")


def commuter(seed: int, *, days: int = 70, first: date = date(2025, 3, 3)) -> list[PastSession]:
    """A car plugged in every evening; it leaves at 07:30 +- 20 min on weekdays with 8-14 kWh,
    at 10:00 +- 60 min on Saturdays, not at all on Sundays (Saturday's session lasts till
    Monday)."""
    rng = random.Random(seed)
    out: list[PastSession] = []
    for n in range(days):
        day = first + timedelta(days=n)
        if day.weekday() == 6:
            continue
        leave = datetime.combine(day, time(7, 30), tzinfo=ZONE)
        leave += timedelta(minutes=rng.uniform(-20, 20))
        if day.weekday() == 5:
            leave += timedelta(hours=2.5, minutes=rng.uniform(-40, 40))
        plugged = datetime.combine(day - timedelta(days=1), time(18), tzinfo=ZONE)
        out.append(PastSession(plugged.astimezone(UTC), leave.astimezone(UTC), rng.uniform(8, 14)))
    return out


SESSIONS = commuter(7)
AFTER = datetime(2025, 5, 12, tzinfo=ZONE)  # a Monday after the history


def test_quantiles_are_early_leaves_and_high_energies() -> None:
    habits = habits_at(SESSIONS, AFTER, timezone="Europe/Berlin")
    monday = habits.on(date(2025, 5, 12))
    assert monday is not None
    weekday_ends = [
        s.ended_at.astimezone(ZONE) for s in SESSIONS if s.ended_at.astimezone(ZONE).weekday() == 0
    ]
    minutes = sorted(e.hour * 60 + e.minute for e in weekday_ends)
    # Earlier than most real departures, later than the earliest: the 20th percentile.
    assert minutes[0] <= monday.leave_minute <= minutes[len(minutes) // 2]
    assert sum(m < monday.leave_minute for m in minutes) / len(minutes) <= 0.25
    energies = sorted(s.energy_kwh for s in SESSIONS if s.ended_at.astimezone(ZONE).weekday() == 0)
    assert sum(e <= monday.energy_kwh for e in energies) / len(energies) >= 0.75
    saturday = habits.on(date(2025, 5, 17))
    assert saturday is not None
    assert saturday.label == "Saturdays"
    assert 8 * 60 + 30 <= saturday.leave_minute <= 10 * 60
    assert habits.on(date(2025, 5, 18)) is None  # no Sunday departures: no habit claimed


def test_per_weekday_only_with_enough_sessions_else_the_group() -> None:
    few = habits_at(SESSIONS, AFTER, timezone="Europe/Berlin", settings=HabitSettings(days=30))
    assert {h.label for h in few.distinct()} == {"weekdays", "Saturdays"}
    many = habits_at(SESSIONS, AFTER, timezone="Europe/Berlin", settings=HabitSettings(days=90))
    assert {h.label for h in many.distinct()} >= {"Mondays", "Fridays", "Saturdays"}
    none = habits_at(SESSIONS[:4], AFTER, timezone="Europe/Berlin")
    assert none.distinct() == []


def test_quantile_settings_move_the_habit() -> None:
    cautious = habits_at(
        SESSIONS,
        AFTER,
        timezone="Europe/Berlin",
        settings=HabitSettings(leave_quantile=0.0, energy_quantile=1.0, days=30),
    )
    loose = habits_at(
        SESSIONS,
        AFTER,
        timezone="Europe/Berlin",
        settings=HabitSettings(leave_quantile=0.5, energy_quantile=0.5, days=30),
    )
    day = date(2025, 5, 13)
    a, b = cautious.on(day), loose.on(day)
    assert a is not None
    assert b is not None
    assert a.leave_minute < b.leave_minute
    assert a.energy_kwh > b.energy_kwh


def test_next_departure_skips_a_time_already_gone_and_days_without_habit() -> None:
    habits = habits_at(SESSIONS, AFTER, timezone="Europe/Berlin")
    saturday_noon = datetime(2025, 5, 17, 12, tzinfo=ZONE)
    found = next_departure(habits, saturday_noon)
    assert found is not None
    at, habit = found
    assert at.date() == date(2025, 5, 19)  # Saturday's time is gone, Sunday has none: Monday
    assert habit.label in ("weekdays", "Mondays")
    # A plug-in's plan does not wait for Monday's habit: no plug-in near noon to learn from,
    # so the early quantile of every session's stay (about 13.5 h) counts from the plug-in.
    plan = learned_plan(habits, saturday_noon)
    assert plan.learned is not None
    assert plan.learned.startswith("all plug-ins, ")
    assert saturday_noon + timedelta(hours=12) < plan.ready_by < saturday_noon + timedelta(hours=14)


@settings(max_examples=40, deadline=None)
@given(
    cut_days=st.floats(min_value=5, max_value=69),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_sessions_ending_after_now_change_nothing(cut_days: float, seed: int) -> None:
    now = datetime.combine(date(2025, 3, 3), time(), tzinfo=ZONE) + timedelta(days=cut_days)
    rng = random.Random(seed)
    future = [
        PastSession(
            now + timedelta(hours=rng.uniform(-30, 200)),
            now + timedelta(hours=rng.uniform(0, 200)),
            rng.uniform(0, 80),
        )
        for _ in range(30)
    ]
    past = [s for s in SESSIONS if s.ended_at < now]
    later = [s for s in SESSIONS if s.ended_at >= now]
    base = habits_at(past, now, timezone="Europe/Berlin")
    assert habits_at(past + later, now, timezone="Europe/Berlin") == base
    assert habits_at(past + future, now, timezone="Europe/Berlin") == base


# --- plans: auto -------------------------------------------------------------------------------


def test_a_learned_plan_goes_only_to_a_plugged_charger_without_a_manual_plan() -> None:
    now = datetime(2025, 5, 12, 20, tzinfo=ZONE).astimezone(UTC)
    chargers = (
        make_charger(sn="A", plugged_in=True),
        make_charger(sn="B", plugged_in=True),
        make_charger(sn="C", plugged_in=False),
    )
    snapshot = Snapshot(now=now, timezone="Europe/Berlin", chargers=chargers)
    habits = habits_at(SESSIONS, now, timezone="Europe/Berlin")
    manual = DeparturePlan(now + timedelta(hours=3), 5.0)
    seen = with_plans(snapshot, {"B": manual}, learned={ALL_CHARGERS: habits})
    a, b, c = (view.plan for view in seen.chargers)
    assert a is not None
    assert a.learned is not None
    assert a.ready_by.astimezone(ZONE).date() == date(2025, 5, 13)
    assert b == manual
    assert c is None


# --- the service against the fake cloud --------------------------------------------------------


def store_sessions(world: World, *, leave_utc: time, energy: float, count: int) -> None:
    """``count`` weekday sessions before the world's now, each leaving at ``leave_utc``."""
    now = world.cloud.clock.now()
    days: dict[date, list[dict[str, object]]] = {}
    day = now.date() - timedelta(days=1)
    while sum(map(len, days.values())) < count:
        end = datetime.combine(day, leave_utc, tzinfo=UTC)
        if end.astimezone(ZoneInfo("Australia/Melbourne")).weekday() < 5:
            start = end - timedelta(hours=1)  # plugged in at 13:00 in Melbourne
            days.setdefault(day, []).append(
                {
                    "id": f"{SN}:{int(start.timestamp())}",
                    "sessionId": int(start.timestamp()),
                    "startTime": start.strftime("%Y-%m-%dT%H:%M:%S.000Z[UTC]"),
                    "endTime": end.strftime("%Y-%m-%dT%H:%M:%S.000Z[UTC]"),
                    "aggEnergyValue": energy,
                }
            )
        day -= timedelta(days=1)
    # Every day of the period stored, the weekends' empty too: with plans: auto the service
    # fetches the days not stored from the fake (service/sessions.py), whose own sessions
    # would then join these.
    first = min(days)
    every = {first + timedelta(days=n): [] for n in range((now.date() - first).days)}
    with DecisionStore(world.database) as store:
        store.save_history_sessions(SITE_ID, SN, every | days, fetched_at=now)
        # ...and already fetched whole under today's rule: not fetched again at the start.
        store.save_state(CHECKED_KEY.format(site_id=SITE_ID, sn=SN), True, updated_at=now)


async def test_plans_auto_gives_a_plug_in_the_learned_plan(midday: World) -> None:  # noqa: F811
    """13:00 in Melbourne; plugged in at 13:00, the car has left at 14:00 with 20 kWh on
    weekdays: short of time, excess_solar starts at full power and says the plan was learned
    and from what (23 h away since the last session ended)."""
    store_sessions(midday, leave_utc=time(3, 0), energy=20.0, count=10)
    rules = (ROOT / "rules" / "excess-solar.yaml").read_text(encoding="utf-8")
    config = midday.config(rules).model_copy(update={"plans": "auto"})
    service = midday.service(config)
    service.start()
    report = await service.tick()
    assert report.problem is None
    rows = applied(midday.rows(), "start")
    assert len(rows) == 1
    learned = (
        "weekday plug-ins 11:00-15:00 (2 on Wednesdays), 10 sessions; after 23 h away, 7 sessions"
    )
    assert f"learned plan: ready by 14:00 with 20 kWh ({learned})" in rows[0]["reason"]
    plan = json.loads(rows[0]["inputs"])["charger"]["plan"]
    assert plan["learned"] == learned
    assert plan["energy_kwh"] == 20.0
    await service.shutdown()
    # `evopt status` shows the plan the service used, though no table holds it.
    now = midday.cloud.clock.now()
    view = read_views(midday.database, [SN], site_id=SITE_ID, now=now)[SN]
    assert view.plans == [
        {"ready_by": "2025-01-15T03:00:00Z", "energy_kwh": 20.0, "learned": learned}
    ]
    lines = describe(SN, view, ZoneInfo("Australia/Melbourne"), now=now)
    assert any(f"(learned: {learned})" in line for line in lines)


async def test_a_restarted_service_keeps_the_plan_of_the_plug_in(midday: World) -> None:  # noqa: F811
    """The car was plugged in at 13:00; the service starts (again) at 13:30. The status's
    plg_in_at gives the plug-in, so the plan is still ready by 14:00, not an hour's stay
    counted from the restart (14:30)."""
    store_sessions(midday, leave_utc=time(3, 0), energy=20.0, count=10)
    midday.cloud.clock.advance(30 * 60)
    rules = (ROOT / "rules" / "excess-solar.yaml").read_text(encoding="utf-8")
    service = midday.service(midday.config(rules).model_copy(update={"plans": "auto"}))
    service.start()
    report = await service.tick()
    assert report.problem is None
    await service.shutdown()
    (row,) = [r for r in midday.rows() if r["target"] == "charging"]
    plan = json.loads(row["inputs"])["charger"]["plan"]
    assert plan["ready_by"] == "2025-01-15T03:00:00+00:00"
    assert "learned plan: ready by 14:00 with 20 kWh" in row["reason"]


async def test_a_manual_plan_wins_over_the_learned_one(midday: World) -> None:  # noqa: F811
    store_sessions(midday, leave_utc=time(3, 0), energy=20.0, count=10)
    rules = (ROOT / "rules" / "excess-solar.yaml").read_text(encoding="utf-8")
    config = midday.config(rules).model_copy(update={"plans": "auto"})
    service = midday.service(config)
    service.start()
    now = midday.cloud.clock.now()
    with DecisionStore(midday.database) as store:
        save_plan(store, SN, DeparturePlan(now + timedelta(hours=1), 25.0), now=now)
    await service.tick()
    (row,) = [r for r in midday.rows() if r["target"] == "charging"]
    assert "learned" not in row["reason"]
    plan = json.loads(row["inputs"])["charger"]["plan"]
    assert plan["energy_kwh"] == 25.0
    assert "learned" not in plan
    await service.shutdown()


async def test_plans_manual_ignores_the_history(midday: World) -> None:  # noqa: F811
    store_sessions(midday, leave_utc=time(3, 0), energy=20.0, count=10)
    rules = (ROOT / "rules" / "excess-solar.yaml").read_text(encoding="utf-8")
    service = midday.service(midday.config(rules))
    service.start()
    await service.tick()
    for row in midday.rows():
        assert "plan" not in json.loads(row["inputs"]).get("charger", {})
    await service.shutdown()


# --- evopt plan learn --------------------------------------------------------------------------


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"site:\n  timezone: Europe/Berlin\nservice:\n  state_dir: {tmp_path / 'state'}\n"
        f"enlighten:\n  site_id: {SITE_ID}\n{extra}",
        encoding="utf-8",
    )
    return path


def _pages(tmp_path: Path) -> Path:
    """The seeded commuter as one Enlighten session-history page."""
    page = {
        "data": {
            "result": [
                {
                    "id": str(i),
                    "startTime": s.started_at.strftime("%Y-%m-%dT%H:%M:%S.000Z[UTC]"),
                    "endTime": s.ended_at.strftime("%Y-%m-%dT%H:%M:%S.000Z[UTC]"),
                    "aggEnergyValue": round(s.energy_kwh, 2),
                }
                for i, s in enumerate(SESSIONS)
            ],
            "hasMore": False,
        }
    }
    path = tmp_path / "sessions.json"
    path.write_text(json.dumps(page), encoding="utf-8")
    return path


def test_cli_plan_learn_from_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, pages = _config(tmp_path), _pages(tmp_path)
    base = ["--config", str(config), "plan", "learn", "--sessions", str(pages)]
    assert main([*base, "--at", "2025-05-12T00:00"]) == 0
    out = capsys.readouterr().out
    assert "LEAVE_BY" in out
    assert "Saturdays" in out
    # At midnight no plug-in of the history is near: the stays of all of them (13-16 h).
    assert 'a plug-in now gets "learned plan: ready by Mon 13:' in out
    assert "(all plug-ins, " in out
    assert "with `plans: auto`" in out
    assert main([*base, "--at", "2025-05-12T00:00", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["plans"] == "manual"
    assert shown["settings"]["leave_quantile"] == 0.1
    (charger,) = shown["chargers"]
    paged = [PastSession(s.started_at, s.ended_at, round(s.energy_kwh, 2)) for s in SESSIONS]
    expected = habits_at(paged, AFTER, timezone="Europe/Berlin")  # the page's 2 decimals
    assert charger["habits"] == [h.to_json() for h in expected.distinct()]
    assert charger["next_plan"]["ready_by"] == "2025-05-12T13:12:00+02:00"


def test_cli_plan_learn_from_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, "plans: auto\n")
    (tmp_path / "state").mkdir()
    by_day: dict[date, list[object]] = {}
    for i, s in enumerate(SESSIONS):
        by_day.setdefault(s.ended_at.date(), []).append(
            {
                "id": str(i),
                "startTime": s.started_at.isoformat(),
                "endTime": s.ended_at.isoformat(),
                "aggEnergyValue": s.energy_kwh,
            }
        )
    with DecisionStore(tmp_path / "state" / "decisions.db") as store:
        store.save_history_sessions(SITE_ID, "SN1", by_day, fetched_at=datetime.now(UTC))
    assert main(["--config", str(config), "plan", "learn", "--at", "2025-05-12T00:00"]) == 0
    out = capsys.readouterr().out
    assert "SN1" in out
    assert "with `plans: auto`" not in out


def test_cli_plan_learn_says_when_there_is_no_habit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, pages = _config(tmp_path), _pages(tmp_path)
    args = ["--config", str(config), "plan", "learn", "--sessions", str(pages)]
    assert main([*args, "--at", "2025-03-04T00:00"]) == 0
    assert "No departure habit yet" in capsys.readouterr().out
    assert main(["--config", str(config), "plan", "learn"]) == 1  # no database
    assert "evopt history fetch" in capsys.readouterr().err
