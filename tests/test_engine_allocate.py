"""The site as the unit of allocation: the surplus and the breaker shared among its chargers.

Unit examples of the sharing rule (``engine.allocate``), then properties of ``evaluate`` over
sites of 1-6 chargers run for a few ticks with every command applied.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.engine.allocate import Claim, allocate, share
from optimizer.engine.decision import Decision, EngineSettings, Memory
from optimizer.engine.evaluate import evaluate
from optimizer.engine.rules import ExcessSolar, PolicyBase
from optimizer.engine.snapshot import ChargerView, Snapshot, Surplus, TariffNow
from optimizer.enlighten.models import ChargeMode
from optimizer.limits import Limits
from optimizer.tariffs import Tariffs
from tests.test_engine_sim import T0, make_charger, policies

TARIFFS = Tariffs.model_validate(
    {"import_price": 0.30, "windows": {"off_peak": {"price": 0.18, "times": "00:00-23:59"}}}
)
SOLAR = {"name": "sun", "kind": "excess_solar", "start_delay": "0s", "min_off_time": "0s"}


def claim(sn: str, wanted: int, **changes: Any) -> Claim:
    base = Claim(sn, (0, 0), wanted, 6, 32, 1, 230.0, solar=True)
    return replace(base, **changes)


# --- the rule, by example ----------------------------------------------------------------------


def test_two_solar_chargers_share_3_kw_fairly_and_never_take_it_twice() -> None:
    grants = allocate([claim("a", 13), claim("b", 13)], surplus_w=3000, site_max_amps=None)
    assert [g.amps for g in grants] == [7, 6]  # 3 kW pays for 13 A: 6 each, the odd one first
    assert {g.bound for g in grants} == {"surplus"}


def test_one_car_at_its_minimum_rather_than_two_below_it() -> None:
    grants = allocate([claim("a", 8), claim("b", 8)], surplus_w=2000, site_max_amps=None)
    assert [g.amps for g in grants] == [8, 0]  # 2 kW is 8.7 A: one minimum, not two


def test_higher_priority_is_served_before_a_fair_share() -> None:
    claims = [claim("a", 20), claim("b", 20, priority=(0, 50))]
    grants = allocate(claims, surplus_w=4600, site_max_amps=None)
    assert [g.amps for g in grants] == [0, 20]


def test_the_config_ranks_chargers_before_the_rules_do() -> None:
    """``site.charger_priority`` first: its car is served though its rule ranks lower."""
    chargers = (make_charger(sn="A"), make_charger(sn="B"))
    rules = policies({**SOLAR, "priority": 10}, {**SOLAR, "name": "b", "chargers": ["B"]})
    config = EngineSettings(charger_priority={"A": 5})
    decisions, _ = evaluate(snapshot(chargers, 0, 2000.0), rules, Memory(), settings=config)
    charging = {d.charger_sn: d for d in decisions if d.target == "charging"}
    assert (charging["A"].action, charging["A"].params) == ("start", {"amps": 8})
    assert charging["B"].action == "hold"
    assert charging["B"].reason.endswith("site share 0 A (surplus shared by 2 chargers): no start")
    unranked, _ = evaluate(snapshot(chargers, 0, 2000.0), rules, Memory())
    assert [d.action for d in unranked if d.target == "charging"] == ["hold", "start"]


def test_no_surplus_keeps_one_minimum_level_for_the_first_claim() -> None:
    grants = allocate([claim("a", 10), claim("b", 10)], surplus_w=-500, site_max_amps=None)
    assert [g.amps for g in grants] == [6, 0]


def test_min_pv_chargers_keep_their_minimum_and_share_only_the_sun_above_it() -> None:
    floors = [claim("a", 26, floor=True), claim("b", 26, floor=True)]
    # 6 kW pays 26 A: each keeps its 6 A, the 14 A above them are shared, not taken twice.
    grants = allocate(floors, surplus_w=6000, site_max_amps=None)
    assert [g.amps for g in grants] == [13, 13]
    # No sun: both still draw their minimum (the variant's promise), nothing more.
    grants = allocate(floors, surplus_w=0, site_max_amps=None)
    assert [g.amps for g in grants] == [6, 6]


def test_a_floor_never_outranks_the_breaker() -> None:
    floors = [claim("a", 10, floor=True), claim("b", 10, floor=True)]
    grants = allocate(floors, surplus_w=0, site_max_amps=10)
    assert [(g.amps, g.bound) for g in grants] == [(6, "surplus"), (0, "site limit")]


def test_a_surplus_that_fits_is_left_to_the_breaker() -> None:
    grants = allocate([claim("a", 16), claim("b", 16)], surplus_w=6900, site_max_amps=20)
    assert [(g.amps, g.bound) for g in grants] == [(10, "site limit"), (10, "site limit")]


def test_the_breaker_bounds_grid_fed_claims_and_fixed_ones_count_first() -> None:
    claims = [
        claim("grid1", 32, solar=False),
        claim("grid2", 32, solar=False),
        claim("user", 10, solar=False, fixed=True),
    ]
    grants = allocate(claims, surplus_w=None, site_max_amps=40)
    assert [g.amps for g in grants] == [15, 15, 10]
    assert [g.bound for g in grants] == ["site limit", "site limit", None]


def test_granularity_steps_are_kept_while_sharing() -> None:
    got = share([claim("a", 16, step=2), claim("b", 16, step=2)], 21, by_watts=False)
    assert got == {"a": 10, "b": 10}


# --- evaluate over whole sites -----------------------------------------------------------------


def drawn(decision: Decision | None, charger: ChargerView) -> ChargerView:
    """The charger after its charging decision is applied (a perfect charger)."""
    if decision is None:
        return charger
    if decision.action in ("start", "set_amps"):
        return replace(charger, charging=True, amps=decision.params["amps"])
    if decision.action == "stop":
        return replace(charger, charging=False)
    return charger


def level(charger: ChargerView) -> int:
    return (charger.amps or 0) if charger.charging else 0


@st.composite
def site_chargers(draw: st.DrawFn, sn: str, site_max: int | None) -> ChargerView:
    """A charger as found; one already charging is online and within the site limit (an
    offline charger gets no action, so a level it had could not be corrected)."""
    low = draw(st.integers(6, 10))
    high = draw(st.integers(low, 40))
    step = draw(st.integers(1, 2))
    plugged = draw(st.booleans())
    connected = draw(st.integers(0, 9)) > 0
    limits = Limits.within(low, high, step, site_max)
    charging = plugged and connected and limits.feasible and draw(st.booleans())
    return make_charger(
        sn=sn,
        connected=connected,
        plugged_in=plugged,
        charging=charging,
        min_amps=low,
        max_amps=high,
        granularity=step,
        amps=limits.down(draw(st.integers(low, limits.high))) if charging else None,
        phases=draw(st.sampled_from([1, 1, 3])),
    )


@st.composite
def sites(draw: st.DrawFn, sizes: st.SearchStrategy[int]) -> tuple[Any, ...]:
    count = draw(sizes)
    site_max = draw(st.none() | st.integers(6, 80))
    chargers = tuple(draw(site_chargers(f"EV{i}", site_max)) for i in range(count))
    grid = draw(st.lists(st.sampled_from([c.sn for c in chargers]), max_size=2, unique=True))
    rules = [{**SOLAR, "priority": 10, "variant": draw(st.sampled_from(["pv", "pv", "min_pv"]))}]
    if draw(st.booleans()):
        rules.append({**SOLAR, "name": "sun-first", "priority": 20, "chargers": [chargers[0].sn]})
    if grid:
        rules.append(
            {"name": "cheap", "kind": "tariff_window", "windows": "off_peak", "priority": 90,
             "chargers": grid, "amps": draw(st.integers(6, 40))}
        )  # fmt: skip
    surpluses = draw(st.lists(st.floats(-3000, 20000), min_size=6, max_size=6))
    return chargers, policies(*rules), surpluses, site_max


def snapshot(chargers: tuple[ChargerView, ...], minute: int, surplus_w: float) -> Snapshot:
    return Snapshot(
        now=T0 + timedelta(days=3, hours=12, minutes=minute),
        timezone="UTC",
        chargers=chargers,
        surplus=Surplus(surplus_w, "latest_power"),
        tariff=TariffNow(window="off_peak", price=0.18),
    )


def solar_kind(decision: Decision | None, rules: list[PolicyBase]) -> str | None:
    """``pv`` or ``min_pv`` when the decision is a solar policy's, else None."""
    by_name = {p.name: p for p in rules}
    policy = by_name.get(decision.policy) if decision is not None else None
    return policy.variant if isinstance(policy, ExcessSolar) else None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites(st.integers(1, 6)))
def test_a_site_never_takes_more_than_its_surplus_or_its_breaker(site: tuple[Any, ...]) -> None:
    chargers, rules, surpluses, site_max = site
    config = EngineSettings(site_max_amps=site_max, tariffs=TARIFFS, settle=timedelta(0))
    memory = Memory()
    for minute, surplus_w in enumerate(surpluses):
        decisions, memory = evaluate(
            snapshot(chargers, minute, surplus_w), rules, memory, settings=config
        )
        charging = {d.charger_sn: d for d in decisions if d.target == "charging"}
        chargers = tuple(drawn(charging.get(c.sn), c) for c in chargers)
        for charger in chargers:
            limits = Limits.of(charger, site_max)
            assert level(charger) == 0 or limits.allows(level(charger)), charger
        if site_max is not None:
            assert sum(level(c) for c in chargers) <= site_max
        if len(chargers) > 1:
            kinds = {c.sn: solar_kind(charging.get(c.sn), rules) for c in chargers}
            solar = [c for c in chargers if kinds[c.sn] is not None]
            used = sum(level(c) * c.watts_per_amp for c in solar)
            one_minimum = max((c.min_amps * c.watts_per_amp for c in solar), default=0.0)
            # min_pv chargers draw their minimum from the grid whatever the sun does.
            floors = sum(c.min_amps * c.watts_per_amp for c in solar if kinds[c.sn] == "min_pv")
            allowed = max(0.0, surplus_w, floors) + one_minimum
            assert used <= allowed + 1e-6, (minute, solar)
            for decision in charging.values():
                assert decision.inputs["site_chargers"] == len(chargers)
                assert "share_amps" in decision.inputs


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites(st.integers(2, 4)))
def test_a_charger_decides_as_if_alone_while_no_budget_binds(site: tuple[Any, ...]) -> None:
    """The others are offline (they draw nothing): unless the allocation says it cut the
    charger's decision, the decision is exactly what a single-charger site decides."""
    chargers, rules, surpluses, site_max = site
    first = replace(chargers[0], connected=True)
    others = tuple(replace(c, connected=False, charging=False) for c in chargers[1:])
    config = EngineSettings(site_max_amps=site_max, tariffs=TARIFFS, settle=timedelta(0))
    alone_memory, site_memory = Memory(), Memory()
    for minute, surplus_w in enumerate(surpluses):
        alone, alone_memory = evaluate(
            snapshot((first,), minute, surplus_w), rules, alone_memory, settings=config
        )
        together, site_memory = evaluate(
            snapshot((first, *others), minute, surplus_w), rules, site_memory, settings=config
        )
        mine = [d for d in together if d.charger_sn == first.sn]
        if any("share_bound" in d.inputs for d in mine):
            return  # the allocation acted: from here on the two paths may differ
        assert [(d.policy, d.action, d.params, d.reason) for d in mine] == [
            (d.policy, d.action, d.params, d.reason) for d in alone
        ]
        assert site_memory.chargers[first.sn] == alone_memory.chargers[first.sn]
        first = drawn(next((d for d in alone if d.target == "charging"), None), first)


def test_two_chargers_under_3_kw_say_what_each_got_and_why() -> None:
    chargers = (
        make_charger(sn="A", mode=ChargeMode.MANUAL_CHARGING),
        make_charger(sn="B", mode=ChargeMode.MANUAL_CHARGING),
    )
    rules = policies({**SOLAR, "priority": 10})
    decisions, _ = evaluate(snapshot(chargers, 0, 3000.0), rules, Memory())
    charging = {d.charger_sn: d for d in decisions if d.target == "charging"}
    assert [charging[sn].action for sn in "AB"] == ["start", "start"]
    assert [charging[sn].params["amps"] for sn in "AB"] == [7, 6]
    assert charging["A"].inputs["share_w"] == 1610
    assert charging["B"].inputs["share_bound"] == "surplus"
    assert "site share 6 A (surplus shared by 2 chargers)" in charging["B"].reason


def test_a_share_the_charger_already_has_is_a_hold_not_a_stop() -> None:
    """Both running at their shares of 3 kW, each policy asks for the whole surplus again:
    each keeps its level (this once stopped both)."""
    chargers = (
        make_charger(sn="A", charging=True, amps=7),
        make_charger(sn="B", charging=True, amps=6),
    )
    decisions, _ = evaluate(snapshot(chargers, 0, 3048.0), policies(SOLAR), Memory())
    charging = [d for d in decisions if d.target == "charging"]
    assert [(d.action, d.inputs["share_amps"]) for d in charging] == [("hold", 7), ("hold", 6)]
    assert charging[0].reason.endswith(
        "site share 7 A (surplus shared by 2 chargers), which it already has"
    )


def test_the_policys_own_minimum_is_the_level_the_site_admits_and_floors() -> None:
    """A min_pv rule with min_amps 10: both cars keep 10 A under 3 kW (its floor is the
    rule's minimum, not the charger's 6 A); a pv rule with min_amps 10 runs one car at 10 A
    rather than both at 6-7 A (the policy would stop below its minimum anyway)."""
    chargers = (
        make_charger(sn="A", mode=ChargeMode.MANUAL_CHARGING),
        make_charger(sn="B", mode=ChargeMode.MANUAL_CHARGING),
    )
    floored = policies({**SOLAR, "priority": 10, "variant": "min_pv", "min_amps": 10})
    decisions, _ = evaluate(snapshot(chargers, 0, 3000.0), floored, Memory())
    charging = {d.charger_sn: d for d in decisions if d.target == "charging"}
    assert [charging[sn].params.get("amps") for sn in "AB"] == [10, 10]
    solar = policies({**SOLAR, "priority": 10, "min_amps": 10})
    decisions, _ = evaluate(snapshot(chargers, 0, 3000.0), solar, Memory())
    charging = {d.charger_sn: d for d in decisions if d.target == "charging"}
    assert [charging[sn].params.get("amps") for sn in "AB"] == [13, None]
    assert charging["B"].inputs["share_bound"] == "surplus"


def test_an_offline_charger_keeps_its_last_level_against_the_breaker() -> None:
    """B is offline to the cloud at its last 12 A (the car may still draw it): A, asking for
    the whole 24 A site limit under a tariff rule, gets only what B leaves. Before, B counted
    as drawing nothing and the site was at 36 A when B came back (the two-site fault soak)."""
    tariff = {"name": "cheap", "kind": "tariff_window", "windows": ["off_peak"], "amps": 24}
    chargers = (
        make_charger(sn="A", charging=True, amps=12),
        make_charger(sn="B", connected=False, charging=False, amps=12),
    )
    config = EngineSettings(site_max_amps=24, tariffs=TARIFFS, settle=timedelta(0))
    decisions, _ = evaluate(snapshot(chargers, 0, 0.0), policies(tariff), Memory(), settings=config)
    charging = {d.charger_sn: d for d in decisions if d.target == "charging"}
    assert charging["A"].inputs["share_amps"] == 12
    assert charging["A"].action == "hold"  # it already has its share
    unplugged = replace(chargers[1], plugged_in=False)
    decisions, _ = evaluate(
        snapshot((chargers[0], unplugged), 0, 0.0), policies(tariff), Memory(), settings=config
    )
    charging = {d.charger_sn: d for d in decisions if d.target == "charging"}
    assert charging["A"].params.get("amps") == 24  # no car on B: nothing to keep for it
