"""Commands from Home Assistant, carried out through the CLI's own code (optimizer/steer.py).

A table maps each command topic's last level to a handler; every handler calls the function
`evopt pause|resume|rules use|plan set|plan clear` calls, so a button in Home Assistant and a
command in a shell cannot drift apart. A bad value (an unknown rule set, ``25:00``, ``-3``
kWh, a charger that does not exist) comes back as a :class:`Result` with ``ok`` false and the
error, which the bridge publishes on ``<base>/<site>/result`` and logs; the refusal is recorded
in the decision log too (outcome ``rejected``). Nothing here raises for a user's input.

The departure plan comes from two entities (the ready-by text and the energy number) while
`evopt plan set` takes both at once: a change of one is completed with the other from the plan
in force, else from the last value sent for it, else :data:`DEFAULT_READY_BY` and
:data:`DEFAULT_ENERGY_KWH`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from optimizer.config import Config
from optimizer.decisions.store import DecisionStore
from optimizer.plans import ALL_CHARGERS, load_plans
from optimizer.steer import (
    CommandError,
    UserAction,
    clear_departure,
    departure_plan,
    pause,
    pause_until,
    refuse,
    resume,
    set_departure,
    use_rule_set,
)

__all__ = ["DEFAULT_ENERGY_KWH", "DEFAULT_READY_BY", "Drafts", "Request", "Result", "carry_out"]

_LOGGER = logging.getLogger(__name__)

SOURCE = "mqtt"
DEFAULT_READY_BY = "07:00"
DEFAULT_ENERGY_KWH = 20.0
MAX_PAYLOAD = 512  # more than any command needs: a longer payload is refused unread


@dataclass(frozen=True)
class Request:
    """One command message: its site, charger (alias and serial) and payload."""

    command: str
    payload: str
    config: Config  # the site's view of the config
    charger: str | None = None  # the alias in the topic
    charger_sn: str | None = None  # its serial, None for the site or an unknown alias


@dataclass(frozen=True)
class Result:
    command: str
    ok: bool
    error: str | None = None
    detail: str | None = None  # what was done, as the decision log says it

    def to_json(self, at: str | None) -> dict[str, Any]:
        return {
            "command": self.command,
            "ok": self.ok,
            "error": self.error,
            "detail": self.detail,
            "at": at,
        }


@dataclass
class Drafts:
    """The last ready-by and energy sent per charger (serial), to complete a plan."""

    ready_by: dict[str, str] = field(default_factory=dict)
    energy: dict[str, float] = field(default_factory=dict)


Handler = Callable[[DecisionStore, Request, datetime, Drafts], UserAction]


def _pause(store: DecisionStore, req: Request, now: datetime, _: Drafts) -> UserAction:
    duration = req.payload.strip()
    until = pause_until(None if duration.upper() in ("", "PRESS") else duration, now=now)
    return pause(store, req.config, until=until, now=now, source=SOURCE)


def _resume(store: DecisionStore, req: Request, now: datetime, _: Drafts) -> UserAction:
    return resume(store, req.config, now=now, source=SOURCE)


def _rule_set(store: DecisionStore, req: Request, now: datetime, _: Drafts) -> UserAction:
    return use_rule_set(store, req.config, req.payload, now=now, source=SOURCE)


def _current(store: DecisionStore, req: Request) -> tuple[str | None, float | None]:
    """The plan in force for the charger: its ready-by as local HH:MM, and its energy."""
    plans = load_plans(store)
    plan = plans.get(req.charger_sn or ALL_CHARGERS) or plans.get(ALL_CHARGERS)
    if plan is None:
        return None, None
    zone = ZoneInfo(req.config.site.timezone or "UTC")
    return f"{plan.ready_by.astimezone(zone):%H:%M}", plan.energy_kwh


def _set_plan(
    store: DecisionStore, req: Request, now: datetime, by: str, energy: str | float
) -> UserAction:
    plan = departure_plan(req.config, by=by, energy_kwh=energy, now=now)
    return set_departure(
        store, req.config, charger_sn=req.charger_sn, plan=plan, now=now, source=SOURCE
    )


def _key(req: Request) -> str:
    return req.charger_sn or ALL_CHARGERS


def _plan_energy(store: DecisionStore, req: Request, now: datetime, drafts: Drafts) -> UserAction:
    by, _ = _current(store, req)
    ready_by = by or drafts.ready_by.get(_key(req), DEFAULT_READY_BY)
    action = _set_plan(store, req, now, ready_by, req.payload)
    drafts.energy[_key(req)] = float(req.payload)
    return action


def _plan_ready_by(store: DecisionStore, req: Request, now: datetime, drafts: Drafts) -> UserAction:
    _, kwh = _current(store, req)
    energy = kwh if kwh is not None else drafts.energy.get(_key(req), DEFAULT_ENERGY_KWH)
    action = _set_plan(store, req, now, req.payload, energy)
    drafts.ready_by[_key(req)] = req.payload.strip()
    return action


def _plan(store: DecisionStore, req: Request, now: datetime, _: Drafts) -> UserAction:
    """``{"by": "07:30", "energy_kwh": 20}`` at once (for automations), or ``clear``."""
    if req.payload.strip().lower() == "clear":
        return clear_departure(store, req.config, charger_sn=req.charger_sn, now=now, source=SOURCE)
    try:
        data = json.loads(req.payload)
        by, energy = str(data["by"]), data["energy_kwh"]
    except (ValueError, TypeError, KeyError) as err:
        raise CommandError(
            'plan: expected JSON like {"by": "07:30", "energy_kwh": 20}, or clear'
        ) from err
    return _set_plan(store, req, now, by, energy)


def _plan_clear(store: DecisionStore, req: Request, now: datetime, _: Drafts) -> UserAction:
    return clear_departure(store, req.config, charger_sn=req.charger_sn, now=now, source=SOURCE)


SITE_COMMANDS: dict[str, Handler] = {
    "pause": _pause,
    "resume": _resume,
    "rule_set": _rule_set,
    "plan": _plan,
}
CHARGER_COMMANDS: dict[str, Handler] = {
    "plan": _plan,
    "plan_energy": _plan_energy,
    "plan_ready_by": _plan_ready_by,
    "plan_clear": _plan_clear,
}


def _handler(req: Request) -> Handler:
    """The handler of ``req``; CommandError for a command, charger or payload that is not."""
    table = SITE_COMMANDS if req.charger is None else CHARGER_COMMANDS
    handler = table.get(req.command)
    if handler is None:
        raise CommandError(
            f"unknown command {req.command!r}; use one of: {', '.join(sorted(table))}"
        )
    if req.charger is not None and req.charger_sn is None:
        raise CommandError(f"no charger {req.charger!r} at this site")
    if len(req.payload) > MAX_PAYLOAD:
        raise CommandError(f"a payload of {len(req.payload)} characters is too long")
    return handler


def carry_out(store: DecisionStore, req: Request, *, now: datetime, drafts: Drafts) -> Result:
    """Do what ``req`` asks; a bad value is a refused :class:`Result`, logged and recorded."""
    try:
        action = _handler(req)(store, req, now, drafts)
    except CommandError as err:
        _LOGGER.warning("command %s from MQTT refused: %s", req.command, err)
        refuse(
            store,
            req.config,
            command=req.command,
            error=str(err),
            now=now,
            source=SOURCE,
            charger_sn=req.charger_sn,
        )
        return Result(req.command, ok=False, error=str(err))
    _LOGGER.info("command %s from MQTT: %s", req.command, action.reason)
    return Result(req.command, ok=True, detail=action.reason)
