"""`make demo`: evopt's commands against the fake cloud, with nothing but this checkout.

It starts the fake Enlighten cloud on a free 127.0.0.1 port, writes a config pointing at it into
a temporary directory, and runs the commands a new user would run, showing each one as typed.
The fake account has MFA on, so the demo shows the one-time-code step too.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from pathlib import Path

from optimizer.fakecloud.cloud import FakeCloud
from optimizer.fakecloud.server import run_in_thread

DEMO_PASSWORD = "correct-horse-battery"  # the fake account's password, not a secret


def _config(base_url: str, state_dir: Path) -> str:
    return (
        "enlighten:\n"
        f"  base_url: {base_url}\n"
        "  email: owner@example.com\n"
        "site:\n"
        "  latitude: -37.81\n"
        "  longitude: 144.96\n"
        "  timezone: Australia/Melbourne\n"
        "service:\n"
        f"  state_dir: {state_dir}\n"
    )


def main() -> int:
    from optimizer.cli import main as evopt  # noqa: PLC0415 - the fake itself needs no client

    cloud = FakeCloud(mfa=True)
    # A car plugged in and charging for 40 minutes, so status has something to show.
    cloud.update_charger(plugged_in=True, charging=True, level=16)
    cloud.advance(40 * 60)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="evopt-demo-") as tmp, run_in_thread(cloud) as url:
        config = Path(tmp) / "config.yaml"
        config.write_text(_config(url, Path(tmp) / "state"), encoding="utf-8")
        os.environ["EVOPT_CONFIG"] = str(config)
        os.environ["ENLIGHTEN_PASSWORD"] = DEMO_PASSWORD
        print(f"Fake Enlighten cloud on {url}; config in {config}")
        print("The fake account uses MFA; its one-time code is 123456.\n")
        steps: list[tuple[list[str], int]] = [
            (["login"], 3),  # password accepted, a one-time code is needed
            (["login", "--otp", "123456"], 0),
            (["sites"], 0),
            (["status"], 0),
            (["status", "--json"], 0),
            (["mode", "get"], 0),
            (["battery", "get"], 0),
            (["schedule", "list"], 0),
        ]
        for args, expected in steps:
            print(f"$ evopt {shlex.join(args)}", flush=True)
            code = evopt(args)
            sys.stderr.flush()
            print(f"(exit {code})\n", flush=True)
            failures += code != expected
    print("Demo complete." if not failures else f"Demo: {failures} step(s) did not go as expected.")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
