"""Scheduler reads: `evopt mode get`, `evopt battery get`, `evopt schedule list`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from optimizer.cli.context import Context
from optimizer.cli.output import print_json, print_table
from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.preference import ModePreference

T = TypeVar("T")


async def _per_charger(
    ctx: Context, read: Callable[[EnlightenClient, int, str], Awaitable[T]]
) -> dict[str, T]:
    """One read per selected charger of the selected site, in the site's charger order."""
    async with ctx.client() as client:
        site_id = await ctx.site_id(client)
        return {
            sn: await read(client, site_id, sn) for sn in await ctx.charger_serials(client, site_id)
        }


async def mode_get(ctx: Context) -> int:
    """The mode, and what the cloud says is in its way (storm guard, a change not yet synced)."""
    prefs = await _per_charger(ctx, lambda c, site, sn: c.mode_preference(site, sn))
    if ctx.args.json:
        print_json([{"sn": sn, **preference_record(p)} for sn, p in prefs.items()])
    else:
        rows = [(sn, _mode_name(p), "; ".join(p.notes())) for sn, p in prefs.items()]
        print_table(["sn", "mode", "notes"], rows)
    return 0


def preference_record(pref: ModePreference) -> dict[str, Any]:
    """The JSON keys `mode get` and `status` share: ``mode`` plus the 2026 preference flags."""
    return {
        "mode": pref.mode.value if pref.mode else None,
        "battery_profile": pref.profile,
        "storm_active": pref.storm_active,
        "disabled_by_storm": [m.value for m in pref.disabled_by_storm],
        "mode_synced": not pref.unsynced,
        "notes": pref.notes(),
    }


def _mode_name(pref: ModePreference) -> str:
    return pref.mode.value if pref.mode else "unknown (the scheduler named none)"


async def battery_get(ctx: Context) -> int:
    settings = await _per_charger(ctx, lambda c, site, sn: c.green_battery_setting(site, sn))
    if ctx.args.json:
        print_json([{"sn": sn, "use_battery": on} for sn, on in settings.items()])
    else:
        print_table(["sn", "use_battery"], settings.items())
    return 0


async def schedule_list(ctx: Context) -> int:
    per_charger = await _per_charger(ctx, lambda c, site, sn: c.schedules(site, sn))
    if ctx.args.json:
        print_json(
            [
                {
                    "sn": sn,
                    "config": s.config.model_dump(),
                    "slots": [slot.to_wire() for slot in s.slots],
                }
                for sn, s in per_charger.items()
            ]
        )
        return 0
    # `#` is the number `evopt schedule set|enable|disable|delete N` takes.
    rows = [
        (
            sn,
            number,
            slot.id,
            slot.schedule_type,
            slot.start_time,
            slot.end_time,
            slot.days,
            slot.charging_level,
            slot.enabled,
        )
        for sn, s in per_charger.items()
        for number, slot in enumerate(s.slots, start=1)
    ]
    print_table(["sn", "#", "id", "type", "start", "end", "days", "amps", "enabled"], rows)
    return 0
