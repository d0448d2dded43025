"""`make bench` (planner part): how long one `solar_plan` solve takes, against its target.

The live service plans again at every tick (30 s), so one solve must stay well under it:
target p50 and p99 under 50 ms. The inputs are what the kind really sees on the bundled
sample with `config.example.yaml`: at every hour of every session from March to
August with the causal forecast (optimizer/planner/causal.py), the session's exact departure
plan and the energy still needed at that point if nothing had been charged yet (the harder
case: more energy, more slots). Printed: the solve times and the slots per problem.
``--method dp``: the rule's ``method: dp`` (:mod:`optimizer.planner.dp`) with the session's
whole command budget left, in place of the MILP; ``--cpu``: CPU time per solve
(``time.process_time``) in place of the wall clock, for a machine shared with other work.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optimizer.cli.simulate import load_history  # noqa: E402
from optimizer.config import load_config  # noqa: E402
from optimizer.planner import dp  # noqa: E402
from optimizer.planner.causal import CausalOutlooks  # noqa: E402
from optimizer.planner.problem import PlanInput, solve  # noqa: E402
from optimizer.planner.slots import cut  # noqa: E402
from optimizer.simulate.sample import DEFAULT_SAMPLE, sample_paths, sample_site  # noqa: E402
from optimizer.simulate.series import series_from_history  # noqa: E402

TARGET_MS = 50.0
MARGIN = timedelta(minutes=15)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/planner_solve.py", description=__doc__)
    parser.add_argument("--method", choices=("milp", "dp"), default="milp")
    parser.add_argument("--cpu", action="store_true", help="CPU time per solve, not wall")
    args = parser.parse_args(argv)
    solver = dp.solve if args.method == "dp" else solve
    config = load_config(ROOT / "config.example.yaml")
    zone = config.site.timezone or "UTC"
    energy_path, session_paths = sample_paths()
    energy, sessions = load_history(
        str(energy_path), [str(p) for p in session_paths], timezone=zone
    )
    start = datetime(2025, 3, 1, tzinfo=ZoneInfo(zone))
    series = series_from_history(
        energy, sessions, tariffs=config.tariffs, timezone=zone, end=start + timedelta(days=184)
    )
    outlooks = CausalOutlooks(series, config, site=sample_site(DEFAULT_SAMPLE, zone))
    tariffs = config.tariffs

    def price(at: datetime) -> float | None:
        return tariffs.window_at(at.astimezone(ZoneInfo(zone)))[1]

    times: list[float] = []
    sizes: list[int] = []
    for session in series.sessions:
        if session.start < start:
            continue
        ready_by = session.end - MARGIN
        for index in list(series.window(session))[::4]:
            now = series.starts[index]
            if now >= ready_by:
                break
            outlook = outlooks.at(index)
            slots = cut(now, ready_by, outlook=outlook, quantile="p50", price_at=price)
            data = PlanInput(
                slots, 6, 32, 1, 0.23, 0, session.energy_kwh, commands_left=dp.SESSION_BUDGET
            )
            began = time.process_time()
            result = solver(data)
            cpu_ms = (time.process_time() - began) * 1000
            times.append(cpu_ms if args.cpu else result.solve_ms)
            sizes.append(len(slots))
    times.sort()
    p50 = statistics.median(times)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    verdict = "met" if p50 < TARGET_MS and p99 < TARGET_MS else "MISSED"
    print(
        f"planner ({args.method}, {'CPU' if args.cpu else 'wall'}): {len(times)} solves "
        "(every hour of the sample's sessions, "
        f"Mar-Aug, {statistics.median(sizes):.0f} slots median, {max(sizes)} max): "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {times[-1]:.1f} ms "
        f"(target p50 and p99 < {TARGET_MS:.0f} ms: {verdict})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
