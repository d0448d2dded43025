"""What the service asks the cloud for that it does not need (issue 16: at most 130 requests
per hour per charger). Each login of `evopt login` or `evopt history fetch` also fetches an
Entrez token, which session history prefers; the service's own calls all take the login's
tokens, so its hourly re-login skips that request."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_service import ALWAYS_16, MIDDAY, world_at


async def test_the_service_logs_in_without_fetching_an_entrez_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async for world in world_at(MIDDAY, tmp_path, monkeypatch):
        service = world.service(world.config(ALWAYS_16))
        for _ in range(3):
            report = await service.tick()
            assert report.problem is None
            world.cloud.advance(report.delay_s)
        await service.shutdown()
        assert world.logins() == 1
        assert world.cloud.requests("/tokens") == []
        assert world.writes()  # its calls worked without it: writes went through
