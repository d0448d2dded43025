"""A real MQTT broker for the tests (amqtt, pure Python) and a real client that records.

The broker listens on 127.0.0.1 on a free port, in a child process (`python -m
tests.mqtt_broker PORT`), and is killed with the test; ``stop`` and ``start`` make it go away
and come back on the same port (its retained messages are gone then, as after a mosquitto
restart without persistence). The recorder is an
aiomqtt client subscribed to everything: no mocked MQTT client anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
from amqtt.broker import Broker

WAIT_S = 10.0  # generous: two cores shared by six test runs
START_S = 20.0
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalBroker:
    """amqtt in a child process: stopping it is a broker going away (SIGKILL, no goodbye),
    as a crashed or restarted mosquitto would. In-process, amqtt's shutdown can hang on a
    client caught mid-read (a cancelled ``wait_for`` in its reader), which the soak hit."""

    port: int
    process: subprocess.Popen[bytes] | None = None
    tls: tuple[Path, Path] | None = None  # certificate and key: TLS only

    async def start(self) -> None:
        tls = [str(path) for path in self.tls] if self.tls else []
        self.process = subprocess.Popen(  # noqa: ASYNC220 - a child we wait for below
            [sys.executable, "-m", "tests.mqtt_broker", str(self.port), *tls],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(int(START_S / 0.05)):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"the broker exited with {self.process.returncode}"
                    ) from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise RuntimeError(f"the broker did not listen on port {self.port} in {START_S} s")

    async def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)
            self.process = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@contextlib.asynccontextmanager
async def running_broker(tls: tuple[Path, Path] | None = None) -> AsyncIterator[LocalBroker]:
    broker = LocalBroker(free_port(), tls=tls)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


def _config(port: int, tls: list[str]) -> dict[str, Any]:
    listener: dict[str, Any] = {"type": "tcp", "bind": f"127.0.0.1:{port}"}
    if tls:
        listener.update(ssl=True, certfile=tls[0], keyfile=tls[1])
    return {
        "listeners": {"default": listener},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


async def _serve(port: int, tls: list[str]) -> None:
    broker = Broker(_config(port, tls))
    await broker.start()
    await asyncio.Event().wait()  # until killed


@dataclass
class Recorder:
    """Every message seen on ``#``: the latest per topic and all of them in order."""

    client: aiomqtt.Client
    latest: dict[str, str] = field(default_factory=dict)
    seen: list[tuple[str, str, bool]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def json(self, topic: str) -> Any:
        return json.loads(self.latest[topic])

    def on(self, prefix: str) -> dict[str, str]:
        return {t: p for t, p in self.latest.items() if t.startswith(prefix)}

    async def until(self, check: Callable[[], bool], what: str) -> None:
        """Wait for ``check`` to hold (the broker delivers asynchronously)."""
        try:
            async with asyncio.timeout(WAIT_S):
                while not check():
                    self.arrived.clear()
                    await self.arrived.wait()
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None

    async def send(self, topic: str, payload: str) -> None:
        await self.client.publish(topic, payload.encode(), qos=1)


@contextlib.asynccontextmanager
async def recording(port: int, *, cafile: Path | None = None) -> AsyncIterator[Recorder]:
    tls = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    name = f"recorder-{free_port()}"
    async with aiomqtt.Client("127.0.0.1", port, identifier=name, tls_context=tls) as client:
        recorder = Recorder(client)
        await client.subscribe("#", qos=1)

        async def listen() -> None:
            async for message in client.messages:
                payload = message.payload
                text = payload.decode() if isinstance(payload, bytes | bytearray) else str(payload)
                recorder.latest[str(message.topic)] = text
                recorder.seen.append((str(message.topic), text, bool(message.retain)))
                recorder.arrived.set()

        task = asyncio.get_running_loop().create_task(listen())
        try:
            yield recorder
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]), sys.argv[2:]))
