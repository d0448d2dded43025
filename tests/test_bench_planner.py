"""The planner benchmark's harness (benchmarks/planner.py): its bars can fail, and it runs.

Nothing here is timed; `make planner` prints the real figures (docs/simulation.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from optimizer.simulate.series import Figures

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_planner", ROOT / "benchmarks" / "planner.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_planner"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


planner = _load()


def _figures(*, solar: float, unmet: float, commands: int, sessions: int) -> Figures:
    return Figures(
        ev_energy_kwh=100.0,
        ev_solar_kwh=solar,
        solar_share=solar / 100,
        unmet_kwh=unmet,
        grid_import_kwh=0.0,
        grid_export_kwh=0.0,
        cost=0.0,
        commands=commands,
        sessions=sessions,
    )


BEST = _figures(solar=50.0, unmet=0.0, commands=400, sessions=10)


def _verdicts(plans: str, run: Figures, best: Figures | None = BEST) -> dict[str, bool]:
    return {bar.name: bar.ok for bar in planner.bars("s", plans, run, best, 200.0)}


def test_exact_bars_pass_at_the_bar_and_miss_just_below() -> None:
    at_bar = _figures(solar=47.5, unmet=0.0, commands=40, sessions=10)
    assert _verdicts("exact", at_bar) == {
        "% of optimum solar": True,
        "unmet kWh": True,
        "commands per session": True,
    }
    short = _figures(solar=47.4, unmet=0.05, commands=41, sessions=10)
    assert _verdicts("exact", short) == {
        "% of optimum solar": False,
        "unmet kWh": False,
        "commands per session": False,
    }


def test_learned_bars_take_unmet_as_a_share_of_the_need() -> None:
    ok = _figures(solar=45.0, unmet=2.0, commands=30, sessions=10)  # 2 of 200 kWh: 1 %
    assert _verdicts("learned", ok) == {
        "% of optimum solar": True,
        "unmet % of need": True,
        "commands per session": True,
    }
    bars = planner.bars("s", "learned", ok, BEST, 200.0)
    assert [bar.value for bar in bars] == [pytest.approx(0.9), pytest.approx(0.01), 3.0]
    worse = _figures(solar=44.9, unmet=2.1, commands=30, sessions=10)
    assert _verdicts("learned", worse)["% of optimum solar"] is False
    assert _verdicts("learned", worse)["unmet % of need"] is False


def test_a_figure_that_cannot_be_computed_is_a_miss() -> None:
    run = _figures(solar=10.0, unmet=0.0, commands=0, sessions=0)
    verdicts = _verdicts("exact", run, best=None)
    assert verdicts["% of optimum solar"] is False
    assert verdicts["commands per session"] is False
    sunless = _figures(solar=0.0, unmet=0.0, commands=0, sessions=3)
    assert _verdicts("exact", run, best=sunless)["% of optimum solar"] is False


def test_a_short_run_on_each_history_gives_every_figure(tmp_path: Path) -> None:
    rules = [ROOT / "rules" / "excess-solar.yaml"]
    args = argparse.Namespace(
        date_from="06-23",
        date_to="06-25",
        no_ceiling=False,
        perfect_forecast=True,
        forecast_split=True,
        exact_only=False,
    )
    for name in ("greensboro", "phoenix"):
        result = planner.run_sample(name, rules, args)
        assert result["buckets"] == 3 * 96
        assert result["sessions"] > 0
        assert set(result["runs"]) == {
            "exact",
            "learned",
            "perfect",
            "perfect_pv",
            "perfect_load",
        }
        limited = result["command_limited"]
        assert 0 < limited["per_session"] <= limited["pooled"] <= limited["ready_by"] <= 1 + 1e-9
        checks = result["checks"]
        assert [(c.plans, c.name) for c in checks][:3] == [
            ("exact", "% of optimum solar"),
            ("exact", "unmet kWh"),
            ("exact", "commands per session"),
        ]
        assert len(checks) == 6
        best = result["optimal"]
        for plans, run in result["runs"].items():
            assert run["ev_solar_kwh"] <= best["ev_solar_kwh"] + 1e-6, plans
    assert planner.example_rules()  # the example setup's rule files resolve


def test_the_command_limited_optimum_says_when_the_bar_is_out_of_reach() -> None:
    under = {"per_session": 0.949, "pooled": 0.96, "ready_by": 0.97}
    over = {"per_session": 0.95, "pooled": 0.96, "ready_by": 0.97}
    assert planner._ceiling_text("s", under).endswith("OUT OF REACH")
    assert planner._ceiling_text("s", over).endswith("reachable")
    assert planner._ceiling_text("s", None).endswith("n/a")
