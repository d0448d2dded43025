"""Several sites in one process: one :class:`Service` per site of a ``sites:`` list.

Why one service per site rather than one loop over all sites: each site keeps its own loop
task, back-off, client, engine memory, heartbeat (``service:<site_id>``) and trouble, so a
site whose account needs a login, whose cloud fails or which is rate limited waits on its
own schedule while the others tick on theirs. What is shared is what must be one: the
decision log (one database, each row with its ``site_id``), systemd's notify socket (one
status line that sums the sites up, one watchdog, one READY=1), and the signals: SIGTERM stops
every site after its current tick, SIGHUP reads the file once and hands each site its part
only when every site's config and rules are valid, so a bad edit keeps every site as it was.

The single-site form does not come here: `evopt run` keeps the plain :class:`Service` for it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from optimizer import __version__
from optimizer.config import Config, load_config
from optimizer.decisions import DecisionStore
from optimizer.enlighten.auth import AccountSession
from optimizer.enlighten.errors import EXIT_INVALID
from optimizer.service.clock import Clock
from optimizer.service.core import EXIT_CODES, Service, TickReport, install_signals
from optimizer.service.health import WHAT
from optimizer.service.setup import Setup, load_setup
from optimizer.systemd import Notifier
from optimizer.yamlpos import Problem, YamlFileError

__all__ = ["Fleet", "SiteNotifier", "fleet_status"]

_LOGGER = logging.getLogger(__name__)

OK = "ok"
# How the sum-up names each kind of trouble (the service's own words are in its heartbeat).
_TROUBLE = {**WHAT, "auth": "authentication needed"}


class SiteNotifier(Notifier):
    """What one site's service sees of systemd: nothing it says goes out by itself.

    Each service would otherwise send its own READY=1, STATUS= and STOPPING=1, and the last
    one would win; the fleet speaks for all of them instead (:meth:`Fleet.publish`). No
    watchdog either: the fleet pings only while every site's loop is alive.
    """

    def __init__(self) -> None:
        super().__init__(socket_path="", watchdog_usec=0)


def fleet_status(reports: list[tuple[str, TickReport | None]]) -> str:
    """``2 sites: ok; 1 site: authentication needed (farm)``: the sites counted by state.

    Sites not yet ticked count as starting; troubled sites are named, in config order, so
    `systemctl status` says which one to look at.
    """
    return _status_line([(label, _state(report)) for label, report in reports])


def _state(report: TickReport | None) -> str:
    if report is None:
        return "starting"
    if report.problem is None:
        return OK
    return _TROUBLE.get(report.problem, report.problem)


def _status_line(states: Iterable[tuple[str, str]]) -> str:
    counts: Counter[str] = Counter()
    names: dict[str, list[str]] = {}
    for label, state in states:
        counts[state] += 1
        names.setdefault(state, []).append(label)
    parts = []
    for state in sorted(counts, key=lambda s: (s != OK, list(names).index(s))):
        count = counts[state]
        named = "" if state == OK else f" ({', '.join(names[state])})"
        parts.append(f"{count} site{'s' if count != 1 else ''}: {state}{named}")
    return "; ".join(parts)


class Fleet:
    """The sites of one config, each run by its own :class:`Service`, concurrently.

    ``on_tick`` builds each site's tick callback from its view of the config (`evopt run`'s
    line, prefixed with the site); ``store`` may be injected (tests), else the fleet opens
    and closes the one decision log.
    """

    def __init__(
        self,
        config: Config,
        *,
        config_path: Path | None,
        dry_run: bool,
        notifier: Notifier,
        clock: Clock,
        store: DecisionStore | None = None,
        on_tick: Callable[[Config], Callable[[TickReport], None] | None] | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.notifier = notifier
        self.clock = clock
        self._dry_run = dry_run
        self._store = store
        self._owns_store = store is None
        self._on_tick = on_tick
        self.services: list[Service] = []
        self._notice: str | None = None
        # Per tick only the ticking site's account and state are looked at: a fleet of N sites
        # does O(1) work per site tick here, not O(N) (N squared per poll; docs/scale.md).
        self._accounts: dict[str | None, list[Service]] = {}
        self._states: dict[str, str] = {}
        self._line: str | None = None
        self._shown: str | None = None

    @property
    def labels(self) -> list[str]:
        return [service.config.label for service in self.services]

    def _build(self, store: DecisionStore) -> None:
        """A service per site; the sites of one account share its session (one login, one
        re-login after a 401, whichever site meets it first)."""
        accounts: dict[str | None, AccountSession] = {}
        for view in self.config.site_configs():
            key = view.account_key()
            shared = accounts.setdefault(key, AccountSession())
            sink = self._on_tick(view) if self._on_tick is not None else None
            service = Service(
                view,
                config_path=self.config_path,
                dry_run=self._dry_run,
                notifier=SiteNotifier(),
                clock=self.clock,
                store=store,
                on_tick=self._ticked(sink, view.label, key),
                account_session=shared,
            )
            self.services.append(service)
            self._accounts.setdefault(key, []).append(service)
            self._states[view.label] = _state(None)
        for key in self._accounts:
            self.share_counts(key)

    def share_counts(self, account: str | None) -> None:
        """Tell each site of ``account`` what the account's other sites hold.

        The budget is the account's, so a site stretches its slow reads by every charger of
        the account, not only its own (optimizer/observe/readplan.py). A site not yet read
        counts as a site with no chargers until its first tick.
        """
        group = self._accounts.get(account, [])
        total = sum(s.cache.chargers for s in group)
        for service in group:
            service.cache.account_others = (len(group) - 1, total - service.cache.chargers)

    def _ticked(
        self, sink: Callable[[TickReport], None] | None, label: str, account: str | None
    ) -> Callable[[TickReport], None]:
        def after(report: TickReport) -> None:
            if sink is not None:
                sink(report)
            self.share_counts(account)
            state = _state(report)
            if self._states.get(label) != state:
                self._states[label] = state
                self._line = None
            self.publish()

        return after

    def publish(self) -> None:
        """The sum-up line for systemd (plus a refused reload, until the next good one).

        Sent only when it changed: the line is rebuilt when a site's state changed.
        """
        if self._line is None:
            self._line = _status_line(self._states.items())
        text = f"{self._line} | {self._notice}" if self._notice else self._line
        if text != self._shown:
            self._shown = text
            self.notifier.status(text)

    def start(self) -> bool:
        """Every site's rules loaded and memory resumed, or nothing runs: False (problems on
        stderr as ``file:line:col: message``) when any site's setup is invalid."""
        if self._store is None:
            self._store = DecisionStore(self.config.database_path)
        self._build(self._store)
        problems = []
        for service in self.services:
            try:
                service.start()
            except YamlFileError as err:
                problems.extend(err.problems)
        for problem in problems:
            sys.stderr.write(f"{problem}\n")
        if problems:
            return False
        sites = ", ".join(self.labels)
        _LOGGER.info("evopt %s runs %d sites: %s", __version__, len(self.services), sites)
        self.notifier.ready(f"started {len(self.services)} sites: {sites}")
        self._shown = None  # the next tick's line replaces this one
        return True

    async def run(self, *, once: bool = False, max_ticks: int | None = None) -> int:
        """Run every site until stopped (0), or one tick each with ``once`` (the worst exit
        code of them, the site's order breaking ties). 1 for an invalid setup."""
        try:
            if not self.start():
                await self._close_services()
                return EXIT_INVALID
            loop = asyncio.get_running_loop()
            handled = self._install_signals(loop)
            watchdog = self._start_watchdog()
            try:
                # Every loop ends before the store closes: a crashed loop asks the others to
                # stop, and they still close their runs in the log (gather would otherwise
                # hand the crash on at once, and the store would close under their feet).
                ended = await asyncio.gather(
                    *(self._run_one(s, once=once, max_ticks=max_ticks) for s in self.services),
                    return_exceptions=True,
                )
                for outcome in ended:
                    if isinstance(outcome, BaseException):
                        raise outcome
                codes = [code for code in ended if isinstance(code, int)]
            finally:
                if watchdog is not None:
                    watchdog.cancel()
                for sig in handled:
                    loop.remove_signal_handler(sig)
                self.notifier.stopping("stopping")
            return max(codes, key=_severity) if codes else 0
        finally:
            self._close_store()

    async def _run_one(self, service: Service, *, once: bool, max_ticks: int | None) -> int:
        """One site's loop; if it ends by an exception (a tick never raises, so a bug in the
        loop itself), every other site stops after its tick too and the exception goes on:
        a process half running is worse than one systemd restarts."""
        try:
            return await service.run(once=once, max_ticks=max_ticks, handle_signals=False)
        except BaseException:
            self.request_stop()
            raise

    def request_stop(self) -> None:
        """SIGTERM, SIGINT: every site stops after its current tick."""
        for service in self.services:
            service.request_stop()

    def request_reload(self) -> bool:
        """SIGHUP: read the file once; every site's new setup, or none (returns which)."""
        self.notifier.reloading()
        try:
            setups = self._reread()
        except YamlFileError as err:
            for problem in err.problems:
                _LOGGER.error("reload refused: %s", problem)  # noqa: TRY400 - no traceback
            more = f" (+{len(err.problems) - 1} more)" if len(err.problems) > 1 else ""
            self._notice = f"reload refused, every site kept its config: {err.problems[0]}{more}"
            self.notifier.ready(self._notice)
            self._shown = None  # the next tick's line replaces this one
            return False
        self._notice = None
        for service, setup in zip(self.services, setups, strict=True):
            service.offer(setup)
        _LOGGER.info("reloaded the config of %d sites", len(setups))
        self.notifier.ready(f"reloaded {len(setups)} sites")
        self._shown = None  # the next tick's line replaces this one
        return True

    def _reread(self) -> list[Setup]:
        """Each site's new setup; raises ``YamlFileError`` for any problem in any site."""
        if self.config_path is None:
            return [s.setup for s in self.services if s.setup is not None]
        config = load_config(self.config_path)
        views = config.site_configs()
        old = [(s.config.enlighten.site_id, s.config.label) for s in self.services]
        new = [(v.enlighten.site_id, v.label) for v in views]
        if config.sites is None or new != old:
            message = "the list of sites changed; restart evopt to add, remove or rename sites"
            raise YamlFileError([_file_problem(self.config_path, message)])
        problems = []
        setups = []
        for view in views:
            try:
                setups.append(load_setup(view, self.config_path))
            except YamlFileError as err:
                problems.extend(err.problems)
        if problems:
            raise YamlFileError(problems)
        self.config = config
        return setups

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[signal.Signals]:
        return install_signals(loop, stop=self.request_stop, reload=self.request_reload)

    def _start_watchdog(self) -> asyncio.Task[None] | None:
        interval = self.notifier.watchdog_interval_s
        if interval is None:
            return None
        return asyncio.get_running_loop().create_task(self._watchdog(interval))

    async def _watchdog(self, interval: float) -> None:
        """Ping while every site's loop is alive: one hung site is a hung process."""
        while True:
            await asyncio.sleep(interval)
            if all(service.alive for service in self.services):
                self.notifier.watchdog()

    async def _close_services(self) -> None:
        for service in self.services:
            await service.shutdown("failed to start")

    def _close_store(self) -> None:
        if self._owns_store and self._store is not None:
            self._store.close()
            self._store = None


def _severity(code: int) -> tuple[bool, int]:
    """Any failure above success; among failures the larger code (auth 3 < cloud 4 < ...)."""
    return (code != EXIT_CODES[None], code)


def _file_problem(path: Path, message: str) -> Problem:
    return Problem(str(path), 1, 1, message)
