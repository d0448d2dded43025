"""The fake cloud served on a free 127.0.0.1 port, with an `EnlightenClient` of its account.

Tests that drive the real client end to end against the fake cloud all need the same pair: the
server (a free port, stopped afterwards) and a client built for its account, closed before the
server stops so that no request is cut off by the shutdown. Each test still builds its own
`FakeCloud` first (chargers, clock, profile, faults), so the state a test depends on stays
visible in the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from optimizer.enlighten.client import EnlightenClient
from optimizer.fakecloud import FakeCloud, FakeCloudServer


@asynccontextmanager
async def served_client(
    cloud: FakeCloud,
    *,
    state_dir: Path | None = None,
    email: str | None = None,
    password: str | None = None,
    clock: Callable[[], float] | None = None,
) -> AsyncIterator[EnlightenClient]:
    """``async with served_client(cloud, state_dir=tmp_path) as client:``.

    The account defaults to the cloud's own (``cloud.account``), so a test that changes it
    (``FakeCloud(email=...)``) needs no second copy; ``email``/``password`` name another one
    (a wrong password, an account added with ``cloud.add_account``). Without ``state_dir``
    the session lives in memory only, as the client does when it is given none. ``clock``
    (epoch seconds) is the client's: the fake cloud's own where tokens must expire on its time.
    """
    login = email if email is not None else cloud.account.email

    def secret() -> str:  # read at each login: a test may change the account's password
        return password if password is not None else cloud.account.password

    async with (
        FakeCloudServer(cloud) as server,
        EnlightenClient(
            base_url=server.base_url,
            email=login,
            password_provider=secret,
            state_dir=state_dir,
            clock=clock,
        ) as client,
    ):
        yield client
