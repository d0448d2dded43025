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

from optimizer.enlighten.control_replies import (
    ALREADY_CHARGING_CODE,
    NOT_PLUGGED_CODE,
    ChargerState,
    charger_state,
    quoted,
)
from optimizer.enlighten.errors import (
    BadRequestError,
    ConflictError,
    EnlightenError,
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
    # A level a policy wanted that the start could not carry (IQ 40 backend): the charger
    # runs at its stored level instead.
    level_not_applied: int | None = None
    # A level change sent as its stop only (``set_amps(restart_later=True)``): the start at
    # this level is still to send, once the charger has settled; ``from_amps`` the old level.
    restart_amps: int | None = None
    from_amps: int | None = None

    def message(self) -> str:
        """The one line the CLI prints."""
        if self.outcome is Outcome.ACCEPTED:
            return self.detail
        return f"{self.detail}; nothing changed"


def benign(err: EnlightenHTTPStatusError, command: str) -> tuple[Outcome, str] | None:
    """A reply that means "the charger was not in a state to do this", or None.

    409/422 and the charger-state refusals (``errorMessageCode`` first, then the wording) are
    the charger's state, not a failure: nothing is retried and nothing changed. On a stop,
    400/409/422 all mean there was nothing to stop. The cloud's own words are kept in the
    detail, so the user and the decision log see what it said.
    """
    said = quoted(err)
    state = charger_state(err)
    if command == "stop_charging" and isinstance(err, ConflictError | BadRequestError):
        return Outcome.NOT_ACTIVE, f"no active charging session to stop{said}"
    if state is ChargerState.NOT_PLUGGED:
        return Outcome.NOT_READY, f"charger not ready: no vehicle plugged in{said}"
    if state is ChargerState.ALREADY_CHARGING:
        return Outcome.ALREADY_CHARGING, f"charger already charging{said}"
    if isinstance(err, ConflictError | BadRequestError):
        return Outcome.NOT_READY, f"charger not ready{said}"
    return None


def understood(err: EnlightenHTTPStatusError, command: str) -> bool:
    """Whether a refusal proves the route and body were understood (so probing stops).

    A charger-state refusal or a 409/422 is the charger answering; on a stop (no body) a 400
    is too. Another 400 on a start may be this deployment's way of rejecting the body.
    """
    if isinstance(err, ConflictError) or charger_state(err) is not None:
        return True
    return command == "stop_charging" and isinstance(err, BadRequestError)


Send = Callable[[Variant], Awaitable[Reply]]
# "Is the charger already where the command would take it?" (a fresh status read)
Recheck = Callable[[], Awaitable[bool]]


async def probe(
    *,
    command: str,
    key: str,
    variants: Sequence[Variant],
    send: Send,
    memory: VariantMemory,
    hint: Variant | None = None,
    recheck: Recheck | None = None,
) -> tuple[Variant, Reply | tuple[Outcome, str], tuple[str, ...]]:
    """Send ``command`` by the remembered variant, else each in order, until one is answered.

    Returns the variant that got an answer, the reply (or a benign outcome) and what was tried.
    404/405 mean "not this variant" (and a remembered variant that now gets them is forgotten);
    a 400 without a known code while probing means "not this body", but on the remembered
    variant it is the charger's state. Other errors (auth, 429, 5xx) stop the probe: another
    variant would fail the same way.

    A 404 may also be how a backend says "already in that state" (unconfirmed, reference
    section 2), so the first 404 asks ``recheck`` (a status read): when the charger is
    already where the command would take it, that is the answer and nothing more is sent.
    """
    remembered = memory.get(key)
    ordered = sorted(
        variants,
        key=lambda v: (v.name != remembered, not (hint is not None and v.same_route(hint))),
    )
    attempts: list[str] = []
    last_bad_request: BadRequestError | None = None
    checked = recheck is None
    for variant in ordered:
        is_known = variant.name == remembered
        try:
            reply = await send(variant)
        except (NotFoundError, MethodNotAllowedError) as err:
            attempts.append(f"{variant.name}: HTTP {err.status}")
            if isinstance(err, NotFoundError) and not checked:
                checked = True
                if await _already_there(recheck, command):
                    return variant, _ALREADY_THERE[command], tuple(attempts)
            if is_known:
                _LOGGER.info("%s: remembered variant %s stopped working", command, variant.name)
                memory.forget(key)
            continue
        except (BadRequestError, ConflictError) as err:
            attempts.append(f"{variant.name}: HTTP {err.status}")
            outcome = benign(err, command)
            if outcome is not None and (is_known or understood(err, command)):
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


_ALREADY_THERE: dict[str, tuple[Outcome, str]] = {
    "start_charging": (
        Outcome.ALREADY_CHARGING,
        "charger already charging (the start got a 404; the status shows it charging)",
    ),
    "stop_charging": (
        Outcome.NOT_ACTIVE,
        "no active charging session to stop (the stop got a 404; the status shows none)",
    ),
}


async def _already_there(recheck: Recheck | None, command: str) -> bool:
    """Ask ``recheck``; a read that fails leaves the question open (probing goes on)."""
    if recheck is None or command not in _ALREADY_THERE:
        return False
    try:
        return await recheck()
    except EnlightenError as err:
        _LOGGER.info("%s: could not re-read the status after a 404: %s", command, err)
        return False
