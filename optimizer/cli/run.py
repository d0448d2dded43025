"""`evopt run [--dry-run] [--once]`: the service loop, as systemd (or a terminal) runs it.

Logs go to stderr (journald under systemd, whose unit sets `EVOPT_LOG_LEVEL=info`). Each tick
says what it saw and did in one line (service/talk.py): on stdout at a terminal, in the log at
info level under systemd or into a pipe. `--once` instead prints one line per decision of its
one tick, then the status line (its output contract).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from optimizer.cli.context import Context, display_zone
from optimizer.config import Config
from optimizer.service.clock import SystemClock
from optimizer.service.core import Service, TickReport
from optimizer.service.fleet import Fleet
from optimizer.service.talk import Talker, tick_sink
from optimizer.systemd import Notifier

if TYPE_CHECKING:
    from optimizer.mqtt.bridge import Bridge


def _bridge(config: Config) -> Bridge | None:
    """The MQTT bridge of the config's ``mqtt:`` block (docs/home-assistant.md), or None.

    Imported here, not at the top: aiomqtt is loaded only by a service that uses it."""
    if config.mqtt is None:
        return None
    from optimizer.mqtt.bridge import Bridge  # noqa: PLC0415 - see above

    return Bridge.from_config(config)


def _both(
    first: Callable[[TickReport], None] | None, second: Callable[[TickReport], None] | None
) -> Callable[[TickReport], None] | None:
    """One tick callback calling both (the tick line, then the MQTT bridge)."""
    if first is None or second is None:
        return first or second

    def both(report: TickReport) -> None:
        first(report)
        second(report)

    return both


async def run(ctx: Context) -> int:
    config = ctx.config
    if config.sites is not None:
        return await run_fleet(ctx)
    bridge = _bridge(config)
    with Notifier.from_env() as notifier:
        talker = None if ctx.args.once else Talker(display_zone(config), tick_sink(env=os.environ))
        service = Service(
            config,
            config_path=config.source,
            dry_run=ctx.args.dry_run,
            notifier=notifier,
            clock=SystemClock(),
            on_tick=_both(talker, bridge.site(config).after_tick if bridge else None),
        )
        async with bridge.running() if bridge else contextlib.nullcontext():
            code = await service.run(once=ctx.args.once)
    if ctx.args.once and service.last_report is not None:
        print(summary(service.last_report))
    return code


async def run_fleet(ctx: Context) -> int:
    """Every site of the config's ``sites:`` list in this one process (service/fleet.py).

    Each tick line and, with ``--once``, each site's summary starts with the site's name."""
    config = ctx.config
    sink = None if ctx.args.once else tick_sink(env=os.environ)

    bridge = _bridge(config)  # one connection for every site

    def talker(view: Config) -> Callable[[TickReport], None] | None:
        link = bridge.site(view).after_tick if bridge else None
        if sink is None:
            return link
        line = Talker(display_zone(view), lambda line: sink(f"[{view.label}] {line}"))
        return _both(line, link)

    with Notifier.from_env() as notifier:
        fleet = Fleet(
            config,
            config_path=config.source,
            dry_run=ctx.args.dry_run,
            notifier=notifier,
            clock=SystemClock(),
            on_tick=talker,
        )
        async with bridge.running() if bridge else contextlib.nullcontext():
            code = await fleet.run(once=ctx.args.once)
    if ctx.args.once:
        for service in fleet.services:
            if service.last_report is not None:
                print(f"[{service.config.label}]\n{summary(service.last_report)}")
    return code


def summary(report: TickReport) -> str:
    """One line per decision (``sn target: action params -> outcome: reason``), then the
    status line."""
    lines = []
    for acted in report.acted:
        decision, actuation = acted.decision, acted.actuation
        params = " ".join(f"{k}={v}" for k, v in decision.params.items() if k != "edits")
        if "edits" in decision.params:
            params = f"{len(decision.params['edits'])} edit(s)"
        error = f" [{actuation.error}]" if actuation.error else ""
        lines.append(
            f"{decision.charger_sn} {decision.target}: {decision.action}"
            f"{' ' + params if params else ''} -> {actuation.outcome}{error}: {decision.reason}"
        )
    lines.append(report.status)
    return "\n".join(lines)
