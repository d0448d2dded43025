"""The service loop: observe, decide, act, record, every ``service.poll_interval``, for months.

One tick: ``observe_live`` reads a snapshot -> ``evaluate`` decides -> the :class:`Actuator`
applies each decision (or finds nothing to do) -> the decision log records it with its
outcome -> the engine memory is corrected for what did not happen (``acknowledge``) and saved.
Each write to the log is its own short transaction, so a crash loses at most the decision being
written, and a restart resumes the engine's memory.

Nothing a cloud can do stops the loop: rate limits, outages and malformed replies make it wait
longer before the next tick; a login that needs a person makes it act on nothing and check the
stored session every few minutes (so `evopt login --otp` from a shell brings it back); and an
unexpected exception is logged with its traceback and the loop goes on. SIGTERM and SIGINT stop
it after the current tick; SIGHUP reloads the config and rules, keeping the old ones if the new
ones are invalid. systemd hears about all of it through the :class:`Notifier`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from optimizer import __version__
from optimizer.actuate import Actuation, Actuator
from optimizer.config import Config
from optimizer.connect import client_for, password_provider, resolve_site_id, unattended_password
from optimizer.decisions import DecisionStore, Outcome, RunMode
from optimizer.decisions.minutes import PowerHistory, minute_row
from optimizer.decisions.ticklog import TickLog
from optimizer.engine.decision import Decision, Memory
from optimizer.engine.evaluate import evaluate
from optimizer.engine.feedback import acknowledge
from optimizer.engine.restart import begin_restart
from optimizer.engine.rules import SolarPlan
from optimizer.engine.snapshot import Snapshot
from optimizer.enlighten.auth import AccountSession
from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.errors import (
    EXIT_AUTH,
    EXIT_CLOUD,
    EXIT_INVALID,
    AuthError,
    ConfigError,
    EnlightenError,
    InvalidCredentialsError,
    LoginSuspendedError,
    LoginWallError,
    RateLimitedError,
    SessionLockoutError,
    UnauthorizedError,
)
from optimizer.enlighten.ratelimit import AccountLimiter
from optimizer.forecast.habits import Habits
from optimizer.gateway.renew import TokenKeeper
from optimizer.gateway.source import GatewaySource, gateway_source
from optimizer.gateway.token import FETCH_STEP
from optimizer.observe.live import ObserveCache, observe_live
from optimizer.plans import HabitCache, load_plans, with_plans
from optimizer.service.clock import Clock
from optimizer.service.health import WHAT, Problem, Trouble, delay_after
from optimizer.service.heartbeat import Heartbeat
from optimizer.service.rulesets import RuleSets
from optimizer.service.sessions import SessionSync
from optimizer.service.setup import Setup, load_setup
from optimizer.service.status import status_line
from optimizer.steer import Steering, take_actions
from optimizer.systemd import Notifier
from optimizer.yamlpos import Problem as FileProblem
from optimizer.yamlpos import YamlFileError

if TYPE_CHECKING:
    from optimizer.planner.live import LiveOutlooks

__all__ = ["EXIT_INTERNAL", "Acted", "Service", "TickReport"]

_LOGGER = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_INTERNAL = 70
EXIT_CODES: dict[Problem | None, int] = {
    None: EXIT_OK,
    "auth": EXIT_AUTH,
    "rate_limited": EXIT_CLOUD,
    "cloud": EXIT_CLOUD,
    "config": EXIT_INVALID,
    "internal": EXIT_INTERNAL,
}
# Outcomes after which the charger is as the decision wanted: the engine's record stands.
AS_WANTED: frozenset[Outcome] = frozenset({"applied", "noop"})
RETENTION_EVERY = timedelta(days=1)
MB = 1_000_000
# The watchdog is pinged while the loop is alive: a tick may take this long (a level change
# waits charger.settle_delay; reads retry within 90 s) before it counts as hung.
HUNG_AFTER_S = 10 * 60.0
AUTH_STATUS = "authentication needed: run `evopt login`"
# Settings the client is built from: a reload that changes them builds a new client.
CLIENT_SECTIONS = ("enlighten", "charger")


@dataclass(frozen=True)
class Acted:
    """One decision of a tick, what became of it, and its row in the decision log."""

    decision: Decision
    actuation: Actuation
    row_id: int | None  # None: an unchanged hold, not recorded (decisions/dedupe.py)


@dataclass(frozen=True)
class TickReport:
    """What one tick did, for the status line, the exit code of ``--once`` and tests."""

    at: datetime
    status: str
    delay_s: float
    problem: Problem | None = None
    error: str | None = None
    acted: tuple[Acted, ...] = ()
    # Where the surplus came from: ``gateway``, ``lifetime_energy (gateway unreachable since
    # 13:05)``, ``lifetime_energy``...; shown by `evopt status` (docs/gateway.md).
    surplus_source: str | None = None
    # The gateway token's expiry and renewal (gateway/renew.py ``TokenState.as_json``): never
    # the token; None without a gateway.
    gateway_token: dict[str, Any] | None = None
    # What the tick saw (None when it failed before reading), and what the user set for the
    # site (pause, rule set): for the MQTT bridge's state (optimizer/mqtt/).
    snapshot: Snapshot | None = None
    steering: Steering | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.problem]


class Service:
    """The long-running loop behind `evopt run`.

    ``client`` and ``store`` may be injected (tests); the service closes only what it
    created. ``clock`` gives the time and sleeps between ticks. ``config_path`` is the file
    SIGHUP reads again (None: the defaults, nothing to reread).
    """

    def __init__(
        self,
        config: Config,
        *,
        config_path: Path | None,
        dry_run: bool,
        notifier: Notifier,
        clock: Clock,
        client: EnlightenClient | None = None,
        store: DecisionStore | None = None,
        on_tick: Callable[[TickReport], None] | None = None,
        account_session: AccountSession | None = None,
    ) -> None:
        self.config = config
        # The session the sites of this account share (service/fleet.py); None: its own.
        self._account_session = account_session
        self.on_tick = on_tick  # `evopt run`'s line per tick (service/talk.py)
        self.config_path = config_path
        self.notifier = notifier
        self.clock = clock
        self._dry_run_flag = dry_run
        self._client = client
        self._owns_client = client is None
        self._limiter: AccountLimiter | None = None  # the account's budget (_client_now)
        self._store = store
        self._habits = HabitCache()
        self._sessions = SessionSync()  # the session history learned plans come from
        self._outlooks: LiveOutlooks | None = None  # made when a solar_plan policy runs
        self._online_task: asyncio.Task[bool] | None = None  # the online forecast's request
        self._owns_store = store is None
        self.setup: Setup | None = None
        self.memory = Memory()
        self.cache = ObserveCache()
        self.site_id: int | None = config.enlighten.site_id
        self.run_id: str | None = None
        self.last_report: TickReport | None = None
        self._actuator: Actuator | None = None
        self._trouble = Trouble()
        self._session_only = False  # waiting for a person to log in: no unattended login
        self._client_stale = False  # build a new client before the next tick
        self._counted: Counter[str] = Counter()  # the client's request totals already stored
        self._retention_at: datetime | None = None
        self._tick_log: TickLog | None = None
        self._notice: str | None = None  # a refused reload, shown until the next good one
        self._stop = False
        self._reload = False
        self._offered: Setup | None = None  # a setup the fleet handed over (offer)
        self._wake = asyncio.Event()
        self._alive_until = time.monotonic() + HUNG_AFTER_S
        self._heartbeat = Heartbeat()  # for `evopt status` (service/heartbeat.py)
        # The site's IQ Gateway with ``surplus.source: gateway`` (optimizer/gateway), made on
        # the first tick that needs it and kept across ticks (it is set up once).
        self._gateway: GatewaySource | None = None
        self._gateway_key: tuple[object, ...] | None = None
        self._token_keeper: TokenKeeper | None = None  # renews its token (gateway/renew.py)
        # What the user set with `evopt pause|resume|rules use` or from Home Assistant, read
        # at each tick (optimizer/steer.py), and the rule sets loaded for it.
        self.steering = Steering()
        self._rule_sets = RuleSets()

    # --- properties ----------------------------------------------------------------------------

    @property
    def dry_run(self) -> bool:
        return self._dry_run_flag or self.config.service.dry_run

    @property
    def mode(self) -> RunMode:
        return "dry_run" if self.dry_run else "live"

    @property
    def store(self) -> DecisionStore:
        if self._store is None:
            raise RuntimeError("the service has not started")
        return self._store

    @property
    def tick_log(self) -> TickLog:
        """What the service recorded last (decisions/ticklog.py), on the open store."""
        if self._tick_log is None or self._tick_log.store is not self.store:
            self._tick_log = TickLog(self.store)
        return self._tick_log

    @property
    def poll_s(self) -> float:
        return self.config.service.poll_interval.total_seconds()

    # --- control -------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop after the current tick (SIGTERM, SIGINT); a sleep between ticks ends now."""
        self._stop = True
        self._wake.set()

    def request_reload(self) -> None:
        """Reload config and rules before the next tick (SIGHUP); ends a sleep between ticks."""
        self._reload = True
        self._wake.set()

    def offer(self, setup: Setup) -> None:
        """Use ``setup`` at the next pause instead of reading the file again.

        The fleet reads the file once for every site and offers each its part only when all
        of them are valid, so a bad new config keeps every site's old one; applied between
        ticks, never in the middle of one."""
        self._offered = setup
        self.request_reload()

    @property
    def alive(self) -> bool:
        """False once a tick has run far past its time (hung): the fleet's watchdog stops."""
        return time.monotonic() <= self._alive_until

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Load the rules, open the log, resume the memory, begin a run; then READY=1.

        Raises ``YamlFileError`` (every problem with its position) for invalid config or rules.
        """
        self.setup = load_setup(self.config, self.config_path)
        for warning in self.setup.warnings:
            _LOGGER.warning("%s", warning.as_warning())
        if self._store is None:
            self._store = DecisionStore(self.config.database_path)
        if self.site_id is not None:
            self._resume_memory(self.site_id)
        self._begin_run()
        mode = " (dry run: nothing is sent)" if self.dry_run else ""
        _LOGGER.info("evopt %s started%s: %s", __version__, mode, self.setup.describe())
        self.notifier.ready(f"started{mode}: {self.setup.describe()}")

    async def run(
        self, *, once: bool = False, max_ticks: int | None = None, handle_signals: bool = True
    ) -> int:
        """Run until stopped (0), or one tick with ``once`` (its exit code). 1 for invalid
        config or rules, reported as ``file:line:col: message`` lines on stderr.

        A service already started (the fleet starts every site before any runs) is not
        started again; ``handle_signals`` False leaves the signals to the fleet."""
        try:
            if self.setup is None:
                self.start()
        except YamlFileError as err:
            for problem in err.problems:
                sys.stderr.write(f"{problem}\n")
            await self._close()
            return EXIT_INVALID
        loop = asyncio.get_running_loop()
        handled = self._install_signals(loop) if handle_signals else []
        watchdog = self._start_watchdog()
        status = "stopped"
        try:
            return await self._loop(once=once, max_ticks=max_ticks)
        except BaseException:
            status = "crashed"
            raise
        finally:
            if watchdog is not None:
                watchdog.cancel()
            for sig in handled:
                loop.remove_signal_handler(sig)
            await self.shutdown(status)

    async def _loop(self, *, once: bool, max_ticks: int | None) -> int:
        ticks = 0
        while True:
            report = await self.tick()
            ticks += 1
            if once:
                return report.exit_code
            if max_ticks is not None and ticks >= max_ticks:
                return EXIT_OK
            if not await self._pause(report.delay_s):
                return EXIT_OK

    async def _pause(self, seconds: float) -> bool:
        """Sleep until the next tick unless a stop or reload is waiting; then do the reload.
        False when the loop should stop."""
        if not (self._stop or self._reload):
            self._alive_until = time.monotonic() + seconds + HUNG_AFTER_S
            await self.clock.sleep(seconds, wake=self._wake)
            self._wake.clear()
        if self._stop:
            return False
        if self._reload:
            self._reload = False
            with _logged("reload"):
                self.reload()
        return True

    async def shutdown(self, status: str = "stopped") -> None:
        """STOPPING=1, close the run in the log, close the client and store (if ours).

        ``run`` does this itself; for callers that drive ``tick`` directly."""
        self.notifier.stopping("stopping")
        now = self.clock.now()
        with _logged("closing the run"):
            self._flush_requests(now)
            if self.run_id is not None:
                self.store.end_run(self.run_id, ended_at=now, status=status)
            self._heartbeat.stop(self._store, now=now, status=status)
        await self._close()
        _LOGGER.info("evopt stopped")

    async def _close(self) -> None:
        if self._online_task is not None and not self._online_task.done():
            self._online_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._online_task
        await self._drop_client()
        await self._gateway_for(None)
        if self._owns_store and self._store is not None:
            self._store.close()
            self._store = None

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[signal.Signals]:
        return install_signals(loop, stop=self.request_stop, reload=self.request_reload)

    def _start_watchdog(self) -> asyncio.Task[None] | None:
        interval = self.notifier.watchdog_interval_s
        if interval is None:
            return None
        return asyncio.get_running_loop().create_task(self._watchdog(interval))

    async def _watchdog(self, interval: float) -> None:
        """Ping while the loop is alive (also through long back-off sleeps); a tick that
        hangs stops the pings, and systemd restarts the service."""
        while True:
            await asyncio.sleep(interval)
            if time.monotonic() <= self._alive_until:
                self.notifier.watchdog()

    # --- reload --------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Read the config and rules again; on any problem keep the current ones.

        Returns whether the new ones are in use. A changed setup begins a new run in the log.
        systemd hears READY=1 after RELOADING=1 whatever happens, or it would wait for it.
        """
        self.notifier.reloading()
        done, status = False, "reload failed (see the log); old config and rules kept"
        try:
            done, status = self._reread()
        finally:
            self.notifier.ready(status)
        return done

    def _reread(self) -> tuple[bool, str]:
        old = self.setup
        try:
            new, self._offered = self._offered, None
            if new is None:
                new = load_setup(self.config, self.config_path, reread=True)
                _one_site(new.config)
        except YamlFileError as err:
            for problem in err.problems:
                _LOGGER.error("reload refused: %s", problem)  # noqa: TRY400 - no traceback
            more = f" (+{len(err.problems) - 1} more)" if len(err.problems) > 1 else ""
            self._notice = f"reload refused, old rules kept: {err.problems[0]}{more}"
            return False, self._notice
        self._notice = None
        self._use(new, old)
        _LOGGER.info("reloaded: %s", new.describe())
        return True, f"reloaded: {new.describe()}"

    def _use(self, new: Setup, old: Setup | None) -> None:
        was_mode, was = self.mode, self.config
        self.setup, self.config = new, new.config
        if new.config.database_path != was.database_path:
            _LOGGER.warning("service.database changed: the new path is used after a restart")
        if any(getattr(new.config, s) != getattr(was, s) for s in CLIENT_SECTIONS):
            self._client_changed()
        site = new.config.enlighten.site_id
        if site is not None and site != self.site_id:
            self.site_id = site
            self._resume_memory(site)
        self._actuator = None  # the site or dry run may have changed
        unchanged = old is not None and (old.config_hash, old.rules_hash, was_mode) == (
            new.config_hash,
            new.rules_hash,
            self.mode,
        )
        if not unchanged and self.run_id is not None:
            self.store.end_run(self.run_id, ended_at=self.clock.now(), status="reloaded")
            self._begin_run()

    def _begin_run(self) -> None:
        assert self.setup is not None  # noqa: S101 - start() loads it first
        self.tick_log.last.clear()  # a new run records every decision once, then changes
        self.run_id = self.store.start_run(
            mode=self.mode,
            site_id=self.site_id,
            config_hash=self.setup.config_hash,
            rules_hash=self.setup.rules_hash,
            version=__version__,
            started_at=self.clock.now(),
        )

    # --- one tick ------------------------------------------------------------------------------

    async def tick(self) -> TickReport:
        """One observe-decide-act-record pass; never raises for a cloud or engine failure."""
        if self.setup is None:
            self.start()
        now = self.clock.now()
        self._alive_until = time.monotonic() + HUNG_AFTER_S
        with _logged("the user's commands"):  # before the cloud: recorded even in an outage
            self.steering, _ = take_actions(
                self.store,
                self.config,
                run_id=self._run_id(),
                mode=self.mode,
                site_id=self.site_id,
                now=now,
            )
        try:
            report = await self._tick(now)
        except AuthError as err:
            report = self._auth_needed(now, err)
        except RateLimitedError as err:
            report = self._failed(now, "rate_limited", err.user_message(), err.retry_after)
        except ConfigError as err:  # a local file a person must fix (a session file others
            report = self._failed(now, "config", err.user_message())  # can read): not the cloud
        except EnlightenError as err:
            report = self._failed(now, "cloud", err.user_message())
        except Exception as err:  # noqa: BLE001 - a bug must not end a service that runs for months
            message = f"{type(err).__name__}: {err} (the loop goes on)"
            report = self._failed(now, "internal", message, traceback=True)
        with _logged("bookkeeping after the tick"):
            self._flush_requests(now)
            self._retention(now)
        status = f"{report.status} | {self._notice}" if self._notice else report.status
        self.notifier.status(status)
        self.notifier.watchdog()
        report = replace(report, steering=self.steering)
        self.last_report = report
        self._after_tick(report)
        return report

    def _after_tick(self, report: TickReport) -> None:
        """The heartbeat for `evopt status`, then the line `evopt run` shows."""
        with _logged("the heartbeat"):
            self._heartbeat.beat(
                self._store,
                report,
                site_id=self.site_id,
                poll_s=self.poll_s,
                mode=self.mode,
                run_id=self.run_id,
            )
        if self.on_tick is not None:
            with _logged("the tick line"):
                self.on_tick(report)

    def _with_outlook(self, snapshot: Snapshot, site_id: int, now: datetime) -> Snapshot:
        """The solar forecast in the snapshot while a ``solar_plan`` policy is enabled; a
        failure leaves it out (the policy then follows the current surplus and says so)."""
        assert self.setup is not None  # noqa: S101 - only called from a running tick
        if not any(isinstance(p, SolarPlan) for p in self.setup.rules.enabled):
            return snapshot
        if self._outlooks is None:
            # numpy and pvlib only in a service whose rules plan ahead (the daemon's RSS).
            from optimizer.planner.live import LiveOutlooks  # noqa: PLC0415

            self._outlooks = LiveOutlooks()
        outlook = None
        with _logged("the solar forecast"):  # never costs the tick (docs/planner.md)
            outlook = self._outlooks.outlook(
                self.store, site_id, self.config, now, live=self.cache.energy.value
            )
            self._ask_online(self._outlooks, site_id, now)
        return replace(snapshot, outlook=outlook)

    def _ask_online(self, outlooks: LiveOutlooks, site_id: int, now: datetime) -> None:
        """With ``forecast.online``, ask for a new reply when it is due, beside the ticks:
        the request may take its whole timeout, and the tick goes on at once with the reply
        there is (a new one serves from the tick after it lands)."""
        if self.config.forecast.online is None:
            return
        if self._online_task is not None and not self._online_task.done():
            return
        task = asyncio.get_running_loop().create_task(
            outlooks.refresh_online(site_id, self.config, now), name="evopt-online-forecast"
        )
        task.add_done_callback(_report_online)
        self._online_task = task

    def _with_plans(self, snapshot: Snapshot, site_id: int, now: datetime) -> Snapshot:
        """The departure plans of `evopt plan set`, and with ``plans: auto`` the ones learned
        from session history for chargers without one (a manual plan wins)."""
        learned: dict[str, Habits] = {}
        if self.config.plans == "auto":
            learned = self._habits.get(
                self.store,
                site_id,
                now=now,
                timezone=snapshot.timezone,
                settings=self.config.habits.settings(),
            )
        plugged = self._habits.plugged_at(snapshot)  # a learned plan is fixed at its plug-in
        planned = with_plans(
            snapshot,
            load_plans(self.store),
            learned=learned,
            plugged_at=plugged,
            asked=self._habits.asked(),
        )
        self._habits.remember(planned)  # a "more" step, once asked, stays for the plug-in
        return planned

    async def _fetch_sessions(
        self, client: EnlightenClient, site_id: int, snapshot: Snapshot
    ) -> None:
        """With ``plans: auto``, keep the session history stored for learned plans
        (service/sessions.py), and learn the habits again when a window was stored. Before
        the plans, so the first tick of a new installation plans from the household's
        sessions, not "a full car at once"; a failure never costs the tick."""
        if self.config.plans != "auto":
            return
        with _logged("the session history"):
            stored = await self._sessions.step(
                client,
                self.store,
                site_id=site_id,
                snapshot=snapshot,
                keep_days=self.config.habits.days,
            )
            if stored is not None:
                self._habits.forget()

    async def _tick(self, now: datetime) -> TickReport:
        assert self.setup is not None  # noqa: S101 - tick() starts the service first
        client = await self._client_now()
        site_id = await self._site(client)
        gateway = await self._gateway_for(self.config)
        if gateway is not None and self._token_keeper is not None:
            with _logged("the gateway token's renewal"):  # never costs the tick
                await self._token_keeper.tick(client, gateway, now)
        snapshot = await observe_live(
            client,
            site_id=site_id,
            config=self.config,
            now=now,
            cache=self.cache,
            gateway=gateway,
        )
        await self._fetch_sessions(client, site_id, snapshot)  # before the plans use it
        snapshot = self._with_outlook(self._with_plans(snapshot, site_id, now), site_id, now)
        if self.config.service.record_minutes:
            with _logged("the one-minute power history"):  # never costs the tick
                PowerHistory(self.store).record(minute_row(snapshot, site_id=site_id))
        self._trouble.ok()
        if self._session_only:
            _LOGGER.info("the stored Enlighten session works again; acting from now on")
            self._session_only = False
            self._client_changed()  # next tick: a client that may log in again by itself
        before = self.memory
        held = self.steering.holds_writes(now)
        decisions, memory = self._decide(snapshot, held)
        actuator = self._actuator_for(client, site_id)
        recording = self.tick_log.begin(
            heartbeat=self.config.service.heartbeat,
            run_id=self._run_id(),
            mode=self.mode,
            site_id=site_id,
            ts=now,
            memory_key=_memory_key(site_id),
        )
        acted: list[Acted] = []
        kept: list[bool] = []
        # Different chargers are written side by side, but each decision is recorded here in
        # the decisions' order, once it and every one before it are done (actuate.py).
        async with contextlib.aclosing(actuator.apply_in_order(decisions, snapshot)) as done:
            async for index, actuation in done:
                decision = decisions[index]
                applied = actuation.outcome in AS_WANTED
                memory = acknowledge(memory, decision, applied=applied, before=before)
                if actuation.restart_amps is not None:  # the stop half of a level change
                    memory, decision = begin_restart(
                        memory,
                        decision,
                        amps=actuation.restart_amps,
                        from_amps=actuation.from_amps,
                        now=now,
                        settle=self.config.charger.settle_delay,
                    )
                # The memory to save with this decision if it sent a command: it knows this
                # command and none of the ones not yet recorded (optimizer/decisions/ticklog.py).
                # A later decision of another charger may be in flight meanwhile: a crash then
                # loses its row as it would lose the row of a reply that never came, and the
                # next tick's actuation, which sends nothing the status already shows, decides.
                durable = memory
                if actuation.commands:
                    for later in decisions[index + 1 :]:
                        durable = acknowledge(durable, later, applied=False, before=before)
                recorded = recording.add(  # or not: an unchanged hold (decisions/dedupe.py)
                    decision,
                    outcome=actuation.outcome,
                    error=actuation.error,
                    commands=actuation.commands,
                    memory=durable.model_dump(mode="json") if actuation.commands else None,
                )
                _log_decision(decision, actuation)
                acted.append(Acted(decision, actuation, None))
                kept.append(recorded)
        self.memory = memory
        ids = iter(recording.finish(memory.model_dump(mode="json")))
        acted = [replace(a, row_id=next(ids)) if k else a for a, k in zip(acted, kept, strict=True)]
        status = status_line(
            snapshot,
            [(a.decision, a.actuation) for a in acted],
            requests_last_hour=sum(client.counter.last_hour().values()),
            dry_run=self.dry_run,
        ) + ("" if held is None else f" | automation off: {held}")
        denied = next((a.actuation.auth_error for a in acted if a.actuation.auth_error), None)
        if denied is not None:
            report = self._auth_needed(now, denied)
            return replace(report, acted=tuple(acted))
        source = gateway.label(snapshot.timezone) if gateway else snapshot.surplus.source
        if gateway is not None and gateway.down_since is not None:
            status = f"{status} | surplus from {source}"
            if gateway.token_refused:
                status += f": {FETCH_STEP}"
        return TickReport(
            at=now,
            status=status,
            delay_s=self.poll_s,
            acted=tuple(acted),
            surplus_source=source,
            gateway_token=self._token_keeper.state.as_json()
            if gateway is not None and self._token_keeper is not None
            else None,
            snapshot=snapshot,
        )

    def _decide(self, snapshot: Snapshot, held: str | None) -> tuple[list[Decision], Memory]:
        """The engine's decisions with the rule set the user chose; none while the user holds
        the automation (paused, or the rule set ``off``), so nothing is sent."""
        assert self.setup is not None  # noqa: S101 - tick() starts the service first
        if held is not None:
            return [], self.memory
        policies = self._rule_sets.policies(self.steering.rule_set, self.setup)
        return evaluate(snapshot, policies, self.memory, settings=self.setup.settings)

    def _failed(
        self,
        now: datetime,
        problem: Problem,
        message: str,
        retry_after: float | None = None,
        *,
        traceback: bool = False,
    ) -> TickReport:
        failures = self._trouble.failed(problem, message, traceback=traceback)
        delay = delay_after(problem, failures, poll_s=self.poll_s, retry_after_s=retry_after)
        if problem == "auth":
            status = f"{AUTH_STATUS}; acting on nothing ({message})"
        else:
            status = f"{WHAT[problem]} ({message}); next try in {_span(delay)}"
        return TickReport(at=now, status=status, delay_s=delay, problem=problem, error=message)

    def _auth_needed(self, now: datetime, err: AuthError) -> TickReport:
        """Act on nothing until the session works again.

        When a person is needed (a refused password, a one-time code, a blocked account, no
        password to log in with), each retry builds a client from the session file, which
        `evopt login` in a shell rewrites; it never logs in by itself (that would send another
        one-time code, or repeat a refused password towards a blocked account). When the
        session merely ended and even the client's one re-login met a login wall or a 401 (a
        cloud hiccup, found by the fault soak), the next retry, ``AUTH_RETRY_S`` later, may log
        in again unattended: otherwise a service with its password would wait for a person
        after every such hiccup. A write refused for authentication is judged the same way.
        """
        # A refused password or a lock-out may be retried unattended too: the client's login
        # guard holds every automatic login back (5 min, then 24 h) and resumes by itself.
        guarded = InvalidCredentialsError | LoginSuspendedError | SessionLockoutError
        ended = isinstance(err, LoginWallError | UnauthorizedError | guarded)
        self._session_only = self._session_only or not (ended and unattended_password(self.config))
        self._client_changed()
        return self._failed(now, "auth", err.user_message())

    # --- parts of a tick -----------------------------------------------------------------------

    async def _client_now(self) -> EnlightenClient:
        """The client, built on first use (and again after a reload or a login problem)."""
        if self._client_stale:
            self._client_stale = False
            await self._drop_client()
        if self._client is None:
            provider = None if self._session_only else password_provider(self.config)
            # The account's budget is metered in the service's clock, and a tick never waits
            # for it (max_wait_s=0): a request it holds back fails the tick as a 429 would,
            # and the next tick comes after the wait (optimizer/enlighten/ratelimit.py).
            self._client = client_for(
                self.config,
                password_provider=provider,
                shared=self._account_session,
                clock=lambda: self.clock.now().timestamp(),
                max_wait_s=0.0,
                meter=self.clock,  # every site of the account on this clock shares one budget
                wall_clock=lambda: self.clock.now().timestamp(),
                fetch_entrez=False,  # one request an hour the service has no use for
            )
            # Held here as well: the account's limiter must outlive a dropped client (a login
            # problem makes a new one), or the new one would start with a fresh burst.
            self._limiter = self._client.transport.limiter
            self._owns_client = True
        return self._client

    async def _site(self, client: EnlightenClient) -> int:
        """The site id from the config, else the account's only site (memory resumed once)."""
        if self.site_id is None:
            self.site_id = await resolve_site_id(client, None)
            self._resume_memory(self.site_id)
        return self.site_id

    def _actuator_for(self, client: EnlightenClient, site_id: int) -> Actuator:
        if self._actuator is None or self._actuator.client is not client:
            # A level change never waits inside the tick: its restart is a later decision.
            self._actuator = Actuator(
                client, site_id=site_id, dry_run=self.dry_run, cache=self.cache, restart_later=True
            )
        return self._actuator

    @property
    def gateway(self) -> GatewaySource | None:
        """The gateway source in use (``surplus.source: gateway``), for status and tests."""
        return self._gateway

    async def _gateway_for(self, config: Config | None) -> GatewaySource | None:
        """The gateway source ``config`` asks for, made anew when its settings change (a
        reload) and closed when it no longer asks for one (or ``config`` is None)."""
        wanted = None
        if config is not None and config.surplus.source == "gateway" and config.gateway:
            site = config.site
            wanted = (config.gateway, config.gateway_token_path, site.max_current, site.voltage)
        if wanted == self._gateway_key:
            return self._gateway
        if self._gateway is not None:
            with _logged("closing the gateway"):
                await self._gateway.close()
        self._gateway, self._gateway_key, self._token_keeper = None, wanted, None
        if config is not None and wanted is not None:
            self._gateway = gateway_source(config)
            self._token_keeper = TokenKeeper(config.gateway_token_path)
        return self._gateway

    def _client_changed(self) -> None:
        """Build a new client on the next tick (closing this one then)."""
        self._client_stale = True

    async def _drop_client(self) -> None:
        """Close the client (if ours); its requests are counted first."""
        client = self._client
        if client is None:
            return
        with _logged("counting requests"):
            self._flush_requests(self.clock.now())
        self._client, self._actuator = None, None
        self._counted = Counter()
        if self._owns_client:
            await client.close()

    def _run_id(self) -> str:
        if self.run_id is None:
            raise RuntimeError("the service has not started")
        return self.run_id

    def _resume_memory(self, site_id: int) -> None:
        saved = self.store.load_state(_memory_key(site_id))
        self.tick_log.remember_saved(saved)
        if saved is None:
            self.memory = Memory()
            return
        try:
            self.memory = Memory.model_validate(saved)
        except ValidationError as err:
            _LOGGER.warning("saved engine memory unreadable (%s); starting afresh", err)
            self.memory = Memory()
            return
        chargers = ", ".join(self.memory.chargers) or "no chargers"
        _LOGGER.info("resumed engine memory of site %s (%s)", site_id, chargers)

    def _flush_requests(self, now: datetime) -> None:
        """Requests since the last flush, per endpoint family, into this hour's counts."""
        if self._client is None or self.run_id is None or self._store is None:
            return
        totals = Counter(self._client.counter.totals())
        delta = totals - self._counted
        if delta:
            self.store.add_requests(self.run_id, hour=now, counts=dict(delta))
        self._counted = totals

    def _retention(self, now: datetime) -> None:
        if self._retention_at is not None and now - self._retention_at < RETENTION_EVERY:
            return
        self._retention_at = now
        days = self.config.service.retention_days
        deleted = self.store.apply_retention(days=days, now=now)
        if deleted:
            _LOGGER.info("deleted %d decisions older than %d days", deleted, days)
        history = PowerHistory(self.store)
        service = self.config.service
        history.apply_retention(days=service.history_retention_days, now=now)
        history.apply_size_limit(max_bytes=service.max_history_mb * MB)
        limit_mb = self.config.service.max_log_mb
        deleted = self.store.apply_size_limit(max_bytes=limit_mb * MB)
        if deleted:
            _LOGGER.info(
                "deleted the oldest %d decisions: the log was over %d MB", deleted, limit_mb
            )


def _one_site(config: Config) -> None:
    """A single-site service cannot become several: a ``sites:`` list needs a restart."""
    if config.sites is not None and config.source is not None:
        message = "the config now lists several sites (sites:); restart evopt to use them"
        raise YamlFileError([FileProblem(str(config.source), 1, 1, message)])


def _memory_key(site_id: int) -> str:
    return f"memory:{site_id}"


def _log_decision(decision: Decision, actuation: Actuation) -> None:
    """Acting decisions at info (what changed, or would have); holds at debug."""
    level = logging.DEBUG if decision.action == "hold" else logging.INFO
    if actuation.outcome == "failed":
        level = logging.WARNING
    _LOGGER.log(
        level,
        "%s %s: %s %s -> %s%s (%s: %s)",
        decision.charger_sn,
        decision.target,
        decision.action,
        decision.params or "",
        actuation.outcome,
        f" [{actuation.error}]" if actuation.error else "",
        decision.policy,
        decision.reason,
    )


def _span(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _report_online(task: asyncio.Task[bool]) -> None:
    """The online forecast's request ended: only an unexpected failure is logged here (it
    logs its own, by kind, and never raises them)."""
    if not task.cancelled() and task.exception() is not None:
        _LOGGER.error("the online solar forecast failed", exc_info=task.exception())


@contextlib.contextmanager
def _logged(what: str) -> Iterator[None]:
    """Bookkeeping must not end the loop: a failure is logged with its traceback."""
    try:
        yield
    except Exception:
        _LOGGER.exception("%s failed; the loop goes on", what)


def install_signals(
    loop: asyncio.AbstractEventLoop, *, stop: Callable[[], object], reload: Callable[[], object]
) -> list[signal.Signals]:
    """SIGTERM and SIGINT stop, SIGHUP reloads; returns the signals handled (to remove them).

    Not possible outside the main thread (or on Windows): the loop then runs without.
    """
    handlers = {signal.SIGTERM: stop, signal.SIGINT: stop, signal.SIGHUP: reload}
    installed = []
    for sig, handler in handlers.items():
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, handler)
            installed.append(sig)
    return installed
