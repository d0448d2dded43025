"""`python -m optimizer run` as a real process: signals, systemd notify, and a hard kill.

The fake cloud runs in a thread of the test; the service polls it every second (allowed for a
loopback address). The decision log is read with plain ``sqlite3`` while the service writes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from optimizer.fakecloud import FakeCloud, RequestLog, run_in_thread
from tests.cli_env import EMAIL, PASSWORD, SITE_ID

ROOT = Path(__file__).resolve().parent.parent
SN = "EV9876543210"
DEADLINE_S = 15.0
# Charge at 16 A all day: deterministic whatever the sun and the real clock say.
RULES = """\
policies:
  - name: all-day
    kind: tariff_window
    windows: [always]
    amps: 16
"""


@dataclass
class Proc:
    popen: subprocess.Popen[str]
    stderr: Path

    def log(self) -> str:
        return self.stderr.read_text(encoding="utf-8")

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def finish(self, timeout: float = DEADLINE_S) -> tuple[int, str]:
        """Wait for the exit; (exit code, stdout). Closes the pipe."""
        out, _ = self.popen.communicate(timeout=timeout)
        return self.popen.returncode, out

    def end(self) -> None:
        """After a failed test: no process and no pipe is left behind."""
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.communicate()


@dataclass
class Site:
    cloud: FakeCloud
    tmp: Path
    config: Path
    rules: Path
    procs: list[Proc] = field(default_factory=list)

    @property
    def database(self) -> Path:
        return self.tmp / "state" / "decisions.db"

    def start(
        self, *args: str, env: dict[str, str] | None = None, stdout: int = subprocess.PIPE
    ) -> Proc:
        stderr = self.tmp / f"stderr-{time.monotonic_ns()}.txt"
        environment = {
            key: value
            for key, value in os.environ.items()
            if key not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "EVOPT_CONFIG")
        }
        environment.update(ENLIGHTEN_PASSWORD=PASSWORD, **(env or {}))
        command = [sys.executable, "-m", "optimizer", "--config", str(self.config)]
        with stderr.open("w", encoding="utf-8") as sink:
            popen = subprocess.Popen(
                [*command, "--log-level", "info", "run", *args],
                stdout=stdout,
                stderr=sink,
                text=True,
                cwd=ROOT,
                env=environment,
            )
        self.procs.append(Proc(popen, stderr))
        return self.procs[-1]

    def query(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        """Read as an outside tool would, while the service writes (WAL)."""
        with sqlite3.connect(f"{self.database.as_uri()}?mode=ro", uri=True, timeout=5) as db:
            db.row_factory = sqlite3.Row
            return db.execute(sql, args).fetchall()

    def ticks(self) -> int:
        """Status reads: one a tick (the log records unchanged holds only as a heartbeat)."""
        return len(self.cloud.requests("/ev_chargers/status"))

    def decisions(self) -> int:
        if not self.database.exists():
            return 0
        try:
            return int(self.query("SELECT count(*) FROM decisions")[0][0])
        except sqlite3.OperationalError:  # the schema is being created
            return 0


def wait_for(what: str, check: Callable[[], bool], proc: Proc | None = None) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        if proc is not None and proc.popen.poll() is not None:
            pytest.fail(
                f"the service exited ({proc.popen.returncode}) before {what}:\n{proc.log()}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}" + (f":\n{proc.log()}" if proc else ""))
        time.sleep(0.05)


def write_run_config(
    tmp_path: Path,
    base_url: str,
    state_dir: Path,
    *,
    poll: str = "1s",
    site_id: int | None = SITE_ID,
) -> Path:
    """``config.yaml`` and ``rules.yaml`` (RULES) in ``tmp_path`` for `evopt run` against the
    fake at ``base_url``; without ``site_id`` the site is discovered."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    site = f"  site_id: {site_id}\n" if site_id is not None else ""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"enlighten:\n  base_url: {base_url}\n  email: {EMAIL}\n{site}"
        "site:\n  timezone: Australia/Melbourne\n"
        "charger:\n  settle_delay: 0s\n"
        f"service:\n  poll_interval: {poll}\n  state_dir: {state_dir}\n"
        'tariffs:\n  windows:\n    always: {price: 0.2, times: "00:00-24:00"}\n'
        f"rules:\n  - {rules}\n",
        encoding="utf-8",
    )
    return config


@contextmanager
def running_site(
    tmp_path: Path, *, poll: str = "1s", log: RequestLog | None = None
) -> Iterator[Site]:
    """The fake cloud in a thread and a config for `evopt run` against it; every process the
    test started is ended afterwards. ``log``: a request log of the test's own to use."""
    cloud = FakeCloud()
    cloud.update_charger(plugged_in=True)
    if log is not None:
        cloud.log = log
    with run_in_thread(cloud) as base_url:
        config = write_run_config(tmp_path, base_url, tmp_path / "state", poll=poll)
        world = Site(cloud, tmp_path, config, tmp_path / "rules.yaml")
        try:
            yield world
        finally:
            for proc in world.procs:
                proc.end()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with running_site(tmp_path) as world:
        yield world


def test_sigterm_stops_cleanly(site: Site) -> None:
    proc = site.start()
    wait_for("a decision", lambda: site.decisions() >= 2, proc)
    started = time.monotonic()
    proc.signal(signal.SIGTERM)
    assert proc.finish() == (0, "")  # nothing on stdout without --once
    assert time.monotonic() - started < 5
    [run] = site.query("SELECT * FROM runs")
    assert run["status"] == "stopped"
    assert run["ended_at"] is not None
    assert site.cloud.charger().charging


def test_sighup_with_broken_rules_keeps_running(site: Site) -> None:
    proc = site.start()
    wait_for("a decision", lambda: site.decisions() >= 2, proc)
    site.rules.write_text("policies:\n  - name: all-day\n    kind: tariff_window\n    amps: [\n")
    proc.signal(signal.SIGHUP)
    wait_for("the refused reload", lambda: "reload refused" in proc.log(), proc)
    before = site.ticks()
    wait_for("ticks after the reload", lambda: site.ticks() >= before + 2, proc)
    assert proc.popen.poll() is None
    assert f"{site.rules}:5:1:" in proc.log()
    proc.signal(signal.SIGTERM)
    assert proc.finish()[0] == 0
    assert {r["policy"] for r in site.query("SELECT policy FROM decisions")} == {"all-day"}


@pytest.fixture
def notify_socket() -> Iterator[socket.socket]:
    # A short path: AF_UNIX addresses are limited to about 100 bytes.
    directory = Path(tempfile.mkdtemp(prefix="evopt-", dir="/tmp"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(directory / "notify"))
    sock.settimeout(0.2)
    try:
        yield sock
    finally:
        sock.close()
        (directory / "notify").unlink(missing_ok=True)
        directory.rmdir()


def received(sock: socket.socket, into: list[str]) -> list[str]:
    """Every message that has arrived so far, appended to ``into``."""
    while True:
        try:
            into.append(sock.recv(4096).decode())
        except TimeoutError:
            return into


def test_systemd_notify_ready_status_watchdog_stopping(
    site: Site, notify_socket: socket.socket
) -> None:
    env = {"NOTIFY_SOCKET": notify_socket.getsockname(), "WATCHDOG_USEC": "2000000"}
    proc = site.start(env=env)
    messages: list[str] = []

    def seen(prefix: str) -> Callable[[], bool]:
        return lambda: any(
            line.startswith(prefix)
            for message in received(notify_socket, messages)
            for line in message.split("\n")
        )

    wait_for("READY=1", seen("READY=1"), proc)
    wait_for("a STATUS= line with the charger", seen(f"STATUS={SN}"), proc)
    wait_for("WATCHDOG=1", seen("WATCHDOG=1"), proc)
    proc.signal(signal.SIGTERM)
    assert proc.finish()[0] == 0
    wait_for("STOPPING=1", seen("STOPPING=1"))
    lines = [line for message in messages for line in message.split("\n")]
    assert lines.index("READY=1") < lines.index("STOPPING=1")
    assert any("req/h" in line for line in lines if line.startswith("STATUS="))


def test_sigkill_loses_nothing_committed_and_restart_resumes(site: Site) -> None:
    proc = site.start()
    wait_for("charging and a few ticks", lambda: site.ticks() >= 6 and site.decisions(), proc)
    assert site.cloud.charger().charging
    committed = {r["id"] for r in site.query("SELECT id FROM decisions")}
    saved = json.loads(
        site.query("SELECT value FROM state WHERE key = ?", f"memory:{SITE_ID}")[0][0]
    )
    started_at = saved["chargers"][SN]["started_at"]
    assert started_at is not None
    proc.signal(signal.SIGKILL)
    assert proc.finish()[0] == -signal.SIGKILL

    assert site.query("PRAGMA integrity_check")[0][0] == "ok"
    after = {r["id"] for r in site.query("SELECT id FROM decisions")}
    assert committed <= after
    [crashed] = site.query("SELECT * FROM runs")
    assert crashed["ended_at"] is None  # the run shows it did not end cleanly
    starts = len(site.cloud.requests("/start_charging"))

    again = site.start("--once")
    code, summary = again.finish()
    assert code == 0
    assert "resumed engine memory" in again.log()
    assert f"{SN} charging: hold -> noop" in summary
    assert len(site.cloud.requests("/start_charging")) == starts  # no second start
    memory = json.loads(
        site.query("SELECT value FROM state WHERE key = ?", f"memory:{SITE_ID}")[0][0]
    )
    assert memory["chargers"][SN]["started_at"] == started_at
    assert memory["chargers"][SN]["commanded_on"] is True
    runs = site.query("SELECT * FROM runs ORDER BY started_at, rowid")
    assert [r["status"] for r in runs] == ["running", "stopped"]
