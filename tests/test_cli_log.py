"""`evopt log`, `evopt log show`, `evopt log stats` over a hand-built decision log.

The site is in Melbourne (UTC+11 in January) and the clock is pinned at 2025-01-15 12:00 UTC
(23:00 local), so day boundaries and `--since` spans have known answers.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from optimizer.cli import log as log_cli
from optimizer.cli import main
from optimizer.config import Config
from optimizer.decisions import review
from optimizer.decisions.store import DecisionStore, RunMode
from optimizer.engine.decision import Decision, Overruled
from tests.cli_env import CliRunner

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
MELBOURNE = "Australia/Melbourne"
INPUTS = {"surplus_w": 4200.0, "tariff": "peak", "charger": {"sn": "SN1", "amps": 16}}
SAFETY_REASON = "The charger reports a fault, so nothing is sent until it clears."
OVERRULED = Overruled("excess_solar", "set_amps", {"amps": 16}, "Surplus 4200 W allows 16 A.")


@dataclass(frozen=True)
class Row:
    utc: str
    policy: str
    action: str
    outcome: str
    charger: str = "SN1"
    params: dict[str, Any] | None = None
    commands: int = 0
    error: str | None = None
    dry: bool = False  # in the dry-run run rather than the live one
    reason: str = "Surplus 4200 W has been above the 3700 W start threshold for 5 min."
    overruled: tuple[Overruled, ...] = ()


# id = position + 1
ROWS = (
    Row(
        "2025-01-14T12:30:00",
        "excess_solar",
        "set_amps",
        "applied",
        params={"amps": 10},
        commands=2,
    ),
    Row(
        "2025-01-14T13:30:00",
        "excess_solar",
        "set_amps",
        "applied",
        params={"amps": 12},
        commands=1,
    ),
    Row("2025-01-15T02:00:00", "excess_solar", "hold", "noop"),
    Row("2025-01-15T03:00:00", "night", "stop", "rejected", "SN2", commands=1, error="HTTP 400"),
    Row("2025-01-15T04:00:00", "night", "start", "failed", "SN2", commands=1, error="timeout"),
    Row("2025-01-15T10:00:00", "excess_solar", "set_amps", "dry_run", params={"amps": 8}, dry=True),
    Row(
        "2025-01-15T11:30:00",
        "safety",
        "hold",
        "noop",
        reason=SAFETY_REASON,
        overruled=(OVERRULED,),
    ),
)


@dataclass
class LogEnv(CliRunner):
    config: Path
    db: Path
    live_run: str
    dry_run: str
    capsys: pytest.CaptureFixture[str]

    def ids(self, *args: str) -> list[int]:
        """Ids of every decision listed (``--all``: holds too)."""
        return [row["id"] for row in self.json("log", "--all", *args)]


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"service:\n  state_dir: {tmp_path / 'state'}\nsite:\n  timezone: Australia/Melbourne\n",
        encoding="utf-8",
    )
    return config


def fill(store: DecisionStore) -> tuple[str, str]:
    runs = {
        mode: store.start_run(
            mode=mode,
            site_id=1234567,
            config_hash="c",
            rules_hash="r",
            version="0.1.0",
            started_at=NOW - timedelta(days=2),
        )
        for mode in ("live", "dry_run")
    }
    for row in ROWS:
        mode: RunMode = "dry_run" if row.dry else "live"
        decision = Decision(
            policy=row.policy,
            charger_sn=row.charger,
            target="charging",
            action=row.action,  # type: ignore[arg-type]
            params=row.params or {},
            reason=row.reason,
            inputs=INPUTS,
            overruled=row.overruled,
        )
        store.record(
            decision,
            run_id=runs[mode],
            mode=mode,
            site_id=1234567,
            ts=datetime.fromisoformat(row.utc).replace(tzinfo=UTC),
            outcome=row.outcome,  # type: ignore[arg-type]
            error=row.error,
            commands=row.commands,
        )
    live = runs["live"]
    store.add_requests(live, hour=NOW - timedelta(hours=2), counts={"status": 3, "write": 1})
    store.add_requests(live, hour=NOW - timedelta(minutes=50), counts={"status": 2})
    store.add_requests(live, hour=NOW - timedelta(minutes=10), counts={"status": 3})
    return live, runs["dry_run"]


@pytest.fixture
def env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> LogEnv:
    monkeypatch.delenv("EVOPT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setattr(log_cli, "_now", lambda: NOW)
    config = write_config(tmp_path)
    db = tmp_path / "state" / "decisions.db"
    with DecisionStore(db) as store:
        live, dry = fill(store)
    return LogEnv(config, db, live, dry, capsys)


# --- listing and filters -------------------------------------------------------------------


def test_newest_first_with_every_column(env: LogEnv) -> None:
    rows = env.json("log", "--all")
    assert [r["id"] for r in rows] == [7, 6, 5, 4, 3, 2, 1]
    assert set(rows[0]) == set(review.COLUMNS)
    assert rows[0]["ts"] == "2025-01-15T11:30:00Z"
    assert rows[0]["inputs"] == INPUTS
    assert rows[0]["overruled"][0]["policy"] == "excess_solar"
    assert rows[1]["params"] == {"amps": 8}


@pytest.mark.parametrize(
    ("args", "ids"),
    [
        (("--charger", "SN2"), [5, 4]),
        (("--policy", "night"), [5, 4]),
        (("--action", "hold"), [7, 3]),
        (("--outcome", "failed"), [5]),
        (("--mode", "dry_run"), [6]),
        (("--charger", "SN1", "--outcome", "noop"), [7, 3]),
        (("--limit", "2"), [7, 6]),
        (("--limit", "0"), [7, 6, 5, 4, 3, 2, 1]),
    ],
)
def test_filters(env: LogEnv, args: tuple[str, ...], ids: list[int]) -> None:
    assert env.ids(*args) == ids


def test_run_filter_takes_an_id_or_its_first_characters(env: LogEnv) -> None:
    assert env.ids("--run", env.dry_run) == [6]
    assert env.ids("--run", env.dry_run[:8]) == [6]
    assert env.ids("--run", env.live_run[:8]) == [7, 5, 4, 3, 2, 1]


@pytest.mark.parametrize(
    ("args", "ids"),
    [
        (("--since", "2h"), [7, 6]),  # from 10:00 UTC, inclusive
        (("--since", "90m"), [7]),
        (("--since", "20h"), [7, 6, 5, 4, 3]),
        (("--since", "1d"), [7, 6, 5, 4, 3, 2, 1]),
        # Dates are the site's days: 2025-01-15 starts at 13:00 UTC on the 14th.
        (("--since", "2025-01-15"), [7, 6, 5, 4, 3, 2]),
        (("--until", "2025-01-14"), [1]),
        (("--since", "2025-01-15", "--until", "2025-01-15"), [7, 6, 5, 4, 3, 2]),
        (("--since", "2025-01-15T13:00", "--until", "2025-01-15T14:00"), [3]),
        (("--since", "2025-01-15T03:00Z"), [7, 6, 5, 4]),
        (("--since", "2025-01-15T14:00+11:00", "--until", "2025-01-15T15:00:00+11:00"), [4]),
    ],
)
def test_time_ranges(env: LogEnv, args: tuple[str, ...], ids: list[int]) -> None:
    assert env.ids(*args) == ids


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("2h", NOW - timedelta(hours=2)),
        ("1.5h", NOW - timedelta(minutes=90)),
        ("1d", NOW - timedelta(days=1)),
        ("2w", NOW - timedelta(days=14)),
        ("45s", NOW - timedelta(seconds=45)),
        ("2025-01-15", datetime(2025, 1, 14, 13, 0, tzinfo=UTC)),
        ("2025-01-15T10:00", datetime(2025, 1, 14, 23, 0, tzinfo=UTC)),
        ("2025-01-15 10:00", datetime(2025, 1, 14, 23, 0, tzinfo=UTC)),
        ("2025-01-15T10:00Z", datetime(2025, 1, 15, 10, 0, tzinfo=UTC)),
    ],
)
def test_since_parsing(text: str, expected: datetime) -> None:
    zone = log_cli.display_zone(Config.model_validate({"site": {"timezone": MELBOURNE}}))
    assert zone == ZoneInfo(MELBOURNE)
    assert log_cli.parse_when(text).resolve(now=NOW, tz=zone) == expected


def test_a_bare_date_as_until_means_the_end_of_that_day() -> None:
    when = log_cli.parse_when("2025-01-15")
    assert when.resolve(now=NOW, tz=UTC, end=True) == datetime(2025, 1, 16, tzinfo=UTC)
    assert when.resolve(now=NOW, tz=UTC) == datetime(2025, 1, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    "args",
    [
        ("--since", "yesterdy"),
        ("--since", "2h ago"),
        ("--since", "25:00"),
        ("--until", "2025-13-01"),
        ("--outcome", "ok"),
    ],
)
def test_bad_filters_are_usage_errors(env: LogEnv, args: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        env.run("log", *args)
    assert exit_info.value.code == 2
    assert args[0] in env.capsys.readouterr().err


def test_the_table_fits_the_terminal_and_reasons_wrap(
    env: LogEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    code, out, _ = env.run("log", "--all")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID", "TIME", "CHARGER", "POLICY", "ACTION", "PARAMS", "OUTCOME", "REASON",
    ]  # fmt: skip
    assert all(len(line) <= 120 for line in lines), out
    # Local times, short params, the error before the reason, the reason whole on two lines.
    assert lines[1].startswith("7   2025-01-15 22:30  SN1      safety")
    indent = lines[0].index("REASON")
    assert lines[2] == " " * indent + lines[2].strip()
    assert _reason_of(lines, 1) == SAFETY_REASON
    assert "amps=8" in lines[3]
    assert "[timeout] " in out
    assert "..." not in out


def _reason_of(lines: list[str], first: int) -> str:
    """The reason of the row on line ``first``, its wrapped lines joined again."""
    indent = lines[0].index("REASON")
    parts = [lines[first][indent:]]
    for line in lines[first + 1 :]:
        if line[:indent].strip():
            break
        parts.append(line[indent:])
    return " ".join(parts)


def _reasons_below(lines: list[str]) -> list[str]:
    """Each row's reason, on the lines below the row (indented by REASON_INDENT)."""
    reasons: list[list[str]] = []
    for line in lines[1:]:
        if line.startswith(" " * log_cli.REASON_INDENT):
            reasons[-1].append(line.strip())
        else:
            reasons.append([])
    return [" ".join(parts) for parts in reasons]


def test_at_80_columns_every_reason_is_whole(env: LogEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    _, out, _ = env.run("log", "--all")
    lines = out.splitlines()
    reasons = _reasons_below(lines)
    assert len(reasons) == len(ROWS)
    assert reasons[0] == SAFETY_REASON
    assert reasons[2] == "[timeout] " + ROWS[4].reason
    assert all(len(line) <= 80 for line in lines), out
    assert "..." not in out


def test_a_narrow_terminal_keeps_a_readable_reason_column(
    env: LogEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "20")
    _, out, _ = env.run("log", "--limit", "1")
    lines = out.splitlines()
    assert _reasons_below(lines) == [SAFETY_REASON]
    assert all(len(line.strip()) <= log_cli.MIN_REASON_WIDTH for line in lines[2:])


def test_a_wide_terminal_shows_whole_reasons(env: LogEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    _, out, _ = env.run("log", "--limit", "1")
    assert out.splitlines()[1].endswith(SAFETY_REASON)
    assert len(out.splitlines()) == 2


def test_no_match_says_so(env: LogEnv) -> None:
    code, out, err = env.run("log", "--since", "2025-01-15T23:59")
    assert (code, out) == (0, "")
    assert "no decisions match (only changes are listed; --all shows holds too)" in err


def test_csv_has_every_column_as_stored(env: LogEnv) -> None:
    code, out, _ = env.run("log", "--csv", "--charger", "SN2")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == list(review.COLUMNS)
    assert [r["id"] for r in rows] == ["5", "4"]
    assert rows[0]["ts"] == "2025-01-15T04:00:00Z"
    assert rows[0]["error"] == "timeout"
    assert json.loads(rows[0]["inputs"]) == INPUTS
    assert json.loads(rows[0]["overruled"]) == []


def test_json_and_csv_exclude_each_other(env: LogEnv) -> None:
    with pytest.raises(SystemExit):
        env.run("log", "--json", "--csv")


def test_help_offers_json(env: LogEnv) -> None:
    with pytest.raises(SystemExit) as exit_info:
        env.run("log", "--help")
    assert exit_info.value.code == 0
    assert "--json" in env.capsys.readouterr().out


def test_the_docs_show_every_option(env: LogEnv) -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "decision-log.md").read_text(
        encoding="utf-8"
    )
    for args in (("log",), ("log", "show", "1"), ("log", "stats")):
        with pytest.raises(SystemExit):
            env.run(*args, "--help")
        options = set(re.findall(r"(--[a-z][a-z-]+)", env.capsys.readouterr().out))
        for option in options - {"--help", "--config", "--log-level"}:
            assert option in text, option


def test_a_missing_database_is_one_line_and_exit_1(
    env: LogEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "elsewhere" / "decisions.db"
    env.config.write_text(f"service:\n  database: {missing}\n", encoding="utf-8")
    for args in (("log",), ("log", "show", "1"), ("log", "stats")):
        code, out, err = env.run(*args)
        assert (code, out) == (1, "")
        assert err.count("\n") == 1
        assert err.startswith(f"evopt: no decision log at {missing}")
    assert not missing.parent.exists()


# --- show ----------------------------------------------------------------------------------


def test_show_explains_one_decision(env: LogEnv) -> None:
    code, out, _ = env.run("log", "show", "7")
    assert code == 0
    assert out.startswith("decision 7 at 2025-01-15 22:30:00 Australia/Melbourne")
    assert "(2025-01-15T11:30:00Z)" in out.splitlines()[0]
    assert "  policy   safety (target charging)\n" in out
    assert "  action   hold {}\n" in out
    assert "  outcome  noop, 0 commands sent\n" in out
    assert f"reason\n  {SAFETY_REASON}\n" in out
    assert '    "surplus_w": 4200.0,\n' in out  # the inputs, pretty
    assert 'overruled\n  - excess_solar: set_amps {"amps": 16}\n' in out
    assert "    Surplus 4200 W allows 16 A.\n" in out


def test_show_prints_the_error(env: LogEnv) -> None:
    _, out, _ = env.run("log", "show", "4")
    assert "  outcome  rejected, 1 command sent\n  error    HTTP 400\n" in out
    assert "overruled\n  (none)\n" in out


def test_show_json(env: LogEnv) -> None:
    data = env.json("log", "show", "7")
    assert data["id"] == 7
    assert data["overruled"] == [
        {
            "policy": "excess_solar",
            "action": "set_amps",
            "params": {"amps": 16},
            "reason": "Surplus 4200 W allows 16 A.",
        }
    ]
    assert data["inputs"] == INPUTS


def test_show_takes_the_config_after_the_action(env: LogEnv) -> None:
    code = main(["log", "show", "1", "--config", str(env.config), "--json"])
    assert code == 0
    assert json.loads(env.capsys.readouterr().out)["id"] == 1


def test_show_of_an_unknown_id_is_exit_1(env: LogEnv) -> None:
    code, _, err = env.run("log", "show", "99")
    assert code == 1
    assert "no decision 99" in err


# --- stats ---------------------------------------------------------------------------------

ZERO = {"decisions": 0, "commands": 0, "applied": 0, "noop": 0, "dry_run": 0, "rejected": 0}


def counts(**values: int) -> dict[str, int]:
    return {**ZERO, "failed": 0, **values}


def test_stats_per_site_day_and_mode(env: LogEnv) -> None:
    data = env.json("log", "stats")
    assert data["timezone"] == "Australia/Melbourne"
    days = {(d["day"], d["mode"]): d for d in data["days"]}
    assert list(days) == [
        ("2025-01-14", "live"),
        ("2025-01-15", "dry_run"),
        ("2025-01-15", "live"),
    ]
    first = days["2025-01-14", "live"]
    assert {k: first[k] for k in counts()} == counts(decisions=1, commands=2, applied=1)
    assert first["policies"] == {"excess_solar": counts(decisions=1, commands=2, applied=1)}
    live = days["2025-01-15", "live"]
    assert {k: live[k] for k in counts()} == counts(
        decisions=5, commands=3, applied=1, noop=2, rejected=1, failed=1
    )
    assert live["policies"] == {
        "excess_solar": counts(decisions=2, commands=1, applied=1, noop=1),
        "night": counts(decisions=2, commands=2, rejected=1, failed=1),
        "safety": counts(decisions=1, noop=1),
    }
    assert days["2025-01-15", "dry_run"]["dry_run"] == 1


def test_stats_counts_requests_per_family(env: LogEnv) -> None:
    data = env.json("log", "stats")
    assert data["requests"] == [
        {"family": "status", "total": 8, "hours": 2, "per_hour": 4.0, "peak_hour": 5},
        {"family": "write", "total": 1, "hours": 2, "per_hour": 0.5, "peak_hour": 1},
    ]
    # The last hour: the hour in progress (11:00 UTC) overlaps it.
    recent = env.json("log", "stats", "--since", "1h")["requests"]
    assert recent == [{"family": "status", "total": 5, "hours": 1, "per_hour": 5.0, "peak_hour": 5}]


def test_stats_filters(env: LogEnv) -> None:
    days = env.json("log", "stats", "--policy", "night")["days"]
    assert [(d["day"], d["decisions"]) for d in days] == [("2025-01-15", 2)]
    # A filter given before `stats` applies too.
    days = env.json("log", "--mode", "dry_run", "stats")["days"]
    assert [(d["mode"], d["decisions"]) for d in days] == [("dry_run", 1)]


def test_stats_per_utc_day(env: LogEnv) -> None:
    with DecisionStore.open_readonly(env.db) as store:
        days = review.stats(store, mode="live")
    assert [(d.day.isoformat(), d.decisions) for d in days] == [
        ("2025-01-14", 2),
        ("2025-01-15", 4),
    ]


def test_stats_table(env: LogEnv) -> None:
    code, out, _ = env.run("log", "stats")
    assert code == 0
    assert "decisions per day (Australia/Melbourne)\n" in out
    assert out.splitlines()[1].split() == [
        "DAY", "MODE", "DECISIONS", "COMMANDS", "APPLIED", "NOOP", "DRY_RUN", "REJECTED", "FAILED",
    ]  # fmt: skip
    assert "2025-01-15  live     5          3         1        2" in out
    assert "\nper policy\n" in out
    assert "\nrequests per endpoint family\n" in out
    assert "status  8      2      4.0       5" in out


def test_stats_of_an_empty_range(env: LogEnv) -> None:
    code, out, _ = env.run("log", "stats", "--since", "2030-01-01")
    assert code == 0
    assert "no decisions in this range" in out
    assert "none counted in this range" in out


def test_stats_csv(env: LogEnv) -> None:
    code, out, _ = env.run("log", "stats", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["day", "mode", "policy", *review.COUNT_NAMES]
    live = [r for r in rows if (r["day"], r["mode"]) == ("2025-01-15", "live")]
    assert [(r["policy"], r["decisions"]) for r in live] == [
        ("*", "5"),
        ("excess_solar", "2"),
        ("night", "2"),
        ("safety", "1"),
    ]


def test_the_log_can_be_read_while_the_service_has_it_open(env: LogEnv) -> None:
    with DecisionStore(env.db) as writer:
        writer.save_state("memory", {"version": 1}, updated_at=NOW)
        assert len(env.json("log", "--all")) == len(ROWS)
