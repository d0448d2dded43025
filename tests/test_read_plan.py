"""Cache lifetimes that stretch with the account's chargers: the slow reads fit the budget,
the status reads are the last to give (optimizer/observe/readplan.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.config import Config
from optimizer.fakecloud.model import Charger
from optimizer.observe import ObserveCache
from optimizer.observe.readplan import MAX_STRETCH, READ_SHARE, ReadPlan, plan_reads
from tests.test_service import HOLD_ONLY, MIDDAY, World, parse_ts, world_at

PER_CHARGER = {
    "summary": timedelta(hours=24),
    "mode": timedelta(minutes=10),
    "battery_setting": timedelta(minutes=30),
    "schedules": timedelta(hours=1),
    "charger_config": timedelta(hours=1),
}
PER_SITE = {"battery": timedelta(minutes=5), "flags": timedelta(minutes=30)}


def _plan(chargers: int, sites: int = 1, poll_s: float = 30, budget: int = 600) -> ReadPlan:
    return plan_reads(
        chargers=chargers,
        sites=sites,
        poll_s=poll_s,
        budget_per_hour=budget,
        per_charger=PER_CHARGER,
        per_site=PER_SITE,
        surplus_per_site_per_hour=4,
    )


@settings(max_examples=300, deadline=None)
@given(
    chargers=st.integers(min_value=0, max_value=2000),
    sites=st.integers(min_value=1, max_value=20),
    poll_s=st.floats(min_value=1, max_value=900),
    budget=st.integers(min_value=30, max_value=3600),
)
def test_the_planned_reads_fit_the_budget_or_say_which_poll_would(
    chargers: int, sites: int, poll_s: float, budget: int
) -> None:
    plan = _plan(chargers, sites, poll_s, budget)
    assert 1.0 <= plan.stretch <= MAX_STRETCH
    assert plan.usable_per_hour == pytest.approx(budget * READ_SHARE)
    # Never stretched more than needed: at their configured lifetimes the reads would not fit.
    if plan.stretch > 1.0:
        assert plan.fixed_per_hour + plan.slow_per_hour > plan.usable_per_hour
    if plan.min_poll_s is None:
        assert plan.fits
    else:  # the status reads are the last to give: the slow ones are at their longest
        assert not plan.fits
        assert plan.min_poll_s > poll_s
        assert plan.stretch == MAX_STRETCH or plan.fixed_per_hour >= plan.usable_per_hour


@given(sites=st.integers(min_value=1, max_value=5), poll_s=st.floats(min_value=30, max_value=300))
def test_more_chargers_never_shorten_a_lifetime(sites: int, poll_s: float) -> None:
    stretches = [_plan(n, sites, poll_s).stretch for n in range(0, 400, 7)]
    assert all(a <= b for a, b in pairwise(stretches))


def test_one_charger_reads_as_configured_and_fifty_are_stretched() -> None:
    one, fifty = _plan(1), _plan(50)
    assert one.stretch == 1.0
    assert one.planned_per_hour == pytest.approx(120 + 4 + 24.04, abs=0.1)
    # 50 chargers at the configured lifetimes need ~640 requests/h: over the 600 budget.
    assert fifty.fixed_per_hour + fifty.slow_per_hour > 600
    assert fifty.stretch > 1.5
    assert fifty.planned_per_hour == pytest.approx(600 * READ_SHARE)


def test_a_poll_too_fast_for_the_budget_is_named() -> None:
    plan = _plan(10, sites=5, poll_s=30, budget=600)  # five sites' status alone: 600/h
    assert plan.min_poll_s is not None
    assert plan.min_poll_s > 30


def test_the_cache_stretches_its_slow_lifetimes_only() -> None:
    cache = ObserveCache()
    cache.fit_budget(chargers=100, poll_s=30, budget_per_hour=600, power_sample=False)
    assert cache.stretch > 1.5
    assert cache.lifetime("mode") == cache.ttl["mode"] * cache.stretch
    assert cache.lifetime("schedules") == cache.ttl["schedules"] * cache.stretch
    assert cache.lifetime_in("schedules", None) == cache.idle_ttl * cache.stretch
    assert cache.lifetime("latest_power") == timedelta(seconds=60)  # a surplus source
    # Other sites of the same account count too (a process with several sites).
    alone = cache.stretch
    cache.account_others = (3, 100)
    cache.fit_budget(chargers=100, poll_s=30, budget_per_hour=600, power_sample=False)
    assert cache.stretch > alone


# --- end to end ----------------------------------------------------------------------------------

SNS = tuple(f"EV00000001{i:02d}" for i in range(12))
BUDGET = 150  # its reads share (112/h) is below twelve chargers' reads at their lifetimes


@pytest.fixture
async def twelve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    chargers = [Charger(sn=sn, plugged_in=True) for sn in SNS]
    async for world in world_at(MIDDAY, tmp_path, monkeypatch, chargers=chargers):
        yield world


def _config(world: World) -> Config:
    config = world.config(HOLD_ONLY)
    service = config.service.model_copy(update={"poll_interval": timedelta(seconds=60)})
    enlighten = config.enlighten.model_copy(update={"budget_per_hour": BUDGET})
    return config.model_copy(update={"service": service, "enlighten": enlighten})


async def test_twelve_chargers_fit_a_small_budget_without_reads_put_off(
    twelve: World, caplog: pytest.LogCaptureFixture
) -> None:
    """At their configured lifetimes twelve chargers' reads (~128/h at a 60 s poll) overrun
    the three quarters of the 150/h budget planned for reads: the limiter then puts slow reads
    off, tick after tick, and what the engine sees ages unpredictably. Stretched, they fit:
    after the start-up none is put off, and no tick is held back."""
    caplog.set_level(logging.DEBUG, logger="optimizer.observe.live")
    service = twelve.service(_config(twelve))
    service.start()
    problems = []
    for tick in range(240):  # four simulated hours
        if tick == 60:  # the start-up's reads (all due at once) are behind us
            caplog.clear()
        report = await service.tick()
        problems.append(report.problem)
        twelve.cloud.advance(report.delay_s)
    await service.shutdown()
    assert problems.count("rate_limited") == 0  # the status reads never gave
    put_off = [r for r in caplog.records if "put off by the account's budget" in r.getMessage()]
    assert put_off == []
    assert service.cache.stretch > 1.2
    times = sorted(parse_ts(r.time) for r in twelve.cloud.requests())
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + timedelta(hours=1)) <= BUDGET
