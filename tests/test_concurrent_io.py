"""Reads and writes of different chargers go side by side; the decision log keeps the
decisions' order and one charger's decisions stay in order (issue 13, item 3).

The fake cloud holds matching requests for a while (a ``timeout`` fault shorter than the
client's timeout answers normally after its delay), so overlap shows in the arrival times:
one after another, two arrivals are at least the delay apart; side by side, they are not.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from itertools import pairwise
from pathlib import Path

import pytest

from optimizer.actuate import Actuator
from optimizer.engine.decision import Decision
from optimizer.enlighten.client import EnlightenClient
from optimizer.fakecloud import FakeCloud
from optimizer.fakecloud.model import Charger
from optimizer.observe import ObserveCache, observe_live
from tests.cli_env import SITE_ID
from tests.served import served_client
from tests.test_actuate import CONFIG
from tests.test_service import ALWAYS_16, MIDDAY, World, world_at

SNS = ("EV0000000001", "EV0000000002", "EV0000000003")
DELAY_S = 0.4  # how long the fake holds a matching request (real time)


@pytest.fixture
async def three(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    chargers = [Charger(sn=sn, plugged_in=True) for sn in SNS]
    async for world in world_at(MIDDAY, tmp_path, monkeypatch, chargers=chargers):
        yield world


def _overlapping(walls: list[float]) -> bool:
    """Whether two of the requests were in the fake at once (each is held ``DELAY_S``)."""
    walls = sorted(walls)
    return any(b - a < DELAY_S * 0.6 for a, b in pairwise(walls))


async def test_the_chargers_reads_overlap(three: World) -> None:
    three.cloud.add_fault("timeout", delay_s=DELAY_S, path="/summary", times=len(SNS))
    service = three.service(three.config(ALWAYS_16))
    report = await service.tick()
    await service.shutdown()
    assert report.problem is None
    summaries = three.cloud.requests("/summary")
    assert {s for s in SNS if any(s in r.path for r in summaries)} == set(SNS)
    assert _overlapping([r.wall for r in summaries])  # one after another: never under DELAY_S
    # What the snapshot saw does not depend on which reply came first.
    assert list(service.cache.summaries) == list(SNS)


async def test_the_chargers_writes_overlap_and_the_log_keeps_the_decisions_order(
    three: World,
) -> None:
    three.cloud.add_fault("timeout", delay_s=DELAY_S, path="start_charging", times=len(SNS))
    # A 6 A minimum, so all three fit the site's 32 A (three 16 A minimums would not: the
    # allocation would start two of them, optimizer/engine/allocate.py).
    service = three.service(three.config(ALWAYS_16.replace("min_amps: 16", "min_amps: 6")))
    report = await service.tick()
    await service.shutdown()
    starts = three.cloud.requests("start_charging")
    assert len(starts) == len(SNS)  # one each, none twice
    assert _overlapping([r.wall for r in starts])
    # The log's rows are in the engine's order of the decisions, whatever reply came first.
    engine_order = [(a.decision.charger_sn, a.decision.target) for a in report.acted]
    rows = three.rows()
    assert [(r["charger_sn"], r["target"]) for r in rows] == [
        key for key, a in zip(engine_order, report.acted, strict=True) if a.row_id is not None
    ]
    assert [r["id"] for r in rows] == sorted(a.row_id for a in report.acted if a.row_id)
    started = [r["charger_sn"] for r in rows if r["action"] == "start"]
    assert sorted(started) == sorted(SNS)
    assert all(r["outcome"] == "applied" for r in rows if r["action"] == "start")
    # Each start's row carries the memory of the commands before it only (ticklog.py).
    assert sum(r["commands"] for r in rows) == len(starts)


@pytest.fixture
async def two_cloud(tmp_path: Path) -> AsyncIterator[tuple[FakeCloud, EnlightenClient]]:
    cloud = FakeCloud(
        chargers=[
            Charger(sn=SNS[0], plugged_in=True),
            Charger(sn=SNS[1], plugged_in=True, charging=True, level=20),
        ]
    )
    cloud.set_profile(charge_level_reported=True)
    async with served_client(cloud, state_dir=tmp_path) as client:
        yield cloud, client


def _decision(sn: str, action: str, **params: object) -> Decision:
    return Decision("test", sn, "charging", action, dict(params), "because", {})  # type: ignore[arg-type]


async def test_a_charger_that_lowers_its_draw_goes_before_one_that_raises_it(
    two_cloud: tuple[FakeCloud, EnlightenClient],
) -> None:
    """The breaker: a start listed first still waits for the other charger's stop."""
    cloud, client = two_cloud
    cache = ObserveCache()
    snapshot = await observe_live(
        client, site_id=SITE_ID, config=CONFIG, now=cloud.clock.now(), cache=cache
    )
    cloud.add_fault("timeout", delay_s=DELAY_S, path="stop_charging", times=1)
    actuator = Actuator(client, site_id=SITE_ID, dry_run=False, cache=cache, live_stream=False)
    decisions = [
        _decision(SNS[0], "start", amps=16),
        _decision(SNS[1], "stop"),
        _decision(SNS[1], "hold"),
    ]
    seen = [
        (index, actuation.outcome)
        async for index, actuation in actuator.apply_in_order(decisions, snapshot)
    ]
    assert seen == [(0, "applied"), (1, "applied"), (2, "noop")]  # yielded in order
    [stop] = cloud.requests("stop_charging")
    [start] = cloud.requests("start_charging")
    assert start.wall >= stop.wall + DELAY_S * 0.9  # after the stop's reply
    assert json.dumps(start.json)  # a real request went out
