"""`evopt forecast`: the site's expected PV and surplus for the next hours, from its history.

Offline: it reads the lifetime energy `evopt history fetch` stored (or ``--energy FILE``) and
the site's location from the config; no request is sent, except with ``--online`` when
``forecast.online`` is configured (optimizer/forecast/online.py): without it, the last online
reply kept on disk (by the service, or an earlier ``--online``) serves while fresh, as it does
for the planner. The forecast module (numpy, pandas, pvlib) is imported only when this command
runs, so `evopt --help` stays fast (issue 16).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from optimizer.cli.context import Context
from optimizer.cli.output import print_json, print_table
from optimizer.cli.simulate import InputError, read_json
from optimizer.decisions.store import DecisionStore
from optimizer.enlighten.errors import ParseError
from optimizer.enlighten.models import LifetimeEnergy, parse_lifetime_energy

if TYPE_CHECKING:
    from optimizer.forecast.online import OnlinePV
    from optimizer.forecast.site import Site
    from optimizer.forecast.solar import Forecast, Orientation

__all__ = ["forecast"]

ONLINE_SKEW = timedelta(hours=1)
"""How far from the clock a forecast asked with ``--online`` may be made: Forecast.Solar
answers for today and tomorrow only, and its reply is kept as fetched now."""


def _energy(ctx: Context, timezone: str) -> tuple[LifetimeEnergy, str]:
    path = ctx.args.energy
    if path is not None:
        try:
            return parse_lifetime_energy(read_json(path), timezone=timezone), path
        except ParseError as err:
            raise InputError(f"{path}: {err}") from err
    database = ctx.config.database_path
    hint = "run `evopt history fetch` first, or pass --energy FILE"
    if not database.is_file():
        raise InputError(f"no history to forecast from: no database at {database}", hint=hint)
    with DecisionStore(database) as store:
        site_id = ctx.chosen_site_id()
        if site_id is None:
            sites = store.history_sites()
            site_id = sites[0] if len(sites) == 1 else None
        stored = store.load_history_energy(site_id) if site_id is not None else None
    if stored is None:
        raise InputError(f"no lifetime energy stored in {database}", hint=hint)
    name = f"{database} (site {site_id})"
    try:
        return parse_lifetime_energy(stored[0], timezone=timezone), name
    except ParseError as err:
        raise InputError(f"{name}: {err}") from err


async def forecast(ctx: Context) -> int:
    from optimizer.forecast import solar  # noqa: PLC0415 - lazy: numpy, pandas and pvlib

    site = ctx.config.site
    if site.latitude is None or site.longitude is None or site.timezone is None:
        raise InputError(
            "the forecast needs the site's place: set site.latitude, site.longitude and "
            "site.timezone in the config"
        )
    settings = ctx.config.forecast
    hours = ctx.args.hours if ctx.args.hours is not None else settings.horizon_h
    if not 0 < hours <= 48:
        raise InputError(f"--hours {hours:g}: expected more than 0 and at most 48")
    energy, name = _energy(ctx, site.timezone)
    try:
        history = solar.PowerHistory.from_lifetime(energy)
    except solar.ForecastError as err:
        raise InputError(f"{name}: {err}") from err
    now = _at(ctx, site.timezone, history)
    where = solar.Site(site.latitude, site.longitude, site.timezone)
    orientation = None
    if settings.tilt is not None and settings.azimuth is not None and settings.peak_w is not None:
        orientation = solar.Orientation(settings.tilt, settings.azimuth, settings.peak_w)
    try:
        if orientation is None:
            orientation = solar.learn_orientation(
                history,
                where,
                now_s=now.timestamp(),
                days=settings.history_days,
                tilt=settings.tilt,
                azimuth=settings.azimuth,
            )
        reply = await _online(ctx, where, orientation, now)
        result = solar.forecast_at(
            history,
            now,
            site=where,
            orientation=orientation,
            horizon_h=hours,
            index_days=settings.index_days,
            load_days=settings.load_days,
            online=reply,
        )
    except solar.ForecastError as err:
        raise InputError(f"{name}: {err}") from err
    if ctx.args.json:
        print_json(result.to_json())
    else:
        _print(result, ZoneInfo(site.timezone))
    return 0


async def _online(
    ctx: Context, where: Site, orientation: Orientation, now: datetime
) -> OnlinePV | None:
    """The online forecast's last reply that serves ``now`` (asked first with ``--online``,
    when due), or None without ``forecast.online`` or a fresh reply."""
    settings = ctx.config.forecast.online
    if settings is None:
        if ctx.args.online:
            raise InputError("--online needs forecast.online in the config (docs/forecast.md)")
        return None
    from optimizer.forecast.online import OnlineForecasts, Plane  # noqa: PLC0415 - lazy

    online = OnlineForecasts(settings)
    if ctx.args.online:
        if abs(now - _wall_now()) > ONLINE_SKEW:
            raise InputError(
                f"--online asks for the forecast from now, not from "
                f"{now.astimezone(UTC):%Y-%m-%d %H:%M} UTC: "
                "drop --at (and --energy, whose history ends earlier)"
            )
        await online.refresh(where, orientation, now)
    return online.current(where, Plane.of(orientation), now.timestamp())


def _wall_now() -> datetime:
    """The clock `--online` is checked against (one function, so tests can pin it)."""
    return datetime.now(UTC)


def _at(ctx: Context, timezone: str, history: Any) -> datetime:
    text: str | None = ctx.args.at
    if text is None:
        if ctx.args.energy is not None and len(history):
            return datetime.fromtimestamp(int(history.start_s[-1]) + 900, UTC)
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(text)
    except ValueError as err:
        raise InputError(f"--at: {text!r} is not a date-time like 2025-06-01T15:30") from err
    return at if at.tzinfo is not None else at.replace(tzinfo=ZoneInfo(timezone))


def _print(result: Forecast, zone: ZoneInfo) -> None:
    o = result.orientation
    rms = "" if o.rms is None else f", fit error {o.rms:.1%} on {o.clear_days} clear days"
    print(
        f"Panels: tilt {o.tilt_deg:.0f}°, azimuth {o.azimuth_deg:.0f}°, "
        f"{o.peak_w / 1000:.2f} kW peak ({o.source}{rms})"
    )
    recent = result.index.recent
    print(f"Sun: {result.source}")
    print(
        "Clear-sky index: "
        + ", ".join(
            f"{name} {band[1]:.2f} ({band[0]:.2f}-{band[2]:.2f})"
            for name, band in zip(
                ("morning", "midday", "afternoon"), result.index.bands, strict=True
            )
        )
        + ("" if recent is None else f"; last hours {recent:.2f}")
    )
    rows: list[tuple[str, ...]] = []
    per_hour = 4
    for first in range(0, len(result.start_s), per_hour):
        part = slice(first, first + per_hour)
        start = datetime.fromtimestamp(int(result.start_s[first]), UTC).astimezone(zone)
        if result.clear_sky_w[part].max() <= 0 and not rows:
            continue
        rows.append(
            (
                f"{start:%a %H:%M}",
                _kw(result.pv_p10_w[part]),
                _kw(result.pv_p50_w[part]),
                _kw(result.pv_p90_w[part]),
                _kw(result.house_w[part]),
                _kw(result.surplus_p50_w[part]),
            )
        )
    print_table(("hour", "pv_p10_kw", "pv_p50_kw", "pv_p90_kw", "house_kw", "surplus_kw"), rows)
    totals = (
        result.energy_kwh(result.pv_p10_w),
        result.energy_kwh(result.pv_p50_w),
        result.energy_kwh(result.pv_p90_w),
    )
    hours = len(result.start_s) * 900 / 3600
    end = datetime.fromtimestamp(result.made_at_s, UTC) + timedelta(hours=hours)
    print(
        f"PV until {end.astimezone(zone):%a %H:%M}: {totals[1]:.1f} kWh "
        f"(p10 {totals[0]:.1f}, p90 {totals[2]:.1f})"
    )


def _kw(values: Any) -> str:
    mean = float(values.mean())
    return "-" if math.isnan(mean) else f"{mean / 1000:.2f}"  # NaN: no reading to learn from
