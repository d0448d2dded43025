"""`evopt forecast`, the forecast's config keys, and pvlib kept out of every start-up import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from optimizer.cli import main
from optimizer.config import load_config
from optimizer.simulate.sample import sample_config_path, sample_paths
from optimizer.yamlpos import YamlFileError


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
