"""Turning decisions into client writes, idempotently: no request that would change nothing.

The engine says what it wants; the cloud's status (this tick's snapshot) says what is. Only
when they differ is a command sent (evcc's ``Loadpoint.setLimit`` habit), so a policy that
keeps asking for 16 A while the charger charges at 16 A costs no request and no restart of the
session. :func:`plan` is that comparison, pure and table-testable; :class:`Actuator` sends
what it plans, one command at a time per charger, and says how it went as a decision-log
outcome (``applied``, ``noop``, ``dry_run``, ``rejected``, ``failed``).

A failure never raises out of :meth:`Actuator.apply`: it is an outcome with the error's
one-line message, and an authentication failure is flagged (``auth_needed``) so the service
can stop acting until someone logs in again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from optimizer.decisions import Outcome
from optimizer.engine.decision import Decision
from optimizer.engine.snapshot import ChargerView, Snapshot
from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.control import CommandResult
from optimizer.enlighten.control import Outcome as CommandOutcome
from optimizer.enlighten.errors import (
    AuthError,
    BudgetHeldError,
    CloudUnreachableError,
    EnlightenError,
    InvalidLevelError,
    NotSupportedError,
)
from optimizer.enlighten.models import ChargeMode
from optimizer.enlighten.ratelimit import whole_command
from optimizer.enlighten.schedule_edit import (
    AddSlot,
    DisableSlot,
    Edit,
    EnableSlot,
    ScheduleEditError,
    SetSlot,
)
from optimizer.observe.live import ObserveCache, What

__all__ = [
    "LIVE_STREAM_EVERY",
    "MAX_CHARGERS_AT_ONCE",
    "Actuation",
    "Actuator",
    "Command",
    "Skip",
    "UnusableDecision",
    "parse_edit",
    "plan",
]

_LOGGER = logging.getLogger(__name__)

# Chargers written at the same time in one tick: the transport's gate and the account's
# budget meter the requests themselves; this bounds the tasks (and the writes in flight).
MAX_CHARGERS_AT_ONCE = 8
# A live stream lasts about 15 minutes (field notes); one per window is enough.
LIVE_STREAM_EVERY = timedelta(minutes=15)

Call = Literal[
    "start_charging",
    "set_amps",
    "stop_charging",
    "set_charge_mode",
    "set_green_battery",
    "edit_schedule",
]
CHARGING_CALLS: frozenset[Call] = frozenset({"start_charging", "set_amps", "stop_charging"})
# What a successful write makes stale in the observe cache (the status is read every tick).
INVALIDATES: dict[Call, What | None] = {
    "start_charging": None,
    "set_amps": None,
    "stop_charging": None,
    "set_charge_mode": "mode",
    "set_green_battery": "battery_setting",
    "edit_schedule": "schedules",
}
RESULT_OUTCOMES: dict[CommandOutcome, Outcome] = {
    CommandOutcome.ACCEPTED: "applied",
    CommandOutcome.UNCHANGED: "noop",
    CommandOutcome.NOT_READY: "rejected",
    # The charger already does what was wanted (iqevc_ms-10012): done, not a failure.
    CommandOutcome.ALREADY_CHARGING: "noop",
    CommandOutcome.NOT_ACTIVE: "rejected",
}
# Errors raised before anything was sent: a failed decision that cost no request.
# BudgetHeldError: the account's limiter refused the request before it went. Counted as "may
# have been sent", it invalidated the charger's cached reads, whose re-read spent the budget
# that refused the next try: a loop on every account at its budget (the scale benchmark).
NOTHING_SENT = (InvalidLevelError, NotSupportedError, ScheduleEditError, BudgetHeldError)


class UnusableDecision(ValueError):
    """Parameters the engine should never produce: the decision fails, nothing is sent."""


@dataclass(frozen=True)
class Command:
    """The one client call a decision needs (several schedule edits go in order)."""

    call: Call
    amps: int | None = None
    mode: ChargeMode | None = None
    enabled: bool | None = None
    edits: tuple[Edit, ...] = ()
    green: bool | None = None  # GREEN or SMART now: a start then carries no level
    # The scheduler preference (the charger's own automation takes no level; SCHEDULED is
    # re-asserted after a manual command switched it), as this tick's snapshot saw it.
    preference: ChargeMode | None = None


@dataclass(frozen=True)
class Skip:
    """Nothing to send, and why."""

    reason: str


@dataclass(frozen=True)
class Actuation:
    """How one decision went: the decision log's outcome, error and request count."""

    outcome: Outcome
    error: str | None = None
    commands: int = 0
    detail: str = ""
    # The authentication failure itself: whether a person must log in or the service may log
    # in again by itself depends on its kind (Service._auth_needed).
    auth_error: AuthError | None = None
    # A level change sent as its stop only (``restart_later``): the level to restart at, and
    # the one it changes from (optimizer/engine/restart.py keeps it for a later tick).
    restart_amps: int | None = None
    from_amps: int | None = None

    @property
    def auth_needed(self) -> bool:
        return self.auth_error is not None


# --- planning (pure) ---------------------------------------------------------------------------


def plan(decision: Decision, charger: ChargerView) -> Command | Skip:
    """The write that brings ``charger`` to what ``decision`` wants, or why none is needed.

    Raises :class:`UnusableDecision` for parameters the engine should never produce (a bad
    mode name, an edit that is not one of add/set/enable/disable).
    """
    if decision.observed:
        return Skip("the user's own change, seen in the status: nothing to send")
    params = decision.params
    match decision.action:
        case "hold":
            return Skip("hold")
        case "start":
            return _start(charger, _amps(params))
        case "set_amps":
            amps = _amps(params)
            if amps is None:
                raise UnusableDecision("set_amps without amps")
            if charger.charging and charger.amps == amps:
                return Skip(f"already charging at {amps} A")
            return Command("set_amps", amps=amps, preference=charger.mode)
        case "stop":
            if not charger.charging:
                return Skip("not charging")
            return Command("stop_charging", preference=charger.mode)
        case "set_mode":
            mode = _mode(params.get("mode"))
            if charger.mode is mode:
                return Skip(f"already in {mode.value}")
            return Command("set_charge_mode", mode=mode)
        case "set_battery":
            enabled = params.get("enabled")
            if not isinstance(enabled, bool):
                raise UnusableDecision(f"set_battery needs enabled true or false, not {enabled!r}")
            if charger.use_battery is enabled:
                return Skip(f"battery use already {'on' if enabled else 'off'}")
            return Command("set_green_battery", enabled=enabled)
        case "patch_schedules":
            edits = tuple(parse_edit(edit) for edit in params.get("edits") or ())
            return Command("edit_schedule", edits=edits) if edits else Skip("no schedule edits")
    raise UnusableDecision(f"unknown action {decision.action!r}")


def _amps(params: Mapping[str, Any]) -> int | None:
    amps = params.get("amps")
    if amps is None:
        return None
    if isinstance(amps, bool) or not isinstance(amps, int):
        raise UnusableDecision(f"amps must be a whole number, not {amps!r}")
    return amps


def _mode(value: Any) -> ChargeMode:
    try:
        return ChargeMode(str(value))
    except ValueError as err:
        raise UnusableDecision(f"unknown charge mode {value!r}") from err


def _start(charger: ChargerView, amps: int | None) -> Command | Skip:
    """Charging already (at the level asked for, or with none asked): nothing to do; at
    another level: change it; not charging: start."""
    if charger.charging:
        if amps is None or charger.amps == amps:
            return Skip("already charging" + (f" at {amps} A" if amps is not None else ""))
        return Command("set_amps", amps=amps, preference=charger.mode)
    return Command("start_charging", amps=amps, green=_level_less(charger), preference=charger.mode)


def _level_less(charger: ChargerView) -> bool | None:
    """Whether a start must carry no level: GREEN or SMART now (status), or SMART chosen (no
    status integer exists for SMART, so its preference decides); None when neither is known."""
    if charger.mode is ChargeMode.SMART_CHARGING:
        return True
    mode = charger.status_mode
    return None if mode is None else mode.takes_no_amps


_EDIT_TYPES: dict[str, type[AddSlot | SetSlot | EnableSlot | DisableSlot]] = {
    "add": AddSlot,
    "set": SetSlot,
    "enable": EnableSlot,
    "disable": DisableSlot,
}


def parse_edit(raw: Any) -> Edit:
    """One of schedule_sync's JSON edits (``{"op": "add", ...}``) as a schedule_edit value.

    Deleting is not offered: the engine never deletes a slot.
    """
    if not isinstance(raw, Mapping):
        raise UnusableDecision(f"a schedule edit must be a mapping, not {raw!r}")
    fields = dict(raw)
    op = fields.pop("op", None)
    kind = _EDIT_TYPES.get(str(op))
    if kind is None:
        raise UnusableDecision(f"unknown schedule edit op {op!r}; one of {sorted(_EDIT_TYPES)}")
    if isinstance(fields.get("days"), list):
        fields["days"] = tuple(fields["days"])
    try:
        return kind(**fields)
    except TypeError as err:
        raise UnusableDecision(f"schedule edit {dict(raw)!r}: {err}") from err


# --- sending -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sent:
    """What the client answered to a command, or the error that stopped it."""

    outcome: Outcome
    detail: str = ""
    commands: int = 0
    error: EnlightenError | None = None
    # What the decision log must keep although the command did not fail: the cloud's own
    # words for "already charging", or a level the charger's backend did not take.
    note: str | None = None
    restart_amps: int | None = None  # a level change's restart still to send
    from_amps: int | None = None

    @classmethod
    def failure(cls, error: EnlightenError, *, before: int = 0) -> _Sent:
        """``before``: writes that went through before this one failed."""
        return cls("failed", commands=before + int(_maybe_sent(error)), error=error)

    @property
    def changed(self) -> bool:
        """Something was (or may have been) written."""
        return self.outcome == "applied" or (self.outcome == "failed" and self.commands > 0)

    def actuation(self) -> Actuation:
        if self.error is not None:
            return Actuation(
                "failed",
                error=self.error.user_message(),
                commands=self.commands,
                auth_error=self.error if isinstance(self.error, AuthError) else None,
            )
        error = self.detail if self.outcome == "rejected" else self.note
        return Actuation(
            self.outcome,
            error=error,
            commands=self.commands,
            detail=self.detail,
            restart_amps=self.restart_amps,
            from_amps=self.from_amps,
        )


class Actuator:
    """Applies decisions through one client for one site.

    ``dry_run``: a decision that would send something is logged as ``dry_run`` and nothing is
    sent. ``cache``: what a write changed is read again on the next tick. ``live_stream``:
    after a charging command, ask the cloud for a live stream (at most every 15 min) so the
    status shows the effect in seconds instead of minutes. ``restart_later``: a MANUAL level
    change sends its stop and returns (``Actuation.restart_amps``), its restart is a later
    decision (optimizer/engine/restart.py); otherwise it waits the settle time in between.
    """

    def __init__(
        self,
        client: EnlightenClient,
        *,
        site_id: int,
        dry_run: bool,
        cache: ObserveCache | None = None,
        live_stream: bool = True,
        restart_later: bool = False,
    ) -> None:
        self.client = client
        self.restart_later = restart_later
        self.site_id = site_id
        self.dry_run = dry_run
        self.cache = cache
        self.live_stream = live_stream
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._stream_at: datetime | None = None

    async def apply(self, decision: Decision, snapshot: Snapshot) -> Actuation:
        """Send what ``decision`` needs (if anything) and report it; a cloud failure is an
        outcome, never an exception."""
        charger = snapshot.charger(decision.charger_sn)
        if charger is None:
            missing = f"charger {decision.charger_sn} is not in the status"
            return Actuation("rejected", error=missing)
        try:
            step = plan(decision, charger)
        except UnusableDecision as err:
            return Actuation("failed", error=f"not sent: {err}")
        if isinstance(step, Skip):
            return Actuation("noop", detail=step.reason)
        if self.dry_run:
            return Actuation("dry_run", detail=f"dry run: would {_describe(step)}")
        async with self._locks[charger.sn]:
            try:
                # Its read and its write go together or not at all (enlighten/ratelimit.py).
                with whole_command():
                    sent = await self._call(step, charger.sn)
            except EnlightenError as err:
                sent = _Sent.failure(err)
        what = INVALIDATES[step.call]
        if sent.changed and what is not None and self.cache is not None:
            self.cache.invalidate(charger.sn, what)
        if sent.outcome == "applied" and step.call in CHARGING_CALLS:
            await self._live_stream(snapshot.now)
        return sent.actuation()

    async def apply_in_order(
        self, decisions: Sequence[Decision], snapshot: Snapshot
    ) -> AsyncGenerator[tuple[int, Actuation]]:
        """Apply ``decisions``, different chargers side by side, and yield each one's index
        and actuation in the decisions' order, as soon as it and all before it are done.

        One charger's decisions go one after another, in order (a mode before the start that
        needs it). Chargers whose decisions lower their draw (a stop, a lower level) go first
        and the others wait for them, so the site's breaker is never passed in between; at
        most ``MAX_CHARGERS_AT_ONCE`` chargers are written at a time. Yielding in order lets
        the caller record each decision with the memory of the commands before it
        (optimizer/decisions/ticklog.py): the log's order stays the decisions' order whatever
        order the replies come in. Closing the generator early cancels what is still running.
        """
        loop = asyncio.get_running_loop()
        done: list[asyncio.Future[Actuation]] = [loop.create_future() for _ in decisions]
        chains: dict[str, list[int]] = {}
        for index, decision in enumerate(decisions):
            chains.setdefault(decision.charger_sn, []).append(index)
        lowering = {
            sn
            for sn, indexes in chains.items()
            if any(_lowers(decisions[i], snapshot) for i in indexes)
        }
        lowered = asyncio.Event()
        left = [len(lowering)]
        if not lowering:
            lowered.set()
        gate = asyncio.Semaphore(MAX_CHARGERS_AT_ONCE)

        async def chain(sn: str, indexes: list[int]) -> None:
            try:
                if sn not in lowering:
                    await lowered.wait()
                async with gate:
                    for index in indexes:
                        try:
                            done[index].set_result(await self.apply(decisions[index], snapshot))
                        except Exception as err:  # noqa: BLE001 - handed to the caller in order
                            done[index].set_exception(err)
                            return
            finally:
                if sn in lowering:
                    left[0] -= 1
                    if left[0] == 0:
                        lowered.set()

        tasks = [asyncio.create_task(chain(sn, indexes)) for sn, indexes in chains.items()]
        try:
            for index, future in enumerate(done):
                yield index, await future
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for future in done:  # an exception nobody awaited is not "never retrieved"
                if future.done() and not future.cancelled():
                    future.exception()

    async def _call(self, step: Command, sn: str) -> _Sent:
        client, site = self.client, self.site_id
        match step.call:
            # A policy's level is not the user's explicit one: where the charger's backend
            # refuses levels (IQ 40), the start goes without and the result says so.
            case "start_charging":
                result = await client.start_charging(
                    site, sn, amps=step.amps, green=step.green, mode=step.preference, explicit=False
                )
            case "set_amps":
                assert step.amps is not None  # noqa: S101 - plan() always sets it
                result = await client.set_amps(
                    site,
                    sn,
                    step.amps,
                    explicit=False,
                    mode=step.preference,
                    restart_later=self.restart_later,
                )
            case "stop_charging":
                result = await client.stop_charging(site, sn, mode=step.preference)
            case "set_charge_mode":
                assert step.mode is not None  # noqa: S101
                result = await client.set_charge_mode(site, sn, step.mode)
            case "set_green_battery":
                assert step.enabled is not None  # noqa: S101
                result = await client.set_green_battery(site, sn, enabled=step.enabled)
            case "edit_schedule":
                return await self._edit_schedule(sn, step.edits)
        return _sent(result, scheduler=step.call not in CHARGING_CALLS)

    async def _edit_schedule(self, sn: str, edits: tuple[Edit, ...]) -> _Sent:
        """Each edit in order (each reads the list and PATCHes it whole); the first failure
        ends it, counting the edits that went through before."""
        accepted: list[str] = []
        for edit in edits:
            try:
                result = await self.client.edit_schedule(self.site_id, sn, edit)
            except EnlightenError as err:
                return _Sent.failure(err, before=len(accepted))
            if result.outcome.changed:
                accepted.append(result.detail)
        if not accepted:
            return _Sent("noop", "schedules already as wanted")
        return _Sent("applied", "; ".join(accepted), len(accepted))

    async def _live_stream(self, now: datetime) -> None:
        """Optional: the status shows a command's effect sooner. Any failure is ignored."""
        if not self.live_stream:
            return
        if self._stream_at is not None and now - self._stream_at < LIVE_STREAM_EVERY:
            return
        self._stream_at = now
        try:
            await self.client.start_live_stream(self.site_id)
        except EnlightenError as err:
            _LOGGER.debug("live stream not started: %s", err)


def _lowers(decision: Decision, snapshot: Snapshot) -> bool:
    """Whether ``decision`` lowers its charger's draw: a stop, or a lower level while charging."""
    charger = snapshot.charger(decision.charger_sn)
    if charger is None or not charger.charging or decision.observed:
        return False
    if decision.action == "stop":
        return True
    amps = decision.params.get("amps")
    current = charger.amps
    return (
        decision.action in ("start", "set_amps")
        and isinstance(amps, int)
        and current is not None
        and amps < current
    )


def _sent(result: CommandResult, *, scheduler: bool) -> _Sent:
    """A control command counts the requests it tried; a scheduler write is one request."""
    commands = int(result.outcome.changed) if scheduler else len(result.attempts)
    noted = result.outcome is CommandOutcome.ALREADY_CHARGING or result.level_not_applied
    note = result.message() if noted else None
    return _Sent(
        RESULT_OUTCOMES[result.outcome],
        result.message(),
        commands,
        note=note,
        restart_amps=result.restart_amps,
        from_amps=result.from_amps,
    )


def _maybe_sent(err: EnlightenError) -> bool:
    """Whether a failed write may have reached the cloud (and so may have changed something)."""
    if isinstance(err, NOTHING_SENT):
        return False
    return not (isinstance(err, CloudUnreachableError) and not err.request_sent)


def _describe(step: Command) -> str:
    """``start charging at 16 A``, ``switch to GREEN_CHARGING``... for dry-run details."""
    amps = f" at {step.amps} A" if step.amps is not None else ""
    texts: dict[Call, str] = {
        "start_charging": f"start charging{amps}",
        "set_amps": f"set the level to {step.amps} A",
        "stop_charging": "stop charging",
        "set_charge_mode": f"switch to {step.mode.value if step.mode else 'an unknown mode'}",
        "set_green_battery": f"turn battery use {'on' if step.enabled else 'off'}",
        "edit_schedule": f"send {len(step.edits)} schedule edit(s)",
    }
    return texts[step.call]
