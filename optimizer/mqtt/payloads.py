"""What the bridge publishes, built by pure functions: Home Assistant discovery and state.

Discovery follows Home Assistant's MQTT discovery (one retained config per entity at
``<prefix>/<component>/<node>/<object>/config``): a stable ``unique_id`` made of the site
alias, the charger alias and the entity key, never a display name or a serial; one ``device``
per charger whose ``via_device`` is the site's evopt device; ``availability`` on the bridge's
Will topic; ``origin`` naming evopt. Each entity reads its field of one JSON state topic per
device with a ``value_template`` (as zigbee2mqtt does), so a tick is one message per device,
not one per entity.

Every payload leaves through :func:`scrub`: serials become aliases and the log redaction
(optimizer/logsafe.py: registered secrets, e-mails, bearer tokens) runs over the text, so a
reason or status line that names a serial or quotes an error never publishes it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from optimizer.config import RULE_SET_DEFAULT
from optimizer.engine.decision import Decision
from optimizer.engine.snapshot import ChargerView, DeparturePlan
from optimizer.logsafe import redact
from optimizer.mqtt.topics import Names
from optimizer.planner.outlook import LEARNED_SOURCE
from optimizer.service.core import TickReport
from optimizer.service.view import in_control_of, next_of
from optimizer.steer import MAX_ENERGY_KWH, Steering

__all__ = [
    "CHARGER_STATES",
    "Message",
    "SiteInfo",
    "charger_payloads",
    "discovery",
    "scrub",
    "site_payload",
]

HA_STATE_MAX = 255  # Home Assistant refuses a longer state; the full text is an attribute
CHARGER_STATES = ("charging", "plugged_in", "idle", "faulted", "offline")
_PLAN_TIME = r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$"


@dataclass(frozen=True)
class Message:
    topic: str
    payload: str
    retain: bool = True


@dataclass(frozen=True)
class SiteInfo:
    """One site as the bridge names it."""

    slug: str  # its topic level
    label: str  # its name for people
    timezone: str
    rule_sets: tuple[str, ...]  # the select's options (optimizer.steer.rule_set_names)
    aliases: Mapping[str, str] = field(default_factory=dict)  # serial -> chargerN

    def local(self, at: datetime | None) -> str | None:
        """ISO 8601 with the site's offset, as Home Assistant's timestamp sensors want."""
        return at.astimezone(ZoneInfo(self.timezone)).isoformat() if at is not None else None


def scrub(text: str, aliases: Mapping[str, str]) -> str:
    """``text`` without serials (their aliases instead) or anything the log would redact."""
    for sn, alias in aliases.items():
        text = text.replace(sn, alias)
    return redact(text)


def _json(data: Mapping[str, Any], aliases: Mapping[str, str]) -> str:
    return scrub(json.dumps(data, sort_keys=True, default=str), aliases)


# --- discovery -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Entity:
    """One Home Assistant entity: its component, key, name and the keys of its config."""

    component: str
    key: str
    name: str
    config: Mapping[str, Any] = field(default_factory=dict)
    field_name: str | None = None  # the state's JSON field (default: key)
    command: str | None = None  # the command topic's last level


def _sensor(key: str, name: str, **config: Any) -> Entity:
    return Entity("sensor", key, name, config)


def _value(field_name: str) -> str:
    return "{{ value_json." + field_name + " }}"


def _on_off(field_name: str) -> str:
    return "{{ 'ON' if value_json." + field_name + " else 'OFF' }}"


DIAGNOSTIC = {"entity_category": "diagnostic"}

SITE_ENTITIES: tuple[Entity, ...] = (
    _sensor(
        "surplus",
        "Solar surplus",
        unit_of_measurement="W",
        device_class="power",
        state_class="measurement",
    ),
    _sensor(
        "surplus_age",
        "Surplus age",
        unit_of_measurement="s",
        device_class="duration",
        state_class="measurement",
        **DIAGNOSTIC,
    ),
    _sensor("surplus_source", "Surplus source", **DIAGNOSTIC),
    _sensor("solar_forecast", "Solar forecast", **DIAGNOSTIC),
    _sensor(
        "gateway_token_expires",
        "Gateway token expires",
        device_class="timestamp",
        **DIAGNOSTIC,
    ),
    _sensor("gateway_token_problem", "Gateway token renewal failed", **DIAGNOSTIC),
    Entity("binary_sensor", "healthy", "Service healthy", DIAGNOSTIC),
    _sensor("status", "Service status", **DIAGNOSTIC),
    _sensor("last_tick", "Last tick", device_class="timestamp", **DIAGNOSTIC),
    _sensor("automation", "Automation", device_class="enum", options=["on", "paused", "off"]),
    _sensor("paused_until", "Paused until", device_class="timestamp"),
    Entity("select", "rule_set", "Rule set", command="rule_set"),
    Entity("button", "pause", "Pause for an hour", {"payload_press": "1h"}, command="pause"),
    Entity("button", "resume", "Resume", {"payload_press": "PRESS"}, command="resume"),
)

CHARGER_ENTITIES: tuple[Entity, ...] = (
    _sensor("state", "State", device_class="enum", options=list(CHARGER_STATES)),
    Entity("binary_sensor", "plugged_in", "Plugged in", {"device_class": "plug"}),
    Entity("binary_sensor", "charging", "Charging", {"device_class": "battery_charging"}),
    _sensor(
        "amps",
        "Charging current",
        unit_of_measurement="A",
        device_class="current",
        state_class="measurement",
    ),
    _sensor(
        "power",
        "Charging power",
        unit_of_measurement="W",
        device_class="power",
        state_class="measurement",
    ),
    _sensor(
        "session_energy",
        "Session energy",
        unit_of_measurement="kWh",
        device_class="energy",
        state_class="total_increasing",
    ),
    _sensor("policy", "Policy in control"),
    _sensor("decision", "Last decision"),
    _sensor("reason", "Reason"),
    _sensor("next", "Next planned action"),
    _sensor("plan", "Departure plan"),
    _sensor("plan_ready_at", "Plan ready by", device_class="timestamp"),
    Entity(
        "number",
        "plan_energy",
        "Plan energy",
        {
            "unit_of_measurement": "kWh",
            "device_class": "energy",
            "min": 1,
            "max": MAX_ENERGY_KWH,
            "step": 0.5,
            "mode": "box",
        },
        field_name="plan_energy_kwh",
        command="plan_energy",
    ),
    Entity(
        "text",
        "plan_ready_by",
        "Plan ready by (HH:MM)",
        {"min": 4, "max": 5, "pattern": _PLAN_TIME},
        command="plan_ready_by",
    ),
    Entity("button", "plan_clear", "Clear plan", {"payload_press": "PRESS"}, command="plan_clear"),
)


def _entity_config(
    entity: Entity,
    *,
    names: Names,
    site: SiteInfo,
    state_topic: str,
    device: Mapping[str, Any],
    origin: Mapping[str, Any],
    charger: str | None,
) -> dict[str, Any]:
    owner = site.slug if charger is None else f"{site.slug}_{charger}"
    config: dict[str, Any] = {
        "name": entity.name,
        "unique_id": f"evopt_{owner}_{entity.key}",
        "availability": [{"topic": names.status}],
        "device": device,
        "origin": origin,
        **entity.config,
    }
    field_name = entity.field_name or entity.key
    if entity.component != "button":
        config["state_topic"] = state_topic
        template = _on_off if entity.component == "binary_sensor" else _value
        config["value_template"] = template(field_name)
    if entity.command is not None:
        config["command_topic"] = names.command(site.slug, entity.command, charger)
    if entity.component == "select":
        config["options"] = list(site.rule_sets)
    if charger is not None and entity.key == "decision":
        config["json_attributes_topic"] = names.decision(site.slug, charger)
    return config


def discovery(names: Names, site: SiteInfo, *, version: str) -> list[Message]:
    """Every discovery config of a site and its chargers (retained)."""
    origin = {"name": "evopt", "sw_version": version}
    site_device = {
        "identifiers": [names.node(site.slug)],
        "name": f"evopt {site.label}",
        "manufacturer": "enphase-ev-optimizer",
        "model": "Solar charging automation",
        "sw_version": version,
    }

    def configs(
        entities: tuple[Entity, ...], device: Mapping[str, Any], charger: str | None
    ) -> list[Message]:
        state_topic = (
            names.site_state(site.slug)
            if charger is None
            else names.charger_state(site.slug, charger)
        )
        owner = charger or "site"
        return [
            Message(
                names.discovery(entity.component, site.slug, f"{owner}_{entity.key}"),
                _json(
                    _entity_config(
                        entity,
                        names=names,
                        site=site,
                        state_topic=state_topic,
                        device=device,
                        origin=origin,
                        charger=charger,
                    ),
                    site.aliases,
                ),
            )
            for entity in entities
        ]

    messages = configs(SITE_ENTITIES, site_device, None)
    for alias in sorted(site.aliases.values()):
        device = {
            "identifiers": [f"{names.node(site.slug)}_{alias}"],
            "name": f"EV charger {alias} ({site.label})",
            "manufacturer": "Enphase",
            "model": "IQ EV Charger",
            "via_device": names.node(site.slug),
        }
        messages.extend(configs(CHARGER_ENTITIES, device, alias))
    return messages


# --- state ---------------------------------------------------------------------------------


def _short(text: str | None) -> str | None:
    if text is None or len(text) <= HA_STATE_MAX:
        return text
    return text[: HA_STATE_MAX - 1] + "…"


def site_payload(
    names: Names, site: SiteInfo, report: TickReport | None, steering: Steering, now: datetime
) -> Message:
    """The site's state: health, surplus, the rule set and the pause."""
    surplus = report.snapshot.surplus if report and report.snapshot else None
    held = steering.holds_writes(now)
    automation = "on" if held is None else ("paused" if steering.paused(now) else "off")
    until = steering.paused_until if steering.paused(now) else None
    data = {
        "site": site.label,
        "healthy": report is not None and report.problem is None,
        "problem": report.problem if report else None,
        "status": _short(report.status) if report else None,
        "last_tick": site.local(report.at) if report else None,
        "surplus": _round(surplus.pv_minus_house_w) if surplus else None,
        "surplus_age": _round(surplus.age_s) if surplus else None,
        "surplus_source": report.surplus_source if report else None,
        "solar_forecast": _forecast_text(report),
        **_token_fields(site, report.gateway_token if report else None),
        "rule_set": steering.rule_set or RULE_SET_DEFAULT,
        "automation": automation,
        "paused_until": site.local(until),
        "chargers": sorted(site.aliases.values()),
    }
    return Message(names.site_state(site.slug), _json(data, site.aliases))


def _forecast_text(report: TickReport | None) -> str | None:
    """Whose sun the planner counted on at the last tick: ``learned`` (the site's own
    history), an online forecast's name and fetch, or None (no planner, or no forecast yet:
    it follows the current surplus)."""
    snapshot = report.snapshot if report is not None else None
    outlook = snapshot.outlook if snapshot is not None else None
    if outlook is None:
        return None
    return "learned" if outlook.source == LEARNED_SOURCE else _short(outlook.source)


def _token_fields(site: SiteInfo, token: Mapping[str, Any] | None) -> dict[str, Any]:
    """The gateway token's expiry and a failed renewal's reason (gateway/renew.py), so Home
    Assistant can warn before the local surplus stops (the token itself never leaves)."""
    token = token or {}
    expires = token.get("expires_at")
    try:
        at = datetime.fromisoformat(expires) if isinstance(expires, str) else None
    except ValueError:
        at = None
    failed = token.get("renewal_failed")
    return {
        "gateway_token_expires": site.local(at),
        "gateway_token_problem": _short(failed) if isinstance(failed, str) else None,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value)


def _state(view: ChargerView) -> str:
    if not view.connected:
        return "offline"
    if view.faulted:
        return "faulted"
    if view.charging:
        return "charging"
    return "plugged_in" if view.plugged_in else "idle"


def _decision_text(decision: Decision) -> str:
    amps = decision.params.get("amps")
    return f"{decision.action} {amps} A" if amps is not None else decision.action


def _pick(decisions: Sequence[Decision], sn: str) -> Decision | None:
    """The charger's charging decision of the tick (else its first)."""
    own = [d for d in decisions if d.charger_sn == sn]
    return next((d for d in own if d.target == "charging"), own[0] if own else None)


def _plan_fields(plan: DeparturePlan | None, site: SiteInfo) -> dict[str, Any]:
    if plan is None:
        return {"plan": "none", "plan_ready_at": None, "plan_ready_by": None,
                "plan_energy_kwh": None}  # fmt: skip
    local = plan.ready_by.astimezone(ZoneInfo(site.timezone))
    text = f"{plan.energy_kwh:g} kWh by {local:%a %H:%M}"
    return {
        "plan": f"{text} (learned)" if plan.learned else text,
        "plan_ready_at": local.isoformat(),
        "plan_ready_by": f"{local:%H:%M}",
        "plan_energy_kwh": plan.energy_kwh,
    }


def charger_payloads(
    names: Names,
    site: SiteInfo,
    report: TickReport,
    steering: Steering,
    *,
    plans: Mapping[str, DeparturePlan | None] | None = None,
) -> list[Message]:
    """Each charger's state and last decision, from a tick that read them.

    ``plans`` (by serial) replaces the plans the tick saw: a plan set from Home Assistant
    shows at once, before the next tick."""
    if report.snapshot is None:
        return []
    decisions = [acted.decision for acted in report.acted]
    outcomes = {id(acted.decision): acted.actuation for acted in report.acted}
    held = steering.holds_writes(report.at)
    messages = []
    for view in report.snapshot.chargers:
        alias = site.aliases.get(view.sn)
        if alias is None:
            continue
        decision = _pick(decisions, view.sn)
        plan = plans.get(view.sn, view.plan) if plans is not None else view.plan
        data: dict[str, Any] = {
            "state": _state(view),
            "connected": view.connected,
            "plugged_in": view.plugged_in,
            "charging": view.charging,
            "faulted": view.faulted,
            "amps": view.amps if view.charging else 0,
            "power": round(view.draw_w),
            "session_energy": view.session_kwh,
            "mode": view.mode.value if view.mode else None,
            "policy": in_control_of(decision.inputs, decision.policy) if decision else None,
            "decision": _decision_text(decision) if decision else "none",
            "reason": _short(decision.reason if decision else _held_text(steering, site, held)),
            "next": _short(_next(decision)),
            "decided_at": site.local(report.at),
            **_plan_fields(plan, site),
        }
        messages.append(Message(names.charger_state(site.slug, alias), _json(data, site.aliases)))
        if decision is not None:
            actuation = outcomes.get(id(decision))
            full = {
                "policy": decision.policy,
                "action": decision.action,
                "params": decision.params,
                "reason": decision.reason,
                "outcome": actuation.outcome if actuation else None,
                "error": actuation.error if actuation else None,
                "at": site.local(report.at),
                "next": _next(decision),
            }
            messages.append(Message(names.decision(site.slug, alias), _json(full, site.aliases)))
    return messages


def _held_text(steering: Steering, site: SiteInfo, held: str | None) -> str | None:
    """Why nothing was decided, in the site's time: "automation paused until Wed 14:00"."""
    if held is None:
        return None
    until = steering.paused_until
    if until is not None and held.startswith("paused"):
        local = until.astimezone(ZoneInfo(site.timezone))
        return f"automation paused until {local:%a %H:%M}; nothing is sent to the charger"
    return f"automation off ({held}); nothing is sent to the charger"


def _next(decision: Decision | None) -> str | None:
    return None if decision is None else next_of(decision.inputs)
