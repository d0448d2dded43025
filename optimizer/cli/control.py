"""Writes: `charge start|stop`, `mode set`, `battery set`, `schedule add|set|enable|disable|
delete`, `live start|stop`, `trigger`.

Each prints one line saying what happened (or why nothing changed) and exits 0 when the
charger is in the state asked for, 1 when it refused in its current state (for example no
vehicle plugged in) or the input was invalid; nothing is sent for invalid input.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from optimizer.cli.context import Context
from optimizer.cli.output import print_json
from optimizer.enlighten.capabilities import SESSION_AUTH_NOTE, SessionAuthRequiredError
from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.control import CommandResult, Outcome
from optimizer.enlighten.errors import EXIT_INVALID, EnlightenError
from optimizer.enlighten.models import ChargeMode
from optimizer.enlighten.schedule_edit import (
    ALL_DAYS,
    AddSlot,
    DeleteSlot,
    DisableSlot,
    Edit,
    EnableSlot,
    ScheduleEditError,
    SetSlot,
    resolve_slot,
)

_LOGGER = logging.getLogger(__name__)

MODE_ALIASES = {
    "manual": ChargeMode.MANUAL_CHARGING,
    "scheduled": ChargeMode.SCHEDULED_CHARGING,
    "green": ChargeMode.GREEN_CHARGING,
    "smart": ChargeMode.SMART_CHARGING,
}


def parse_mode(text: str) -> ChargeMode:
    """MANUAL_CHARGING, SCHEDULED_CHARGING, GREEN_CHARGING, SMART_CHARGING, or
    manual/scheduled/green/smart."""
    key = text.strip().lower()
    for mode in ChargeMode:
        if key == mode.value.lower():
            return mode
    if key in MODE_ALIASES:
        return MODE_ALIASES[key]
    raise ValueError(f"unknown mode '{text}'")


def _report(ctx: Context, result: CommandResult, *, extra: dict[str, Any] | None = None) -> int:
    if ctx.args.json:
        print_json({**asdict(result), "changed": result.outcome.changed, **(extra or {})})
    else:
        print(result.message())
    return EXIT_INVALID if result.outcome is Outcome.NOT_READY else 0


async def _on_charger(
    ctx: Context, act: Callable[[EnlightenClient, int, str], Awaitable[CommandResult]]
) -> int:
    async with ctx.client() as client:
        site_id = await ctx.site_id(client)
        sn = await ctx.one_charger(client, site_id)
        result = await act(client, site_id, sn)
    return _report(ctx, result, extra={"site_id": site_id, "sn": sn})


async def charge_start(ctx: Context) -> int:
    """A start to a charger with session authentication on is refused before anything is
    sent (exit 1), unless ``--force``: the cloud would accept it and deliver nothing."""
    amps: int | None = ctx.args.amps
    force: bool = getattr(ctx.args, "force", False)

    async def start(client: EnlightenClient, site: int, sn: str) -> CommandResult:
        await _check_session_auth(client, site, sn, force=force)
        if amps is None:
            return await client.start_charging(site, sn)
        return await client.set_amps(site, sn, amps)

    return await _on_charger(ctx, start)


async def _check_session_auth(client: EnlightenClient, site: int, sn: str, *, force: bool) -> None:
    """Read the charger's capabilities (unknown when they cannot be read: no refusal)."""
    try:
        able = await client.capabilities(site, sn)
    except EnlightenError as err:
        _LOGGER.debug("capabilities of %s unknown (%s); starting anyway", sn, err)
        return
    if not able.session_auth:
        return
    kinds = " and ".join(able.session_auth_kinds)
    if not force:
        raise SessionAuthRequiredError(
            f"charger {sn} has session authentication on ({kinds}): {SESSION_AUTH_NOTE}; "
            "nothing was sent"
        )
    sys.stderr.write(
        f"warning: charger {sn}: {SESSION_AUTH_NOTE}; sending the start anyway (--force)\n"
    )


async def charge_stop(ctx: Context) -> int:
    return await _on_charger(ctx, lambda c, site, sn: c.stop_charging(site, sn))


async def mode_set(ctx: Context) -> int:
    mode: ChargeMode = ctx.args.mode
    return await _on_charger(ctx, lambda c, site, sn: c.set_charge_mode(site, sn, mode))


async def battery_set(ctx: Context) -> int:
    enabled = ctx.args.state == "on"
    return await _on_charger(
        ctx, lambda c, site, sn: c.set_green_battery(site, sn, enabled=enabled)
    )


async def trigger(ctx: Context) -> int:
    message: str = ctx.args.message
    return await _on_charger(ctx, lambda c, site, sn: c.trigger_message(site, sn, message))


async def _edit(ctx: Context, build: Callable[[str | None], Edit]) -> int:
    """Resolve ``SLOT`` (id, list number or id fragment) against the current list, then edit."""

    async def act(client: EnlightenClient, site_id: int, sn: str) -> CommandResult:
        ref: str | None = getattr(ctx.args, "slot", None)
        slot_id = None
        if ref is not None:
            slot_id = resolve_slot((await client.schedules(site_id, sn)).slots, ref).id
        return await client.edit_schedule(site_id, sn, build(slot_id))

    return await _on_charger(ctx, act)


def _require(slot_id: str | None) -> str:
    if slot_id is None:
        raise ScheduleEditError("a slot is required")
    return slot_id


async def schedule_add(ctx: Context) -> int:
    a = ctx.args
    return await _edit(
        ctx,
        lambda _: AddSlot(
            start_time=a.start,
            end_time=a.end,
            days=a.days or ALL_DAYS,
            charging_level=a.amps,
            enabled=not a.disabled,
        ),
    )


async def schedule_set(ctx: Context) -> int:
    a = ctx.args
    return await _edit(
        ctx,
        lambda slot_id: SetSlot(
            slot_id=_require(slot_id),
            start_time=a.start,
            end_time=a.end,
            days=a.days,
            charging_level=a.amps,
        ),
    )


async def schedule_enable(ctx: Context) -> int:
    return await _edit(ctx, lambda slot_id: EnableSlot(slot_id=_require(slot_id)))


async def schedule_disable(ctx: Context) -> int:
    return await _edit(ctx, lambda slot_id: DisableSlot(slot_id=_require(slot_id)))


async def schedule_delete(ctx: Context) -> int:
    return await _edit(ctx, lambda slot_id: DeleteSlot(slot_id=_require(slot_id)))


async def live(ctx: Context) -> int:
    async with ctx.client() as client:
        site_id = await ctx.site_id(client)
        if ctx.args.action == "start":
            stream = await client.start_live_stream(site_id)
        else:
            stream = await client.stop_live_stream(site_id)
    if ctx.args.json:
        print_json({"site_id": site_id, **stream.model_dump()})
    elif not stream.accepted:
        print(f"live stream {ctx.args.action} not accepted by the cloud")
    elif ctx.args.action == "start":
        duration = f" for {stream.duration_s} s" if stream.duration_s else ""
        print(f"live stream started{duration}: status updates come faster")
    else:
        print("live stream stopped")
    return 0
