"""`evopt run [--dry-run] [--once]`: the service loop, as systemd (or a terminal) runs it.

Logs go to stderr (journald under systemd, whose unit sets `EVOPT_LOG_LEVEL=info`). Each tick
says what it saw and did in one line (service/talk.py): on stdout at a terminal, in the log at
info level under systemd or into a pipe. `--once` instead prints one line per decision of its
one tick, then the status line (its output contract).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from optimizer.cli.context import Context
from optimizer.cli.log import display_zone
from optimizer.config import Config
from optimizer.service import Fleet, Service, SystemClock, TickReport
from optimizer.service.talk import Talker, tick_sink
from optimizer.systemd import Notifier


async def run(ctx: Context) -> int:
    config = ctx.config
    if config.sites is not None:
        return await run_fleet(ctx)
    with Notifier.from_env() as notifier:
        service = Service(
            config,
            config_path=config.source,
            dry_run=ctx.args.dry_run,
            notifier=notifier,
            clock=SystemClock(),
            on_tick=None
            if ctx.args.once
            else Talker(display_zone(config), tick_sink(env=os.environ)),
        )
        code = await service.run(once=ctx.args.once)
    if ctx.args.once and service.last_report is not None:
        print(summary(service.last_report))
    return code


async def run_fleet(ctx: Context) -> int:
    """Every site of the config's ``sites:`` list in this one process (service/fleet.py).

    Each tick line and, with ``--once``, each site's summary starts with the site's name."""
    config = ctx.config
    sink = None if ctx.args.once else tick_sink(env=os.environ)

    def talker(view: Config) -> Callable[[TickReport], None] | None:
        if sink is None:
            return None
        return Talker(display_zone(view), lambda line: sink(f"[{view.label}] {line}"))

    with Notifier.from_env() as notifier:
        fleet = Fleet(
            config,
            config_path=config.source,
            dry_run=ctx.args.dry_run,
            notifier=notifier,
            clock=SystemClock(),
            on_tick=talker,
        )
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
