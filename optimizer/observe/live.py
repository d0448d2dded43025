"""The live read path: one snapshot per tick, within the account's request budget.

The field notes put the budget at well under ~600 requests per hour per account, and no
endpoint faster than every 30 s; issue 16 asks for at most 130 per hour per charger at a 30 s
poll, of which the status takes 120. So only the charger status is read every tick; everything
else is asked for when it can have changed or when it matters: summaries once per run;
lifetime energy when a new quarter-hour bucket is due while a car is plugged in and the sun
is up (the surplus is what solar rules act on), hourly and at sunrise while it is down, every
2 hours while no car is plugged in, and at once on a plug-in; the
power sample at most once a minute; the battery every hour while a car is plugged in,
every 2 hours while none is (not at all on a site without one); the charge mode every hour,
and at once when the status's mode changes (the app switched between manual and green, or a
start overrode green); the green battery setting every 30 minutes in GREEN mode and the
schedules every 30 minutes in SCHEDULED mode, where they act, else every 4 hours, and at once
when the mode read finds a new mode; a write makes what it changed due at once. The cloud
offers no conditional requests (no ETag or Last-Modified in the references), so a read is a
full read: fewer reads is the only saving. docs/operations.md says how soon an app change is
seen.

The status is the one read a snapshot cannot do without, so its failure propagates. Every
other source is optional: when it fails, the last good value is kept (its age shows in the
snapshot), the failure is logged once at warning and its recovery once at info, and it is
asked for again after a growing pause rather than on every tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from optimizer.backoff import doubled
from optimizer.config import Config
from optimizer.engine.snapshot import Snapshot
from optimizer.enlighten.capabilities import (
    NO_FLAGS,
    Capabilities,
    ChargerConfig,
    FeatureFlags,
    merge_capabilities,
)
from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.errors import (
    AuthError,
    BudgetHeldError,
    ConfigError,
    EnlightenError,
    NotFoundError,
)
from optimizer.enlighten.models import (
    BatteryStatus,
    ChargeMode,
    ChargerSummary,
    LatestPower,
    LifetimeEnergy,
    ScheduleSlot,
    SiteStatus,
)
from optimizer.enlighten.modeset import is_scheduler_outage
from optimizer.enlighten.ratelimit import spare_requests
from optimizer.gateway.source import GatewaySource
from optimizer.observe.gateway import with_gateway
from optimizer.observe.outage import SchedulerOutage
from optimizer.observe.readplan import ReadPlan, plan_reads
from optimizer.observe.session_energy import Track, check_charger
from optimizer.observe.surplus import last_reported_end
from optimizer.observe.view import build_snapshot, site_timezone
from optimizer.sun import sun_at

__all__ = ["Cached", "ObserveCache", "What", "observe_live"]

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")

What = Literal[
    "summary", "mode", "battery_setting", "schedules", "energy", "latest_power", "battery"
]

LONG_LAG = timedelta(hours=1)
# Chargers read at the same time: the transport keeps two reads in flight and the budget
# meters them, this bounds the tasks waiting for them.
READS_AT_ONCE = 8
HOUR_S = 3600.0
ENERGY_BUCKET = timedelta(minutes=15)  # lifetime energy: about one read per bucket
# The slow reads, stretched with the account's chargers (readplan.py); the status, the energy
# and the power sample are not: decisions start from them.
STRETCHED: frozenset[What] = frozenset(
    {"summary", "mode", "battery_setting", "schedules", "battery"}
)
# Where a per-charger setting acts: elsewhere it is read only every ObserveCache.idle_ttl.
ACTS_IN: dict[What, ChargeMode] = {
    "battery_setting": ChargeMode.GREEN_CHARGING,
    "schedules": ChargeMode.SCHEDULED_CHARGING,
}
NO_BATTERY = BatteryStatus(soc_pct=None, available_kwh=None, capacity_kwh=None, battery_count=0)


@dataclass
class Cached(Generic[T]):
    """One source's last good value, when it was fetched, and when to ask again."""

    value: T | None = None
    fetched_at: datetime | None = None
    next_at: datetime | None = None  # None: ask on the next tick
    failures: int = 0
    # A write changed it (invalidate): the kept value is known to be wrong, so the read is not
    # one the budget may put off. A policy acting on the old schedule list would add the slot
    # it just added again (the scale benchmark: two sites on one account, the budget tight).
    stale: bool = False

    def due(self, now: datetime) -> bool:
        return self.next_at is None or now >= self.next_at


class ObserveCache:
    """What ``observe_live`` keeps between ticks, and how long each part stays good.

    Lifetimes are arguments so the service can take them from its config; the defaults keep
    a one-charger site at about 128 requests per hour at a 30 s poll, 188 with the power
    sample (docs/surplus.md). ``fetched_at`` tells how old each kept value is.

    ``battery_setting_ttl`` and ``schedules_ttl`` hold in the mode where the value acts
    (GREEN, SCHEDULED); in any other mode they are read every ``idle_ttl``. While no car
    is plugged in, lifetime energy is read every ``unplugged_energy_interval`` and the
    battery every ``unplugged_battery_interval``; a plug-in makes both due at once.
    """

    def __init__(
        self,
        *,
        mode_ttl: timedelta = timedelta(hours=1),
        battery_setting_ttl: timedelta = timedelta(minutes=30),
        schedules_ttl: timedelta = timedelta(minutes=30),
        idle_ttl: timedelta = timedelta(hours=4),
        unplugged_energy_interval: timedelta = timedelta(hours=2),
        dark_energy_interval: timedelta = timedelta(hours=1),
        unplugged_battery_interval: timedelta = timedelta(hours=2),
        summary_ttl: timedelta = timedelta(hours=24),
        latest_power_interval: timedelta = timedelta(seconds=60),
        battery_interval: timedelta = timedelta(hours=1),
        no_battery_recheck: timedelta = timedelta(hours=24),
        energy_grace: timedelta = timedelta(minutes=5),
        energy_retry: timedelta = timedelta(minutes=5),
        energy_unknown_interval: timedelta = timedelta(minutes=15),
        failure_retry: timedelta = timedelta(minutes=1),
        max_backoff: timedelta = timedelta(minutes=30),
        scheduler_slow: timedelta = timedelta(minutes=1),
        flags_ttl: timedelta = timedelta(hours=6),
        charger_config_ttl: timedelta = timedelta(hours=6),
        charger_config_failure_pause: timedelta = timedelta(minutes=15),
    ) -> None:
        self.ttl: dict[What, timedelta] = {
            "summary": summary_ttl,
            "mode": mode_ttl,
            "battery_setting": battery_setting_ttl,
            "schedules": schedules_ttl,
            "latest_power": latest_power_interval,
            "battery": battery_interval,
        }
        self.idle_ttl = idle_ttl
        self.unplugged_energy_interval = unplugged_energy_interval
        self.dark_energy_interval = dark_energy_interval
        self.unplugged_battery_interval = unplugged_battery_interval
        # Whether a car was plugged in at the last status (None: no status yet).
        self.plugged: bool | None = None
        self.no_battery_recheck = no_battery_recheck
        self.energy_grace = energy_grace
        self.energy_retry = energy_retry
        self.energy_unknown_interval = energy_unknown_interval
        self.failure_retry = failure_retry
        self.max_backoff = max_backoff
        self.summaries: dict[str, Cached[ChargerSummary]] = {}
        self.modes: dict[str, Cached[ChargeMode | None]] = {}
        self.battery_settings: dict[str, Cached[bool | None]] = {}
        self.schedules: dict[str, Cached[tuple[ScheduleSlot, ...]]] = {}
        self.energy: Cached[LifetimeEnergy] = Cached()
        self.latest_power: Cached[LatestPower] = Cached()
        self.battery: Cached[BatteryStatus] = Cached()
        self.status: Cached[SiteStatus] = Cached()
        self.scheduler = SchedulerOutage(slow=scheduler_slow)
        # Capabilities (2026 reference section 8): read a few times a day.
        self.flags_ttl = flags_ttl
        self.charger_config_ttl = charger_config_ttl
        self.charger_config_failure_pause = charger_config_failure_pause
        self.flags: Cached[FeatureFlags] = Cached()
        self.charger_configs: dict[str, Cached[ChargerConfig]] = {}
        self.session_auth_reported: set[str] = set()  # logged once while it stays on
        # Per charger: what its session energy readings established (optimizer.observe.
        # session_energy); kept between ticks so one bad reading cannot move the engine.
        self.session_energy: dict[str, Track] = {}
        # Per charger: the mode the last status showed (0 manual, 1 green), to notice a change.
        self.status_modes: dict[str, ChargeMode] = {}
        # The slow lifetimes stretch with the account's chargers (optimizer/observe/readplan.py).
        # ``account_others`` is (sites, chargers) of the same account elsewhere in the process,
        # for a caller that runs several sites of one account; this cache sees only its own.
        self.stretch = 1.0
        self.read_plan: ReadPlan | None = None
        self.account_others: tuple[int, int] = (0, 0)
        self.chargers = 0  # this site's, as last seen: the fleet sums them per account

    def lifetime(self, what: What) -> timedelta:
        """A source's lifetime now: slow sources stretched to the budget, the rest as set."""
        ttl = self.ttl[what]
        return self.stretched(ttl) if what in STRETCHED else ttl

    def stretched(self, ttl: timedelta) -> timedelta:
        return ttl * self.stretch

    def lifetime_in(self, what: What, mode: ChargeMode | None) -> timedelta:
        """The green battery setting and the schedules at their lifetime in the mode where
        they act (GREEN, SCHEDULED), else every ``idle_ttl``: there they change nothing the
        charger does, and the slow refresh only keeps an app edit from going unseen."""
        acts_in = ACTS_IN.get(what)
        if acts_in is None or mode == acts_in:
            return self.lifetime(what)
        return self.stretched(max(self.idle_ttl, self.ttl[what]))

    def notice_status(self, status: SiteStatus) -> None:
        """What this status makes due now: the charge mode of a charger whose status shows
        another mode than last tick (the app switched manual and green, or a start overrode
        green), and the surplus and the battery when a car has just been plugged in."""
        plugged = any(charger.plugged_in for charger in status.chargers)
        if plugged and self.plugged is False:
            self.energy.next_at = self.battery.next_at = None
        self.plugged = plugged
        for charger in status.chargers:
            if charger.mode is None:  # a status without the number says nothing new
                continue
            before = self.status_modes.get(charger.sn, charger.mode)
            self.status_modes[charger.sn] = charger.mode
            if charger.mode != before:
                self.read_now(charger.sn, "mode")

    def read_now(self, sn: str, what: What) -> None:
        """Due on this tick; unlike :meth:`invalidate`, the kept value stays good meanwhile."""
        for entry in self._entries(sn, what):
            entry.next_at = None

    def fit_budget(
        self, *, chargers: int, poll_s: float, budget_per_hour: int, power_sample: bool
    ) -> ReadPlan:
        """Stretch the slow lifetimes so the account's reads fit its budget (readplan.py).

        Logged when the stretch changes by a tenth or more, not every tick.
        """
        self.chargers = chargers
        other_sites, other_chargers = self.account_others
        per_charger: dict[str, timedelta] = {
            name: self.ttl[name] for name in STRETCHED if name != "battery"
        }
        per_charger["charger_config"] = self.charger_config_ttl
        surplus = HOUR_S / ENERGY_BUCKET.total_seconds()
        if power_sample:
            surplus += HOUR_S / self.ttl["latest_power"].total_seconds()
        plan = plan_reads(
            chargers=chargers + other_chargers,
            sites=1 + other_sites,
            poll_s=poll_s,
            budget_per_hour=budget_per_hour,
            per_charger=per_charger,
            per_site={"battery": self.ttl["battery"], "flags": self.flags_ttl},
            surplus_per_site_per_hour=surplus,
        )
        if abs(plan.stretch - self.stretch) >= 0.1 * self.stretch:
            _LOGGER.info(
                "%d chargers on this account: slow reads (mode, schedules, settings) every "
                "%.1fx their lifetime, about %.0f of %d requests/h%s",
                chargers + other_chargers,
                plan.stretch,
                plan.planned_per_hour,
                budget_per_hour,
                ""
                if plan.min_poll_s is None
                else f"; the status reads alone need service.poll_interval >= "
                f"{plan.min_poll_s:.0f}s to fit",
            )
        self.stretch, self.read_plan = plan.stretch, plan
        return plan

    def checked_energy(
        self, status: SiteStatus, now: datetime, *, voltage_v: float | None = None
    ) -> dict[str, float | None]:
        """Each charger's session energy after the physics check, in kWh.

        An implausible reading is logged once per session at warning (later ones of the same
        session at debug) and the last good value is handed on instead.
        """
        summaries = _values(self.summaries)
        checked: dict[str, float | None] = {}
        for charger in status.chargers:
            verdict = check_charger(
                self.session_energy.get(charger.sn),
                charger,
                summaries.get(charger.sn),
                # The cloud's clock, like lst_rpt_at: a skewed local clock must not cut time.
                now=status.server_time or now,
                voltage_v=voltage_v,
            )
            self.session_energy[charger.sn] = verdict.track
            if verdict.problem is not None:
                log = _LOGGER.warning if verdict.report else _LOGGER.debug
                kept = "nothing" if verdict.kwh is None else f"{verdict.kwh:.3f} kWh"
                log(
                    "%s: session energy reading ignored (%s); keeping %s",
                    charger.sn,
                    verdict.problem,
                    kept,
                )
            checked[charger.sn] = verdict.kwh
        return checked

    def invalidate(self, sn: str | None = None, what: What | None = None) -> None:
        """Ask again on the next tick: after a write, or when the user changed something.

        ``sn`` limits it to one charger's settings; ``what`` to one source. Site-wide sources
        (energy, power, battery) are included when named, or when neither is given.
        """
        for entry in self._entries(sn, what):
            entry.next_at = None
            entry.stale = True

    def _entries(self, sn: str | None, what: What | None) -> Iterable[Cached[Any]]:
        per_charger: dict[What, Mapping[str, Cached[Any]]] = {
            "summary": self.summaries,
            "mode": self.modes,
            "battery_setting": self.battery_settings,
            "schedules": self.schedules,
        }
        site: dict[What, Cached[Any]] = {
            "energy": self.energy,
            "latest_power": self.latest_power,
            "battery": self.battery,
        }
        for name, entries in per_charger.items():
            if what in (None, name):
                yield from (entry for key, entry in entries.items() if sn in (None, key))
        for name, entry in site.items():
            if what == name or (what is None and sn is None):
                yield entry

    async def refresh(
        self,
        entry: Cached[T],
        label: str,
        fetch: Callable[[], Awaitable[T]],
        *,
        now: datetime,
        next_at: Callable[[T], datetime],
        failure_pause: timedelta | None = None,
    ) -> EnlightenError | None:
        """Fetch ``entry`` if it is due; on failure keep the old value, back off
        (``failure_pause`` when the source has its own, else doubling) and return the error
        (the scheduler family shares one more backoff, ``outage``).

        Authentication problems are not a source's failure: they propagate, so the service
        can report them (exit 3) instead of carrying on blind.
        """
        if not entry.due(now):
            return None
        # The last value will do (the status reads go first), unless a write made it wrong.
        spare = contextlib.nullcontext() if entry.stale else spare_requests()
        try:
            with spare:
                value = await fetch()
        except AuthError:
            raise
        except BudgetHeldError as err:
            # Nothing was sent and nothing failed: asked again once the budget allows.
            entry.next_at = now + timedelta(seconds=err.retry_after or 0)
            _LOGGER.debug("%s put off by the account's budget (%s)", label, err)
            return None
        except EnlightenError as err:
            entry.failures += 1
            pause = failure_pause or doubled(
                self.failure_retry, entry.failures - 1, self.max_backoff
            )
            entry.next_at = now + pause
            log = _LOGGER.warning if entry.failures == 1 else _LOGGER.debug
            log("%s failed (%s); keeping the last value, asking again in %s", label, err, pause)
            return err
        if entry.failures:
            _LOGGER.info("%s works again after %d failed attempts", label, entry.failures)
        entry.value, entry.fetched_at, entry.failures = value, now, 0
        entry.stale = False
        entry.next_at = next_at(value)
        return None

    async def scheduler_read(
        self,
        entry: Cached[T],
        label: str,
        fetch: Callable[[], Awaitable[T]],
        *,
        now: datetime,
        next_at: Callable[[T], datetime],
    ) -> None:
        """A scheduler-family read: none at all while the outage backoff runs; when it is due,
        this read is the probe (its own backoff set aside) and its answer ends or extends it."""
        if not self.scheduler.due(now):
            return
        if self.scheduler.active:
            entry.next_at = None
        err = await self.refresh(entry, label, fetch, now=now, next_at=next_at)
        if err is not None and is_scheduler_outage(err):
            self.scheduler.failed(now, err)
        elif err is None and entry.fetched_at == now:
            self.scheduler.ok(now)

    def after(self, what: What, now: datetime) -> Callable[[object], datetime]:
        """``next_at`` for a source with a fixed lifetime (stretched if it is a slow one)."""
        return lambda _: now + self.lifetime(what)

    def energy_next(
        self, energy: LifetimeEnergy, now: datetime, *, dark_until: datetime | None = None
    ) -> datetime:
        """When the next bucket should be there: its end plus a grace for the cloud's delay.

        If that moment has passed (the cloud lags), ask again after ``energy_retry``; with no
        complete bucket at all, or a lag of over an hour, every ``energy_unknown_interval``.
        With no car plugged in, no rule acts on the surplus: every
        ``unplugged_energy_interval``. While the sun is below the horizon (``dark_until``: the
        next sunrise) there is no PV for a solar rule to follow: every ``dark_energy_interval``
        and at sunrise.
        """
        if self.plugged is False:
            return now + self.unplugged_energy_interval
        if dark_until is not None and dark_until > now:
            return min(now + self.dark_energy_interval, dark_until)
        end = last_reported_end(energy, now)
        if end is None:
            return now + self.energy_unknown_interval
        due = end + energy.interval + self.energy_grace
        if due > now:
            return due
        # A gateway that has been silent for a long while is not asked every few minutes.
        lagging_long = now - due > LONG_LAG
        return now + (self.energy_unknown_interval if lagging_long else self.energy_retry)

    def battery_next(self, battery: BatteryStatus, now: datetime) -> datetime:
        if battery.present:
            if self.plugged is False:
                return now + self.stretched(self.unplugged_battery_interval)
            return now + self.lifetime("battery")
        return now + self.no_battery_recheck


async def observe_live(
    client: EnlightenClient,
    *,
    site_id: int,
    config: Config,
    now: datetime,
    cache: ObserveCache,
    gateway: GatewaySource | None = None,
) -> Snapshot:
    """Read what is due, keep what is not, and build this tick's snapshot.

    ``now`` is the service's clock (injected, so tests drive it). A failing status read
    propagates; any other failing source leaves its last value in place. With
    ``surplus.source: gateway`` and a ``gateway``, the surplus comes from its reading and the
    cloud's surplus reads are skipped while it answers (the energy buckets still, for the
    house's load, on a gateway without a consumption meter); when it does not answer, the
    buckets are read in this same tick (docs/gateway.md).
    """
    if now.tzinfo is None:
        raise ValueError("observe_live needs a timezone-aware now")
    now = now.astimezone(UTC)
    status = await _status(client, cache, site_id, now)
    cache.notice_status(status)
    cache.fit_budget(
        chargers=len(status.chargers),
        poll_s=config.service.poll_interval.total_seconds(),
        budget_per_hour=config.enlighten.budget_per_hour,
        power_sample=config.surplus.source in ("auto", "latest_power"),
    )
    await _each_charger(
        status, lambda sn: _refresh_charger(client, cache, site_id, sn, now), cache=cache
    )
    timezone = site_timezone(config, status, _values(cache.summaries).values())
    reading = None
    if gateway is not None and config.surplus.source == "gateway":
        reading = await gateway.read(now)
    if reading is None or not reading.consumption_metered:
        await cache.refresh(
            cache.energy,
            "lifetime energy",
            lambda: _energy(client, site_id, timezone),
            now=now,
            next_at=lambda energy: cache.energy_next(
                energy, now, dark_until=_dark_until(config, now, timezone)
            ),
        )
    if config.surplus.source in ("auto", "latest_power"):
        await cache.refresh(
            cache.latest_power,
            "latest power",
            lambda: _latest_power(client, site_id, now),
            now=now,
            next_at=cache.after("latest_power", now),
        )
    await cache.refresh(
        cache.battery,
        "battery status",
        lambda: _battery(client, site_id),
        now=now,
        next_at=lambda battery: cache.battery_next(battery, now),
    )
    stale = cache.status.fetched_at
    capabilities = await _capabilities(client, cache, site_id, status, now)
    snapshot = replace(
        build_snapshot(
            now=now,
            config=config,
            status=status,
            site_id=site_id,
            capabilities=capabilities,
            summaries=_values(cache.summaries),
            modes=_values(cache.modes),
            battery_settings=_values(cache.battery_settings),
            # A list one of our own edits made wrong stays unknown until it is read again:
            # shown as it was, the policy would add the slot it just added (a duplicate).
            schedules=_values(cache.schedules, fresh=True),
            energy=cache.energy.value,
            latest_power=cache.latest_power.value,
            battery=cache.battery.value,
            session_kwh=cache.checked_energy(status, now, voltage_v=config.site.voltage),
            remembered_amps=client.levels.for_site(site_id),
        ),
        scheduler_down_since=cache.scheduler.since,
        stale_status_s=(now - stale).total_seconds() if stale and stale < now else None,
    )
    if gateway is None or reading is None:
        return snapshot
    return with_gateway(snapshot, status, gateway, reading, config=config)


async def _status(
    client: EnlightenClient, cache: ObserveCache, site_id: int, now: datetime
) -> SiteStatus:
    """The status, or the last good one while it fails with the scheduler (reference 10):
    then asked again only when the scheduler's backoff is due. Any other failure propagates."""
    kept = cache.status
    if kept.value is not None and cache.scheduler.status_down and not cache.scheduler.due(now):
        return kept.value
    try:
        status = await client.status(site_id)
    except EnlightenError as err:
        if kept.value is None or not is_scheduler_outage(err):
            raise
        cache.scheduler.failed(now, err, status=True)
        return kept.value
    kept.value, kept.fetched_at = status, now
    cache.scheduler.status_back()
    return status


async def _each_charger(
    status: SiteStatus, read: Callable[[str], Awaitable[None]], *, cache: ObserveCache
) -> None:
    """``read`` for every charger of the status, side by side (at most ``READS_AT_ONCE``).

    The entries are made first, in the status's order, so what the snapshot lists does not
    depend on which reply came first; an authentication failure still ends the tick (the
    first charger's in the status's order, once the others are done).
    """
    for charger in status.chargers:
        for entries in (cache.summaries, cache.modes, cache.battery_settings, cache.schedules):
            entries.setdefault(charger.sn, Cached())
        cache.charger_configs.setdefault(charger.sn, Cached())
    gate = asyncio.Semaphore(READS_AT_ONCE)

    async def gated(sn: str) -> None:
        async with gate:
            await read(sn)

    results = await asyncio.gather(
        *(gated(charger.sn) for charger in status.chargers), return_exceptions=True
    )
    for result in results:  # the first in the status's order, as the loop before raised it
        if isinstance(result, BaseException):
            raise result


async def _refresh_charger(
    client: EnlightenClient, cache: ObserveCache, site_id: int, sn: str, now: datetime
) -> None:
    """Summary first: it says whether the green-mode battery setting exists at all."""
    summary = cache.summaries.setdefault(sn, Cached())
    await cache.refresh(
        summary,
        f"summary of {sn}",
        lambda: client.charger_summary(site_id, sn),
        now=now,
        next_at=cache.after("summary", now),
    )
    mode = cache.modes.setdefault(sn, Cached())
    before = mode.value
    await cache.scheduler_read(
        mode,
        f"charge mode of {sn}",
        lambda: _mode(client, site_id, sn, last=mode.value),
        now=now,
        next_at=cache.after("mode", now),
    )
    if mode.value != before and before is not None:
        # Another mode: the setting and the schedules may act now (or stop acting).
        cache.read_now(sn, "battery_setting")
        cache.read_now(sn, "schedules")
    if summary.value is None or summary.value.supports_use_battery is not False:
        await cache.scheduler_read(
            cache.battery_settings.setdefault(sn, Cached()),
            f"green battery setting of {sn}",
            lambda: client.green_battery_setting(site_id, sn),
            now=now,
            next_at=lambda _: now + cache.lifetime_in("battery_setting", mode.value),
        )
    await cache.scheduler_read(
        cache.schedules.setdefault(sn, Cached()),
        f"schedules of {sn}",
        lambda: _slots(client, site_id, sn),
        now=now,
        next_at=lambda _: now + cache.lifetime_in("schedules", mode.value),
    )


async def _mode(
    client: EnlightenClient, site_id: int, sn: str, *, last: ChargeMode | None
) -> ChargeMode | None:
    """A preference that names no mode (the cloud sends that briefly) keeps the last one."""
    return (await client.mode_preference(site_id, sn)).remembering(last).mode


async def _capabilities(
    client: EnlightenClient,
    cache: ObserveCache,
    site_id: int,
    status: SiteStatus,
    now: datetime,
) -> dict[str, Capabilities]:
    """Flags (every 30 min) and each charger's config (every hour, 15 min after a failure),
    merged with its summary. Session authentication is logged once when it is found on."""
    await cache.refresh(
        cache.flags,
        "feature flags",
        lambda: client.feature_flags(site_id),
        now=now,
        next_at=lambda _: now + cache.stretched(cache.flags_ttl),
    )

    async def config_of(sn: str) -> None:
        await cache.refresh(
            cache.charger_configs.setdefault(sn, Cached()),
            f"charger config of {sn}",
            lambda: client.charger_config(site_id, sn),
            now=now,
            next_at=lambda _: now + cache.stretched(cache.charger_config_ttl),
            failure_pause=cache.charger_config_failure_pause,
        )

    await _each_charger(status, config_of, cache=cache)
    merged: dict[str, Capabilities] = {}
    for charger in status.chargers:
        sn = charger.sn
        entry = cache.charger_configs[sn]
        summary = cache.summaries.get(sn)
        found = merge_capabilities(
            sn,
            summary=summary.value if summary is not None else None,
            flags=cache.flags.value or NO_FLAGS,
            config=entry.value,
        )
        _report_session_auth(cache, found)
        merged[sn] = found
    return merged


def _report_session_auth(cache: ObserveCache, found: Capabilities) -> None:
    if found.session_auth and found.sn not in cache.session_auth_reported:
        cache.session_auth_reported.add(found.sn)
        _LOGGER.warning(
            "charger %s has session authentication on (%s): a cloud start is accepted but no "
            "energy flows until someone authenticates, so the service sends no starts to it",
            found.sn,
            " and ".join(found.session_auth_kinds),
        )
    elif found.session_auth is False and found.sn in cache.session_auth_reported:
        cache.session_auth_reported.discard(found.sn)
        _LOGGER.info("charger %s: session authentication is off again", found.sn)


def _dark_until(config: Config, now: datetime, timezone: str | None) -> datetime | None:
    """The next sunrise while the sun is below the horizon; None by day, on a polar day or
    night, or where the site's place is unknown."""
    site = config.site
    if timezone is None or site.latitude is None or site.longitude is None:
        return None
    sun = sun_at(now, latitude=site.latitude, longitude=site.longitude, timezone=timezone)
    if sun.sunrise is None or sun.sunset is None:
        return None
    if now < sun.sunrise:
        return sun.sunrise
    if now > sun.sunset:
        # Tomorrow's: a day later within minutes, and the hourly read makes minutes moot.
        return sun.sunrise + timedelta(days=1)
    return None


async def _energy(client: EnlightenClient, site_id: int, timezone: str | None) -> LifetimeEnergy:
    """Buckets count from the site's local midnight: without its zone they cannot be placed."""
    if timezone is None:
        raise ConfigError(
            "the site's time zone is unknown, so its energy buckets cannot be placed",
            hint="set site.timezone in the config",
        )
    return await client.lifetime_energy(site_id, timezone=timezone)


async def _latest_power(client: EnlightenClient, site_id: int, now: datetime) -> LatestPower:
    """A sample without its own time is taken as of when it was read."""
    sample = await client.latest_power(site_id)
    return sample if sample.time is not None else sample.model_copy(update={"time": now})


async def _battery(client: EnlightenClient, site_id: int) -> BatteryStatus:
    """A 404 is a site without a battery: remembered, not retried every few minutes."""
    try:
        return await client.battery_status(site_id)
    except NotFoundError:
        return NO_BATTERY


async def _slots(client: EnlightenClient, site_id: int, sn: str) -> tuple[ScheduleSlot, ...]:
    return (await client.schedules(site_id, sn)).slots


def _values(entries: dict[str, Cached[T]], *, fresh: bool = False) -> dict[str, T]:
    """Values that have been fetched at least once (an unknown stays absent, not None);
    with ``fresh``, not those a write has made stale since."""
    return {
        sn: entry.value
        for sn, entry in entries.items()
        if entry.fetched_at is not None and entry.value is not None and not (fresh and entry.stale)
    }
