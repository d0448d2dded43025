"""The rule loader: positioned errors for broken files, checks across files, warnings, globs."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from optimizer.config import Config, load_config
from optimizer.engine.loader import (
    LoadedRules,
    RulesError,
    check_rules,
    config_warnings,
    load_config_rules,
    load_rule_file,
    load_rules,
    rule_paths,
)
from optimizer.engine.rules import POLICY_KINDS, ExcessSolar, Target, TariffWindow, When
from optimizer.tariffs import Tariffs
from optimizer.yamlpos import Problem

ROOT = Path(__file__).resolve().parent.parent
BROKEN = Path(__file__).resolve().parent / "rules_broken"
EXAMPLES = sorted((ROOT / "rules").glob("*.yaml"))
EXAMPLE_CONFIG = ROOT / "config.example.yaml"
EXPECT = re.compile(r"^# expect: (\d+):(\d+): (.+)$")
TARIFFS = re.compile(r"^# tariffs: (.+)$", re.MULTILINE)


def _tariffs(names: list[str]) -> Tariffs:
    return Tariffs.model_validate({"windows": {name: {"price": 0.2} for name in names}})


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _messages(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


# --- the corpus of broken files --------------------------------------------------------------


def test_corpus_is_large_enough() -> None:
    assert len(list(BROKEN.glob("*.yaml"))) >= 25


@pytest.mark.parametrize("path", sorted(BROKEN.glob("*.yaml")), ids=lambda p: p.stem)
def test_broken_file_reports_expected_problem(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    expect = EXPECT.match(text.splitlines()[0])
    assert expect, f"{path.name}: first line must be '# expect: LINE:COL: message'"
    names = TARIFFS.search(text)
    tariffs = _tariffs(names.group(1).split(",")) if names else None

    _, errors = check_rules([path], tariffs=tariffs)

    line, column, message = int(expect.group(1)), int(expect.group(2)), expect.group(3)
    found = [p for p in errors if (p.line, p.column) == (line, column) and message in p.message]
    assert found, f"expected {line}:{column}: {message!r}, got:\n" + "\n".join(map(str, errors))
    assert all(p.file == str(path) for p in errors)
    with pytest.raises(RulesError) as raised:
        load_rules([path], tariffs=tariffs)
    assert raised.value.problems == errors
    assert str(found[0]).startswith(f"{path}:{line}:{column}: ")


# --- loading -------------------------------------------------------------------------------


def test_one_bad_policy_does_not_hide_the_others(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "r.yaml",
        "policies:\n"
        "  - name: a\n    kind: excess_sola\n"
        "  - name: b\n    kind: excess_solar\n    priorty: 1\n"
        "  - name: c\n    kind: battery_use\n    use_battery: true\n",
    )
    loaded, errors = check_rules([path], tariffs=None)
    assert [(p.line, p.column) for p in errors] == [(3, 5), (6, 5)]
    assert [p.name for p in loaded.policies] == ["c"]


def test_errors_in_every_file_are_raised_together(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.yaml", "policies: [\n")
    second = _write(tmp_path, "b.yaml", "policies:\n  - name: x\n")
    with pytest.raises(RulesError) as raised:
        load_rules([first, second, tmp_path / "missing.yaml"], tariffs=None)
    files = [Path(p.file).name for p in raised.value.problems]
    assert files == ["a.yaml", "b.yaml", "missing.yaml"]
    assert "file not found" in str(raised.value)


def test_loaded_rules_keep_file_order_origins_and_disabled(tmp_path: Path) -> None:
    first = _write(
        tmp_path,
        "a.yaml",
        "policies:\n  - name: solar\n    kind: excess_solar\n"
        "  - name: spare\n    kind: green_mode\n    enabled: false\n",
    )
    second = _write(
        tmp_path, "b.yaml", "policies:\n  - kind: charge_mode\n    name: m\n    mode: green\n"
    )
    loaded = load_rules([first, second], tariffs=None)
    assert [p.name for p in loaded.policies] == ["solar", "spare", "m"]
    assert [p.name for p in loaded.enabled] == ["solar", "m"]
    assert str(loaded.origins["spare"]) == f"{first}:4"
    assert (loaded.origins["m"].line, loaded.origins["m"].column) == (2, 5)
    assert loaded.files == (str(first), str(second))


def test_duplicate_names_across_files_error_at_the_second(tmp_path: Path) -> None:
    text = "policies:\n  - name: solar\n    kind: excess_solar\n"
    first, second = _write(tmp_path, "a.yaml", text), _write(tmp_path, "b.yaml", text)
    _, errors = check_rules([first, second], tariffs=None)
    assert _messages(errors) == [
        f"{second}:2:5: duplicate policy name 'solar' (first at {first}:2)"
    ]


def test_load_rule_file_returns_models_with_parsed_values(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "r.yaml",
        "policies:\n"
        "  - name: solar\n    kind: excess_solar\n    start_delay: 90\n    chargers: 482301012345\n"
        "  - name: night\n    kind: tariff_window\n    windows: off_peak\n"
        "    target: {energy_kwh: 10, by: 7:30}\n",
    )
    solar, night = load_rule_file(path)
    assert isinstance(solar, ExcessSolar)
    assert solar.start_delay == timedelta(seconds=90)
    assert solar.chargers == ["482301012345"]
    assert isinstance(night, TariffWindow)
    assert night.windows == ["off_peak"]
    # YAML 1.1 reads an unquoted 7:30 as the number 450: it is taken back as the time.
    assert night.target == Target(energy_kwh=10, by="07:30")


def test_unquoted_small_number_is_not_a_time(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "r.yaml",
        "policies:\n  - name: night\n    kind: tariff_window\n    windows: off_peak\n"
        "    target: {energy_kwh: 10, by: 7}\n",
    )
    _, errors = check_rules([path], tariffs=None)
    assert "target.by: '7' is not a time of day" in errors[0].message


def test_tariff_names_are_not_checked_without_a_config(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "r.yaml", "policies:\n  - name: n\n    kind: tariff_window\n    windows: nope\n"
    )
    assert check_rules([path], tariffs=None)[1] == []
    _, errors = check_rules([path], tariffs=Tariffs())
    assert errors[0].message == (
        "unknown tariff window 'nope'; the config's windows: none (add them under tariffs.windows)"
    )


# --- warnings ------------------------------------------------------------------------------

_PAIR = """policies:
  - name: first
    kind: excess_solar
    priority: {p1}
    when: {{{w1}}}
  - name: second
    kind: tariff_window
    windows: off_peak
    priority: {p2}
    when: {{{w2}}}
"""


def _warnings(
    tmp_path: Path, *, p1: int = 50, p2: int = 50, w1: str = "", w2: str = ""
) -> list[str]:
    path = _write(tmp_path, "r.yaml", _PAIR.format(p1=p1, p2=p2, w1=w1, w2=w2))
    return _messages(load_rules([path], tariffs=None).warnings)


def test_same_priority_policies_setting_the_same_target_are_warned_about(tmp_path: Path) -> None:
    warnings = _warnings(tmp_path)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{tmp_path / 'r.yaml'}:9:5: 'second' and 'first' (")
    assert f"({tmp_path / 'r.yaml'}:2) both set charging and mode at priority 50" in warnings[0]
    assert "'first' wins by file order" in warnings[0]


@pytest.mark.parametrize(
    ("p2", "w1", "w2"),
    [
        pytest.param(60, "", "", id="different priorities"),
        pytest.param(50, "time: 08:00-12:00", "time: 12:00-16:00", id="times apart"),
        pytest.param(50, "days: weekdays", "days: weekends", id="days apart"),
        # Days and times are checked independently at a moment: Saturday 01:00 is not Friday.
        pytest.param(50, "days: fri, time: 23:00-07:00", "days: sat", id="night is not next day"),
        pytest.param(50, "time: 22:00-02:00", "time: 02:00-22:00", id="times touch"),
        pytest.param(50, "months: nov-mar", "months: apr-oct", id="months apart"),
        pytest.param(50, "sun: up", "sun: down", id="sun up and down"),
        pytest.param(50, "plugged_in: true", "plugged_in: false", id="plugged in or not"),
        pytest.param(50, "surplus_above: 2000", "surplus_below: 1500", id="surplus bounds"),
    ],
)
def test_no_warning_when_policies_cannot_compete(tmp_path: Path, p2: int, w1: str, w2: str) -> None:
    assert _warnings(tmp_path, p2=p2, w1=w1, w2=w2) == []


@pytest.mark.parametrize(
    ("w1", "w2"),
    [
        pytest.param("time: 08:00-12:00", "time: 11:00-16:00", id="times overlap"),
        pytest.param("time: 23:00-07:00", "time: 06:00-08:00", id="across midnight"),
        pytest.param("days: fri, time: 22:00-02:00", "days: fri, time: 01:00-03:00", id="wrap"),
        pytest.param("tariff: off_peak", "surplus_above: 100", id="other conditions"),
    ],
)
def test_warning_when_conditions_can_hold_together(tmp_path: Path, w1: str, w2: str) -> None:
    assert len(_warnings(tmp_path, w1=w1, w2=w2)) == 1


def test_disabled_policies_and_other_chargers_are_not_warned_about(tmp_path: Path) -> None:
    text = (
        "policies:\n"
        "  - {name: a, kind: charge_mode, mode: manual, chargers: [A]}\n"
        "  - {name: b, kind: charge_mode, mode: green, chargers: [B]}\n"
        "  - {name: c, kind: charge_mode, mode: green, enabled: false}\n"
        "  - {name: d, kind: battery_use, use_battery: true}\n"
    )
    assert load_rules([_write(tmp_path, "r.yaml", text)], tariffs=None).warnings == []


def test_overlapping_tariff_windows_are_warned_about(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        "config.yaml",
        "tariffs:\n  windows:\n"
        "    night: {price: 0.1, times: 22:00-06:00}\n"
        "    shoulder: {price: 0.2, times: [05:00-09:00]}\n"
        "    peak: {price: 0.4, times: 15:00-21:00}\n"
        "rules: []\n",
    )
    warnings = config_warnings(load_config(config))
    assert _messages(warnings) == [
        f"{config}:4:5: tariff windows 'shoulder' and 'night' overlap; "
        "where both match, 'night' (listed first) wins"
    ]
    assert config_warnings(load_config(EXAMPLE_CONFIG)) == []


# --- rule_paths ----------------------------------------------------------------------------


def test_rule_paths_are_relative_to_the_config_sorted_and_unique(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    for name in ("b.yaml", "a.yaml", "c.yml"):
        _write(rules, name, "")
    config = _write(tmp_path, "config.yaml", "rules: [rules/*.yaml, rules/a.yaml, 'rules/*.yml']\n")
    paths = rule_paths(load_config(config))
    assert [p.name for p in paths] == ["a.yaml", "b.yaml", "c.yml"]
    assert all(p.resolve().parent == rules for p in paths)


def test_rule_paths_report_a_glob_that_matches_nothing(tmp_path: Path) -> None:
    config = _write(tmp_path, "config.yaml", "site: {}\nrules:\n  - rulez/*.yaml\n")
    with pytest.raises(RulesError) as raised:
        rule_paths(load_config(config))
    assert _messages(raised.value.problems) == [
        f"{config}:3:5: rules: 'rulez/*.yaml' matches no file"
    ]


def test_rule_paths_without_config_file_are_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    _write(tmp_path / "rules", "x.yaml", "")
    assert rule_paths(Config()) == [Path("rules/x.yaml")]
    with pytest.raises(RulesError, match="matches no file"):
        rule_paths(Config(rules=["none/*.yaml"]))


# --- the examples --------------------------------------------------------------------------


def test_there_are_examples() -> None:
    names = {p.name for p in EXAMPLES}
    assert {
        "excess-solar.yaml",
        "min-solar.yaml",
        "green-mode.yaml",
        "off-peak-target.yaml",
        "battery-seasonal.yaml",
        "charge-mode.yaml",
        "schedule-sync.yaml",
        "solar-plan.yaml",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_example_is_valid_alone(path: Path) -> None:
    assert path.read_text(encoding="utf-8").startswith(
        "# yaml-language-server: $schema=../docs/rules.schema.json\n"
    )
    tariffs = load_config(EXAMPLE_CONFIG).tariffs
    for checked in (None, tariffs):
        loaded = load_rules([path], tariffs=checked)
        assert loaded.policies
        assert loaded.warnings == []


def test_examples_form_one_coherent_setup() -> None:
    loaded: LoadedRules = load_config_rules(load_config(EXAMPLE_CONFIG))
    assert loaded.warnings == []
    assert {Path(f).name for f in loaded.files} == {p.name for p in EXAMPLES}
    kinds = {p.kind for p in loaded.policies}
    assert kinds == {
        "excess_solar",
        "green_mode",
        "tariff_window",
        "battery_use",
        "charge_mode",
        "schedule_sync",
        "solar_plan",
    }
    disabled = {p.name for p in loaded.policies if not p.enabled}
    assert disabled == {"solar-with-minimum", "charger-green-mode", "solar-plan"}


def test_enabling_an_alternative_is_warned_about(tmp_path: Path) -> None:
    text = (ROOT / "rules" / "min-solar.yaml").read_text(encoding="utf-8")
    alternative = _write(
        tmp_path, "min-solar.yaml", text.replace("enabled: false", "enabled: true")
    )
    loaded = load_rules([ROOT / "rules" / "excess-solar.yaml", alternative], tariffs=None)
    assert len(loaded.warnings) == 1
    assert "'solar-with-minimum' and 'solar-surplus'" in loaded.warnings[0].message


def test_docs_describe_every_kind_and_key() -> None:
    """docs/rules.md is the language reference: a new key must be documented there."""
    docs = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    for kind, model in POLICY_KINDS.items():
        assert f"### `{kind}`" in docs, kind
        for key in model.model_fields:
            assert f"`{key}`" in docs, f"{kind}.{key} is not in docs/rules.md"
    for model in (When, Target):
        for key in model.model_fields:
            assert f"`{key}`" in docs or f"`target.{key}`" in docs, key


def test_nan_and_infinity_are_refused_with_their_position(tmp_path: Path) -> None:
    """Found by fuzzing: YAML's `.nan` and `.inf` passed as floats, and NaN compares false
    with everything, so a threshold of NaN would silently never (or always) apply."""
    path = tmp_path / "nan.yaml"
    path.write_text(
        "policies:\n  - name: x\n    kind: excess_solar\n    reserve_w: .nan\n", encoding="utf-8"
    )
    with pytest.raises(RulesError) as caught:
        load_rules([path], tariffs=None)
    assert f"{path}:4:5: reserve_w: must be a finite number (W), got nan" in str(caught.value)


def test_loading_rules_again_and_again_keeps_nothing_behind() -> None:
    """Found by fuzzing: the shared YAML constructor remembered every scalar node it built
    (and through it each file's text); a service reloading its rules kept every version."""
    from optimizer import yamlpos  # noqa: PLC0415

    for _ in range(3):
        load_rules(sorted((ROOT / "rules").glob("*.yaml")), tariffs=None)
    assert yamlpos._SCALARS.constructed_objects == {}
