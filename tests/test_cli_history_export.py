"""`evopt history export`: columns, CSV and JSON, --from/--to, --site, --output, read back."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from optimizer.decisions.minutefile import MinuteFileError, read_minutes
from optimizer.decisions.minutes import COLUMNS, MinuteRow, PowerHistory
from optimizer.decisions.store import DecisionStore
from tests.cli_env import CliRunner

T0 = datetime(2025, 1, 14, 13, 0, tzinfo=UTC)  # 00:00 on 15 January in Melbourne


@dataclass
class Harness(CliRunner):
    config: Path
    capsys: pytest.CaptureFixture[str]


def row(minute: int, *, site_id: int = 7, pv: int | None = 1000) -> MinuteRow:
    return MinuteRow(
        site_id=site_id,
        minute=T0 + timedelta(minutes=minute),
        pv_w=pv,
        house_w=400 + minute,
        evse_w=0,
        battery_charge_w=None,
        battery_discharge_w=None,
        plugged=1,
        chargers={"202301000001": 0},
        source="gateway",
        age_s=3,
    )


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Harness:
    state = tmp_path / "state"
    config = tmp_path / "config.yaml"
    config.write_text(
        f"service:\n  state_dir: {state}\nsite:\n  timezone: Australia/Melbourne\n",
        encoding="utf-8",
    )
    with DecisionStore(state / "decisions.db") as store:
        history = PowerHistory(store)
        for minute in range(0, 3 * 1440, 30):  # three local days, every half hour
            history.record(row(minute, pv=None if minute == 60 else 1000))
        history.record(row(0, site_id=8))
    return Harness(config, capsys)


def test_csv_has_the_documented_columns_and_gaps_as_empty_fields(cli: Harness) -> None:
    code, out, _ = cli.run("history", "export", "--site", "7")
    assert code == 0
    table = list(csv.reader(io.StringIO(out)))
    assert tuple(table[0]) == COLUMNS
    assert len(table) - 1 == 3 * 48
    first = dict(zip(table[0], table[1], strict=True))
    assert first["minute"] == "2025-01-14T13:00:00Z"
    assert (first["pv_w"], first["house_w"], first["source"]) == ("1000", "400", "gateway")
    assert json.loads(first["chargers"]) == {"202301000001": 0}
    assert first["battery_charge_w"] == ""  # no reading, not zero
    gap = dict(zip(table[0], table[3], strict=True))
    assert gap["minute"] == "2025-01-14T14:00:00Z"
    assert gap["pv_w"] == ""
    docs = (Path(__file__).parents[1] / "docs" / "surplus.md").read_text(encoding="utf-8")
    assert all(f"`{column}`" in docs for column in COLUMNS)


def test_json_and_every_site_by_default(cli: Harness) -> None:
    rows = cli.json("history", "export")
    assert {r["site_id"] for r in rows} == {7, 8}
    assert list(rows[0]) == list(COLUMNS)
    assert rows[2]["pv_w"] is None
    code, out, _ = cli.run("history", "export", "--format", "json", "--site", "8")
    assert code == 0
    assert [r["site_id"] for r in json.loads(out)] == [8]


def test_from_and_to_are_local_days_or_times(cli: Harness) -> None:
    rows = cli.json(
        "history", "export", "--site", "7", "--from", "2025-01-16", "--to", "2025-01-16"
    )
    minutes = [r["minute"] for r in rows]
    assert minutes[0] == "2025-01-15T13:00:00Z"  # local midnight of the 16th
    assert minutes[-1] == "2025-01-16T12:30:00Z"
    assert len(minutes) == 48
    rows = cli.json(
        "history", "export", "--site", "7", "--from", "2025-01-15T01:00", "--to", "2025-01-15T02:00"
    )
    assert [r["minute"] for r in rows] == ["2025-01-14T14:00:00Z", "2025-01-14T14:30:00Z"]
    code, _, err = cli.run("history", "export", "--from", "2025-01-16", "--to", "2025-01-15")
    assert code == 2
    assert "--from" in err


def test_output_file_reads_back_as_the_same_rows(cli: Harness, tmp_path: Path) -> None:
    for fmt in ("csv", "json"):
        path = tmp_path / f"minutes.{fmt}"
        code, out, err = cli.run(
            "history", "export", "--site", "7", "--format", fmt, "--output", str(path)
        )
        assert code == 0
        assert out == ""
        assert f"{3 * 48} minute(s) written" in err
        back = read_minutes(path)
        assert back[0] == row(0)
        assert back[2] == row(60, pv=None)
        assert len(back) == 3 * 48


def test_a_broken_file_names_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    header = ",".join(COLUMNS)
    path.write_text(
        f"{header}\n7,2025-01-14T13:00:00Z,12x,400,0,,,1,,gateway,3\n", encoding="utf-8"
    )
    with pytest.raises(MinuteFileError, match=r"bad\.csv:2:3: pv_w: '12x' is not a whole"):
        read_minutes(path)
    path.write_text(f"{header}\n7,2025-01-14 13:00,1,400,0,,,1,,gateway,3\n", encoding="utf-8")
    with pytest.raises(MinuteFileError, match=r"bad\.csv:2:2: minute: .* is not a UTC time"):
        read_minutes(path)
    path.write_text('[{"site_id": 7, "minute": "2025-01-14T13:00:00Z", "pv_w": -5}]')
    with pytest.raises(MinuteFileError, match=r"row 1: pv_w: -5 is negative"):
        read_minutes(path)


def test_no_database_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"service:\n  state_dir: {tmp_path / 'none'}\n", encoding="utf-8")
    code, _, err = Harness(config, capsys).run("history", "export")
    assert code == 1
    assert "no decision log" in err


# --- evopt simulate on the recorded minutes ---------------------------------------------------


def step_day_rows(site_id: int = 7) -> list[MinuteRow]:
    """A recorded day: PV 0 -> 6 kW at 10:00 and back at 14:00, house 500 W, a car plugged in
    08:00-18:00 that drew 7.4 kW for 5 h 20 min (about 39 kWh)."""
    rows = []
    for minute in range(1440):
        plugged = 480 <= minute < 1080
        draw = 7360 if 480 <= minute < 800 else 0
        rows.append(
            MinuteRow(
                site_id=site_id,
                minute=datetime(2025, 1, 15, tzinfo=UTC) + timedelta(minutes=minute),
                pv_w=6000 if 600 <= minute < 840 else 0,
                house_w=500,
                evse_w=draw,
                battery_charge_w=None,
                battery_discharge_w=None,
                plugged=int(plugged),
                chargers={"202301000001": draw},
                source="gateway",
                age_s=3,
            )
        )
    return rows


@pytest.fixture
def recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Harness:
    state = tmp_path / "state"
    rules = Path(__file__).parents[1] / "rules" / "excess-solar.yaml"
    config = tmp_path / "config.yaml"
    config.write_text(
        f"service:\n  state_dir: {state}\nsite:\n  timezone: UTC\n  voltage: 230\n"
        f"rules: [{rules}]\n",
        encoding="utf-8",
    )
    with DecisionStore(state / "decisions.db") as store:
        history = PowerHistory(store)
        for item in step_day_rows():
            history.record(item)
    return Harness(config, capsys)


def test_simulate_replays_the_recorded_minutes_by_itself_with_both_sources(
    recorded: Harness, tmp_path: Path
) -> None:
    report = recorded.json("simulate", "--compare-sources", "--tick", "1")
    assert report["resolution"] == "1m"
    assert (report["minutes"], report["missing_minutes"]) == (1440, 0)
    gateway, cloud = report["sources"]["gateway"], report["sources"]["lifetime_energy"]
    assert gateway["sessions"] == cloud["sessions"] == 1
    assert gateway["ev_solar_kwh"] >= cloud["ev_solar_kwh"]
    assert gateway["ev_grid_kwh"] < cloud["ev_grid_kwh"]
    assert report["source"] == "gateway"
    assert report["ev_solar_kwh"] == gateway["ev_solar_kwh"]
    # The same figures from an exported file.
    path = tmp_path / "day.csv"
    assert recorded.run("history", "export", "--output", str(path))[0] == 0
    again = recorded.json("simulate", "--minutes", str(path), "--compare-sources", "--tick", "1")
    assert again["sources"] == report["sources"]
    code, out, _ = recorded.run("simulate", "--minutes", str(path), "--source", "gateway")
    assert code == 0
    assert "solar into the car" in out
    assert "lifetime_energy" not in out.splitlines()[1]
    # Departure plans are the 15-minute replay's: asking for some is an error, none is not.
    code, _, err = recorded.run("simulate", "--minutes", str(path), "--plans", "exact")
    assert code == 1
    assert "--plans replay 15-minute history" in err
    none = recorded.json("simulate", "--minutes", str(path), "--compare-sources", "--plans", "none")
    assert none["sources"] == report["sources"]


def test_simulate_without_minutes_says_how_to_get_them(cli: Harness, tmp_path: Path) -> None:
    config = tmp_path / "empty.yaml"
    config.write_text(f"service:\n  state_dir: {tmp_path / 'nothing'}\n", encoding="utf-8")
    code, _, err = Harness(config, cli.capsys).run("simulate", "--minutes")
    assert code == 1
    assert "no one-minute history" in err


def test_minutes_without_readings_leave_evopt_simulate_on_the_stored_buckets(
    recorded: Harness,
) -> None:
    """A service on the cloud's sources records the chargers only: nothing to replay by the
    minute, so `evopt simulate` goes on with what `evopt history fetch` stored."""
    with DecisionStore(recorded.config.parent / "state" / "decisions.db") as store:
        store.db.execute("UPDATE power_minutes SET pv_w = NULL, house_w = NULL")
    code, _, err = recorded.run("simulate", "--no-log")
    assert code == 1
    assert "history fetch" in err  # the 15-minute path's own message
    code, _, err = recorded.run("simulate", "--minutes")
    assert code == 1
    assert "no one-minute history" in err


def test_simulate_minutes_takes_local_days(recorded: Harness, tmp_path: Path) -> None:
    path = tmp_path / "day.json"
    assert recorded.run("history", "export", "--json", "--output", str(path))[0] == 0
    day = recorded.json(
        "simulate", "--minutes", str(path), "--from", "2025-01-15", "--to", "2025-01-15"
    )
    assert (day["minutes"], day["period"]["start"]) == (1440, "2025-01-15T00:00:00+00:00")
    code, _, err = recorded.run("simulate", "--minutes", str(path), "--from", "2025-02-01")
    assert code == 1
    assert "no one-minute history in the chosen period" in err
