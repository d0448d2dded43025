"""Which control-request variants a deployment accepts (spec 3, region profiles).

The real backend answers ``start_charging``/``stop_charging`` differently by region: some take
POST and PUT on either path with either key style, some only one combination. The client
walks a list of fallbacks until one works; each ``Profile.control_profile`` value is one row of
``CONTROL_RULES`` so a test can pin the fake to one deployment and see the right fallback
taken. Pure functions of (rule, method, path kind, body): the HTTP layer turns a
``Rejection`` into a reply, and only an accepted request reaches the charger model, which is
why a wrong variant is refused whatever the charger's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from optimizer.fakecloud.profile import ControlProfile

KeyStyle = Literal["any", "camel", "snake"]
PathKind = Literal["plural", "singular"]

BOTH_PATHS: frozenset[PathKind] = frozenset({"plural", "singular"})
BOTH_METHODS = frozenset({"POST", "PUT"})

# key style -> (level key, connector key)
KEYS: dict[str, tuple[str, str]] = {
    "camel": ("chargingLevel", "connectorId"),
    "snake": ("charging_level", "connector_id"),
}

NO_BODY = object()  # the request had no body at all (distinct from a JSON ``null``)


@dataclass(frozen=True)
class VariantRule:
    """One deployment: the paths and verbs it routes, and the start body it understands.

    ``keys`` other than ``any`` also make the connector key mandatory: such a deployment
    parses only its own key style and, not finding its connector key, says it is required.
    """

    paths: frozenset[PathKind]
    start_methods: frozenset[str]
    stop_methods: frozenset[str]
    keys: KeyStyle
    level_allowed: bool


CONTROL_RULES: dict[ControlProfile, VariantRule] = {
    "any": VariantRule(BOTH_PATHS, BOTH_METHODS, BOTH_METHODS, "any", True),
    "put_singular_snake": VariantRule(
        frozenset({"singular"}), frozenset({"PUT"}), frozenset({"PUT"}), "snake", True
    ),
    "put_only": VariantRule(BOTH_PATHS, frozenset({"PUT"}), frozenset({"PUT"}), "camel", True),
    "singular_only": VariantRule(
        frozenset({"singular"}), BOTH_METHODS, BOTH_METHODS, "camel", True
    ),
    "no_level": VariantRule(BOTH_PATHS, BOTH_METHODS, BOTH_METHODS, "any", False),
}


@dataclass(frozen=True)
class Rejection:
    """The refusal of a variant: HTTP status, message, and for a 405 the verbs allowed."""

    status: int
    message: str
    allow: str | None = None


@dataclass(frozen=True)
class StartCommand:
    """An accepted start: the raw level (None: use the stored level) and connector."""

    level: Any
    connector: int


def path_kind(path: str) -> PathKind:
    return "singular" if "/ev_charger/" in path else "plural"


def requested_level(body: Any) -> Any:
    """The level a start body carries under either key style (None when it carries none)."""
    if not isinstance(body, dict):
        return None
    for level_key, _ in KEYS.values():
        if body.get(level_key) is not None:
            return body[level_key]
    return None


def _route(
    rule: VariantRule, methods: frozenset[str], method: str, kind: PathKind
) -> Rejection | None:
    if kind not in rule.paths:
        return Rejection(404, "Not Found")
    if method.upper() not in methods:
        return Rejection(405, "Method not allowed", allow=", ".join(sorted(methods)))
    return None


def check_stop(rule: VariantRule, method: str, kind: PathKind) -> Rejection | None:
    """None when this deployment takes a stop sent this way (the body is ignored)."""
    return _route(rule, rule.stop_methods, method, kind)


def check_start(
    rule: VariantRule, method: str, kind: PathKind, body: Any
) -> StartCommand | Rejection:
    """Parse a start request as this deployment would; ``body`` is ``NO_BODY`` when empty."""
    refused = _route(rule, rule.start_methods, method, kind)
    if refused is not None:
        return refused
    if body is NO_BODY:
        body = {}
    if not isinstance(body, dict):
        return Rejection(400, "Request body must be a JSON object")
    if rule.keys == "any":
        style = "snake" if "connectorId" not in body and "connector_id" in body else "camel"
        level = requested_level(body)
    else:
        style = rule.keys
        level_key, connector_key = KEYS[style]
        if connector_key not in body:
            return Rejection(400, f"{connector_key} is required")
        level = body.get(level_key)
    connector = body.get(KEYS[style][1], 1)
    if level is not None and not rule.level_allowed:
        return Rejection(400, "Charging level not supported")
    if isinstance(connector, bool) or not isinstance(connector, int) or connector < 1:
        return Rejection(400, "Connector Id must be greater than 0")
    if connector != 1:
        return Rejection(400, "Invalid connectorId")
    return StartCommand(level=level, connector=connector)
