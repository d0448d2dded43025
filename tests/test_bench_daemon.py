"""The daemon benchmark's setup (benchmarks/daemon.py): the example config it runs must load.

`make bench` is not part of `make test`, so a config key the example gains (``rule_sets:``
with paths relative to the repository) broke the benchmark unnoticed; this keeps its setup
honest without running the hour of ticks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from optimizer.config import load_config
from optimizer.engine.loader import load_config_rules

ROOT = Path(__file__).resolve().parent.parent


def _daemon_bench() -> object:
    spec = importlib.util.spec_from_file_location("bench_daemon", ROOT / "benchmarks" / "daemon.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_daemon"] = module
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_runs_the_example_config_and_all_its_rules(tmp_path: Path) -> None:
    bench = _daemon_bench()
    path = bench.example_config("http://127.0.0.1:9", tmp_path)  # type: ignore[attr-defined]
    config = load_config(path)
    example = load_config(ROOT / "config.example.yaml")
    assert config.enlighten.base_url == "http://127.0.0.1:9"
    assert set(config.rule_sets) == set(example.rule_sets)
    ours = [p.name for p in load_config_rules(config).enabled]
    assert ours == [p.name for p in load_config_rules(example).enabled]


def test_with_the_planner_switched_on_the_planner_replaces_the_two_rules(tmp_path: Path) -> None:
    """``--planner``: the same policies, `solar-plan` enabled in place of `solar-surplus` and
    `overnight-top-up` (docs/planner.md's switch), every other policy as the example has it."""
    bench = _daemon_bench()
    path = bench.example_config("http://127.0.0.1:9", tmp_path, planner=True)  # type: ignore[attr-defined]
    switched = load_config_rules(load_config(path))
    example = load_config_rules(load_config(ROOT / "config.example.yaml"))
    shipped = {p.name for p in example.enabled}
    assert {p.name for p in switched.enabled} == shipped - {
        "solar-surplus",
        "overnight-top-up",
    } | {"solar-plan"}
    assert sorted(p.name for p in switched.policies) == sorted(p.name for p in example.policies)
