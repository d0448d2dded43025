"""Where `--plans learned` leaves energy unmet, by cause (issue 15 item 2).

Replays the bundled histories (`evopt simulate --sample NAME`, each with its own site config)
over 2025 with learned plans (causal, optimizer/simulate/learned.py) and the planner as the
only policy (`rules/solar-plan.yaml`, enabled here), and splits each session's unmet energy:

* **asked too little**: the plan's energy was below what the car took (up to the difference);
* **departure too late**: the rest, when the car left before the plan's ready-by;
* **planner**: the rest, when the plan's ready-by was in time (the planner did not deliver it);
* **cut by the period's end**: a session that runs past the replayed period (the last of the
  year): the report counts what it missed as unmet too.

With the share of the optimum's solar and the commands per session beside the bars (0.90,
1 % of the need, 4). ``--leave-quantile``/``--energy-quantile`` replace the samples' habit
settings; ``--stop-at-departure`` replays without the overdue rule (a learned plan past its
departure no longer moves on: what charging stopped at the estimate would give);
``--no-optimum`` skips the optimum (no share); ``--from``/``--to`` (MM-DD) part of the year.
CPU seconds are printed, never wall time (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import optimizer.simulate.replay as replay_module  # noqa: E402
from benchmarks.planner import _period, need_kwh  # noqa: E402
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
    if plan is None or session.end > period_end:
        return Short(cut=unmet)
    asked = min(unmet, max(0.0, session.energy_kwh - plan.energy_kwh))
    rest = unmet - asked
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
    policies = [shipped.model_copy(update={"enabled": True})]
    began = time.process_time()
    plans = series_plans(series, known=raw, settings=settings)
    result = replay_module.replay(
        series, policies, config=config, limits=site.limits, voltage_v=site.voltage_v, plans=plans
    )
    cpu = {"replay": time.process_time() - began}
    run = figures(series, result.ev_kwh, commands=result.commands)
    best = None
    if not args.no_optimum:
        began = time.process_time()
        best = optimal_figures(series, site.limits, site.voltage_v, config.site.battery)
        cpu["optimal"] = time.process_time() - began
    shorts = [
        attribute(session, plan, got, series.starts[-1] + BUCKET)
        for session, plan, got in zip(
            series.sessions, plans, delivered_per_session(series, result.ev_kwh), strict=True
        )
    ]
    need = need_kwh(series)
    by_cause = {
        "asked too little": sum(s.asked for s in shorts),
        "departure too late": sum(s.late for s in shorts),
        "planner": sum(s.planner for s in shorts),
        "cut by the period's end": sum(s.cut for s in shorts),
    }
    return {
        "sample": name,
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
        "cpu_s": {key: round(value, 1) for key, value in cpu.items()},
    }


def _stop_at_departure(
    plan: DeparturePlan, now: datetime, delivered_kwh: float, *, taking: bool = True
) -> DeparturePlan:
    """The overdue rule switched off: a learned plan stays as it was made at the plug-in."""
    del now, delivered_kwh, taking
    return plan


def _line(result: dict[str, Any]) -> str:
    share = result["solar_share"]
    causes = ", ".join(f"{c} {kwh:.0f}" for c, kwh in result["by_cause_kwh"].items())
    per = result["commands_per_session"] or 0.0
    return (
        f"{result['sample']:<11} unmet {result['unmet_share']:.1%} of "
        f"{result['need_kwh']:,.0f} kWh ({result['short_sessions']} sessions: {causes}); "
        f"solar {'n/a' if share is None else f'{share:.3f}'} of the optimum; "
        f"{per:.2f} commands/session; replay {result['cpu_s']['replay']:.0f} CPU s"
    )


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
    parser.add_argument("--no-optimum", action="store_true")
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
