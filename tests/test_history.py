"""`evopt history fetch` against the fake cloud, and `evopt simulate` on what it stored."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from optimizer.cli.history import Progress, windows
from optimizer.decisions.store import DecisionStore
from optimizer.enlighten.models import parse_session_history_page
from optimizer.observe.history import complete
from tests.cli_env import SITE_ID, Env

RULES = Path(__file__).parents[1] / "rules" / "excess-solar.yaml"
HISTORY = "/sessions/"
ENERGY = "/lifetime_energy"
PERIOD = ("--from", "2024-12-20", "--to", "2025-01-10")  # 22 days of the fake's 28
DAYS = 22


def fetch(env: Env, *more: str) -> dict[str, object]:
    code, out, err = env.run("history", "fetch", *PERIOD, *more, "--json")
    assert code == 0, err
    assert "history: " in err  # the progress line
    summary: dict[str, object] = json.loads(out)
    return summary


def stored(env: Env) -> DecisionStore:
    return DecisionStore(env.state_dir / "decisions.db")


def test_fetch_stores_energy_and_every_day_of_sessions(env: Env) -> None:
    summary = fetch(env)
    assert summary["days_stored"] == DAYS
    assert summary["days_fetched"] == DAYS
    assert summary["buckets"] > 0  # type: ignore[operator]
    assert summary["sessions"] > 0  # type: ignore[operator]
    history = env.cloud.requests(HISTORY, method="POST")
    assert len(env.cloud.requests(ENERGY)) == 1
    # A week per request window (plus pages): far fewer requests than days.
    params = [r.json["params"] for r in history]
    windows_sent = {(p["startDate"], p["endDate"]) for p in params}
    assert len(windows_sent) == 4
    assert summary["requests"] == len(env.cloud.log)
    with stored(env) as store:
        assert store.load_history_energy(SITE_ID) is not None
        (sn,) = {r.path.split("/")[-2] for r in history}
        days = store.history_session_days(SITE_ID, sn)
        assert sorted(days) == [date(2024, 12, 20 + n) for n in range(12)] + [
            date(2025, 1, n) for n in range(1, 11)
        ]
        pages = store.load_history_sessions(SITE_ID)
    assert all(page["data"]["hasMore"] is False for page in pages)
    assert sum(len(page["data"]["result"]) for page in pages) == summary["sessions"]


def test_a_second_fetch_resumes_and_sends_far_fewer_requests(env: Env) -> None:
    first = fetch(env)
    env.cloud.log.clear()
    second = fetch(env)
    assert second["days_already_stored"] == DAYS
    assert second["days_fetched"] == 0
    assert env.cloud.requests(HISTORY) == []  # every day was complete: nothing asked again
    assert len(env.cloud.requests(ENERGY)) == 1  # lifetime energy once per run
    assert len(env.cloud.log) < first["requests"]  # type: ignore[operator]
    assert second["sessions"] == first["sessions"]


def test_a_wider_period_fetches_only_the_new_days(env: Env) -> None:
    fetch(env)
    env.cloud.log.clear()
    code, out, err = env.run("history", "fetch", "--from", "2024-12-18", "--to", "2025-01-10")
    assert code == 0, err
    sent = {r.json["params"]["startDate"] for r in env.cloud.requests(HISTORY, method="POST")}
    assert sent == {"18-12-2024"}
    assert "days stored: 24 (2 fetched, 22 already stored)" in out


def test_a_session_still_going_at_a_fetch_is_stored_by_the_next(env: Env) -> None:
    """The cloud files a session under the day it began, once it has ended: a day fetched
    while a car plugged in on it still charges is fetched again. Before, the nightly fetch of a
    cron job at 03:00 lost every overnight session (its day counted as complete)."""
    cloud = env.cloud
    cloud.update_charger(plugged_in=True, charging=True)  # 13:00 on 15 January, Melbourne
    cloud.clock.advance(14 * 3600)  # 03:00 on the 16th, still plugged in
    period = ("--from", "2025-01-14", "--to", "2025-01-16", "--json")
    code, out, err = env.run("history", "fetch", *period)
    assert code == 0, err
    zone = ZoneInfo("Australia/Melbourne")
    with stored(env) as store:
        (sn,) = {r.path.split("/")[-2] for r in cloud.requests(HISTORY, method="POST")}
        days = store.history_session_days(SITE_ID, sn)
    assert complete(date(2025, 1, 14), days[date(2025, 1, 14)], zone)
    assert not complete(date(2025, 1, 15), days[date(2025, 1, 15)], zone)
    cloud.clock.advance(4 * 3600)  # 07:00: gone
    cloud.update_charger(plugged_in=False)
    cloud.log.clear()
    code, out, err = env.run("history", "fetch", *period)
    assert code == 0, err
    sent = {r.json["params"]["startDate"] for r in cloud.requests(HISTORY, method="POST")}
    assert sent == {"15-01-2025"}  # the 14th was complete, the 15th and 16th were not
    assert json.loads(out)["days_fetched"] == 2
    with stored(env) as store:
        pages = store.load_history_sessions(SITE_ID, start=date(2025, 1, 15))
    started = {s.started_at for page in pages for s in parse_session_history_page(page).sessions}
    assert datetime(2025, 1, 15, 2, tzinfo=UTC) in started, "the session begun at 13:00"


def test_from_after_to_is_a_usage_error(env: Env) -> None:
    code, out, err = env.run("history", "fetch", "--from", "2025-01-10", "--to", "2025-01-01")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "--from 2025-01-10 is after --to 2025-01-01" in err
    assert len(env.cloud.log) == 0


def test_the_request_budget_stops_the_fetch_and_the_next_run_continues(env: Env) -> None:
    summary = fetch(env, "--max-requests", "5")
    assert summary["days_left"] > 0  # type: ignore[operator]
    assert summary["days_fetched"] + summary["days_left"] == DAYS  # type: ignore[operator]
    env.cloud.log.clear()
    again = fetch(env)
    assert again["days_left"] == 0
    assert again["days_already_stored"] == summary["days_fetched"]
    assert again["days_stored"] == DAYS


def test_simulate_without_energy_replays_the_stored_history(env: Env) -> None:
    fetch(env)
    env.cloud.log.clear()
    (env.config.parent / "rules").mkdir()
    (env.config.parent / "rules" / "solar.yaml").write_text(RULES.read_text())
    code, out, err = env.run("simulate", "--json", "--no-log", *PERIOD)
    assert code == 0, err
    report = json.loads(out)
    assert {"period", "buckets", "ev_energy_kwh", "cost", "baselines"} <= set(report)
    assert report["buckets"] == DAYS * 96
    assert len(env.cloud.log) == 0  # simulate never talks to the cloud


def test_simulate_with_plans_auto_learns_from_the_stored_days_before_from(env: Env) -> None:
    """`plans: auto` in the config replays learned plans as `--plans learned` does, learning
    from the stored sessions before `--from` too (the service had by then)."""
    fetch(env)
    (env.config.parent / "rules").mkdir()
    (env.config.parent / "rules" / "solar.yaml").write_text(RULES.read_text())
    later = ("--from", "2025-01-01", "--to", "2025-01-10")
    code, out, err = env.run("simulate", "--json", "--no-log", "--plans", "learned", *later)
    assert code == 0, err
    asked = json.loads(out)
    env.config.write_text(env.config.read_text() + "plans: auto\n")
    code, out, err = env.run("simulate", "--json", "--no-log", *later)
    assert code == 0, err
    assert json.loads(out) == asked
    assert asked["departure_plans"]["learned"] is True


def test_simulate_without_stored_history_says_what_to_run(env: Env) -> None:
    code, out, err = env.run("simulate", "--json")
    assert code == 1
    assert out == ""
    assert "evopt history fetch" in err
    assert err.count("\n") == 1


def test_windows_cut_runs_of_days_into_weeks() -> None:
    days = [date(2025, 1, n) for n in (1, 2, 3, 5, *range(6, 16))]
    got = [(w[0].day, w[-1].day) for w in windows(days)]
    assert got == [(1, 3), (5, 11), (12, 15)]


class _Out(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


class _Counter:
    def totals(self) -> dict[str, int]:
        return {"history": 3}


class _Client:
    counter = _Counter()


def test_progress_rewrites_a_terminal_line_and_logs_every_ten_percent() -> None:
    tty = _Out(tty=True)
    progress = Progress(31, _Client(), out=tty)  # type: ignore[arg-type]
    progress.advance(12)
    progress.advance(1)
    progress.finish()
    assert tty.getvalue() == "\rhistory: 12/31 days, 3 requests\rhistory: 13/31 days, 3 requests\n"
    plain = _Out(tty=False)
    progress = Progress(100, _Client(), out=plain)  # type: ignore[arg-type]
    for _ in range(100):
        progress.advance(1)
    lines = plain.getvalue().splitlines()
    assert len(lines) == 11  # the first step, then one per 10 %
    assert lines[-1] == "history: 100/100 days, 3 requests"
