"""Running the fake: on the caller's event loop, or on its own loop in a daemon thread.

Always bound to 127.0.0.1 by default (the fake must never listen beyond the host) and to port
0 unless told otherwise, so parallel tests never fight over ports.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self

from aiohttp import web

from optimizer.fakecloud.app import build_app
from optimizer.fakecloud.cloud import FakeCloud

SHUTDOWN_TIMEOUT_S = 1.0


class Serving:
    """``async with`` for a fake server: ``start`` on entry, ``stop`` on exit (the fake cloud's
    and the fake gateway's servers share it)."""

    async def start(self) -> str:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class FakeCloudServer(Serving):
    """``async with FakeCloudServer(cloud) as server: server.base_url``."""

    def __init__(self, cloud: FakeCloud, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.cloud = cloud
        self.host = host
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the fake cloud is not running")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        runner = web.AppRunner(
            build_app(self.cloud), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        await site.start()
        self._runner = runner
        addresses = runner.addresses
        self.port = int(addresses[0][1])
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.port = None


@contextmanager
def run_in_thread(
    cloud: FakeCloud, *, host: str = "127.0.0.1", port: int = 0, start_timeout: float = 10.0
) -> Iterator[str]:
    """``with run_in_thread(cloud) as base_url:`` for synchronous tests.

    The server gets its own event loop in a daemon thread; leaving the block stops it and joins
    the thread. Mutate the cloud from the test thread through ``FakeCloud`` methods (they lock).
    """
    server = FakeCloudServer(cloud, host=host, port=port)
    with serve_in_thread(
        server.start, server.stop, name="fakecloud", start_timeout=start_timeout
    ) as url:
        yield url


@contextmanager
def serve_in_thread(
    start: Callable[[], Awaitable[str]],
    stop: Callable[[], Awaitable[None]],
    *,
    name: str,
    start_timeout: float = 10.0,
) -> Iterator[str]:
    """Run a fake server (``start`` gives its address) on its own loop in a daemon thread
    until the block ends; the fake cloud and the fake gateway both use it."""
    ready = threading.Event()
    started: list[str] = []
    errors: list[Exception] = []
    loop = asyncio.new_event_loop()
    stopping = asyncio.Event()

    async def serve() -> None:
        try:
            started.append(await start())
        finally:
            ready.set()
        try:
            await stopping.wait()
        finally:
            await stop()

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve())
        except Exception as exc:  # noqa: BLE001 (handed to the caller's thread below)
            errors.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=main, name=name, daemon=True)
    thread.start()
    if not ready.wait(start_timeout):
        raise RuntimeError(f"the {name} server did not start in time")
    if not started:
        thread.join(start_timeout)
        cause = errors[0] if errors else None
        raise RuntimeError(f"the {name} server failed to start") from cause
    try:
        yield started[0]
    finally:
        loop.call_soon_threadsafe(stopping.set)
        thread.join(start_timeout)
