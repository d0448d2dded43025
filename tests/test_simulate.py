"""The simulator: series arithmetic, replay on hand-made histories, report, CLI and plot."""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest

from optimizer.cli import main
from optimizer.config import Config
from optimizer.decisions import migrations
from optimizer.decisions.store import DecisionStore
from optimizer.engine.decision import Decision
from optimizer.engine.loader import load_rules
from optimizer.enlighten.errors import ParseError
from optimizer.enlighten.models import parse_lifetime_energy, parse_session_history_page
from optimizer.limits import Limits
from optimizer.simulate.plot import draw_replay
from optimizer.simulate.plotkit import MISSING_LABEL
from optimizer.simulate.replay import replay
from optimizer.simulate.sample import TIMEZONE as SAMPLE_TIMEZONE
from optimizer.simulate.sample import sample_paths
from optimizer.simulate.series import BUCKET, Session, SiteSeries, figures, series_from_history
from optimizer.tariffs import Tariffs

T0 = datetime(2024, 1, 15, tzinfo=UTC)
RULES = Path(__file__).parents[1] / "rules" / "excess-solar.yaml"
LIMITS = Limits(6, 32, 1)


def make_series(
    pv: list[float],
    house: list[float],
    sessions: tuple[Session, ...] = (),
    *,
    missing: list[bool] | None = None,
    price: float = 0.3,
) -> SiteSeries:
    n = len(pv)
    return SiteSeries(
        starts=tuple(T0 + i * BUCKET for i in range(n)),
        pv_kwh=tuple(pv),
        house_kwh=tuple(house),
        missing=tuple(missing or [False] * n),
        import_price=(price,) * n,
        export_price=0.05,
        timezone="UTC",
        sessions=sessions,
    )


def hours(h: float) -> datetime:
    return T0 + timedelta(hours=h)


def run(series: SiteSeries) -> tuple[float, ...]:
    policies = load_rules([RULES], tariffs=None).enabled
    return replay(series, policies, config=Config(), limits=LIMITS, voltage_v=230.0).ev_kwh


# --- series and figures --------------------------------------------------------------------------


def test_figures_arithmetic() -> None:
    series = make_series([1.0, 1.0, 0.0, 0.0], [0.2, 0.2, 0.5, 0.5], (Session(T0, hours(1), 3.0),))
    got = figures(series, [0.5, 1.0, 0.5, 0.0], commands=3)
    assert got.ev_energy_kwh == pytest.approx(2.0)
    assert got.ev_solar_kwh == pytest.approx(0.5 + 0.8)
    assert got.solar_share == pytest.approx(1.3 / 2.0)
    assert got.grid_import_kwh == pytest.approx(0.2 + 1.0 + 0.5)
    assert got.grid_export_kwh == pytest.approx(0.3)
    assert got.cost == pytest.approx(1.7 * 0.3 - 0.3 * 0.05)
    assert got.unmet_kwh == pytest.approx(1.0)
    assert got.commands == 3
    assert set(got.to_json()) >= {"ev_energy_kwh", "solar_share", "cost", "commands"}


def test_window_and_fraction_count_partial_buckets() -> None:
    series = make_series([0.0] * 8, [0.0] * 8, (Session(hours(0.1), hours(0.6), 1.0),))
    session = series.sessions[0]
    assert list(series.window(session)) == [0, 1, 2]
    assert series.fraction(0, session) == pytest.approx(0.6)
    assert series.fraction(1, session) == pytest.approx(1.0)
    assert series.fraction(2, session) == pytest.approx(0.4)
    assert series.plugged(1) == session
    assert series.plugged(5) is None


def _energy_payload(days: int, *, nulls: range = range(0)) -> dict[str, Any]:
    n = 96 * days
    pv = [3000.0 * max(0.0, 1 - abs((i % 96) - 48) / 24) / 4 for i in range(n)]
    production: list[float | None] = list(pv)
    for i in nulls:
        production[i] = None
    return {
        "system_id": 1,
        "start_date": "2024-01-15",
        "last_report_date": int((T0 + timedelta(days=days)).timestamp()),
        "production": production,
        "consumption": [100.0] * n,
        "evse": [0.0] * n,
    }


def _sessions_payload(*spans: tuple[float, float | None, float | None]) -> dict[str, Any]:
    result = [
        {
            "id": str(n),
            "startTime": hours(start).isoformat(),
            "endTime": hours(end).isoformat() if end is not None else None,
            "aggEnergyValue": kwh,
        }
        for n, (start, end, kwh) in enumerate(spans)
    ]
    return {"data": {"result": result, "hasMore": False}}


def test_series_from_history_flags_missing_and_merges_sessions() -> None:
    energy = parse_lifetime_energy(_energy_payload(2, nulls=range(96, 192)), timezone="UTC")
    pages = parse_session_history_page(
        _sessions_payload((8, 12, 5.0), (11, 14, 2.0), (30, None, None))
    )
    series = series_from_history(energy, pages.sessions, tariffs=Tariffs(), timezone="UTC")
    assert len(series.starts) == 192
    assert sum(series.missing) == 96
    assert series.house_kwh[0] == pytest.approx(0.1)
    assert series.sessions[0] == Session(hours(8), hours(14), 7.0)
    assert series.sessions[1] == Session(hours(30), hours(42), 0.0)  # open: +12 h


def test_daily_buckets_are_refused() -> None:
    energy = parse_lifetime_energy(
        {"start_date": "2024-01-15", "production": [1.0, 2.0]}, timezone="UTC", interval="day"
    )
    with pytest.raises(ParseError, match="15-minute"):
        series_from_history(energy, [], tariffs=Tariffs(), timezone="UTC")


# --- replay -----------------------------------------------------------------------------------


def test_flat_surplus_charges_from_solar_only() -> None:
    n = 48
    series = make_series([2.0] * n, [0.1] * n, (Session(hours(1), hours(10), 10.0),))
    ev = run(series)
    got = figures(series, ev, commands=0)
    assert got.ev_energy_kwh == pytest.approx(10.0)
    assert got.ev_solar_kwh == pytest.approx(10.0)
    assert got.grid_import_kwh == pytest.approx(0.0)
    assert got.unmet_kwh == pytest.approx(0.0)


def test_cloud_passing_stops_then_resumes() -> None:
    pv = [2.0] * 16 + [0.0] * 8 + [2.0] * 16
    series = make_series(pv, [0.1] * 40, (Session(T0, hours(10), 40.0),))
    ev = run(series)
    assert sum(ev[:16]) > 0
    assert sum(ev[19:24]) == 0  # stopped under the cloud (after the report lag and delays)
    assert sum(ev[28:]) > 0  # and started again


def test_session_longer_than_the_sun_leaves_unmet() -> None:
    pv = [0.0] * 8 + [1.0] * 8 + [0.0] * 32
    series = make_series(pv, [0.1] * 48, (Session(T0, hours(12), 30.0),))
    ev = run(series)
    got = figures(series, ev, commands=0)
    assert 0 < got.ev_energy_kwh < 30
    assert got.unmet_kwh == pytest.approx(30 - got.ev_energy_kwh)
    assert all(e == 0 for e in ev[20:])  # no charging after sunset


def test_missing_buckets_are_skipped_not_zero() -> None:
    missing = [False] * 8 + [True] * 8 + [False] * 8
    series = make_series([2.0] * 24, [0.1] * 24, missing=missing)
    got = figures(series, [0.0] * 24, commands=0)
    assert got.grid_export_kwh == pytest.approx(16 * 1.9)


# --- CLI -----------------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "solar.yaml").write_text(RULES.read_text())
    config = tmp_path / "config.yaml"
    config.write_text(
        "site:\n  timezone: UTC\n  voltage: 230\n"
        "tariffs:\n  import_price: 0.3\n  export_price: 0.05\n  currency: AUD\n"
        f"service:\n  database: {tmp_path / 'decisions.db'}\n"
        "rules:\n  - rules/*.yaml\n"
    )
    energy = tmp_path / "energy.json"
    energy.write_text(json.dumps(_energy_payload(2, nulls=range(100, 104))))
    sessions = tmp_path / "sessions.json"
    sessions.write_text(json.dumps(_sessions_payload((8, 16, 8.0), (32, 40, 50.0))))
    return {"config": config, "energy": energy, "sessions": sessions, "dir": tmp_path}


def _args(site: dict[str, Path], *more: str) -> list[str]:
    return [
        "--config",
        str(site["config"]),
        "simulate",
        "--energy",
        str(site["energy"]),
        "--sessions",
        str(site["sessions"]),
        *more,
    ]


def test_cli_json_keys_and_logged_decisions(
    site: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_args(site, "--json")) == 0
    report = json.loads(capsys.readouterr().out)
    keys = {"period", "buckets", "missing_buckets", "ev_energy_kwh", "ev_solar_kwh"}
    keys |= {"solar_share", "unmet_kwh", "grid_import_kwh", "cost", "commands", "baselines"}
    assert keys <= set(report)
    assert set(report["period"]) == {"start", "end"}
    assert report["buckets"] == 192
    assert report["missing_buckets"] == 4
    assert set(report["baselines"]) == {"immediate", "optimal"}
    assert report["unmet_kwh"] > 0  # the second session wants more than the sun gives
    # Simulations log to their own file, never the live decision log (issue 12).
    assert not (site["dir"] / "decisions.db").exists()
    db = sqlite3.connect(site["dir"] / "simulations.db")
    modes = {row[0] for row in db.execute("SELECT DISTINCT mode FROM decisions")}
    runs = db.execute("SELECT mode, name FROM runs WHERE run_id = ?", [report["run_id"]]).fetchall()
    assert modes == {"simulation"}
    assert runs == [("simulation", "default")]


def test_cli_plot_writes_png(site: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    png = site["dir"] / "day.png"
    assert main(_args(site, "--plot", str(png), "--no-log")) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "solar" in capsys.readouterr().out


def test_cli_bad_file_is_one_line(
    site: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    site["energy"].write_text("{not json")
    assert main(_args(site)) == 1
    err = capsys.readouterr().err
    assert str(site["energy"]) in err
    assert "Traceback" not in err


def test_cli_compare_ranks_rule_files(
    site: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    other = site["dir"] / "other.yaml"
    other.write_text(
        RULES.read_text().replace("start_threshold_w: 1400", "start_threshold_w: 2500")
    )
    rules = site["dir"] / "rules" / "solar.yaml"
    assert main(_args(site, "--compare", str(rules), str(other), "--json")) == 0
    ranking = json.loads(capsys.readouterr().out)["ranking"]
    assert [row["rank"] for row in ranking] == [1, 2]
    assert ranking[0]["ev_solar_kwh"] >= ranking[1]["ev_solar_kwh"]


def test_a_battery_setting_is_sent_once_not_every_tick(tmp_path: Path) -> None:
    """The simulated charger keeps what it was told, as a real one does."""
    rules = tmp_path / "battery.yaml"
    rules.write_text(
        "policies:\n  - name: spare-battery\n    kind: battery_use\n    use_battery: false\n"
    )
    n = 96
    series = make_series([1.0] * n, [0.2] * n)
    result = replay(
        series,
        load_rules([rules], tariffs=None).enabled,
        config=Config(),
        limits=LIMITS,
        voltage_v=230.0,
    )
    assert result.by_action.get("set_battery") == 1
    assert result.commands == 1


# --- the simulation log --------------------------------------------------------------------


def _live_log(path: Path) -> int:
    """A live decision log with one applied decision; returns its row count."""
    with DecisionStore(path) as store:
        run_id = store.start_run(
            mode="live",
            site_id=None,
            config_hash="c",
            rules_hash="r",
            version="0",
            started_at=T0,
        )
        store.record(
            Decision(
                policy="solar",
                charger_sn="EV1",
                target="charging",
                action="start",
                params={},
                reason="sun",
                inputs={},
            ),
            run_id=run_id,
            mode="live",
            site_id=None,
            ts=T0,
            outcome="applied",
        )
        return int(store.db.table("decisions").count)


def _counts(path: Path) -> tuple[int, int]:
    db = sqlite3.connect(path)
    try:
        decisions = db.execute("SELECT count(*) FROM decisions").fetchone()[0]
        runs = db.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        db.close()
    return int(decisions), int(runs)


def test_simulate_leaves_the_live_log_untouched(
    site: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    live = site["dir"] / "decisions.db"
    before = _live_log(live)
    snapshot = sqlite3.connect(live).execute("SELECT * FROM decisions").fetchall()
    assert main(_args(site)) == 0
    assert "simulations.db as 'default'" in capsys.readouterr().out
    assert sqlite3.connect(live).execute("SELECT * FROM decisions").fetchall() == snapshot
    assert _counts(live) == (before, 1)
    simulated = site["dir"] / "simulations.db"
    assert simulated.stat().st_mode & 0o777 == 0o600
    assert _counts(simulated)[0] > 0


def test_a_rerun_of_the_same_name_replaces_the_last(
    site: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    simulated = site["dir"] / "simulations.db"
    assert main(_args(site)) == 0
    once = _counts(simulated)
    assert once[1] == 1
    assert main(_args(site)) == 0
    assert _counts(simulated) == once  # replaced, not doubled
    assert main(_args(site, "--name", "other")) == 0
    assert _counts(simulated) == (2 * once[0], 2)
    assert main(_args(site, "--no-log")) == 0
    assert _counts(simulated) == (2 * once[0], 2)
    capsys.readouterr()


def test_a_config_with_learned_plans_replays_them_unless_told_otherwise(
    site: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`plans: auto` makes the service plan each plug-in from its habits, so a replay without
    `--plans` replays the plans it would learn (and says so); `--plans none` replays without,
    and `plans: manual` (the default) means none."""
    hint = "departure plans learned as the service would (the config's `plans: auto`)"

    def plans(*extra: str) -> Any:
        assert main(_args(site, "--no-log", "--json", *extra)) == 0
        return json.loads(capsys.readouterr().out)["departure_plans"]

    manual = plans()
    assert main(_args(site, "--no-log")) == 0
    assert hint not in capsys.readouterr().out
    config = site["config"]
    config.write_text(config.read_text() + "plans: auto\n")
    auto = plans()
    assert auto["learned"] is True
    assert auto == plans("--plans", "learned")
    assert plans("--plans", "none") == manual
    assert main(_args(site, "--no-log")) == 0
    assert hint in capsys.readouterr().out
    for given in ("--plans", "--plans=learned", "--plans=none"):
        assert main(_args(site, "--no-log", given)) == 0
        assert hint not in capsys.readouterr().out


def test_log_reads_the_simulation_log_on_request(
    site: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_args(site, "--json")) == 0
    first = json.loads(capsys.readouterr().out)["run_id"]
    assert main(_args(site, "--name", "other", "--json")) == 0
    other = json.loads(capsys.readouterr().out)["run_id"]
    config = ["--config", str(site["config"])]

    def runs(*args: str) -> set[str]:
        assert main([*config, "log", *args, "--limit", "0", "--json"]) == 0
        return {row["run_id"] for row in json.loads(capsys.readouterr().out)}

    assert runs("--simulation") == {first, other}
    assert runs("--simulation", "other") == {other}
    assert runs("--simulation=default") == {first}
    # The live log was never created by a simulation.
    assert main([*config, "log"]) == 1
    assert "no decision log" in capsys.readouterr().err
    assert main([*config, "log", "--simulation", "defualt"]) == 1
    err = capsys.readouterr().err
    assert "no simulation named 'defualt'" in err
    assert "did you mean 'default'" in err
    assert main([*config, "log", "--simulation", "stats"]) == 1
    assert "evopt log stats --simulation" in capsys.readouterr().err
    assert main([*config, "log", "stats", "--simulation", "--json"]) == 0
    days = json.loads(capsys.readouterr().out)["days"]
    assert {day["mode"] for day in days} == {"simulation"}


def test_the_migration_drops_old_simulations_from_the_live_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "decisions.db"
    shipped = list(migrations.MIGRATIONS)
    # A log as versions before the simulation log wrote it: live and simulated rows mixed.
    monkeypatch.setattr(migrations, "MIGRATIONS", shipped[:2])
    with DecisionStore(path) as old:
        for mode in ("live", "simulation"):
            run_id = old.db.execute(
                "INSERT INTO runs (run_id, started_at, mode, config_hash, rules_hash, version)"
                " VALUES (?, '2025-01-01T00:00:00Z', ?, 'c', 'r', '0') RETURNING run_id",
                [f"run-{mode}", mode],
            ).fetchone()[0]
            rows = [
                {
                    "ts": f"2025-01-01T{n // 60:02d}:{n % 60:02d}:00Z",
                    "run_id": run_id,
                    "mode": mode,
                    "policy": "p",
                    "action": "hold",
                    "reason": "r",
                    "outcome": "noop",
                    "inputs": "x" * 4000,  # a year of simulation: most of the file
                }
                for n in range(3 if mode == "live" else 600)
            ]
            old.db.table("decisions").insert_all(rows)
    size = path.stat().st_size
    monkeypatch.setattr(migrations, "MIGRATIONS", shipped)
    with caplog.at_level("WARNING"), DecisionStore(path) as store:
        modes = store.db.execute("SELECT mode, count(*) FROM decisions GROUP BY mode").fetchall()
        runs = [row["mode"] for row in store.db.table("runs").rows]
    assert modes == [("live", 3)]
    assert runs == ["live"]
    assert "removed 600 simulated decisions" in caplog.text
    assert "reproduces them" in caplog.text
    assert path.stat().st_size < size / 4  # the space is given back


# --- --sample and --sessions PATH... ---------------------------------------------------------


def _report(*args: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main([*args, "--no-log", "--json"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    report.pop("run_id")
    return report


def test_sample_replays_the_bundled_year_without_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    # No site.timezone: the sample's own (America/New_York) places its days.
    config.write_text(f"rules:\n  - {RULES}\n")
    week = ["--from", "2025-01-06", "--to", "2025-01-12"]
    sample = _report("--config", str(config), "simulate", "--sample", *week, capsys=capsys)
    assert sample["buckets"] == 7 * 96
    assert sample["period"]["start"] == "2025-01-06T05:00:00+00:00"  # local midnight in NY
    assert sample["baselines"]["immediate"]["ev_energy_kwh"] > 0  # its sessions are in it
    energy, pages = sample_paths()
    files = ["--energy", str(energy), "--sessions", *map(str, pages)]
    zoned = tmp_path / "zoned.yaml"
    zoned.write_text(f"site:\n  timezone: {SAMPLE_TIMEZONE}\nrules:\n  - {RULES}\n")
    by_hand = _report("--config", str(zoned), "simulate", *files, *week, capsys=capsys)
    assert sample == by_hand


def test_sample_refuses_other_history(
    site: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_args(site, "--sample")) == 1
    err = capsys.readouterr().err
    assert "--sample replays the bundled history" in err
    assert "Traceback" not in err


@pytest.fixture
def pages(site: dict[str, Path]) -> Path:
    """The site's two sessions as two pages in a directory of their own."""
    folder = site["dir"] / "hist"
    folder.mkdir()
    (folder / "sessions-1.json").write_text(json.dumps(_sessions_payload((8, 16, 8.0))))
    (folder / "sessions-2.json").write_text(json.dumps(_sessions_payload((32, 40, 50.0))))
    (folder / "notes.txt").write_text("not a page")
    return folder


def test_sessions_take_a_directory_a_glob_or_several_files(
    site: dict[str, Path], pages: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--config", str(site["config"]), "simulate", "--energy", str(site["energy"])]
    one, two = str(pages / "sessions-1.json"), str(pages / "sessions-2.json")
    reference = _report(*base, "--sessions", str(site["sessions"]), capsys=capsys)
    assert reference["unmet_kwh"] > 0  # both sessions are in it
    for sessions in (
        ["--sessions", str(pages)],
        ["--sessions", str(pages / "sessions-*.json")],
        ["--sessions", one, two],
        ["--sessions", one, "--sessions", two],
        ["--sessions", str(pages / "sessions-?.json"), one],  # a page named twice counts once
    ):
        assert _report(*base, *sessions, capsys=capsys) == reference, sessions
    assert _report(*base, "--sessions", one, capsys=capsys) != reference


def test_a_glob_or_directory_without_pages_is_an_error_naming_it(
    site: dict[str, Path], pages: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--config", str(site["config"]), "simulate", "--energy", str(site["energy"])]
    pattern = str(pages / "session-*.json")
    assert main([*base, "--sessions", pattern]) == 1
    err = capsys.readouterr().err
    assert f"--sessions '{pattern}': no file matches" in err
    empty = site["dir"] / "empty"
    empty.mkdir()
    assert main([*base, "--sessions", str(empty)]) == 1
    assert f"--sessions {empty}: a directory without *.json files" in capsys.readouterr().err


# --- unmet energy and cost per kWh ---------------------------------------------------------


def test_ev_cost_is_what_the_charging_adds_to_the_bill() -> None:
    # Two buckets of 1 kWh solar, no house: the car takes 2 kWh in the first, nothing after.
    series = make_series([1.0, 1.0], [0.0, 0.0], (Session(hours(0), hours(0.5), 3.0),))
    f = figures(series, (2.0, 0.0), commands=1)
    # Without the car: 1 kWh exported (-0.05). With it: 1 kWh imported (0.30).
    assert f.ev_cost == pytest.approx(0.30 + 0.05)
    assert f.cost_per_kwh == pytest.approx(0.35 / 2)
    assert (f.unmet_kwh, f.unmet_sessions) == (pytest.approx(1.0), 1)
    assert f.leaves_unmet
    nothing = figures(series, (0.0, 0.0), commands=0)
    assert nothing.cost_per_kwh is None
    assert nothing.to_json()["cost_per_kwh"] is None
    assert nothing.unmet_sessions == 1


def test_the_report_says_plainly_when_the_policy_leaves_energy_unmet(
    site: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_args(site, "--no-log", "--json")) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["unmet_sessions"] == 1  # the 50 kWh session; the 8 kWh one is met
    per_kwh = report["ev_cost"] / report["ev_energy_kwh"]
    assert report["cost_per_kwh"] == pytest.approx(per_kwh, abs=1e-4)
    for baseline in report["baselines"].values():
        assert baseline["unmet_sessions"] == 0
        assert baseline["cost_per_kwh"] > 0
    unmet = report["unmet_kwh"]
    expected = (
        f"the policy left {unmet:.1f} kWh unmet over 1 session: its cost is not comparable "
        "with the baselines'"
    )
    assert report["notes"][0].startswith(expected)
    assert main(_args(site, "--no-log")) == 0
    text = capsys.readouterr().out
    assert expected in text
    assert "per kWh to EV (AUD)" in text


def test_compare_ranks_a_run_that_leaves_cars_short_last(
    site: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    solar = site["dir"] / "rules" / "solar.yaml"  # more solar into the car, but leaves 40 kWh
    full = site["dir"] / "full.yaml"
    full.write_text(
        "policies:\n  - name: always-32\n    kind: excess_solar\n    variant: min_pv\n"
        "    min_amps: 32\n    max_amps: 32\n"
    )
    assert main(_args(site, "--compare", str(solar), str(full), "--json")) == 0
    ranking = json.loads(capsys.readouterr().out)["ranking"]
    assert [row["rules"] for row in ranking] == [str(full), str(solar)]
    assert ranking[1]["ev_solar_kwh"] > ranking[0]["ev_solar_kwh"]
    assert ranking[1]["unmet_sessions"] == 1
    assert ranking[0]["cost_per_kwh"] > ranking[1]["cost_per_kwh"]
    assert main(_args(site, "--compare", str(solar), str(full))) == 0
    out = capsys.readouterr().out
    assert f"{solar} left {ranking[1]['unmet_kwh']:.1f} kWh unmet over 1 session" in out


# --- the plot ----------------------------------------------------------------------------


def _plotted_day() -> Any:
    """A day with three prices in four stretches, a gap at 10:00 and no sun at night."""
    prices = [0.1] * 28 + [0.3] * 32 + [0.5] * 24 + [0.1] * 12
    pv = [1.0 if 28 <= i < 72 else 0.0 for i in range(96)]
    missing = [40 <= i < 44 for i in range(96)]
    series = SiteSeries(
        starts=tuple(T0 + i * BUCKET for i in range(96)),
        pv_kwh=tuple(0.0 if gap else v for v, gap in zip(pv, missing, strict=True)),
        house_kwh=(0.1,) * 96,
        missing=tuple(missing),
        import_price=tuple(prices),
        export_price=0.05,
        timezone="UTC",
        sessions=(Session(hours(8), hours(16), 10.0),),
    )
    policies = load_rules([RULES], tariffs=None).enabled
    result = replay(series, policies, config=Config(), limits=LIMITS, voltage_v=230.0)
    return draw_replay(series, result, day=T0.date(), currency="AUD")


def test_the_plot_legend_holds_the_amps_and_one_entry_per_price() -> None:
    fig = _plotted_day()
    try:
        ax = fig.axes[0]
        labels = [text.get_text() for text in ax.get_legend().get_texts()]
        assert "amps (A)" in labels
        assert [x for x in labels if x.startswith("import price")] == [
            "import price AUD 0.1",
            "import price AUD 0.3",
            "import price AUD 0.5",
        ]
        bands = [p for p in ax.patches if p.get_alpha() == pytest.approx(0.18)]
        assert len(bands) == 4  # four contiguous stretches, not one stripe per bucket
        assert len({p.get_facecolor() for p in bands}) == 3  # three prices, three colours
        assert labels.count(MISSING_LABEL) == 1
    finally:
        plt.close(fig)


def test_the_plot_draws_missing_data_as_gaps_and_zero_as_zero() -> None:
    fig = _plotted_day()
    try:
        lines = {line.get_label(): line.get_ydata() for line in fig.axes[0].get_lines()}
        pv = list(lines["PV kW"])
        assert all(math.isnan(v) for v in pv[40:44])  # the gap
        assert pv[0] == 0.0  # night: a real zero, drawn as one
        assert pv[30] == pytest.approx(4.0)
        amps = list(fig.axes[1].get_lines()[0].get_ydata())
        assert all(math.isnan(v) for v in amps[40:44])
        assert not any(math.isnan(v) for v in amps[:40])
    finally:
        plt.close(fig)
