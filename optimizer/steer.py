"""Steering the running service from outside it: pause, resume, rule sets, departure plans.

`evopt pause|resume|rules use|plan set` in a shell and the MQTT bridge's commands (Home
Assistant) both call these functions, so a command means the same whichever way it comes. None
talks to the service or the cloud: each writes the state database the service reads at its
next tick, as `evopt plan set` always has. Per site, one state value ``steer:<site>`` holds the
rule set in use, the end of a pause, and the commands not yet recorded; the service takes those
into the decision log (policy ``user-command``, action ``hold``, nothing sent) in the same
transaction that removes them (:func:`take_actions`), so a command is in the log or still
waiting, never lost and never twice.

A bad value raises :class:`CommandError` naming what would be valid; the bridge publishes it
on the result topic and records the refused command (outcome ``rejected``) with
:func:`refuse`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from optimizer.config import RULE_SET_DEFAULT, RULE_SET_OFF, Config, parse_duration
from optimizer.decisions import RunMode
from optimizer.decisions.store import DecisionStore, decision_row, parse_utc, utc_text
from optimizer.engine.decision import Decision
from optimizer.engine.snapshot import DeparturePlan
from optimizer.plans import ALL_CHARGERS, clear_plan, parse_ready_by, save_plan

__all__ = [
    "DEFAULT_PAUSE",
    "MAX_ENERGY_KWH",
    "MAX_PAUSE",
    "USER_POLICY",
    "CommandError",
    "Steering",
    "UserAction",
    "clear_departure",
    "departure_plan",
    "known_rule_set",
    "parse_energy",
    "pause",
    "pause_until",
    "read_steering",
    "refuse",
    "resume",
    "rule_set_names",
    "set_departure",
    "steer_key",
    "take_actions",
    "use_rule_set",
]

_LOGGER = logging.getLogger(__name__)

USER_POLICY = "user-command"
DEFAULT_PAUSE = timedelta(hours=1)
MAX_PAUSE = timedelta(days=7)
MAX_ENERGY_KWH = 250.0  # more than any car's battery: anything above is a typo
# Commands kept waiting for a service that does not run: the oldest go first beyond this.
MAX_WAITING = 100


class CommandError(ValueError):
    """A command with a value that cannot be used; the message says what would be valid."""


@dataclass(frozen=True)
class UserAction:
    """One command as the decision log records it (JSON in the state while it waits)."""

    command: str  # pause, resume, rules use, plan set, plan clear
    at: datetime
    source: str  # cli or mqtt
    reason: str
    params: dict[str, Any] = field(default_factory=dict)
    charger_sn: str | None = None
    error: str | None = None  # a refused command: what was wrong

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "at": utc_text(self.at),
            "source": self.source,
            "reason": self.reason,
            "params": self.params,
            "charger_sn": self.charger_sn,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UserAction:
        return cls(
            command=str(data["command"]),
            at=parse_utc(str(data["at"])),
            source=str(data["source"]),
            reason=str(data["reason"]),
            params=dict(data.get("params") or {}),
            charger_sn=data.get("charger_sn"),
            error=data.get("error"),
        )

    def row(self, *, run_id: str, mode: RunMode, site_id: int | None) -> dict[str, Any]:
        """The decision-log row: a record of what the user asked, never a cloud command."""
        decision = Decision(
            policy=USER_POLICY,
            charger_sn=self.charger_sn or ALL_CHARGERS,
            target="charging",
            action="hold",
            params={"command": self.command, **self.params},
            reason=self.reason,
            inputs={"observed": True, "user_command": self.command, "source": self.source},
        )
        row = decision_row(
            decision,
            run_id=run_id,
            mode=mode,
            site_id=site_id,
            ts=self.at,
            outcome="rejected" if self.error else "noop",
            error=self.error,
            commands=0,
        )
        if self.charger_sn is None:
            row["charger_sn"] = None  # about the site, not one charger
        return row


@dataclass(frozen=True)
class Steering:
    """What the user set for a site: the rule set (None: the config's ``rules:``) and the
    end of a pause."""

    rule_set: str | None = None
    paused_until: datetime | None = None

    def paused(self, now: datetime) -> bool:
        return self.paused_until is not None and now < self.paused_until

    def holds_writes(self, now: datetime) -> str | None:
        """Why the service must write nothing now (paused, or the rule set ``off``)."""
        if self.paused(now) and self.paused_until is not None:
            return f"paused until {utc_text(self.paused_until)}"
        if self.rule_set == RULE_SET_OFF:
            return "rule set off"
        return None

    def to_json(self) -> dict[str, Any]:
        until = self.paused_until
        return {"rule_set": self.rule_set, "paused_until": utc_text(until) if until else None}


def steer_key(config: Config) -> str:
    """``steer:<site>``: the site's alias, else its id (what the CLI and the service both
    know without asking the cloud)."""
    return f"steer:{config.label}"


def _steering(value: Any) -> Steering:
    if not isinstance(value, dict):
        return Steering()
    until = value.get("paused_until")
    try:
        paused_until = parse_utc(str(until)) if until else None
    except ValueError:
        paused_until = None
    rule_set = value.get("rule_set")
    return Steering(rule_set=str(rule_set) if rule_set else None, paused_until=paused_until)


def read_steering(store: DecisionStore, config: Config) -> Steering:
    return _steering(store.load_state(steer_key(config)))


def rule_set_names(config: Config) -> list[str]:
    """What `evopt rules use` accepts: ``default`` (the config's ``rules:``), each of
    ``rule_sets:``, and ``off`` (no writes)."""
    names = [RULE_SET_DEFAULT, *config.rule_sets]
    if RULE_SET_OFF not in names:
        names.append(RULE_SET_OFF)
    return names


def _note(
    store: DecisionStore, config: Config, action: UserAction, steering: Steering | None = None
) -> UserAction:
    """Queue ``action`` for the decision log and, when given, set the site's steering, in one
    transaction."""

    def change(old: Any) -> dict[str, Any]:
        value = dict(old) if isinstance(old, dict) else {}
        waiting = [*value.get("pending", []), action.to_json()][-MAX_WAITING:]
        if steering is not None:
            value.update(steering.to_json())
        value["pending"] = waiting
        return value

    store.update_state(steer_key(config), change, updated_at=action.at)
    return action


def _how(source: str) -> str:
    return "from Home Assistant" if source == "mqtt" else "with evopt"


def _local(at: datetime, config: Config) -> str:
    return at.astimezone(ZoneInfo(config.site.timezone or "UTC")).strftime("%a %H:%M")


def pause_until(duration: str | timedelta | None, *, now: datetime) -> datetime:
    """The end of a pause of ``duration`` (default an hour) from ``now``; CommandError for a
    duration that is not one, or not within (0s, 7d]."""
    try:
        span = DEFAULT_PAUSE if duration in (None, "") else parse_duration(duration)
    except ValueError as err:
        raise CommandError(f"pause: {err}") from err
    if not timedelta(0) < span <= MAX_PAUSE:
        raise CommandError(f"pause: {duration!r} must be longer than 0s and at most 7d")
    return now + span


def pause(
    store: DecisionStore, config: Config, *, until: datetime, now: datetime, source: str
) -> UserAction:
    """No writes to the chargers until ``until`` (:func:`pause_until`)."""
    current = read_steering(store, config)
    action = UserAction(
        command="pause",
        at=now,
        source=source,
        reason=f"the user paused the automation {_how(source)} until {_local(until, config)}",
        params={"until": utc_text(until)},
    )
    return _note(store, config, action, Steering(current.rule_set, until))


def resume(store: DecisionStore, config: Config, *, now: datetime, source: str) -> UserAction:
    """End a pause now (nothing to end is fine: the record says so)."""
    current = read_steering(store, config)
    was = "" if current.paused(now) else " (it was not paused)"
    action = UserAction(
        command="resume",
        at=now,
        source=source,
        reason=f"the user resumed the automation {_how(source)}{was}",
    )
    return _note(store, config, action, Steering(current.rule_set, None))


def use_rule_set(
    store: DecisionStore, config: Config, name: str, *, now: datetime, source: str
) -> UserAction:
    """Switch the site to the rule set ``name`` from its next tick."""
    chosen = known_rule_set(config, name)
    current = read_steering(store, config)
    files = config.rules if chosen == RULE_SET_DEFAULT else config.rule_sets.get(chosen, [])
    what = "no writes" if chosen == RULE_SET_OFF else ", ".join(files) or "no rules"
    action = UserAction(
        command="rules use",
        at=now,
        source=source,
        reason=f"the user chose the rule set {chosen!r} {_how(source)} ({what})",
        params={"rule_set": chosen},
    )
    stored = None if chosen == RULE_SET_DEFAULT else chosen
    return _note(store, config, action, Steering(stored, current.paused_until))


def known_rule_set(config: Config, name: str) -> str:
    """``name`` if the site has such a rule set, else CommandError listing those it has."""
    names = rule_set_names(config)
    chosen = name.strip()
    if chosen not in names:
        raise CommandError(f"rules use: unknown rule set {name!r}; use one of: {', '.join(names)}")
    return chosen


def parse_energy(value: str | float) -> float:
    """kWh above 0 and at most :data:`MAX_ENERGY_KWH`."""
    try:
        energy = float(value)
    except (TypeError, ValueError) as err:
        raise CommandError(f"{value!r} is not a number of kWh") from err
    if not 0 < energy <= MAX_ENERGY_KWH:  # also refuses nan
        raise CommandError(f"{value!r}: expected kWh above 0 and at most {MAX_ENERGY_KWH:g}")
    return energy


def departure_plan(
    config: Config, *, by: str, energy_kwh: str | float, now: datetime
) -> DeparturePlan:
    """``energy_kwh`` since plug-in by ``by`` (HH:MM or a date-time); CommandError if not."""
    energy = parse_energy(energy_kwh)
    zone = config.site.timezone or "UTC"
    try:
        ready_by = parse_ready_by(by.strip(), now=now, timezone=zone)
    except ValueError as err:
        raise CommandError(f"--by: {err}") from err
    return DeparturePlan(ready_by=ready_by, energy_kwh=energy)


def set_departure(
    store: DecisionStore,
    config: Config,
    *,
    charger_sn: str | None,
    plan: DeparturePlan,
    now: datetime,
    source: str,
) -> UserAction:
    """`evopt plan set`: the plan (:func:`departure_plan`) stored for the next tick."""
    energy, ready_by = plan.energy_kwh, plan.ready_by
    save_plan(store, charger_sn, plan, now=now)
    action = UserAction(
        command="plan set",
        at=now,
        source=source,
        reason=(
            f"the user set a departure plan {_how(source)}: {energy:g} kWh by "
            f"{_local(ready_by, config)}"
        ),
        params=plan.to_json(),
        charger_sn=charger_sn,
    )
    return _note(store, config, action)


def clear_departure(
    store: DecisionStore, config: Config, *, charger_sn: str | None, now: datetime, source: str
) -> UserAction:
    """`evopt plan clear`: the charger's plan (or every plan) removed."""
    removed = clear_plan(store, charger_sn, now=now)
    action = UserAction(
        command="plan clear",
        at=now,
        source=source,
        reason=f"the user cleared the departure plan {_how(source)} ({removed} removed)",
        params={"removed": removed},
        charger_sn=charger_sn,
    )
    return _note(store, config, action)


def refuse(
    store: DecisionStore,
    config: Config,
    *,
    command: str,
    error: str,
    now: datetime,
    source: str,
    charger_sn: str | None = None,
) -> UserAction:
    """Record a command refused for a bad value (outcome ``rejected``): nothing changed."""
    action = UserAction(
        command=command,
        at=now,
        source=source,
        reason=f"the user's {command} {_how(source)} was refused: nothing changed",
        charger_sn=charger_sn,
        error=error,
    )
    return _note(store, config, action)


def take_actions(
    store: DecisionStore,
    config: Config,
    *,
    run_id: str,
    mode: RunMode,
    site_id: int | None,
    now: datetime,
) -> tuple[Steering, list[UserAction]]:
    """The site's steering, with the commands that waited recorded in the decision log.

    One read per tick when nothing waits; the write (rows and the emptied queue together)
    only when something did. A damaged entry is dropped with a warning: the service goes on.
    """
    key = steer_key(config)
    value = store.load_state(key)
    if not isinstance(value, dict) or not value.get("pending"):
        return _steering(value), []
    taken: list[UserAction] = []

    def change(old: Any) -> tuple[dict[str, Any], Sequence[Mapping[str, Any]]]:
        current = dict(old) if isinstance(old, dict) else {}
        taken.clear()
        for item in current.pop("pending", []):
            try:
                taken.append(UserAction.from_json(item))
            except (KeyError, TypeError, ValueError):
                _LOGGER.warning("dropping an unreadable user command: %r", item)
        rows = [a.row(run_id=run_id, mode=mode, site_id=site_id) for a in taken]
        return current, rows

    new, _ = store.update_state_with_rows(key, change, updated_at=now)
    return _steering(new), list(taken)
