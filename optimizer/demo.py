"""`make demo`: the main job on the bundled sample, then the live client against the fake cloud.

1. The example policies in `rules/` replayed through the engine on a year of bundled 15-minute
   history (see docs/simulation.md), scored against the `immediate` and `optimal` baselines; the
   report is printed, a plot and the simulation log (simulations.db, replaced on every run,
   never the live decision log) are written, and the demo says where.
2. A short tour of the live commands (login with MFA, status, mode, schedules) against the fake
   Enlighten cloud on 127.0.0.1 (optimizer.fakecloud.demo).
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence
from pathlib import Path

from optimizer.cli import main as evopt
from optimizer.fakecloud import demo as fakecloud_demo
from optimizer.simulate.sample import sample_config_path

DEFAULT_OUTPUT = Path("demo-output")
PLOT_WEEK = "2025-05-26"  # a holiday Monday, weekday evenings and a weekend of daytime sessions


def write_config(output: Path, rules: Path) -> Path:
    """The sample site's config with this checkout's rules and a state dir under ``output``."""
    text = sample_config_path().read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("rules:")]
    lines += [
        f"rules: ['{rules.resolve() / '*.yaml'}']",
        "service:",
        f"  state_dir: {(output / 'state').resolve()}",
    ]
    config = output / "config.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def simulate_sample(output: Path, rules: Path, period: Sequence[str]) -> int:
    output.mkdir(parents=True, exist_ok=True)
    config = write_config(output, rules)
    plot = output / "sample-week.png"
    args = ["--config", str(config), "simulate", "--sample"]
    # Each session comes with its driver's "ready by" (`evopt plan set`): the cloud knows
    # neither departures nor needs, and without them a policy must choose between leaving
    # solar unused and leaving the car short (docs/simulation.md, "Departure plans").
    args += [*period, "--plans", "--plot", str(plot)]
    if not period:  # a shortened run may not contain that week; it picks its own day
        args += ["--plot-week", PLOT_WEEK]
    print("== 1. The example policies in rules/ on a year of bundled history ==")
    print(f"$ evopt --config {config} simulate --sample --plans ...\n")
    code = evopt(args)
    if code == 0:
        log = shlex.join(
            [".venv/bin/evopt", "--config", str(config), "log", "stats", "--simulation"]
        )
        print(f"simulation log: {output / 'state' / 'simulations.db'} (try: {log})")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m optimizer.demo", description=__doc__)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where files go")
    parser.add_argument("--rules", type=Path, default=Path("rules"), help="the rules folder")
    parser.add_argument("--from", dest="start", help="first day to simulate (default: all)")
    parser.add_argument("--to", dest="end", help="last day to simulate")
    options = parser.parse_args(argv)
    period = [*(["--from", options.start] if options.start else [])]
    period += ["--to", options.end] if options.end else []
    code = simulate_sample(options.output, options.rules, period)
    print("\n== 2. The live commands against the fake Enlighten cloud ==\n")
    return code or fakecloud_demo.main()


if __name__ == "__main__":
    raise SystemExit(main())
