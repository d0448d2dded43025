"""Replay a :class:`SiteSeries` through the engine with a simulated charger.

The engine is run exactly as the service runs it: a :class:`Snapshot` per tick whose surplus
comes from :func:`estimate_surplus` over the previous *complete* bucket (report lag: acting in
bucket t, the engine sees bucket t - ``lag_buckets``), ``evaluate`` with memory carried
between ticks, and the decisions applied to a simulated charger.

Choices (documented because they shape the figures):

* One tick per 15-minute bucket, at its start. The surplus the engine sees only changes once
  per bucket, so finer ticks would add cost and no information (hysteresis timers advance in
  15-minute steps).
* The charger is in MANUAL mode unless a policy switches it. A level change while charging
  restarts the session in MANUAL (field notes), costing ``restart_s`` seconds of charging in
  that bucket. In GREEN mode the charger follows the bucket's real surplus itself (clamped to
  its limits; below the minimum it pauses).
* The car takes at most its session's ``energy_kwh`` (what it took in reality); then it stops
  drawing though the session stays active.
* ``set_battery`` changes the simulated setting (so it is sent once, not every tick). With
  ``site.battery`` in the config, a home battery (:mod:`optimizer.simulate.battery`) runs
  beside the charger: the engine sees its flows in the bucket it reads and its state of charge
  now; the setting lets it feed the car in GREEN mode. ``patch_schedules`` is counted and
  changes nothing (SCHEDULED mode is not simulated).
* With a store, every command and each hold that says something new is logged, a week of
  whole simulated days per transaction through :meth:`DecisionStore.record_many`, in a
  writer process beside a long replay (:mod:`optimizer.simulate.daylog`).
* The tariff view is built from precomputed 15-minute prices rather than
  :func:`tariff_now` per tick (same fields; a year would otherwise cost millions of lookups).
"""

from __future__ import annotations

import os
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from optimizer.config import Config
from optimizer.decisions.store import DecisionStore
from optimizer.engine.decision import Decision, EngineSettings, Memory, evolve
from optimizer.engine.frozen import maker
from optimizer.engine.rules import PolicyBase, SolarPlan
from optimizer.engine.snapshot import (
    ChargerView,
    DeparturePlan,
    EnergyBucket,
    Snapshot,
    Sun,
    Surplus,
    TariffNow,
    with_local,
)
from optimizer.enlighten.models import ChargeMode
from optimizer.limits import Limits
from optimizer.observe.surplus import estimate_surplus
from optimizer.planner.outlook import SurplusOutlook
from optimizer.plans import MET_KWH, MORE, overdue
from optimizer.simulate.battery import BatteryFlows, BatteryTrack
from optimizer.simulate.daylog import DayLog, Item
from optimizer.simulate.idle import Idle
from optimizer.simulate.series import BUCKET, BUCKET_H, Session, SiteSeries
from optimizer.simulate.split import cpu_count, exact, fork_child
from optimizer.sun import SunTrack, sun_at
from optimizer.tariffs import PriceSlot, Tariffs

if TYPE_CHECKING:
    from optimizer.forecast.solar import Site

_new_tariff_now = maker(TariffNow)
_new_energy_bucket = maker(EnergyBucket)
_new_snapshot = maker(Snapshot)
_new_price_slot = maker(PriceSlot)

__all__ = ["ReplayResult", "replay"]

SLOTS_AHEAD = 96  # the engine sees about a day of tariff slots, as tariff_now gives it
LOOKBACK = 96  # as latest_complete_bucket: skip trailing gaps up to a day back
CHARGING_COMMANDS = frozenset({"start", "stop", "set_amps", "set_mode"})


@dataclass(frozen=True)
class ReplayResult:
    ev_kwh: tuple[float, ...]
    amps: tuple[int | None, ...]  # the level drawing in each bucket (None: not charging)
    commands: int  # start/stop + level changes + mode switches actually applied
    decisions: int
    by_action: dict[str, int]
    battery: BatteryFlows | None = None  # the home battery's flows, when one is configured


@dataclass
class _Charger:
    """The simulated charger: what the last applied commands left it doing."""

    on: bool = False
    amps: int | None = None
    mode: ChargeMode = ChargeMode.MANUAL_CHARGING
    # Green mode's battery setting: kept, so a policy that sets it is answered by a hold next
    # tick, as live (there is no home-battery energy model; the setting only has to stick).
    use_battery: bool | None = None
    session_kwh: float = 0.0
    session_number: int = -1  # which series session the delivered energy belongs to
    delivered: float = 0.0
    asked: float = 0.0  # the most a learned plan's "more" step asked in this session

    def follow(self, number: int) -> None:
        """Plug-in, unplug or the next car: the charger's session state starts again (the
        engine learns of it from the view's ``plugged_in``, exactly as live)."""
        if number == self.session_number:
            return
        self.session_number, self.delivered, self.session_kwh = number, 0.0, 0.0
        self.asked = 0.0
        if number < 0:
            self.on, self.amps, self.mode = False, None, ChargeMode.MANUAL_CHARGING

    @property
    def battery_feeds_car(self) -> bool:
        """Green mode's battery support, which only acts in GREEN mode (spec 4.3)."""
        return self.use_battery is True and self.mode.takes_no_amps

    def take(self, energy: float) -> float:
        self.delivered += energy
        self.session_kwh += energy
        return energy


class _Tariff:
    """Precomputed (window, price) per bucket and the TariffNow the engine sees.

    Built for the buckets a process replays (:meth:`prepare`): a replay split in two makes it
    after the fork, each process for its own half, so neither waits for the other's."""

    def __init__(self, tariffs: Tariffs, series: SiteSeries, *, ready: bool = True) -> None:
        self.tariffs, self.series = tariffs, series
        self.zone = ZoneInfo(series.timezone)
        # (window, price) by month, weekday and the interval between two boundaries the time
        # of day is in (Tariffs.boundaries: the same answer anywhere in it).
        self.cache: dict[tuple[int, int, int], tuple[str | None, float | None]] = {}
        self.boundaries = tariffs.boundaries()
        count = len(series.starts)
        # Each bucket's start in the site's zone, converted once: for its price here, and for
        # the tick's sun and snapshot (:func:`_snapshot`). None until prepared.
        self.locals: list[datetime] = cast("list[datetime]", [None] * count)
        self.windows: list[tuple[str | None, float | None]] = cast(
            "list[tuple[str | None, float | None]]", [None] * count
        )
        self.slots: tuple[PriceSlot, ...] = ()  # a tuple: a tick's slots ahead are one slice
        # Index of the next change after each bucket (len: none within the prepared buckets).
        self.next_change = [count] * count
        self.lo = self.hi = 0  # the buckets prepared
        if ready:
            self.prepare(0, count)

    def prepare(self, lo: int, hi: int) -> None:
        """Make buckets ``lo`` to ``hi`` (excluded) ready, with the ones after ``hi`` that
        :meth:`now` reads (the next change up to :data:`SLOTS_AHEAD` x 8 ahead; beyond it, or
        beyond the prepared buckets, it says none either way)."""
        series, zone, cache, boundaries = self.series, self.zone, self.cache, self.boundaries
        count = len(series.starts)
        hi = min(count, hi + SLOTS_AHEAD * 8 + 1)
        if self.lo <= lo and hi <= self.hi:
            return
        if self.hi > self.lo:
            lo, hi = min(lo, self.lo), max(hi, self.hi)
        slots = list(self.slots) if self.slots else [cast("PriceSlot", None)] * count
        for index in range(lo, hi):
            if self.lo <= index < self.hi:
                continue
            at = series.starts[index]
            self.locals[index] = local = at.astimezone(zone)
            key = (
                local.month,
                local.isoweekday(),
                bisect_right(boundaries, local.hour * 60 + local.minute),
            )
            found = cache.get(key)
            if found is None:
                found = cache[key] = self.tariffs.window_at(local)
            self.windows[index] = found
            slots[index] = _new_price_slot(
                start=at, end=at + BUCKET, window=found[0], price=found[1]
            )
        self.slots = tuple(slots)
        self.lo, self.hi = lo, hi
        windows, following = self.windows, self.next_change
        following[hi - 1] = count
        for index in range(hi - 2, lo - 1, -1):
            same = windows[index + 1] == windows[index]
            following[index] = following[index + 1] if same else index + 1

    def now(self, index: int) -> TariffNow:
        name, price = self.windows[index]
        change = self.next_change[index]
        if change < len(self.windows) and change - index <= SLOTS_AHEAD * 8:
            at: datetime | None = self.slots[change].start
            next_name, next_price = self.windows[change]
        else:
            at, next_name, next_price = None, None, None
        return _new_tariff_now(
            window=name,
            price=price,
            next_change_at=at,
            next_window=next_name,
            next_price=next_price,
            slots=self.slots[index : index + SLOTS_AHEAD],
        )


def engine_settings(config: Config) -> EngineSettings:
    """The engine's settings from the config, as the service makes them."""
    return EngineSettings(
        site_max_amps=config.site.max_current,
        override_hold=config.engine.override_hold,
        tariffs=config.tariffs,
    )


def _sun(
    config: Config, when: datetime, timezone: str, local: datetime | None = None
) -> Sun | None:
    site = config.site
    if site.latitude is None or site.longitude is None:
        return None
    return sun_at(
        when, latitude=site.latitude, longitude=site.longitude, timezone=timezone, local=local
    )


def _seen_bucket(
    series: SiteSeries, index: int, lag: int, ev_kwh: Sequence[float], home: BatteryTrack | None
) -> EnergyBucket | None:
    """The bucket the live service would read at the start of ``index``: ``index - lag``,
    skipping trailing gaps, with the *simulated* EV draw in consumption and evse."""
    last = index - lag
    for seen in range(last, max(-1, last - LOOKBACK), -1):
        if series.missing[seen]:
            continue
        to_w = 1000 / BUCKET_H
        ev = ev_kwh[seen]
        start = series.starts[seen]
        charge_w, discharge_w = home.seen_w(seen) if home is not None else (None, None)
        return _new_energy_bucket(  # EnergyBucket(...) without its frozen __init__ (every tick)
            start=start,
            end=start + BUCKET,
            pv_w=series.pv_kwh[seen] * to_w,
            consumption_w=(series.house_kwh[seen] + ev) * to_w,
            evse_w=ev * to_w,
            export_w=None,
            import_w=None,
            battery_charge_w=charge_w,
            battery_discharge_w=discharge_w,
        )
    return None


def replay(
    series: SiteSeries,
    policies: Sequence[PolicyBase],
    *,
    config: Config,
    limits: Limits,
    voltage_v: float,
    charger_sn: str = "SIM0001",
    lag_buckets: int = 1,
    restart_s: float = 30,
    store: DecisionStore | None = None,
    run_id: str | None = None,
    site_id: int | None = None,
    plan_margin: timedelta | None = None,
    plans: Sequence[DeparturePlan | None] | None = None,
    skip_idle: bool = True,
    outlooks: Callable[[int], SurplusOutlook | None] | None = None,
    forecast_site: Site | None = None,
    split: bool = True,
) -> ReplayResult:
    """Run the policies over the series; energy per bucket is amps x V x h x plugged share.

    ``plan_margin``: give every session a departure plan, as a driver who uses `evopt plan set`
    would: ready by its real unplug time minus the margin, with the energy it really took.
    None: no plans (the policies only see what the cloud reports). ``plans``: instead, one
    plan (or None) per session of the series, e.g. learned ones (optimizer/simulate/learned.py);
    a learned plan past its departure with the car still plugged in and short moves on as live
    (:func:`optimizer.plans.overdue`).
    ``skip_idle``: without a ``store``, an idle tick of the same class as the last settled one
    reuses its holds (optimizer/simulate/idle.py); False evaluates every tick.
    ``split``: without a ``store``, a long period is replayed in two processes where it can be
    (:func:`_split_advance`: the same result, by construction); False, or
    ``EVOPT_REPLAY_SPLIT=0`` in the environment, replays it in this process alone.
    """
    if lag_buckets < 1:
        raise ValueError("the engine can only see complete buckets: lag_buckets >= 1")
    tariff = _Tariff(config.tariffs, series, ready=False)  # each process its part (_advance)
    log = DayLog(store, run_id, site_id, ZoneInfo(series.timezone), buckets=len(series.starts))
    # Unlogged, a decision is counted and applied, never read: its words are not built.
    settings = replace(engine_settings(config), words=log.on)
    run = _Run(
        _Fixed(
            series=series,
            policies=policies,
            config=config,
            limits=limits,
            voltage_v=voltage_v,
            sn=charger_sn,
            lag=lag_buckets,
            site_id=site_id,
            tariff=tariff,
            settings=settings,
            # A logged replay reuses them too: a reused tick's holds repeat the last ones, and
            # the log records a hold only when it says another thing (daylog.py).
            reuse=skip_idle,
            planned=_planned(series, plans, plan_margin),
            outlooks=_outlooks(series, policies, config, outlooks, forecast_site),
            restart_share=max(0.0, 1 - restart_s / (BUCKET_H * 3600)),
        ),
        log,
    )
    try:
        if split and _may_split(run):
            _split_advance(run)
        else:
            _advance(run, 0, len(series.starts))
    except BaseException:
        log.abandon()
        raise
    if log.on:
        log.figures(series.starts, run.seen_w, run.amps, charger_sn)
    log.close()
    return run.result()


@dataclass(frozen=True)
class _Fixed:
    """What a replay reads and never changes: the series, the policies, the settings."""

    series: SiteSeries
    policies: Sequence[PolicyBase]
    config: Config
    limits: Limits
    voltage_v: float
    sn: str
    lag: int
    site_id: int | None
    tariff: _Tariff
    settings: EngineSettings
    reuse: bool
    planned: Sequence[DeparturePlan | None]
    outlooks: Callable[[int], SurplusOutlook | None] | None
    restart_share: float


class _Run:
    """A replay's state between ticks (the engine's memory, the charger, the home battery, the
    idle reuse) and what it has produced so far, advanced by :func:`_advance`."""

    def __init__(self, fixed: _Fixed, log: DayLog) -> None:
        series, config = fixed.series, fixed.config
        count = len(series.starts)
        self.fixed, self.log = fixed, log
        self.memory = Memory()
        self.charger = _Charger()
        self.home = BatteryTrack(series, config.site.battery) if config.site.battery else None
        self.idle = Idle(fixed.policies, fixed.settings, enabled=fixed.reuse)
        site = config.site
        self.sun = (  # its last elevation worked out: never compared by the split (_state)
            None
            if site.latitude is None or site.longitude is None
            else SunTrack(
                latitude=site.latitude, longitude=site.longitude, timezone=series.timezone
            )
        )
        self.ev_kwh = [0.0] * count
        self.amps: list[int | None] = [None] * count
        # The surplus (W) each tick read, for a logged replay's figures (DayLog.figures).
        self.seen_w: list[float | None] = [None] * count if log.on else []
        self.commands = 0
        self.decisions = 0
        self.by_action: dict[str, int] = {}

    def counted(self) -> tuple[int, int, dict[str, int]]:
        """The commands, decisions and actions counted so far, counting from zero again."""
        counted = self.commands, self.decisions, self.by_action
        self.commands, self.decisions, self.by_action = 0, 0, {}
        return counted

    def result(self) -> ReplayResult:
        home = self.home
        return ReplayResult(
            ev_kwh=tuple(self.ev_kwh),
            amps=tuple(self.amps),
            commands=self.commands,
            decisions=self.decisions,
            by_action=self.by_action,
            battery=home.flows() if home is not None else None,
        )


def _advance(run: _Run, start: int, stop: int) -> None:  # noqa: PLR0915 (one hot loop)
    """Replay buckets ``start`` to ``stop`` (excluded) from the state ``run`` holds."""
    fixed, log = run.fixed, run.log
    series, limits, voltage_v, config = fixed.series, fixed.limits, fixed.voltage_v, fixed.config
    planned, outlooks, tariff = fixed.planned, fixed.outlooks, fixed.tariff
    tariff.prepare(start, stop)
    memory, charger, home, idle, sun = run.memory, run.charger, run.home, run.idle, run.sun
    ev_kwh, amps_out, by_action, seen_w = run.ev_kwh, run.amps, run.by_action, run.seen_w
    commands, decisions = run.commands, run.decisions
    kw_per_amp = voltage_v / 1000
    restart_share = fixed.restart_share
    starts, sessions, session_of = series.starts, series.sessions, series.session_index
    logged = log.on  # a replay without a log (the bench, the split) skips its calls
    # Ticks with no car that repeat the kept evaluation are counted without a snapshot
    # (_repeated); with a home battery every tick moves it, and each goes the whole way.
    quiet = idle.enabled and home is None
    after = differs = start - 1  # past a run of repeated ticks; the tick that ended it
    for index in range(start, stop):
        if index < after:
            continue
        if quiet and index != differs and idle.last is not None:
            after = differs = _repeated(run, index, stop, memory)
            if after > index:  # counted as _advance counts a reused tick's holds
                held = (after - index) * len(idle.decided)
                decisions += held
                by_action["hold"] = by_action.get("hold", 0) + held
                continue
        now = starts[index]
        if logged:
            log.day_of(now)
        number = session_of(index)
        session = sessions[number] if number >= 0 else None
        charger.follow(number)
        plan = planned[number] if session is not None else None
        view = _view(
            charger,
            plugged=session is not None,
            limits=limits,
            voltage_v=voltage_v,
            sn=fixed.sn,
            plan=None if plan is None else _overdue(plan, now, charger, session),
        )
        snapshot = _snapshot(
            series,
            index,
            view,
            ev_kwh=ev_kwh,
            home=home,
            tariff=tariff,
            config=config,
            lag_buckets=fixed.lag,
            site_id=fixed.site_id,
            sun=sun,
            outlook=outlooks(index) if outlooks is not None and session is not None else None,
        )
        if logged:
            seen_w[index] = snapshot.surplus.pv_minus_house_w
        decided, memory = idle.decide(
            snapshot, view, memory, period=idle.period(snapshot), plugged=session is not None
        )
        restarted = False
        if idle.held(decided):  # the kept holds again: nothing to apply
            decisions += len(decided)
            by_action["hold"] = by_action.get("hold", 0) + len(decided)
            if logged:  # the same decisions as last logged: told apart by identity
                for decision in decided:
                    log.add(decision, now, 0)
        else:
            for decision in decided:
                decisions += 1
                by_action[decision.action] = by_action.get(decision.action, 0) + 1
                sent, restarted_now = _apply(decision, charger, limits, session is not None)
                restarted = restarted or restarted_now
                commands += sent
                if logged:
                    log.add(decision, now, sent)
        amps = _drawing_amps(charger, series, index, limits, voltage_v)
        if session is not None and amps:
            share = series.fraction(index, session) * (restart_share if restarted else 1.0)
            need = max(0.0, session.energy_kwh - charger.delivered)
            ev_kwh[index] = charger.take(min(need, amps * kw_per_amp * BUCKET_H * share))
            amps_out[index] = amps if ev_kwh[index] > 0 else None
        _step_battery(home, index, ev_kwh[index], charger)
    run.memory, run.commands, run.decisions = memory, commands, decisions


def _repeated(run: _Run, start: int, stop: int, memory: Memory) -> int:
    """The first tick from ``start`` (before ``stop``) that does not repeat the kept
    evaluation (:meth:`Idle.repeats`: no car, the same key); the ones before it logged as
    :func:`_advance` logs a reused tick (the caller counts their holds)."""
    fixed, log, charger, idle, sun = run.fixed, run.log, run.charger, run.idle, run.sun
    series, tariff = fixed.series, fixed.tariff
    starts, session_of = series.starts, series.session_index
    if session_of(start) >= 0:
        return start
    charger.follow(-1)  # as the first tick with no car does
    view = _view(
        charger, plugged=False, limits=fixed.limits, voltage_v=fixed.voltage_v, sn=fixed.sn
    )
    decided, logged = idle.decided, log.on
    index = start
    while index < stop and session_of(index) < 0:
        now, local = starts[index], tariff.locals[index]
        sun_now = sun.at(now, local) if sun is not None else None
        _, surplus = _surplus_at(
            series,
            index,
            view,
            ev_kwh=run.ev_kwh,
            home=None,
            config=fixed.config,
            lag_buckets=fixed.lag,
            sun_now=sun_now,
        )
        tick = tariff.windows[index]
        if not idle.repeats(
            view, memory, now=now, local=local, tariff=tick, sun=sun_now, surplus=surplus
        ):
            break
        if logged:
            log.day_of(now)
            run.seen_w[index] = surplus.pv_minus_house_w
            for decision in decided:
                log.add(decision, now, 0)
        index += 1
    return index


# --- two processes ----------------------------------------------------------------------------

SPLIT_ENV = "EVOPT_REPLAY_SPLIT"
MIN_SPLIT_BUCKETS = 60 * 96
"""Shorter periods replay in one process: a month is a third of a second of replay, where the
child's warm-up (two days or more) and the fork would take a tenth of what it saves (the
floor was chosen, not measured; tests lower it to split weeks)."""
WARM_UP = 2 * 96
"""The child starts at least this long before the first cut (and before the last session)."""
CUTS = 4
"""Places to cut, a day apart: where the states differ at one, they may agree at the next."""
CANDIDATES = 5
CANDIDATE_STEP = 30 * 96
"""Where the first cut may go: the balanced place, else up to four months either side of it
(a month apart), for a child whose fresh state would be fragile there (:func:`_fragile`)."""
PLUGGED_COST = 4
"""A tick with a car plugged in costs about this many idle ones (the split balances work)."""
PLANNED_COST = 100
"""The same with a forecast to plan over (``solar_plan``, the causal outlooks): its programme
is most of a replay's work (the sample year: 81 s of CPU against the rules' 4, 14,441 of its
35,040 ticks plugged in)."""
COLD_COST = 250
"""The same before the first plane fits (:meth:`CausalOutlooks.warm_from`): the kind follows
the current surplus and plans again at every tick (the sample's first five weeks: 3.6 s of CPU
a week against 1.3-1.6 after)."""
PARENT_EXTRA = 0.01
"""The share of the work this process leaves to the child beyond half: `evopt simulate` goes
on to the report after the replay (a twentieth of a second of a year's), where the optimum's
process, when it solves, shares the child's core for about as long."""


def _may_split(run: _Run) -> bool:
    """Whether this replay may run in two processes: long enough, two cores, fork, and every
    outlook provider able to say its state."""
    fixed = run.fixed
    if os.environ.get(SPLIT_ENV, "").strip().lower() in {"0", "no", "off", "false"}:
        return False
    if len(fixed.series.starts) < MIN_SPLIT_BUCKETS:
        return False
    return _outlook_state(fixed.outlooks) is not None and cpu_count() >= 2


def _outlook_state(outlooks: Callable[[int], object] | None) -> Callable[[], object] | None:
    """What the outlook provider carries from tick to tick, as a function (None: a provider
    that cannot say, which the split cannot compare)."""
    if outlooks is None:
        return tuple
    state = getattr(getattr(outlooks, "__self__", None), "state", None)
    return state if callable(state) else None


def _weights(outlooks: Callable[[int], object] | None) -> tuple[int, int, int]:
    """What a plugged-in tick costs in idle ones, before bucket ``warm`` and from it, and
    ``warm``: the rules' :data:`PLUGGED_COST` throughout, or with a forecast to plan over,
    :data:`COLD_COST` until its first plane and :data:`PLANNED_COST` after."""
    warm_from = getattr(getattr(outlooks, "__self__", None), "warm_from", None)
    if not callable(warm_from):
        return PLUGGED_COST, PLUGGED_COST, 0
    warm = warm_from()
    return (PLANNED_COST, PLANNED_COST, 0) if warm is None else (COLD_COST, PLANNED_COST, warm)


def _candidates(
    series: SiteSeries, weights: tuple[int, int, int] = (PLUGGED_COST, PLUGGED_COST, 0)
) -> tuple[list[bool], list[int]]:
    """Which buckets have a car plugged in, and the places the first cut may go, best first:
    the quiet bucket (no car plugged in it or the one before) where the work after it (the
    child's, warm-up included) is about the work before it (``weights``: :func:`_weights`),
    then quiet buckets :data:`CANDIDATE_STEP` apart on either side, nearer first
    (:func:`_child_work` takes the first where the child's fresh state is not fragile)."""
    count = len(series.starts)
    plugged = [series.session_index(i) >= 0 for i in range(count)]
    cold, warm_cost, warm = weights
    work = [0] * (count + 1)
    for index in range(count):
        cost = (cold if index < warm else warm_cost) if plugged[index] else 1
        work[index + 1] = work[index] + cost
    warm_work = work[WARM_UP] * 2  # about what the child replays before the cut
    half = (work[count] + warm_work) // 2 - int(work[count] * PARENT_EXTRA)
    middle = next((i for i in range(1, count) if work[i] >= half), count)
    found: list[int] = []
    for step in range(CANDIDATES):
        for sign in (0,) if step == 0 else (-1, 1):
            cut = _quiet_from(plugged, middle + sign * step * CANDIDATE_STEP)
            if cut is not None and WARM_UP * 2 < cut < count - 96 and cut not in found:
                found.append(cut)
    return plugged, found


def _quiet_from(plugged: Sequence[bool], index: int) -> int | None:
    """The first quiet bucket at or after ``index`` (None: none before the end)."""
    for at in range(max(1, index), len(plugged)):
        if not plugged[at] and not plugged[at - 1]:
            return at
    return None


def _cuts(series: SiteSeries, plugged: Sequence[bool], first: int) -> tuple[int, list[int]]:
    """Where the child starts for a first cut at ``first``, and the cuts: ``first`` and the
    next quiet buckets a day apart. The child starts at a quiet bucket at least
    :data:`WARM_UP` before the first cut and before the last session before it, so it sees
    that session's commands as this process does."""
    cuts = [first]
    while len(cuts) < CUTS:
        cut = _quiet_from(plugged, cuts[-1] + 96)
        if cut is None or cut >= len(plugged) - 96:
            break
        cuts.append(cut)
    start = first - WARM_UP
    last = next((i for i in range(first - 1, 0, -1) if plugged[i]), None)
    if last is not None:  # the last session before the cut, from its start
        start = min(start, series.window(series.sessions[series.session_index(last)]).start - 1)
    while start > 1 and (plugged[start] or plugged[start - 1]):
        start -= 1
    return max(1, start), cuts


def _fragile(run: _Run) -> bool:
    """Whether the child's fresh state at a cut rests on a setting it cannot know: the home
    battery setting of the charger, which persists for months once a rule set it (a summer
    rule's "no battery for the car" lasts the winter through) and which the child has not seen
    set in its warm-up, while some rule may set it. Only a choice of where to cut: the
    comparison decides."""
    if run.charger.use_battery is not None:
        return False
    return any(getattr(policy, "use_battery", None) is not None for policy in run.fixed.policies)


def _state(run: _Run, at: int) -> tuple[Any, ...]:
    """Everything a tick from ``at`` on reads of what the ticks before left: the engine's
    memory, the charger, the home battery, the outlook provider's state, and the simulated
    draws (and battery flows) the snapshots still look back at (:data:`LOOKBACK`).

    Not in it: the idle reuse (:class:`Idle`), which never changes a result (the child forgets
    its own at each cut, so it has nothing the comparison skipped), and how long ago a
    policy took control of a target where both sides have held it longer than every duration
    a tick compares (:meth:`Idle.horizon`): the engine reads that moment only for the words of
    its reasons (optimizer/engine/kinds/common.py ``relevant_since``), which an unlogged
    replay throws away, and the idle reuse only by which side of those durations its age is
    on, which cannot change after. The child saw the rule take control at its start; this
    process may have seen it months before."""
    fixed = run.fixed
    series, home = fixed.series, run.home
    seen = [i for i in range(max(0, at - fixed.lag - LOOKBACK + 1), at) if not series.missing[i]]
    battery = None
    if home is not None:
        charge, discharge = home.charge, home.discharge
        battery = (home.battery.soc, [charge[i] for i in seen], [discharge[i] for i in seen])
    outlook = _outlook_state(fixed.outlooks)
    return (
        _memory_state(run.memory, series.starts[at], run.idle.horizon()),
        run.charger,
        battery,
        [run.ev_kwh[i] for i in seen],
        outlook() if outlook is not None else None,
        run.log.state(),  # what a logged replay's next rows are told apart from
    )


_MARKS = ("commanded_at", "started_at", "stopped_at")
"""A charger's last command, start and stop: read only for their age against a policy's or
the engine's durations (``min_off_time``, ``min_on_time``, the settle time), for the words of
a reason, and by ``feedback`` at the tick they were set; so older than every duration they
say no more than none at all. The child, starting fresh weeks before its cut, often saw no
stop where this process saw one in June (the example rules on the sample read in Melbourne:
no cut was taken, and the whole year replayed in this process alone)."""


def _memory_state(memory: Memory, now: datetime, horizon: timedelta) -> Memory:
    """The memory as :func:`_state` compares it: each control's ``since`` and each of the
    charger's :data:`_MARKS` older than ``horizon`` at ``now`` blanked, the policies' timers in
    the order of their names."""
    chargers = {}
    for sn, known in memory.chargers.items():
        control = {
            target: held.copied({"since": None}) if _older(held.since, now, horizon) else held
            for target, held in known.control.items()
        }
        old = {mark: None for mark in _MARKS if _older(getattr(known, mark), now, horizon)}
        chargers[sn] = known.copied({"control": control, **old})
    # The order the timers were first set in is read by nothing but a JSON dump of the memory,
    # which a replay never makes (the engine looks timers up by name): sorted on both sides.
    return memory.copied({"chargers": chargers, "policies": dict(sorted(memory.policies.items()))})


def _older(moment: datetime | None, now: datetime, horizon: timedelta) -> bool:
    return moment is not None and now - moment > horizon


def _child_work(
    run: _Run,
    plugged: Sequence[bool],
    candidates: Sequence[int],
    send: Callable[[Any], None],
) -> None:
    """The forked child: a fresh replay up to the first candidate cut where its state is not
    fragile (else the first), the place sent; then on to the end, its state sent at each cut
    and, at the end, what it produced from the first cut on and its counts between cuts.
    ``plugged``: :func:`_candidates`' buckets with a car plugged in."""
    fixed = run.fixed
    series = fixed.series
    resume = getattr(getattr(fixed.outlooks, "__self__", None), "resume", None)
    # A provider that carries state (the causal forecast) is fresh for one start only.
    outlook = _outlook_state(fixed.outlooks)
    tries = list(candidates if outlook is not None and outlook() == () else candidates[:1])
    if len(tries) > 1:
        tries.append(tries[0])  # all fragile: the balanced place after all
    for number, first in enumerate(tries):
        start, cuts = _cuts(series, plugged, first)
        zone = ZoneInfo(series.timezone)
        child = _Run(fixed, DayLog(None, None, None, zone, collect=run.log.on))
        if callable(resume):  # the outlook provider as the ticks before the start left it
            resume(start)
        _advance(child, start, first)
        if number == len(tries) - 1 or not _fragile(child):
            break
    send(("cuts", cuts))
    counts = []
    at = first
    for number, cut in enumerate(cuts):
        _advance(child, at, cut)
        at = cut
        counted = child.counted()
        if number:
            counts.append(counted)
        child.idle.forget()
        send(("at", cut, _state(child, cut), _sinces(child.memory)))
    _advance(child, at, len(series.starts))
    counts.append(child.counted())
    home = child.home
    flows = None
    if home is not None:
        flows = (home.charge[first:], home.discharge[first:], home.soc[first:], home.battery.soc)
    since = series.starts[first]
    rows = [item for item in child.log.kept if item[1] >= since]
    done = (child.ev_kwh[first:], child.amps[first:], flows, counts, rows, child.seen_w[first:])
    send(("done", *done))


def _split_advance(run: _Run) -> None:
    """Replay the whole period with a forked child replaying its second half.

    The child says where it cuts (:func:`_child_work`); this process replays up to that cut
    and compares its state there with the child's (:func:`_state`, :func:`exact`): equal, the
    child's ticks from the cut on are the ones this process would have replayed, and they are
    taken (draws, levels, battery flows, counts); not equal, this process replays up to the
    next cut and compares again, and past the last one replays the rest alone. No fork, a
    child that fails: this process alone."""
    count = len(run.fixed.series.starts)
    plugged, candidates = _candidates(run.fixed.series, _weights(run.fixed.outlooks))
    child = None
    if candidates:
        child = fork_child(partial(_child_work, run, plugged, candidates), name="evopt-replay-half")
    at = 0
    if child is None:
        _advance(run, at, count)
        return
    try:
        at = min(candidates)  # no cut comes before it
        _advance(run, 0, at)
        got = child.receive()
        cuts = got[1] if got is not None and got[0] == "cuts" else []
        for number, cut in enumerate(cuts):
            _advance(run, at, cut)
            at = cut
            got = child.receive()
            if got is None or got[:2] != ("at", cut):
                break
            if _same_state(_state(run, cut), got[2]):
                theirs = got[3]
                while got is not None and got[0] != "done":
                    got = child.receive()
                if got is not None:
                    _splice(run, number, cuts, got, _since_fixes(run.memory, theirs))
                    return
                break
        _advance(run, at, count)
    finally:
        child.close()


def _same_state(mine: tuple[Any, ...], theirs: tuple[Any, ...]) -> bool:
    """The two states at a cut are the same (a seam for the tests to force a mismatch)."""
    return exact(mine, theirs)


def _splice(
    run: _Run,
    number: int,
    cuts: Sequence[int],
    done: tuple[Any, ...],
    fixes: Mapping[tuple[str, str, str, str], str],
) -> None:
    """Take the child's ticks from cut ``number`` on (and its logged rows, each control's
    start as this process knows it: :func:`_since_fixes`)."""
    _, ev_kwh, amps, flows, counts, rows, seen_w = done
    cut, skip = cuts[number], cuts[number] - cuts[0]
    since = run.fixed.series.starts[cut]
    run.log.take([_fixed_since(item, fixes) for item in rows if item[1] >= since])
    if run.seen_w:
        run.seen_w[cut:] = seen_w[skip:]
    run.ev_kwh[cut:] = ev_kwh[skip:]
    run.amps[cut:] = amps[skip:]
    home = run.home
    if home is not None and flows is not None:
        home.charge[cut:], home.discharge[cut:], home.soc[cut:] = (f[skip:] for f in flows[:3])
        home.battery.soc = flows[3]
    for commands, decisions, by_action in counts[number:]:
        run.commands += commands
        run.decisions += decisions
        for action, times in by_action.items():
            run.by_action[action] = run.by_action.get(action, 0) + times


def _sinces(memory: Memory) -> dict[tuple[str, str], tuple[str, str]]:
    """Each control's policy and start, as a logged row quotes them (``in_control_since``)."""
    return {
        (sn, target): (held.policy, held.since.isoformat())
        for sn, known in memory.chargers.items()
        for target, held in known.control.items()
    }


def _since_fixes(
    memory: Memory, theirs: Mapping[tuple[str, str], tuple[str, str]]
) -> dict[tuple[str, str, str, str], str]:
    """Where the child's rows quote a control's start that this process knows to be earlier.

    The states at the cut compare a control's start only when it is recent (:func:`_state`):
    a rule in control since April is, to a child that started in June, in control since its
    start. Its rows after the cut that still quote that start get this process's."""
    fixes = {}
    for key, (policy, since) in _sinces(memory).items():
        other = theirs.get(key)
        if other is not None and other[0] == policy and other[1] != since:
            fixes[(*key, policy, other[1])] = since
    return fixes


def _fixed_since(item: Item, fixes: Mapping[tuple[str, str, str, str], str]) -> Item:
    decision = item[0]
    inputs = decision.inputs
    quoted = inputs.get("in_control_since")
    if not fixes or quoted is None:
        return item
    since = fixes.get((decision.charger_sn, decision.target, str(inputs.get("in_control")), quoted))
    if since is None:
        return item
    fixed = evolve(decision, inputs={**inputs, "in_control_since": since})
    return (fixed, *item[1:])


def _outlooks(
    series: SiteSeries,
    policies: Sequence[PolicyBase],
    config: Config,
    given: Callable[[int], SurplusOutlook | None] | None,
    site: Site | None,
) -> Callable[[int], SurplusOutlook | None] | None:
    """The outlooks given, else the causal forecast when a look-ahead policy needs one."""
    if given is None and any(isinstance(p, SolarPlan) and p.enabled for p in policies):
        # Here, not at the top: the forecast needs numpy, which a replay of rules alone does
        # not (its import was a twentieth of `evopt simulate --no-log`).
        from optimizer.planner.causal import CausalOutlooks  # noqa: PLC0415

        return CausalOutlooks(series, config, site=site).at
    return given


def _overdue(
    plan: DeparturePlan, now: datetime, charger: _Charger, session: Session | None
) -> DeparturePlan:
    """The plan now (:func:`optimizer.plans.overdue`): moved on past a learned departure while
    the car is short of it and still takes energy (a full car would draw nothing anyway)."""
    taking = session is not None and charger.delivered < session.energy_kwh - MET_KWH
    # What live reads off the connector (CHARGING): a MANUAL charger that is on draws until the
    # car is full; in GREEN or SMART it draws only with the sun, which is not this tick's to say.
    drawing = taking and charger.on and not charger.mode.takes_no_amps
    now_plan = overdue(
        plan, now, charger.delivered, taking=taking, drawing=drawing, asked=charger.asked
    )
    if now_plan.learned is not None and MORE in now_plan.learned:
        charger.asked = max(charger.asked, now_plan.energy_kwh)  # as HabitCache.asked live
    return now_plan


def _step_battery(home: BatteryTrack | None, index: int, ev: float, charger: _Charger) -> None:
    if home is not None:
        home.step(index, ev, feeds_ev=charger.battery_feeds_car)


def _planned(
    series: SiteSeries,
    plans: Sequence[DeparturePlan | None] | None,
    margin: timedelta | None,
) -> Sequence[DeparturePlan | None]:
    """Each session's plan: the ones given, else the exact ones of ``margin`` (or none)."""
    period_end = series.end
    if plans is None:
        return [_plan(session, margin, period_end) for session in series.sessions]
    if len(plans) != len(series.sessions):
        raise ValueError(f"{len(plans)} plans for {len(series.sessions)} sessions")
    return plans


def _plan(
    session: Session | None, margin: timedelta | None, period_end: datetime | None
) -> DeparturePlan | None:
    """The driver's plan for ``session``: ready ``margin`` before the real unplug.

    A session cut by the period's end is judged by what the period allows.
    """
    if session is None or margin is None or period_end is None:
        return None
    return DeparturePlan(min(session.end - margin, period_end), session.energy_kwh)


def _view(
    charger: _Charger,
    *,
    plugged: bool,
    limits: Limits,
    voltage_v: float,
    sn: str,
    plan: DeparturePlan | None = None,
) -> ChargerView:
    """The simulated charger as the engine would see it in a status reply (the same object
    while nothing in it changes: most ticks of a replay see the charger as it was)."""
    return _view_of(  # positional: the cache's key is made faster without keywords
        charger.on and plugged,
        charger.amps,
        charger.mode,
        charger.use_battery,
        charger.session_kwh if plugged else None,
        plugged,
        limits,
        voltage_v,
        sn,
        plan,
    )


@lru_cache(maxsize=512)
def _view_of(  # noqa: PLR0917 (positional: the cache makes its key faster)
    charging: bool,
    amps: int | None,
    mode: ChargeMode,
    use_battery: bool | None,
    session_kwh: float | None,
    plugged: bool,
    limits: Limits,
    voltage_v: float,
    sn: str,
    plan: DeparturePlan | None,
    /,
) -> ChargerView:
    return ChargerView(
        sn=sn,
        connected=True,
        plugged_in=plugged,
        charging=charging,
        faulted=False,
        min_amps=limits.min_amps,
        max_amps=limits.max_amps,
        granularity=limits.granularity,
        amps=amps,
        mode=mode,
        status_mode=mode,
        use_battery=use_battery,
        supports_use_battery=True,
        voltage_v=voltage_v,
        session_kwh=session_kwh,
        plan=plan,
    )


def _snapshot(
    series: SiteSeries,
    index: int,
    view: ChargerView,
    *,
    ev_kwh: Sequence[float],
    home: BatteryTrack | None,
    tariff: _Tariff,
    config: Config,
    lag_buckets: int,
    site_id: int | None,
    sun: SunTrack | None,
    outlook: SurplusOutlook | None = None,
) -> Snapshot:
    """What the live service would see at the start of bucket ``index``."""
    now = series.starts[index]
    local = tariff.locals[index]  # converted once, for the sun's day and the snapshot
    sun_now = sun.at(now, local) if sun is not None else None  # worked out if read
    bucket, surplus = _surplus_at(
        series,
        index,
        view,
        ev_kwh=ev_kwh,
        home=home,
        config=config,
        lag_buckets=lag_buckets,
        sun_now=sun_now,
    )
    snapshot = _new_snapshot(  # Snapshot(...) without its frozen __init__
        now=now,
        timezone=series.timezone,
        chargers=(view,),
        surplus=surplus,
        tariff=tariff.now(index),
        sun=sun_now,
        bucket=bucket,
        battery_soc_pct=home.soc_pct(index) if home is not None else None,
        site_id=site_id,
        scheduler_down_since=None,
        stale_status_s=None,
        outlook=outlook,
    )
    return with_local(snapshot, local)


def _surplus_at(
    series: SiteSeries,
    index: int,
    view: ChargerView,
    *,
    ev_kwh: Sequence[float],
    home: BatteryTrack | None,
    config: Config,
    lag_buckets: int,
    sun_now: Sun | None,
) -> tuple[EnergyBucket | None, Surplus]:
    """The bucket the live service would read at the start of bucket ``index``, and the
    surplus it would estimate from it."""
    bucket = (
        _seen_bucket(series, index, lag_buckets, ev_kwh, home) if index >= lag_buckets else None
    )
    sun_mid = None
    if bucket is not None and config.surplus.scale_by_sun and config.site.latitude is not None:
        sun_mid = _sun(config, bucket.start + BUCKET / 2, series.timezone)
    surplus = estimate_surplus(
        bucket,
        now=series.starts[index],
        charger_draw_w=view.draw_w,
        latest=None,
        config=config.surplus,
        sun_now=sun_now,
        sun_mid=sun_mid,
        timezone=series.timezone,
    )
    return bucket, surplus


def _apply(
    decision: Decision, charger: _Charger, limits: Limits, plugged: bool
) -> tuple[int, bool]:
    """Apply one decision; (commands sent, whether the MANUAL session restarted)."""
    if decision.observed:
        return 0, False  # a user's own change seen in the status: no command, nothing to apply
    action = decision.action
    if action == "set_battery":
        wanted_battery = bool(decision.params.get("enabled"))
        if wanted_battery is charger.use_battery:
            return 0, False
        charger.use_battery = wanted_battery
        return 1, False
    if action not in CHARGING_COMMANDS:
        return (1 if action == "patch_schedules" else 0), False
    if action == "set_mode":
        wanted = ChargeMode(str(decision.params.get("mode")))
        if wanted is charger.mode:
            return 0, False
        charger.mode = wanted
        return 1, False
    if not plugged:
        return 0, False
    level = decision.params.get("amps")
    amps = limits.down(int(level)) if isinstance(level, int | float) else limits.high
    if action == "start":
        if charger.on and charger.amps == amps:
            return 0, False
        restarted = charger.on and charger.amps != amps
        charger.on, charger.amps = True, amps
        if restarted:
            charger.session_kwh = 0.0
        return 1, restarted
    if action == "stop":
        if not charger.on:
            return 0, False
        charger.on = False
        charger.session_kwh = 0.0
        return 1, False
    # set_amps
    if charger.amps == amps:
        return 0, False
    charger.amps = amps
    if charger.on:
        charger.session_kwh = 0.0  # a MANUAL level change starts a new session
        return 1, True
    return 1, False


def _drawing_amps(
    charger: _Charger, series: SiteSeries, index: int, limits: Limits, voltage_v: float
) -> int | None:
    """The level the charger draws at in this bucket, by mode (SMART is modelled as GREEN: the
    charger's own automation following the surplus; its AI's tariff moves are not known)."""
    if charger.mode.takes_no_amps:
        if series.missing[index]:
            return None
        surplus_kw = (series.pv_kwh[index] - series.house_kwh[index]) / BUCKET_H
        amps = surplus_kw * 1000 / voltage_v
        return limits.down(amps) if amps >= limits.low else None
    if charger.mode is ChargeMode.SCHEDULED_CHARGING:
        return None
    return charger.amps if charger.on else None
