"""The MQTT bridge: one connection per process, beside (never inside) the service's loop.

After each tick the service hands its report to :meth:`SiteLink.after_tick`, which only puts
messages in the outbox and returns: publishing never blocks or fails a tick. The outbox keeps
the latest payload per topic (a newer state replaces one not yet sent, so a broker that was
away gets the present, never a replay of what it missed) and is bounded.

:meth:`Bridge.run` is the connection loop (aiomqtt 2.x leaves reconnecting to the caller): it
connects with a Will (``offline`` on ``<base>/status``, retained), says ``online``, publishes
every discovery config and every retained state it has (a broker that restarted has lost them,
a clean session has lost the subscriptions), subscribes to the command topics and Home
Assistant's birth topic, then sends and receives until the connection fails; it waits 1 s,
doubling to 5 min, and tries again. Decisions are in the decision log whatever the broker does.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import sqlite3
import ssl
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt

from optimizer import __version__
from optimizer.backoff import doubled
from optimizer.config import Config, MqttConfig
from optimizer.connect import mqtt_password
from optimizer.decisions.store import DecisionStore
from optimizer.engine.snapshot import DeparturePlan
from optimizer.mqtt.commands import Drafts, Request, Result, carry_out
from optimizer.mqtt.payloads import (
    Message,
    SiteInfo,
    charger_payloads,
    discovery,
    scrub,
    site_payload,
)
from optimizer.mqtt.topics import Names, charger_aliases, slug
from optimizer.plans import ALL_CHARGERS, load_plans
from optimizer.service.core import TickReport
from optimizer.steer import Steering, read_steering, rule_set_names

__all__ = ["FIRST_RETRY_S", "MAX_OUTBOX", "MAX_RETRY_S", "Bridge", "SiteLink"]

_LOGGER = logging.getLogger(__name__)

FIRST_RETRY_S = 1.0
MAX_RETRY_S = 300.0
MAX_OUTBOX = 2000  # topics waiting; far above what a site with a few chargers produces
QOS = 1
FLUSH_S = 5.0  # at a stop, how long the last tick's state may take to go out


class SiteLink:
    """One site's side of the bridge: its names, its last tick, its commands."""

    def __init__(self, bridge: Bridge, config: Config) -> None:
        self.bridge = bridge
        self.config = config
        self.slug = slug(config.label)
        self.report: TickReport | None = None
        self.steering = Steering()
        self.aliases: dict[str, str] = {}  # serial -> chargerN
        self.drafts = Drafts()

    @property
    def info(self) -> SiteInfo:
        return SiteInfo(
            slug=self.slug,
            label=self.config.label,
            timezone=self.config.site.timezone or "UTC",
            rule_sets=tuple(rule_set_names(self.config)),
            aliases=self.aliases,
        )

    def after_tick(self, report: TickReport) -> None:
        """The service's hook: queue this tick's state (and discovery when the chargers
        changed). Never raises: a bug here is logged and the tick is done regardless."""
        try:
            self._after_tick(report)
        except Exception:
            _LOGGER.exception("MQTT state of site %s not queued; the service goes on", self.slug)

    def _after_tick(self, report: TickReport) -> None:
        self.report = report
        self.steering = report.steering or self.steering
        if report.snapshot is not None:
            aliases = charger_aliases(view.sn for view in report.snapshot.chargers)
            if aliases != self.aliases:
                self.aliases = aliases
                self.bridge.queue(discovery(self.bridge.names, self.info, version=__version__))
        self._queue_state()

    def _queue_state(self, plans: dict[str, DeparturePlan | None] | None = None) -> None:
        names, info, now = self.bridge.names, self.info, self.bridge.now()
        messages = [site_payload(names, info, self.report, self.steering, now)]
        if self.report is not None:
            messages += charger_payloads(names, info, self.report, self.steering, plans=plans)
        self.bridge.queue(messages)

    def command(self, store: DecisionStore, charger: str | None, name: str, payload: str) -> None:
        """Carry out one command; publish its result and the state it changed at once."""
        serial = next((sn for sn, alias in self.aliases.items() if alias == charger), None)
        request = Request(name, payload, self.config, charger=charger, charger_sn=serial)
        now = self.bridge.now()
        try:
            result = carry_out(store, request, now=now, drafts=self.drafts)
        except sqlite3.Error as err:  # the database locked or broken: say so, go on
            _LOGGER.warning("command %s from MQTT failed: %s", name, err)
            result = Result(name, ok=False, error=f"the state database failed: {err}")
        if result.ok:  # the state it changed first: a result that says ok finds it there
            self.steering = read_steering(store, self.config)
            stored = load_plans(store)
            everyone = stored.get(ALL_CHARGERS)
            self._queue_state(plans={sn: stored.get(sn) or everyone for sn in self.aliases})
        text = scrub(json.dumps(result.to_json(self.info.local(now)), sort_keys=True), self.aliases)
        self.bridge.queue([Message(self.bridge.names.result(self.slug), text, retain=False)])


class Bridge:
    """The process's one MQTT connection, shared by every site (the fleet's too)."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        database: Path,
        password: str | None = None,
        now: Callable[[], datetime] | None = None,
        first_retry_s: float = FIRST_RETRY_S,
        max_retry_s: float = MAX_RETRY_S,
    ) -> None:
        self.config = config
        self.names = Names(config.base_topic, config.discovery_prefix)
        self.database = database
        self._password = password
        self.now = now or (lambda: datetime.now(UTC))
        self._first_retry_s, self._max_retry_s = first_retry_s, max_retry_s
        self.sites: dict[str, SiteLink] = {}
        self._outbox: OrderedDict[str, Message] = OrderedDict()
        self._retained: dict[str, Message] = {}  # every retained message, for a reconnect
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self.connected = asyncio.Event()
        self.connections = 0  # how many times it connected (tests, the soak)
        self.dropped = 0  # messages dropped because the outbox was full
        self._down_since: datetime | None = None
        self._client: aiomqtt.Client | None = None
        self._idle = asyncio.Event()  # set while nothing waits to be sent

    @classmethod
    def from_config(cls, config: Config) -> Bridge | None:
        """The bridge the config's ``mqtt:`` block asks for, or None without one."""
        if config.mqtt is None:
            return None
        ca = config.mqtt_ca_file  # relative to the config file, as every path in it
        mqtt = config.mqtt if ca is None else config.mqtt.model_copy(update={"tls": ca})
        return cls(mqtt, database=config.database_path, password=mqtt_password(config))

    def site(self, view: Config) -> SiteLink:
        """The link of one site (a view from ``Config.site_configs``), made once."""
        link = SiteLink(self, view)
        self.sites[link.slug] = link
        return link

    # --- the outbox ----------------------------------------------------------------------------

    def queue(self, messages: list[Message]) -> None:
        """Queue ``messages``, the latest per topic winning; never blocks."""
        for message in messages:
            if message.retain:
                self._retained[message.topic] = message
            self._outbox.pop(message.topic, None)
            self._outbox[message.topic] = message
        while len(self._outbox) > MAX_OUTBOX:
            self._outbox.popitem(last=False)
            self.dropped += 1
        if self._outbox:
            self._idle.clear()
            self._ready.set()

    def _queue_everything(self) -> None:
        """After a connect or Home Assistant's birth: every retained message again."""
        self.queue(list(self._retained.values()))

    # --- the connection loop -------------------------------------------------------------------

    def _client_for(self) -> aiomqtt.Client:
        config = self.config
        tls = None
        if config.tls is not False:
            cafile = str(config.tls) if isinstance(config.tls, Path) else None
            tls = ssl.create_default_context(cafile=cafile)
        return aiomqtt.Client(
            config.host,
            config.broker_port,
            identifier=config.identifier,
            username=config.username,
            password=self._password,
            will=aiomqtt.Will(self.names.status, b"offline", qos=QOS, retain=True),
            clean_session=True,
            tls_context=tls,
            timeout=10,
            keepalive=30,
        )

    async def run(self) -> None:
        """Connect, serve, and reconnect with a doubling wait until :meth:`stop`."""
        with _closed_sockets_quiet(asyncio.get_running_loop()):
            await self._reconnecting()

    async def _reconnecting(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                async with self._client_for() as client:
                    self._client = client
                    failures = 0
                    await self._serve(client)
            except* (aiomqtt.MqttError, OSError) as group:
                self._lost(group.exceptions[0])
            except* Exception:  # a bug must not end the bridge for the months the service runs
                _LOGGER.exception("the MQTT bridge failed; it starts again")
            finally:
                self._client = None
                self.connected.clear()
            if self._stopping.is_set():
                break
            wait = doubled(self._first_retry_s, failures, self._max_retry_s)
            failures += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=wait)

    def _lost(self, err: BaseException) -> None:
        if self._down_since is None:
            self._down_since = self.now()
            _LOGGER.warning(
                "MQTT broker %s:%s unreachable (%s); retrying, the service goes on",
                self.config.host,
                self.config.broker_port,
                err,
            )
        else:
            _LOGGER.debug("MQTT broker still unreachable: %s", err)

    async def _serve(self, client: aiomqtt.Client) -> None:
        await client.publish(self.names.status, b"online", qos=QOS, retain=True)
        await client.subscribe([(topic, QOS) for topic in self.names.command_filters])
        await client.subscribe(self.names.birth, qos=QOS)
        self.connections += 1
        if self._down_since is not None:
            _LOGGER.warning("MQTT broker reachable again since %s", self._down_since)
        else:
            _LOGGER.info("MQTT connected to %s:%s", self.config.host, self.config.broker_port)
        self._down_since = None
        self._queue_everything()
        self.connected.set()
        async with asyncio.TaskGroup() as group:
            sender = group.create_task(self._send(client))
            receiver = group.create_task(self._receive(client))
            await self._stopping.wait()
            with contextlib.suppress(TimeoutError):  # what the last tick queued goes out
                async with asyncio.timeout(FLUSH_S):
                    await self._idle.wait()
            sender.cancel()
            receiver.cancel()
        # A clean goodbye: a disconnect does not fire the Will, so say offline ourselves.
        await client.publish(self.names.status, b"offline", qos=QOS, retain=True)

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._outbox:
                topic, message = self._outbox.popitem(last=False)
                try:
                    await client.publish(topic, message.payload, qos=QOS, retain=message.retain)
                except BaseException:
                    if topic not in self._outbox:  # not replaced meanwhile: send it later
                        self._outbox[topic] = message
                        self._outbox.move_to_end(topic, last=False)
                    raise
            self._idle.set()

    async def _receive(self, client: aiomqtt.Client) -> None:
        store: DecisionStore | None = None
        try:
            async for message in client.messages:
                topic = str(message.topic)
                payload = _text(message.payload)
                if topic == self.names.birth:
                    if payload == "online":
                        self._queue_everything()
                    continue
                if message.retain:  # an old command kept by the broker: never replayed
                    continue
                if store is None:
                    store = DecisionStore(self.database)
                self._command(store, topic, payload)
        finally:
            if store is not None:
                store.close()

    def _command(self, store: DecisionStore, topic: str, payload: str) -> None:
        parsed = self.names.parse_command(topic)
        link = self.sites.get(parsed[0]) if parsed else None
        if parsed is None or link is None:
            _LOGGER.warning("MQTT command on %s ignored: no such site", topic)
            return
        _, charger, name = parsed
        try:
            link.command(store, charger, name, payload)
        except Exception:  # a command must never end the connection: logged, answered
            _LOGGER.exception("MQTT command %s failed; the bridge goes on", name)
            failed = Result(name, ok=False, error="internal error (see the service's log)")
            text = json.dumps(failed.to_json(link.info.local(self.now())), sort_keys=True)
            self.queue([Message(self.names.result(link.slug), text, retain=False)])

    async def stop(self) -> None:
        """Say offline and disconnect (the loop then ends)."""
        self._stopping.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Bridge]:
        """The connection loop running beside the block (the service), stopped after it:
        the last state flushed, ``offline`` said, the connection closed."""
        task = asyncio.get_running_loop().create_task(self.run())
        try:
            yield self
        finally:
            await self.stop()
            try:
                async with asyncio.timeout(FLUSH_S + 5):
                    await task
            except TimeoutError:
                _LOGGER.warning("the MQTT bridge did not stop in time; closing it")
            except Exception:  # the service's own ending must not fail for the bridge's
                _LOGGER.exception("the MQTT bridge ended with an error")


def _dead_socket(context: dict[str, Any]) -> bool:
    """An ``add_writer``/``add_reader`` aiomqtt scheduled for a socket that paho closed
    before it ran (the broker vanished): EBADF, harmless, but asyncio logs it as an error."""
    err = context.get("exception")
    handle = context.get("handle")
    callback = getattr(handle, "_callback", None)
    name = getattr(callback, "__name__", "")
    return (
        isinstance(err, OSError)
        and err.errno == errno.EBADF
        and name in ("add_writer", "add_reader")
    )


@contextlib.contextmanager
def _closed_sockets_quiet(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """While the bridge runs, :func:`_dead_socket` errors are logged at debug; every other
    one goes to the handler that was there before (a service runs for months, and a log full
    of tracebacks each time the broker restarts would hide the ones that matter)."""
    before = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if _dead_socket(context):
            _LOGGER.debug("ignored: %s", context.get("message"))
        elif before is not None:
            before(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    try:
        yield
    finally:
        loop.set_exception_handler(before)


def _text(payload: object) -> str:
    if isinstance(payload, bytes | bytearray):
        return payload.decode("utf-8", errors="replace")
    return "" if payload is None else str(payload)
