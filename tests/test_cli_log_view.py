"""`evopt log` as a person reads it: changes by default, `--all`, user overrides, time forms
(`12:05`, `yesterday`) and did-you-mean on filter values.

The site is in Melbourne (UTC+11 in December). The log is one evening of one charger: the
solar policy holds, starts, holds again; the night policy takes control; the user stops the
car in the app; the service fails a start. The clock is pinned per test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimizer.cli import log as log_cli
from optimizer.decisions import review
from optimizer.decisions.store import DecisionStore
from optimizer.engine.decision import OVERRIDE, Decision
from tests.cli_env import CliRunner

SN = "SN1"
# 2026-12-05 in Melbourne: local = UTC + 11 h.
LOCAL = timedelta(hours=11)
SOLAR_HOLD = "surplus 0.9 kW is below the 1.4 kW start threshold: waiting"


@dataclass(frozen=True)
class Row:
    local: str  # site time, "HH:MM" on 2026-12-05 (or "yesterday HH:MM")
    policy: str
    action: str
    outcome: str = "noop"
    target: str = "charging"
    reason: str = SOLAR_HOLD
    commands: int = 0

    @property
    def utc(self) -> datetime:
        day, _, clock = self.local.rpartition(" ")
        base = datetime(2026, 12, 4 if day == "yesterday" else 5, tzinfo=UTC)
        hours, minutes = (int(part) for part in clock.split(":"))
        return base + timedelta(hours=hours, minutes=minutes) - LOCAL


# id = position + 1
ROWS = (
    Row("yesterday 18:00", "excess_solar", "hold"),  # 1: first row: who is in control
    Row("yesterday 18:01", "excess_solar", "hold"),  # 2: the same hold again
    Row("11:55", "excess_solar", "hold"),  # 3
    Row("12:00", "excess_solar", "start", "applied", commands=1, reason="surplus 2 kW: start"),
    Row("12:01", "excess_solar", "hold", reason="charging at 8 A on the surplus"),  # 5
    Row("12:02", "excess_solar", "hold", target="mode", reason="mode already MANUAL"),  # 6
    Row("12:05", "night", "hold", reason="in off_peak: keep charging"),  # 7: night takes over
    Row("12:06", "night", "hold", reason="in off_peak: keep charging"),  # 8
    Row("12:10", OVERRIDE, "stop", reason="the car was stopped in the app"),  # 9: the user
    Row("12:11", OVERRIDE, "hold", reason="a user's stop is respected until 13:10"),  # 10: same
    Row("12:12", OVERRIDE, "hold", reason="a user's stop is respected until 13:10"),  # 11
    Row("13:10", "night", "start", "failed", commands=1, reason="in off_peak: start"),  # 12
    Row("13:11", "night", "hold", reason="in off_peak: keep charging"),  # 13
)
CHANGES = [12, 9, 7, 6, 4, 1]


@dataclass
class ViewEnv(CliRunner):
    config: Path
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    def at(self, local: str) -> None:
        """Pin the clock at site time ``local`` on 2026-12-05 (or "2026-12-06 00:30")."""
        when = datetime.fromisoformat(local if " " in local else f"2026-12-05 {local}")
        self.monkeypatch.setattr(log_cli, "_now", lambda: when.replace(tzinfo=UTC) - LOCAL)

    def ids(self, *args: str) -> list[int]:
        return [row["id"] for row in self.json("log", "--limit", "0", *args)]


def fill(store: DecisionStore) -> None:
    run = store.start_run(
        mode="live",
        site_id=1,
        config_hash="c",
        rules_hash="r",
        version="test",
        started_at=ROWS[0].utc,
    )
    for row in ROWS:
        decision = Decision(
            policy=row.policy,
            charger_sn=SN,
            target=row.target,  # type: ignore[arg-type]
            action=row.action,  # type: ignore[arg-type]
            params={},
            reason=row.reason,
            inputs={},
        )
        store.record(
            decision,
            run_id=run,
            mode="live",
            site_id=1,
            ts=row.utc,
            outcome=row.outcome,  # type: ignore[arg-type]
            commands=row.commands,
        )


@pytest.fixture
def env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> ViewEnv:
    monkeypatch.delenv("EVOPT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "120")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "house.yaml").write_text(
        "policies:\n"
        "  - name: excess_solar\n    kind: excess_solar\n"
        "  - name: night\n    kind: tariff_window\n    windows: [off_peak]\n"
        "  - name: holiday_topup\n    kind: tariff_window\n    windows: [off_peak]\n",
        encoding="utf-8",
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        f"service:\n  state_dir: {tmp_path / 'state'}\nsite:\n  timezone: Australia/Melbourne\n"
        "tariffs:\n  windows:\n    off_peak: {price: 0.18, times: '23:00-07:00'}\n"
        "rules: [rules/*.yaml]\n",
        encoding="utf-8",
    )
    with DecisionStore(tmp_path / "state" / "decisions.db") as store:
        fill(store)
    view = ViewEnv(config, capsys, monkeypatch)
    view.at("14:00")
    return view


# --- changes by default --------------------------------------------------------------------


def test_the_default_view_shows_changes_and_hides_repeated_holds(env: ViewEnv) -> None:
    assert env.ids() == CHANGES


def test_all_shows_every_row(env: ViewEnv) -> None:
    assert env.ids("--all") == list(range(len(ROWS), 0, -1))


def test_a_change_of_the_policy_in_control_shows(env: ViewEnv) -> None:
    shown = {row["id"]: row for row in env.json("log")}
    assert shown[7]["policy"] == "night"
    assert shown[7]["action"] == "hold"
    assert 8 not in shown  # night again: no change


def test_a_change_is_judged_against_the_row_before_the_range(env: ViewEnv) -> None:
    # 12:06 is night after night at 12:05: not a change, even as the first row of a range.
    assert env.ids("--since", "12:06", "--until", "12:10") == []
    assert env.ids("--since", "12:05", "--until", "12:10") == [7]


def test_policy_and_action_filters_apply_to_the_changes(env: ViewEnv) -> None:
    assert env.ids("--policy", "night") == [12, 7]
    assert env.ids("--action", "hold") == [13, 11, 10, 8, 7, 6, 5, 3, 2, 1]  # holds: all


def test_the_newest_changes_are_found_however_far_back(env: ViewEnv) -> None:
    env.at("2027-03-01 12:00")  # months later: the look-back widens until it finds them
    assert env.ids() == CHANGES
    assert [row["id"] for row in env.json("log", "--limit", "2")] == CHANGES[:2]


def test_a_user_override_reads_as_the_users_own_action(env: ViewEnv) -> None:
    code, out, _ = env.run("log", "--since", "12:10", "--until", "12:11")
    assert code == 0
    [row] = out.splitlines()[1:]
    assert row.split()[4:7] == [OVERRIDE, "user", "stop"]
    assert "the car was stopped in the app" in row


# --- times ---------------------------------------------------------------------------------


def test_since_a_time_of_day(env: ViewEnv) -> None:
    assert env.ids("--all", "--since", "12:05", "--until", "12:10") == [8, 7]


def test_since_a_time_of_day_just_after_midnight_means_yesterday(env: ViewEnv) -> None:
    env.at("2026-12-06 00:30")  # 12:05 today is still to come: yesterday's 12:05
    assert env.ids("--all", "--since", "12:05", "--until", "12:10") == [8, 7]
    env.at("2026-12-06 12:30")  # now today's 12:05 has passed: nothing yet
    assert env.ids("--all", "--since", "12:05") == []


def test_yesterday_and_today(env: ViewEnv) -> None:
    assert env.ids("--all", "--since", "yesterday", "--until", "yesterday") == [2, 1]
    assert env.ids("--all", "--since", "today") == list(range(len(ROWS), 2, -1))


@pytest.mark.parametrize(
    ("text", "local"),
    [
        ("90m", "2026-12-05 12:30"),
        ("2h", "2026-12-05 12:00"),
        ("3d", "2026-12-02 14:00"),
        ("2026-12-05 12:05", "2026-12-05 12:05"),
        ("2026-12-05T12:05", "2026-12-05 12:05"),
        ("2026-12-05", "2026-12-05 00:00"),
        ("yesterday", "2026-12-04 00:00"),
        ("today", "2026-12-05 00:00"),
        ("12:05", "2026-12-05 12:05"),
        ("14:30", "2026-12-04 14:30"),
        ("9:15:30", "2026-12-05 09:15:30"),
    ],
)
def test_every_time_form(text: str, local: str) -> None:
    now = datetime(2026, 12, 5, 14, 0, tzinfo=UTC) - LOCAL
    zone = ZoneInfo("Australia/Melbourne")
    got = log_cli.parse_when(text).resolve(now=now, tz=zone)
    assert got == datetime.fromisoformat(local).replace(tzinfo=zone).astimezone(UTC)


@given(
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    now=st.datetimes(datetime(2000, 1, 1), datetime(2099, 1, 1), timezones=st.just(UTC)),
)
def test_a_time_of_day_is_always_the_last_one_that_has_passed(
    hour: int, minute: int, now: datetime
) -> None:
    zone = ZoneInfo("Australia/Melbourne")
    at = log_cli.parse_when(f"{hour}:{minute:02d}").resolve(now=now, tz=zone)
    assert at <= now
    assert now - at < timedelta(days=1, hours=1)  # a DST day is 25 h long
    local = at.astimezone(zone)
    if (local.hour, local.minute) != (hour, minute):  # only in a DST gap (02:00-03:00)
        wall = datetime.combine(local.date(), time(hour, minute), tzinfo=zone)
        assert wall.astimezone(UTC).astimezone(zone).time() != wall.time()


@pytest.mark.parametrize("text", ["yesterdy", "12:60", "24:00", "12h30", "noon"])
def test_a_bad_time_names_the_valid_forms(env: ViewEnv, text: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        env.run("log", "--since", text)
    assert exit_info.value.code == 2
    err = env.capsys.readouterr().err
    assert f"'{text}' is not a time" in err
    assert "12:05" in err
    assert "yesterday" in err


# --- did you mean --------------------------------------------------------------------------


def test_a_mistyped_policy_suggests_the_known_one(env: ViewEnv) -> None:
    code, out, err = env.run("log", "--policy", "exces_solar")
    assert (code, out) == (1, "")
    assert "no policy named 'exces_solar' in the log or the rules" in err
    assert "did you mean 'excess_solar'?" in err
    assert f"known: excess_solar, holiday_topup, night, {OVERRIDE}" in err
    assert "no decisions match" not in err


def test_stats_refuse_a_mistyped_policy_too(env: ViewEnv) -> None:
    code, _, err = env.run("log", "stats", "--policy", "nigth")
    assert code == 1
    assert "did you mean 'night'?" in err


def test_a_policy_of_the_rules_that_has_not_decided_yet(env: ViewEnv) -> None:
    code, out, err = env.run("log", "--policy", "holiday_topup")
    assert (code, out) == (0, "")
    assert "policy 'holiday_topup' (in the rules) has not decided anything yet" in err


def test_a_mistyped_charger_suggests_the_known_one(env: ViewEnv) -> None:
    code, _, err = env.run("log", "--charger", "SN")
    assert code == 1
    assert "no charger 'SN' in the log (did you mean 'SN1'?)" in err.replace(";", "")
    assert f"known: {SN}" in err


def test_a_valid_action_the_log_lacks_is_said(env: ViewEnv) -> None:
    code, _, err = env.run("log", "--action", "set_battery")
    assert code == 0
    assert "no action 'set_battery' in the log (it has hold, start, stop)" in err


@pytest.mark.parametrize(
    ("option", "typo", "meant"),
    [("--action", "hodl", "hold"), ("--outcome", "aplied", "applied"), ("--mode", "dry", "")],
)
def test_a_mistyped_choice_suggests_the_valid_one(
    env: ViewEnv, option: str, typo: str, meant: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        env.run("log", option, typo)
    assert exit_info.value.code == 2
    err = env.capsys.readouterr().err
    assert f"'{typo}'" in err
    assert (f"did you mean '{meant}'?" in err) == bool(meant)
    assert "valid: " in err


def test_the_changes_query_reads_indexes_not_the_whole_table(env: ViewEnv, tmp_path: Path) -> None:
    with DecisionStore.open_readonly(tmp_path / "state" / "decisions.db") as store:
        plan = " | ".join(review.explain_changes(store, since=ROWS[3].utc))
    assert "USING COVERING INDEX idx_decisions_changes" in plan
    assert "SCAN decisions" not in plan.replace("SCAN decisions USING", "")
