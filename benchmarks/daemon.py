"""`make bench`: the daemon's footprint and the CLI's start-up, each beside its target (issue 16).

- `evopt --help`, `evopt status --help`, `evopt --version`: the median of several fresh
  processes (target 0.25 s).
- The real `evopt run`, a subprocess with the example config and rules against the fake cloud
  on 127.0.0.1 at the 30 s poll, for a few real ticks: resident memory (VmRSS, and VmHWM its
  peak; target 60 MB), CPU per tick (from /proc, after the first tick, which logs in), and the
  TCP connections it opened (target 1: one kept-alive connection across ticks).
- The same service in this process on a simulated clock for a day (2880 ticks at 30 s, the car
  plugged in 08:00-18:00): requests per hour per charger by endpoint, as the fake cloud counted
  them (target 130), CPU per tick of the service's thread, connections opened.

`python benchmarks/daemon.py [--ticks N] [--hours H] [--always-plugged] [--planner]`: fewer real
ticks or simulated hours for a quick look; the car plugged in all the time instead of
08:00-18:00; ``--planner``: the example rules with `solar-plan` (rules/solar-plan.yaml) enabled
in place of `solar-surplus` and `overnight-top-up`, the switch docs/planner.md describes (the
targets are the example rules'; this shows what the switch would cost).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optimizer.config import load_config  # noqa: E402
from optimizer.fakecloud import FakeClock, FakeCloud, LoggedRequest, run_in_thread  # noqa: E402
from optimizer.service import Service  # noqa: E402
from optimizer.systemd import Notifier  # noqa: E402
from optimizer.yamlpos import load_file  # noqa: E402

EVOPT = Path(sys.executable).with_name("evopt")
PASSWORD = "correct-horse-battery"  # noqa: S105 - the fake cloud's documented demo account
HELP_TARGET_S = 0.25
RSS_TARGET_MB = 60.0
REQUESTS_TARGET = 130.0
POLL_S = 30
DAY_START = datetime(2025, 1, 14, 13, 0, tzinfo=UTC)  # 00:00 in Melbourne (summer time)
PLUG_IN_H, UNPLUG_H = 8, 18

# Endpoint names by a distinctive part of the path (the first that matches).
ENDPOINTS = (
    ("status", "/status"),
    ("lifetime energy", "lifetime_energy"),
    ("mode", "/preference"),
    ("site battery", "battery_status"),
    ("battery setting", "/settings"),
    ("schedules", "/schedules"),
    ("summary", "ev_charger/summary"),
    ("summary", "/summary"),
    ("feature flags", "feature"),
    ("charger config", "ev_charger_config"),
    ("latest power", "get_latest_power"),
    ("login", "login"),
    ("start/stop", "_charging"),
    ("live stream", "live_stream"),
    ("schedule write", "/schedule"),
)


def endpoint(request: LoggedRequest) -> str:
    for name, part in ENDPOINTS:
        if part in request.path:
            return name
    return request.path


def verdict(value: float, target: float) -> str:
    return "ok" if value <= target else "OVER"


# --- start-up ------------------------------------------------------------------------------


def help_times(repeat: int) -> None:
    print(f"start-up, median of {repeat} fresh processes (target {HELP_TARGET_S} s):")
    for argv in (["--help"], ["status", "--help"], ["--version"]):
        times = []
        for _ in range(repeat):
            began = time.perf_counter()
            subprocess.run([EVOPT, *argv], check=True, capture_output=True)  # noqa: S603
            times.append(time.perf_counter() - began)
        median = statistics.median(times)
        words = " ".join(["evopt", *argv])
        print(
            f"  {words:<22} {median:5.3f} s  (best {min(times):.3f})  target {HELP_TARGET_S} s"
            f"  {verdict(median, HELP_TARGET_S)}"
        )
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    print(f"  (python itself: {time.perf_counter() - began:.3f} s)")


# --- the example config against the fake cloud --------------------------------------------


PLANNER_SWITCH = {"solar-plan": True, "solar-surplus": False, "overnight-top-up": False}
"""``--planner``: the policies' ``enabled`` as docs/planner.md's switch to the planner sets them."""
RULES = "the example config and rules"


def example_config(
    base_url: str, tmp: Path, *, poll: str = f"{POLL_S}s", planner: bool = False
) -> Path:
    """config.example.yaml as shipped, pointed at the fake cloud and a scratch state dir;
    with ``planner``, its rule files copied with the switch to the planner made."""
    # Read as evopt reads it: `off:` is a rule set's name there, not YAML 1.1's false.
    data: dict[str, Any] = load_file(ROOT / "config.example.yaml").data
    data["enlighten"]["base_url"] = base_url
    data["service"]["state_dir"] = str(tmp / "state")
    data["service"]["poll_interval"] = poll
    # The example's rule files stay where they are: every pattern made absolute, `rules:` and
    # each of `rule_sets:` alike.
    data["rules"] = [str(ROOT / pattern) for pattern in data["rules"]]
    if planner:
        data["rules"] = [str(_switched(data["rules"], tmp / "rules"))]
    data["rule_sets"] = {
        name: [str(ROOT / pattern) for pattern in patterns]
        for name, patterns in data.get("rule_sets", {}).items()
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _switched(patterns: Sequence[str], into: Path) -> str:
    """The rule files ``patterns`` match, copied into ``into`` with :data:`PLANNER_SWITCH`
    made; the pattern that matches the copies."""
    into.mkdir(parents=True, exist_ok=True)
    for pattern in patterns:
        for path in sorted(Path(pattern).parent.glob(Path(pattern).name)):
            data = load_file(path).data  # as evopt reads it (YAML 1.2's booleans)
            for policy in data.get("policies", []):
                if policy.get("name") in PLANNER_SWITCH:
                    policy["enabled"] = PLANNER_SWITCH[policy["name"]]
            (into / path.name).write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(into / "*.yaml")


def _proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (MB) of a process."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found


def _cpu_s(pid: int) -> float:
    """CPU time of the process's main thread in ns (schedstat), not /proc/stat's 10 ms ticks:
    a tick costs a few milliseconds."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def _statuses(cloud: FakeCloud) -> int:
    return sum(endpoint(r) == "status" for r in cloud.requests())


def _wait(what: str, done: Any, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if proc.poll() is not None:
            raise SystemExit(f"evopt run exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def real_daemon(ticks: int, *, planner: bool = False) -> None:
    """`evopt run` as systemd starts it, for ``ticks`` real ticks at the 30 s poll."""
    cloud = FakeCloud(clock=FakeClock(realtime=True))
    cloud.update_charger(plugged_in=True)
    env = {**os.environ, "ENLIGHTEN_PASSWORD": PASSWORD}
    with tempfile.TemporaryDirectory() as tmp, run_in_thread(cloud) as base_url:
        config = example_config(base_url, Path(tmp), planner=planner)
        proc = subprocess.Popen(  # noqa: S603 - our own program
            [EVOPT, "--config", str(config), "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait("its first tick", lambda: _statuses(cloud) >= 1, proc, 60)
            time.sleep(1)  # the first tick's reads and writes after the status
            cpu0, seen0 = _cpu_s(proc.pid), _statuses(cloud)
            _wait(f"{ticks} ticks", lambda: _statuses(cloud) >= 1 + ticks, proc, 40 * ticks)
            time.sleep(1)
            cpu = _cpu_s(proc.pid) - cpu0
            counted = _statuses(cloud) - seen0
            memory = _proc_status(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    peers = {r.peer for r in cloud.requests()}
    print(
        f"`evopt run`, {_rules(planner)}, {counted} real ticks at {POLL_S} s after the first, "
        "car plugged in:"
    )
    rss = memory["VmRSS"]
    print(
        f"  RSS {rss:5.1f} MB (peak {memory['VmHWM']:.1f})  target {RSS_TARGET_MB:.0f} MB"
        f"  {verdict(rss, RSS_TARGET_MB)}"
    )
    print(f"  CPU per tick {cpu / max(counted, 1) * 1000:.1f} ms")
    print(
        f"  connections opened {len(peers)} for {len(cloud.requests())} requests  target 1"
        f"  {verdict(len(peers), 1)}"
    )


# --- a simulated day -----------------------------------------------------------------------


class DayClock:
    """Sleeps by advancing the fake cloud's clock; plugs the car in and out on the way (or
    leaves it plugged in, ``always``)."""

    def __init__(self, cloud: FakeCloud, *, always: bool = False) -> None:
        self.cloud = cloud
        self.always = always

    def now(self) -> datetime:
        return self.cloud.clock.now()

    async def sleep(self, seconds: float, *, wake: asyncio.Event) -> None:
        self.cloud.advance(seconds)
        hour = (self.now() - DAY_START) / timedelta(hours=1) % 24
        plugged = self.always or PLUG_IN_H <= hour < UNPLUG_H
        if self.cloud.charger().plugged_in != plugged:
            self.cloud.update_charger(plugged_in=plugged)
        await asyncio.sleep(0)


def _rules(planner: bool) -> str:
    return f"{RULES} with the planner switched on" if planner else RULES


def simulated(hours: float, *, always: bool = False, planner: bool = False) -> None:
    """The service on a simulated clock: requests per hour by endpoint, CPU per tick."""
    cloud = FakeCloud(clock=FakeClock(DAY_START))
    if always:
        cloud.update_charger(plugged_in=True)
    chargers = len(cloud.model.chargers)
    ticks = int(hours * 3600 / POLL_S)
    with tempfile.TemporaryDirectory() as tmp, run_in_thread(cloud) as base_url:
        config = load_config(example_config(base_url, Path(tmp), planner=planner))
        service = Service(
            config,
            config_path=config.source,
            dry_run=False,
            notifier=Notifier(socket_path=""),
            clock=DayClock(cloud, always=always),
        )
        thread_cpu = time.thread_time()
        with patch.dict(os.environ, {"ENLIGHTEN_PASSWORD": PASSWORD}):
            asyncio.run(service.run(max_ticks=ticks))
        thread_cpu = time.thread_time() - thread_cpu
    requests = cloud.requests()
    by_endpoint = Counter(endpoint(r) for r in requests)
    per_hour = len(requests) / hours / chargers
    plugged = "all the time" if always else f"{PLUG_IN_H:02d}:00-{UNPLUG_H:02d}:00"
    print(
        f"the service on a simulated clock, {hours:g} h ({ticks} ticks at {POLL_S} s, car "
        f"plugged in {plugged}), {_rules(planner)}:"
    )
    print(
        f"  requests per hour per charger {per_hour:5.1f}  target {REQUESTS_TARGET:.0f}"
        f"  {verdict(per_hour, REQUESTS_TARGET)}"
    )
    for name, count in by_endpoint.most_common():
        print(f"    {name:<16} {count / hours / chargers:6.1f}")
    print(f"  CPU per tick {thread_cpu / ticks * 1000:.2f} ms (the service's thread)")
    peers = {r.peer for r in requests}
    print(f"  connections opened {len(peers)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=3, help="real ticks of `evopt run`")
    parser.add_argument("--hours", type=float, default=24, help="simulated hours")
    parser.add_argument("--repeat", type=int, default=7, help="processes per --help timing")
    parser.add_argument(
        "--always-plugged", action="store_true", help="the car plugged in all the simulated time"
    )
    parser.add_argument(
        "--planner",
        action="store_true",
        help="solar-plan enabled in place of solar-surplus and overnight-top-up",
    )
    args = parser.parse_args(argv)
    help_times(args.repeat)
    simulated(args.hours, always=args.always_plugged, planner=args.planner)
    real_daemon(args.ticks, planner=args.planner)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
