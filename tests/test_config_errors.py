"""Config errors are as good as rule errors: the key, what would be valid, the user's units.

One translation of pydantic's errors (optimizer/explain.py) serves the config and the rule
files. Beside a few exact messages, a sweep writes a matrix of bad values into every field of
the config and of every policy kind, and fails on any library wording that slips through.
"""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

from optimizer.config import Config, load_config
from optimizer.engine.loader import check_rules
from optimizer.engine.rules import POLICY_KINDS
from optimizer.explain import field_keys
from optimizer.yamlpos import YamlFileError

LIBRARY_WORDING = re.compile(
    r"Input should|Value error|validation error|Field required|Extra inputs|Assertion failed"
    r"|Input is|should be a valid|pydantic|type=|For further information|Unable to",
    re.IGNORECASE,
)
BAD_VALUES: list[Any] = [
    "not a value",
    "",
    -1_000_000,
    1_000_000_000,
    1.5,
    True,
    [1, "two"],
    {"k": 1},
    None,
    float("nan"),
    float("inf"),
]
# Values that make a mapping valid apart from the field under test.
REQUIRED: dict[str, Any] = {
    "capacity_kwh": 10,
    "price": 0.2,
    "windows": ["night"],
    "use_battery": True,
    "mode": "manual",
    "energy_kwh": 10,
    "by": "07:00",
}


def config_errors(tmp_path: Path, data: Any) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    try:
        load_config(path)
    except YamlFileError as err:
        return [str(p) for p in err.problems]
    return []


def one_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(YamlFileError) as err:
        load_config(path)
    [problem] = err.value.problems
    assert problem.file == str(path)
    return f"{problem.line}:{problem.column}: {problem.message}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "site:\n  max_current: 100\n",
            "2:3: site.max_current: must be at most 80 (amps), got 100",
        ),
        (
            "site:\n  timezon: UTC\n",
            "2:3: unknown key 'timezon' in 'site' (did you mean 'timezone'?); valid keys: "
            "latitude, longitude, timezone, voltage, max_current, battery, charger_priority",
        ),
        (
            "site:\n  charger_priority:\n    EV1: 2000\n",
            "3:5: site.charger_priority.EV1: must be at most 1000, got 2000",
        ),
        (
            "servce:\n  dry_run: true\n",
            "1:1: unknown key 'servce' (did you mean 'service'?); valid keys: enlighten, site, "
            "charger, engine, service, tariffs, surplus, rules, rule_sets, warnings, gateway, "
            "forecast, plans, habits, mqtt, sites",
        ),
        (
            "surplus:\n  source: latest-power\n",
            "2:3: surplus.source: must be 'auto', 'lifetime_energy', 'latest_power' or 'gateway', "
            "got "
            "'latest-power' (did you mean 'latest_power'?)",
        ),
        (
            "service:\n  dry_run: maybe\n",
            "2:3: service.dry_run: must be true or false, got 'maybe'",
        ),
        (
            "service:\n  poll_interval: [30]\n",
            "2:3: service.poll_interval: must be a duration like 30s, 5m or 1h, got a list",
        ),
        (
            "enlighten:\n  retries: lots\n",
            "2:3: enlighten.retries: must be a whole number, got 'lots'",
        ),
        (
            "enlighten:\n  budget_per_hour: 5\n",
            "2:3: enlighten.budget_per_hour: must be at least 30 (requests per hour), got 5",
        ),
        (
            "site:\n  voltage: 50\n",
            "2:3: site.voltage: must be at least 100 (volts), got 50",
        ),
        (
            "site:\n  battery:\n    capacity_kwh: 0\n",
            "3:5: site.battery.capacity_kwh: must be above 0 (kWh), got 0",
        ),
        (
            "tariffs:\n  windows:\n    night: {price: cheap}\n",
            "3:13: tariffs.windows.night.price: must be a number, got 'cheap'",
        ),
        (
            "tariffs:\n  windows:\n    night: {price: 0.1, tims: 00:00-06:00}\n",
            "3:25: unknown key 'tims' in 'tariffs.windows.night' (did you mean 'times'?); "
            "valid keys: price, times, days, months",
        ),
        (
            "charger:\n  direct_amps: on\n  start_amps: 5\n",
            "3:3: charger.start_amps: must be at least 6 (amps), got 5",
        ),
    ],
)
def test_config_errors_name_the_key_the_valid_values_and_the_unit(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert one_error(tmp_path, text) == expected


def test_internal_fields_are_not_offered_as_keys(tmp_path: Path) -> None:
    message = one_error(tmp_path, "sources: x\n")
    assert message.endswith(
        "valid keys: enlighten, site, charger, engine, service, tariffs, surplus, rules, "
        "rule_sets, warnings, gateway, forecast, plans, habits, mqtt, sites"
    )


# --- the sweep -----------------------------------------------------------------------------


def _model(annotation: Any) -> type[BaseModel] | None:
    if get_origin(annotation) in (Union, types.UnionType):
        found = [m for m in map(_model, get_args(annotation)) if m is not None]
        return found[0] if found else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _dict_of_models(annotation: Any) -> type[BaseModel] | None:
    args = get_args(annotation)
    return _model(args[1]) if get_origin(annotation) is dict and len(args) == 2 else None


def leaf_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key a user can write under ``model``, nested models and named maps included."""
    paths = []
    for name in field_keys(model):
        annotation = model.model_fields[name].annotation
        path = (*prefix, name)
        paths.append(path)
        inner = _model(annotation)
        if inner is not None:
            paths.extend(leaf_paths(inner, path))
        named = _dict_of_models(annotation)
        if named is not None:
            paths.extend(leaf_paths(named, (*path, "night")))
    return paths


CONFIG_PATHS = leaf_paths(Config)


def build(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A config with ``value`` at ``path`` and the required keys of the maps around it."""
    root: dict[str, Any] = {}
    here = root
    for key in path[:-1]:
        here = here.setdefault(key, {})
        if key == "battery":
            here["capacity_kwh"] = 10
        if key == "night":
            here["price"] = 0.2
    here[path[-1]] = value
    return root


def test_the_sweep_covers_the_whole_config() -> None:
    dotted = {".".join(p) for p in CONFIG_PATHS}
    assert {
        "site.max_current",
        "site.battery.reserve_pct",
        "tariffs.windows.night.times",
        "service.poll_interval",
        "surplus.source",
        "rules",
    } <= dotted


@pytest.mark.parametrize("path", CONFIG_PATHS, ids=".".join)
def test_no_bad_value_in_any_config_field_gets_library_wording(
    tmp_path: Path, path: tuple[str, ...]
) -> None:
    refused = 0
    for value in BAD_VALUES:
        errors = config_errors(tmp_path, build(path, value))
        refused += bool(errors)
        for line in errors:
            assert not LIBRARY_WORDING.search(line), line
            assert re.match(rf"^{re.escape(str(tmp_path))}/config\.yaml:\d+:\d+: ", line), line
            assert path[-1] in line or any(p in line for p in path), line
    assert refused, f"{'.'.join(path)} accepted every bad value"


def policy_paths() -> list[tuple[str, tuple[str, ...]]]:
    return [
        (kind, path)
        for kind, model in POLICY_KINDS.items()
        for path in leaf_paths(model)
        if path not in (("kind",), ("name",))
    ]


def policy_with(kind: str, path: tuple[str, ...], value: Any) -> dict[str, Any]:
    model = POLICY_KINDS[kind]
    policy: dict[str, Any] = {"name": "p", "kind": kind}
    for name, info in model.model_fields.items():
        if info.is_required() and name in REQUIRED:
            policy[name] = REQUIRED[name]
    here = policy
    for key in path[:-1]:
        here = here.setdefault(key, {})
        if key == "target":
            here.update(energy_kwh=10, by="07:00")
    here[path[-1]] = value
    return policy


@pytest.mark.parametrize(("kind", "path"), policy_paths(), ids=str)
def test_no_bad_value_in_any_rule_field_gets_library_wording(
    tmp_path: Path, kind: str, path: tuple[str, ...]
) -> None:
    refused = 0
    for value in BAD_VALUES:
        rule = tmp_path / "rule.yaml"
        text = yaml.safe_dump({"policies": [policy_with(kind, path, value)]}, sort_keys=False)
        rule.write_text(text, encoding="utf-8")
        _, errors = check_rules([rule], tariffs=None)
        refused += bool(errors)
        for problem in errors:
            assert not LIBRARY_WORDING.search(problem.message), str(problem)
    assert refused, f"{kind}.{'.'.join(path)} accepted every bad value"
