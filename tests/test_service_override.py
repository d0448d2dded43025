"""A user's own stop, end to end: the service against the fake cloud, the log read with
``sqlite3``. The stop made in the app is logged as the user's ``stop`` (observed, nothing
sent), the policies hold for ``engine.override_hold``, and then take over again, saying so."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.test_service import ALWAYS_16, MIDDAY, SN, World, world_at


@pytest.fixture
async def midday(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    async for world in world_at(MIDDAY, tmp_path, monkeypatch):
        yield world


async def test_a_stop_in_the_app_is_logged_as_the_users_stop_and_nothing_is_sent(
    midday: World,
) -> None:
    config = midday.config(ALWAYS_16)
    service = midday.service(config)
    service.start()
    await service.tick()  # always-16 starts the car
    assert midday.cloud.charger().charging
    starts = len(midday.cloud.requests("/start_charging"))
    assert starts == 1
    for _ in range(4):  # two minutes: past the settle time of the start
        midday.cloud.advance(30)
        await service.tick()
    midday.cloud.update_charger(charging=False)  # the user stops it in the Enphase app
    for _ in range(6):
        midday.cloud.advance(30)
        await service.tick()
    await service.shutdown()

    rows = midday.rows(
        "SELECT * FROM decisions WHERE policy = 'user-override' ORDER BY id",
    )
    first = rows[0]
    assert (first["charger_sn"], first["action"], first["outcome"]) == (SN, "stop", "noop")
    assert first["commands"] == 0
    assert first["reason"].startswith("you stopped charging in the Enphase app or at the charger")
    assert "(engine.override_hold)" in first["reason"]
    inputs = json.loads(first["inputs"])
    assert inputs["observed"] is True
    assert inputs["in_control"] == "user-override"
    assert inputs["next"].startswith("override ends ")
    assert [r["action"] for r in rows[1:]] == ["hold"] * (len(rows) - 1)
    assert not midday.cloud.charger().charging  # the policy waits: no start was sent
    assert len(midday.cloud.requests("/start_charging")) == starts
    assert service.memory.chargers[SN].commanded_on is False
