"""One kept-alive connection to the cloud across ticks (issue 16, item 4).

aiohttp closes an idle connection after 15 s by default: at the service's 30 s poll every tick
then opened a new TCP (and, against the real cloud, TLS) connection. The fake cloud logs each
request's peer (address and port), one per connection. aiohttp's idle clock is moved past a
poll between two reads, so it judges the connection as it would after 31 s.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp.connector
import pytest

from optimizer.config import MIN_POLL_INTERVAL
from optimizer.fakecloud import FakeCloud, FakeCloudServer
from tests.cli_env import owner_client

SITE = 1234567


class _Clock:
    """aiohttp's clock for idle connections, moved forward on demand.

    The connector stamps a released connection with ``time.monotonic`` (imported into
    ``aiohttp.connector``) and, taking it for the next request, drops it when it has been
    idle longer than its keep-alive timeout: that clock is the one to move.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = 0.0
        monkeypatch.setattr(aiohttp.connector, "monotonic", lambda: time.monotonic() + self.offset)

    def idle(self, seconds: float) -> None:
        """Let ``seconds`` pass without waiting for them."""
        self.offset += seconds


async def test_one_connection_serves_reads_a_poll_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = FakeCloud()
    async with FakeCloudServer(cloud) as server, owner_client(server.base_url, tmp_path) as client:
        clock = _Clock(monkeypatch)
        await client.status(SITE)
        for _ in range(3):
            clock.idle(MIN_POLL_INTERVAL.total_seconds() + 1)
            await client.status(SITE)
    requests = cloud.requests()
    assert len(requests) >= 4  # the login and four status reads
    assert len({r.peer for r in requests}) == 1
    assert None not in {r.peer for r in requests}
