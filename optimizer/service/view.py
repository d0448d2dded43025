"""The service's view of a charger, read back from the decision log (read-only).

`evopt status` and `evopt why` run beside the service, in another process, and answer "what
is it doing, since when, and what next?" from what the service wrote: its decisions and its
heartbeat (service/heartbeat.py). The file is opened read-only, so reading never blocks or
changes what the service writes; no file or no rows is an answer too ("the service has not
run"), never an error.

Holds may not be recorded every tick (an unchanged hold is written when its reason or inputs
change, plus a heartbeat), so "the decision at T" is the latest row at or before T for that
charger and target, never a row exactly at T.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from optimizer.decisions.review import COLUMNS, DecisionRow
from optimizer.decisions.store import DecisionStore, parse_utc, utc_text
from optimizer.engine.snapshot import DeparturePlan
from optimizer.enlighten.errors import ConfigError
from optimizer.plans import ALL_CHARGERS, load_plans
from optimizer.service.health import WHAT
from optimizer.service.heartbeat import NEVER_RAN, Health, heartbeat_key, judge

__all__ = [
    "COMMAND_OUTCOMES",
    "NOT_RUN",
    "Reader",
    "ServiceView",
    "command_json",
    "describe",
    "in_control",
    "in_control_of",
    "next_of",
    "next_text",
    "open_log",
]

CHARGING = "charging"
# A command is in effect once sent (applied) or, in a dry run, once it would have been.
COMMAND_OUTCOMES = ("applied", "dry_run")
NOT_RUN = "the service has not run yet (no decisions in the log)"
_SELECT = ", ".join(COLUMNS)
_LIVE = "mode != 'simulation'"  # a simulation never describes the real charger
_TROUBLE: dict[str, str] = {str(key): text for key, text in WHAT.items()}


def open_log(path: Path) -> tuple[DecisionStore | None, str | None]:
    """The decision log opened read-only, or None and the sentence saying why not."""
    try:
        return DecisionStore.open_readonly(path), None
    except ConfigError as err:
        if not path.is_file():
            return None, f"the service has not run yet (no decision log at {path})"
        return None, f"the decision log cannot be read: {err.message}"


class Reader:
    """Queries over one read-only store, for one charger and target at a time."""

    def __init__(self, store: DecisionStore) -> None:
        self.store = store

    def _rows(self, where: str, args: list[Any], *, order: str, limit: int) -> list[DecisionRow]:
        rows = self.store.db.table("decisions").rows_where(
            f"{_LIVE} AND {where}", args, order_by=order, select=_SELECT, limit=limit
        )
        return [DecisionRow.from_row(row) for row in rows]

    def latest(
        self, sn: str, *, at: datetime | None = None, target: str = CHARGING
    ) -> DecisionRow | None:
        """The charger's latest decision for ``target`` at or before ``at`` (None: newest)."""
        where, args = "charger_sn = ? AND target = ?", [sn, target]
        if at is not None:
            where += " AND ts <= ?"
            args.append(utc_text(at))
        found = self._rows(where, args, order="ts DESC, id DESC", limit=1)
        return found[0] if found else None

    def command(
        self, sn: str, *, at: datetime | None = None, target: str = CHARGING
    ) -> DecisionRow | None:
        """The command in effect: the last acting decision sent (or, dry, meant) by ``at``."""
        marks = ", ".join("?" for _ in COMMAND_OUTCOMES)
        where = f"charger_sn = ? AND target = ? AND action != 'hold' AND outcome IN ({marks})"
        args: list[Any] = [sn, target, *COMMAND_OUTCOMES]
        if at is not None:
            where += " AND ts <= ?"
            args.append(utc_text(at))
        found = self._rows(where, args, order="ts DESC, id DESC", limit=1)
        return found[0] if found else None

    def since(self, row: DecisionRow) -> datetime:
        """When the unbroken run of ``row``'s policy and action for its charger and target
        began: the first row after the last one that differs."""
        base = "charger_sn IS ? AND target IS ?"
        args: list[Any] = [row.charger_sn, row.target]
        other = self._rows(
            f"{base} AND (ts < ? OR (ts = ? AND id < ?)) AND NOT (policy = ? AND action = ?)",
            [*args, utc_text(row.ts), utc_text(row.ts), row.id, row.policy, row.action],
            order="ts DESC, id DESC",
            limit=1,
        )
        if not other:
            first = self._rows(base, args, order="ts, id", limit=1)
            return first[0].ts if first else row.ts
        cut = other[0]
        after = self._rows(
            f"{base} AND (ts > ? OR (ts = ? AND id > ?))",
            [*args, utc_text(cut.ts), utc_text(cut.ts), cut.id],
            order="ts, id",
            limit=1,
        )
        return after[0].ts if after else row.ts

    def serials(self, site_id: int | None = None) -> list[str]:
        """Every charger the log has decided for (for did-you-mean and "each charger"), of
        one site when ``site_id`` is given (a log of several sites)."""
        only = "" if site_id is None else " AND site_id = ?"
        rows = self.store.db.execute(
            "SELECT DISTINCT charger_sn FROM decisions WHERE mode != 'simulation'"  # noqa: S608
            f" AND charger_sn IS NOT NULL{only} ORDER BY charger_sn",  # fixed text, bound values
            [] if site_id is None else [site_id],
        ).fetchall()
        return [str(row[0]) for row in rows]

    def health(self, site_id: int | None, *, now: datetime) -> Health:
        """The service's heartbeat for the site (or from before the site was known)."""
        for key in (heartbeat_key(site_id), heartbeat_key(None)):
            record = self.store.load_state(key)
            if record is not None:
                return judge(record, now=now)
        return NEVER_RAN

    def plans(self, sn: str, *, now: datetime) -> list[dict[str, Any]]:
        """The departure plans that apply to the charger and are still ahead."""
        return active_plans(load_plans(self.store), sn, now=now)


def active_plans(
    plans: dict[str, DeparturePlan], sn: str, *, now: datetime
) -> list[dict[str, Any]]:
    """The charger's own plan, else the every-charger one, while its time is ahead (as
    :func:`optimizer.plans.with_plans` gives the engine)."""
    plan = plans.get(sn) or plans.get(ALL_CHARGERS)
    if plan is None or plan.ready_by <= now:
        return []
    return [{"ready_by": utc_text(plan.ready_by), "energy_kwh": plan.energy_kwh}]


def learned_plans(row: DecisionRow | None, *, now: datetime) -> list[dict[str, Any]]:
    """The learned plan (``plans: auto``) the service's latest decision used, while ahead: it
    lives in no table, only in the decision's inputs."""
    charger = row.inputs.get("charger") if row is not None else None
    plan = charger.get("plan") if isinstance(charger, dict) else None
    if not isinstance(plan, dict) or not isinstance(plan.get("learned"), str):
        return []
    try:
        ready_by = datetime.fromisoformat(str(plan["ready_by"]))
        energy = float(plan["energy_kwh"])
    except (KeyError, TypeError, ValueError):
        return []
    if ready_by.tzinfo is None or ready_by <= now:  # the engine logs aware times only
        return []
    return [
        {
            "ready_by": utc_text(ready_by.astimezone(UTC)),
            "energy_kwh": energy,
            "learned": plan["learned"],
        }
    ]


def in_control(row: DecisionRow) -> str:
    """The policy in control: the engine's ``inputs["in_control"]`` when it says, else the
    row's own policy."""
    return in_control_of(row.inputs, row.policy)


def in_control_of(inputs: Mapping[str, Any], policy: str) -> str:
    """:func:`in_control` of a decision's inputs and policy (also the MQTT bridge's state)."""
    named = inputs.get("in_control")
    if isinstance(named, str) and named:
        return named
    if isinstance(named, dict) and isinstance(named.get("policy"), str):
        return str(named["policy"])
    return policy


def next_text(row: DecisionRow | None) -> str | None:
    """What the decision waits for or plans next (``inputs["next"]``), as one sentence."""
    return None if row is None else next_of(row.inputs)


def next_of(inputs: Mapping[str, Any]) -> str | None:
    """``inputs["next"]`` of a decision as one sentence (also the MQTT bridge's state)."""
    value = inputs.get("next")
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        for key in ("text", "summary", "reason", "what"):
            if isinstance(value.get(key), str):
                return str(value[key])
    return None


SHARE_KEYS = (
    "share_amps",
    "share_w",
    "site_chargers",
    "allocation",
    "allocation_surplus_w",
    "share_bound",
)


def share_json(row: DecisionRow | None) -> dict[str, Any] | None:
    """What the site allocation gave this charger (sites of two or more chargers), else None."""
    if row is None or "share_amps" not in row.inputs:
        return None
    return {key: row.inputs.get(key) for key in SHARE_KEYS}


def share_text(inputs: dict[str, Any]) -> str | None:
    """The site share in words: "7 A (1.6 kW) of what 2 chargers share; cut by the surplus"."""
    amps, chargers = inputs.get("share_amps"), inputs.get("site_chargers")
    if not isinstance(amps, int) or not isinstance(chargers, int):
        return None
    watts = inputs.get("share_w")
    power = f" ({watts / 1000:.1f} kW)" if isinstance(watts, int | float) else ""
    text = f"site share {amps} A{power} of what {chargers} chargers share"
    surplus = inputs.get("allocation_surplus_w")
    if isinstance(surplus, int | float):
        text += f" (solar {surplus / 1000:.1f} kW)"
    bound = inputs.get("share_bound")
    return f"{text}; cut by the {bound}" if bound else text


def command_json(row: DecisionRow | None) -> dict[str, Any] | None:
    """The command in effect, as `status --json` and `why --json` show it."""
    if row is None:
        return None
    return {
        "decision_id": row.id,
        "at": utc_text(row.ts),
        "policy": row.policy,
        "action": row.action,
        "params": row.params,
        "outcome": row.outcome,
        "reason": row.reason,
    }


@dataclass(frozen=True)
class ServiceView:
    """What `evopt status --json` puts under each charger's ``service``."""

    health: Health
    row: DecisionRow | None
    since: datetime | None
    plans: list[dict[str, Any]]
    note: str | None = None
    command: DecisionRow | None = None

    def as_json(self) -> dict[str, Any]:
        row = self.row
        return {
            "running": self.health.running,
            "policy": in_control(row) if row else None,
            "action": row.action if row else None,
            "reason": row.reason if row else None,
            "since": utc_text(self.since) if self.since else None,
            "next": next_text(row),
            "decision_id": row.id if row else None,
            "decided_at": utc_text(row.ts) if row else None,
            "outcome": row.outcome if row else None,
            "command": command_json(self.command),
            "share": share_json(row),
            **self.health.as_json(),
            "plans": self.plans,
            "note": self.note,
        }


def service_view(
    reader: Reader | None,
    sn: str,
    *,
    site_id: int | None,
    now: datetime,
    note: str | None = None,
) -> ServiceView:
    """One charger's view; ``reader`` None (no log) gives "not running" with ``note``."""
    if reader is None:
        return ServiceView(NEVER_RAN, None, None, [], note or NOT_RUN)
    row = reader.latest(sn)
    health = reader.health(site_id, now=now)
    since = reader.since(row) if row is not None else None
    if row is None:
        note = NOT_RUN if health.state is None else f"no decisions for {sn} yet"
    plans = reader.plans(sn, now=now) or learned_plans(row, now=now)
    return ServiceView(health, row, since, plans, note, command=reader.command(sn))


def read_views(
    path: Path,
    serials: list[str],
    *,
    site_id: int | None,
    now: datetime,
    also: Callable[[DecisionStore], None] | None = None,
) -> dict[str, ServiceView]:
    """Each charger's view from the log at ``path`` (opened read-only, then closed).

    ``also`` reads whatever else the caller needs from the same open store (`evopt status`
    its steering), so one status opens the log once, not once per question."""
    store, note = open_log(path)
    if store is None:
        return {sn: service_view(None, sn, site_id=site_id, now=now, note=note) for sn in serials}
    with store:
        reader = Reader(store)
        if also is not None:
            also(store)
        return {sn: service_view(reader, sn, site_id=site_id, now=now) for sn in serials}


def describe(sn: str, view: ServiceView, zone: tzinfo, *, now: datetime) -> list[str]:
    """The view in sentences, for `evopt status` (times in the site's zone)."""
    health, row = view.health, view.row
    if health.last_tick_at is None and row is None:
        return [f"{sn}: {view.note or NOT_RUN}"]
    lines = [f"{sn}: {_service_sentence(health, zone, now=now)}"]
    if row is None:
        lines.append(f"{sn}: {view.note or NOT_RUN}")
    else:
        since = view.since or row.ts
        lines.append(
            f"{sn}: {in_control(row)} {_doing(row)} since {_local(since, zone, now=now)}"
            f" ({_ago(now - since)}): {row.reason}"
        )
        command = view.command
        if command is not None and command.id != row.id:
            lines.append(
                f"{sn}: command in effect: {_doing(command)} at "
                f"{_local(command.ts, zone, now=now)} by {command.policy}: {command.reason}"
            )
        share = share_text(row.inputs)
        if share:
            lines.append(f"{sn}: {share}")
        upcoming = next_text(row)
        if upcoming:
            lines.append(f"{sn}: next: {upcoming}")
    for plan in view.plans:
        ready = _local(parse_utc(plan["ready_by"]), zone, now=now)
        learned = f" (learned: {plan['learned']})" if "learned" in plan else ""
        lines.append(f"{sn}: plan: ready by {ready} with {plan['energy_kwh']:g} kWh{learned}")
    return lines


def _service_sentence(health: Health, zone: tzinfo, *, now: datetime) -> str:
    mode = "dry run (nothing is sent)" if health.mode == "dry_run" else "live"
    if health.last_tick_at is None:
        return "the service is not running (it left no heartbeat); as it last decided:"
    tick = (
        f"last tick {_local(health.last_tick_at, zone, now=now)}, {_ago(now - health.last_tick_at)}"
    )
    source = f"; surplus from {health.surplus_source}" if health.surplus_source else ""
    source += _token_clause(health.gateway_token, zone, now=now)
    if not health.running:
        ended = health.state or "stopped"
        return f"the service is not running ({ended}; {tick}{source}); as it last decided:"
    trouble = ""
    if health.problem is not None:
        trouble = f"; trouble: {_TROUBLE.get(health.problem, health.problem)}"
        trouble += f" ({health.message})" if health.message else ""
    state = "healthy" if health.healthy else "running"
    return f"the service runs, {state}, {mode} ({tick}){trouble}{source}"


def _token_clause(token: dict[str, Any] | None, zone: tzinfo, *, now: datetime) -> str:
    """``; gateway token until 2027-12-06``, and a failed renewal with its reason and when
    it is tried again (optimizer/gateway/renew.py)."""
    if not token:
        return ""
    expires, after = _iso(token.get("expires_at")), _iso(token.get("next_renewal_after"))
    text = f"; gateway token until {_local(expires, zone, now=now)}" if expires else ""
    failed = token.get("renewal_failed")
    if failed:
        text += f"; gateway token renewal failed: {failed}"
        text += f" (next try {_local(after, zone, now=now)})" if after else ""
    return text


def _iso(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _doing(row: DecisionRow) -> str:
    if row.action == "hold":
        return "holds"
    outcome = {"applied": "", "dry_run": " (dry run)"}.get(row.outcome, f" ({row.outcome})")
    amps = f" {row.params['amps']} A" if "amps" in row.params else ""
    return f"{row.action}{amps}{outcome}"


def _local(when: datetime, zone: tzinfo, *, now: datetime) -> str:
    local = when.astimezone(zone)
    same_day = local.date() == now.astimezone(zone).date()
    return local.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M")


def _ago(span: timedelta) -> str:
    seconds = max(0, int(span.total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"
