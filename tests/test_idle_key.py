"""A replay tick's key (optimizer/simulate/idle.py) holds all a policy can react to: on drawn
snapshots, memories and settings, two surpluses an unplugged tick's key cannot tell apart give
the same decisions and the same memory, and so do two days or two moments the key cannot tell
apart (it reads the weekday only for a rule with a ``days`` condition, a timer's age only with a
car); an evaluation without a car that only set or cleared a timer holds alike on the memory it
returned, and keeps it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.decisions.dedupe import said
from optimizer.engine.decision import ChargerMemory, Control, Decision, EngineSettings, Memory
from optimizer.engine.evaluate import evaluate
from optimizer.engine.snapshot import Snapshot, Sun, Surplus
from optimizer.simulate.idle import Idle, _holds_alike, _settled, _timers_only
from tests.profiles import examples
from tests.test_engine_properties import (
    EXAMPLE,
    TARIFFS,
    engine_settings,
    memories,
    moments,
    snapshots,
)
from tests.test_engine_sim import T0, make_charger, policies

# The example's rules and a rule of each kind with surplus conditions on both sides.
RULES = (
    *EXAMPLE,
    *policies(
        {"name": "mode-in-sun", "kind": "charge_mode", "mode": "green", "priority": 25,
         "when": {"surplus_above": 1500}},
        {"name": "battery-dull", "kind": "battery_use", "use_battery": True, "priority": 15,
         "when": {"surplus_below": -400}},
        {"name": "night-dull", "kind": "tariff_window", "windows": "off_peak", "priority": 65,
         "when": {"surplus_below": 200, "surplus_above": -2000}},
        {"name": "sun-set", "kind": "excess_solar", "priority": 45, "chargers": ["B2"],
         "start_threshold_w": 2400, "stop_threshold_w": 800, "reserve_w": 0},
    ),
)  # fmt: skip

surpluses = st.floats(-6000, 9000) | st.sampled_from([-2000.0, -400.0, 0.0, 200.0, 1500.0, 3000.0])


def _told(decisions: list[Decision]) -> list[tuple[Any, ...]]:
    """What a replay applies and counts, and what its log tells holds apart by (``said``)."""
    return [(d.charger_sn, d.target, d.observed, said(d)) for d in decisions]


def _with_surplus(snapshot: Snapshot, watts: float) -> Snapshot:
    return replace(snapshot, surplus=replace(snapshot.surplus, pv_minus_house_w=watts))


@settings(max_examples=examples(120))
@given(
    snapshot=snapshots(),
    memory=memories(),
    engine=engine_settings,
    first=surpluses,
    second=surpluses,
)
def test_surpluses_an_unplugged_key_cannot_tell_apart_decide_alike(
    snapshot: Snapshot,
    memory: Memory,
    engine: EngineSettings,
    first: float,
    second: float,
) -> None:
    view = replace(snapshot.chargers[0], plugged_in=False, charging=False)
    base = replace(snapshot, chargers=(view,))
    idle = Idle(RULES, engine, enabled=True)
    ticks = [_with_surplus(base, watts) for watts in (first, second)]
    keys = [list(idle.key_parts(t, view, idle.period(t), memory)) for t in ticks]
    if keys[0] != keys[1]:
        return
    (one, kept), (other, left) = (evaluate(t, RULES, memory, settings=engine) for t in ticks)
    assert _told(one) == _told(other)
    assert kept.model_dump() == left.model_dump()


def test_with_no_car_the_key_keeps_only_the_conditions_lines() -> None:
    """The lines the two keys compare: the conditions' alone without a car; with one, zero and
    each excess-solar rule's own thresholds (raw and past its reserve) besides."""
    solar = policies(
        {"name": "sun", "kind": "excess_solar", "start_threshold_w": 1800,
         "stop_threshold_w": 700, "reserve_w": 250},
    )  # fmt: skip
    idle = Idle((*RULES, *solar), EngineSettings(), enabled=True)
    conditions = (-2000.0, -400.0, 200.0, 1500.0, 3000.0)
    assert idle.unplugged_thresholds == conditions
    solar_lines = {0.0, 700.0, 950.0, 1800.0, 2050.0, 800.0, 2400.0}
    assert idle.thresholds == tuple(sorted({*conditions, *solar_lines}))


def _days_later(snapshot: Snapshot, days: int) -> Snapshot:
    now = snapshot.now + timedelta(days=days)
    slots = TARIFFS.slots(now, now + timedelta(hours=20), timezone=snapshot.timezone)
    tariff = replace(snapshot.tariff, slots=tuple(slots) if snapshot.tariff.slots else ())
    return replace(snapshot, now=now, tariff=tariff)


def _reused_alike(base: Snapshot, other: Snapshot, memory: Memory, engine: EngineSettings) -> None:
    """The memory as ticks at ``base`` leave it, as a replay's (not settled in three: nothing
    to check); where ``other``'s key is ``base``'s, its evaluation is settled too and says
    what ``base``'s said, as reusing ``base``'s would."""
    for _ in range(3):
        one, kept = evaluate(base, RULES, memory, settings=engine)
        if _settled(one, memory, kept):
            break
        memory = kept
    else:
        return
    view, idle = base.chargers[0], Idle(RULES, engine, enabled=True)
    keys = [list(idle.key_parts(t, view, idle.period(t), memory)) for t in (base, other)]
    if keys[0] != keys[1]:
        return
    two, left = evaluate(other, RULES, memory, settings=engine)
    assert _told(one) == _told(two)
    assert _settled(two, memory, left)


@settings(max_examples=examples(90))
@given(
    snapshot=snapshots(),
    memory=memories(),
    engine=engine_settings,
    first=st.integers(1, 3),
    later=st.integers(1, 6),
)
def test_days_a_key_cannot_tell_apart_decide_alike(
    snapshot: Snapshot,
    memory: Memory,
    engine: EngineSettings,
    first: int,
    later: int,
) -> None:
    """A settled evaluation is reused on a later day of the same key: there it is settled too
    and decides alike (the drawn memory's moments are a day old or more on both days)."""
    view = snapshot.chargers[0]
    base = replace(_days_later(snapshot, first), chargers=(view,))
    other = _days_later(base, later)
    assert not Idle(RULES, engine, enabled=True).weekdays
    _reused_alike(base, other, memory, engine)


@settings(max_examples=examples(90))
@given(
    snapshot=snapshots(),
    memory=memories(),
    engine=engine_settings,
    minutes=st.integers(1, 240),
)
def test_moments_an_unplugged_key_cannot_tell_apart_decide_alike(
    snapshot: Snapshot, memory: Memory, engine: EngineSettings, minutes: int
) -> None:
    """Minutes apart with no car, the timers' ages out of the key: a settled evaluation is
    settled later in the same class too, and decides alike. The level changes are dropped
    from the drawn memory: an unplugged key never held their ages (the engine forgets one
    an hour old when it next evaluates, and counts only the last hour's either way)."""
    chargers = {sn: known.updated(level_changes=[]) for sn, known in memory.chargers.items()}
    memory = memory.updated(chargers=chargers)
    view = replace(snapshot.chargers[0], plugged_in=False, charging=False)
    base = replace(snapshot, chargers=(view,))
    other = replace(base, now=base.now + timedelta(minutes=minutes))
    _reused_alike(base, other, memory, engine)


controls = st.dictionaries(
    st.sampled_from(["charging", "mode", "battery", "schedules"]),
    st.builds(
        Control,
        policy=st.sampled_from([p.name for p in RULES]),
        since=moments,
        window=st.sampled_from([None, "off_peak", "peak"]),
    ),
)


with_or_without_words = engine_settings.flatmap(
    lambda engine: st.sampled_from([engine, replace(engine, words=False)])
)


@settings(max_examples=examples(250))
@given(
    snapshot=snapshots(),
    memory=memories(),
    control=controls,
    engine=with_or_without_words,
    watts=surpluses,
)
def test_an_unplugged_evaluation_kept_with_its_memory_holds_alike_there(
    snapshot: Snapshot,
    memory: Memory,
    control: dict[str, Control],
    engine: EngineSettings,
    watts: float,
) -> None:
    """Idle.decide keeps such an evaluation for the next tick of its class, with the memory it
    returned: evaluated again there it holds alike and leaves that memory as it is. With words
    (a logged replay) only a timer's move is kept so, and alike means words and all: a hold
    whose control passed says so only once (the drawn memory has its controls drawn too).
    Without words a control passed and a policy's state coming or going are kept too, and
    alike means target for target."""
    view = replace(snapshot.chargers[0], plugged_in=False, charging=False)
    tick = _with_surplus(replace(snapshot, chargers=(view,)), watts)
    known = memory.charger(view.sn).updated(control=control)
    memory = memory.updated(chargers={**memory.chargers, view.sn: known})
    idle = Idle(RULES, engine, enabled=True)
    one, moved = evaluate(tick, RULES, memory, settings=engine)
    kept = _timers_only(one, memory, moved, idle.solar_states) or (
        not engine.words and _holds_alike(one, memory, moved)
    )
    if not kept or _settled(one, memory, moved):
        return
    two, left = evaluate(tick, RULES, moved, settings=engine)
    if engine.words:
        assert _told(one) == _told(two)
    else:
        done = [(d.charger_sn, d.target, d.action, d.params, d.observed) for d in one]
        assert [(d.charger_sn, d.target, d.action, d.params, d.observed) for d in two] == done
    assert _settled(two, moved, left)


def test_a_days_condition_puts_the_weekday_in_the_key() -> None:
    weekend = policies(
        {"name": "weekend", "kind": "charge_mode", "mode": "green", "when": {"days": "weekends"}}
    )
    with_days = Idle((*RULES, *weekend), EngineSettings(), enabled=True)
    without = Idle(RULES, EngineSettings(), enabled=True)
    assert with_days.weekdays
    assert not without.weekdays


changes = st.fixed_dictionaries(
    {
        "watts": st.none() | surpluses,
        "minutes": st.just(0) | st.integers(1, 600),
        "tariff": st.booleans(),
        "sun": st.booleans(),
        "source": st.none() | st.sampled_from(["lifetime_energy", "none"]),
    }
)


@settings(max_examples=examples(180))
@given(
    snapshot=snapshots(),
    second=snapshots(),
    memory=memories(),
    engine=engine_settings,
    change=changes,
)
def test_repeats_tells_a_tick_with_no_car_as_its_key_does(
    snapshot: Snapshot,
    second: Snapshot,
    memory: Memory,
    engine: EngineSettings,
    change: dict[str, Any],
) -> None:
    """``Idle.repeats`` (a replay's tick with no car, counted without a snapshot) says a tick
    has the kept key exactly when its key (``key_parts``) is the kept one. Each figure is
    changed or not on its own draw, so most ticks differ in one part or none."""
    view = replace(snapshot.chargers[0], plugged_in=False, charging=False)
    base = replace(snapshot, chargers=(view,), battery_soc_pct=None)
    surplus = base.surplus
    if change["watts"] is not None:
        surplus = replace(surplus, pv_minus_house_w=change["watts"])
    if change["source"] is not None:
        surplus = replace(surplus, source=change["source"])
    other = replace(
        base,
        surplus=surplus,
        now=base.now + timedelta(minutes=change["minutes"]),
        tariff=second.tariff if change["tariff"] else base.tariff,
        sun=second.sun if change["sun"] else base.sun,
    )
    idle = Idle(RULES, engine, enabled=True)
    idle.last = tuple(idle.key_parts(base, view, idle.period(base), memory))
    key = tuple(idle.key_parts(other, view, idle.period(other), memory))
    tariff = other.tariff
    assert idle.repeats(
        view,
        memory,
        now=other.now,
        local=other.local,
        tariff=(tariff.window, tariff.price),
        sun=other.sun,
        surplus=other.surplus,
    ) == (key == idle.last)


def test_repeats_waits_for_the_last_command_to_settle() -> None:
    """A tick whose only difference from the kept one is that the last command has settled
    since is not repeated (a user's change is looked for only after that)."""
    base = _quiet_tick()
    view = base.chargers[0]
    engine = EngineSettings(settle=timedelta(minutes=5))
    known = ChargerMemory(commanded_at=base.now - timedelta(minutes=1))
    memory = Memory(chargers={view.sn: known})
    idle = Idle(RULES, engine, enabled=True)
    idle.last = tuple(idle.key_parts(base, view, idle.period(base), memory))
    for minutes, same in ((2, True), (3, True), (4, False), (10, False)):
        later = replace(base, now=base.now + timedelta(minutes=minutes))
        key = tuple(idle.key_parts(later, view, idle.period(later), memory))
        assert (key == idle.last) is same
        told = idle.repeats(
            view,
            memory,
            now=later.now,
            local=later.local,
            tariff=(later.tariff.window, later.tariff.price),
            sun=later.sun,
            surplus=later.surplus,
        )
        assert told is same


def _quiet_tick() -> Snapshot:
    view = make_charger(sn="A1", plugged_in=False, charging=False)
    return Snapshot(now=T0 + timedelta(hours=12), timezone="UTC", chargers=(view,),
                    surplus=Surplus(500.0, "lifetime_energy"))  # fmt: skip


near_thresholds = st.sampled_from([300.0, 600.0, 800.0, 1000.0, 1450.0, 2000.0, 2600.0])
"""Between the conditions' lines, either side of the example solar rule's thresholds for a
6-32 A charger at 230 V (1,380 W to start, 690 W to stop) and of sun-set's (2,400 and 800 W)."""


@settings(max_examples=examples(180))
@given(
    snapshot=snapshots(),
    memory=st.just(Memory()) | memories(),
    engine=engine_settings,
    surplus=st.tuples(near_thresholds, near_thresholds),
    sun=st.sampled_from([30.0, -10.0]),
)
def test_timers_moved_with_no_car_are_the_engine_s(
    snapshot: Snapshot,
    memory: Memory,
    engine: EngineSettings,
    surplus: tuple[float, float],
    sun: float,
) -> None:
    """A tick with no car whose key differs from the kept one only in the timers' sides:
    ``Idle.timers_moved`` is the memory the engine returns there (the controls' last-seen
    ticks aside), and the kept decisions say what the engine's say."""
    drawn = snapshot.chargers[0]  # its mode, battery setting and schedules; 6-32 A at 230 V
    view = make_charger(
        sn=drawn.sn,
        plugged_in=False,
        mode=drawn.mode,
        use_battery=drawn.use_battery,
        schedule_slots=drawn.schedule_slots,
    )
    base = replace(snapshot, chargers=(view,), sun=Sun(sun, 180.0, None, None))
    watts, later = surplus
    first = _with_surplus(base, watts)
    for _ in range(3):  # the memory as ticks at the first moment leave it, as a replay's
        kept, returned = evaluate(first, RULES, memory, settings=engine)
        if _settled(kept, memory, returned):
            break
        memory = returned
    else:
        return
    idle = Idle(RULES, engine, enabled=True)
    idle.last = tuple(idle.key_parts(first, view, idle.period(first), memory))
    tick = _with_surplus(first, later)
    key = tuple(idle.key_parts(tick, view, idle.period(tick), memory))
    if key[:-1] != idle.last[:-1] or key == idle.last:
        return
    assert idle._kept_without_car(view)
    decided, engine_memory = evaluate(tick, RULES, memory, settings=engine)
    assert _told(decided) == _told(kept)
    moved = idle.timers_moved(tick, view, memory)
    assert moved.policies == engine_memory.policies
    assert _settled([], moved, engine_memory)  # the rest as the engine left it
