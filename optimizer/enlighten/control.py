"""Control commands: the request variants, the probe that finds the one a deployment accepts,
the benign replies that mean "nothing changed", and the level checks made before sending.

The Enlighten backend differs by region: some deployments want PUT instead of POST, the
singular ``/ev_charger/`` path, snake_case keys, or no level at all. The variants are tried in
one fixed, documented order (docs/control.md); the winner is remembered per site, charger and
command. Everything here is pure except :func:`probe`, which sends through a callable it is
given.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from optimizer.enlighten.errors import (
    BadRequestError,
    ConflictError,
    EnlightenHTTPStatusError,
    MethodNotAllowedError,
    NotFoundError,
    NoWorkingVariantError,
)
from optimizer.enlighten.transport import Reply
from optimizer.enlighten.variants import VariantMemory

_LOGGER = logging.getLogger(__name__)

EVSE = "/service/evse_controller"
CONNECTOR_ID = 1
NOT_PLUGGED_CODE = "iqevc_ms-10008"
ALREADY_CHARGING_CODE = "iqevc_ms-10012"
STATE_CODES = frozenset({NOT_PLUGGED_CODE, ALREADY_CHARGING_CODE})
# OCPP 1.6 TriggerMessage: the messages a charger may be asked to send.
TRIGGER_MESSAGES = (
    "BootNotification",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
)


class Body(StrEnum):
    """How a start/stop request carries (or leaves out) its payload."""

    CAMEL = "camel"  # {"chargingLevel": N, "connectorId": 1}, the canonical request
    SNAKE = "snake"  # {"charging_level": N, "connector_id": 1}
    CAMEL_NO_LEVEL = "camel-no-level"  # {"connectorId": 1}
    SNAKE_NO_LEVEL = "snake-no-level"  # {"connector_id": 1}
    NONE = "no-body"  # the charger uses its last stored level


@dataclass(frozen=True)
class Variant:
    """One way of sending a control command."""

    method: str
    singular: bool
    body: Body

    @property
    def name(self) -> str:
        return f"{self.method} {'ev_charger' if self.singular else 'ev_chargers'} {self.body}"

    def path(self, site_id: int, sn: str, action: str) -> str:
        collection = "ev_charger" if self.singular else "ev_chargers"
        return f"{EVSE}/{site_id}/{collection}/{sn}/{action}"

    def payload(self, level: int | None) -> dict[str, Any] | None:
        match self.body:
            case Body.CAMEL:
                return {"chargingLevel": level, "connectorId": CONNECTOR_ID}
            case Body.SNAKE:
                return {"charging_level": level, "connector_id": CONNECTOR_ID}
            case Body.CAMEL_NO_LEVEL:
                return {"connectorId": CONNECTOR_ID}
            case Body.SNAKE_NO_LEVEL:
                return {"connector_id": CONNECTOR_ID}
            case Body.NONE:
                return None

    def same_route(self, other: Variant) -> bool:
        """Same verb, path and key style: a hint for the level-less twin of a known winner."""
        snake = {Body.SNAKE, Body.SNAKE_NO_LEVEL}
        return (
            self.method == other.method
            and self.singular == other.singular
            and (self.body in snake) == (other.body in snake)
        )


def _grid(bodies: Sequence[Body], methods: Sequence[str]) -> tuple[Variant, ...]:
    """Body style varies slowest, then plural before singular, then the verbs in order."""
    return tuple(
        Variant(method, singular, body)
        for body in bodies
        for singular in (False, True)
        for method in methods
    )


START_WITH_LEVEL = _grid((Body.CAMEL, Body.SNAKE), ("POST", "PUT"))
START_WITHOUT_LEVEL = _grid((Body.CAMEL_NO_LEVEL, Body.SNAKE_NO_LEVEL, Body.NONE), ("POST", "PUT"))
STOP = _grid((Body.NONE,), ("PUT", "POST"))


class Outcome(StrEnum):
    """What a command did. Only ``accepted`` changed anything."""

    ACCEPTED = "accepted"
    UNCHANGED = "unchanged"  # already in the wanted state: nothing was sent
    NOT_READY = "not_ready"  # e.g. no vehicle plugged in: nothing changed
    ALREADY_CHARGING = "already_charging"
    NOT_ACTIVE = "not_active"  # stop with no session: nothing changed

    @property
    def changed(self) -> bool:
        return self is Outcome.ACCEPTED


@dataclass(frozen=True)
class CommandResult:
    """The typed answer of every write: what happened, in one sentence, and how."""

    command: str
    outcome: Outcome
    detail: str
    variant: str | None = None
    level_amps: int | None = None
    attempts: tuple[str, ...] = ()
    steps: tuple[CommandResult, ...] = field(default=())

    def message(self) -> str:
        """The one line the CLI prints."""
        if self.outcome is Outcome.ACCEPTED:
            return self.detail
        return f"{self.detail}; nothing changed"


def benign(err: EnlightenHTTPStatusError, command: str) -> tuple[Outcome, str] | None:
    """A reply that means "the charger was not in a state to do this", or None.

    409/422 and the ``iqevc_ms`` codes are the charger's state, not a failure: nothing is
    retried and nothing changed.
    """
    if err.code == NOT_PLUGGED_CODE:
        return Outcome.NOT_READY, "charger not ready: no vehicle plugged in"
    if err.code == ALREADY_CHARGING_CODE:
        return Outcome.ALREADY_CHARGING, "charger already charging"
    if isinstance(err, ConflictError | BadRequestError):
        reason = _server_reason(err)
        if command == "stop_charging":
            return Outcome.NOT_ACTIVE, f"no active charging session to stop{reason}"
        return Outcome.NOT_READY, f"charger not ready{reason}"
    return None


def _server_reason(err: EnlightenHTTPStatusError) -> str:
    said = err.message.split(": ", 1)[1].rstrip(")") if ": " in err.message else ""
    return f" ({said})" if said else ""


Send = Callable[[Variant], Awaitable[Reply]]


async def probe(
    *,
    command: str,
    key: str,
    variants: Sequence[Variant],
    send: Send,
    memory: VariantMemory,
    hint: Variant | None = None,
) -> tuple[Variant, Reply | tuple[Outcome, str], tuple[str, ...]]:
    """Send ``command`` by the remembered variant, else each in order, until one is answered.

    Returns the variant that got an answer, the reply (or a benign outcome) and what was tried.
    404/405 mean "not this variant" (and a remembered variant that now gets them is forgotten);
    a 400 without a known code while probing means "not this body", but on the remembered
    variant it is the charger's state. Other errors (auth, 429, 5xx) stop the probe: another
    variant would fail the same way.
    """
    remembered = memory.get(key)
    ordered = sorted(
        variants,
        key=lambda v: (v.name != remembered, not (hint is not None and v.same_route(hint))),
    )
    attempts: list[str] = []
    last_bad_request: BadRequestError | None = None
    for variant in ordered:
        is_known = variant.name == remembered
        try:
            reply = await send(variant)
        except (NotFoundError, MethodNotAllowedError) as err:
            attempts.append(f"{variant.name}: HTTP {err.status}")
            if is_known:
                _LOGGER.info("%s: remembered variant %s stopped working", command, variant.name)
                memory.forget(key)
            continue
        except (BadRequestError, ConflictError) as err:
            attempts.append(f"{variant.name}: HTTP {err.status}")
            outcome = benign(err, command)
            # Only the charger-state codes prove the route and body were understood: another
            # code on a 400 may be this deployment's way of rejecting the body.
            understood = err.code in STATE_CODES or isinstance(err, ConflictError) or is_known
            if outcome is not None and understood:
                memory.remember(key, variant.name)
                return variant, outcome, tuple(attempts)
            if isinstance(err, BadRequestError):
                last_bad_request = err
            continue
        attempts.append(f"{variant.name}: accepted")
        memory.remember(key, variant.name)
        return variant, reply, tuple(attempts)
    if last_bad_request is not None:
        outcome = benign(last_bad_request, command)
        if outcome is not None:
            return ordered[-1], outcome, tuple(attempts)
    raise NoWorkingVariantError(
        f"{command}: no request variant was accepted (tried {len(attempts)}: "
        + "; ".join(attempts)
        + ")"
    )
