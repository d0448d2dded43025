"""``python -m optimizer.fakecloud --port N``: the fake cloud as a process.

The first stdout line is ``fakecloud listening on http://HOST:PORT`` (flushed), so a test or
the demo can start it with ``--port 0`` and read the port it got.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from datetime import datetime

from optimizer.fakecloud.clock import FakeClock
from optimizer.fakecloud.cloud import FakeCloud
from optimizer.fakecloud.profile import PRESETS, Profile
from optimizer.fakecloud.server import FakeCloudServer


def _positive(text: str) -> int:
    """argparse type: a whole number >= 1, with an error that says so."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {text!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m optimizer.fakecloud", description="A fake Enlighten cloud for tests."
    )
    parser.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--mfa", action="store_true", help="the account requires an OTP")
    parser.add_argument("--otp", default="123456", help="the OTP code the account accepts")
    parser.add_argument(
        "--profile",
        choices=sorted(PRESETS),
        default="2026",
        help="which cloud to imitate: 2026 (today's, the default) or 2024 (the first reference)",
    )
    parser.add_argument(
        "--legacy-status", action="store_true", help="status answers the flat evChargerData shape"
    )
    parser.add_argument("--email", default="owner@example.com")
    parser.add_argument("--password", default="correct-horse-battery")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    parser.add_argument(
        "--start", type=datetime.fromisoformat, help="fake-clock start (ISO 8601, UTC if naive)"
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=0,
        metavar="N",
        help="requests per account per hour before 429 (the reference: ~600; 0: none)",
    )
    parser.add_argument(
        "--accounts",
        type=_positive,
        default=1,
        metavar="N",
        help="accounts; the first is --email/--password, account k>=2 is ownerK@example.com "
        "with password <--password>-K",
    )
    parser.add_argument(
        "--sites-per-account", type=_positive, default=1, metavar="N", help="sites per account"
    )
    parser.add_argument(
        "--chargers-per-site",
        type=_positive,
        default=1,
        metavar="N",
        help="chargers per site, all drawing from the site's one PV/house model",
    )
    parser.add_argument("--realtime", action="store_true", help="the fake clock runs in real time")
    return parser.parse_args(argv)


def build_cloud(args: argparse.Namespace) -> FakeCloud:
    """The cloud the command line describes: the usual first account and site, then the
    layout of ``--accounts``, ``--sites-per-account`` and ``--chargers-per-site``."""
    profile = Profile.preset(args.profile)
    if args.legacy_status:
        profile.update({"status_shape": "legacy"})
    profile.update({"account_budget_per_hour": args.budget})
    cloud = FakeCloud(
        clock=FakeClock(args.start, realtime=args.realtime),
        seed=args.seed,
        email=args.email,
        password=args.password,
        mfa=args.mfa,
        otp_code=args.otp,
        profile=profile,
    )
    for _ in range(args.chargers_per_site - 1):
        cloud.add_charger(cloud.model.site_id)
    for _ in range(args.sites_per_account - 1):
        cloud.add_site(args.email, chargers=args.chargers_per_site)
    for k in range(2, args.accounts + 1):
        cloud.add_account(
            f"owner{k}@example.com",
            f"{args.password}-{k}",
            sites=args.sites_per_account,
            chargers_per_site=args.chargers_per_site,
        )
    return cloud


async def serve(args: argparse.Namespace) -> None:
    cloud = build_cloud(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with FakeCloudServer(cloud, host=args.host, port=args.port) as server:
        sys.stdout.write(f"fakecloud listening on {server.base_url}\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
