"""The one line per tick `evopt run` says: to a person at a terminal, or to the journal.

``14:05:30  surplus 0.4 kW (bucket 9 min old)  EV123: stop applied (solar_excess: surplus below
1.0 kW for 6 min)``. A homeowner who starts the service in a terminal wants to see it work
without ``--log-level debug``; under systemd stdout is the journal already, so the same line
goes there once, through logging at info level (the unit sets ``EVOPT_LOG_LEVEL=info``), and
nothing is printed twice. The line is a pure function of the tick report, so it is tested
without a terminal.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import tzinfo
from typing import Any, TextIO

from optimizer.logsafe import redact
from optimizer.service.core import Acted, TickReport
from optimizer.service.status import SOURCES

__all__ = ["REASON_WIDTH", "Talker", "shorten", "tick_line", "tick_sink", "under_systemd"]

_LOGGER = logging.getLogger(__name__)

# A reason longer than this is cut at a word and marked: the line stays one readable line;
# `evopt why` and `evopt log show` have the whole sentence.
REASON_WIDTH = 72
ELLIPSIS = "..."
SYSTEMD_ENV = ("JOURNAL_STREAM", "INVOCATION_ID")
GAP = "  "


def tick_line(report: TickReport, zone: tzinfo) -> str:
    """What one tick saw and did, for a person: time, surplus, then each charger."""
    clock = report.at.astimezone(zone).strftime("%H:%M:%S")
    if report.problem is not None:  # the status says what went wrong and when it retries
        return redact(f"{clock}{GAP}{report.status}")
    if not report.acted:
        return f"{clock}{GAP}no chargers to decide for"
    inputs = report.acted[0].decision.inputs
    parts = [clock, surplus_text(inputs)]
    parts += [charger_text(sn, acted) for sn, acted in _by_charger(report.acted)]
    return redact(GAP.join(parts))


def surplus_text(inputs: Mapping[str, Any]) -> str:
    """``surplus 0.4 kW (bucket 9 min old)`` from a decision's inputs; ``surplus unknown``."""
    watts = inputs.get("surplus_w")
    if not isinstance(watts, int | float):
        return "surplus unknown"
    source = str(inputs.get("surplus_source") or "")
    label = SOURCES.get(source, source)
    age = inputs.get("surplus_age_s")
    old = f" {_age(float(age))} old" if isinstance(age, int | float) else ""
    detail = f" ({label}{old})" if label or old else ""
    return f"surplus {watts / 1000:.1f} kW{detail}"


def charger_text(sn: str, acted: Sequence[Acted]) -> str:
    """``EV123: stop applied (policy: reason)``: the decisions that act, else the one that
    holds the charging target (what the charger keeps doing, and why)."""
    acting = [a for a in acted if a.decision.action != "hold"]
    shown = acting or [_charging(acted)]
    return f"{sn}: " + "; ".join(_decision_text(a) for a in shown)


def _charging(acted: Sequence[Acted]) -> Acted:
    return next((a for a in acted if a.decision.target == "charging"), acted[0])


def _decision_text(acted: Acted) -> str:
    decision, actuation = acted.decision, acted.actuation
    why = f"({decision.policy}: {shorten(decision.reason, REASON_WIDTH)})"
    if decision.action == "hold":
        return f"holds {why}"
    params = _params(decision.params)
    outcome = "dry run, not sent" if actuation.outcome == "dry_run" else actuation.outcome
    error = f" [{shorten(actuation.error, REASON_WIDTH // 2)}]" if actuation.error else ""
    return f"{decision.action}{params} {outcome}{error} {why}"


def _params(params: Mapping[str, Any]) -> str:
    if "amps" in params:
        return f" {params['amps']} A"
    if "mode" in params:
        return f" {params['mode']}"
    if "edits" in params:
        return f" ({len(params['edits'])} edits)"
    if "enabled" in params:
        return " on" if params["enabled"] else " off"
    return ""


def shorten(text: str, width: int) -> str:
    """``text`` on one line in at most ``width`` characters, cut between words with an
    ellipsis (a single word longer than the room is cut, still with the ellipsis)."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    room = max(width - len(ELLIPSIS), 1)
    cut = flat[: room + 1]
    space = cut.rfind(" ")
    kept = cut[:space] if space > 0 else flat[:room]
    return kept.rstrip(" ,;:.") + ELLIPSIS


def _by_charger(acted: Iterable[Acted]) -> list[tuple[str, list[Acted]]]:
    groups: dict[str, list[Acted]] = {}
    for item in acted:
        groups.setdefault(item.decision.charger_sn, []).append(item)
    return list(groups.items())


def _age(seconds: float) -> str:
    return f"{int(seconds)} s" if seconds < 60 else f"{int(seconds // 60)} min"


def under_systemd(env: Mapping[str, str]) -> bool:
    """systemd sets these for a unit's processes; stdout then is the journal."""
    return any(env.get(name) for name in SYSTEMD_ENV)


def tick_sink(*, out: TextIO | None = None, env: Mapping[str, str]) -> Callable[[str], None]:
    """Where the tick line goes: stdout at a terminal, else the log at info level."""
    stream = out or sys.stdout
    if stream.isatty() and not under_systemd(env):

        def write(line: str) -> None:
            stream.write(line + "\n")
            stream.flush()

        return write

    def log(line: str) -> None:
        _LOGGER.info("%s", line)

    return log


class Talker:
    """The service's ``on_tick``: each report as one line, in the site's zone."""

    def __init__(self, zone: tzinfo, sink: Callable[[str], None]) -> None:
        self.zone = zone
        self.sink = sink

    def __call__(self, report: TickReport) -> None:
        self.sink(tick_line(report, self.zone))
