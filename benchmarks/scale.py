"""The scale benchmark (issue 13): 1, 10, 100 and 500 chargers in one process.

Each shape runs a real :class:`~optimizer.service.Fleet` from a generated ``sites:`` config
(one item per site, each account's password in its own environment variable), the way a user
runs 250 sites, against a fake cloud that runs in a **separate process** (``--accounts``,
``--sites-per-account``, ``--chargers-per-site``, ``--budget``), so the CPU figure is the
service's alone: the fake's own CPU would otherwise grow with the chargers and hide what the
service costs. Time is simulated by a :class:`~optimizer.service.lockstep.LockstepClock`:
it moves on (and moves the fake's clock over its admin API) only when every site's loop
sleeps, so each site keeps its own schedule (30 s, longer after trouble) on one timeline.

Figures per shape, each beside its target, read on the simulated clock while every loop
sleeps:

- CPU per tick (``time.process_time``, user + system of this process: never wall time, which
  depends on the fake and on whatever else the box runs), in total and per charger. Linear in
  chargers means the per-charger figure stays roughly flat from 10 to 500.
- Requests per hour per account, as each site's service logged them (the ``requests`` table),
  against the account's budget (the reference: ~600 an hour), with the read stretch
  (optimizer/observe/readplan.py) spreading the slow reads over the account's chargers.
- RSS: the peak resident memory of this process (the fake runs apart and is not counted).

Then the capacity of one account: 1:N:2 for N sites of two, how many fit the budget with no
tick held back.

``python benchmarks/scale.py`` runs the full set (1, 10, 100, 500, then the capacity);
``--quick`` stops at 100; ``--shape ACCOUNTS:SITES:CHARGERS`` runs one layout; ``--capacity N
...`` the capacity of N sites per account. ``make bench`` runs the full set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optimizer.config import Config, load_config  # noqa: E402
from optimizer.service import Fleet, TickReport  # noqa: E402
from optimizer.service.lockstep import LockstepClock  # noqa: E402
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
# two: 5 sites, then 50 and 250 sites two per account (the same layouts as before the fleet,
# so the figures compare; the capacity runs below put more sites on one account).
QUICK: tuple[Shape, ...] = (Shape(1, 1, 1), Shape(1, 1, 10), Shape(5, 1, 2), Shape(25, 2, 2))
FULL: tuple[Shape, ...] = (*QUICK, Shape(125, 2, 2))
# How many sites of two one account carries: 1:N:2 for each N (docs/scale.md).
CAPACITY_SITE = 2
CAPACITY: tuple[int, ...] = (2, 3, 4, 5, 6)


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
    stretch: float = 1.0  # the largest read stretch of a site at the end (readplan.py)
    min_poll_s: float | None = None  # the poll the status reads would fit, if they do not

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
            "read_stretch": round(self.stretch, 2),
            "min_poll_s": None if self.min_poll_s is None else round(self.min_poll_s, 1),
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


# --- the fleet -------------------------------------------------------------------------------


def password_env(owner: str) -> str:
    """The environment variable the generated config names for ``owner``'s password."""
    suffix = owner.split("@", 1)[0].removeprefix("owner") or "1"
    return f"EVOPT_BENCH_PASSWORD_{suffix}"


def fleet_config(base_url: str, sites: Sequence[FakeSite], tmp: Path) -> Path:
    """A ``sites:`` config for every site of the fake, as a user with this many sites would
    write it: each item its account (password from an environment variable per account),
    site id, location, site limit, tariffs and rules; one decision log for all."""
    items = []
    for site in sites:
        items.append(
            f"  - name: s{site.site_id}\n"
            f"    enlighten: {{base_url: '{base_url}', email: {site.owner},"
            f" site_id: {site.site_id}, password_env: {password_env(site.owner)}}}\n"
            "    site: {latitude: -37.81, longitude: 144.96, timezone: Australia/Melbourne,"
            " max_current: 80}\n"  # the largest the config takes: room for several cars
            "    tariffs:\n      import_price: 0.30\n      windows:\n"
            "        off_peak: {price: 0.18, times: '23:00-07:00'}\n"
            "        peak: {price: 0.45, times: '15:00-21:00', days: weekdays}\n"
            f"    rules: ['{ROOT / 'rules' / '*.yaml'}']\n"
        )
    path = tmp / "config.yaml"
    path.write_text(
        # The fake charger takes a new level at once: no real 30 s wait per level change.
        "charger:\n  settle_delay: 0s\n"
        f"service:\n  poll_interval: {POLL_S:.0f}s\n  state_dir: {tmp / 'state'}\n"
        f"sites:\n{''.join(items)}",
        encoding="utf-8",
    )
    return path


@dataclass
class Reading:
    """What the benchmark reads at one instant of the simulated clock (all loops asleep)."""

    cpu_s: float
    sent: dict[int, Counter[str]]  # requests per site, by endpoint family, as the log has them
    limited: int  # site ticks that met a 429 or the account's limiter so far


class Tally:
    """The fleet's tick reports, counted per problem (``on_tick`` of every site)."""

    def __init__(self) -> None:
        self.problems: Counter[str] = Counter()
        self.ticks = 0

    def sink(self, view: Config) -> Callable[[TickReport], None]:
        def count(report: TickReport) -> None:
            self.ticks += 1
            if report.problem is not None:
                self.problems[report.problem] += 1

        return count


def logged_requests(database: Path) -> dict[int, Counter[str]]:
    """Requests per site and endpoint family, as each site's service logged them (the
    ``requests`` table `evopt log stats` reads), through a connection of our own."""
    out: dict[int, Counter[str]] = {}
    with contextlib.closing(sqlite3.connect(database)) as db:
        rows = db.execute(
            "SELECT r.site_id, q.family, SUM(q.count) FROM requests q"
            " JOIN runs r ON r.run_id = q.run_id GROUP BY r.site_id, q.family"
        ).fetchall()
    for site_id, family, count in rows:
        out.setdefault(int(site_id), Counter())[str(family)] += int(count)
    return out


async def measure(
    shape: Shape, *, ticks: int, budget: int = BUDGET_PER_HOUR, warmup: int = WARMUP_TICKS
) -> Figures:
    """Run ``shape`` as one :class:`Fleet` for ``warmup`` + ``ticks`` polls; the figures of
    the last ``ticks``, read on the simulated clock while every site's loop sleeps."""
    with (
        tempfile.TemporaryDirectory() as folder,
        fake_process(shape, budget) as (base_url, fake_sites),
    ):
        tmp = Path(folder)
        for owner in {s.owner for s in fake_sites}:
            os.environ[password_env(owner)] = account_password(owner)
        config = load_config(fleet_config(base_url, fake_sites, tmp))
        async with aiohttp.ClientSession() as http:

            async def advance(seconds: float) -> None:
                url = f"{base_url}/__fake__/clock"
                async with http.post(url, json={"advance_s": seconds}) as reply:
                    reply.raise_for_status()

            clock = LockstepClock(START, loops=shape.sites, advance=advance)
            tally = Tally()
            fleet = Fleet(
                config,
                config_path=config.source,
                dry_run=False,
                notifier=Notifier(socket_path=""),
                clock=clock,
                on_tick=tally.sink,
            )
            readings: list[Reading] = []
            plans: list[tuple[float, float | None]] = []

            def read() -> None:
                limited = tally.problems["rate_limited"]
                readings.append(
                    Reading(time.process_time(), logged_requests(config.database_path), limited)
                )

            def last() -> None:
                read()
                plans.extend(
                    (s.cache.read_plan.stretch, s.cache.read_plan.min_poll_s)
                    for s in fleet.services
                    if s.cache.read_plan is not None
                )
                fleet.request_stop()

            started = time.process_time()
            clock.after(warmup * POLL_S, read)
            clock.after((warmup + ticks) * POLL_S, last)
            code = await fleet.run()
            if code != 0 or len(readings) != 2:
                raise RuntimeError(f"the fleet ended with {code} before the measurement")
        with contextlib.closing(sqlite3.connect(config.database_path)) as db:
            decisions = db.execute("SELECT count(*) FROM decisions").fetchone()[0]
    before, after = readings
    hours = ticks * POLL_S / 3600
    owner_of = {s.site_id: s.owner for s in fake_sites}
    per_account: Counter[str] = Counter()
    families: Counter[str] = Counter()
    for site_id, counts in after.sent.items():
        delta = counts - before.sent.get(site_id, Counter())
        per_account[owner_of[site_id]] += sum(delta.values())
        families.update(delta)
    return Figures(
        shape=shape,
        ticks=ticks,
        cpu_s=after.cpu_s - before.cpu_s,
        warmup_cpu_s=before.cpu_s - started,
        requests_per_hour={o: per_account[o] / hours for o in sorted(set(owner_of.values()))},
        rate_limited_ticks=after.limited - before.limited,
        problems=dict(tally.problems),
        rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        decisions=int(decisions),
        families={k: n / hours / shape.sites for k, n in families.items()},
        stretch=max((p[0] for p in plans), default=1.0),
        min_poll_s=max((p[1] for p in plans if p[1] is not None), default=None),
    )


# --- the report ------------------------------------------------------------------------------


def report(figures: Sequence[Figures], *, budget: int) -> list[str]:
    """The table, each figure beside its target, then the verdicts."""
    lines = [
        f"scale: one process, a Fleet from a sites: config, one decision log, {POLL_S:.0f} s poll"
        " on a simulated clock; the fake cloud runs in another process (not counted)",
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


def fits(figures: Figures, *, budget: int) -> bool:
    """Under the account's budget with no tick held back by it (a 429 or the limiter)."""
    return figures.worst_account <= budget and figures.rate_limited_ticks == 0


def capacity_report(figures: Sequence[Figures], *, budget: int) -> list[str]:
    """How many sites of two chargers one account carries at the poll: one row per count of
    sites, then the largest that fits (every site's status read every poll, no tick held)."""
    lines = [
        f"capacity: one account, sites of {CAPACITY_SITE} chargers, {POLL_S:.0f} s poll,"
        f" budget {budget}/h (the read stretch spreads the slow reads over the account)",
        f"{'sites':>5} {'chargers':>8} {'req/h':>6} {'held ticks':>10} {'stretch':>7}"
        f" {'poll that fits':>14} {'fits':>4}",
    ]
    for f in figures:
        poll = "-" if f.min_poll_s is None else f"{f.min_poll_s:.0f} s"
        lines.append(
            f"{f.shape.sites:>5} {f.shape.chargers:>8} {f.worst_account:>6.0f}"
            f" {f.rate_limited_ticks:>10} {f.stretch:>7.1f} {poll:>14}"
            f" {'yes' if fits(f, budget=budget) else 'no':>4}"
        )
    carried = [f.shape.sites for f in figures if fits(f, budget=budget)]
    if carried:
        most = max(carried)
        lines.append(
            f"  one account carries {most} sites of {CAPACITY_SITE} ({most * CAPACITY_SITE}"
            f" chargers) at a {POLL_S:.0f} s poll"
        )
    else:
        lines.append("  no measured count of sites fits one account")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1, 10 and 100 chargers only")
    parser.add_argument(
        "--shape", type=Shape.parse, action="append", help="ACCOUNTS:SITES:CHARGERS (repeatable)"
    )
    parser.add_argument("--ticks", type=int, default=HOUR_TICKS, help="measured polls per shape")
    parser.add_argument("--budget", type=int, default=BUDGET_PER_HOUR)
    parser.add_argument(
        "--capacity",
        type=int,
        nargs="*",
        metavar="SITES",
        help="sites of 2 on one account to measure (default with the full or quick set:"
        f" {' '.join(map(str, CAPACITY))}; none with --shape unless given)",
    )
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
    counts = args.capacity if args.capacity is not None else ([] if args.shape else CAPACITY)
    figures = [_run(shape, args) for shape in shapes]
    carried = [_run(Shape(1, n, CAPACITY_SITE), args) for n in counts]
    if args.json:
        rows = [{"kind": "scale", **f.as_json()} for f in figures]
        rows += [
            {"kind": "capacity", "fits": fits(f, budget=args.budget), **f.as_json()}
            for f in carried
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if figures:
        print("\n".join(report(figures, budget=args.budget)))
    if carried:
        print("\n".join(capacity_report(carried, budget=args.budget)))
    return 0


def _run(shape: Shape, args: argparse.Namespace) -> Figures:
    os.environ.pop("ENLIGHTEN_PASSWORD", None)  # each site has its account's password
    done = asyncio.run(measure(shape, ticks=args.ticks, budget=args.budget))
    print(
        f"  {_shape_text(shape)}: {shape.chargers} chargers measured,"
        f" {done.cpu_ms_per_tick:.1f} ms/tick",
        file=sys.stderr,
    )
    return done


if __name__ == "__main__":
    raise SystemExit(main())
