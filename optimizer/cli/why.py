"""`evopt why [TIME] [--charger SN] [--json]`: a charger's state at a time, explained.

"Why did my car stop at 14:05?" is answered from the decision log alone (read-only): the
command in effect then (the last start, stop or level sent, or meant in a dry run), the
latest decision of any kind, the policies it overruled and why, the inputs that mattered, and
what was next. Holds may not be logged every tick, so the state at TIME is the latest row at
or before TIME for the charger's charging target, not a row exactly at TIME.

Times print in the site's zone, as `evopt log` does; ``--json`` keeps UTC, as stored.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, tzinfo
from typing import Any, TextIO

from optimizer.cli.context import Context, display_zone
from optimizer.cli.log import When
from optimizer.cli.output import print_json
from optimizer.decisions.review import DecisionRow
from optimizer.decisions.store import parse_utc, utc_text
from optimizer.enlighten.errors import ConfigError
from optimizer.explain import did_you_mean
from optimizer.service.status import SOURCES
from optimizer.service.view import (
    SHARE_KEYS,
    Reader,
    command_json,
    in_control,
    next_text,
    open_log,
    share_text,
)

__all__ = ["explain", "sentences", "state_of", "why"]

EXIT_OK = 0
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# The facts a person needs to follow a decision; the whole `inputs` is in `evopt log show`.
MATTERED = ("surplus_w", "surplus_age_s", "surplus_source", "tariff", "price")
CHARGER_MATTERED = ("plugged_in", "charging", "amps", "mode", "session_kwh", "plan")


def _now() -> datetime:
    """The clock (one function, so tests can pin it)."""
    return datetime.now(UTC)


async def why(ctx: Context) -> int:
    zone = display_zone(ctx.config)
    now = _now()
    when: When | None = ctx.args.time
    at = when.resolve(now=now, tz=zone) if when is not None else now
    wanted: str | None = ctx.args.charger
    store, note = open_log(ctx.config.database_path)
    if store is None:
        found = [_nothing(wanted, at, note or "")]
    else:
        with store:
            site = ctx.chosen_site_id() if getattr(ctx.args, "site", None) else None
            found = _explain_all(Reader(store), wanted, at, site=site)
    if ctx.args.json:
        print_json(found[0] if len(found) == 1 else found)
        return EXIT_OK
    for index, explanation in enumerate(found):
        if index:
            sys.stdout.write("\n")
        write_sentences(explanation, zone, out=sys.stdout)
    return EXIT_OK


def _explain_all(
    reader: Reader, wanted: str | None, at: datetime, *, site: int | None = None
) -> list[dict[str, Any]]:
    known = reader.serials(site)
    if not known:  # nothing to check a serial against, nor to explain
        return [_nothing(wanted, at, "the decision log has no decisions yet")]
    if wanted is not None and wanted not in known:
        listed = ", ".join(known) or "none"
        raise ConfigError(
            f"the decision log has no charger {wanted}{did_you_mean(wanted, known)}"
            f" (chargers in the log: {listed})",
            hint="pass one of the serials listed, or leave --charger out",
        )
    serials = [wanted] if wanted is not None else known
    return [_explain_one(reader, sn, at) for sn in serials]


def _explain_one(reader: Reader, sn: str, at: datetime) -> dict[str, Any]:
    latest = reader.latest(sn, at=at)
    since = reader.since(latest) if latest is not None else None
    return explain(sn, at, latest=latest, command=reader.command(sn, at=at), since=since)


def _nothing(sn: str | None, at: datetime, note: str) -> dict[str, Any]:
    return explain(sn, at, latest=None, command=None) | {"note": note}


def explain(
    sn: str | None,
    at: datetime,
    *,
    latest: DecisionRow | None,
    command: DecisionRow | None,
    since: datetime | None = None,
) -> dict[str, Any]:
    """The `why --json` object (DESIGN.md section 2), from the charger's latest decision at
    or before ``at`` and the command in effect then (pure)."""
    overruled = [
        {"policy": o.get("policy"), "action": o.get("action"), "reason": o.get("reason")}
        for o in (latest.overruled if latest else [])
    ]
    return {
        "charger_sn": sn,
        "at": utc_text(at),
        "state": state_of(latest, command),
        "decision_id": latest.id if latest else None,
        "decided_at": utc_text(latest.ts) if latest else None,
        "policy": latest.policy if latest else None,
        "in_control": in_control(latest) if latest else None,
        "action": latest.action if latest else None,
        "params": latest.params if latest else None,
        "outcome": latest.outcome if latest else None,
        "reason": latest.reason if latest else None,
        "overruled": overruled,
        "inputs": mattered(latest.inputs) if latest else {},
        "mode": latest.mode if latest else None,
        "since": utc_text(since) if since else None,
        "next": next_text(latest),
        "command": command_json(command),
        "note": None if latest else f"no decision for {sn or 'any charger'} at or before then",
    }


def mattered(inputs: dict[str, Any]) -> dict[str, Any]:
    """The inputs a person needs: surplus and its age, tariff and price, the session, plan."""
    picked = {key: inputs.get(key) for key in MATTERED}
    charger = inputs.get("charger")
    if isinstance(charger, dict):
        picked |= {key: charger.get(key) for key in CHARGER_MATTERED}
    for key in (
        "in_control",
        "next",
        "scheduler_down_since",
        "status_age_s",
        "settling",
        *SHARE_KEYS,
    ):
        if key in inputs:
            picked[key] = inputs[key]
    return picked


def state_of(latest: DecisionRow | None, command: DecisionRow | None) -> str | None:
    """The charger's state after the latest decision: what it reported then, changed by the
    command that decision applied (a stop that went through leaves it stopped)."""
    if latest is None:
        return None
    charger = latest.inputs.get("charger")
    seen = charger if isinstance(charger, dict) else {}
    if latest.outcome == "applied" and command is not None and command.id == latest.id:
        if latest.action == "stop":
            return "stopped (plugged in)"
        if latest.action in ("start", "set_amps"):
            amps = latest.params.get("amps")
            return f"charging at {amps} A" if amps is not None else "charging"
    if seen.get("connected") is False:
        return "offline"
    if seen.get("faulted"):
        return "faulted"
    if seen.get("charging"):
        amps = seen.get("amps")
        return f"charging at {amps} A" if amps is not None else "charging"
    if seen.get("plugged_in"):
        return "plugged in, not charging"
    if seen.get("plugged_in") is False:
        return "unplugged"
    return None


# --- sentences ---------------------------------------------------------------------------------


def sentences(explanation: dict[str, Any], zone: tzinfo) -> list[str]:
    """The explanation in plain sentences, times in ``zone``."""
    sn = explanation["charger_sn"] or "the charger"
    at = _local(explanation["at"], zone)
    if explanation["decision_id"] is None:
        return [f"{sn} at {at}: {_end(explanation['note'])}"]
    lines = [f"{sn} at {at}: {explanation['state'] or 'state unknown'}."]
    command = explanation["command"]
    if command is not None:
        sent = "meant in a dry run (nothing sent)" if command["outcome"] == "dry_run" else "sent"
        lines.append(
            f"Command in effect: {_action(command)}, {sent} at {_local(command['at'], zone)}"
            f" by {command['policy']} (decision {command['decision_id']}): "
            + _end(command["reason"])
        )
    else:
        lines.append("Command in effect: none; no start, stop or level was sent before then.")
    if command is None or command["decision_id"] != explanation["decision_id"]:
        since = f", unchanged since {_local(explanation['since'], zone)}" * bool(
            explanation.get("since")
        )
        lines.append(
            f"Latest decision: {_action(explanation)} ({explanation['outcome']}) at "
            f"{_local(explanation['decided_at'], zone)} by {explanation['in_control']}"
            f" (decision {explanation['decision_id']}{since}): {_end(explanation['reason'])}"
        )
    for other in explanation["overruled"]:
        lines.append(
            f"It overruled {other['policy']}, which wanted {other['action']}: "
            + _end(other["reason"])
        )
    facts = _inputs(explanation["inputs"], explanation["mode"], zone)
    lines.append(f"Inputs that mattered: {facts}.")
    if explanation["next"]:
        lines.append(f"Next: {_end(explanation['next'])}")
    return lines


def _end(text: str | None) -> str:
    """A sentence ends once: a reason that already ends in a stop keeps its own."""
    text = (text or "").strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def write_sentences(explanation: dict[str, Any], zone: tzinfo, *, out: TextIO) -> None:
    for line in sentences(explanation, zone):
        out.write(line + "\n")


def _action(decision: dict[str, Any]) -> str:
    params = decision.get("params") or {}
    if "amps" in params:
        return f"{decision['action']} at {params['amps']} A"
    if "mode" in params:
        return f"{decision['action']} {params['mode']}"
    return str(decision["action"])


def _inputs(inputs: dict[str, Any], mode: str | None, zone: tzinfo) -> str:
    parts = []
    watts = inputs.get("surplus_w")
    if isinstance(watts, int | float):
        source = SOURCES.get(str(inputs.get("surplus_source")), inputs.get("surplus_source"))
        age = inputs.get("surplus_age_s")
        old = f", {int(age // 60)} min old" if isinstance(age, int | float) else ""
        parts.append(f"surplus {watts / 1000:.1f} kW ({source}{old})")
    else:
        parts.append("surplus unknown")
    if inputs.get("tariff") or inputs.get("price") is not None:
        price = f" at {inputs['price']}/kWh" if inputs.get("price") is not None else ""
        parts.append(f"tariff {inputs.get('tariff') or 'default'}{price}")
    if isinstance(inputs.get("session_kwh"), int | float):
        parts.append(f"session {inputs['session_kwh']:.1f} kWh")
    plan = inputs.get("plan")
    if isinstance(plan, dict):
        ready = datetime.fromisoformat(str(plan.get("ready_by"))).astimezone(zone)
        parts.append(f"plan: {plan.get('energy_kwh')} kWh by {ready.strftime(TIME_FORMAT)}")
    if inputs.get("mode"):
        parts.append(f"charger mode {inputs['mode']}")
    share = share_text(inputs)
    if share:
        parts.append(share)
    parts.append({"dry_run": "dry run", "live": "live"}.get(mode or "", mode or "mode unknown"))
    return "; ".join(parts)


def _local(text: str, zone: tzinfo) -> str:
    return parse_utc(text).astimezone(zone).strftime(TIME_FORMAT)
