"""The one-line summary `systemctl status` shows, built from a tick's facts (pure).

``EV9876543210 charging 16 A | surplus 3.2 kW (bucket 7 min old) | 3 decisions, 1 command
(start applied) | 124 req/h``: what the charger does, what the engine saw, what it did about
it, and how much of the request budget it is using.
"""

from __future__ import annotations

from collections.abc import Sequence

from optimizer.actuate import Actuation
from optimizer.engine.decision import Decision
from optimizer.engine.snapshot import ChargerView, Snapshot, Surplus

__all__ = ["charger_phrase", "outage_phrase", "status_line", "surplus_phrase"]

SOURCES = {"lifetime_energy": "bucket", "latest_power": "sample", "gateway": "gateway"}
SHOWN_ACTIONS = 2


def status_line(
    snapshot: Snapshot,
    acted: Sequence[tuple[Decision, Actuation]],
    *,
    requests_last_hour: int,
    dry_run: bool,
) -> str:
    chargers = ", ".join(charger_phrase(c) for c in snapshot.chargers) or "no chargers"
    parts = [
        chargers,
        surplus_phrase(snapshot.surplus),
        activity_phrase(acted),
        f"{requests_last_hour} req/h",
    ]
    outage = outage_phrase(snapshot)
    if outage:
        parts.insert(1, outage)
    return " | ".join(["dry run", *parts] if dry_run else parts)


def charger_phrase(charger: ChargerView) -> str:
    if not charger.connected:
        state = "offline"
    elif charger.faulted:
        state = "faulted"
    elif charger.charging:
        state = "charging" + (f" {charger.amps} A" if charger.amps is not None else "")
    elif charger.plugged_in:
        state = "plugged in, not charging"
    else:
        state = "unplugged"
    return f"{charger.sn} {state}"


def outage_phrase(snapshot: Snapshot) -> str:
    """``scheduler down 42 min, status 12 min old (stale)``; empty when all is well."""
    down = snapshot.scheduler_down_since
    if down is None and snapshot.stale_status_s is None:
        return ""
    parts = []
    if down is not None:
        parts.append(f"scheduler down {_age((snapshot.now - down).total_seconds())}")
    if snapshot.stale_status_s is not None:
        parts.append(f"status {_age(snapshot.stale_status_s)} old (stale)")
    return ", ".join(parts)


def surplus_phrase(surplus: Surplus) -> str:
    watts = surplus.pv_minus_house_w
    if watts is None:
        return "surplus unknown"
    source = SOURCES.get(surplus.source, surplus.source)
    age = surplus.age_s
    old = f" {_age(age)} old" if age is not None else ""
    return f"surplus {watts / 1000:.1f} kW ({source}{old})"


def activity_phrase(acted: Sequence[tuple[Decision, Actuation]]) -> str:
    """``3 decisions, 1 command (start applied)``: the acting decisions, the first two."""
    commands = sum(a.commands for _, a in acted)
    acting = [f"{d.action} {a.outcome}" for d, a in acted if d.action != "hold"]
    shown = ", ".join(acting[:SHOWN_ACTIONS]) + (", ..." if len(acting) > SHOWN_ACTIONS else "")
    text = f"{_count(len(acted), 'decision')}, {_count(commands, 'command')}"
    return f"{text} ({shown})" if shown else text


def _age(seconds: float) -> str:
    return f"{int(seconds)} s" if seconds < 60 else f"{int(seconds // 60)} min"


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"
