"""`evopt forecast` (implemented in optimizer/cli/forecast.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add `forecast` through build_parser's ``command(name, help, handler)``."""
    parser = command(
        "forecast",
        "the site's expected PV and surplus for the next hours (p10/p50/p90)",
        "cli.forecast:forecast",
    )
    parser.add_argument(
        "--energy",
        metavar="FILE",
        help="lifetime_energy JSON (15-minute); default: what `evopt history fetch` stored",
    )
    parser.add_argument(
        "--at",
        metavar="DATETIME",
        help="forecast as it could be made at this time, from the history before it "
        "(default: now; with --energy, the end of the file's history)",
    )
    parser.add_argument(
        "--hours", type=float, metavar="H", help="horizon in hours, up to 48 (default: config)"
    )
    parser.add_argument(
        "--site",
        metavar="NAME|ID",
        help="a site of the config's sites: list by name or id, or a site id",
    )
    parser.add_argument(
        "--online",
        action="store_true",
        help="with forecast.online: ask Forecast.Solar now if the last reply is older than "
        "forecast.online.refresh (default: use the last reply kept, as the service does)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
