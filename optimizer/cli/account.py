"""`evopt login`, `evopt sites`, `evopt status`."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from optimizer.cli.context import Context
from optimizer.cli.output import print_json, print_table
from optimizer.enlighten.auth import LoginOutcome
from optimizer.enlighten.capabilities import NO_FLAGS, SESSION_AUTH_NOTE, Capabilities
from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.errors import EnlightenError, MfaRequiredError
from optimizer.enlighten.models import ChargeMode, ChargerStatus


async def login(ctx: Context) -> int:
    async with ctx.client() as client:
        if ctx.args.resend_otp:
            await client.resend_otp()
            print("Enphase is sending a new one-time code; run `evopt login --otp CODE`.")
            return 0
        if ctx.args.otp:
            await client.submit_otp(ctx.args.otp)
        elif await client.login() is LoginOutcome.MFA_REQUIRED:
            if not sys.stdin.isatty():
                raise MfaRequiredError("password accepted; Enphase sent a one-time code")
            await client.submit_otp(await asyncio.to_thread(input, "One-time code from Enphase: "))
        print(f"Logged in to {client.transport.base_url}; session saved in {ctx.config.state_dir}.")
    return 0


async def sites(ctx: Context) -> int:
    async with ctx.client() as client:
        found = await client.sites()
    if ctx.args.json:
        print_json([{"site_id": s.site_id, "name": s.name} for s in found])
    else:
        print_table(["site_id", "name"], [(s.site_id, s.name) for s in found])
    return 0


async def _preferred_mode(client: EnlightenClient, site_id: int, sn: str) -> ChargeMode | None:
    """The scheduler's mode; None when it cannot be read (the status integer still tells)."""
    try:
        return await client.charge_mode(site_id, sn)
    except EnlightenError:
        return None


async def read_capabilities(
    client: EnlightenClient, site_id: int, serials: list[str]
) -> dict[str, Capabilities]:
    """Each charger's capabilities; one that cannot be read is left out (status still shows)."""
    try:
        flags = await client.feature_flags(site_id)
    except EnlightenError:
        flags = NO_FLAGS
    found: dict[str, Capabilities] = {}
    for sn in serials:
        try:
            found[sn] = await client.capabilities(site_id, sn, flags=flags)
        except EnlightenError:
            continue
    return found


def status_record(charger: ChargerStatus, preferred: ChargeMode | None) -> dict[str, Any]:
    """The `status --json` object (DESIGN.md section 2) for one charger."""
    mode = preferred or charger.mode
    # A start/stop in GREEN turns into a manual override: status says 0, preference GREEN.
    override = preferred is ChargeMode.GREEN_CHARGING and charger.mode is ChargeMode.MANUAL_CHARGING
    return {
        "sn": charger.sn,
        "name": charger.name,
        "connected": charger.connected,
        "plugged_in": charger.plugged_in,
        "charging": charger.charging,
        "faulted": charger.faulted,
        "connector_status": charger.connector_status,
        "connector_status_reason": charger.connector_status_reason,
        "session_active": charger.session_active,
        "dlb_active": charger.dlb_active,
        "safe_limit": charger.safe_limit,
        "charge_level_amps": charger.session.charge_level_amps,
        "session_kwh": charger.session.energy_kwh,
        "session_started_at": charger.session.started_at,
        "mode": mode.value if mode else None,
        "status_mode": charger.mode.value if charger.mode else None,
        "manual_override": override,
        "last_reported_at": charger.last_reported_at,
    }


async def status(ctx: Context) -> int:
    async with ctx.client() as client:
        site_id = await ctx.site_id(client)
        site = await client.status(site_id)
        records = [
            status_record(c, await _preferred_mode(client, site_id, c.sn)) for c in site.chargers
        ]
        found = await read_capabilities(client, site_id, [c.sn for c in site.chargers])
    for record in records:
        able = found.get(record["sn"])
        record["capabilities"] = able.to_json() if able is not None else None
        record["session_auth"] = able.session_auth if able is not None else None
    if ctx.args.json:
        print_json(records)
        return 0
    columns = [
        "sn",
        "name",
        "connector_status",
        "plugged_in",
        "charging",
        "charge_level_amps",
        "session_kwh",
        "dlb_active",
        "mode",
    ]
    headers = ["sn", "name", "state", "plugged", "charging", "amps", "session_kwh", "dlb", "mode"]
    print_table(headers, [[r[c] for c in columns] for r in records])
    for sn, able in found.items():
        print(f"{sn}: {able.describe()}")
        if able.session_auth:
            print(f"{sn}: {SESSION_AUTH_NOTE}")
    return 0
