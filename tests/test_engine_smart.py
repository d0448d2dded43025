"""The engine and SMART_CHARGING / scheduler outages: examples, then properties over the example
rules (in SMART or GREEN no decision carries amps; none leaves SMART unless its rule names it;
an outage lets no scheduler write through, a stale status no command at all)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.engine.decision import EngineSettings, Memory
from optimizer.engine.evaluate import evaluate
from optimizer.engine.smart import SCHEDULER_ACTIONS, leavers
from optimizer.engine.snapshot import ChargerView, Snapshot, Surplus
from optimizer.enlighten.models import ChargeMode
from tests.test_engine_properties import EXAMPLE, engine_settings, memories, snapshots
from tests.test_engine_sim import T0, make_charger, policies

SMART = ChargeMode.SMART_CHARGING
CHARGING = ("start", "set_amps", "stop")
FOLLOW = policies({"name": "follow", "kind": "excess_solar", "variant": "min_pv", "min_amps": 16})


def charger(mode: ChargeMode | None) -> ChargerView:
    status = ChargeMode.GREEN_CHARGING if mode is SMART else mode
    return make_charger(sn="A1", mode=mode, status_mode=status)


def snapshot(view: ChargerView, **changes: object) -> Snapshot:
    snap = Snapshot(
        now=T0 + timedelta(hours=3),
        timezone="UTC",
        chargers=(view,),
        surplus=Surplus(5000.0, "latest_power"),
    )
    return replace(snap, **changes)  # type: ignore[arg-type]


def test_smart_holds_a_policy_that_wants_manual_amps_and_says_so() -> None:
    decisions, memory = evaluate(snapshot(charger(SMART)), FOLLOW, Memory())
    assert {d.action for d in decisions} == {"hold"}
    mode = next(d for d in decisions if d.target == "mode")
    assert mode.reason.startswith(
        "charger is in SMART_CHARGING (Enphase AI optimisation); policy follow wants MANUAL at "
    )
    assert "not overriding the user's choice" in mode.reason
    assert memory.chargers["A1"].commanded_mode is None


def test_a_when_mode_naming_smart_lets_the_policy_leave_it() -> None:
    rules = policies(
        {"name": "follow", "kind": "excess_solar", "min_amps": 16, "variant": "min_pv",
         "when": {"mode": ["smart", "MANUAL_CHARGING"]}},
    )  # fmt: skip
    decisions, _ = evaluate(snapshot(charger(SMART)), rules, Memory())
    actions = {d.target: d.action for d in decisions}
    assert actions == {"mode": "set_mode", "charging": "start"}
    assert leavers(rules) == {"follow"}


def test_the_when_mode_condition() -> None:
    rules = policies(
        {"name": "g", "kind": "charge_mode", "mode": "green", "when": {"mode": "smart"}}
    )
    held, _ = evaluate(snapshot(charger(ChargeMode.MANUAL_CHARGING)), rules, Memory())
    assert held == []  # not in SMART: the policy sits out
    switched, _ = evaluate(snapshot(charger(SMART)), rules, Memory())
    assert [d.action for d in switched] == ["set_mode"]
    assert "mode SMART in SMART" in switched[0].reason


def test_a_charge_mode_policy_is_an_explicit_wish() -> None:
    rules = policies({"name": "m", "kind": "charge_mode", "mode": "MANUAL_CHARGING"})
    decisions, _ = evaluate(snapshot(charger(SMART)), rules, Memory())
    assert [(d.action, d.params) for d in decisions] == [("set_mode", {"mode": "MANUAL_CHARGING"})]


def test_a_scheduler_outage_holds_the_mode_change_and_a_stale_status_everything() -> None:
    rules = policies({"name": "m", "kind": "charge_mode", "mode": "green"}) + FOLLOW
    view = charger(ChargeMode.MANUAL_CHARGING)
    down = snapshot(view, scheduler_down_since=T0 + timedelta(hours=2))
    decisions, _ = evaluate(down, rules, Memory())
    mode = next(d for d in decisions if d.target == "mode")
    assert mode.action == "hold"
    assert "the Enlighten scheduler service is down (for 60 min); no set mode" in mode.reason
    assert down.inputs()["scheduler_down_since"]
    stale = replace(down, stale_status_s=600.0)
    decisions, _ = evaluate(stale, rules, Memory())
    assert {d.action for d in decisions} == {"hold"}
    assert any("the status is 10 min old" in d.reason for d in decisions)


# --- properties --------------------------------------------------------------------------------


def _no_commanded_mode(memory: Memory) -> Memory:
    """While a command settles the engine believes the commanded mode; take that out so the
    view's mode is the snapshot's."""
    chargers = {
        sn: known.model_copy(update={"commanded_mode": None})
        for sn, known in memory.chargers.items()
    }
    return memory.model_copy(update={"chargers": chargers})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    snap=snapshots(),
    memory=memories(),
    engine=engine_settings,
    solar=st.sampled_from([SMART, ChargeMode.GREEN_CHARGING]),
)
def test_in_smart_or_green_no_amps_and_no_silent_mode_change(
    snap: Snapshot, memory: Memory, engine: EngineSettings, solar: ChargeMode
) -> None:
    snap = replace(snap, chargers=tuple(replace(c, mode=solar) for c in snap.chargers))
    decisions, _ = evaluate(snap, EXAMPLE, _no_commanded_mode(memory), settings=engine)
    allowed = leavers(EXAMPLE)
    for sn in {c.sn for c in snap.chargers}:
        # A user's own change seen in the status is a record, not a command.
        mine = [d for d in decisions if d.charger_sn == sn and not d.observed]
        switches = [d for d in mine if d.action == "set_mode"]
        if solar is SMART:
            assert all(d.policy in allowed for d in switches), switches
        if not switches:
            assert not [d for d in mine if d.action in CHARGING], mine


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    snap=snapshots(),
    memory=memories(),
    engine=engine_settings,
    stale=st.none() | st.floats(1, 12 * 3600),
)
def test_an_outage_lets_no_scheduler_write_through(
    snap: Snapshot, memory: Memory, engine: EngineSettings, stale: float | None
) -> None:
    snap = replace(snap, scheduler_down_since=snap.now - timedelta(hours=1), stale_status_s=stale)
    decisions, _ = evaluate(snap, EXAMPLE, memory, settings=engine)
    sent = [d for d in decisions if not d.observed]  # the user's own changes are not writes
    assert not [d for d in sent if d.action in SCHEDULER_ACTIONS]
    if stale is not None:
        assert {d.action for d in sent} <= {"hold"}
