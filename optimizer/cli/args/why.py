"""`evopt why` (implemented in optimizer/cli/why.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from optimizer.cli.args.log import WHEN_TYPE


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add `why` through build_parser's ``command(name, help, handler)``."""
    parser = command(
        "why",
        "explain a charger's state at a time from the decision log: the command in effect, "
        "the decision behind it, the policies overruled, the inputs that mattered",
        "cli.why:why",
    )
    parser.add_argument(
        "time",
        nargs="?",
        type=WHEN_TYPE,
        metavar="TIME",
        help="when (default now): 2025-01-15T14:05 (site time unless a zone is given), "
        "a date, or a span back like 30m, 2h",
    )
    parser.add_argument("--charger", metavar="SN", help="one charger's serial (default: each)")
    parser.add_argument(
        "--site",
        metavar="NAME|ID",
        help="the chargers of one site: a site of the config's sites: list, or a site id",
    )
    parser.set_defaults(all_sites=True)
    parser.add_argument("--json", action="store_true", help="print JSON (times in UTC)")
