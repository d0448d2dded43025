"""Settled ticks of a replay: an evaluation that only held, reused while nothing it read changes.

A replay runs the engine at every tick, but most ticks of a year have no car plugged in, and
there a settled evaluation (holds only, the memory left as it was) repeats itself until
something a policy compares crosses a line: a tariff window, the sun, a threshold, a timer.
:class:`Idle` keys each idle tick by the class of its snapshot (what no policy can tell
apart) and hands back the last settled evaluation of the same class instead of running the
engine again. The minute replay (optimizer/simulate/minutes.py) and the 15-minute replay
(optimizer/simulate/replay.py, when it logs no decisions: a logged row carries the tick's own
figures) share it; tests/test_minute_replay.py and tests/test_replay_idle.py check that a
replay with it gives the same figures as one without.

Ticks with a car plugged in are reused the same way (:meth:`Idle._plugged` adds what their
policies read besides: the age of every moment in the charger's memory against every
duration, the level a running charger would follow, the level a short tariff target would
charge at); tests/test_replay_plugged.py checks the identity on drawn rules.
"""

from __future__ import annotations

import dataclasses
import math
from bisect import bisect_left, bisect_right
from collections.abc import Hashable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from optimizer.decisions.dedupe import reason_shape
from optimizer.engine.conditions import holds
from optimizer.engine.decision import ChargerMemory, Decision, EngineSettings, Memory, PolicyState
from optimizer.engine.evaluate import LEVEL_WINDOW, evaluate
from optimizer.engine.frozen import maker
from optimizer.engine.kinds.common import Context
from optimizer.engine.kinds.excess_solar import (
    LATEST_START_SLACK,
    SurplusPlan,
    available,
    available_of,
    open_part,
    timers,
)
from optimizer.engine.kinds.tariff_window import target_answer, target_level
from optimizer.engine.rules import (
    BatteryUse,
    ChargeModePolicy,
    ExcessSolar,
    GreenMode,
    PolicyBase,
    ScheduleSync,
    TariffWindow,
)
from optimizer.engine.snapshot import ChargerView, Snapshot, Sun, Surplus
from optimizer.limits import Limits
from optimizer.sun import elevation_beside
from optimizer.timespec import TimeRange

_new_context = maker(Context)

__all__ = ["Idle"]

PLAN_BLIND = (TariffWindow, BatteryUse, ChargeModePolicy, GreenMode, ScheduleSync)
"""The kinds that never read a departure plan (only excess_solar and solar_plan do)."""

ENGINE_DURATIONS = (timedelta(0), timedelta(hours=1), LEVEL_WINDOW, LATEST_START_SLACK)
"""The engine's own durations: zero (a moment passed or not), the hour of
``max_changes_per_hour`` (Context.level_changes_last_hour), how long level changes are kept,
a departure plan's start slack (plans are never reused; listed all the same)."""


def _sides(value: float | None, lines: Sequence[float]) -> tuple[int, int] | None:
    """Which side of each line ``value`` is on, None when unknown: with the lines sorted, how
    many it is above and how many at or above (a flag per line of each, in two ints)."""
    if value is None or not math.isfinite(value):
        return None
    return bisect_left(lines, value), bisect_right(lines, value)


def _surplus_thresholds(policies: Sequence[PolicyBase], *, plugged: bool) -> tuple[float, ...]:
    """Every surplus level a policy compares the surplus with at a tick with a car plugged in
    (``plugged``), or without one: then only the rules' ``surplus_above`` and
    ``surplus_below``. With no car no policy reads the surplus beyond its conditions but an
    excess-solar policy's hysteresis timers, which the key holds on their own lines (the
    surplus each may use against its start and stop thresholds): its sign and the thresholds
    in raw watts cost a year of the sample about 1,000 evaluations that changed nothing
    (tests/test_idle_key.py holds the claim on drawn snapshots)."""
    found: set[float] = {0.0} if plugged else set()
    for policy in policies:
        when = policy.when
        for value in (when.surplus_above, when.surplus_below):
            if value is not None:
                found.add(float(value))
        if plugged and isinstance(policy, ExcessSolar):
            for value in (policy.start_threshold_w, policy.stop_threshold_w):
                if value is not None:
                    found.add(float(value))
                    found.add(float(value) + policy.reserve_w)
    return tuple(sorted(found))


class Idle:
    """Idle ticks that may reuse the last evaluation instead of running the engine again.

    An evaluation at an idle tick (no car plugged in) that only held and left the memory as it
    was given (apart from the tick each control was last seen at: :func:`_settled`) is reused
    for the following ticks with the same key (:meth:`key_parts`), the class of their snapshot:
    two ticks with the same key differ only in what no policy can react to. The ``period`` the
    caller passes fixes what changes with time: the minute replay passes the bucket (its tariff
    window, sun, quarter-hour, day and month), the 15-minute replay :meth:`period` (the tariff
    window and price, which side of each sun and battery threshold, the weekday where a rule
    reads it, and the month: every tick is another bucket there, so a bucket never repeats);
    the view fixes the charger (plugged state, mode, level); the surplus counts by which side
    of every threshold a policy compares it with it is on (unknown apart; with no car, only
    the rules' conditions' thresholds: :func:`_surplus_thresholds`); every ``when: time``
    range is tested at the minute; with a car, every running hysteresis timer counts by
    whether its delay has passed; every excess-solar policy by which side of its own start and
    stop thresholds (the engine's ``SurplusPlan``, its defaults included) the surplus it may
    use is on; the charger memory by whether its last command has settled (a user's change is
    looked for only after that). With no car, an evaluation that held and only started or
    cleared a timer is kept too, with the memory it returned (:meth:`decide`).
    tests/test_idle_key.py holds each of these on drawn snapshots.
    """

    def __init__(
        self, policies: Sequence[PolicyBase], settings: EngineSettings, *, enabled: bool
    ) -> None:
        self.policies = policies
        self.settings = settings
        self.enabled = enabled
        self.thresholds = _surplus_thresholds(policies, plugged=True)
        self.unplugged_thresholds = _surplus_thresholds(policies, plugged=False)
        self.times = [p.when.time for p in policies if p.when.time is not None]
        self.solar = [p for p in policies if isinstance(p, ExcessSolar)]
        self.solar_states = tuple(f"{p.name}/" for p in self.solar)  # their memory keys' heads
        self.targets = [p for p in policies if isinstance(p, TariffWindow) and p.target]
        # A departure plan is keyed for excess-solar policies (_departure_part); with a policy
        # of another kind that reads plans (solar_plan) a tick with a plan is evaluated.
        self.plans_keyed = all(isinstance(p, (ExcessSolar, *PLAN_BLIND)) for p in policies)
        # Of these kinds only a ``days`` condition reads the weekday (a tariff's days are in
        # its window and price): without one, midnight is no reason to evaluate (about 470
        # evaluations a year of the sample that changed nothing).
        self.weekdays = not self.plans_keyed or any(p.when.days is not None for p in policies)
        self.durations = _durations(policies, settings)
        self.last: tuple[Any, ...] | None = None
        self.decided: list[Decision] = []
        # The last view's limits and excess-solar plans (SurplusPlan.of: the view's alone).
        self._view: ChargerView | None = None
        self._limits = Limits(6, 32, 1)
        self._plans: tuple[SurplusPlan, ...] = ()
        whens = [p.when for p in policies]
        self.sun_lines = sorted(
            {0.0} | {float(x) for w in whens for x in (w.sun_above, w.sun_below) if x is not None}
        )
        self.soc_lines = sorted(
            {
                float(x)
                for w in whens
                for x in (w.battery_soc_above, w.battery_soc_below)
                if x is not None
            }
        )

    def forget(self) -> None:
        """Drop the evaluation kept for reuse (the next tick evaluates)."""
        self.last, self.decided = None, []

    def horizon(self) -> timedelta:
        """The longest duration a key compares an age with: two moments both older than it
        are on the same side of every duration, now and at every later tick."""
        return self.durations[-1]

    def period(self, snapshot: Snapshot) -> Hashable:
        """What of the time a policy can react to at an idle tick, for the 15-minute replay:
        the tariff window and its price, the side of every sun elevation and battery level a
        condition compares with (unknown apart), the weekday (where a rule reads it) and the
        month."""
        tariff = snapshot.tariff
        return self._period(
            tariff.window, tariff.price, snapshot.sun, snapshot.battery_soc_pct, snapshot.local
        )

    def _period(
        self,
        window: str | None,
        price: float | None,
        sun: Sun | None,
        soc: float | None,
        local: datetime,
    ) -> tuple[Any, ...]:
        elevation = None if sun is None else elevation_beside(sun, self.sun_lines)
        return (
            window,
            price,
            _sides(elevation, self.sun_lines),
            _sides(soc, self.soc_lines),
            local.isoweekday() if self.weekdays else 0,
            local.month,
        )

    def repeats(
        self,
        view: ChargerView,
        memory: Memory,
        *,
        now: datetime,
        local: datetime,
        tariff: tuple[str | None, float | None],
        sun: Sun | None,
        surplus: Surplus,
    ) -> bool:
        """Whether a tick with no car (``view``) and no home battery, of these figures, has
        the kept evaluation's key: :meth:`key_parts` without a snapshot, for a replay that
        counts such ticks without building one (they are most of a year's ticks, and their
        snapshots were most of what a replay spent beside the engine)."""
        last = self.last
        if last is None or not self._kept_without_car(view) or last[1] is not view:
            return False
        return bool(
            self._period(tariff[0], tariff[1], sun, None, local) == last[0]
            and _sides(surplus.pv_minus_house_w, self.unplugged_thresholds) == last[2]
            and surplus.source == last[3]
            and _inside(self.times, local) == last[4]
            and _settled_at(memory, view.sn, now, self.settings.settle) == last[6]
            and _hysteresis(self.solar, self._plans, surplus) == last[7]
        )

    def key_parts(
        self, snapshot: Snapshot, view: ChargerView, period: Hashable, memory: Memory
    ) -> Iterator[Any]:
        """The tick's key, the class of its snapshot, part by part, the cheap parts first:
        :meth:`decide` compares each with the last key's as it comes, stops at the first that
        differs and works the rest out only for an evaluation worth keeping (an unsettled one,
        a third of those a year runs, needs none). A tick whose class cannot be told without
        running its policies ends with :data:`_NO_KEY`."""
        yield period
        yield view
        car = view.plugged_in or view.charging
        lines = self.thresholds if car else self.unplugged_thresholds
        yield _sides(snapshot.surplus.pv_minus_house_w, lines)
        yield snapshot.surplus.source
        yield _inside(self.times, snapshot.local)
        # Whether a timer's delay has passed decides a start or a stop, never without a car.
        yield _elapsed(snapshot, memory, self.solar, view.sn) if car else ()
        settled = _settled_at(memory, view.sn, snapshot.now, self.settings.settle)
        yield settled
        known = memory.charger(view.sn)
        if view is not self._view:  # most ticks see the charger as the last one did
            self._view, self._limits = view, Limits.of(view, self.settings.site_max_amps)
            self._plans = ()
        ctx = _new_context(
            snapshot=snapshot,
            charger=view,
            memory=known,
            limits=self._limits,
            delivered_kwh=0.0,
            tariffs=self.settings.tariffs,
            words=True,
        )
        if not self._plans and self.solar:
            self._plans = tuple(SurplusPlan.of(policy, ctx) for policy in self.solar)
        plans = self._plans
        yield _hysteresis(self.solar, plans, snapshot.surplus)
        if view.plugged_in:
            plugged = self._plugged(snapshot, view, memory, ctx, plans, settled=settled)
            yield _NO_KEY if plugged is None else plugged

    def _plugged(
        self,
        snapshot: Snapshot,
        view: ChargerView,
        memory: Memory,
        ctx: Context,
        plans: Sequence[SurplusPlan],
        *,
        settled: bool,
    ) -> tuple[Any, ...] | None:
        """What more a plugged-in tick's policies read, or None when its class cannot be told
        without running them.

        With a car plugged in the policies also compare the time since each moment the memory
        holds (the last command, start, stop, plug-in, level changes, a control's start) with
        their durations (minimum on/off times, delays, the settle time, the hour of
        ``max_changes_per_hour``), and a running charger follows the surplus by level: the key
        then holds, for every such moment, which side of every duration its age is on, and
        while charging the level each excess-solar policy would pick. A ``tariff_window``
        target still short while its conditions hold picks the cheapest slots before its
        ``by``, which no side captures: the level it would charge at now goes into the key
        (:func:`target_level`: its plan without the words; a logged replay adds the shape of
        its words, which name the slots it picked). A departure plan adds what it decides
        for each excess-solar policy (:func:`_departure_part`; in a logged replay the shape of
        the time left its reason quotes), except with a policy of another kind that reads
        plans, where such ticks are evaluated; a command still settling is always evaluated."""
        if not settled or (view.plan is not None and not self.plans_keyed):
            return None
        known = ctx.memory
        delivered = max(0.0, known.energy_base_kwh + (known.session_kwh_seen or 0.0))
        due: tuple[Any, ...] = ()
        if view.plan is not None:
            planned = dataclasses.replace(ctx, delivered_kwh=delivered)
            due = tuple(
                _departure_part(policy, plan, planned, words=self.settings.words)
                for policy, plan in zip(self.solar, plans, strict=True)
            )
        short: list[TariffWindow] = []
        for policy in self.targets:
            target = policy.target
            if target is None or delivered >= target.energy_kwh:
                continue
            if policy.chargers is not None and view.sn not in policy.chargers:
                continue
            if holds(policy.when, snapshot, view):
                short.append(policy)
        asked = _Asked(ctx, delivered, short, words=self.settings.words)
        ages = tuple(_ages(snapshot.now, _moments(known), self.durations))
        levels: tuple[int | None, ...] = ()
        if view.charging:
            levels = tuple(
                None if (watts := available(policy, ctx)) is None else plan.level(watts, ctx)
                for policy, plan in zip(self.solar, plans, strict=True)
            )
        return ages, levels, due, asked  # last: a tuple compares it only when all else is equal

    def _kept_without_car(self, view: ChargerView) -> bool:
        """Whether the kept key is a tick's with no car (:data:`_UNPLUGGED_PARTS`, no plugged
        part after the timers' sides) and ``view`` is one with no car, the charger as the
        kept tick saw it: then a key that differs first in its last part differs only there
        (:meth:`decide`), and :meth:`repeats` may compare the rest without a snapshot."""
        last = self.last
        return (
            last is not None
            and len(last) == _UNPLUGGED_PARTS
            and not (view.plugged_in or view.charging)
            and view is self._view
        )

    def timers_moved(self, snapshot: Snapshot, view: ChargerView, memory: Memory) -> Memory:
        """The memory the engine would return at a tick with no car whose key differs from
        the kept evaluation's in the timers' sides alone: each excess-solar policy whose
        conditions hold moves its timers (``excess_solar.timers``, then no departure basis,
        as its ``propose`` does with no car) and nothing else changes. Its decisions are the
        kept ones: with no car no policy reads those timers. A year of the sample without a
        car moved them about 1,450 times, each an evaluation before.
        tests/test_idle_key.py holds it to the engine on drawn ticks."""
        sn = view.sn
        states = dict(memory.policies)
        for policy, plan in zip(self.solar, self._plans, strict=True):
            if policy.chargers is not None and sn not in policy.chargers:
                continue
            key = f"{policy.name}/{sn}"
            if not (policy.enabled and holds(policy.when, snapshot, view)):
                states.pop(key, None)
                continue
            watts = available_of(policy, snapshot.surplus)
            was = memory.policy(policy.name, sn)
            states[key] = timers(was, watts, plan, snapshot.now).updated(basis=None)
        return memory.updated(policies=states)

    def held(self, decided: Sequence[Decision]) -> bool:
        """Whether ``decided`` is the kept evaluation (:meth:`decide` handed it back): holds
        only, none observed, so a replay has nothing to apply and only counts them."""
        return decided is self.decided and bool(decided)

    def decide(
        self,
        snapshot: Snapshot,
        view: ChargerView,
        memory: Memory,
        *,
        period: Hashable,
        plugged: bool,
    ) -> tuple[list[Decision], Memory]:
        """``evaluate``'s answer, or at an idle tick of the last settled one's class its holds
        again (the memory unchanged; with no car and only the surplus's side of an
        excess-solar threshold moved, the timers moved as the engine moves them)."""
        if not self.enabled:
            return evaluate(snapshot, self.policies, memory, settings=self.settings)
        parts = self.key_parts(snapshot, view, period, memory)
        seen = _matched(parts, self.last)
        if seen is None:
            return self.decided, memory
        if len(seen) == _UNPLUGGED_PARTS and self._kept_without_car(view):
            self.last = tuple(seen)
            return self.decided, self.timers_moved(snapshot, view, memory)
        decided, returned = evaluate(snapshot, self.policies, memory, settings=self.settings)
        if _settled(decided, memory, returned):
            seen.extend(parts)  # the parts not compared (the evaluation left its inputs alone)
            if seen[-1] is not _NO_KEY:
                self.last, self.decided = tuple(seen), decided
                return decided, returned
        elif not (view.plugged_in or view.charging) and (
            _timers_only(decided, memory, returned, self.solar_states)
            or (not self.settings.words and _holds_alike(decided, memory, returned))
        ):
            # With no car the surplus crossed an excess-solar threshold: the evaluation only
            # started or cleared its timer, which the memory it returns holds. Evaluated again
            # with that memory it would hold alike and keep it (no policy without a car reads
            # those timers, and a timer already set or cleared stays so on the same side): the
            # next tick of this class, the key taken with that memory, repeats it. It spared a
            # year of the sample about 1,200 evaluations, one per such crossing.
            # Without words (an unlogged replay) the same holds of a control passed to the
            # tick's winner (evaluated again, the winner keeps it, since and all) and of a
            # policy's state coming or going with its conditions: about 1,300 more a year.
            keyed = list(self.key_parts(snapshot, view, period, returned))
            if keyed[-1] is not _NO_KEY:
                self.last, self.decided = tuple(keyed), list(decided)
                return decided, returned
        self.last, self.decided = None, []
        return decided, returned


_NO_KEY = object()
"""The last part of a tick whose class cannot be told without running its policies."""

_UNPLUGGED_PARTS = 8
"""The parts of a key with no car (no :meth:`Idle._plugged` part)."""


def _inside(times: Sequence[tuple[TimeRange, ...]], local: datetime) -> tuple[bool, ...]:
    """Whether ``local`` is in each rule's ``when: time`` ranges."""
    return tuple(any(r.contains_time(local) for r in ranges) for ranges in times)


def _settled_at(memory: Memory, sn: str, now: datetime, settle: timedelta) -> bool:
    """Whether the charger's last command has settled at ``now``."""
    commanded_at = memory.charger(sn).commanded_at
    return commanded_at is None or now - commanded_at >= settle


def _hysteresis(
    solar: Sequence[ExcessSolar], plans: Sequence[SurplusPlan], surplus: Surplus
) -> tuple[tuple[bool, bool] | None, ...]:
    """Per excess-solar policy, the sides of its start and stop thresholds its timers see."""
    found: list[tuple[bool, bool] | None] = []
    for policy, plan in zip(solar, plans, strict=True):
        watts = available_of(policy, surplus)
        found.append(None if watts is None else (watts >= plan.start_w, watts < plan.stop_w))
    return tuple(found)


def _matched(parts: Iterator[Any], last: tuple[Any, ...] | None) -> list[Any] | None:
    """None when ``parts`` are ``last``'s, part for part, as ``tuple(parts) == last`` would
    tell; else the parts taken until the first that differs (all of them without a last)."""
    if last is None:
        return []
    seen: list[Any] = []
    append, size = seen.append, len(last)
    for before, part in zip(last, parts, strict=False):  # ``last`` first: its end takes none
        append(part)
        if part is _NO_KEY or (part is not before and part != before):
            return seen
    if len(seen) < size:
        return seen  # the parts ended first
    for part in parts:  # one part more than ``last`` has
        append(part)
        return seen
    return None


class _Asked:
    """The level each short tariff target of a tick would charge at now (None: it waits),
    asked only when compared: a key's other parts decide most comparisons. With the view in
    the key, the level fixes what the target proposes (start, a level change, a hold or a
    stop, and the MANUAL mode it claims); its words are not built (:func:`target_level`),
    except in a logged replay (``words``), whose log tells holds apart by what they say: there
    the shape of each target's reason is part of the answer (:func:`target_answer`)."""

    __slots__ = ("_answer", "ctx", "delivered", "short", "words")

    def __init__(
        self, ctx: Context, delivered: float, short: Sequence[TariffWindow], *, words: bool
    ) -> None:
        self.ctx, self.delivered, self.short, self.words = ctx, delivered, short, words
        self._answer: tuple[Any, ...] | None = None

    def answer(self) -> tuple[Any, ...]:
        if self._answer is None:
            # The energy since plug-in, as the engine will count it (the key's context has 0).
            ctx = (
                dataclasses.replace(self.ctx, delivered_kwh=self.delivered)
                if self.short
                else self.ctx
            )
            if self.words:  # a logged replay: what they say too, numbers aside (as its log)
                answers = [target_answer(policy, ctx) for policy in self.short]
                self._answer = tuple((level, reason_shape(why or "")) for level, why in answers)
            else:
                self._answer = tuple(target_level(policy, ctx) for policy in self.short)
        return self._answer

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Asked) and self.answer() == other.answer()

    def __hash__(self) -> int:
        return hash(self.answer())


def _departure_part(
    policy: ExcessSolar, plan: SurplusPlan, ctx: Context, *, words: bool
) -> tuple[Any, ...] | None:
    """What an excess-solar policy's departure plan decides at a tick (excess_solar's
    ``_for_departure``): None when the plan asks nothing (none, met or past); else whether its
    last moment to charge at full power has come, whether the surplus (with the reserve) pays
    for a departure start, and the level the whole surplus pays for. The rest of what it reads
    (the charger's level, its last stop's age) is in the key already. With ``words`` (a logged
    replay), also the shape of the last moment's reason: each span in seconds or minutes, and
    whether the plan can still all be delivered."""
    due = open_part(policy, ctx, plan)
    if due is None:
        return None
    _, left, at_full = due
    if left - at_full <= LATEST_START_SLACK:
        if words:
            minute = timedelta(minutes=1)
            return True, at_full < minute, left < minute, left >= at_full
        return (True,)
    watts = available(policy, ctx)
    if watts is None:
        return (False, None)
    watts += policy.reserve_w
    if watts < policy.departure_surplus_w:
        return (False, False)
    return (False, True, plan.level(watts, ctx, whole_surplus=True))


def _durations(policies: Sequence[PolicyBase], settings: EngineSettings) -> tuple[timedelta, ...]:
    """Every duration a policy or the engine compares an age with: each ``timedelta`` field of
    the policies (found by type, so a new one is never missed), the settle time, the
    override hold and :data:`ENGINE_DURATIONS`."""
    found = {*ENGINE_DURATIONS, settings.settle, settings.override_hold}
    for policy in policies:
        found.update(v for v in policy.__dict__.values() if isinstance(v, timedelta))
    return tuple(sorted(found))


def _moments(known: ChargerMemory) -> Iterable[datetime | None]:
    """Every moment in a charger's memory whose age a decision may compare (a control's
    ``seen_at`` only names a window's end in a reason; see :func:`_same_but_seen`)."""
    yield known.commanded_at
    yield known.started_at
    yield known.stopped_at
    yield known.override_until
    yield known.plugged_in_since
    yield from known.level_changes
    for control in known.control.values():
        yield control.since
        yield control.until


def _ages(
    now: datetime, moments: Iterable[datetime | None], durations: Sequence[timedelta]
) -> Iterable[tuple[int, int] | None]:
    """Per moment, which side of every duration its age is on: with the durations sorted, how
    many it is past and how many at or past (the same as a flag per duration, in two ints)."""
    for moment in moments:
        if moment is None:
            yield None
            continue
        age = now - moment
        yield bisect_left(durations, age), bisect_right(durations, age)


def _elapsed(
    snapshot: Snapshot, memory: Memory, solar: Sequence[ExcessSolar], sn: str
) -> tuple[bool | None, ...]:
    """Per hysteresis timer in the memory, whether its delay has passed (None: not running)."""
    found: list[bool | None] = []
    for policy in solar:
        state = memory.policy(policy.name, sn)
        for since, delay in (
            (state.above_since, policy.start_delay),
            (state.below_since, policy.stop_delay),
        ):
            found.append(None if since is None else snapshot.now - since >= delay)
    return tuple(found)


def _settled(decided: Sequence[Decision], given: Memory, returned: Memory) -> bool:
    """The evaluation only held, set no timer and left the memory as given (apart from the
    tick each control was last seen at): the next ticks of the same class would repeat it."""
    return _only_held(decided, returned) and _same_but_seen(given, returned)


def _only_held(decided: Sequence[Decision], returned: Memory) -> bool:
    """Holds only, none observed, and no restart or override under way in the memory."""
    if any(d.action != "hold" or d.observed for d in decided):
        return False
    return not any(
        charger.restart is not None or charger.overrides or charger.override_until
        for charger in returned.chargers.values()
    )


def _holds_alike(decided: Sequence[Decision], given: Memory, returned: Memory) -> bool:
    """The evaluation only held, and changed nothing but what only words read: the controls
    (who decides each target, since when, in which window: a hand-over's reason) and the
    policies' states (timers and reasons to quote; their coming and going with the
    conditions). Evaluated again with the memory it returned, a tick without words and
    without a car holds alike and keeps that memory (tests/test_idle_key.py)."""
    return (
        _only_held(decided, returned)
        and given.version == returned.version
        and _chargers_same_but_seen(given, returned, controls=False)
    )


def _same_but_seen(given: Memory, returned: Memory) -> bool:
    """The two memories hold the same apart from each control's ``seen_at``. Field by field
    rather than through ``model_dump`` (a third of an idle tick's cost); the same verdict."""
    if given.version != returned.version or given.policies != returned.policies:
        return False
    return _chargers_same_but_seen(given, returned)


def _chargers_same_but_seen(given: Memory, returned: Memory, *, controls: bool = True) -> bool:
    """The chargers' memories hold the same apart from each control's ``seen_at`` (with
    ``controls`` False, apart from their controls altogether)."""
    if given.chargers.keys() != returned.chargers.keys():
        return False
    for sn, before in given.chargers.items():
        after = returned.chargers[sn]
        if before is after:
            continue
        if {**before.__dict__, "control": None} != {**after.__dict__, "control": None}:
            return False
        if not controls:
            continue
        if before.control.keys() != after.control.keys():
            return False
        for target, was in before.control.items():
            now = after.control[target]
            if {**was.__dict__, "seen_at": None} != {**now.__dict__, "seen_at": None}:
                return False
    return True


_UNTIMED = {"above_since": None, "below_since": None}


def _timers_only(
    decided: Sequence[Decision], given: Memory, returned: Memory, solar: tuple[str, ...]
) -> bool:
    """The evaluation only held and changed nothing but the hysteresis timers of excess-solar
    policies (their states' keys start with one of ``solar``) and each control's ``seen_at``."""
    if not _only_held(decided, returned) or given.version != returned.version:
        return False
    if not _chargers_same_but_seen(given, returned):
        return False
    before, after = given.policies, returned.policies
    blank = PolicyState()
    for key in before.keys() | after.keys():
        was, now = before.get(key, blank), after.get(key, blank)
        if was is now or was == now:
            continue
        if not key.startswith(solar):
            return False
        if {**was.__dict__, **_UNTIMED} != {**now.__dict__, **_UNTIMED}:
            return False
    return True
