"""Duplicate keys are errors in every YAML file: the last one must never silently win.

The case that hurt: ``dry_run: true`` in one ``service:`` block lost to a second ``service:``
block appended later, and the service ran live.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimizer.cli import main
from optimizer.config import load_config
from optimizer.engine.loader import load_rule_file
from optimizer.yamlpos import YamlFileError, load_text

DRY_RUN_TWICE = """\
rules: []
service:
  dry_run: true
site:
  timezone: Australia/Melbourne
service:
  dry_run: false
"""
TWO_POLICY_LISTS = """\
policies:
  - name: night
    kind: charge_mode
    mode: manual
  - name: day
    kind: charge_mode
    mode: green
policies:
  - name: other
    kind: charge_mode
    mode: manual
"""


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVOPT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def problems(text: str, file: str = "x.yaml") -> list[str]:
    with pytest.raises(YamlFileError) as err:
        load_text(text, file=file)
    return [str(p) for p in err.value.problems]


def test_a_second_block_is_an_error_at_it_naming_the_first() -> None:
    assert problems(DRY_RUN_TWICE, "config.yaml") == [
        "config.yaml:6:1: duplicate key 'service' (first at config.yaml:2:1); the second "
        "would silently replace the first - merge the two blocks"
    ]


def test_every_duplicate_at_any_depth_is_reported() -> None:
    text = "a:\n  b:\n    c: 1\n    c: 2\n  list:\n    - {x: 1, x: 2}\na:\n  d: 1\n  d: 2\n"
    assert problems(text) == [
        "x.yaml:4:5: duplicate key 'c' in 'a.b' (first at x.yaml:3:5); the second would "
        "silently replace the first - keep one",
        "x.yaml:6:14: duplicate key 'x' in 'a.list.0' (first at x.yaml:6:8); the second would "
        "silently replace the first - keep one",
        "x.yaml:7:1: duplicate key 'a' (first at x.yaml:1:1); the second would silently "
        "replace the first - merge the two blocks",
        "x.yaml:9:3: duplicate key 'd' in 'a' (first at x.yaml:8:3); the second would "
        "silently replace the first - keep one",
    ]


def test_keys_from_a_merge_are_not_duplicates() -> None:
    text = "base: &b {amps: 16, priority: 10}\nmine:\n  <<: *b\n  amps: 32\n"
    assert load_text(text, file="x.yaml").data["mine"] == {"amps": 32, "priority": 10}


def test_a_duplicate_inside_an_anchor_is_reported_once() -> None:
    text = "base: &b {amps: 16, amps: 20}\none: *b\ntwo:\n  <<: *b\n"
    assert len(problems(text)) == 1


@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=12))
def test_a_mapping_loads_exactly_when_no_key_repeats(keys: list[str]) -> None:
    text = "".join(f"{key}: {index}\n" for index, key in enumerate(keys))
    repeats = len(keys) - len(set(keys))
    if repeats:
        with pytest.raises(YamlFileError) as err:
            load_text(text, file="x.yaml")
        assert len(err.value.problems) == repeats
        assert all("duplicate key" in p.message for p in err.value.problems)
    else:
        assert load_text(text, file="x.yaml").data == {k: i for i, k in enumerate(keys)}


def test_two_policies_lists_in_a_rule_file_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(TWO_POLICY_LISTS, encoding="utf-8")
    with pytest.raises(YamlFileError) as err:
        load_rule_file(path)
    assert [str(p) for p in err.value.problems] == [
        f"{path}:8:1: duplicate key 'policies' (first at {path}:1:1); the second would "
        "silently replace the first - keep one"
    ]


def test_a_duplicate_in_the_config_is_refused_by_load_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(DRY_RUN_TWICE, encoding="utf-8")
    with pytest.raises(YamlFileError, match=r"config.yaml:6:1: duplicate key 'service'"):
        load_config(path)


@pytest.mark.parametrize("command", [["validate"], ["run", "--once"], ["validate", "--json"]])
def test_validate_and_run_exit_1_naming_both_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    (tmp_path / "config.yaml").write_text(DRY_RUN_TWICE, encoding="utf-8")
    code = main(["--config", "config.yaml", *command])
    out, err = capsys.readouterr()
    assert code == 1
    if "--json" in command:
        assert '"line": 6' in out
        assert "first at config.yaml:2:1" in out
    else:
        assert err == (
            "config.yaml:6:1: duplicate key 'service' (first at config.yaml:2:1); the second "
            "would silently replace the first - merge the two blocks\n"
        )
        assert "Traceback" not in err


def test_validate_names_a_duplicate_in_a_rule_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "solar.yaml").write_text(TWO_POLICY_LISTS, encoding="utf-8")
    assert main(["validate", "solar.yaml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("solar.yaml:8:1: duplicate key 'policies' (first at solar.yaml:1:1)")
