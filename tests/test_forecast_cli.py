"""`evopt forecast`, the forecast's config keys, and pvlib kept out of every start-up import."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from optimizer.cli import forecast as forecast_cli
from optimizer.cli import main
from optimizer.config import load_config
from optimizer.simulate.sample import sample_config_path, sample_paths
from optimizer.yamlpos import YamlFileError
from tests.fake_forecast_solar import FakeForecastSolar, in_thread


def test_cli_service_and_config_never_import_pvlib() -> None:
    """Issue 16 wants a fast `evopt --help`: pvlib loads only when a forecast is made. (pandas
    is loaded at start-up already, by a dependency, before and apart from the forecast.)"""
    code = (
        "import sys, optimizer.cli, optimizer.config, optimizer.service, optimizer.plans; "
        "from optimizer.cli import build_parser; build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pvlib'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def _forecast(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    energy, _ = sample_paths()
    code = main(["--config", str(sample_config_path()), "forecast", "--energy", str(energy), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_forecast_on_the_sample(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _forecast(["--at", "2025-06-20T09:00", "--hours", "24"], capsys)
    assert code == 0
    assert "Panels: tilt" in out
    assert "learned" in out
    assert "PV_P50_KW" in out
    code, out, _ = _forecast(["--at", "2025-06-20T09:00", "--hours", "24", "--json"], capsys)
    shown = json.loads(out)
    assert len(shown["steps"]) == 96
    assert shown["orientation"]["source"] == "learned"
    assert 170 <= shown["orientation"]["azimuth_deg"] <= 190  # the sample faces south
    p10, p50, p90 = (shown["pv_kwh"][q] for q in ("p10", "p50", "p90"))
    assert 0 < p10 <= p50 <= p90
    assert shown["steps"][0]["start"] == "2025-06-20T13:00:00+00:00"


def test_cli_forecast_errors_name_what_to_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _forecast(["--hours", "72"], capsys)
    assert code == 1
    assert "--hours 72" in err
    config = tmp_path / "config.yaml"
    config.write_text(f"service:\n  state_dir: {tmp_path}\n", encoding="utf-8")
    assert main(["--config", str(config), "forecast"]) == 1
    assert "site.latitude" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("forecast:\n  azimuth: 180\n", "forecast.azimuth is set but forecast.tilt is not"),
        ("forecast:\n  peak_w: 5000\n", "forecast.peak_w needs forecast.tilt"),
        ("forecast:\n  tilt: 95\n  azimuth: 180\n", "forecast.tilt: must be at most 90"),
        ("habits:\n  energy_quantile: 0.3\n", "habits.energy_quantile"),
        ("plans: always\n", "plans: must be 'manual' or 'auto'"),
        ("forecast:\n  online:\n    refresh: 5m\n", "forecast.online.refresh must be at least"),
        ("forecast:\n  online:\n    api_key: x\n", "unknown key 'api_key' in 'forecast.online'"),
    ],
)
def test_bad_forecast_and_plan_keys_are_named(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(YamlFileError) as caught:
        load_config(path)
    assert expected in str(caught.value)


def test_each_site_has_its_own_panels(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "sites:\n"
        "  - enlighten: {site_id: 1}\n"
        "    forecast: {tilt: 30, azimuth: 180}\n"
        "  - enlighten: {site_id: 2}\n",
        encoding="utf-8",
    )
    first, second = load_config(path).site_configs()
    assert (first.forecast.tilt, second.forecast.tilt) == (30, None)


def test_cli_forecast_with_the_online_forecast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--online` asks Forecast.Solar (the fake) and says whose sun the forecast counts on;
    without it the reply kept on disk serves, with no request; without `forecast.online`,
    `--online` is an error that names the key."""
    monkeypatch.setenv("EVOPT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(forecast_cli, "_wall_now", lambda: datetime(2025, 6, 20, 13, tzinfo=UTC))
    at = "2025-06-20T09:00"
    code, _, err = _forecast(["--at", at, "--online"], capsys)
    assert code == 1
    assert "--online needs forecast.online" in err
    with in_thread(FakeForecastSolar(date(2025, 6, 20))) as fake:
        data = yaml.safe_load(sample_config_path().read_text(encoding="utf-8"))
        data.setdefault("forecast", {})["online"] = {"base_url": fake.base_url}
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(data), encoding="utf-8")
        energy, _ = sample_paths()
        args = ["--config", str(config), "forecast", "--energy", str(energy), "--at", at]
        assert main([*args, "--hours", "24"]) == 0
        assert "Sun: the learned clear-sky index" in capsys.readouterr().out
        assert fake.requests == []
        assert main([*args, "--hours", "24", "--online"]) == 0
        assert "Sun: Forecast.Solar, fetched 2025-06-20 13:00 UTC" in capsys.readouterr().out
        assert len(fake.requests) == 1
        assert main([*args, "--json"]) == 0  # the kept reply, no request
        shown = json.loads(capsys.readouterr().out)
        assert shown["source"].startswith("Forecast.Solar")
        assert len(fake.requests) == 1
        # a forecast made at another time than now is not asked for (nor kept as now's)
        earlier = [*args[:-1], "2025-06-19T09:00", "--online"]
        assert main(earlier) == 1
        assert "--online asks for the forecast from now" in capsys.readouterr().err
        assert len(fake.requests) == 1


@pytest.mark.parametrize(("given", "on"), [("true", True), ("false", False), ("{}", True)])
def test_the_online_forecast_reads_as_a_switch_too(tmp_path: Path, given: str, on: bool) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"forecast:\n  online: {given}\n", encoding="utf-8")
    online = load_config(config).forecast.online
    assert (online is not None) is on
    if online is not None:
        assert online.refresh.total_seconds() == 3600
