"""Loading rule files: every problem at its ``file:line:col``, checks across files, warnings.

People write these files by hand and run the service unattended, so a mistake must be found
before it runs and reported where it is. Each policy is validated on its own (one bad policy
does not hide the next), every file is read before anything is raised, and pydantic's messages
are rewritten into sentences that name the key and say what would be valid. Checks that need
more than one policy (unique names, tariff window names, same-priority overlaps) run after.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ValidationError

from optimizer.config import Config
from optimizer.engine.rules import (
    BOUND_PAIRS,
    POLICY_KINDS,
    TARGETS,
    Policy,
    PolicyBase,
    RuleFile,
    ScheduleSync,
    TariffWindow,
    When,
)
from optimizer.enlighten.chargerlimits import ChargerLimit
from optimizer.explain import did_you_mean, show, unknown_key_message, validation_problems
from optimizer.levelcheck import LevelBounds, check_level, level_fields
from optimizer.tariffs import Tariffs
from optimizer.timespec import DAY_SETS, TimeRange
from optimizer.warncodes import (
    LATEST_POWER_SIGN,
    POLICY_OVERLAP,
    TARIFF_OVERLAP,
    UNKNOWN_WARNING_CODE,
    WARNING_CODES,
    unknown_code_message,
    without_ignored,
)
from optimizer.yamlpos import Document, Loc, Problem, YamlFileError, load_file

KINDS = tuple(POLICY_KINDS)
TOP_LEVEL_KEYS = tuple(RuleFile.model_fields)
CONFIG_SECTIONS = frozenset(name for name, info in Config.model_fields.items() if not info.exclude)
_DAY = 24 * 60
_WEEK = 7 * _DAY
_WHOLE_DAY = (TimeRange(0, _DAY),)
_ALL_MONTHS = tuple(range(1, 13))


@dataclass(frozen=True)
class Origin:
    """Where a policy was written: shown as ``file:line`` in warnings and decisions."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class RulesError(YamlFileError):
    """Rule files that cannot be used: every problem in every file, each with its position."""


@dataclass(frozen=True)
class LoadedRules:
    """The policies of a set of rule files, in file order, enabled and disabled alike."""

    policies: tuple[Policy, ...] = ()
    origins: dict[str, Origin] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)
    files: tuple[str, ...] = ()

    @property
    def enabled(self) -> tuple[Policy, ...]:
        return tuple(p for p in self.policies if p.enabled)


@dataclass(frozen=True)
class _Parsed:
    """A policy that validated, with the document and path it came from (for positions)."""

    policy: Policy
    doc: Document
    loc: Loc

    @property
    def origin(self) -> Origin:
        line, column = self.doc.position(self.loc)
        return Origin(self.doc.file, line, column)

    def problem(
        self, path: Iterable[str | int], message: str, *, code: str | None = None
    ) -> Problem:
        return self.doc.problem((*self.loc, *path), message, code=code)


@dataclass
class _Load:
    """What loading a set of files found so far."""

    parsed: list[_Parsed] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    names: dict[str, Origin] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


# --- public API ---------------------------------------------------------------------------


def check_rules(
    paths: Sequence[Path], *, tariffs: Tariffs | None, levels: LevelBounds | None = None
) -> tuple[LoadedRules, list[Problem]]:
    """Load rule files and return what loaded plus every error, without raising.

    ``tariffs`` is the config's section when a config was found: tariff window names are then
    checked against it. With None, names cannot be known and are not checked. ``levels``
    (`evopt validate`) checks every level against the site's and the chargers' limits.
    Warnings a policy lists in its ``ignore_warnings`` are left out.
    """
    state = _Load()
    for path in paths:
        state.files.append(str(path))
        doc = _read(path, state.errors)
        if doc is not None:
            for loc, raw in _policy_items(doc, state.errors):
                _add_policy(state, doc, loc, raw)
    if tariffs is not None:
        state.errors.extend(_unknown_windows(state.parsed, tariffs))
    warnings = _ignore_code_warnings(state.parsed)
    if levels is not None:
        for item in state.parsed:
            errors, found = _level_problems(item, levels)
            state.errors.extend(errors)
            warnings.extend(found)
    warnings.extend(_overlap_warnings(state.parsed))
    loaded = LoadedRules(
        policies=tuple(p.policy for p in state.parsed),
        origins={p.policy.name: p.origin for p in state.parsed},
        warnings=sorted(warnings, key=lambda w: (w.file, w.line, w.column)),
        files=tuple(state.files),
    )
    return loaded, state.errors


def load_rules(paths: Sequence[Path], *, tariffs: Tariffs | None) -> LoadedRules:
    """Load rule files; any error in any of them raises :class:`RulesError` with all of them."""
    loaded, errors = check_rules(paths, tariffs=tariffs)
    if errors:
        raise RulesError(errors)
    return loaded


def load_rule_file(path: Path) -> list[Policy]:
    """The policies of one rule file (tariff names unchecked); raises :class:`RulesError`."""
    return list(load_rules([path], tariffs=None).policies)


def rule_paths(config: Config) -> list[Path]:
    """The rule files ``config.rules`` names, in the order the patterns are listed.

    Patterns are relative to the config file's directory (the current one without a config
    file), so the service finds its rules wherever it is started. Each pattern's matches are
    sorted and a file is listed once. A pattern that matches nothing is an error: a typo in
    a path must not silently leave the engine without its policies.
    """
    base = config.source.parent if config.source is not None else Path.cwd()
    found: dict[Path, Path] = {}
    errors = []
    for index, pattern in enumerate(config.rules):
        matches = _expand(base, pattern)
        if not matches:
            message = f"rules: {pattern!r} matches no file"
            errors.append(_config_problem(config, ("rules", index), message))
        for match in matches:
            found.setdefault(match.resolve(), match)
    if errors:
        raise RulesError(errors)
    return list(found.values())


def load_config_rules(config: Config) -> LoadedRules:
    """Every policy the config's ``rules`` list loads, checked against its tariff windows.

    What the service loads. Tariff names are checked only when the config came from a file
    (defaults know no windows).
    """
    tariffs = config.tariffs if config.source is not None else None
    return load_rules(rule_paths(config), tariffs=tariffs)


OBSOLETE_SIGN = (
    "surplus.latest_power_sign is obsolete and ignored: get_latest_power is PV production, "
    "not net grid power (docs/surplus.md); remove the key"
)


def config_warnings(config: Config) -> list[Problem]:
    """Warnings about the config itself: tariff windows that overlap (the first listed wins),
    keys that are obsolete but still accepted, unknown codes in ``warnings.ignore``.

    Not yet filtered by ``warnings.ignore``: see :func:`ignored_warnings`.
    """
    warnings = []
    if "latest_power_sign" in config.surplus.model_fields_set:
        warnings.append(
            _config_problem(
                config, ("surplus", "latest_power_sign"), OBSOLETE_SIGN, code=LATEST_POWER_SIGN
            )
        )
    warnings.extend(
        _config_problem(
            config,
            ("tariffs", "windows", later),
            f"tariff windows '{later}' and '{earlier}' overlap; where both match, "
            f"'{earlier}' (listed first) wins",
            code=TARIFF_OVERLAP,
        )
        for earlier, later in combinations(config.tariffs.windows, 2)
        if _windows_overlap(config.tariffs, earlier, later)
    )
    warnings.extend(
        _config_problem(
            config,
            ("warnings", "ignore", index),
            unknown_code_message(code, "warnings.ignore"),
            code=UNKNOWN_WARNING_CODE,
        )
        for index, code in enumerate(config.warnings.ignore)
        if code not in WARNING_CODES
    )
    return warnings


def ignored_warnings(config: Config, warnings: Iterable[Problem]) -> list[Problem]:
    """``warnings`` without those whose code the config's ``warnings.ignore`` lists."""
    return without_ignored(warnings, config.warnings.ignore)


def level_bounds(config: Config, chargers: Sequence[ChargerLimit] = ()) -> LevelBounds:
    """The limits levels are checked against: ``site.max_current`` (with where it is written)
    and the chargers whose limits the state dir knows."""
    site_max = config.site.max_current
    at = "the config"
    if site_max is not None:
        place = _config_problem(config, ("site", "max_current"), "")
        at = f"{place.file}:{place.line}:{place.column}"
    return LevelBounds(site_max=site_max, site_max_at=at, chargers=tuple(chargers))


def config_level_problems(
    config: Config, bounds: LevelBounds
) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) for the levels the config itself sets (``charger.start_amps``)."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for section in sorted(CONFIG_SECTIONS):
        model = getattr(config, section)
        if not isinstance(model, BaseModel):
            continue
        for key, amps in level_fields(model):
            for finding in check_level(f"{section}.{key}", amps, bounds):
                problem = _config_problem(
                    config, (section, key), finding.message, code=finding.code
                )
                (errors if finding.is_error else warnings).append(problem)
    return errors, warnings


def display_path(path: Path) -> Path:
    """``path`` relative to the current directory when inside it: what people want to read.

    Not when the current directory is the root (a service under systemd): ``etc/...`` would
    read worse than the absolute path.
    """
    cwd = Path.cwd()
    if cwd == Path(cwd.anchor):
        return path
    try:
        return path.resolve().relative_to(cwd)
    except ValueError:
        return path


# --- one file -----------------------------------------------------------------------------


def _read(path: Path, errors: list[Problem]) -> Document | None:
    try:
        return load_file(path)
    except YamlFileError as err:
        errors.extend(err.problems)
        return None


def _policy_items(doc: Document, errors: list[Problem]) -> list[tuple[Loc, Any]]:
    """The raw policy entries of a file, after checking its top level."""
    data = doc.data
    if data is None:
        errors.append(doc.problem((), f"{_name(doc)} is empty; a rule file needs 'policies:'"))
        return []
    if not isinstance(data, dict):
        errors.append(
            doc.problem((), f"a rule file must be a mapping with 'policies:', not {_kind_of(data)}")
        )
        return []
    errors.extend(_top_level_problems(doc, data))
    policies = data.get("policies")
    if "policies" not in data:
        return []
    if policies is None or policies == []:
        errors.append(doc.problem(("policies",), f"{_name(doc)} has no policies"))
        return []
    if not isinstance(policies, list):
        errors.append(
            doc.problem(
                ("policies",),
                f"'policies' must be a list (each policy starting with '- name:'), "
                f"not {_kind_of(policies)}",
            )
        )
        return []
    return [(("policies", index), raw) for index, raw in enumerate(policies)]


def _top_level_problems(doc: Document, data: dict[str, Any]) -> Iterator[Problem]:
    for key in data:
        if key in CONFIG_SECTIONS:
            yield doc.problem(
                (key,),
                f"unknown key '{key}' (this looks like a config file section; a rule file has "
                f"only {' and '.join(TOP_LEVEL_KEYS)})",
            )
        elif key not in TOP_LEVEL_KEYS:
            yield doc.problem((key,), unknown_key_message(key, TOP_LEVEL_KEYS, where=None))
    if "policies" not in data:
        yield doc.problem((), f"{_name(doc)} has no 'policies:' list")
    if "version" in data and data["version"] != 1:
        version = show(data["version"])
        yield doc.problem(("version",), f"version: {version} is not supported; use 1")


def _add_policy(state: _Load, doc: Document, loc: Loc, raw: Any) -> None:
    if not isinstance(raw, dict):
        state.errors.append(
            doc.problem(loc, f"a policy must be a mapping with name and kind, not {_kind_of(raw)}")
        )
        return
    unique = _check_unique(state, doc, loc, raw.get("name"))
    model = _kind_model(doc, loc, raw, state.errors)
    if model is None:
        return
    try:
        policy = cast(Policy, model.model_validate(raw))
    except ValidationError as err:
        problems = validation_problems(doc, err, model=model, loc=loc, label=_label(raw))
        state.errors.extend(problems)
        return
    if unique:  # a duplicate is still validated, but kept out of the checks across policies
        state.parsed.append(_Parsed(policy, doc, loc))


def _check_unique(state: _Load, doc: Document, loc: Loc, name: Any) -> bool:
    """Names identify policies in decisions and memory: a second one is an error at it."""
    if not isinstance(name, str):
        return True
    line, column = doc.position((*loc, "name"))
    first = state.names.get(name)
    if first is None:
        state.names[name] = Origin(doc.file, line, column)
        return True
    state.errors.append(
        Problem(doc.file, line, column, f"duplicate policy name '{name}' (first at {first})")
    )
    return False


def _kind_model(
    doc: Document, loc: Loc, raw: dict[str, Any], errors: list[Problem]
) -> type[PolicyBase] | None:
    """The model of the policy's kind; checked first, since it decides every other key."""
    kinds = ", ".join(KINDS)
    if "kind" not in raw:
        errors.append(doc.problem(loc, f"{_label(raw)}missing 'kind'; one of {kinds}"))
        return None
    kind = raw["kind"]
    model = POLICY_KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        hint = did_you_mean(kind, KINDS) if isinstance(kind, str) else ""
        errors.append(
            doc.problem((*loc, "kind"), f"unknown kind {show(kind)}{hint}; one of {kinds}")
        )
    return model


# --- checks across policies ----------------------------------------------------------------


def _unknown_windows(parsed: Sequence[_Parsed], tariffs: Tariffs) -> Iterator[Problem]:
    known = list(tariffs.windows)
    listed = ", ".join(known) if known else "none (add them under tariffs.windows)"
    for item in parsed:
        for path, names in _window_references(item.policy):
            for index, name in enumerate(names):
                if name not in tariffs.windows:
                    yield item.problem(
                        (*path, index),
                        f"unknown tariff window '{name}'{did_you_mean(name, known)}; "
                        f"the config's windows: {listed}",
                    )


def _window_references(policy: Policy) -> Iterator[tuple[Loc, list[str]]]:
    if policy.when.tariff:
        yield ("when", "tariff"), policy.when.tariff
    if isinstance(policy, TariffWindow | ScheduleSync):
        yield ("windows",), policy.windows


def _ignore_code_warnings(parsed: Sequence[_Parsed]) -> list[Problem]:
    """An unknown code in a policy's ``ignore_warnings`` is a warning itself (a typo there
    would silently silence nothing)."""
    return [
        item.problem(
            ("ignore_warnings", index),
            unknown_code_message(code, "ignore_warnings"),
            code=UNKNOWN_WARNING_CODE,
        )
        for item in parsed
        for index, code in enumerate(item.policy.ignore_warnings)
        if code not in WARNING_CODES and UNKNOWN_WARNING_CODE not in item.policy.ignore_warnings
    ]


def _level_problems(item: _Parsed, bounds: LevelBounds) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) for each level the policy sets; warnings it ignores are left out."""
    errors, warnings = [], []
    for key, amps in level_fields(item.policy):
        for finding in check_level(key, amps, bounds, item.policy.chargers):
            problem = item.problem((key,), finding.message, code=finding.code)
            if finding.is_error:
                errors.append(problem)
            elif finding.code not in item.policy.ignore_warnings:
                warnings.append(problem)
    return errors, warnings


def _overlap_warnings(parsed: Sequence[_Parsed]) -> list[Problem]:
    """Same-priority policies that set the same target and could apply at the same moment.

    The engine resolves such a tie by file order, which is rarely what the author meant. The
    check is conservative: chargers, days, months, times and exclusive conditions (sun up or
    down, plugged in or not, bounds that cannot both hold) are compared; anything else (tariff
    windows, surplus against state of charge) is assumed compatible.
    """
    enabled = [p for p in parsed if p.policy.enabled]
    warnings = []
    for earlier, later in combinations(enabled, 2):
        if POLICY_OVERLAP in (*earlier.policy.ignore_warnings, *later.policy.ignore_warnings):
            continue  # either side may say the competition is meant
        shared = _shared_targets(earlier.policy, later.policy)
        if shared and _may_coincide(earlier.policy, later.policy):
            warnings.append(_overlap_warning(earlier, later, shared))
    return warnings


def _shared_targets(a: Policy, b: Policy) -> list[str]:
    if a.priority != b.priority:
        return []
    return [t for t in TARGETS[a.kind] if t in TARGETS[b.kind]]


def _overlap_warning(earlier: _Parsed, later: _Parsed, targets: list[str]) -> Problem:
    first, second = earlier.policy, later.policy
    return later.problem(
        ("priority",),
        f"'{second.name}' and '{first.name}' ({earlier.origin}) both set "
        f"{' and '.join(targets)} at priority {second.priority} and can apply at the same time; "
        f"'{first.name}' wins by file order. Give one a different priority or make their "
        "conditions exclusive",
        code=POLICY_OVERLAP,
    )


def _may_coincide(a: Policy, b: Policy) -> bool:
    if a.chargers is not None and b.chargers is not None and not set(a.chargers) & set(b.chargers):
        return False
    return _conditions_may_coincide(a.when, b.when)


def _conditions_may_coincide(a: When, b: When) -> bool:
    """Days, months and times are checked independently at a moment, as the engine does."""
    if not set(a.days or DAY_SETS["all"]) & set(b.days or DAY_SETS["all"]):
        return False
    if not set(a.months or _ALL_MONTHS) & set(b.months or _ALL_MONTHS):
        return False
    if _exclusive(a, b):
        return False
    return _spans_intersect(_day_spans(a.time or _WHOLE_DAY), _day_spans(b.time or _WHOLE_DAY))


def _exclusive(a: When, b: When) -> bool:
    """Conditions that can never hold together."""
    for key in ("sun", "plugged_in"):
        mine, theirs = getattr(a, key), getattr(b, key)
        if mine is not None and theirs is not None and mine != theirs:
            return True
    for low_key, high_key in BOUND_PAIRS:
        for x, y in ((a, b), (b, a)):
            low, high = getattr(x, low_key), getattr(y, high_key)
            if low is not None and high is not None and low >= high:
                return True
    return False


def _day_spans(times: Iterable[TimeRange]) -> list[tuple[int, int]]:
    """Minutes of the day covered; a range crossing midnight is split at it."""
    spans = []
    for r in times:
        if r.crosses_midnight:
            spans.extend([(r.start, _DAY), (0, r.end)])
        else:
            spans.append((r.start, r.end))
    return spans


def _week_spans(days: Iterable[int], times: Iterable[TimeRange]) -> list[tuple[int, int]]:
    """Minutes of the week a tariff window covers.

    A window's range that crosses midnight belongs to the day it starts on (see tariffs.py),
    and a span past the end of Sunday wraps to Monday, so it is split in two.
    """
    spans = []
    for day in days:
        for r in times:
            start = (day - 1) * _DAY + r.start
            end = start + r.minutes
            if end <= _WEEK:
                spans.append((start, end))
            else:
                spans.extend([(start, _WEEK), (0, end - _WEEK)])
    return spans


def _spans_intersect(a: Sequence[tuple[int, int]], b: Sequence[tuple[int, int]]) -> bool:
    return any(s1 < e2 and s2 < e1 for s1, e1 in a for s2, e2 in b)


def _windows_overlap(tariffs: Tariffs, first: str, second: str) -> bool:
    one, two = tariffs.windows[first], tariffs.windows[second]
    if not set(one.months) & set(two.months):
        return False
    return _spans_intersect(_week_spans(one.days, one.times), _week_spans(two.days, two.times))


# --- small helpers -------------------------------------------------------------------------


def _expand(base: Path, pattern: str) -> list[Path]:
    expanded = os.path.expanduser(pattern)
    full = expanded if os.path.isabs(expanded) else str(base / expanded)
    matches = sorted(glob.glob(full, recursive=True))
    return [display_path(Path(match)) for match in matches if Path(match).is_file()]


def _config_problem(config: Config, loc: Loc, message: str, *, code: str | None = None) -> Problem:
    """A problem in the config file at ``loc``; at line 1 when the file cannot be re-read."""
    if config.source is None:
        return Problem("(default config)", 1, 1, message, code)
    shown = str(display_path(config.source))
    try:
        doc = load_file(config.source)
    except YamlFileError:
        return Problem(shown, 1, 1, message, code)
    line, column = doc.position(config.config_loc(loc))
    return Problem(shown, line, column, message, code)


def _name(doc: Document) -> str:
    return Path(doc.file).name


def _label(raw: dict[str, Any]) -> str:
    name = raw.get("name")
    return f"policy '{name}': " if isinstance(name, str) else ""


def _dotted(path: Loc) -> str:
    return ".".join(str(part) for part in path)


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"the value {show(value)}"
