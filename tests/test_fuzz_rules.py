"""Fuzzing the rule loader: a mangled rule file loads or gives ``file:line:col`` errors, never a
traceback.

Rule files are edited by hand, often over ssh on the machine that runs the service, and
`evopt validate` is what people run to find their mistakes. Its whole promise is that every
problem is reported as ``file:line:col: message`` (one per line, so editors and CI can jump to
it); an exception from the YAML library or a Python conversion instead becomes "internal
error" (exit 70), which tells the user nothing about which line to fix. These properties start
from the shipped example rules and the corpus of broken files, mangle them the way hand edits
do (deleted, duplicated and re-indented lines, wrong value types, stray characters, truncation,
misspelt keys) and check the loader, the config loader and the `validate` command.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.cli import main
from optimizer.config import Config, load_config
from optimizer.engine.loader import LoadedRules, RulesError, load_rules
from optimizer.tariffs import Tariffs
from optimizer.yamlpos import Problem, YamlFileError
from tests.test_fuzz_parsers import count_event

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "rules").glob("*.yaml"))
BROKEN = sorted((Path(__file__).resolve().parent / "rules_broken").glob("*.yaml"))
EXAMPLE_CONFIG = ROOT / "config.example.yaml"
SOURCES = {path.name: path.read_text(encoding="utf-8") for path in [*EXAMPLES, *BROKEN]}
CONFIG_TEXT = EXAMPLE_CONFIG.read_text(encoding="utf-8")
TARIFFS = load_config(EXAMPLE_CONFIG).tariffs
PROBLEM_LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): \S")
# PyYAML counts these as line breaks (and reads CRLF as one); str.splitlines() knows more.
YAML_BREAKS = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")

FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# --- mutations of the text --------------------------------------------------------------------

WRONG_VALUES = [
    "[1, 2]",
    "{a: 1}",
    "[]",
    "{}",
    "null",
    "~",
    "",
    "yes",
    "no",
    "off",
    '"text"',
    "'quoted'",
    "-5",
    "0",
    "-0.0",
    "1e400",
    ".nan",
    ".inf",
    "-.inf",
    "99999999999999999999999",
    "0x1F",
    "0o17",
    "1_000",
    "2025-01-01",
    "2025-01-01T10:00:00Z",
    "12:30",
    "25:99-26:00",
    "23:00-07:00",
    "mon-fri",
    "'",
    '"unterminated',
    "*undefined_alias",
    "&anchor value",
    "|",
    ">-",
    "!!str 5",
    "!!int abc",
    "!!float abc",
    "!!bool maybe",
    "!!timestamp not-a-date",
    "!!timestamp 2025-13-45",
    "!!binary '@@@'",
    "!!null x",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!custom value",
    "!!python/object:os.system echo",
    '"line one\\nline two"',
    "'tab\there'",
    "%",
    "@",
    "`",
    "? complex",
    "- item",
    "9" * 5000,
]
STRAY = st.text(
    alphabet=st.sampled_from(list(":-[]{}#&*!|>'\"%@`,?\t\n \\~<=")) | st.characters(),
    min_size=1,
    max_size=6,
)
KEY_LINE = re.compile(r"^(?P<indent>[ \t]*(?:- )?)(?P<key>[A-Za-z_][\w-]*)(?P<rest>:.*)$")
VALUE_LINE = re.compile(r"^(?P<head>[ \t]*(?:- )?[\w-]+:)(?P<value>.*)$")
INDENTS = ["", " ", "  ", "   ", "    ", "     ", "      ", "\t", "  \t", "- ", "  - "]


def _near_miss(key: str, data: st.DataObject) -> str:
    """A key as a typo would leave it: one character dropped, doubled, swapped or changed."""
    kind = data.draw(st.sampled_from(["drop", "double", "swap", "case", "dash", "plural"]))
    at = data.draw(st.integers(0, max(len(key) - 1, 0)), label="at")
    if kind == "drop" and len(key) > 1:
        return key[:at] + key[at + 1 :]
    if kind == "double":
        return key[:at] + key[at] + key[at:]
    if kind == "swap" and len(key) > 1:
        at = min(at, len(key) - 2)
        return key[:at] + key[at + 1] + key[at] + key[at + 2 :]
    if kind == "case":
        return key.upper() if key.islower() else key.lower()
    if kind == "dash":
        return key.replace("_", "-") if "_" in key else key.replace("-", "_") + "_"
    return key + "s"


def _pick_line(lines: list[str], data: st.DataObject, pattern: re.Pattern[str]) -> int | None:
    candidates = [i for i, line in enumerate(lines) if pattern.match(line)]
    return data.draw(st.sampled_from(candidates), label="line") if candidates else None


def mutate_lines(lines: list[str], data: st.DataObject) -> list[str]:
    """One hand-edit mistake applied to the file's lines (without their line breaks)."""
    kind = data.draw(
        st.sampled_from(
            [
                "delete",
                "duplicate",
                "swap",
                "indent",
                "wrong_value",
                "near_miss_key",
                "stray",
                "truncate",
            ]
        ),
        label="mutation",
    )
    if not lines:
        return [data.draw(STRAY, label="text")]
    index = data.draw(st.integers(0, len(lines) - 1), label="index")
    line = lines[index]
    if kind == "delete":
        return lines[:index] + lines[index + 1 :]
    if kind == "duplicate":
        return [*lines[: index + 1], line, *lines[index + 1 :]]
    if kind == "swap":
        other = data.draw(st.integers(0, len(lines) - 1), label="other")
        swapped = list(lines)
        swapped[index], swapped[other] = swapped[other], swapped[index]
        return swapped
    if kind == "indent":
        indent = data.draw(st.sampled_from(INDENTS), label="indent")
        return [*lines[:index], indent + line.lstrip(" \t"), *lines[index + 1 :]]
    if kind == "wrong_value":
        at = _pick_line(lines, data, VALUE_LINE)
        if at is not None:
            match = VALUE_LINE.match(lines[at])
            assert match is not None
            value = data.draw(st.sampled_from(WRONG_VALUES), label="value")
            lines = [*lines[:at], f"{match['head']} {value}", *lines[at + 1 :]]
        return lines
    if kind == "near_miss_key":
        at = _pick_line(lines, data, KEY_LINE)
        if at is not None:
            match = KEY_LINE.match(lines[at])
            assert match is not None
            key = _near_miss(match["key"], data)
            lines = [*lines[:at], f"{match['indent']}{key}{match['rest']}", *lines[at + 1 :]]
        return lines
    if kind == "stray":
        column = data.draw(st.integers(0, len(line)), label="column")
        stray = data.draw(STRAY, label="stray")
        return [*lines[:index], line[:column] + stray + line[column:], *lines[index + 1 :]]
    # truncate: cut the file in the middle of this line
    column = data.draw(st.integers(0, len(line)), label="column")
    return [*lines[:index], line[:column]]


@dataclass(frozen=True)
class Mangled:
    name: str
    content: bytes


def mangle(data: st.DataObject, text: str, name: str) -> Mangled:
    lines = text.splitlines()
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        lines = mutate_lines(lines, data)
    ending = data.draw(st.sampled_from(["\n", "\r\n"]), label="ending")
    content = ending.join(lines) + (ending if data.draw(st.booleans(), label="final") else "")
    raw = content.encode("utf-8", errors="surrogatepass")
    if data.draw(st.integers(0, 9), label="bad bytes") == 0:  # not UTF-8 at all, 1 in 10
        at = data.draw(st.integers(0, len(raw)), label="byte at")
        raw = raw[:at] + data.draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + raw[at:]
    return Mangled(name, raw)


def _write(directory: Path, mangled: Mangled) -> Path:
    path = directory / mangled.name
    path.write_bytes(mangled.content)
    return path


# --- checks -----------------------------------------------------------------------------------


def _line_count(path: Path) -> int:
    """Lines as PyYAML counts them in what the loader reads (text mode: newlines translated)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return 1
    return len(YAML_BREAKS.findall(text)) + 1


def assert_positioned(problems: list[Problem], error: Exception, path: Path) -> None:
    """Every problem is ``<file>:<line>:<col>: message`` on one line, inside the file."""
    assert problems, "an error without problems tells the user nothing"
    lines = _line_count(path)
    for problem in problems:
        assert problem.file == str(path), problem
        assert 1 <= problem.line <= lines, (problem, lines)
        assert problem.column >= 1, problem
        assert problem.message.strip(), problem
    for line in str(error).splitlines():
        assert PROBLEM_LINE.match(line), f"not file:line:col: {line!r}"
        assert line.startswith(f"{path}:"), line


def load_or_positioned_error(path: Path, tariffs: Tariffs | None) -> LoadedRules | None:
    """Load the file: success is checked, RulesError checked for positions; anything else
    (including a YamlFileError that is not a RulesError) propagates and fails the test."""
    try:
        loaded = load_rules([path], tariffs=tariffs)
    except RulesError as err:
        assert_positioned(err.problems, err, path)
        count_event("rejected with positioned problems")
        return None
    count_event("loaded")
    assert loaded.files == (str(path),)
    for policy in loaded.policies:
        assert loaded.origins[policy.name].file == str(path)
    return loaded


# --- the properties ---------------------------------------------------------------------------


def test_the_sources_load_as_documented() -> None:
    """The mutations start from files the loader accepts (examples) and rejects (corpus)."""
    assert len(EXAMPLES) >= 5
    assert len(BROKEN) >= 25
    for path in EXAMPLES:
        assert load_or_positioned_error(path, TARIFFS) is not None, path
    for path in BROKEN:
        names = re.search(r"^# tariffs: (.+)$", SOURCES[path.name], re.MULTILINE)
        tariffs = (
            Tariffs.model_validate(
                {"windows": {name: {"price": 0.2} for name in names.group(1).split(",")}}
            )
            if names
            else None
        )
        assert load_or_positioned_error(path, tariffs) is None, path


@FUZZ
@given(data=st.data())
def test_mangled_rule_files_load_or_give_positioned_errors(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Any mangling of any example or broken file: it loads, or every problem has a place."""
    # Half from the examples (which load until mangled), half from the corpus of broken files.
    name = data.draw(
        st.sampled_from([p.name for p in EXAMPLES]) | st.sampled_from([p.name for p in BROKEN]),
        label="source",
    )
    mangled = mangle(data, SOURCES[name], name)
    path = _write(tmp_path_factory.mktemp("rules"), mangled)
    tariffs = data.draw(st.sampled_from([TARIFFS, None]), label="tariffs")
    load_or_positioned_error(path, tariffs)


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_mangled_config_loads_or_gives_positioned_errors(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """The config goes through the same position-keeping YAML reader as the rules."""
    path = _write(tmp_path_factory.mktemp("config"), mangle(data, CONFIG_TEXT, "config.yaml"))
    try:
        config = load_config(path)
    except YamlFileError as err:
        assert_positioned(err.problems, err, path)
    else:
        assert isinstance(config, Config)


# Hand-written regressions for what the random mutations rarely build, each once a traceback.
PATHOLOGICAL = {
    "unknown-tag": "policies:\n  - name: a\n    kind: !custom charge_mode\n",
    "python-tag": "policies:\n  - name: a\n    kind: !!python/object:os.system echo\n",
    "int-tag-not-a-number": "policies:\n  - name: a\n    priority: !!int abc\n",
    "bool-tag-not-a-bool": "policies:\n  - name: a\n    enabled: !!bool maybe\n",
    "int-tag-empty": "policies:\n  - name: a\n    priority: !!int ''\n",
    "int-tag-sign-only": "policies:\n  - name: a\n    priority: !!int +\n",
    "float-tag-not-a-number": "policies:\n  - name: a\n    priority: !!float abc\n",
    "timestamp-tag-garbage": "policies:\n  - name: a\n    priority: !!timestamp abc\n",
    "timestamp-tag-bad-month": "policies:\n  - name: a\n    priority: !!timestamp 2025-13-45\n",
    "int-past-digit-limit": (
        "policies:\n  - name: a\n    kind: charge_mode\n    mode: MANUAL_CHARGING\n"
        f"    priority: {'9' * 5000}\n"
    ),
    "duration-infinite": "policies:\n  - name: a\n    kind: excess_solar\n    start_delay: .inf\n",
    "duration-nan": "policies:\n  - name: a\n    kind: excess_solar\n    stop_delay: .nan\n",
    "duration-past-timedelta": "policies:\n  - name: a\n    kind: excess_solar\n"
    "    min_on_time: 99999999999999999999d\n",
    "recursive-alias-list": "policies: &a\n  - *a\n",
    "recursive-alias-mapping": "policies:\n  - &p\n    name: a\n    kind: charge_mode\n"
    "    when: *p\n",
    "recursive-merge": "policies:\n  - &p\n    <<: *p\n    name: a\n",
    "deep-flow-nesting": "policies: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep-block-nesting": "policies:\n"
    + "".join("  " * depth + "- \n" for depth in range(1, 1200)),
    "nul-character": "policies:\n  - name: a\x00\n    kind: charge_mode\n",
    "control-character-late": "policies:\n  - name: a\n    kind: charge_mode\n    mode: \x07\n",
    "newline-in-kind": 'policies:\n  - name: a\n    kind: "charge\\nmode"\n',
    "newline-in-name": 'policies:\n  - name: "a\\nb"\n    kind: charge_mode\n'
    "    mode: MANUAL_CHARGING\n",
    "newline-in-mode": "policies:\n  - name: a\n    kind: charge_mode\n    mode: |\n"
    "      MANUAL\n      CHARGING\n",
    "newline-in-key": 'policies:\n  - name: a\n    kind: charge_mode\n    "mo\\nde": 1\n',
    "newline-in-top-key": '"poli\\ncies": []\n',
    "newline-in-version": 'version: "1\\n2"\npolicies: []\n',
    "newline-in-tariff": "policies:\n  - name: a\n    kind: charge_mode\n"
    '    mode: MANUAL_CHARGING\n    when:\n      tariff: "off\\npeak"\n',
    "complex-key": "policies:\n  - ? [a, b]\n    : 1\n    name: a\n    kind: charge_mode\n",
}


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_rule_files(tmp_path: Path, text: str) -> None:
    """YAML features and values that used to escape as exceptions: each is a positioned error
    (or, where the file is fine, a load)."""
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_or_positioned_error(path, TARIFFS) is None


def _validate(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--config", str(EXAMPLE_CONFIG), "validate", *args])
    return code, out.getvalue(), err.getvalue()


def _assert_clean_validate(code: int, out: str, err: str) -> None:
    assert code in (0, 1), (code, err)
    assert "Traceback" not in err
    assert "internal error" not in err
    for line in err.splitlines():
        assert PROBLEM_LINE.match(line), f"not file:line:col: {line!r}"
    if code == 0:
        assert out.startswith("ok: "), out
    else:
        assert err.strip(), "exit 1 must say why"


@settings(FUZZ, max_examples=25)
@given(data=st.data())
def test_validate_command_on_mangled_files(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    data: st.DataObject,
) -> None:
    """The command users run: exit 0 or 1 and only ``file:line:col`` lines, never exit 70."""
    monkeypatch.delenv("EVOPT_CONFIG", raising=False)
    directory = tmp_path_factory.mktemp("validate")
    monkeypatch.chdir(directory)
    name = data.draw(st.sampled_from([path.name for path in EXAMPLES]), label="source")
    path = _write(directory, mangle(data, SOURCES[name], name))
    _assert_clean_validate(*_validate(str(path)))


@pytest.mark.parametrize("name", ["unknown-tag", "recursive-alias-list", "newline-in-kind"])
def test_validate_command_on_pathological_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The regressions above, through `evopt validate`: exit 1 with positioned lines."""
    monkeypatch.delenv("EVOPT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "rules.yaml"
    path.write_text(PATHOLOGICAL[name], encoding="utf-8")
    code, out, err = _validate(str(path))
    _assert_clean_validate(code, out, err)
    assert code == 1
    assert err.startswith(f"{path}:")
