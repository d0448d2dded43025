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
* Every decision, holds included, is logged when a store is given, batched one transaction
  per simulated day through :meth:`DecisionStore.record_many`.
* The tariff view is built from precomputed 15-minute prices rather than
  :func:`tariff_now` per tick (same fields; a year would otherwise cost millions of lookups).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from optimizer.config import Config
from optimizer.decisions.store import DecisionStore, Outcome
from optimizer.engine.decision import Decision, EngineSettings, Memory
from optimizer.engine.frozen import build
from optimizer.engine.rules import PolicyBase, SolarPlan
from optimizer.engine.snapshot import (
    ChargerView,
    DeparturePlan,
    EnergyBucket,
    Snapshot,
    Sun,
    TariffNow,
    with_local,
)
from optimizer.enlighten.models import ChargeMode
from optimizer.forecast.solar import Site
from optimizer.limits import Limits
from optimizer.observe.surplus import estimate_surplus
from optimizer.planner.causal import CausalOutlooks
from optimizer.planner.outlook import SurplusOutlook
from optimizer.plans import MET_KWH, MORE, overdue
from optimizer.simulate.battery import BatteryFlows, BatteryTrack
from optimizer.simulate.idle import Idle
from optimizer.simulate.series import BUCKET, BUCKET_H, Session, SiteSeries
from optimizer.sun import sun_at
from optimizer.tariffs import PriceSlot, Tariffs

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
    """Precomputed (window, price) per bucket and the TariffNow the engine sees."""

    def __init__(self, tariffs: Tariffs, series: SiteSeries) -> None:
        self.zone = zone = ZoneInfo(series.timezone)
        cache: dict[tuple[int, int, int, int], tuple[str | None, float | None]] = {}
        self.windows: list[tuple[str | None, float | None]] = []
        # Each bucket's start in the site's zone, converted once: for its price here, and for
        # the tick's sun and snapshot (:func:`_snapshot`).
        self.locals = [at.astimezone(zone) for at in series.starts]
        for local in self.locals:
            key = (local.month, local.isoweekday(), local.hour, local.minute)
            found = cache.get(key)
            if found is None:
                found = cache[key] = tariffs.window_at(local)
            self.windows.append(found)
        self.slots = tuple(  # a tuple: each tick's slots ahead are one slice of it
            _price_slot(at, name, price)
            for at, (name, price) in zip(series.starts, self.windows, strict=True)
        )
        # Index of the next change after each bucket (len: none within the series).
        count = len(self.windows)
        self.next_change = [count] * count
        for index in range(count - 2, -1, -1):
            same = self.windows[index + 1] == self.windows[index]
            self.next_change[index] = self.next_change[index + 1] if same else index + 1

    def now(self, index: int) -> TariffNow:
        name, price = self.windows[index]
        change = self.next_change[index]
        if change < len(self.windows) and change - index <= SLOTS_AHEAD * 8:
            at: datetime | None = self.slots[change].start
            next_name, next_price = self.windows[change]
        else:
            at, next_name, next_price = None, None, None
        return build(
            TariffNow,
            window=name,
            price=price,
            next_change_at=at,
            next_window=next_name,
            next_price=next_price,
            slots=self.slots[index : index + SLOTS_AHEAD],
        )


def _price_slot(start: datetime, window: str | None, price: float | None) -> PriceSlot:
    """``PriceSlot(start, start + BUCKET, window, price)``, filled in one step: a replay makes
    one per bucket of its period (:func:`build`'s keyword checks were most of their cost)."""
    slot = object.__new__(PriceSlot)
    slot.__dict__.update(start=start, end=start + BUCKET, window=window, price=price)
    return slot


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
        return build(  # EnergyBucket(...) without its frozen __init__ (every tick)
            EnergyBucket,
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
    """
    if lag_buckets < 1:
        raise ValueError("the engine can only see complete buckets: lag_buckets >= 1")
    count = len(series.starts)
    tariff = _Tariff(config.tariffs, series)
    log = _DayLog(store, run_id, site_id, ZoneInfo(series.timezone))
    # Unlogged, a decision is counted and applied, never read: its words are not built.
    settings = replace(engine_settings(config), words=log.on)
    memory = Memory()
    charger = _Charger()
    home = BatteryTrack(series, config.site.battery) if config.site.battery else None
    ev_kwh = [0.0] * count
    amps_out: list[int | None] = [None] * count
    commands = decisions = 0
    by_action: dict[str, int] = {}
    kw_per_amp = voltage_v / 1000
    restart_share = max(0.0, 1 - restart_s / (BUCKET_H * 3600))
    # A logged row carries its tick's own figures, so only an unlogged replay reuses idle ticks.
    idle = Idle(policies, settings, enabled=skip_idle and store is None)
    planned, outlooks = (
        _planned(series, plans, plan_margin),
        _outlooks(series, policies, config, outlooks, forecast_site),
    )
    for index in range(count):
        now = series.starts[index]
        log.day_of(now)
        number = series.session_index(index)
        session = series.sessions[number] if number >= 0 else None
        charger.follow(number)
        plan = planned[number] if session is not None else None
        view = _view(
            charger,
            plugged=session is not None,
            limits=limits,
            voltage_v=voltage_v,
            sn=charger_sn,
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
            lag_buckets=lag_buckets,
            site_id=site_id,
            outlook=outlooks(index) if outlooks is not None and session is not None else None,
        )
        decided, memory = idle.decide(
            snapshot, view, memory, period=idle.period(snapshot), plugged=session is not None
        )
        restarted = False
        for decision in decided:
            decisions += 1
            by_action[decision.action] = by_action.get(decision.action, 0) + 1
            sent, restarted_now = _apply(decision, charger, limits, session is not None)
            restarted = restarted or restarted_now
            commands += sent
            log.add(decision, now, sent)
        amps = _drawing_amps(charger, series, index, limits, voltage_v)
        if session is not None and amps:
            share = series.fraction(index, session) * (restart_share if restarted else 1.0)
            need = max(0.0, session.energy_kwh - charger.delivered)
            ev_kwh[index] = charger.take(min(need, amps * kw_per_amp * BUCKET_H * share))
            amps_out[index] = amps if ev_kwh[index] > 0 else None
        _step_battery(home, index, ev_kwh[index], charger)
    log.flush()
    return ReplayResult(
        ev_kwh=tuple(ev_kwh),
        amps=tuple(amps_out),
        commands=commands,
        decisions=decisions,
        by_action=by_action,
        battery=home.flows() if home is not None else None,
    )


class _DayLog:
    """The decisions to log, written one transaction per simulated day (nothing without a
    store and run)."""

    def __init__(
        self, store: DecisionStore | None, run_id: str | None, site_id: int | None, zone: ZoneInfo
    ) -> None:
        self.store, self.run_id, self.site_id, self.zone = store, run_id, site_id, zone
        self.on = store is not None and run_id is not None
        self.pending: list[tuple[Decision, datetime, Outcome, int]] = []
        self.day: object = None

    def day_of(self, now: datetime) -> None:
        if not self.on:
            return
        today = now.astimezone(self.zone).date()
        if today != self.day:
            self.flush()
        self.day = today

    def add(self, decision: Decision, now: datetime, sent: int) -> None:
        if self.on:
            self.pending.append((decision, now, "applied" if sent else "noop", sent))

    def flush(self) -> None:
        if self.store is not None and self.run_id is not None and self.pending:
            self.store.record_many(
                self.pending, run_id=self.run_id, mode="simulation", site_id=self.site_id
            )
            self.pending = []


def _outlooks(
    series: SiteSeries,
    policies: Sequence[PolicyBase],
    config: Config,
    given: Callable[[int], SurplusOutlook | None] | None,
    site: Site | None,
) -> Callable[[int], SurplusOutlook | None] | None:
    """The outlooks given, else the causal forecast when a look-ahead policy needs one."""
    if given is None and any(isinstance(p, SolarPlan) and p.enabled for p in policies):
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
    outlook: SurplusOutlook | None = None,
) -> Snapshot:
    """What the live service would see at the start of bucket ``index``."""
    now = series.starts[index]
    local = tariff.locals[index]  # converted once, for the sun's day and the snapshot
    scale_by_sun = config.surplus.scale_by_sun and config.site.latitude is not None
    bucket = (
        _seen_bucket(series, index, lag_buckets, ev_kwh, home) if index >= lag_buckets else None
    )
    sun_now = _sun(config, now, series.timezone, local)
    sun_mid = None
    if bucket is not None and scale_by_sun:
        sun_mid = _sun(config, bucket.start + BUCKET / 2, series.timezone)
    surplus = estimate_surplus(
        bucket,
        now=now,
        charger_draw_w=view.draw_w,
        latest=None,
        config=config.surplus,
        sun_now=sun_now,
        sun_mid=sun_mid,
        timezone=series.timezone,
    )
    snapshot = build(  # Snapshot(...) without its frozen __init__
        Snapshot,
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
