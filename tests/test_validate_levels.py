"""`evopt validate` checks levels against the site limit and the chargers' own limits, and
every warning has a code that silences it where it arises (a policy, or the whole config)."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimizer.cli import main
from optimizer.config import load_config
from optimizer.enlighten.chargerlimits import (
    CHARGER_LIMITS_FILE,
    ChargerLimit,
    read_charger_limits,
)
from optimizer.fakecloud import FakeCloud, run_in_thread
from optimizer.fakecloud.model import Charger
from optimizer.levelcheck import LevelBounds, check_level
from optimizer.service.setup import load_setup
from optimizer.warncodes import WARNING_CODES
from tests.cli_env import EMAIL, PASSWORD, SITE_ID

CONFIG = """\
site:
  timezone: Australia/Melbourne
  max_current: 32
service:
  state_dir: state
tariffs:
  windows:
    night: {price: 0.15, times: 00:00-06:00}
rules: [rules/*.yaml]
"""
SOLAR_48 = """\
policies:
  - name: solar
    kind: excess_solar
    min_amps: 6
    max_amps: 48
"""
TWO_AT_50 = """\
policies:
  - name: a
    kind: charge_mode
    mode: manual
  - name: b
    kind: charge_mode
    mode: green
"""
ONE = ChargerLimit("EV1", 6, 16, "Garage")
TWO = ChargerLimit("EV2", 8, 32)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVOPT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--config", "config.yaml", "validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def setup(tmp_path: Path, rule: str, config: str = CONFIG) -> None:
    write(tmp_path / "config.yaml", config)
    write(tmp_path / "rules" / "solar.yaml", rule)


# --- the site limit --------------------------------------------------------------------------


def test_a_level_above_the_site_limit_is_an_error_naming_both_places(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup(tmp_path, SOLAR_48)
    code, out, err = validate(capsys)
    assert (code, out) == (1, "")
    assert err == (
        "rules/solar.yaml:5:5: max_amps 48 is above site.max_current 32 (config.yaml:3:3); "
        "the engine would never send more than 32 A\n"
    )


def test_start_amps_above_the_site_limit_is_an_error_in_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup(tmp_path, SOLAR_48.replace("48", "32"), CONFIG + "charger:\n  start_amps: 40\n")
    code, _, err = validate(capsys)
    assert code == 1
    assert err.startswith("config.yaml:11:3: charger.start_amps 40 is above site.max_current 32")


def test_levels_within_the_site_limit_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup(tmp_path, SOLAR_48.replace("48", "32"))
    assert validate(capsys)[:3] == (0, "ok: 1 policy in 2 files (no warnings)\n", "")


# --- the chargers' own limits ------------------------------------------------------------------


def test_above_every_known_charger_is_an_error() -> None:
    [finding] = check_level("amps", 40, LevelBounds(chargers=(ONE, TWO)))
    assert finding.is_error
    assert finding.message.startswith(
        "amps 40 is above the maximum of every one of its 2 chargers "
        "(Garage (EV1): 16 A, EV2: 32 A, from the last summary read)"
    )


def test_above_one_of_two_chargers_is_a_warning_and_chargers_narrow_it() -> None:
    [finding] = check_level("max_amps", 20, LevelBounds(chargers=(ONE, TWO)))
    assert finding.code == "level-above-charger-max"
    assert "Garage (EV1): 16 A" in finding.message
    assert check_level("max_amps", 20, LevelBounds(chargers=(ONE, TWO)), ["EV2"]) == []
    [only] = check_level("max_amps", 20, LevelBounds(chargers=(ONE, TWO)), ["EV1"])
    assert only.is_error


def test_below_the_minimum_of_all_or_some_and_below_6a_when_nothing_is_known() -> None:
    [some] = check_level("min_amps", 7, LevelBounds(chargers=(ONE, TWO)))
    assert some.code == "level-below-charger-min"
    [every] = check_level("min_amps", 7, LevelBounds(chargers=(TWO,)))
    assert every.is_error
    [unknown] = check_level("min_amps", 4, LevelBounds())
    assert unknown.code == "level-below-6a"
    assert [f.code for f in check_level("min_amps", 4, LevelBounds(chargers=(ONE,)))] == [None]


@given(
    amps=st.integers(1, 80),
    site=st.none() | st.integers(6, 80),
    ranges=st.lists(st.tuples(st.integers(6, 16), st.integers(16, 80)), max_size=3),
)
def test_a_level_every_limit_allows_has_no_finding_and_the_site_limit_always_errs(
    amps: int, site: int | None, ranges: list[tuple[int, int]]
) -> None:
    chargers = tuple(ChargerLimit(f"EV{i}", low, high) for i, (low, high) in enumerate(ranges))
    findings = check_level("amps", amps, LevelBounds(site_max=site, chargers=chargers))
    within = all(low <= amps <= high for low, high in ranges) and (site is None or amps <= site)
    assert (findings == []) == (within and (amps >= 6 or bool(chargers)))
    above_site = site is not None and amps > site
    assert above_site == any("site.max_current" in f.message and f.is_error for f in findings)
    assert all(f.code is None or f.code in WARNING_CODES for f in findings)


def test_the_chargers_limits_are_kept_from_the_summary_the_service_read(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """End to end: nothing known, validate passes; `run --once` reads the summary and keeps
    the limits (0600), logging the warnings at start; validate then refuses a level the
    charger cannot take."""
    monkeypatch.setenv("ENLIGHTEN_PASSWORD", PASSWORD)
    monkeypatch.delenv("ENLIGHTEN_EMAIL", raising=False)
    cloud = FakeCloud(chargers=[Charger(sn="EV1", name="Garage", max_amps=16)])
    cloud.update_charger(plugged_in=True)
    rules = (
        SOLAR_48.replace("48", "24") + "  - name: mode\n    kind: charge_mode\n    mode: manual\n"
    )
    with run_in_thread(cloud) as base_url:
        setup(
            tmp_path,
            rules,
            f"enlighten:\n  base_url: {base_url}\n  email: {EMAIL}\n  site_id: {SITE_ID}\n"
            + CONFIG,
        )
        assert validate(capsys)[0] == 0
        caplog.set_level(logging.WARNING)
        assert main(["--config", "config.yaml", "run", "--once", "--dry-run"]) == 0
        capsys.readouterr()
        code, _, err = validate(capsys)
    started = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        m.startswith("rules/solar.yaml:6:5: warning[policy-overlap]: 'mode' and 'solar'")
        for m in started
    ), started
    path = tmp_path / "state" / CHARGER_LIMITS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_charger_limits(tmp_path / "state") == (ChargerLimit("EV1", 6, 16, "Garage"),)
    assert code == 1
    assert err.startswith(
        "rules/solar.yaml:5:5: max_amps 24 is above the maximum of the charger "
        "(Garage (EV1): 16 A, from the last summary read)"
    )


# --- warning codes and silencing ---------------------------------------------------------------


def test_every_warning_shows_its_code_in_text_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup(tmp_path, TWO_AT_50)
    code, out, err = validate(capsys)
    assert code == 0
    assert err.startswith("rules/solar.yaml:5:5: warning[policy-overlap]: 'b' and 'a'")
    code, out, _ = validate(capsys, "--json")
    [warning] = json.loads(out)["warnings"]
    assert warning["code"] == "policy-overlap"


def test_a_policy_silences_its_own_warning_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup(tmp_path, TWO_AT_50 + "    ignore_warnings: [policy-overlap]\n")
    assert validate(capsys) == (0, "ok: 2 policies in 2 files (no warnings)\n", "")


def test_the_config_silences_a_code_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup(tmp_path, TWO_AT_50, CONFIG + "warnings:\n  ignore: [policy-overlap]\n")
    assert validate(capsys) == (0, "ok: 2 policies in 2 files (no warnings)\n", "")


def test_a_level_warning_is_silenced_on_its_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = "policies:\n  - name: low\n    kind: tariff_window\n    windows: night\n    amps: 4\n"
    setup(tmp_path, rule)
    code, _, err = validate(capsys)
    assert code == 0
    assert err.startswith("rules/solar.yaml:5:5: warning[level-below-6a]: amps 4 is below 6 A")
    setup(tmp_path, rule + "    ignore_warnings: [level-below-6a]\n")
    assert validate(capsys)[2] == ""


def test_an_unknown_code_is_a_warning_with_a_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup(
        tmp_path,
        TWO_AT_50 + "    ignore_warnings: [policy-overlap, polcy-overlap]\n",
        CONFIG + "warnings:\n  ignore: [tariff-overlaps]\n",
    )
    code, _, err = validate(capsys)
    assert code == 0
    lines = err.splitlines()
    assert lines[0].startswith(
        "config.yaml:11:12: warning[unknown-warning-code]: warnings.ignore: unknown warning "
        "code 'tariff-overlaps' (did you mean 'tariff-overlap'?); codes: latest-power-sign, "
    )
    assert lines[1].startswith(
        "rules/solar.yaml:8:39: warning[unknown-warning-code]: ignore_warnings: unknown "
        "warning code 'polcy-overlap' (did you mean 'policy-overlap'?)"
    )
    assert len(lines) == 2


def test_the_service_logs_the_warnings_it_is_not_told_to_ignore(tmp_path: Path) -> None:
    setup(tmp_path, TWO_AT_50)
    warnings = load_setup(load_config(tmp_path / "config.yaml"), None).warnings
    assert [w.code for w in warnings] == ["policy-overlap"]
    setup(tmp_path, TWO_AT_50, CONFIG + "warnings:\n  ignore: [policy-overlap]\n")
    assert load_setup(load_config(tmp_path / "config.yaml"), None).warnings == ()
