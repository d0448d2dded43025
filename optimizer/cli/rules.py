"""`evopt validate` and `evopt schema`: check a setup before it runs; help editors write rules.

`validate` never stops at the first problem: the config, every rule file and the checks
across them are all run, and every error is printed as ``file:line:col: message`` (warnings
as ``file:line:col: warning[code]: message``, the code being what silences one), so an editor
or CI can jump to each one. It reads the config itself rather than through the command line's
usual loading, because a broken config is one of the things it reports, not a reason to stop.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from optimizer.cli.context import Context
from optimizer.cli.output import print_json
from optimizer.config import Config, find_config, load_config
from optimizer.engine.loader import (
    CONFIG_SECTIONS,
    check_rules,
    config_level_problems,
    config_warnings,
    display_path,
    ignored_warnings,
    level_bounds,
    rule_paths,
)
from optimizer.engine.rules import rule_file_schema
from optimizer.enlighten.chargerlimits import read_charger_limits
from optimizer.enlighten.errors import EXIT_INVALID
from optimizer.levelcheck import LevelBounds
from optimizer.tariffs import Tariffs
from optimizer.yamlpos import Problem, YamlFileError, load_file

EXIT_OK = 0


@dataclass
class Report:
    """Everything one `evopt validate` run found."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    policies: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": [_problem_json(p) for p in self.errors],
            "warnings": [_problem_json(p) for p in self.warnings],
            "policies": self.policies,
            "files": self.files,
        }

    def summary(self) -> str:
        """``ok: 7 policies in 5 files (2 warnings)``."""
        policies = _count(self.policies, "policy", "policies")
        files = _count(len(self.files), "file", "files")
        count = len(self.warnings)
        warned = _count(count, "warning", "warnings") if count else "no warnings"
        return f"ok: {policies} in {files} ({warned})"


@dataclass
class _Setup:
    """The configs and rule files to check, and the config the checks across them use (tariff
    window names, the site's and the chargers' limits, the warnings silenced)."""

    configs: list[Config] = field(default_factory=list)
    rule_files: list[Path] = field(default_factory=list)
    tariffs: Tariffs | None = None
    main: Config | None = None


async def validate(ctx: Context) -> int:
    report = run_validate([Path(f) for f in ctx.args.files], ctx.args.config)
    if ctx.args.json:
        print_json(report.as_json())
    else:
        for problem in report.errors:
            sys.stderr.write(f"{problem}\n")
        for warning in report.warnings:
            sys.stderr.write(f"{warning.as_warning()}\n")
        if report.ok:
            print(report.summary())
    return EXIT_OK if report.ok else EXIT_INVALID


async def schema(ctx: Context) -> int:
    print_json(rule_file_schema())
    return EXIT_OK


def run_validate(files: list[Path], config_option: str | None) -> Report:
    """Validate ``files`` (configs and rule files), or the found config and its rules."""
    report = Report()
    if files:
        setup = _setup_from_files(files, config_option, report)
    else:
        setup = _setup_from_found(config_option, report)
    levels = _levels_of(setup.main)
    warnings: list[Problem] = []
    config_rules = []
    set_files: list[Path] = []
    for config in setup.configs:
        if config.sites is not None:
            warnings.extend(_check_sites(config, report))
            continue
        warnings.extend(config_warnings(config))
        if levels is not None:
            errors, found = config_level_problems(config, levels)
            report.errors.extend(errors)
            warnings.extend(found)
        config_rules.extend(_rule_files_of(config, report))
        set_files.extend(_check_rule_sets(config, report, levels))
    # A config's own rules come first: they are the setup, files named beside it are extras.
    rule_files = _unique([*config_rules, *setup.rule_files])
    report.files.extend(str(p) for p in _unique([*rule_files, *set_files]))
    loaded, errors = check_rules(rule_files, tariffs=setup.tariffs, levels=levels)
    report.errors.extend(errors)
    warnings.extend(loaded.warnings)
    report.warnings = ignored_warnings(setup.main, warnings) if setup.main else warnings
    report.policies += len(loaded.policies)
    return report


def _check_sites(config: Config, report: Report) -> list[Problem]:
    """Each site of a ``sites:`` list checked on its own: its rules against its tariff windows
    and its site limit, as its service will load them. A rule file two sites share may be
    fine for one and wrong for the other, so its problems say which site they are about.
    Returns the warnings (those about the global sections once, not once per site)."""
    warnings: dict[Problem, None] = {}
    for view in config.site_configs():
        levels = _levels_of(view)
        warnings.update(dict.fromkeys(config_warnings(view)))
        if levels is not None:
            errors, found = config_level_problems(view, levels)
            report.errors.extend(e for e in errors if e not in report.errors)
            warnings.update(dict.fromkeys(found))
        files = _rule_files_of(view, report)
        report.files.extend(str(p) for p in files if str(p) not in report.files)
        loaded, errors = check_rules(files, tariffs=_tariffs_of(view), levels=levels)
        report.errors.extend(_about_site(view, p) for p in errors)
        warnings.update(dict.fromkeys(_about_site(view, p) for p in loaded.warnings))
        report.policies += len(loaded.policies)
        more = _check_rule_sets(view, report, levels)
        report.files.extend(str(p) for p in more if str(p) not in report.files)
    return list(warnings)


def _check_rule_sets(config: Config, report: Report, levels: LevelBounds | None) -> list[Path]:
    """Each of ``rule_sets:`` on its own, as the service loads it when it is chosen (its
    warnings are the default rules' business: a set replaces them, it is not added).
    Returns the files checked."""
    checked: list[Path] = []
    for name, patterns in config.rule_sets.items():
        view = config.model_copy(update={"rules": patterns})
        try:
            files = rule_paths(view)
        except YamlFileError:
            continue  # the config's own check names the pattern at its line
        checked.extend(files)
        _, errors = check_rules(files, tariffs=_tariffs_of(config), levels=levels)
        report.errors.extend(
            replace(p, message=f"rule set {name!r}: {p.message}")
            for p in errors
            if replace(p, message=f"rule set {name!r}: {p.message}") not in report.errors
        )
    return checked


def _about_site(view: Config, problem: Problem) -> Problem:
    return replace(problem, message=f"site {view.label}: {problem.message}")


def _levels_of(config: Config | None) -> LevelBounds | None:
    """The limits levels are checked against: the config's site limit and the chargers the
    state dir knows (from the last summary the service or a command read)."""
    if config is None:
        return None
    return level_bounds(config, read_charger_limits(config.state_dir))


def _setup_from_found(config_option: str | None, report: Report) -> _Setup:
    """No files given: the config found as usual (or the defaults) and its rules."""
    config = _found_config(config_option, report)
    if config is None:
        return _Setup()
    if config.source is not None:
        report.files.append(str(display_path(config.source)))
    return _Setup(configs=[config], tariffs=_tariffs_of(config), main=config)


def _setup_from_files(files: list[Path], config_option: str | None, report: Report) -> _Setup:
    """Files given: configs are checked with their rules, the rest as rule files.

    Tariff names are checked against the first config given, else against the config found
    as usual; a config given but broken checks none (its own errors are reported).
    """
    config_files = [p for p in files if _looks_like_config(p)]
    report.files.extend(str(p) for p in config_files)
    configs = [c for c in (_load_config(p, report) for p in config_files) if c is not None]
    main = configs[0] if configs else None
    if not config_files:
        main = _found_config(config_option, report)
    tariffs = _tariffs_of(main) if main is not None else None
    rule_files = [p for p in files if p not in config_files]
    return _Setup(configs=configs, rule_files=rule_files, tariffs=tariffs, main=main)


def _found_config(config_option: str | None, report: Report) -> Config | None:
    try:
        return find_config(config_option)
    except YamlFileError as err:
        report.errors.extend(err.problems)
        return None


def _load_config(path: Path, report: Report) -> Config | None:
    try:
        return load_config(path)
    except YamlFileError as err:
        report.errors.extend(err.problems)
        return None


def _rule_files_of(config: Config, report: Report) -> list[Path]:
    try:
        return rule_paths(config)
    except YamlFileError as err:
        report.errors.extend(err.problems)
        return []


def _tariffs_of(config: Config) -> Tariffs | None:
    """Tariff names are checked only against a config that came from a file."""
    return config.tariffs if config.source is not None else None


def _looks_like_config(path: Path) -> bool:
    """A file whose top-level keys include config sections (and no ``policies``)."""
    try:
        data = load_file(path).data
    except YamlFileError:
        return False
    return isinstance(data, dict) and "policies" not in data and bool(CONFIG_SECTIONS & set(data))


def _unique(paths: list[Path]) -> list[Path]:
    """A file named on the command line and matched by a config's globs is read once."""
    seen: dict[Path, Path] = {}
    for path in paths:
        seen.setdefault(path.resolve(), path)
    return list(seen.values())


def _problem_json(problem: Problem) -> dict[str, Any]:
    found: dict[str, Any] = {
        "file": problem.file,
        "line": problem.line,
        "column": problem.column,
        "message": problem.message,
    }
    if problem.code is not None:
        found["code"] = problem.code
    return found


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"
