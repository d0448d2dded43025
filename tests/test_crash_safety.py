"""SIGKILL at seeded random points of a running `evopt run`: nothing committed is lost, the
engine memory matches the decisions, and the restarted service sends no command twice.

The service runs as a real process against the fake cloud (in a thread of the test), polling
every 200 ms (allowed for a loopback address). A "driver" thread unplugs and plugs the car in
at seeded random intervals, so the all-day policy sends a start after every plug-in: writes
happen every second or so. Each seed picks where the kill should land (cycling through
``KILL_POINTS``) and, from its own random generator, which write or tick triggers it and how
long after. The trigger is the fake cloud's request log: the kill is sent when the chosen
request reaches the cloud, so "while a write is on the wire" is hit on purpose, not by luck.

After the kill the database is checked as any outside tool would read it, then the service
is started again for a few ticks with the world frozen (the driver stopped) and the fake
cloud's request log is compared with the decision log: every write maps to the decision that
sent it (``decisions.commands``), at most the one command in flight at the kill is missing
from the log, and no write is sent again because of the restart.

``EVOPT_CRASH_SEEDS=N`` runs seeds 0..N-1 (default 3, for `make test`; `make soak` asks for
more). The figures of every seed are printed at the end of the session.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from optimizer.fakecloud import FakeCloud, LoggedRequest, RequestLog
from tests.cli_env import SITE_ID
from tests.summary import report
from tests.test_service_process import Proc, Site, running_site, wait_for

SEEDS_ENV = "EVOPT_CRASH_SEEDS"
CI_SEEDS = 3
SN = "EV9876543210"
POLL = "200ms"
# Where each seed aims its kill (seed % len): the first three run in `make test`.
KILL_POINTS = (
    "write-reached-cloud",  # the cloud takes the write; the service never reads the reply
    "mid-tick",  # 0-4 ms after a tick's status read: observing, deciding or recording
    "write-dropped",  # a slow write; the kill comes before the cloud handles it (no effect)
    "write-then-commit",  # 0.2-3 ms after a write arrives: the reply, the row's transaction
    "between-ticks",  # well after a tick's status read: the service sleeps
    "anytime",  # a uniform random moment after the first decision
)
SLOW_WRITE_S = 0.4  # the fake's delay on writes for "write-dropped"
FALLBACK_KILL_S = 10.0  # the trigger never came (a very slow machine): kill anyway
RESTART_TICKS = 4
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
WRITE_PATH = re.compile(
    r"/(start_charging|stop_charging|trigger_message)$|/preference$|/settings$|/schedules$"
)
STATUS_PATH = "/ev_chargers/status"
# The write a decision's action sends (set_amps in MANUAL mode is a stop and a start).
ACTION_PATHS: dict[str, tuple[str, ...]] = {
    "start": ("/start_charging",),
    "stop": ("/stop_charging",),
    "set_amps": ("/start_charging", "/stop_charging"),
    "set_mode": ("/preference",),
    "set_battery": ("/settings",),
    "patch_schedules": ("/schedules",),
}
AS_WANTED = frozenset({"applied", "noop"})


def seeds() -> list[int]:
    raw = os.environ.get(SEEDS_ENV, str(CI_SEEDS))
    try:
        count = int(raw)
    except ValueError:
        raise pytest.UsageError(f"{SEEDS_ENV} must be a whole number, not {raw!r}") from None
    return list(range(max(1, count)))


def is_write(entry: LoggedRequest) -> bool:
    return entry.method in WRITE_METHODS and WRITE_PATH.search(entry.path) is not None


# --- the kill switch ---------------------------------------------------------------------------


def daemon_timer(delay_s: float, action: Callable[[], None]) -> threading.Timer:
    """A daemon timer: a kill still pending when a test fails never holds pytest up."""
    started = threading.Timer(delay_s, action)
    started.daemon = True
    return started


class WatchedLog(RequestLog):
    """The fake's request log, calling ``on_request`` (in the server's thread) as each request
    arrives, before the cloud handles it."""

    def __init__(self) -> None:
        super().__init__()
        self.on_request: Callable[[LoggedRequest], None] = lambda _: None

    def append(self, entry: LoggedRequest) -> None:
        super().append(entry)
        self.on_request(entry)


@dataclass
class Plan:
    """Where one seed's kill lands: on the n-th matching request, ``delay_s`` after it."""

    seed: int
    point: str
    nth: int
    delay_s: float
    driver_gaps: list[float]

    @classmethod
    def for_seed(cls, seed: int) -> Plan:
        rng = random.Random(f"crash-safety:{seed}")
        point = KILL_POINTS[seed % len(KILL_POINTS)]
        gaps = [rng.uniform(0.25, 0.6) for _ in range(64)]
        match point:
            case "write-reached-cloud":
                nth, delay = rng.randint(1, 4), 0.0
            case "write-then-commit":
                nth, delay = rng.randint(1, 4), rng.uniform(0.0002, 0.003)
            case "write-dropped":
                nth, delay = rng.randint(1, 4), rng.uniform(0.05, SLOW_WRITE_S - 0.1)
            case "mid-tick":
                nth, delay = rng.randint(3, 12), rng.uniform(0.0, 0.004)
            case "between-ticks":
                nth, delay = rng.randint(3, 12), rng.uniform(0.06, 0.14)
            case _:
                nth, delay = 1, rng.uniform(0.3, 3.0)
        return cls(seed, point, nth, delay, gaps)

    def matches(self, entry: LoggedRequest) -> bool:
        if self.point == "anytime":
            return False  # a timer, started with the first decision
        if self.point.startswith("write"):
            return is_write(entry)
        return entry.method == "GET" and entry.path.endswith(STATUS_PATH)


@dataclass
class Crash:
    """The driver (plugging the car in and out) and the kill, as one plan says."""

    cloud: FakeCloud
    plan: Plan
    proc: Proc | None = None
    killed_at: float | None = None  # wall clock, as the request log's ``wall``
    trigger: LoggedRequest | None = None
    _seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _frozen: threading.Event = field(default_factory=threading.Event)
    fired: bool = False

    def on_request(self, entry: LoggedRequest) -> None:
        if self.proc is None or not self.plan.matches(entry):
            return
        with self._lock:
            self._seen += 1
            if self.fired or self._seen != self.plan.nth:
                return
            self.fired = True
            self._frozen.set()  # the world at the kill is the world the trigger saw
        self.trigger = entry
        if self.plan.delay_s <= 0:
            self.kill()
        else:
            daemon_timer(self.plan.delay_s, self.kill).start()

    def kill(self) -> None:
        """SIGKILL, and freeze the world: no plug change after the kill."""
        with self._lock:
            self._frozen.set()
            if self.killed_at is None and self.proc is not None:
                self.proc.signal(signal.SIGKILL)
                self.killed_at = time.time()

    def drive(self) -> None:
        """Unplug and plug in again at the plan's intervals until the kill."""
        plugged = True
        for gap in self.plan.driver_gaps:
            if self._frozen.wait(gap):
                return
            with self._lock:
                if self._frozen.is_set():
                    return
                plugged = not plugged
                self.cloud.update_charger(plugged_in=plugged)


# --- reading the decision log ------------------------------------------------------------------


def rows(site: Site, sql: str = "SELECT * FROM decisions ORDER BY id") -> list[dict[str, Any]]:
    return [dict(row) for row in site.query(sql)]


def tick_time(row: dict[str, Any]) -> datetime:
    """The tick's own time (``decisions.ts`` is cut to the second)."""
    return datetime.fromisoformat(json.loads(row["inputs"])["now"])


def charger_seen(row: dict[str, Any]) -> dict[str, Any]:
    charger: dict[str, Any] = json.loads(row["inputs"])["charger"]
    return charger


@dataclass(frozen=True)
class Mapping:
    """The cloud's writes matched to the decisions that sent them, in order."""

    matched: int
    unrecorded: list[LoggedRequest]


def match_writes(decisions: list[dict[str, Any]], writes: list[LoggedRequest]) -> Mapping:
    """Each decision with ``commands = n`` owns the next n writes, which must have reached the
    cloud after its tick began and be of its action's kind. What is left over was sent by a
    decision that never reached the log (killed first)."""
    queue = list(writes)
    matched = 0
    for row in decisions:
        for _ in range(row["commands"]):
            assert queue, f"decision {row['id']} counts a write the cloud never saw: {row}"
            write = queue.pop(0)
            assert write.wall >= tick_time(row).timestamp() - 0.001, (write, row)
            paths = ACTION_PATHS.get(row["action"], ())
            assert write.path.endswith(paths), f"{write.method} {write.path} for {row}"
            matched += 1
    return Mapping(matched, queue)


def expected_memory(charging: list[dict[str, Any]]) -> dict[str, Any]:
    """What the engine memory must say after these charging decisions (oldest first).

    Mirrors the documented rules: a start applied (or already as wanted) means commanded on
    and stamps ``started_at`` with the tick's time; a command that did not happen is
    forgotten (engine/feedback.py); unplugging forgets what was commanded
    (engine/evaluate.py, track_plug).
    """
    on: bool | None = None
    started: datetime | None = None
    plugged: bool | None = None
    for row in charging:
        seen = charger_seen(row)
        if plugged and not seen["plugged_in"]:
            on = None
        plugged = seen["plugged_in"]
        wanted = row["outcome"] in AS_WANTED
        if row["action"] in ("start", "set_amps"):
            on = True if wanted else None
            if row["action"] == "start" and wanted:
                started = tick_time(row)
        elif row["action"] == "stop":
            on = False if wanted else None
    return {"commanded_on": on, "started_at": started, "last_seen_plugged_in": plugged}


def memory(site: Site) -> tuple[dict[str, Any], str] | None:
    found = site.query("SELECT value, updated_at FROM state WHERE key = ?", f"memory:{SITE_ID}")
    if not found:
        return None
    return json.loads(found[0]["value"]), found[0]["updated_at"]


def check_memory(site: Site, decisions: list[dict[str, Any]]) -> None:
    saved = memory(site)
    if not decisions:
        return
    assert saved is not None, "decisions were committed but no engine memory"
    value, updated_at = saved
    assert updated_at >= decisions[-1]["ts"], "the memory is older than the last decision"
    known = value["chargers"][SN]
    want = expected_memory([r for r in decisions if r["target"] == "charging"])
    started = known["started_at"]
    got = {
        "commanded_on": known["commanded_on"],
        "started_at": None if started is None else datetime.fromisoformat(started),
        "last_seen_plugged_in": known["last_seen_plugged_in"],
    }
    assert got == want, f"engine memory {known} does not match the decisions"


def observed_point(
    decisions: list[dict[str, Any]], before: list[LoggedRequest], unrecorded: int, per_tick: int
) -> str:
    """Where the kill actually landed, from the evidence (the plan says where it aimed)."""
    dropped = [w for w in before if is_write(w) and w.status is None]
    if dropped:
        return "mid-write (the cloud dropped the write)"
    if unrecorded:
        return "mid-write (the write took effect; its row was never committed)"
    ticks = sum(1 for r in before if r.method == "GET" and r.path.endswith(STATUS_PATH))
    sizes = tick_sizes(decisions)
    if ticks > len(sizes):
        return "mid-tick (status read, no decision committed yet)"
    if sizes and sizes[-1] < per_tick:
        return f"mid-tick ({sizes[-1]} of the tick's {per_tick} decisions committed)"
    return "between ticks"


def tick_sizes(decisions: list[dict[str, Any]]) -> list[int]:
    """Decisions per tick, oldest tick first (a tick's decisions share its time)."""
    sizes: dict[str, int] = {}
    for row in decisions:
        key = json.loads(row["inputs"])["now"]
        sizes[key] = sizes.get(key, 0) + 1
    return list(sizes.values())


# --- the test ----------------------------------------------------------------------------------


@pytest.fixture
def crash_site(tmp_path: Path) -> Iterator[tuple[Site, WatchedLog]]:
    log = WatchedLog()
    with running_site(tmp_path, poll=POLL, log=log) as world:
        yield world, log


def run_until_killed(site: Site, crash: Crash) -> list[dict[str, Any]]:
    """Start the service, drive the car, and read the log as an outside tool would until the
    kill; returns the decisions last seen committed before it."""
    cloud, plan = site.cloud, crash.plan
    proc = site.start()
    crash.proc = proc
    driver = threading.Thread(target=crash.drive, name=f"driver-{plan.seed}", daemon=True)
    # The first tick's start goes to the car as plugged in; the driver starts after it.
    wait_for("the first decision", lambda: site.decisions() > 0 or crash.fired, proc)
    driver.start()
    timers = [daemon_timer(FALLBACK_KILL_S, crash.kill)]
    if plan.point == "anytime":
        timers.append(daemon_timer(plan.delay_s, crash.kill))
    for timer in timers:
        timer.start()
    committed: list[dict[str, Any]] = []
    try:
        while proc.popen.poll() is None:
            with contextlib.suppress(sqlite3.OperationalError):  # the schema is being created
                committed = rows(site)
            time.sleep(0.01)
    finally:
        for timer in timers:
            timer.cancel()
        crash.kill()
        driver.join(5)
    assert proc.finish()[0] == -signal.SIGKILL, proc.log()
    # Let the cloud finish what reached it: a write it was handling, or a slow one it drops.
    last = max((w.wall for w in cloud.requests()), default=0.0)
    settle = SLOW_WRITE_S if plan.point == "write-dropped" else 0.0
    time.sleep(0.05 + max(0.0, last + settle - time.time()))
    return committed


def restart_for_a_few_ticks(site: Site) -> Proc:
    again = site.start()
    reads = len(site.cloud.requests(STATUS_PATH))
    wait_for(
        f"{RESTART_TICKS} ticks after the restart",
        lambda: len(site.cloud.requests(STATUS_PATH)) >= reads + RESTART_TICKS,
        again,
    )
    again.signal(signal.SIGTERM)
    assert again.finish()[0] == 0, again.log()
    return again


@pytest.mark.parametrize("seed", seeds())
def test_sigkill_keeps_the_log_consistent_and_restart_sends_nothing_twice(
    crash_site: tuple[Site, WatchedLog], seed: int
) -> None:
    site, log = crash_site
    cloud = site.cloud
    plan = Plan.for_seed(seed)
    if plan.point == "write-dropped":
        cloud.add_fault("timeout", path_regex=WRITE_PATH.pattern, times=0, delay_s=SLOW_WRITE_S)
    crash = Crash(cloud, plan)
    log.on_request = crash.on_request
    committed = run_until_killed(site, crash)
    before = cloud.requests()

    # The file after the kill: whole, everything seen committed still there and unchanged,
    # the run left open, the memory in step with the decisions, every write accounted for.
    assert site.query("PRAGMA integrity_check")[0][0] == "ok"
    survived = rows(site)
    assert [row for row in committed if row in survived] == committed, "a decision was lost"
    [crashed_run] = rows(site, "SELECT * FROM runs")
    assert (crashed_run["ended_at"], crashed_run["status"]) == (None, "running")
    check_memory(site, survived)
    writes_before = [w for w in before if is_write(w)]
    mapping = match_writes(survived, writes_before)
    # Every command of this rule is one write (a start at 16 A; no variant probing against
    # the fake's default profile), so "the command in flight" is at most one write.
    assert len(mapping.unrecorded) <= 1, (
        "more writes than the one in flight at the kill are missing from the log: "
        f"{[(w.path, w.status) for w in mapping.unrecorded]}"
    )

    # The restart, with the world as the kill left it.
    state = cloud.charger()
    needs_start = state.plugged_in and not state.charging
    restarted_at = time.time()
    again = restart_for_a_few_ticks(site)
    if survived:
        assert "resumed engine memory" in again.log()
    final = rows(site)
    assert [row for row in committed if row in final] == committed
    assert site.query("PRAGMA integrity_check")[0][0] == "ok"
    runs = rows(site, "SELECT * FROM runs ORDER BY started_at, rowid")
    assert [r["status"] for r in runs] == ["running", "stopped"]
    after = [row for row in final if row["run_id"] == runs[1]["run_id"]]
    writes_after = [w for w in cloud.requests() if is_write(w) and w.wall >= restarted_at]
    assert match_writes(after, writes_after).unrecorded == [], "a restart write is not logged"
    check_memory(site, final)  # resumed: one history across both runs

    refused = [w for w in writes_after if w.status is not None and w.status >= 400]
    repeated = writes_after[int(needs_start) :]
    duplicates = len(refused) + len(repeated)
    assert duplicates == 0, (
        f"the restart repeated a command (the charger was plugged_in={state.plugged_in}, "
        f"charging={state.charging}): {[(w.method, w.path, w.status) for w in writes_after]}"
    )
    assert len(writes_after) == int(needs_start), "the lost start was not sent again, once"
    assert cloud.charger().charging == state.plugged_in

    point = observed_point(survived, before, len(mapping.unrecorded), max(tick_sizes(final)))
    ticks = sum(1 for r in before if r.method == "GET" and r.path.endswith(STATUS_PATH))
    if crash.trigger is not None:
        aim = f"request #{plan.nth} ({crash.trigger.path.rsplit('/', 1)[-1]})"
    else:
        aim = "the first decision" if plan.point == "anytime" else "fallback timer"
    line = (
        f"crash seed {seed} [{plan.point}: {aim} +{plan.delay_s * 1000:.1f} ms] killed after "
        f"{ticks} ticks, {point}; decisions: {len(committed)} seen committed (all kept), "
        f"{len(survived)} after the kill, {len(final)} after the restart; writes: "
        f"{len(writes_before)} before ({len(mapping.unrecorded)} unrecorded), "
        f"{len(writes_after)} on restart ({int(needs_start)} needed); duplicates {duplicates}"
    )
    report([line])
