"""`evopt run` (implemented in optimizer/cli/run.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add `run` through build_parser's ``command(name, help, handler)``."""
    parser = command(
        "run", "run the service: observe, decide, act and log every poll interval", "cli.run:run"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="decide and log (outcome dry_run), but never send a write to the cloud",
    )
    parser.add_argument(
        "--once", action="store_true", help="one tick, print its decisions, and exit"
    )
    parser.set_defaults(all_sites=True)
