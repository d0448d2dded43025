"""Issue 15 item 5: commands per session in the report, and `--compare` ranking rule files
beside the optimum on a history whose ranking is known."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from optimizer.cli import main
from optimizer.limits import Limits
from optimizer.simulate.report import build_report
from optimizer.simulate.series import BUCKET, Session, SiteSeries, figures

T0 = datetime(2025, 6, 2, tzinfo=UTC)  # a Monday; the site is on UTC
LIMITS = Limits(6, 32, 1)
RULES = Path(__file__).parents[1] / "rules"


def _hours(h: float) -> datetime:
    return T0 + timedelta(hours=h)


def _series(pv: list[float], sessions: tuple[Session, ...]) -> SiteSeries:
    n = len(pv)
    return SiteSeries(
        starts=tuple(T0 + i * BUCKET for i in range(n)),
        pv_kwh=tuple(pv),
        house_kwh=(0.1,) * n,
        missing=(False,) * n,
        import_price=(0.3,) * n,
        export_price=0.05,
        timezone="UTC",
        sessions=sessions,
    )


# --- commands per session ----------------------------------------------------------------------


def test_commands_per_session_divides_by_the_sessions_covered() -> None:
    sessions = (Session(T0, _hours(2), 3.0), Session(_hours(4), _hours(6), 2.0))
    series = _series([0.0] * 32, sessions)
    got = figures(series, [0.0] * 32, commands=5)
    assert got.sessions == 2
    assert got.commands_per_session == pytest.approx(2.5)
    assert got.to_json()["commands_per_session"] == 2.5
    assert got.to_json()["sessions"] == 2
    # Per day, only the sessions ending in those buckets count.
    first = figures(series, [0.0] * 32, commands=3, indices=range(0, 12))
    assert (first.sessions, first.commands_per_session) == (1, 3.0)
    none = figures(_series([0.0] * 8, ()), [0.0] * 8, commands=4)
    assert none.commands_per_session is None
    assert none.to_json()["commands_per_session"] is None


def test_the_report_shows_commands_per_session_for_the_policy_and_each_baseline() -> None:
    # Three sessions at night: the immediate baseline starts and stops each (2 per session).
    sessions = tuple(Session(_hours(24 * d), _hours(24 * d + 6), 10.0) for d in range(3))
    series = _series([0.0] * (96 * 3), sessions)
    report = build_report(series, (0.0,) * (96 * 3), commands=9, limits=LIMITS, voltage_v=230.0)
    data = report.to_json()
    assert data["commands_per_session"] == 3.0
    assert data["sessions"] == 3
    immediate = data["baselines"]["immediate"]
    assert immediate["commands"] == 6
    assert immediate["commands_per_session"] == 2.0
    optimal = data["baselines"]["optimal"]
    assert optimal["commands_per_session"] == pytest.approx(optimal["commands"] / 3, abs=0.001)
    row = next(line for line in report.to_text().splitlines() if line.startswith("commands per"))
    assert row.split()[3:] == ["3.00", "2.00", f"{optimal['commands'] / 3:.2f}"]
    # The existing rows are still there, unchanged in name, the new one after "commands".
    labels = [line[:22].strip() for line in report.to_text().splitlines()]
    at = labels.index("commands")
    assert labels[at + 1] == "commands per session"
    assert {"EV energy kWh", "unmet kWh", "unmet sessions"} <= set(labels)


# --- --compare: a history whose ranking is known --------------------------------------------


def _energy_payload(pv_wh: list[float]) -> dict[str, Any]:
    n = len(pv_wh)
    return {
        "system_id": 1,
        "start_date": T0.date().isoformat(),
        "last_report_date": int((T0 + n * BUCKET).timestamp()),
        "production": pv_wh,
        "consumption": [100.0] * n,
        "evse": [0.0] * n,
    }


@pytest.fixture
def sunny(tmp_path: Path) -> dict[str, Path]:
    """Two sunny days (8 kW from 08:00 to 16:00), a car plugged from 06:00 to 18:00 each day
    wanting 10 kWh; a tariff window over the whole day so a window rule charges at once."""
    pv = [2000.0 if 32 <= i % 96 < 64 else 0.0 for i in range(96 * 2)]
    energy = tmp_path / "energy.json"
    energy.write_text(json.dumps(_energy_payload(pv)))
    result = [
        {
            "id": str(day),
            "startTime": _hours(24 * day + 6).isoformat(),
            "endTime": _hours(24 * day + 18).isoformat(),
            "aggEnergyValue": 10.0,
        }
        for day in range(2)
    ]
    sessions = tmp_path / "sessions.json"
    sessions.write_text(json.dumps({"data": {"result": result, "hasMore": False}}))
    config = tmp_path / "config.yaml"
    config.write_text(
        "site:\n  timezone: UTC\n  voltage: 230\n  max_current: 32\n"
        "tariffs:\n  import_price: 0.3\n  export_price: 0.05\n  currency: AUD\n"
        "  windows:\n    all_day:\n      price: 0.3\n      times: 00:00-24:00\n"
        f"service:\n  database: {tmp_path / 'decisions.db'}\n"
        "rules: []\n"
    )
    solar = tmp_path / "solar.yaml"
    solar.write_text((RULES / "excess-solar.yaml").read_text())
    at_once = tmp_path / "at-once.yaml"
    at_once.write_text(
        "policies:\n  - name: at-once\n    kind: tariff_window\n    priority: 60\n"
        "    windows: [all_day]\n    amps: 32\n    solar_first: false\n"
    )
    never = tmp_path / "never.yaml"  # a threshold no roof reaches: the car is left short
    never.write_text(
        (RULES / "excess-solar.yaml")
        .read_text()
        .replace("start_threshold_w: 1400", "start_threshold_w: 50000")
    )
    return {
        "config": config,
        "energy": energy,
        "sessions": sessions,
        "solar": solar,
        "at_once": at_once,
        "never": never,
    }


def _compare(site: dict[str, Path], *files: Path, json_out: bool = True) -> None:
    args = ["--config", str(site["config"]), "simulate", "--energy", str(site["energy"])]
    args += ["--sessions", str(site["sessions"]), "--compare", *map(str, files)]
    assert main([*args, *(["--json"] if json_out else [])]) == 0


def test_compare_ranks_unmet_first_then_solar_beside_the_optimum(
    sunny: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _compare(sunny, sunny["never"], sunny["at_once"], sunny["solar"])
    out = json.loads(capsys.readouterr().out)
    ranking = out["ranking"]
    names = [Path(row["rules"]).stem for row in ranking]
    # The solar rule meets the need from the sun; charging at once meets it from the grid at
    # 06:00; the threshold no roof reaches leaves the car short, so it is last however cheap.
    assert names == ["solar", "at-once", "never"]
    assert [row["rank"] for row in ranking] == [1, 2, 3]
    solar, at_once, never = ranking
    assert solar["unmet_kwh"] < 0.05
    assert at_once["unmet_kwh"] < 0.05
    assert never["unmet_kwh"] == pytest.approx(20.0, abs=0.01)
    assert solar["ev_solar_kwh"] > at_once["ev_solar_kwh"]
    assert never["cost"] < at_once["cost"]  # cheaper, and still last: it left the car short
    best = out["optimal"]
    assert best["unmet_kwh"] < 0.05
    assert best["ev_solar_kwh"] == pytest.approx(20.0, abs=0.05)  # all of it from the sun
    assert best["pct_of_optimal_solar"] == 1.0
    for row in ranking:
        assert row["ev_solar_kwh"] <= best["ev_solar_kwh"] + 1e-6
        assert row["pct_of_optimal_solar"] == pytest.approx(
            row["ev_solar_kwh"] / best["ev_solar_kwh"], abs=1e-4
        )
        assert row["sessions"] == 2
        assert row["commands_per_session"] == pytest.approx(row["commands"] / 2, abs=1e-3)
        assert 0 <= row["solar_share"] <= 1


def test_compare_text_puts_the_optimum_above_the_ranked_files(
    sunny: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _compare(sunny, sunny["at_once"], sunny["solar"], json_out=False)
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header[:2] == ["#", "rules"]
    assert header[-4:] == ["share", "%", "opt", "cmds/ses"]
    assert lines[1].split()[:3] == ["-", "optimal", "(perfect"]
    assert lines[1].split()[-2] == "100%"
    assert lines[2].split()[:2] == ["1", str(sunny["solar"])]
    assert lines[3].split()[:2] == ["2", str(sunny["at_once"])]


def test_a_file_of_disabled_alternatives_is_compared_as_if_enabled(
    sunny: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """An alternative shipped disabled (as rules/min-solar.yaml is) is compared as it would run
    once enabled, and stderr says so; a file with one policy enabled stays as it is."""
    rules = yaml.safe_load(sunny["solar"].read_text(encoding="utf-8"))
    for policy in rules["policies"]:
        policy["enabled"] = False
    disabled = sunny["solar"].with_name("disabled.yaml")
    disabled.write_text(yaml.safe_dump(rules), encoding="utf-8")
    _compare(sunny, disabled, sunny["solar"])
    captured = capsys.readouterr()
    ranking = {Path(row["rules"]).stem: row for row in json.loads(captured.out)["ranking"]}
    assert ranking["disabled"]["ev_energy_kwh"] == ranking["solar"]["ev_energy_kwh"] > 0
    assert f"{disabled}: every policy is disabled; compared with them enabled" in captured.err
    assert str(sunny["solar"]) not in captured.err
