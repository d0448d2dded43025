"""The service loop in-process against the fake cloud, on a clock that advances the fake's.

Simulated hours take seconds: the service's clock sleeps by moving the fake cloud's clock on.
The decision log is read with plain ``sqlite3``, as a user would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from optimizer.config import Config, load_config
from optimizer.decisions import DecisionStore
from optimizer.engine.decision import Memory
from optimizer.engine.snapshot import DeparturePlan
from optimizer.enlighten.client import EnlightenClient
from optimizer.fakecloud import FakeClock, FakeCloud, FakeCloudServer, LoggedRequest
from optimizer.plans import save_plan
from optimizer.service import Service, TickReport, core
from optimizer.service.health import AUTH_RETRY_S, Problem, delay_after
from tests.cli_env import EMAIL, PASSWORD, SITE_ID

ROOT = Path(__file__).resolve().parent.parent
SN = "EV9876543210"
MORNING = datetime(2025, 1, 14, 21, 0, tzinfo=UTC)  # 08:00 in Melbourne (summer time)
MIDDAY = datetime(2025, 1, 15, 2, 0, tzinfo=UTC)  # 13:00
STATUS_PATH = "/ev_chargers/status"
WRITE_PATHS = ("/service/evse_controller/", "/service/evse_scheduler/")
TARIFFS = """\
tariffs:
  currency: AUD
  import_price: 0.30
  windows:
    off_peak: {price: 0.18, times: "23:00-07:00"}
    peak: {price: 0.45, times: "15:00-21:00", days: weekdays}
"""
# Keeps the charger in MANUAL (it already is): every tick decides, nothing is ever sent.
HOLD_ONLY = """\
policies:
  - name: manual
    kind: charge_mode
    mode: MANUAL_CHARGING
"""
# Charges at 16 A whenever a car is plugged in (min+solar with a 16 A cap, no delays).
ALWAYS_16 = """\
policies:
  - name: always-16
    kind: excess_solar
    variant: min_pv
    min_amps: 16
    max_amps: 16
"""


class SimClock:
    """Sleeping moves the fake cloud's clock on; ``hooks[n]`` runs at the n-th sleep."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud
        self.sleeps: list[float] = []
        self.hooks: dict[int, Callable[[], None]] = {}

    def now(self) -> datetime:
        return self.cloud.clock.now()

    async def sleep(self, seconds: float, *, wake: asyncio.Event) -> None:
        self.sleeps.append(seconds)
        hook = self.hooks.pop(len(self.sleeps), None)
        if hook is not None:
            hook()
        if not wake.is_set():
            self.cloud.advance(seconds)
        await asyncio.sleep(0)


@dataclass
class Notes:
    """A notifier that remembers what it was told."""

    events: list[tuple[str, str | None]] = field(default_factory=list)
    enabled: bool = True
    watchdog_interval_s: float | None = None

    def ready(self, status: str | None = None) -> None:
        self.events.append(("ready", status))

    def status(self, text: str) -> None:
        self.events.append(("status", text))

    def watchdog(self) -> None:
        self.events.append(("watchdog", None))

    def reloading(self) -> None:
        self.events.append(("reloading", None))

    def stopping(self, status: str | None = None) -> None:
        self.events.append(("stopping", status))

    def close(self) -> None:
        self.events.append(("close", None))

    def said(self, kind: str) -> list[str]:
        return [text or "" for event, text in self.events if event == kind]


@dataclass
class World:
    cloud: FakeCloud
    base_url: str
    tmp: Path
    clock: SimClock
    notes: Notes

    @property
    def database(self) -> Path:
        return self.tmp / "state" / "decisions.db"

    def config(self, rules: str | None = None, *, poll: str = "30s", **service: Any) -> Config:
        """A config for the fake; ``rules`` is a rule file's text (default: rules/*.yaml),
        ``poll`` the service's poll interval (the example config's 30 s unless a test spans
        hours whose every tick costs a plan, docs/performance.md)."""
        pattern = str(ROOT / "rules" / "*.yaml")
        if rules is not None:
            path = self.tmp / "rules.yaml"
            path.write_text(rules, encoding="utf-8")
            pattern = str(path)
        extra = "".join(f"  {key}: {value}\n" for key, value in service.items())
        text = (
            f"enlighten:\n  base_url: {self.base_url}\n  email: {EMAIL}\n  site_id: {SITE_ID}\n"
            "site:\n  latitude: -37.81\n  longitude: 144.96\n"
            "  timezone: Australia/Melbourne\n  max_current: 32\n"
            f"service:\n  poll_interval: {poll}\n  state_dir: {self.tmp / 'state'}\n{extra}"
            f"{TARIFFS}rules:\n  - {pattern}\n"
        )
        path = self.tmp / "config.yaml"
        path.write_text(text, encoding="utf-8")
        return load_config(path)

    def service(self, config: Config, *, dry_run: bool = False, **kwargs: Any) -> Service:
        return Service(
            config,
            config_path=config.source,
            dry_run=dry_run,
            notifier=self.notes,  # type: ignore[arg-type]
            clock=self.clock,
            **kwargs,
        )

    def rows(self, sql: str = "SELECT * FROM decisions ORDER BY id", *args: Any) -> list[Any]:
        with sqlite3.connect(self.database) as db:
            db.row_factory = sqlite3.Row
            return db.execute(sql, args).fetchall()

    def writes(self) -> list[LoggedRequest]:
        return [
            r
            for r in self.cloud.requests()
            if r.method in ("POST", "PUT", "PATCH")
            and r.path.startswith(WRITE_PATHS)
            and not (r.method == "POST" and r.path.endswith("/ev_charger_config"))  # a read
        ]

    def logins(self) -> int:
        return len(self.cloud.requests("/login/login.json"))


async def world_at(
    start: datetime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **cloud: Any
) -> AsyncIterator[World]:
    monkeypatch.setenv("ENLIGHTEN_PASSWORD", PASSWORD)
    monkeypatch.delenv("ENLIGHTEN_EMAIL", raising=False)
    fake = FakeCloud(clock=FakeClock(start), **cloud)
    fake.update_charger(plugged_in=True)
    async with FakeCloudServer(fake) as server:
        yield World(fake, server.base_url, tmp_path, SimClock(fake), Notes())


@pytest.fixture
async def morning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    async for world in world_at(MORNING, tmp_path, monkeypatch):
        yield world


@pytest.fixture
async def midday(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    async for world in world_at(MIDDAY, tmp_path, monkeypatch):
        yield world


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def applied(rows: list[Any], *actions: str) -> list[Any]:
    return [r for r in rows if r["outcome"] == "applied" and r["action"] in actions]


# --- simulated hours ---------------------------------------------------------------------------


async def test_six_hours_of_the_example_rules(morning: World) -> None:
    service = morning.service(morning.config())
    assert await service.run(max_ticks=720) == 0
    assert morning.clock.sleeps == [30.0] * 719

    rows = morning.rows()
    # Every tick decides at least the charging target, but an unchanged hold is recorded only
    # as a heartbeat (every 15 min): the log grows with what happens.
    assert 24 <= len(rows) < 720 / 4
    charging = [parse_ts(r["ts"]) for r in rows if r["target"] == "charging"]
    assert charging[0] == MORNING
    assert max(b - a for a, b in pairwise(charging)) <= timedelta(minutes=15)
    assert all(r["reason"] and r["mode"] == "live" and r["site_id"] == SITE_ID for r in rows)
    assert {r["outcome"] for r in rows} <= {"applied", "noop"}
    starts = applied(rows, "start")
    assert starts, "the sun came up and the car was plugged in: charging should have started"
    assert "surplus" in starts[0]["reason"]
    assert applied(rows, "patch_schedules"), "schedule-sync mirrors the off-peak window once"

    # A command reached the cloud only where a decision was applied, and only then.
    writes = morning.writes()
    assert sum(r["commands"] for r in rows) == len(writes)
    assert all(w.status == 200 for w in writes)  # never "already charging" or the like
    # A level change while charging is two rows (issue 13): its stop, and in a later tick the
    # restart at the new level; no tick waits the settle time between them.
    levels = applied(rows, "set_amps")  # a start at a level, without a restart
    changes = [r for r in applied(rows, "stop") if "restart_amps" in json.loads(r["params"])]
    restarts = [r for r in starts if r["reason"].startswith("restart at")]
    assert changes
    assert len(restarts) in (len(changes), len(changes) - 1)  # the last may still be pending
    for change, restart in zip(changes, restarts, strict=False):
        assert parse_ts(restart["ts"]) - parse_ts(change["ts"]) >= timedelta(seconds=30)
        assert json.loads(restart["params"])["amps"] == json.loads(change["params"])["restart_amps"]
    assert len(morning.cloud.requests("/start_charging")) == len(starts) + len(levels)
    stops = applied(rows, "stop")
    assert len(morning.cloud.requests("/stop_charging")) == len(stops)
    slot_writes = [r for r in morning.cloud.requests("/SCHEDULED_CHARGING/") if r.method != "GET"]
    assert len(slot_writes) == 1  # one single-slot call (2026), not a full-list rewrite
    assert "/schedule/" in slot_writes[0].path or slot_writes[0].path.endswith("/schedule")
    assert morning.cloud.charger().mode_writes.unchanged == 0
    assert morning.cloud.violations() == []
    # Each applied charging command found the charger in another state than the one it wanted.
    for row in applied(rows, "start", "set_amps"):
        charger = json.loads(row["inputs"])["charger"]
        wanted = json.loads(row["params"])["amps"]
        assert not charger["charging"] or charger["amps"] != wanted

    [run] = morning.rows("SELECT * FROM runs")
    assert (run["mode"], run["status"]) == ("live", "stopped")
    assert run["ended_at"] is not None
    hourly = morning.rows("SELECT hour, sum(count) AS n FROM requests GROUP BY hour")
    assert len(hourly) >= 6
    assert max(h["n"] for h in hourly) < 300  # well within the ~600/hour budget
    assert morning.notes.said("ready")
    assert morning.notes.said("stopping")
    assert "req/h" in morning.notes.said("status")[-1]


async def test_dry_run_never_writes(morning: World) -> None:
    service = morning.service(morning.config(), dry_run=True)
    assert await service.run(max_ticks=240) == 0

    assert morning.writes() == []
    assert morning.cloud.requests("start_live_stream") == []
    rows = morning.rows()
    assert {r["mode"] for r in rows} == {"dry_run"}
    would = [r for r in rows if r["outcome"] == "dry_run"]
    assert {r["action"] for r in would} >= {"start", "patch_schedules"}
    assert all(r["commands"] == 0 for r in rows)
    [run] = morning.rows("SELECT * FROM runs")
    assert run["mode"] == "dry_run"
    assert morning.notes.said("status")[-1].startswith("dry run | ")


async def test_dry_run_from_the_config(morning: World) -> None:
    service = morning.service(morning.config(dry_run="true"))
    assert await service.run(max_ticks=20) == 0
    assert morning.writes() == []
    assert {r["mode"] for r in morning.rows()} == {"dry_run"}


# --- failures ----------------------------------------------------------------------------------


async def test_rate_limit_and_outage_back_off_and_recover(
    midday: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # Five good ticks, then a 429 asking for 2 minutes, then three ticks of 503s (each tick's
    # read is retried 4 times by the transport), then good again.
    midday.cloud.add_fault("status", path=STATUS_PATH, status=429, retry_after=120, skip=5)
    midday.cloud.add_fault("status", path=STATUS_PATH, status=503, times=12)
    # Every hold recorded (heartbeat 0s), so the rows count the ticks that decided.
    service = midday.service(midday.config(HOLD_ONLY, heartbeat="0s"))
    assert await service.run(max_ticks=12) == 0

    assert midday.clock.sleeps == [30.0] * 5 + [120.0, 120.0, 240.0, 480.0] + [30.0] * 2
    rows = midday.rows()
    assert len(rows) == 8  # one decision per good tick, none while failing
    assert midday.writes() == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("rate limited" in w for w in warnings) == 1
    assert sum("Enlighten failing" in w for w in warnings) == 1  # once, not every tick
    assert sum("no more" in r.getMessage() for r in caplog.records) == 1
    statuses = midday.notes.said("status")
    assert "next try in 8 min" in statuses[8]
    assert "Enlighten failing" not in statuses[-1]


async def test_state_is_kept_through_an_outage(midday: World) -> None:
    service = midday.service(midday.config(ALWAYS_16))
    service.start()
    await service.tick()
    charging = service.memory.chargers[SN]
    assert charging.commanded_on is True
    midday.cloud.add_fault("status", path=STATUS_PATH, status=503, times=8)
    for expected in (60.0, 120.0):
        report = await service.tick()
        assert (report.problem, report.delay_s, report.exit_code) == ("cloud", expected, 4)
        midday.cloud.advance(report.delay_s)
    assert service.memory.chargers[SN] == charging
    report = await service.tick()
    assert report.problem is None
    assert len(midday.cloud.requests("/start_charging")) == 1  # no second start after it
    await service.shutdown()


async def test_session_expiry_logs_in_again(midday: World) -> None:
    service = midday.service(midday.config(ALWAYS_16))
    assert (await service.tick()).problem is None
    assert midday.logins() == 1
    midday.cloud.expire_sessions()
    midday.cloud.advance(30)
    report = await service.tick()
    assert report.problem is None
    assert midday.logins() == 2
    await service.shutdown()


async def test_a_login_wall_through_the_relogin_recovers_without_a_person(midday: World) -> None:
    """Found by the fault soak: a session that ends while the client's one re-login also meets
    the login wall used to park the service until someone ran `evopt login`, although the
    password was there and never refused. Now the retry after AUTH_RETRY_S logs in again."""
    service = midday.service(midday.config(ALWAYS_16))
    assert (await service.tick()).problem is None
    midday.cloud.expire_sessions()
    midday.cloud.add_fault("html_login", path=STATUS_PATH, times=2)
    report = await service.tick()
    assert (report.problem, report.delay_s) == ("auth", AUTH_RETRY_S)
    midday.cloud.advance(report.delay_s)
    midday.cloud.expire_sessions()  # and the session the re-login saved ends too
    logins = midday.logins()
    report = await service.tick()
    assert report.problem is None
    assert midday.logins() == logins + 1
    await service.shutdown()


async def test_a_login_wall_on_a_write_recovers_without_a_person(midday: World) -> None:
    """The same for a write: the actuator's authentication failure keeps its kind, so a login
    wall on start_charging does not park the service (found by the fault soak)."""
    service = midday.service(midday.config(ALWAYS_16))
    midday.cloud.update_charger(charging=False)
    midday.cloud.add_fault("html_login", path="start_charging", times=2)
    report = await service.tick()
    assert report.problem == "auth"
    midday.cloud.advance(report.delay_s)
    midday.cloud.expire_sessions()
    report = await service.tick()
    assert report.problem is None
    assert applied(midday.rows(), "start")
    await service.shutdown()


async def test_an_unexpected_error_is_logged_and_the_loop_goes_on(
    midday: World, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = core.evaluate
    calls = 0

    def flaky(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("engine bug")
        return real(*args, **kwargs)

    monkeypatch.setattr(core, "evaluate", flaky)
    service = midday.service(midday.config(HOLD_ONLY, heartbeat="0s"))  # a row every tick
    assert await service.run(max_ticks=4) == 0
    assert midday.clock.sleeps == [30.0, 60.0, 30.0]
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.exc_info is not None
    assert "engine bug" in str(error.exc_info[1])
    assert len(midday.rows()) == 3


async def test_once_reports_a_failing_cloud_with_exit_4(midday: World) -> None:
    midday.cloud.add_fault("status", path=STATUS_PATH, status=503, times=0)
    service = midday.service(midday.config(HOLD_ONLY))
    assert await service.run(once=True) == 4
    report = service.last_report
    assert report is not None
    assert report.problem == "cloud"
    [run] = midday.rows("SELECT * FROM runs")
    assert run["status"] == "stopped"


@pytest.mark.parametrize(
    ("problem", "failures", "retry_after", "expected"),
    [
        (None, 0, None, 30.0),
        ("cloud", 1, None, 60.0),
        ("cloud", 4, None, 480.0),
        ("cloud", 5, None, 900.0),  # at most 15 minutes
        ("internal", 400, None, 900.0),  # no overflow after a very long outage
        ("rate_limited", 1, 10.0, 30.0),  # never faster than the poll
        ("rate_limited", 1, 1800.0, 1800.0),  # as long as the cloud asks
        ("rate_limited", 2, None, 120.0),  # without Retry-After: like any failure
        ("auth", 1, None, AUTH_RETRY_S),
    ],
)
def test_delay_after(
    problem: Problem | None, failures: int, retry_after: float | None, expected: float
) -> None:
    assert delay_after(problem, failures, poll_s=30.0, retry_after_s=retry_after) == expected


# --- authentication ----------------------------------------------------------------------------


async def login_with_otp(config: Config) -> None:
    """What `evopt login` and `evopt login --otp` do, into the same session file."""
    async with client_of(config) as client:
        await client.login()
    async with client_of(config) as client:
        await client.submit_otp("123456")


def client_of(config: Config) -> EnlightenClient:
    return EnlightenClient(
        base_url=config.enlighten.base_url,
        email=EMAIL,
        password_provider=lambda: PASSWORD,
        state_dir=config.state_dir,
    )


async def test_mfa_account_waits_for_a_person_and_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async for world in world_at(MIDDAY, tmp_path, monkeypatch, mfa=True):
        config = world.config(ALWAYS_16, heartbeat="0s")  # a row per decision
        await login_with_otp(config)
        service = world.service(config)
        assert (await service.tick()).problem is None
        assert world.cloud.charger().charging
        world.cloud.expire_sessions()
        logins = world.logins()

        seen = len(world.cloud.requests())
        reports: list[TickReport] = []
        for _ in range(4):
            world.cloud.advance(30)
            reports.append(await service.tick())
            world.cloud.advance(reports[-1].delay_s)
        assert [r.problem for r in reports] == ["auth"] * 4
        assert [r.exit_code for r in reports] == [3] * 4
        assert reports[-1].delay_s == AUTH_RETRY_S
        assert reports[-1].status.startswith("authentication needed: run `evopt login`")
        assert world.notes.said("status")[-1] == reports[-1].status
        # One re-login was tried (Enlighten sent a code); after that nothing but waiting:
        # no new login that would send another code, no read, no write.
        assert world.logins() == logins + 1
        assert len(world.cloud.requests()) == seen + 2  # the refused read and that login
        assert len(world.rows()) == 2  # nothing decided while blind

        # Someone runs `evopt login`, then `evopt login --otp CODE` in a shell (the code sent
        # at the service's attempt has expired by now): the service picks the session up.
        await login_with_otp(config)
        report = await service.tick()
        assert report.problem is None
        assert [a.actuation.outcome for a in report.acted] == ["noop", "noop"]
        assert (await service.tick()).problem is None
        assert len(world.rows()) == 6
        assert len(world.cloud.requests("/start_charging")) == 1
        await service.shutdown()


async def test_once_without_any_login_exits_3(
    midday: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENLIGHTEN_PASSWORD")
    service = midday.service(midday.config(HOLD_ONLY))
    assert await service.run(once=True) == 3
    assert midday.cloud.requests() == []


# --- reload ------------------------------------------------------------------------------------


async def test_an_invalid_rules_file_at_reload_keeps_the_old_rules(
    midday: World, caplog: pytest.LogCaptureFixture
) -> None:
    config = midday.config(ALWAYS_16)
    service = midday.service(config)
    rules_file = midday.tmp / "rules.yaml"

    def break_rules() -> None:
        rules_file.write_text("policies:\n  - name: x\n    kind: nonsense\n", encoding="utf-8")
        service.request_reload()

    midday.clock.hooks[3] = break_rules
    assert await service.run(max_ticks=6) == 0

    assert service.setup is not None
    assert [p.name for p in service.setup.rules.policies] == ["always-16"]
    assert midday.notes.said("reloading") == [""]
    refused = midday.notes.said("ready")[-1]
    assert refused.startswith(f"reload refused, old rules kept: {rules_file}:3:5:")
    assert refused in midday.notes.said("status")[-1]  # shown until a reload works
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors
    assert all(e.startswith(f"reload refused: {rules_file}:3:5: ") for e in errors)
    # The reload interrupted the third sleep, the loop went on with the old rules.
    assert len(midday.clock.sleeps) == 5
    assert {r["policy"] for r in midday.rows()} == {"always-16"}
    assert len(midday.rows("SELECT * FROM runs")) == 1


async def test_a_duplicate_service_block_at_reload_keeps_the_old_config(midday: World) -> None:
    config = midday.config(HOLD_ONLY, dry_run="true")
    service = midday.service(config)
    service.start()
    assert service.dry_run
    path = midday.tmp / "config.yaml"
    text = path.read_text(encoding="utf-8")
    first = text.splitlines().index("service:") + 1
    path.write_text(f"{text}service:\n  dry_run: false\n", encoding="utf-8")
    second = len(text.splitlines()) + 1

    assert service.reload() is False
    assert service.dry_run  # the second block did not switch the service to live
    refused = midday.notes.said("ready")[-1]
    assert refused.startswith(
        f"reload refused, old rules kept: {path}:{second}:1: duplicate key 'service' "
        f"(first at {path}:{first}:1)"
    )
    await service.shutdown()


async def test_a_good_reload_begins_a_new_run(midday: World) -> None:
    service = midday.service(midday.config(HOLD_ONLY))
    service.start()
    await service.tick()
    midday.config(ALWAYS_16)  # rewrites the rule file
    assert service.reload() is True
    await service.tick()
    assert midday.cloud.charger().charging
    await service.shutdown()
    runs = midday.rows("SELECT * FROM runs ORDER BY started_at, rowid")
    assert [r["status"] for r in runs] == ["reloaded", "stopped"]
    assert runs[0]["rules_hash"] != runs[1]["rules_hash"]
    assert [r["run_id"] for r in midday.rows()] == [runs[0]["run_id"]] + [runs[1]["run_id"]] * 2


async def test_invalid_rules_at_start_exit_1(
    midday: World, capsys: pytest.CaptureFixture[str]
) -> None:
    service = midday.service(midday.config("policies: [\n"))
    assert await service.run() == 1
    err = capsys.readouterr().err
    assert f"{midday.tmp / 'rules.yaml'}:2:1:" in err
    assert midday.cloud.requests() == []


# --- memory across restarts --------------------------------------------------------------------


async def test_memory_is_restored_by_the_next_service(
    midday: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    config = midday.config(ALWAYS_16)
    first = midday.service(config)
    assert await first.run(max_ticks=10) == 0
    remembered = first.memory
    assert remembered.chargers[SN].commanded_on is True
    assert remembered.chargers[SN].started_at is not None
    assert len(midday.cloud.requests("/start_charging")) == 1

    store = DecisionStore(midday.database)
    try:
        second = midday.service(config, store=store)
        second.start()
        assert second.memory == remembered
        assert any("resumed engine memory" in r.getMessage() for r in caplog.records)
        midday.cloud.advance(30)
        assert (await second.tick()).problem is None
        await second.shutdown()
    finally:
        store.close()
    assert len(midday.cloud.requests("/start_charging")) == 1  # no second start
    assert second.memory.chargers[SN].started_at == remembered.chargers[SN].started_at


class Crash(BaseException):
    """Stands for SIGKILL at one exact point: not an Exception, so nothing catches it."""


START_AND_SPARE_BATTERY = (
    ALWAYS_16
    + """\
  - name: spare-battery
    kind: battery_use
    use_battery: false
"""
)


async def test_a_crash_mid_tick_leaves_memory_matching_the_recorded_decisions(
    midday: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each decision is written with the memory that knows it and nothing after it."""
    config = midday.config(START_AND_SPARE_BATTERY)
    store = DecisionStore(midday.database)
    real_write = store.write_tick

    def write_until_the_battery(rows: list[dict[str, Any]], **kwargs: Any) -> list[int]:
        if any(row["action"] == "set_battery" for row in rows):
            raise Crash  # the battery command went out; its row and memory never land
        return real_write(rows, **kwargs)

    monkeypatch.setattr(store, "write_tick", write_until_the_battery)
    first = midday.service(config, store=store)
    with pytest.raises(Crash):
        await first.run(max_ticks=1)
    store.close()
    assert len(midday.cloud.requests("/start_charging")) == 1
    assert midday.cloud.charger().green_use_battery is False  # applied, not recorded

    saved = DecisionStore(midday.database)
    try:
        memory = Memory.model_validate(saved.load_state(f"memory:{SITE_ID}"))
        assert memory.chargers[SN].commanded_on is True  # recorded start: remembered
        assert memory.chargers[SN].commanded_battery is None  # unrecorded: not claimed
        second = midday.service(config, store=saved)
        midday.cloud.advance(30)
        assert await second.run(max_ticks=1) == 0
    finally:
        saved.close()
    assert len(midday.cloud.requests("/start_charging")) == 1  # no duplicate start
    assert midday.cloud.requests("/settings", method="PUT")[1:] == []  # nor battery write
    battery = [r for r in midday.rows() if r["target"] == "battery"]
    # After the restart the engine sees the setting already off: a hold, nothing sent.
    assert [(r["action"], r["outcome"]) for r in battery] == [("hold", "noop")]
    assert "already off" in battery[0]["reason"]


# --- departure plans ---------------------------------------------------------------------------


async def test_a_plan_set_with_evopt_plan_reaches_the_engine(midday: World) -> None:
    """`evopt plan set` writes the state database; the next tick's snapshot carries the plan,
    and excess_solar, short of time, starts at full power at once."""
    rules = (ROOT / "rules" / "excess-solar.yaml").read_text(encoding="utf-8")
    service = midday.service(midday.config(rules))
    service.start()
    now = midday.cloud.clock.now()
    with DecisionStore(midday.database) as store:
        save_plan(store, SN, DeparturePlan(now + timedelta(hours=1), 20.0), now=now)
    await service.tick()
    rows = applied(midday.rows(), "start")
    assert len(rows) == 1
    assert "ready by" in rows[0]["reason"]
    assert "last moment" in rows[0]["reason"]
    assert json.loads(rows[0]["params"]) == {"amps": 32}
    assert json.loads(rows[0]["inputs"])["charger"]["plan"]["energy_kwh"] == 20.0
    assert len(midday.cloud.requests("/start_charging")) == 1
    await service.shutdown()


async def test_an_iq40_start_goes_without_the_level_and_the_log_says_so(midday: World) -> None:
    """2026 reference, section 2: the policy's 16 A is refused with a 500 "Invalid charge
    level"; the service starts without it, once, and the decision log keeps why."""
    midday.cloud.update_charger(iq40_backend=True)
    service = midday.service(midday.config(ALWAYS_16))
    service.start()
    report = await service.tick()
    assert report.problem is None
    assert midday.cloud.charger().charging
    (start,) = [r for r in midday.rows() if r["action"] in ("start", "set_amps")]
    assert (start["outcome"], start["commands"]) == ("applied", 2)
    assert "16 A level was not applied" in start["error"]
    assert "Invalid charge level" in start["error"]
    assert [r.json for r in midday.cloud.requests("/start_charging")] == [
        {"chargingLevel": 16, "connectorId": 1},
        {"connectorId": 1},
    ]
    await service.shutdown()
