"""`evopt validate` and `evopt schema`, run in-process (and once as a real process)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from optimizer.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = ROOT / "config.example.yaml"
SCHEMA_FILE = ROOT / "docs" / "rules.schema.json"
KINDS = {
    "excess_solar",
    "green_mode",
    "tariff_window",
    "battery_use",
    "charge_mode",
    "schedule_sync",
    "solar_plan",
}
PROBLEM_LINE = re.compile(r"^[^:]+:\d+:\d+: .+$")

CONFIG = """\
site:
  timezone: Australia/Melbourne
tariffs:
  windows:
    night: {price: 0.15, times: 00:00-06:00}
rules: [rules/*.yaml]
"""
NIGHT_RULE = "policies:\n  - name: night\n    kind: tariff_window\n    windows: night\n"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No config from the environment or the current directory unless a test writes one."""
    monkeypatch.delenv("EVOPT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def setup_dir(tmp_path: Path, rule: str = NIGHT_RULE) -> Path:
    """A config in ``tmp_path`` with one rule file under rules/."""
    write(tmp_path / "rules" / "night.yaml", rule)
    return write(tmp_path / "config.yaml", CONFIG)


# --- validate ------------------------------------------------------------------------------


def test_examples_validate_without_a_config(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = run(capsys, "validate", *sorted(str(p) for p in Path("rules").glob("*.yaml")))
    assert (code, err) == (0, "")
    assert out == "ok: 9 policies in 8 files (no warnings)\n"


def test_example_config_validates_with_every_rule_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = run(capsys, "--config", "config.example.yaml", "validate")
    assert (code, err) == (0, "")
    # 8 files of rules/*.yaml (solar-plan.yaml's policy is off) and rules/sets/fast.yaml, the
    # example's "fast" rule set.
    assert out == "ok: 9 policies in 10 files (no warnings)\n"


def test_found_config_is_validated_with_its_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_dir(tmp_path)
    code, out, _ = run(capsys, "validate")
    assert code == 0
    assert out == "ok: 1 policy in 2 files (no warnings)\n"


def test_errors_go_to_stderr_one_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path / "r.yaml",
        "policies:\n  - name: a\n    kind: excess_sola\n  - name: b\n    kind: green_mode\n"
        "    priority: high\n",
    )
    code, out, err = run(capsys, "validate", str(path))
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert len(lines) == 2
    assert all(PROBLEM_LINE.match(line) for line in lines)
    assert lines[0].startswith(f"{path}:3:5: unknown kind 'excess_sola' (did you mean")
    assert lines[1] == f"{path}:6:5: priority: must be a whole number, got 'high'"


def test_broken_yaml_names_file_and_line_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path / "bad.yaml", "policies: [\n")
    code, _, err = run(capsys, "validate", str(bad))
    assert code == 1
    assert f"{bad}:2:1: YAML syntax error" in err
    assert "Traceback" not in err


def test_contract_check_case_as_a_real_process(tmp_path: Path) -> None:
    write(tmp_path / "bad.yaml", "policies: [\n")
    result = subprocess.run(
        [sys.executable, "-m", "optimizer", "validate", "bad.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert re.search(r"bad\.yaml:\d+:\d+: ", result.stderr)
    assert "Traceback" not in result.stdout + result.stderr


def test_missing_file_is_an_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate", "missing.yaml")
    assert code == 1
    assert err == "missing.yaml:1:1: file not found\n"


def test_warnings_are_marked_and_do_not_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path / "r.yaml",
        "policies:\n  - {name: a, kind: charge_mode, mode: manual}\n"
        "  - {name: b, kind: charge_mode, mode: green}\n",
    )
    code, out, err = run(capsys, "validate", str(path))
    assert code == 0
    assert err.startswith(
        f"{path}:3:5: warning[policy-overlap]: 'b' and 'a' ({path}:2) both set mode"
    )
    assert out == "ok: 2 policies in 1 file (1 warning)\n"


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(
        tmp_path / "good.yaml", "policies:\n  - {name: a, kind: charge_mode, mode: green}\n"
    )
    bad = write(tmp_path / "bad.yaml", "policies:\n  - {name: b, kind: charge_mode}\n")
    code, out, err = run(capsys, "validate", "--json", str(good), str(bad))
    assert (code, err) == (1, "")
    report = json.loads(out)
    assert report["ok"] is False
    assert report["policies"] == 1
    assert report["warnings"] == []
    assert report["errors"] == [
        {
            "file": str(bad),
            "line": 2,
            "column": 5,
            "message": "missing required key 'mode' "
            "(MANUAL_CHARGING, SCHEDULED_CHARGING, GREEN_CHARGING or SMART_CHARGING)",
        }
    ]
    assert report["files"] == [str(good), str(bad)]

    code, out, _ = run(capsys, "validate", str(good), "--json")
    assert code == 0
    assert json.loads(out) == {
        "ok": True,
        "errors": [],
        "warnings": [],
        "policies": 1,
        "files": [str(good)],
    }


def test_rule_files_are_checked_against_the_found_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_dir(tmp_path)
    other = write(tmp_path / "other.yaml", NIGHT_RULE.replace("night", "nite"))
    code, _, err = run(capsys, "validate", str(other))
    assert code == 1
    assert err == (
        f"{other}:4:5: unknown tariff window 'nite' (did you mean 'night'?); "
        "the config's windows: night\n"
    )


def test_config_given_as_a_file_brings_its_rules_and_tariffs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = setup_dir(tmp_path / "site")
    monkeypatch.chdir(tmp_path)
    extra = write(tmp_path / "extra.yaml", NIGHT_RULE)
    code, _, err = run(capsys, "validate", str(config), str(extra))
    assert code == 1
    assert err == f"{extra}:2:5: duplicate policy name 'night' (first at site/rules/night.yaml:2)\n"


def test_config_errors_and_rule_errors_are_reported_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "config.yaml", "sitee: {}\nrules: [rulez/*.yaml]\n")
    rule = write(tmp_path / "r.yaml", "policies:\n  - {name: a, kind: nope}\n")
    code, out, _ = run(capsys, "validate", "--json", str(config), str(rule))
    assert code == 1
    messages = [(e["file"], e["line"], e["message"]) for e in json.loads(out)["errors"]]
    assert messages[0] == (
        str(config),
        1,
        "unknown key 'sitee' (did you mean 'site'?); valid keys: enlighten, site, charger, "
        "engine, service, tariffs, surplus, rules, rule_sets, warnings, gateway, forecast, "
        "plans, habits, mqtt, sites",
    )
    assert messages[1][0] == str(rule)
    assert messages[1][2].startswith("unknown kind 'nope'")


def test_config_glob_matching_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "config.yaml", "site: {}\nrules:\n  - rulez/*.yaml\n")
    code, _, err = run(capsys, "validate")
    assert code == 1
    assert err == "config.yaml:3:5: rules: 'rulez/*.yaml' matches no file\n"


def test_overlapping_tariff_windows_are_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_dir(tmp_path)
    write(
        tmp_path / "config.yaml",
        CONFIG.replace(
            "    night: {price: 0.15, times: 00:00-06:00}\n",
            "    night: {price: 0.15, times: 00:00-06:00}\n"
            "    dawn: {price: 0.2, times: 05:00-08:00}\n",
        ),
    )
    code, out, err = run(capsys, "validate")
    assert code == 0
    assert err.startswith(
        "config.yaml:6:5: warning[tariff-overlap]: tariff windows 'dawn' and 'night' overlap"
    )
    assert "(1 warning)" in out


def test_missing_explicit_config_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--config", "nope.yaml", "validate")
    assert code == 1
    assert err == "nope.yaml:1:1: config file not found (--config)\n"


# --- schema --------------------------------------------------------------------------------


def test_schema_prints_json_schema_of_every_kind(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "schema")
    assert (code, err) == (0, "")
    schema = json.loads(out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"]
    mapping = schema["properties"]["policies"]["items"]["discriminator"]["mapping"]
    assert set(mapping) == KINDS


def test_schema_works_even_with_a_broken_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "config.yaml", "nonsense: [\n")
    code, out, _ = run(capsys, "schema")
    assert code == 0
    assert json.loads(out)["title"]


def test_docs_schema_is_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema")
    assert code == 0
    assert SCHEMA_FILE.read_text(encoding="utf-8") == out, (
        "docs/rules.schema.json is out of date: run `make schema`"
    )


def test_commands_are_listed_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "validate" in out
    assert "schema" in out
