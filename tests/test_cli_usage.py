"""The command line on wrong arguments and missing files: usage errors, never a traceback.

The documented exit codes (README, docs/operations.md section 13) are what scripts and systemd
act on: 2 is "usage: unknown command or option" and is not restarted, 1 is "invalid config,
rules or input", 70 is a bug. A typo on the command line must therefore be an argparse usage
error (exit 2, the usage line and one ``error:`` line on stderr) before anything is read or
sent; a missing file must be one line naming it with exit 1. The commands are enumerated from
``build_parser()`` so that a new command or option is covered without editing this file.

Nothing here may reach the network: every test runs with the socket layer refusing to connect
and fails if anything tried, in an empty directory with no config and no session.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.cli import build_parser, main

SAMPLE_ENERGY = (
    Path(__file__).resolve().parent.parent
    / "optimizer"
    / "simulate"
    / "sample"
    / "data"
    / "lifetime_energy.json"
)
ERROR_LINE = re.compile(r"^evopt(?: [\w-]+)*: error: \S")
BAD = "not-a-valid-value%"

# A valid value for every required argument, by dest: lets a test supply all but one of them.
# A new required argument without an entry here fails test_required_values_are_known.
REQUIRED_VALUES = {
    "mode": "MANUAL_CHARGING",
    "state": "on",
    "start": "01:00",
    "end": "02:00",
    "slot": "1",
    "message": "MeterValues",
    "by": "07:00",
    "energy": "5",
    "id": "1",
    "day": "2025-01-15",
    "name": "default",
}


# --- the command tree --------------------------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse._SubParsersAction[Any]]:
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def command_tree(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser of the command line with the words that reach it, the top one first."""
    yield path, parser
    for action in _subparsers(parser):
        for name, sub in action.choices.items():
            yield from command_tree(sub, (*path, name))


def _required(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Arguments argparse insists on (``nargs='*'`` positionals are formally required too)."""
    return [
        a
        for a in parser._actions
        if a.required
        and not isinstance(a, argparse._SubParsersAction)
        and a.nargs not in ("*", "?")
    ]


def _words(action: argparse.Action) -> list[str]:
    value = REQUIRED_VALUES[action.dest]
    return [action.option_strings[0], value] if action.option_strings else [value]


def required_args(parser: argparse.ArgumentParser, *, without: object = None) -> list[str]:
    """Valid values for the required arguments, positionals first, leaving out ``without``."""
    actions = [a for a in _required(parser) if a is not without]
    positionals = [w for a in actions if not a.option_strings for w in _words(a)]
    options = [w for a in actions if a.option_strings for w in _words(a)]
    return positionals + options


def _name(action: argparse.Action) -> str:
    """How argparse names an argument in its messages."""
    if action.option_strings:
        return "/".join(action.option_strings)
    return str(action.metavar or action.dest)


def _typed(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Arguments whose value argparse checks itself (a type or a list of choices)."""
    return [
        a
        for a in parser._actions
        if (a.type is not None or a.choices is not None)
        and not isinstance(a, argparse._SubParsersAction)
    ]


PARSER = build_parser()
TREE = list(command_tree(PARSER))
COMMANDS = [(path, parser) for path, parser in TREE if parser.get_default("handler") is not None]
GROUPS = [(path, parser) for path, parser in TREE if _subparsers(parser)]
# Groups that do nothing without an action (`evopt log` is a command of its own).
ACTION_GROUPS = [(path, parser) for path, parser in GROUPS if not parser.get_default("handler")]
REQUIRED = [(path, parser, action) for path, parser in COMMANDS for action in _required(parser)]
TYPED = [(path, parser, action) for path, parser in COMMANDS for action in _typed(parser)]


def _ids(cases: list[Any]) -> list[str]:
    ids = []
    for case in cases:
        words = " ".join(case[0]) or "evopt"
        ids.append(f"{words} {_name(case[2])}" if len(case) > 2 else words)
    return ids


# --- running it --------------------------------------------------------------------------------


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    """`evopt` in-process, offline; each run checks that nothing tried to connect."""

    capsys: pytest.CaptureFixture[str]
    attempts: list[str] = field(default_factory=list)

    def run(self, *argv: str) -> Result:
        code: object
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
        out, err = self.capsys.readouterr()
        assert isinstance(code, int), code
        assert self.attempts == [], f"{argv} tried the network: {self.attempts}"
        assert "Traceback" not in err, err
        assert "internal error" not in err, err
        return Result(code, out, err)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """No config, no session, no real home directory, no network."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("EVOPT_CONFIG", "EVOPT_LOG_LEVEL", "ENLIGHTEN_EMAIL", "ENLIGHTEN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    runner = Cli(capsys)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        runner.attempts.append(repr(args[:2]))
        raise OSError("the network is off in test_cli_usage")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return runner


def assert_usage_error(result: Result, *fragments: str) -> str:
    """Exit 2, nothing on stdout, the usage and exactly one ``error:`` line (the last)."""
    assert result.code == 2, result
    assert result.out == ""
    lines = result.err.splitlines()
    assert lines, "a usage error must say something"
    assert lines[0].startswith("usage: evopt"), result.err
    errors = [line for line in lines if ERROR_LINE.match(line)]
    assert errors == [lines[-1]], result.err
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def assert_one_line(result: Result, code: int, *fragments: str) -> str:
    """A failure that is not a usage error: the exit code and one line on stderr."""
    assert result.code == code, result
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# --- the command tree is what the tests below walk -----------------------------------------------


def test_the_command_tree_is_walked() -> None:
    """The enumeration finds the commands the README documents; if it found none, every
    parametrized test below would pass vacuously."""
    found = {" ".join(path) for path, _ in COMMANDS}
    assert {"login", "status", "charge start", "mode set", "schedule add", "validate"} <= found
    assert {"history fetch", "plan set", "log", "log show", "run", "simulate"} <= found
    assert len(COMMANDS) >= 25
    assert {" ".join(path) for path, _, _ in REQUIRED} >= {"mode set", "schedule add", "log show"}
    assert len(TYPED) > len(COMMANDS)  # --log-level on every command, and more


def test_required_values_are_known() -> None:
    """Every required argument has a valid value in REQUIRED_VALUES."""
    assert {action.dest for _, _, action in REQUIRED} <= set(REQUIRED_VALUES)


# --- unknown commands and options ----------------------------------------------------------------


@pytest.mark.parametrize(("path", "parser"), GROUPS, ids=_ids(GROUPS))
def test_unknown_command(cli: Cli, path: tuple[str, ...], parser: argparse.ArgumentParser) -> None:
    """`evopt frobnicate`, `evopt charge frobnicate`: exit 2 naming the word and the choices."""
    del parser
    assert_usage_error(cli.run(*path, "frobnicate"), "invalid choice: 'frobnicate'")


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=_ids(COMMANDS))
def test_unknown_option(cli: Cli, path: tuple[str, ...], parser: argparse.ArgumentParser) -> None:
    """Every command, given all it needs plus an option it does not know: exit 2 naming it.

    A command that swallowed unknown options (``nargs=REMAINDER``, ``parse_known_args``) would
    go on to act on a command line the user did not mean.
    """
    result = cli.run(*path, *required_args(parser), "--no-such-option")
    assert_usage_error(result, "unrecognized arguments: --no-such-option")


@pytest.mark.parametrize(("path", "parser"), ACTION_GROUPS, ids=_ids(ACTION_GROUPS))
def test_group_without_its_action(
    cli: Cli, path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    """`evopt`, `evopt charge`: the missing COMMAND or ACTION is a usage error."""
    del parser
    assert_usage_error(cli.run(*path), "the following arguments are required:")


# --- missing and wrong values --------------------------------------------------------------------


@pytest.mark.parametrize(("path", "parser", "action"), REQUIRED, ids=_ids(REQUIRED))
def test_missing_required_argument(
    cli: Cli, path: tuple[str, ...], parser: argparse.ArgumentParser, action: argparse.Action
) -> None:
    """Each required argument left out (the others given): exit 2 naming that argument."""
    result = cli.run(*path, *required_args(parser, without=action))
    error = assert_usage_error(result, "the following arguments are required:")
    assert _name(action) in error


@pytest.mark.parametrize(("path", "parser", "action"), TYPED, ids=_ids(TYPED))
def test_value_of_the_wrong_type(
    cli: Cli, path: tuple[str, ...], parser: argparse.ArgumentParser, action: argparse.Action
) -> None:
    """Every argument argparse checks, given garbage: exit 2 naming the argument."""
    rest = required_args(parser, without=action)
    if action.option_strings:
        argv = [*path, *rest, f"{action.option_strings[0]}={BAD}"]
    else:
        argv = [*path, BAD, *rest]
    assert_usage_error(cli.run(*argv), f"argument {_name(action)}:")


USAGE_ERRORS = [
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["status", "--bogus"], "unrecognized arguments: --bogus"),
    (["--log-level", "loud", "status"], "argument --log-level: invalid choice: 'loud'"),
    (["charge", "start", "--amps", "x"], "argument --amps: invalid int value: 'x'"),
    (["charge", "start", "--amps"], "argument --amps: expected one argument"),
    (["mode", "set", "FOO"], "argument MODE: unknown mode 'FOO'"),
    (["mode", "set"], "the following arguments are required: MODE"),
    (["battery", "set", "maybe"], "argument state: invalid choice: 'maybe'"),
    (["schedule", "add", "--start", "01:00"], "the following arguments are required: --end"),
    (
        ["schedule", "add", "--start", "01:00", "--end", "02:00", "--days", "funday"],
        "argument --days:",
    ),
    (["schedule", "set"], "the following arguments are required: SLOT"),
    (["history", "fetch", "--from", "notadate"], "argument --from:"),
    (["history", "fetch", "--to", "2025-02-30"], "argument --to:"),
    (["history", "fetch", "--max-requests", "many"], "argument --max-requests:"),
    (["log", "--since", "nonsense"], "argument --since: 'nonsense' is not a time"),
    (["log", "--until", "2025-13-01"], "argument --until:"),
    (["log", "--since", "99999999999999999999d"], "argument --since:"),
    (["log", "--since", "800000d"], "outside the calendar"),
    (["log", "--until", "9999-12-31"], "outside the calendar"),
    (["log", "--since", "0001-01-01T00:00+05:00"], "outside the calendar"),
    (["log", "--limit", "-1"], "argument --limit: must be 0 (no limit) or more"),
    (["log", "--json", "--csv"], "not allowed with argument"),
    (["log", "show", "abc"], "argument ID: invalid int value: 'abc'"),
    (["simulate", "--plan-margin", "-5m"], "argument --plan-margin:"),
    (["simulate", "--plan-margin", "soon"], "argument --plan-margin:"),
    (["simulate", "--plan-margin", "99999999999999999999d"], "not a usable duration"),
    (["simulate", "--from", "2025-13-01"], "argument --from:"),
    (
        ["simulate", "--plot-day", "2025-01-01", "--plot-week", "2025-01-06"],
        "not allowed with argument",
    ),
    (["plan", "set", "--by", "07:00", "--energy", "0"], "argument --energy:"),
    (["plan", "set", "--by", "07:00", "--energy", "nan"], "argument --energy:"),
    (["plan", "set", "--by", "07:00", "--energy", "lots"], "is not a number of kWh"),
    (["plan", "set", "--energy", "5"], "the following arguments are required: --by"),
    (["validate", "--bogus"], "unrecognized arguments: --bogus"),
    (["run", "--bogus"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize(
    ("argv", "fragment"), USAGE_ERRORS, ids=[" ".join(argv) for argv, _ in USAGE_ERRORS]
)
def test_usage_errors(cli: Cli, argv: list[str], fragment: str) -> None:
    """The cases from the issue and the hostile values behind them, with their messages."""
    assert_usage_error(cli.run(*argv), fragment)


def test_plan_by_that_is_not_a_time(cli: Cli) -> None:
    """`--by` is read against the site's zone, so it is checked by the command, not argparse;
    it is still a usage error (exit 2) in one line, and nothing is stored."""
    result = cli.run("plan", "set", "--by", "25:99", "--energy", "5")
    assert_one_line(result, 2, "--by: '25:99' is not a time of day")
    assert not any(Path.cwd().rglob("*.db"))


def test_schedule_times_that_are_not_hh_mm_are_usage_errors(cli: Cli) -> None:
    """A malformed time is refused by argparse (exit 2), before any login or request; whether
    a well-formed time makes sense for the slot is the edit's check (exit 1)."""
    result = cli.run("schedule", "add", "--start", "25:00", "--end", "07:00")
    assert result.code == 2, result
    assert "'25:00' is not a time of day" in result.err


# --- hostile values never crash the parser -------------------------------------------------------

HOSTILE = st.sampled_from(
    [
        "",
        " ",
        "-1",
        "-5m",
        "0",
        "nan",
        "inf",
        "-inf",
        "1e400",
        "9" * 30,
        "9" * 5000,
        "99999999999999999999d",
        "99999999999999999999w",
        "800000d",
        "1e400h",
        "0001-01-01",
        "9999-12-31",
        "0001-01-01T00:00+14:00",
        "9999-12-31T23:59-12:00",
        "2025-02-30",
        "24:00",
        "\x00",
        "é",
        "mon-sun-mon",
        "8-1",
        "1,,2",
    ]
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(case=st.sampled_from(TYPED), value=HOSTILE | st.text(max_size=30))
def test_argument_types_give_usage_errors_or_values(
    case: tuple[tuple[str, ...], argparse.ArgumentParser, argparse.Action], value: str
) -> None:
    """Any text for any checked argument: parsed, or SystemExit(2), never another exception
    (argparse turns only ValueError and TypeError from a type function into a usage error; an
    OverflowError escapes as a traceback before `main` can catch anything)."""
    path, parser, action = case
    rest = required_args(parser, without=action)
    if action.option_strings:
        argv = [*path, *rest, f"{action.option_strings[0]}={value}"]
    else:
        argv = [*path, *rest, "--", value]
    outcome: object = "parsed"
    try:
        PARSER.parse_args(argv)
    except SystemExit as exit_:
        outcome = exit_.code
    assert outcome in ("parsed", 2), (argv, outcome)


# --- missing config and input files --------------------------------------------------------------

CONFIG_COMMANDS = [(path, parser) for path, parser in COMMANDS if path != ("schema",)]


@pytest.mark.parametrize(("path", "parser"), CONFIG_COMMANDS, ids=_ids(CONFIG_COMMANDS))
def test_missing_config_file(
    cli: Cli, tmp_path: Path, path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    """`--config` naming a missing file: exit 1 (invalid config) with one positioned line
    naming it, before the command does anything (`validate` reports it the same way)."""
    missing = tmp_path / "nonexistent.yaml"
    result = cli.run("--config", str(missing), *path, *required_args(parser))
    assert_one_line(result, 1, f"{missing}:1:1: config file not found (--config)")


def test_missing_config_file_after_the_command(cli: Cli) -> None:
    """`--config` is accepted after the command too, with the same result."""
    result = cli.run("status", "--config", "/nonexistent.yaml")
    assert_one_line(result, 1, "/nonexistent.yaml:1:1: config file not found (--config)")


def test_missing_config_file_from_the_environment(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$EVOPT_CONFIG naming a missing file is the same error, saying where the name came from."""
    monkeypatch.setenv("EVOPT_CONFIG", "/nonexistent.yaml")
    result = cli.run("status")
    assert_one_line(result, 1, "/nonexistent.yaml:1:1: config file not found ($EVOPT_CONFIG)")


def test_schema_needs_no_config(cli: Cli) -> None:
    """`evopt schema` reads no config at all, so a missing one does not stop it."""
    result = cli.run("--config", "/nonexistent.yaml", "schema")
    assert result.code == 0, result
    assert json.loads(result.out)["type"] == "object"


def test_validate_missing_rule_file(cli: Cli, tmp_path: Path) -> None:
    """A rule file named on the command line and missing is a positioned problem, exit 1."""
    missing = tmp_path / "nope.yaml"
    assert_one_line(cli.run("validate", str(missing)), 1, f"{missing}:1:1: file not found")


def _write(directory: Path, name: str, content: str | bytes) -> str:
    path = directory / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


BAD_INPUTS: dict[str, tuple[str | bytes, str]] = {
    "not-json": ("{'start_date': 1}", "not JSON"),
    "truncated": ('{"start_date": "2025-10-25", "production": [1, 2', "not JSON"),
    "not-utf8": (b"\xff\xfe{}", "not JSON"),
    "nested-100k": ("[" * 100_000 + "]" * 100_000, "cannot read"),
    "int-5000-digits": ('{"start_date": ' + "9" * 5000 + "}", "cannot read"),
    "wrong-shape": ("[1, 2, 3]", "lifetime energy reply is not an object"),
    "no-start-date": ('{"production": [1, 2]}', "no readable start_date"),
}


def test_simulate_missing_energy_file(cli: Cli, tmp_path: Path) -> None:
    """The issue's case: one line naming the file, exit 1 (invalid input)."""
    missing = str(tmp_path / "nonexistent.json")
    assert_one_line(cli.run("simulate", "--energy", missing), 1, f"{missing}: cannot read")


def test_simulate_energy_is_a_directory(cli: Cli, tmp_path: Path) -> None:
    assert_one_line(cli.run("simulate", "--energy", str(tmp_path)), 1, f"{tmp_path}: cannot read")


@pytest.mark.parametrize("name", BAD_INPUTS, ids=BAD_INPUTS.keys())
def test_simulate_unusable_energy_file(cli: Cli, tmp_path: Path, name: str) -> None:
    """Broken history files are invalid input naming the file, not an internal error."""
    content, fragment = BAD_INPUTS[name]
    path = _write(tmp_path, f"{name}.json", content)
    assert_one_line(cli.run("simulate", "--energy", path), 1, f"{path}: ", fragment)


@pytest.mark.parametrize("name", ["missing", "nested-100k", "int-5000-digits", "wrong-shape"])
def test_simulate_unusable_sessions_file(cli: Cli, tmp_path: Path, name: str) -> None:
    """The same for a session-history page, read after a good energy file."""
    if name == "missing":
        path = str(tmp_path / "nonexistent.json")
    else:
        path = _write(tmp_path, f"{name}.json", BAD_INPUTS[name][0])
    result = cli.run("simulate", "--energy", str(SAMPLE_ENERGY), "--sessions", path)
    assert_one_line(result, 1, f"{path}: ")


def test_simulate_sessions_without_energy(cli: Cli, tmp_path: Path) -> None:
    """`--sessions` alone cannot be simulated: one line saying what is missing."""
    path = _write(tmp_path, "page.json", '{"data": {"result": []}}')
    assert_one_line(cli.run("simulate", "--sessions", path), 1, "--sessions needs --energy")


@pytest.mark.parametrize("dates", [["--to", "9999-12-31"], ["--from", "9999-12-31"]])
def test_simulate_dates_at_the_end_of_the_calendar(cli: Cli, dates: list[str]) -> None:
    """Valid dates whose day after (or bucket range) leaves the calendar: invalid input."""
    result = cli.run("simulate", "--energy", str(SAMPLE_ENERGY), "--no-log", *dates)
    assert_one_line(result, 1)
