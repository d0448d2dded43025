"""`evopt login`, `evopt sites`, `evopt status`.

`status` shows each charger as the cloud reports it and, beside it, the service's view of it
(service/view.py): read from the decision log, read-only, whether or not the service runs.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, tzinfo
from typing import Any

from optimizer.cli import last_status
from optimizer.cli.context import Context, display_zone
from optimizer.cli.output import print_json, print_table
from optimizer.decisions.store import DecisionStore, parse_utc
from optimizer.enlighten.auth import LoginOutcome
from optimizer.enlighten.capabilities import NO_FLAGS, SESSION_AUTH_NOTE, Capabilities
from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.errors import EnlightenError, MfaRequiredError
from optimizer.enlighten.levels import Level, level_in_effect
from optimizer.enlighten.models import ChargeMode, ChargerStatus, SiteStatus
from optimizer.enlighten.modeset import is_scheduler_outage
from optimizer.observe.session_energy import check_charger
from optimizer.plans import learned_from
from optimizer.service.view import describe, read_views
from optimizer.steer import Steering, read_steering


def _now() -> datetime:
    """The clock for the service's view (one function, so tests can pin it)."""
    return datetime.now(UTC)


async def login(ctx: Context) -> int:
    async with ctx.client() as client:
        if ctx.args.resend_otp:
            await client.resend_otp()
            print("Enphase is sending a new one-time code; run `evopt login --otp CODE`.")
            return 0
        if ctx.args.otp:
            await client.submit_otp(ctx.args.otp)
        elif await client.login(manual=True) is LoginOutcome.MFA_REQUIRED:
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
    if not found:
        print(
            "Enlighten's site search found no sites for this account; set `enlighten.site_id` "
            "to the site's numeric id (the number after /web/ in the Enlighten web address).",
            file=sys.stderr,
        )
    return 0


async def _preferred_mode(
    client: EnlightenClient, site_id: int, sn: str
) -> tuple[ChargeMode | None, list[str]]:
    """The scheduler's mode and its notes (storm guard, not synced); None when it cannot be
    read (the status integer still tells MANUAL from GREEN, and the note says so)."""
    try:
        pref = await client.mode_preference(site_id, sn)
    except EnlightenError as err:
        down = "down" if is_scheduler_outage(err) else "not readable"
        return None, [f"scheduler service {down}: mode from the status (0 manual, 1 green)"]
    return pref.mode, pref.notes()


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


async def _level(client: EnlightenClient, site_id: int, charger: ChargerStatus) -> Level:
    """The level in effect; the charger's minimum is read only when a safe limit needs it."""
    min_amps = None
    if charger.safe_limit and charger.charging is True:
        try:
            min_amps = (await client.limits(site_id, charger.sn)).min_amps
        except EnlightenError:
            min_amps = None
    remembered = client.levels.get(site_id, charger.sn)
    return level_in_effect(charger, remembered=remembered, min_amps=min_amps)


def status_record(
    charger: ChargerStatus,
    preferred: ChargeMode | None,
    notes: list[str] | None = None,
    level: Level | None = None,
    server_time: datetime | None = None,
) -> dict[str, Any]:
    """The `status --json` object (DESIGN.md section 2) for one charger.

    ``amps`` is the level in effect (``amps_source`` says whose word it is: the status, the
    level this host last commanded, or the charger's safe-limit minimum); ``commanded_amps``
    the setpoint, which a safe limit does not change.
    """
    level = level or Level(charger.session.charge_level_amps, None, None)
    # One reading, no history: the physics check still refuses what no charger can deliver.
    session_kwh = check_charger(None, charger, None, now=server_time or datetime.now(UTC)).kwh
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
        "amps": level.amps,
        "amps_source": level.source,
        "commanded_amps": level.setpoint,
        "session_kwh": session_kwh,
        "session_started_at": charger.session.started_at,
        "mode": mode.value if mode else None,
        "status_mode": charger.mode.value if charger.mode else None,
        "manual_override": override,
        "last_reported_at": charger.last_reported_at,
        "mode_notes": notes or [],
    }


async def _site_status(
    ctx: Context, client: EnlightenClient, site_id: int
) -> tuple[SiteStatus, float | None]:
    """(status, its age in s when it is the last good one because the status read fails with
    the scheduler service; None when fresh)."""
    now = datetime.now(UTC)
    try:
        site = await client.status(site_id)
    except EnlightenError as err:
        kept = last_status.load(ctx.config.state_dir, site_id) if is_scheduler_outage(err) else None
        if kept is None:
            raise
        print(f"evopt: {err.message}; showing the last status seen", file=sys.stderr)
        return kept[0], max(0.0, (now - kept[1]).total_seconds())
    last_status.save(ctx.config.state_dir, site_id, site, now)
    return site, None


async def status(ctx: Context) -> int:
    """Every charger of the site; with a ``sites:`` list, of every site (or ``--site``'s).

    Sites are shown one after another under a ``site NAME (ID)`` line; a site whose account
    or cloud fails says so and the others are still shown (the exit code is the failure's).
    `--json` stays one list of chargers, each with ``site_id`` (and ``site``, its name)."""
    if ctx.config.sites is None:
        return await _status_of(ctx, None)
    collected: list[dict[str, Any]] = []
    code = 0
    for view in ctx.config.site_configs():
        site_ctx = Context(config=view, args=ctx.args)
        if not ctx.args.json:
            print(f"site {view.label} ({view.enlighten.site_id}):")
        try:
            await _status_of(site_ctx, collected)
        except EnlightenError as err:
            print(f"evopt: site {view.label}: {err.user_message()}", file=sys.stderr)
            code = code or err.exit_code
    if ctx.args.json:
        print_json(collected)
    return code


def _automation(steering: Steering, now: datetime) -> dict[str, Any]:
    """The site's rule set and pause as `evopt rules use` / `evopt pause` (or Home Assistant)
    last set them, and why the service writes nothing now if it does not (a site the service
    never ran has the defaults)."""
    return steering.to_json() | {"writes_held": steering.holds_writes(now)}


async def _status_of(ctx: Context, collected: list[dict[str, Any]] | None) -> int:
    """One site's status: printed, or with ``--json`` and ``collected`` added to it."""
    async with ctx.client() as client:
        site_id = await ctx.site_id(client)
        site, age = await _site_status(ctx, client, site_id)
        records = [
            status_record(
                c,
                *await _preferred_mode(client, site_id, c.sn),
                level=await _level(client, site_id, c),
                server_time=site.server_time,
            )
            | {"stale": age is not None, "status_age_s": age}
            for c in site.chargers
        ]
        login = client.auth.login_state()
        found = await read_capabilities(client, site_id, [c.sn for c in site.chargers])
    now = _now()
    steering = [Steering()]
    serials = [r["sn"] for r in records]
    learned: dict[str, dict[str, Any]] = {}

    def steered(store: DecisionStore) -> None:
        steering[0] = read_steering(store, ctx.config)
        if ctx.config.plans == "auto":  # what the learned plans have to go on
            zone = ctx.config.site.timezone or site.timezone or "UTC"
            settings = ctx.config.habits.settings()
            learned.update(
                learned_from(store, site_id, serials, now=now, timezone=zone, settings=settings)
            )

    views = read_views(
        ctx.config.database_path,
        serials,
        site_id=site_id,
        now=now,
        also=steered,
    )
    automation = _automation(steering[0], now)
    forecast = _online_forecast(ctx, now)
    for record in records:
        record["automation"] = automation
        record["login"] = login
        able = found.get(record["sn"])
        record["capabilities"] = able.to_json() if able is not None else None
        record["session_auth"] = able.session_auth if able is not None else None
        record["service"] = views[record["sn"]].as_json()
        record["learned_from"] = learned.get(record["sn"])  # None: plans: manual, or no log
        record["online_forecast"] = forecast  # None: no forecast.online
        record["site_id"] = site_id
        if ctx.config.site_index is not None:
            record["site"] = ctx.config.site_name
    if ctx.args.json:
        if collected is not None:
            collected.extend(records)
        else:
            print_json(records)
        return 0
    columns = [
        "sn",
        "name",
        "connector_status",
        "plugged_in",
        "charging",
        "amps",
        "session_kwh",
        "dlb_active",
        "mode",
    ]
    headers = ["sn", "name", "state", "plugged", "charging", "amps", "session_kwh", "dlb", "mode"]
    print_table(headers, [[r[c] for c in columns] for r in records])
    if login["automatic"] != "allowed":
        print(
            f"Logins: automatic Enlighten logins {login['automatic'].replace('_', ' ')} until "
            f"{login['until']}: {login['reason']}. To do: {login['action']}."
        )
    if age is not None:
        print(f"stale: this status is {age / 60:.0f} min old (the Enlighten scheduler is down)")
    for record in records:
        for note in record["mode_notes"]:
            print(f"{record['sn']}: {note}")
    for sn, able in found.items():
        print(f"{sn}: {able.describe()}")
        if able.session_auth:
            print(f"{sn}: {SESSION_AUTH_NOTE}")
    for line in _planning_lines(ctx, views, learned, forecast, now=now):
        print(line)
    return 0


def _planning_lines(
    ctx: Context,
    views: dict[str, Any],
    learned: dict[str, dict[str, Any]],
    forecast: dict[str, Any] | None,
    *,
    now: datetime,
) -> list[str]:
    """The service's view of each charger, what its learned plans go on, and the online
    forecast's state: the text status's last lines."""
    zone = display_zone(ctx.config)
    lines: list[str] = []
    for sn, view in views.items():
        lines.extend(describe(sn, view, zone, now=now))
        if ctx.config.plans == "auto":
            lines.append(f"{sn}: {learned_text(learned.get(sn), zone, now=now)}")
    if forecast is not None:
        lines.append(online_text(forecast, zone, now=now))
    return lines


def _online_forecast(ctx: Context, now: datetime) -> dict[str, Any] | None:
    """With ``forecast.online``: whether the planner has a fresh online reply (the one the
    service kept on disk, optimizer/forecast/kept.py)."""
    settings, site = ctx.config.forecast.online, ctx.config.site
    if settings is None or site.latitude is None or site.longitude is None:
        return None
    from optimizer.forecast.kept import online_state  # noqa: PLC0415 - only when configured

    return online_state(settings, site.latitude, site.longitude, now=now)


def online_text(state: dict[str, Any], zone: tzinfo, *, now: datetime) -> str:
    """``forecast.online``'s line of `evopt status`."""
    if state["fetched_at"] is None:
        return (
            "solar forecast (forecast.online): no Forecast.Solar reply kept yet; the service "
            "asks while a solar_plan rule plans, and the learned index is used until then"
        )
    when = _clock(datetime.fromisoformat(state["fetched_at"]), zone, now=now)
    if state["in_use"]:
        return f"solar forecast (forecast.online): Forecast.Solar, fetched {when}"
    return (
        f"solar forecast (forecast.online): the last Forecast.Solar reply (fetched {when}) is "
        "too old (forecast.online.max_age); the learned index is used until the next one"
    )


def _clock(moment: datetime, zone: tzinfo, *, now: datetime) -> str:
    """A fetch's time as a status line says it: the clock today, else the date too."""
    local = moment.astimezone(zone)
    same_day = local.date() == now.astimezone(zone).date()
    return f"{local:%H:%M}" if same_day else f"{local:%Y-%m-%d %H:%M}"


def learned_text(held: dict[str, Any] | None, zone: tzinfo, *, now: datetime) -> str:
    """`plans: auto`'s line of `evopt status`: what the learned plans go on."""
    if held is None or not held["days_stored"]:
        return (
            "learned plans (plans: auto): no session history stored yet; the service fetches "
            "it at its next tick (or run `evopt history fetch`)"
        )
    when = _clock(parse_utc(held["fetched_at"]), zone, now=now)
    return (
        f"learned plans (plans: auto) from {held['sessions']} sessions in "
        f"{held['days_stored']} of the last {held['days']} days (history fetched {when})"
    )
