"""The scale benchmark (issue 13): 1, 10, 100 and 500 chargers in one process.

Each shape runs one ``Service`` per site in this process, all sharing one ``DecisionStore``,
against a fake cloud that runs in a **separate process** (``--accounts``,
``--sites-per-account``, ``--chargers-per-site``, ``--budget``), so the CPU figure is the
service's alone: the fake's own CPU would otherwise grow with the chargers and hide what the
service costs. Time is simulated: every step the driver ticks the sites that are due, then
moves the fake's clock on by the 30 s poll (as ``tests/test_service.py`` drives one service).

Figures per shape, each beside its target:

- CPU per tick (``time.process_time``, user + system of this process: never wall time, which
  depends on the fake and on whatever else the box runs), in total and per charger. Linear in
  chargers means the per-charger figure stays roughly flat from 10 to 500.
- Requests per hour per account, counted by each site's client as it sends them, against the
  account's budget (the reference: ~600 an hour).
- RSS: the peak resident memory of this process (the fake runs apart and is not counted).

``python benchmarks/scale.py`` runs the full set (1, 10, 100, 500); ``--quick`` stops at 100;
``--shape ACCOUNTS:SITES:CHARGERS`` runs one layout. ``make bench`` runs the full set.

The driver (:class:`SiteDriver`) ticks services directly. The fleet runner of issue 13 item 2
will own this loop; switching is replacing :meth:`SiteDriver.step` with one fleet step.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optimizer.config import Config, load_config  # noqa: E402
from optimizer.connect import client_for  # noqa: E402
from optimizer.decisions import DecisionStore  # noqa: E402
from optimizer.enlighten.client import EnlightenClient  # noqa: E402
from optimizer.service import Service  # noqa: E402
from optimizer.systemd import Notifier  # noqa: E402

POLL_S = 30.0
# 12:00 in Melbourne (summer time): the sun is up, so the solar rules act as well as hold.
START = datetime(2025, 1, 15, 1, 0, tzinfo=UTC)
PASSWORD = "correct-horse-battery"  # noqa: S105 (the fake accounts' password)
BUDGET_PER_HOUR = 600  # the reference's ~600 requests per account per hour
CORE_TARGET = 1.0  # CPU per tick / poll interval: 500 chargers within one core
# Per-charger CPU of the largest shape over the smallest of the same site size: flat is linear.
LINEAR_TARGET = 1.5
WARMUP_TICKS = 10  # logins, discovery and the first history reads: not the steady state
HOUR_TICKS = int(3600 / POLL_S)


@dataclass(frozen=True)
class Shape:
    """``accounts`` x ``sites_per_account`` x ``chargers_per_site``."""

    accounts: int
    sites_per_account: int
    chargers_per_site: int

    @property
    def sites(self) -> int:
        return self.accounts * self.sites_per_account

    @property
    def chargers(self) -> int:
        return self.sites * self.chargers_per_site

    @classmethod
    def parse(cls, text: str) -> Shape:
        try:
            accounts, sites, chargers = (int(part) for part in text.split(":"))
        except ValueError as err:
            raise argparse.ArgumentTypeError(
                f"a shape is ACCOUNTS:SITES_PER_ACCOUNT:CHARGERS_PER_SITE (2:3:2), not {text!r}"
            ) from err
        if min(accounts, sites, chargers) < 1:
            raise argparse.ArgumentTypeError(
                f"each of ACCOUNTS:SITES_PER_ACCOUNT:CHARGERS_PER_SITE is at least 1, not {text!r}"
            )
        return cls(accounts, sites, chargers)


# 1 and 10 chargers on one site (the engine's cost with many chargers on a site), then sites of
# two: 5 sites, then 50 and 250 sites two per account. A site costs ~140-190 requests an hour at
# a 30 s poll (its status read alone is 120), so an account carries at most three such sites
# under ~600 an hour until read lifetimes stretch with the account's chargers (docs/scale.md).
QUICK: tuple[Shape, ...] = (Shape(1, 1, 1), Shape(1, 1, 10), Shape(5, 1, 2), Shape(25, 2, 2))
FULL: tuple[Shape, ...] = (*QUICK, Shape(125, 2, 2))


@dataclass
class Figures:
    """What one shape measured."""

    shape: Shape
    ticks: int  # measured steps (after the warm-up)
    cpu_s: float  # process CPU over the measured steps
    warmup_cpu_s: float  # process CPU of the warm-up steps (logins, first reads)
    requests_per_hour: dict[str, float]  # per account e-mail
    rate_limited_ticks: int  # site ticks that met a 429
    problems: dict[str, int] = field(default_factory=dict)  # problem -> site ticks
    rss_mb: float = 0.0
    decisions: int = 0  # rows in the shared decision log
    families: dict[str, float] = field(default_factory=dict)  # requests/h per site, by family

    @property
    def cpu_ms_per_tick(self) -> float:
        return self.cpu_s / self.ticks * 1000

    @property
    def cpu_ms_per_charger(self) -> float:
        return self.cpu_ms_per_tick / self.shape.chargers

    @property
    def core_share(self) -> float:
        """CPU per tick over the poll interval: 1.0 is one core busy all the time."""
        return self.cpu_ms_per_tick / 1000 / POLL_S

    @property
    def worst_account(self) -> float:
        return max(self.requests_per_hour.values(), default=0.0)

    def as_json(self) -> dict[str, Any]:
        return {
            "chargers": self.shape.chargers,
            "sites": self.shape.sites,
            "accounts": self.shape.accounts,
            "ticks": self.ticks,
            "cpu_ms_per_tick": round(self.cpu_ms_per_tick, 2),
            "cpu_ms_per_charger": round(self.cpu_ms_per_charger, 3),
            "core_share": round(self.core_share, 4),
            "warmup_cpu_s": round(self.warmup_cpu_s, 2),
            "requests_per_hour_per_account": {
                k: round(v, 1) for k, v in sorted(self.requests_per_hour.items())
            },
            "rate_limited_ticks": self.rate_limited_ticks,
            "problems": dict(self.problems),
            "rss_mb": round(self.rss_mb, 1),
            "decisions": self.decisions,
            "requests_per_hour_per_site_by_family": {
                k: round(v, 1) for k, v in sorted(self.families.items())
            },
        }


# --- the fake cloud, in a process of its own -------------------------------------------------


def serve_fake(shape: Shape, budget: int) -> None:
    """The child process: the fake cloud of ``shape`` with every car plugged in and charging,
    on 127.0.0.1, its URL on stdout; runs until stdin closes (the parent went away)."""
    from optimizer.fakecloud.__main__ import build_cloud, parse_args  # noqa: PLC0415
    from optimizer.fakecloud.server import FakeCloudServer  # noqa: PLC0415

    args = parse_args(
        [
            "--port=0",
            f"--start={START.isoformat()}",
            f"--budget={budget}",
            f"--accounts={shape.accounts}",
            f"--sites-per-account={shape.sites_per_account}",
            f"--chargers-per-site={shape.chargers_per_site}",
        ]
    )
    cloud = build_cloud(args)
    for model in cloud.sites.models.values():
        for charger in model.chargers:
            cloud.update_charger(charger.sn, plugged_in=True, charging=True, level=16)

    async def run() -> None:
        async with FakeCloudServer(cloud) as server:
            layout = [
                {
                    "site_id": m.site_id,
                    "owner": cloud.sites.owners[m.site_id],
                    "chargers": [c.sn for c in m.chargers],
                }
                for m in cloud.sites.models.values()
            ]
            sys.stdout.write(json.dumps({"base_url": server.base_url, "sites": layout}) + "\n")
            sys.stdout.flush()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, sys.stdin.read)  # EOF: the parent is done

    asyncio.run(run())


@dataclass(frozen=True)
class FakeSite:
    site_id: int
    owner: str
    chargers: tuple[str, ...]


@contextlib.contextmanager
def fake_process(shape: Shape, budget: int) -> Iterator[tuple[str, list[FakeSite]]]:
    """Start the fake of ``shape`` in a child process; yields its URL and its sites."""
    child = subprocess.Popen(  # noqa: S603 (our own interpreter and script)
        [sys.executable, __file__, "--serve-fake", _shape_text(shape), "--budget", str(budget)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None  # noqa: S101 - PIPE above
        line = child.stdout.readline()
        if not line:
            raise RuntimeError("the fake cloud process did not start (see its stderr)")
        hello = json.loads(line)
        sites = [FakeSite(s["site_id"], s["owner"], tuple(s["chargers"])) for s in hello["sites"]]
        yield hello["base_url"], sites
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _shape_text(shape: Shape) -> str:
    return f"{shape.accounts}:{shape.sites_per_account}:{shape.chargers_per_site}"


def account_password(owner: str) -> str:
    """As ``python -m optimizer.fakecloud --accounts`` makes them: the first account has the
    password, account k >= 2 (``ownerK@example.com``) has ``<password>-K``."""
    local = owner.split("@", 1)[0]
    suffix = local.removeprefix("owner")
    return f"{PASSWORD}-{suffix}" if suffix else PASSWORD


# --- the services ----------------------------------------------------------------------------


class SharedClock:
    """One simulated clock for every service; the driver moves it (and the fake's) on."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float, *, wake: asyncio.Event) -> None:
        raise RuntimeError("the scale driver ticks the services itself; nothing sleeps")


def site_config(base_url: str, site: FakeSite, tmp: Path) -> Config:
    """One site's config, as a `sites:` item will hold it: its account, site id and rules."""
    folder = tmp / f"site-{site.site_id}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(
        f"enlighten:\n  base_url: {base_url}\n  email: {site.owner}\n  site_id: {site.site_id}\n"
        "site:\n  latitude: -37.81\n  longitude: 144.96\n  timezone: Australia/Melbourne\n"
        "  max_current: 80\n"  # the largest the config takes: room for several cars
        # The fake charger takes a new level at once: no real 30 s wait per level change.
        "charger:\n  settle_delay: 0s\n"
        f"service:\n  poll_interval: {POLL_S:.0f}s\n  state_dir: {folder / 'state'}\n"
        f"  database: {tmp / 'decisions.db'}\n"
        "tariffs:\n  import_price: 0.30\n  windows:\n"
        '    off_peak: {price: 0.18, times: "23:00-07:00"}\n'
        '    peak: {price: 0.45, times: "15:00-21:00", days: weekdays}\n'
        f"rules:\n  - {ROOT / 'rules' / '*.yaml'}\n",
        encoding="utf-8",
    )
    return load_config(path)


@dataclass
class Site:
    """One site's service, its client (its account's password) and when it is due again."""

    service: Service
    client: EnlightenClient
    owner: str
    due: datetime


class SiteDriver:
    """Ticks every due site concurrently, then moves the simulated time on by one poll."""

    def __init__(self, sites: list[Site], clock: SharedClock, base_url: str) -> None:
        self.sites = sites
        self.clock = clock
        self.base_url = base_url
        self.problems: dict[str, int] = {}

    async def step(self, http: aiohttp.ClientSession) -> None:
        now = self.clock.now()
        due = [s for s in self.sites if s.due <= now]
        # The fleet runner (optimizer/service/fleet.py, issue 13 item 2) will do this line:
        # one tick of every due site, concurrently, each site's trouble its own.
        reports = await asyncio.gather(*(s.service.tick() for s in due))
        for site, report in zip(due, reports, strict=True):
            site.due = now + timedelta(seconds=report.delay_s)
            if report.problem is not None:
                self.problems[report.problem] = self.problems.get(report.problem, 0) + 1
        async with http.post(f"{self.base_url}/__fake__/clock", json={"advance_s": POLL_S}) as r:
            r.raise_for_status()
        self.clock.at = now + timedelta(seconds=POLL_S)

    def sent(self) -> dict[str, int]:
        """Requests sent so far, per account, as each site's client counted them."""
        per_account: dict[str, int] = {}
        for site in self.sites:
            n = sum(site.client.counter.totals().values())
            per_account[site.owner] = per_account.get(site.owner, 0) + n
        return per_account

    def families(self) -> Counter[str]:
        """Requests sent so far by endpoint family, all sites together."""
        total: Counter[str] = Counter()
        for site in self.sites:
            total.update(site.client.counter.totals())
        return total


async def measure(
    shape: Shape, *, ticks: int, budget: int = BUDGET_PER_HOUR, warmup: int = WARMUP_TICKS
) -> Figures:
    """Run ``shape`` for ``warmup`` + ``ticks`` polls; the figures of the last ``ticks``."""
    with (
        tempfile.TemporaryDirectory() as folder,
        fake_process(shape, budget) as (base_url, fake_sites),
    ):
        tmp = Path(folder)
        clock = SharedClock(START)
        store = DecisionStore(tmp / "decisions.db")
        sites: list[Site] = []
        for fake_site in fake_sites:
            config = site_config(base_url, fake_site, tmp)
            password = account_password(fake_site.owner)
            client = client_for(config, password_provider=lambda p=password: p)
            service = Service(
                config,
                config_path=config.source,
                dry_run=False,
                notifier=Notifier(socket_path=""),
                clock=clock,
                client=client,
                store=store,
            )
            sites.append(Site(service, client, fake_site.owner, START))
        driver = SiteDriver(sites, clock, base_url)
        try:
            async with aiohttp.ClientSession() as http:
                started = time.process_time()
                for _ in range(warmup):
                    await driver.step(http)
                warmup_cpu = time.process_time() - started
                sent_before, families_before = driver.sent(), driver.families()
                limited_before = driver.problems.get("rate_limited", 0)
                started = time.process_time()
                for _ in range(ticks):
                    await driver.step(http)
                cpu = time.process_time() - started
            sent_after, families = driver.sent(), driver.families() - families_before
        finally:
            for site in sites:
                await site.service.shutdown()
                await site.client.close()
        hours = ticks * POLL_S / 3600
        decisions = store.db.execute("SELECT count(*) FROM decisions").fetchone()[0]
        store.close()
    return Figures(
        shape=shape,
        ticks=ticks,
        cpu_s=cpu,
        warmup_cpu_s=warmup_cpu,
        requests_per_hour={
            owner: (sent_after[owner] - sent_before.get(owner, 0)) / hours for owner in sent_after
        },
        rate_limited_ticks=driver.problems.get("rate_limited", 0) - limited_before,
        problems=dict(driver.problems),
        rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        decisions=int(decisions),
        families={k: n / hours / shape.sites for k, n in families.items()},
    )


# --- the report ------------------------------------------------------------------------------


def report(figures: Sequence[Figures], *, budget: int) -> list[str]:
    """The table, each figure beside its target, then the verdicts."""
    lines = [
        f"scale: one process, one Service per site, shared decision log, {POLL_S:.0f} s poll on a"
        " simulated clock; the fake cloud runs in another process (not counted)",
        f"{'chargers':>8} {'sites':>5} {'accts':>5} {'CPU ms/tick':>11} {'ms/charger':>10}"
        f" {'core':>6} {'req/h/acct (max)':>16} {'429 ticks':>9} {'RSS MB':>7}",
    ]
    for f in figures:
        lines.append(
            f"{f.shape.chargers:>8} {f.shape.sites:>5} {f.shape.accounts:>5}"
            f" {f.cpu_ms_per_tick:>11.1f} {f.cpu_ms_per_charger:>10.2f}"
            f" {f.core_share:>6.1%} {f.worst_account:>16.0f} {f.rate_limited_ticks:>9}"
            f" {f.rss_mb:>7.0f}"
        )
    biggest = max(figures, key=lambda f: f.shape.chargers)
    lines.append(
        f"  requests/h per site by family ({biggest.shape.chargers} chargers): "
        + ", ".join(f"{k} {v:.0f}" for k, v in sorted(biggest.families.items(), key=_by_count))
    )
    lines.extend(verdicts(figures, budget=budget))
    return lines


def _by_count(item: tuple[str, float]) -> tuple[float, str]:
    return -item[1], item[0]


def verdicts(figures: Sequence[Figures], *, budget: int) -> list[str]:
    out = []
    biggest = max(figures, key=lambda f: f.shape.chargers)
    within = "ok" if biggest.core_share < CORE_TARGET else "OVER TARGET"
    out.append(
        f"  {biggest.shape.chargers} chargers: {biggest.core_share:.1%} of one core"
        f" (target < {CORE_TARGET:.0%}, {within})"
    )
    # Linear: the per-charger CPU of the same layout (sites of the same size) stays flat as the
    # sites multiply; compare the smallest and largest run of the most common site size.
    sizes = [f.shape.chargers_per_site for f in figures]
    common = max(set(sizes), key=sizes.count)
    same = sorted(
        (f for f in figures if f.shape.chargers_per_site == common), key=lambda f: f.shape.chargers
    )
    if len(same) >= 2:
        small, large = same[0], same[-1]
        ratio = large.cpu_ms_per_charger / small.cpu_ms_per_charger
        shape = "ok" if ratio < LINEAR_TARGET else "GROWS FASTER THAN N"
        out.append(
            f"  per-charger CPU, {large.shape.chargers} / {small.shape.chargers} chargers in sites"
            f" of {common}: {ratio:.2f} (1.0 = linear, target < {LINEAR_TARGET}, {shape})"
        )
    worst = max(figures, key=lambda f: f.worst_account)
    under = "ok" if worst.worst_account <= budget and worst.rate_limited_ticks == 0 else "OVER"
    out.append(
        f"  busiest account: {worst.worst_account:.0f} requests/h (budget {budget},"
        f" {worst.rate_limited_ticks} ticks rate-limited, {under})"
    )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1, 10 and 100 chargers only")
    parser.add_argument(
        "--shape", type=Shape.parse, action="append", help="ACCOUNTS:SITES:CHARGERS (repeatable)"
    )
    parser.add_argument("--ticks", type=int, default=HOUR_TICKS, help="measured polls per shape")
    parser.add_argument("--budget", type=int, default=BUDGET_PER_HOUR)
    parser.add_argument("--json", action="store_true", help="figures as JSON")
    parser.add_argument("--serve-fake", type=Shape.parse, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # Warnings (a 429, an implausible reading) would print a line per site and tick; the
    # figures count them instead.
    logging.basicConfig(level=logging.ERROR)
    if args.serve_fake is not None:
        serve_fake(args.serve_fake, args.budget)
        return 0
    shapes = args.shape or (QUICK if args.quick else FULL)
    figures = []
    for shape in shapes:
        os.environ.pop("ENLIGHTEN_PASSWORD", None)  # each client has its account's password
        figures.append(asyncio.run(measure(shape, ticks=args.ticks, budget=args.budget)))
        done = figures[-1]
        print(
            f"  {shape.chargers} chargers measured: {done.cpu_ms_per_tick:.1f} ms/tick",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps([f.as_json() for f in figures], indent=2))
    else:
        print("\n".join(report(figures, budget=args.budget)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
