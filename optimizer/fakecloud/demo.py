"""`make demo`: evopt's commands against the fake cloud, with nothing but this checkout.

It starts the fake Enlighten cloud on a free 127.0.0.1 port, and the site's fake IQ Gateway
beside it (same site model and clock), writes a config pointing at both into a temporary
directory, and runs the commands a new user would run, showing each one as typed. The fake
account has MFA on, so the demo shows the one-time-code step too; then the gateway's token is
stored, the gateway checked, one service tick run and `status` shows the surplus source.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from pathlib import Path

from optimizer.fakecloud.clock import FakeClock
from optimizer.fakecloud.cloud import FakeCloud
from optimizer.fakecloud.server import run_in_thread
from optimizer.gateway.fake import FakeGateway, run_gateway_in_thread

DEMO_PASSWORD = "correct-horse-battery"  # the fake account's password, not a secret


# The one policy of the demo's tick: follow the surplus with the amps.
DEMO_RULES = """\
policies:
  - name: solar-surplus
    kind: excess_solar
    variant: pv
    min_amps: 6
    max_amps: 32
    start_delay: 0s
"""


def _config(base_url: str, state_dir: Path, gateway_host: str, rules: Path) -> str:
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
        "surplus:\n"
        "  source: gateway\n"
        "gateway:\n"
        f"  host: {gateway_host}\n"
        f"rules: ['{rules}']\n"
    )


def main() -> int:
    from optimizer.cli import main as evopt  # noqa: PLC0415 - the fake itself needs no client

    # On the real clock, so the gateway's token (a year from now) and the service's tick agree
    # with the fakes' time; the sun is wherever it is in Melbourne as the demo runs.
    cloud = FakeCloud(mfa=True, clock=FakeClock(realtime=True))
    # A car plugged in and charging for 40 minutes, so status has something to show.
    cloud.update_charger(plugged_in=True, charging=True, level=16)
    cloud.advance(40 * 60)
    failures = 0
    gateway = FakeGateway(cloud)
    with (
        tempfile.TemporaryDirectory(prefix="evopt-demo-") as tmp,
        run_in_thread(cloud) as url,
        run_gateway_in_thread(gateway) as gateway_host,
    ):
        config = Path(tmp) / "config.yaml"
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(DEMO_RULES, encoding="utf-8")
        config.write_text(_config(url, Path(tmp) / "state", gateway_host, rules), encoding="utf-8")
        os.environ["EVOPT_CONFIG"] = str(config)
        os.environ["ENLIGHTEN_PASSWORD"] = DEMO_PASSWORD
        print(f"Fake Enlighten cloud on {url}, fake IQ Gateway on {gateway_host}")
        print(f"Config in {config}")
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
            # The site's IQ Gateway as the live surplus source (docs/gateway.md): its owner
            # token fetched from (the fake) Entrez with the session the MFA login just made.
            (["gateway", "token", "--fetch"], 0),
            (["gateway", "check"], 0),
            (["run", "--once", "--dry-run"], 0),
            (["status"], 0),
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
