"""`make planner` (and part of `make bench`): issue 15's Done-when figures beside their bars.

For the bundled sample and the two seeded histories in other climates (`evopt simulate
--sample NAME`, docs/simulation.md), each with its own site config (tariffs, limits, battery),
the rules are replayed over the whole year twice, as `evopt simulate` does:

* ``--plans`` (exact): each session ready by its real unplug time minus 15 minutes, with the
  energy it took. Bars: at least 95 % of the perfect-foresight optimum's solar energy into the
  car, 0 kWh unmet (under 0.05 kWh is rounding), at most 4 commands per session.
* ``--plans learned``: the plans `plans: auto` gives, learned only from sessions that ended
  before each day. Bars: at least 90 % of the optimum's solar, unmet at most 1 % of the energy
  the sessions needed, at most 4 commands per session.

Each figure is printed beside its bar, marked PASS or MISS; the exit code is 0 either way (a
benchmark reports, the tests hold). Default rules: the example setup's (`config.example.yaml`'s
`rules:`, which the planner's `rules/` will be); ``--rules FILE...`` picks others.
``--from``/``--to`` (MM-DD) replay part of each year while iterating; ``--json`` prints the
figures as one object; ``--perfect-forecast`` replays the exact plans a third time with the
real surplus ahead as the forecast (:mod:`optimizer.planner.perfect`), which splits what a
look-ahead policy misses into the forecast's part and its own; ``--forecast-split`` replays
them twice more, with the real PV beside the forecast house load and the reverse, which
splits the forecast's part into the PV's and the load's; ``--exact-only`` skips the learned
plans while iterating.

Beside the bars, the **command-limited optimum** (:mod:`optimizer.simulate.command_limited`):
the perfect-foresight optimum when each session must have its energy by its exact plan's
ready-by (15 minutes before the unplug) with at most 4 commands as the replay counts them (the
charger's own levels and breaker, a level change's restart), and when the year's sessions
share 4 per session on average; each as a share of the unconstrained optimum's solar (which
charges to the unplug and sends any number of commands), beside the optimum with the ready-by
and any number of commands. Under the 0.95 bar, no policy meeting the plans could reach it;
above it, the gap between it and a policy is the forecast's and the policy's, not the command
budget's. It costs about as much CPU as one replay (``--no-ceiling`` skips it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optimizer.cli.args.simulate import DEFAULT_PLAN_MARGIN  # noqa: E402
from optimizer.cli.simulate import SiteSetup, load_history, site_setup  # noqa: E402
from optimizer.config import Config, load_config  # noqa: E402
from optimizer.engine.loader import load_config_rules, load_rules  # noqa: E402
from optimizer.planner.causal import CausalOutlooks  # noqa: E402
from optimizer.planner.perfect import HalfPerfectOutlooks, PerfectOutlooks  # noqa: E402
from optimizer.simulate.command_limited import ceiling, pooled  # noqa: E402
from optimizer.simulate.learned import series_plans  # noqa: E402
from optimizer.simulate.replay import replay  # noqa: E402
from optimizer.simulate.report import optimal_figures  # noqa: E402
from optimizer.simulate.sample import SAMPLES, sample_config_path, sample_paths  # noqa: E402
from optimizer.simulate.series import (  # noqa: E402
    UNMET_TOLERANCE_KWH,
    Figures,
    SiteSeries,
    figures,
    series_from_history,
)

YEAR = 2025
EXAMPLE_CONFIG = ROOT / "config.example.yaml"
PLANS = ("exact", "learned")
"""The replays the bars judge; ``--perfect-forecast`` adds "perfect", a diagnostic."""
COMMAND_BUDGET = 4
"""Issue 15's commands per session, the budget of the command-limited optimum."""
CEILING_CAP = 8
"""Commands per session the command-limited optimum works out exactly; a session given more
in the pooled budget is counted at the unconstrained optimum's solar (an upper bound)."""


@dataclass(frozen=True)
class Bar:
    """One Done-when figure: its value, the bar, and whether the value clears it."""

    sample: str
    plans: str  # "exact" | "learned"
    name: str
    value: float | None
    bar: str
    ok: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "sample": self.sample,
            "plans": self.plans,
            "figure": self.name,
            "value": None if self.value is None else round(self.value, 4),
            "bar": self.bar,
            "pass": self.ok,
        }


def need_kwh(series: SiteSeries) -> float:
    """The energy the sessions needed (what each car took in reality)."""
    return sum(session.energy_kwh for session in series.sessions)


def bars(sample: str, plans: str, run: Figures, best: Figures | None, need: float) -> list[Bar]:
    """The Done-when checks of one run (issue 15): solar against the optimum, unmet, commands.

    Exact plans must leave nothing unmet; learned ones at most 1 % of the need. A figure that
    cannot be computed (no optimum, no solar in it, no session) is a MISS, never a PASS.
    """
    pct = None
    if best is not None and best.ev_solar_kwh > 0:
        pct = run.ev_solar_kwh / best.ev_solar_kwh
    floor = 0.95 if plans == "exact" else 0.90
    found = [
        Bar(
            sample,
            plans,
            "% of optimum solar",
            pct,
            f">= {floor:.0%}",
            pct is not None and pct >= floor,
        )
    ]
    if plans == "exact":
        found.append(
            Bar(
                sample,
                plans,
                "unmet kWh",
                run.unmet_kwh,
                "0",
                run.unmet_kwh < UNMET_TOLERANCE_KWH,
            )
        )
    else:
        share = run.unmet_kwh / need if need > 0 else None
        found.append(
            Bar(
                sample,
                plans,
                "unmet % of need",
                share,
                "<= 1%",
                share is not None and share <= 0.01,
            )
        )
    per = run.commands_per_session
    found.append(
        Bar(sample, plans, "commands per session", per, "<= 4", per is not None and per <= 4)
    )
    return found


def _text(bar: Bar) -> str:
    if bar.value is None:
        shown = "n/a"
    elif "%" in bar.name:
        shown = f"{bar.value:.1%}"
    else:
        shown = f"{bar.value:.2f}"
    verdict = "PASS" if bar.ok else "MISS"
    return f"{bar.sample:<11}{bar.plans:<9}{bar.name:<22}{shown:>9}  {bar.bar:<7}{verdict}"


def example_rules() -> list[Path]:
    """The rule files of the example setup (what a new user, `make demo` and `simulate` get)."""
    return [Path(name) for name in load_config_rules(load_config(EXAMPLE_CONFIG)).files]


def _period(config: Config, zone: str, args: argparse.Namespace) -> tuple[datetime, datetime]:
    local = ZoneInfo(config.site.timezone or zone)
    first = date.fromisoformat(f"{YEAR}-{args.date_from}")
    last = date.fromisoformat(f"{YEAR}-{args.date_to}") + timedelta(days=1)
    start = datetime.combine(first, datetime.min.time(), tzinfo=local).astimezone(UTC)
    end = datetime.combine(last, datetime.min.time(), tzinfo=local).astimezone(UTC)
    return start, end


def run_sample(name: str, rules: Sequence[Path], args: argparse.Namespace) -> dict[str, Any]:
    """Both replays and the optimum on one bundled history; figures and timings."""
    config = load_config(sample_config_path(name))
    site = site_setup(config, None, zone=SAMPLES[name].timezone)
    energy_path, pages = sample_paths(name)
    energy, sessions = load_history(
        str(energy_path), [str(p) for p in pages], timezone=site.timezone
    )
    start, end = _period(config, site.timezone, args)
    series = series_from_history(
        energy, sessions, tariffs=config.tariffs, timezone=site.timezone, start=start, end=end
    )
    policies = load_rules(list(rules), tariffs=config.tariffs).enabled
    began = time.perf_counter()
    best = optimal_figures(series, site.limits, site.voltage_v, config.site.battery)
    seconds = {"optimal": time.perf_counter() - began}
    runs: dict[str, Figures] = {}
    for plans in _kinds(args):
        began = time.perf_counter()
        result = replay(
            series,
            policies,
            config=config,
            limits=site.limits,
            voltage_v=site.voltage_v,
            plan_margin=None if plans == "learned" else DEFAULT_PLAN_MARGIN,
            plans=(
                series_plans(series, known=sessions, settings=config.habits.settings())
                if plans == "learned"
                else None
            ),
            outlooks=_outlooks(plans, series, config),
        )
        home = result.battery.kwh() if result.battery is not None else None
        runs[plans] = figures(series, result.ev_kwh, commands=result.commands, battery=home)
        seconds[plans] = time.perf_counter() - began
    need = need_kwh(series)
    checks = [
        check
        for plans, run in runs.items()
        if plans in PLANS
        for check in bars(name, plans, run, best, need)
    ]
    limited = None if args.no_ceiling else command_limited(series, site, best)
    if limited is not None:
        seconds["ceiling"] = limited.pop("cpu_s")
    return {
        "sample": name,
        "buckets": len(series),
        "sessions": len(series.sessions),
        "need_kwh": round(need, 2),
        "optimal": None if best is None else best.to_json(),
        "runs": {plans: run.to_json() for plans, run in runs.items()},
        "seconds": {key: round(value, 2) for key, value in seconds.items()},
        "command_limited": limited,
        "checks": checks,
    }


def _kinds(args: argparse.Namespace) -> list[str]:
    """The replays asked for: the exact plans, the learned ones unless ``--exact-only``, then
    the diagnostics (the perfect forecast; its PV alone and its house load alone)."""
    kinds = ["exact"] if args.exact_only else list(PLANS)
    if args.perfect_forecast:
        kinds.append("perfect")
    if args.forecast_split:
        kinds += ["perfect_pv", "perfect_load"]
    return kinds


def _outlooks(plans: str, series: SiteSeries, config: Config) -> Any:
    """The outlook provider a diagnostic replay plans with (None: the causal forecast)."""
    if plans == "perfect":
        return PerfectOutlooks(series).at
    if plans in ("perfect_pv", "perfect_load"):
        causal = CausalOutlooks(series, config)
        return HalfPerfectOutlooks(causal, perfect="pv" if plans == "perfect_pv" else "load").at
    return None


def command_limited(
    series: SiteSeries, site: SiteSetup, best: Figures | None
) -> dict[str, float] | None:
    """The optimum's solar with at most :data:`COMMAND_BUDGET` commands in each session, and
    with that many per session pooled over the period, as shares of the optimum's solar (and
    the CPU seconds it took, which the caller moves to its timings)."""
    if best is None or best.ev_solar_kwh <= 0:
        return None
    began = time.process_time()
    found = ceiling(
        series, site.limits, site.voltage_v, most=CEILING_CAP, margin=DEFAULT_PLAN_MARGIN
    )
    return {
        "per_session": found.at(COMMAND_BUDGET) / best.ev_solar_kwh,
        "pooled": pooled(found, COMMAND_BUDGET) / best.ev_solar_kwh,
        "ready_by": found.unlimited() / best.ev_solar_kwh,
        "cpu_s": time.process_time() - began,
    }


FORECASTS = {
    "perfect": "perfect forecast",
    "perfect_pv": "perfect PV, causal load",
    "perfect_load": "causal PV, perfect load",
}


def _perfect_text(
    name: str, run: dict[str, Any], best: dict[str, Any] | None, kind: str = "perfect"
) -> str:
    solar = best.get("ev_solar_kwh") if best else None
    share = f"{run['ev_solar_kwh'] / solar:.1%}" if solar else "n/a"
    return (
        f"{name:<11}exact plans, {FORECASTS[kind]}: {share} of the optimum's solar, "
        f"{run['unmet_kwh']:.2f} kWh unmet, {run['commands_per_session'] or 0:.2f} commands a "
        "session (the rest to the command-limited optimum is the policy's structure)"
    )


def _ceiling_text(name: str, limited: dict[str, float] | None) -> str:
    if limited is None:
        return f"{name:<11}command-limited optimum: n/a"
    reach = "reachable" if limited["per_session"] >= 0.95 else "OUT OF REACH"
    return (
        f"{name:<11}command-limited optimum (ready by the plans' ready-by): "
        f"{limited['per_session']:.1%} of the optimum's solar with <= {COMMAND_BUDGET} commands "
        f"a session, {limited['pooled']:.1%} with {COMMAND_BUDGET} a session pooled "
        f"({limited['ready_by']:.1%} with any number); bar >= 95%: {reach}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/planner.py", description=__doc__)
    parser.add_argument("--rules", nargs="+", type=Path, metavar="FILE", help="rule files")
    parser.add_argument(
        "--samples", nargs="+", choices=tuple(SAMPLES), default=list(SAMPLES), metavar="NAME"
    )
    parser.add_argument("--from", dest="date_from", default="01-01", metavar="MM-DD")
    parser.add_argument("--to", dest="date_to", default="12-31", metavar="MM-DD")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--no-ceiling", action="store_true", help="skip the command-limited optimum"
    )
    parser.add_argument(
        "--perfect-forecast",
        action="store_true",
        help="replay the exact plans a third time with the real surplus as the forecast",
    )
    parser.add_argument(
        "--forecast-split",
        action="store_true",
        help="replay the exact plans with the real PV and the forecast load, then the reverse",
    )
    parser.add_argument("--exact-only", action="store_true", help="skip the learned plans' replay")
    args = parser.parse_args(argv)
    rules = args.rules or example_rules()
    shown = ", ".join(str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p) for p in rules)
    results = [run_sample(name, rules, args) for name in args.samples]
    checks = [check for result in results for check in result["checks"]]
    if args.json:
        for result in results:
            result["checks"] = [check.to_json() for check in result["checks"]]
        print(json.dumps({"rules": shown, "samples": results}, indent=2))
        return 0
    print(f"== issue 15 Done-when figures, rules: {shown} ({args.date_from}..{args.date_to}) ==")
    print(f"{'sample':<11}{'plans':<9}{'figure':<22}{'value':>9}  {'bar':<7}verdict")
    for check in checks:
        print(_text(check))
    if not args.no_ceiling:
        for result in results:
            print(_ceiling_text(result["sample"], result["command_limited"]))
    for result in results:
        for kind in FORECASTS:
            run = result["runs"].get(kind)
            if run is not None:
                print(_perfect_text(result["sample"], run, result["optimal"], kind))
    print()
    for result in results:
        best = result["optimal"] or {}
        runs, took = result["runs"], result["seconds"]
        print(
            f"{result['sample']}: {result['sessions']} sessions needing {result['need_kwh']:,.0f} "
            f"kWh; optimum {best.get('ev_solar_kwh', 0):,.0f} kWh solar into the car "
            f"({best.get('commands_per_session') or 0:.1f} commands/session); exact "
            f"{runs['exact']['ev_solar_kwh']:,.0f} kWh"
            + (f", learned {runs['learned']['ev_solar_kwh']:,.0f} kWh" if "learned" in runs else "")
            + "; replays "
            + ", ".join(f"{kind} {took[kind]:.1f} s" for kind in runs)
            + f", optimum {took['optimal']:.1f} s"
        )
    passed = sum(check.ok for check in checks)
    print(f"\n{passed} of {len(checks)} bars met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
