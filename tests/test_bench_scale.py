"""The scale benchmark's harness (benchmarks/scale.py): it runs, and its verdicts can fail.

Nothing here is timed: the figures are checked for presence and consistency, never against a
speed. `make bench` prints the real figures (docs/scale.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from optimizer.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "benchmarks" / "scale.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scale"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


scale = _load()


async def test_two_chargers_on_one_site_give_every_figure() -> None:
    figures = await scale.measure(scale.Shape(1, 1, 2), ticks=4, warmup=2)
    assert figures.shape.chargers == 2
    assert figures.ticks == 4
    assert figures.cpu_s > 0
    assert figures.cpu_ms_per_charger == pytest.approx(figures.cpu_ms_per_tick / 2)
    assert figures.warmup_cpu_s > 0
    assert figures.problems == {}  # every tick of the site worked
    assert list(figures.requests_per_hour) == ["owner@example.com"]
    # Each tick reads the site's status at least: 4 ticks of 30 s are >= 4 requests in 2 min.
    assert figures.requests_per_hour["owner@example.com"] >= 4 / (4 * 30 / 3600)
    assert figures.rss_mb > 0
    assert figures.decisions > 0  # the shared decision log was written
    # Every site reads its status each tick: that family is there, at the poll's rate or more.
    assert figures.families["status"] >= 120
    assert sum(figures.families.values()) == pytest.approx(
        figures.requests_per_hour["owner@example.com"]
    )
    data = figures.as_json()
    assert {
        "chargers",
        "sites",
        "accounts",
        "cpu_ms_per_tick",
        "cpu_ms_per_charger",
        "requests_per_hour_per_account",
        "rss_mb",
        "requests_per_hour_per_site_by_family",
    } <= set(data)
    lines = scale.report([figures], budget=600)
    assert any("of one core" in line for line in lines)
    assert any("busiest account" in line and "ok" in line for line in lines)
    assert any("by family" in line and "status" in line for line in lines)


async def test_each_account_logs_in_with_its_own_password_and_is_counted_apart() -> None:
    """Through the fleet: each account's password comes from the environment variable the
    generated `sites:` config names for it; a wrong one would show as "auth" problems."""
    figures = await scale.measure(scale.Shape(2, 1, 1), ticks=2, warmup=1)
    assert figures.problems == {}  # an auth failure would show as "auth"
    assert sorted(figures.requests_per_hour) == ["owner2@example.com", "owner@example.com"]
    assert all(n > 0 for n in figures.requests_per_hour.values())


def _figures(shape: object, *, cpu_s: float, per_hour: float, limited: int = 0) -> object:
    return scale.Figures(
        shape=shape,
        ticks=10,
        cpu_s=cpu_s,
        warmup_cpu_s=0.0,
        requests_per_hour={"a@example.com": per_hour},
        rate_limited_ticks=limited,
    )


def test_the_verdicts_flag_a_busy_account_a_full_core_and_growth_faster_than_n() -> None:
    small = _figures(scale.Shape(5, 1, 2), cpu_s=0.1, per_hour=300)  # 1 ms per charger
    large = _figures(scale.Shape(50, 1, 2), cpu_s=400.0, per_hour=700)  # 400 ms per charger
    text = "\n".join(scale.verdicts([small, large], budget=600))
    assert "OVER TARGET" in text  # 40 s of CPU per 30 s tick
    assert "GROWS FASTER THAN N" in text
    assert "700 requests/h (budget 600" in text
    assert "OVER)" in text


def test_the_verdicts_pass_a_flat_run_under_budget() -> None:
    small = _figures(scale.Shape(5, 1, 2), cpu_s=0.1, per_hour=300)
    large = _figures(scale.Shape(50, 1, 2), cpu_s=1.1, per_hour=310)
    text = "\n".join(scale.verdicts([small, large], budget=600))
    assert "OVER" not in text
    assert "GROWS" not in text
    assert "1.10 (1.0 = linear" in text


def test_a_429_fails_the_budget_verdict_even_under_the_hourly_count() -> None:
    run = _figures(scale.Shape(1, 1, 2), cpu_s=0.1, per_hour=500, limited=3)
    assert "3 ticks rate-limited, OVER" in "\n".join(scale.verdicts([run], budget=600))


@pytest.mark.parametrize("text", ["2:3", "a:b:c", "0:1:1", "1:1:-2"])
def test_a_bad_shape_says_what_a_shape_is(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="ACCOUNTS:SITES_PER_ACCOUNT"):
        scale.Shape.parse(text)


def test_passwords_follow_the_fake_clouds_accounts() -> None:
    assert scale.account_password("owner@example.com") == "correct-horse-battery"
    assert scale.account_password("owner7@example.com") == "correct-horse-battery-7"


def test_the_generated_config_is_a_sites_list_a_user_could_run(tmp_path: Path) -> None:
    """One item per site, each with its account's own password variable, one decision log."""
    sites = [
        scale.FakeSite(11, "owner@example.com", ("EV1", "EV2")),
        scale.FakeSite(12, "owner@example.com", ("EV3", "EV4")),
        scale.FakeSite(13, "owner2@example.com", ("EV5", "EV6")),
    ]
    config = load_config(scale.fleet_config("http://127.0.0.1:9", sites, tmp_path))
    views = config.site_configs()
    assert [v.enlighten.site_id for v in views] == [11, 12, 13]
    assert [v.enlighten.password_env for v in views] == [
        "EVOPT_BENCH_PASSWORD_1",
        "EVOPT_BENCH_PASSWORD_1",
        "EVOPT_BENCH_PASSWORD_2",
    ]
    assert len({v.account_key() for v in views}) == 2
    assert {v.database_path for v in views} == {tmp_path / "state" / "decisions.db"}


def test_the_capacity_is_the_largest_count_of_sites_that_fits() -> None:
    runs = [
        _figures(scale.Shape(1, 3, 2), cpu_s=0.1, per_hour=480),
        _figures(scale.Shape(1, 4, 2), cpu_s=0.1, per_hour=590),
        _figures(scale.Shape(1, 5, 2), cpu_s=0.1, per_hour=598, limited=12),
    ]
    lines = scale.capacity_report(runs, budget=600)
    assert lines[-1].strip() == "one account carries 4 sites of 2 (8 chargers) at a 30 s poll"
    assert [line.split()[-1] for line in lines[2:5]] == ["yes", "yes", "no"]
    over = scale.capacity_report(runs[2:], budget=600)
    assert "no measured count of sites fits" in over[-1]
