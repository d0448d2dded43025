"""The service under a session lock-out: it stops logging in for a day, says so, then resumes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from optimizer.enlighten.loginguard import BLOCK_S
from tests.test_service import ALWAYS_16, MIDDAY, World, world_at


async def test_a_lockout_parks_automatic_logins_for_a_day_then_the_service_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async for world in world_at(MIDDAY, tmp_path, monkeypatch):
        await _lockout_day(world)


async def _lockout_day(midday: World) -> None:
    # The login guard keeps time on the service's clock (the fake cloud's here): a day of it.
    service = midday.service(midday.config(ALWAYS_16))
    assert (await service.tick()).problem is None
    logins = midday.logins()

    midday.cloud.set_profile(login_lockout=True)
    midday.cloud.expire_sessions()
    report = await service.tick()
    assert (report.problem, report.exit_code) == ("auth", 3)
    assert "too many active sessions" in report.status
    assert midday.logins() == logins + 1
    locked_at = midday.cloud.clock.now()
    for hours in (1, 6, 23):
        midday.cloud.clock.set(locked_at + timedelta(hours=hours))
        report = await service.tick()
        assert report.problem == "auth"
        assert "automatic Enlighten logins stopped until" in report.status
    assert midday.logins() == logins + 1  # nothing more sent while the block stands

    midday.cloud.set_profile(login_lockout=False)
    midday.cloud.clock.set(locked_at + timedelta(seconds=BLOCK_S + 1))
    report = await service.tick()
    assert report.problem is None  # the block ended by itself: no person was needed
    assert midday.logins() == logins + 2
    await service.shutdown()
