"""Where `--plans learned` leaves energy unmet, by cause (issue 15 item 2).

Replays the bundled histories (`evopt simulate --sample NAME`, each with its own site config)
over 2025 with learned plans (causal, optimizer/simulate/learned.py) and the planner as the
only policy (`rules/solar-plan.yaml`, enabled here), and splits each session's unmet energy:

* **asked too little**: the plan's energy was below what the car took (up to the difference);
* **departure too late**: the rest, when the car left before the plan's ready-by;
* **planner**: the rest, when the plan's ready-by was in time (the planner did not deliver it);
* **cut by the period's end**: the rest of a session that runs past the replayed period (the
  last of the year): the report counts what it missed as unmet too. Its learned plan is
  ready by the period's end (optimizer/simulate/learned.py, as exact plans are), so what is
  left here is what the period did not leave time for.

With the share of the optimum's solar and the commands per session beside the bars (0.90,
1 % of the need, 4). ``--leave-quantile``/``--energy-quantile`` replace the samples' habit
settings; ``--stop-at-departure`` replays without the overdue rule (a learned plan past its
departure no longer moves on: what charging stopped at the estimate would give);
``--no-optimum`` skips the optimum (no share); ``--from``/``--to`` (MM-DD) part of the year.

Where the solar goes (docs/planner.md, "Where the solar goes"): ``--split`` replays exact plans
too (`--plans exact`'s) and splits the solar the learned plans lost against them session by
session, by how each plan differed from the truth (ready-by over an hour early, energy over
1 kWh high, both, neither). ``--plans exact-departure|exact-energy|exact`` replays oracle
plans that know part of the truth (the real departure with the learned energy, or the other
way round): the share each oracle recovers is what learning that part costs, and what no
plan of this family can beat. CPU seconds are printed, never wall time (the machine is
shared).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import optimizer.simulate.replay as replay_module  # noqa: E402
from benchmarks.planner import _period, need_kwh  # noqa: E402
from optimizer.cli.args.simulate import DEFAULT_PLAN_MARGIN as EXACT_MARGIN  # noqa: E402
from optimizer.cli.simulate import load_history, site_setup  # noqa: E402
from optimizer.config import load_config  # noqa: E402
from optimizer.engine.loader import load_rules  # noqa: E402
from optimizer.engine.snapshot import DeparturePlan  # noqa: E402
from optimizer.forecast.habits import NO_HISTORY  # noqa: E402
from optimizer.simulate.learned import series_plans  # noqa: E402
from optimizer.simulate.report import optimal_figures  # noqa: E402
from optimizer.simulate.sample import SAMPLES, sample_config_path, sample_paths  # noqa: E402
from optimizer.simulate.series import (  # noqa: E402
    BUCKET,
    UNMET_TOLERANCE_KWH,
    Session,
    SiteSeries,
    figures,
    series_from_history,
)

PLANNER_RULES = ROOT / "rules" / "solar-plan.yaml"
# `--method milp`: the file's planner with the MILP at the setting its figures were measured
# at (docs/planner.md, "Eighth pass": the file ships `method: dp` at 0.1).
MILP_CHANGE_COST_KWH = 0.25


def cpu_s() -> float:
    """CPU seconds of this process and its finished children: a long replay runs its second
    half in a forked child (optimizer/simulate/replay.py), the optimum in a pool."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Short:
    """One session's unmet energy split by cause (kWh)."""

    asked: float = 0.0
    late: float = 0.0
    planner: float = 0.0
    cut: float = 0.0  # the session runs past the replayed period (no plan, or its end cut)

    @property
    def total(self) -> float:
        return self.asked + self.late + self.planner + self.cut


def attribute(
    session: Session, plan: DeparturePlan | None, delivered: float, period_end: datetime
) -> Short:
    """Split what ``session`` missed: first what its plan did not ask for, then the rest by
    whether the car left before the plan's ready-by (module docstring)."""
    unmet = max(0.0, session.energy_kwh - delivered)
    if unmet < UNMET_TOLERANCE_KWH:
        return Short()
    if plan is None:
        return Short(cut=unmet)
    asked = min(unmet, max(0.0, session.energy_kwh - plan.energy_kwh))
    rest = unmet - asked
    if session.end > period_end:
        return Short(asked=asked, cut=rest)
    if plan.ready_by > session.end:
        return Short(asked=asked, late=rest)
    return Short(asked=asked, planner=rest)


def delivered_per_session(series: SiteSeries, ev_kwh: Sequence[float]) -> list[float]:
    """The energy each session got over its window (as :func:`figures` counts it)."""
    return [sum(ev_kwh[index] for index in series.window(session)) for session in series.sessions]


def run_sample(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The learned replay (and the optimum) on one bundled history, its unmet by cause."""
    config = load_config(sample_config_path(name))
    site = site_setup(config, None, zone=SAMPLES[name].timezone)
    energy_path, pages = sample_paths(name)
    energy, raw = load_history(str(energy_path), [str(p) for p in pages], timezone=site.timezone)
    start, end = _period(config, site.timezone, args)
    series = series_from_history(
        energy, raw, tariffs=config.tariffs, timezone=site.timezone, start=start, end=end
    )
    settings = config.habits.settings()
    if args.leave_quantile is not None:
        settings = replace(settings, leave_quantile=args.leave_quantile)
    if args.energy_quantile is not None:
        settings = replace(settings, energy_quantile=args.energy_quantile)
    shipped = load_rules([PLANNER_RULES], tariffs=config.tariffs).policies[0]
    update: dict[str, Any] = {"enabled": True}
    if getattr(args, "method", None) == "milp":  # the alternative, at its measured setting
        update |= {"method": "milp", "change_cost_kwh": MILP_CHANGE_COST_KWH}
    policies = [shipped.model_copy(update=update)]
    began = cpu_s()
    plans = oracle_plans(series, series_plans(series, known=raw, settings=settings), args.plans)
    result = replay_module.replay(
        series, policies, config=config, limits=site.limits, voltage_v=site.voltage_v, plans=plans
    )
    cpu = {"replay": cpu_s() - began}
    run = figures(series, result.ev_kwh, commands=result.commands)
    best = None
    if not args.no_optimum:
        began = cpu_s()
        best = optimal_figures(series, site.limits, site.voltage_v, config.site.battery)
        cpu["optimal"] = cpu_s() - began
    shorts = [
        attribute(session, plan, got, series.starts[-1] + BUCKET)
        for session, plan, got in zip(
            series.sessions, plans, delivered_per_session(series, result.ev_kwh), strict=True
        )
    ]
    lost = None
    if args.split:
        began = cpu_s()
        exact = replay_module.replay(
            series,
            policies,
            config=config,
            limits=site.limits,
            voltage_v=site.voltage_v,
            plans=oracle_plans(series, plans, "exact"),
        )
        cpu["exact"] = cpu_s() - began
        lost = solar_lost(series, plans, result.ev_kwh, exact.ev_kwh)
    need = need_kwh(series)
    by_cause = {
        "asked too little": sum(s.asked for s in shorts),
        "departure too late": sum(s.late for s in shorts),
        "planner": sum(s.planner for s in shorts),
        "cut by the period's end": sum(s.cut for s in shorts),
    }
    return {
        "sample": name,
        "plans": args.plans,
        "settings": {"leave": settings.leave_quantile, "energy": settings.energy_quantile},
        "sessions": len(series.sessions),
        "sessions_with_plan": sum(plan is not None for plan in plans),
        "no_history_plans": sum(plan is not None and plan.learned == NO_HISTORY for plan in plans),
        "need_kwh": round(need, 1),
        "unmet_kwh": round(run.unmet_kwh, 1),
        "unmet_share": round(run.unmet_kwh / need, 4) if need > 0 else None,
        "short_sessions": sum(s.total >= UNMET_TOLERANCE_KWH for s in shorts),
        "by_cause_kwh": {cause: round(kwh, 1) for cause, kwh in by_cause.items()},
        "solar_share": (
            round(run.ev_solar_kwh / best.ev_solar_kwh, 4)
            if best is not None and best.ev_solar_kwh > 0
            else None
        ),
        "ev_solar_kwh": round(run.ev_solar_kwh, 1),
        "commands_per_session": run.commands_per_session,
        "solar_lost_kwh": lost,
        "optimum_solar_kwh": None if best is None else round(best.ev_solar_kwh, 1),
        "cpu_s": {key: round(value, 1) for key, value in cpu.items()},
    }


EARLY = timedelta(hours=1)  # a ready-by this much before the real departure is "early"
HIGH_KWH = 1.0  # an energy this much above what the car took is "high"
LOST_CLASSES = ("departure early", "energy high", "both", "neither")


def solar_per_session(series: SiteSeries, ev_kwh: Sequence[float]) -> list[float]:
    """The solar each session got (as :func:`figures` counts it: the car's share of the
    surplus, bucket by bucket), each bucket to the first session whose window holds it."""
    surplus = [
        0.0 if series.missing[i] else max(series.pv_kwh[i] - series.house_kwh[i], 0.0)
        for i in range(len(series.starts))
    ]
    taken: set[int] = set()
    out = []
    for session in series.sessions:
        window = [i for i in series.window(session) if i not in taken]
        taken.update(window)
        out.append(sum(min(ev_kwh[i], surplus[i]) for i in window))
    return out


def lost_class(session: Session, plan: DeparturePlan | None) -> str:
    """Which way a learned plan differs from the truth (module constants' thresholds)."""
    if plan is None:
        return "neither"
    early = plan.ready_by < session.end - EXACT_MARGIN - EARLY
    high = plan.energy_kwh > session.energy_kwh + HIGH_KWH
    if early and high:
        return "both"
    return "departure early" if early else "energy high" if high else "neither"


def solar_lost(
    series: SiteSeries,
    plans: Sequence[DeparturePlan | None],
    learned_kwh: Sequence[float],
    exact_kwh: Sequence[float],
) -> dict[str, dict[str, float]]:
    """The solar the learned plans lost against exact ones, by session and by how the plan
    differed from the truth: ready-by over an hour before the real departure (grid bought
    before a sun that would have come), energy over 1 kWh above what the car took (the car
    full from the grid before the sun), both, or neither (a later or smaller plan: it can
    gain solar, at the risk of unmet energy). kWh lost and sessions per class."""
    learned = solar_per_session(series, learned_kwh)
    exact = solar_per_session(series, exact_kwh)
    out = {name: {"kwh": 0.0, "sessions": 0.0} for name in LOST_CLASSES}
    for session, plan, got, best in zip(series.sessions, plans, learned, exact, strict=True):
        cls = out[lost_class(session, plan)]
        cls["kwh"] += best - got
        cls["sessions"] += 1
    return {k: {"kwh": round(v["kwh"], 1), "sessions": v["sessions"]} for k, v in out.items()}


ORACLES = ("learned", "exact", "exact-departure", "exact-energy", "exact-less")
LESS = 0.99  # exact-less: the energy asked, of what the car took (1 % of the need unmet)


def oracle_plans(
    series: SiteSeries, learned: Sequence[DeparturePlan | None], kind: str
) -> list[DeparturePlan | None]:
    """The learned plans with part of the truth put in, to split what learning costs:

    * ``exact``: the real departure (less the 15 min margin of ``--plans exact``, cut at the
      period's end) and energy, as a driver's plan (not ``learned``: no overdue rule);
    * ``exact-departure``: the real departure, the learned energy;
    * ``exact-energy``: the learned departure, the energy the car really took;
    * ``exact-less``: exact plans asking 1 % less than the car took: the share a plan may
      gain by leaving the unmet bar's 1 % short, the frontier's corner.

    The hybrids keep their ``learned`` label, so the overdue rule treats them as learned."""
    if kind == "learned":
        return list(learned)
    period_end = series.starts[-1] + BUCKET
    out: list[DeparturePlan | None] = []
    for session, plan in zip(series.sessions, learned, strict=True):
        true_by = min(session.end - EXACT_MARGIN, period_end)
        if kind == "exact":
            out.append(DeparturePlan(true_by, session.energy_kwh))
        elif kind == "exact-less":
            out.append(DeparturePlan(true_by, session.energy_kwh * LESS))
        elif plan is None:
            out.append(None)
        elif kind == "exact-departure":
            out.append(replace(plan, ready_by=true_by))
        else:
            out.append(replace(plan, energy_kwh=session.energy_kwh))
    return out


def _stop_at_departure(
    plan: DeparturePlan, now: datetime, delivered_kwh: float, **_: object
) -> DeparturePlan:
    """The overdue rule switched off: a learned plan stays as it was made at the plug-in."""
    del now, delivered_kwh
    return plan


def _line(result: dict[str, Any]) -> str:
    share = result["solar_share"]
    causes = ", ".join(f"{c} {kwh:.0f}" for c, kwh in result["by_cause_kwh"].items())
    per = result["commands_per_session"] or 0.0
    line = (
        f"{result['sample']:<11} {result['plans']:<16} unmet {result['unmet_share']:.1%} of "
        f"{result['need_kwh']:,.0f} kWh ({result['short_sessions']} sessions: {causes}); "
        f"solar {'n/a' if share is None else f'{share:.3f}'} of the optimum; "
        f"{per:.2f} commands/session; replay {result['cpu_s']['replay']:.0f} CPU s"
    )
    lost, best = result["solar_lost_kwh"], result["optimum_solar_kwh"]
    if lost is not None:
        parts = ", ".join(
            f"{name} {v['kwh']:.0f} kWh"
            + (f" ({v['kwh'] / best:.3f})" if best else "")
            + f" in {v['sessions']:.0f}"
            for name, v in lost.items()
        )
        line += f"\n{'':<11} solar lost against exact plans, by how the plan differed: {parts}"
    return line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/learned.py", description=__doc__)
    parser.add_argument(
        "--samples", nargs="+", choices=tuple(SAMPLES), default=list(SAMPLES), metavar="NAME"
    )
    parser.add_argument("--from", dest="date_from", default="01-01", metavar="MM-DD")
    parser.add_argument("--to", dest="date_to", default="12-31", metavar="MM-DD")
    parser.add_argument("--leave-quantile", type=float, metavar="Q")
    parser.add_argument("--energy-quantile", type=float, metavar="Q")
    parser.add_argument("--stop-at-departure", action="store_true")
    parser.add_argument(
        "--plans", choices=ORACLES, default="learned", help="learned, or with part of the truth"
    )
    parser.add_argument("--no-optimum", action="store_true")
    parser.add_argument(
        "--method",
        choices=("dp", "milp"),
        help="the planner's method (default: rules/solar-plan.yaml's own, dp)",
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="replay exact plans too and split the solar lost against them by cause",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.stop_at_departure:
        replay_module.overdue = _stop_at_departure  # type: ignore[attr-defined]
    results = []
    for name in args.samples:
        results.append(run_sample(name, args))
        if not args.json:
            print(_line(results[-1]), flush=True)  # each history as it is done (minutes)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
