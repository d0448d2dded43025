"""From parsed cloud data (live or replayed) to the engine's :class:`Snapshot`.

Pure: every input is an argument, most of them optional, so the simulator can build a snapshot
from history with exactly the code the live service uses, and a source that failed this tick
simply leaves its part unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from optimizer.config import Config
from optimizer.engine.snapshot import ChargerView, Snapshot, Sun, TariffNow
from optimizer.enlighten.capabilities import Capabilities, merge_capabilities
from optimizer.enlighten.levels import level_in_effect
from optimizer.enlighten.models import (
    BatteryStatus,
    ChargeMode,
    ChargerStatus,
    ChargerSummary,
    LatestPower,
    LifetimeEnergy,
    ScheduleSlot,
    SiteStatus,
)
from optimizer.limits import Limits
from optimizer.observe.surplus import estimate_surplus, latest_complete_bucket
from optimizer.sun import sun_at
from optimizer.tariffs import Tariffs, floor_slot

__all__ = ["build_snapshot", "charger_draw_w", "charger_view", "site_timezone", "tariff_now"]

TARIFF_HORIZON = timedelta(hours=24)
DEFAULT_VOLTAGE = 230.0
# Without a summary the charger's own range is unknown; these are the IQ EV Charger 2's.
DEFAULT_LIMITS = Limits(6, 32, 1)


def site_timezone(
    config: Config,
    status: SiteStatus | None = None,
    summaries: Iterable[ChargerSummary] = (),
) -> str | None:
    """The config's zone, else the status's, else a charger summary's; None if none is valid.

    Energy buckets start at the site's local midnight: placing them in a guessed zone would
    shift them by hours and turn a night's figures into this afternoon's.
    """
    names = (config.site.timezone, status.timezone if status else None)
    return next(
        (name for name in (*names, *(s.timezone for s in summaries)) if _known_zone(name)), None
    )


def _known_zone(name: str | None) -> bool:
    if not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class _TariffCache:
    """``tariff_now`` answers of the current 15-minute slot, for every site of the process.

    Each site has its own ``Tariffs``, so the cache needs an entry per site (two: at the slot's
    start and after it). It once held 8 entries and was emptied when full: beyond 8 sites every
    site recomputed a day of slots every tick (issue 13, docs/scale.md). Now a later slot drops
    the entries of earlier ones, so it holds one slot's worth; ``size`` is a backstop for a
    process of more than ~2000 sites, never the bound in use.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: dict[tuple[int, datetime, bool, str], tuple[Tariffs, TariffNow]] = {}
        self.newest: datetime | None = None

    def get(self, tariffs: Tariffs, key: tuple[int, datetime, bool, str]) -> TariffNow | None:
        found = self.entries.get(key)
        return found[1] if found is not None and found[0] is tariffs else None

    def put(self, tariffs: Tariffs, key: tuple[int, datetime, bool, str], value: TariffNow) -> None:
        start = key[1]
        if self.newest is None or start > self.newest:
            self.entries = {k: v for k, v in self.entries.items() if k[1] >= start}
            self.newest = start
        while len(self.entries) >= self.size:
            del self.entries[next(iter(self.entries))]  # the oldest entry
        self.entries[key] = (tariffs, value)


_TARIFF_CACHE = _TariffCache(size=4096)


def tariff_now(tariffs: Tariffs, now: datetime, timezone: str) -> TariffNow:
    """The window open at ``now``, when it changes, and 15-minute prices for the next day.

    Windows change only at 15-minute boundaries, so every tick inside one slot gets the same
    answer: it is kept (a day of slots cost about as much CPU as the rest of a tick).
    """
    start = floor_slot(now)
    key = (id(tariffs), start, now > start, timezone)
    found = _TARIFF_CACHE.get(tariffs, key)
    if found is not None:
        return found
    result = _tariff_now(tariffs, now, timezone)
    _TARIFF_CACHE.put(tariffs, key, result)
    return result


def _tariff_now(tariffs: Tariffs, now: datetime, timezone: str) -> TariffNow:
    window, price = tariffs.window_at(now.astimezone(ZoneInfo(timezone)))
    change = tariffs.next_change(now, timezone=timezone)
    at, next_window, next_price = change if change is not None else (None, None, None)
    return TariffNow(
        window=window,
        price=price,
        next_change_at=at,
        next_window=next_window,
        next_price=next_price,
        slots=tuple(tariffs.slots(now, now + TARIFF_HORIZON, timezone=timezone)),
    )


def charger_view(
    status: ChargerStatus,
    summary: ChargerSummary | None,
    *,
    mode: ChargeMode | None = None,
    use_battery: bool | None = None,
    slots: tuple[ScheduleSlot, ...] | None = None,
    voltage_default: float | None = None,
    site_max_amps: int | None = None,
    capabilities: Capabilities | None = None,
    remembered_amps: int | None = None,
    session_kwh: float | None = None,
    checked: bool = False,
) -> ChargerView:
    """One charger for the engine.

    ``mode`` is the scheduler preference (what the user or the engine chose); the status
    ``mode`` is what the charger does now. A GREEN preference with a MANUAL status while a car
    is plugged in means a start or stop in GREEN made it manual until the next plug-in (field
    notes). ``voltage_default`` is the config's ``site.voltage`` and wins over the summary.
    ``capabilities`` (flags and charger config merged) say whether a start would wait for
    session authentication and how many phases are in use: ``phaseCount`` alone is only the
    installation, so power is estimated on one phase unless more are known to be in use.
    ``remembered_amps`` is the level last commanded (the status's ``charge_level`` is null
    since 2026); ``session_kwh`` with ``checked`` is the energy after the physics check
    (``observe.session_energy``), which replaces the status's own figure.
    """
    limits = _limits(summary, site_max_amps)
    able = capabilities or merge_capabilities(status.sn, summary=summary)
    level = level_in_effect(status, remembered=remembered_amps, min_amps=limits.min_amps)
    preference = mode if mode is not None else status.mode
    override = (
        preference is ChargeMode.GREEN_CHARGING
        and status.mode is ChargeMode.MANUAL_CHARGING
        and (status.session_active or status.plugged_in is True)
    )
    return ChargerView(
        sn=status.sn,
        # The status read succeeded, so a charger that does not say otherwise is reachable.
        connected=status.connected is not False,
        plugged_in=status.plugged_in is True,
        charging=_session_active(status),
        faulted=status.faulted is True,
        min_amps=limits.min_amps,
        max_amps=limits.max_amps,
        granularity=limits.granularity,
        amps=level.amps,
        safe_limited=level.safe_limited,
        mode=preference,
        status_mode=status.mode,
        voltage_v=_voltage(voltage_default, summary),
        phases=able.estimate_phases,
        max_phases=able.bound_phases,
        session_auth=able.session_auth,
        amps_control=able.amps_control,
        name=status.name or (summary.display_name if summary else None),
        supports_use_battery=summary.supports_use_battery if summary else None,
        use_battery=use_battery,
        schedule_slots=slots,
        session_kwh=session_kwh if checked else status.session.energy_kwh,
        manual_override=override,
        reported_at=status.last_reported_at,
        plugged_in_at=status.session.plugged_in_at if status.plugged_in is True else None,
        drawing=_drawing(status),
    )


def _drawing(status: ChargerStatus) -> bool:
    """The car draws now: only a CHARGING connector says so (a suspended session keeps its
    level but takes nothing); without a connector state the ``charging`` flag decides."""
    if status.connector_status is not None:
        return status.connector_status == "CHARGING"
    return status.charging is True


def charger_draw_w(view: ChargerView) -> float:
    """What the charger draws now by its level: only while the car draws (``view.drawing``,
    the connector's CHARGING). A suspended session keeps its level but takes nothing, and
    adding it back to a grid sample would invent a surplus."""
    return view.watts_per_amp * (view.amps or 0) if view.drawing else 0.0


def build_snapshot(
    *,
    now: datetime,
    config: Config,
    status: SiteStatus,
    site_id: int | None = None,
    summaries: Mapping[str, ChargerSummary] | None = None,
    modes: Mapping[str, ChargeMode | None] | None = None,
    battery_settings: Mapping[str, bool | None] | None = None,
    schedules: Mapping[str, tuple[ScheduleSlot, ...]] | None = None,
    energy: LifetimeEnergy | None = None,
    latest_power: LatestPower | None = None,
    battery: BatteryStatus | None = None,
    capabilities: Mapping[str, Capabilities] | None = None,
    session_kwh: Mapping[str, float | None] | None = None,
    remembered_amps: Mapping[str, int] | None = None,
) -> Snapshot:
    """Everything the engine may know at ``now``; whatever is not given is unknown.

    ``session_kwh``: each charger's energy after the physics check, used instead of the
    status's figure for the chargers it names; ``remembered_amps``: the levels last commanded.
    """
    if now.tzinfo is None:
        raise ValueError("build_snapshot needs a timezone-aware now")
    now = now.astimezone(UTC)
    known = site_timezone(config, status, (summaries or {}).values())
    timezone = known or (energy.timezone if energy is not None else "UTC")
    pairs = [
        (
            charger,
            charger_view(
                charger,
                (summaries or {}).get(charger.sn),
                mode=(modes or {}).get(charger.sn),
                use_battery=(battery_settings or {}).get(charger.sn),
                slots=(schedules or {}).get(charger.sn),
                voltage_default=config.site.voltage,
                site_max_amps=config.site.max_current,
                capabilities=(capabilities or {}).get(charger.sn),
                remembered_amps=(remembered_amps or {}).get(charger.sn),
                session_kwh=(session_kwh or {}).get(charger.sn),
                checked=session_kwh is not None and charger.sn in session_kwh,
            ),
        )
        for charger in status.chargers
    ]
    bucket = latest_complete_bucket(energy, now) if energy is not None else None
    sun_now = _sun(config, now, timezone)
    sun_mid = None
    if bucket is not None and config.surplus.scale_by_sun:
        sun_mid = _sun(config, bucket.start + (bucket.end - bucket.start) / 2, timezone)
    surplus = estimate_surplus(
        bucket,
        now=now,
        charger_draw_w=sum(charger_draw_w(view) for _, view in pairs),
        latest=latest_power,
        config=config.surplus,
        sun_now=sun_now,
        sun_mid=sun_mid,
        timezone=timezone,
    )
    return Snapshot(
        now=now,
        timezone=timezone,
        chargers=tuple(view for _, view in pairs),
        surplus=surplus,
        tariff=tariff_now(config.tariffs, now, timezone),
        sun=sun_now,
        bucket=bucket,
        battery_soc_pct=battery.soc_pct if battery is not None else None,
        site_id=site_id,
    )


def _session_active(status: ChargerStatus) -> bool:
    """CHARGING, FINISHING, SUSPENDED and SUSPENDED_EV are sessions (field notes); without a
    connector state, the status's own ``charging`` flag."""
    if status.connector_status is not None:
        return status.session_active
    return status.charging is True


def _limits(summary: ChargerSummary | None, site_max_amps: int | None) -> Limits:
    """The summary's limits exactly as the write path validates them, else the defaults."""
    if summary is not None:
        return Limits.for_charger(summary, site_max_amps=site_max_amps)
    top = DEFAULT_LIMITS.max_amps
    return Limits(DEFAULT_LIMITS.min_amps, min(top, site_max_amps or top), 1)


def _voltage(configured: float | None, summary: ChargerSummary | None) -> float:
    if configured:
        return float(configured)
    if summary is not None and summary.operating_voltage:
        return float(summary.operating_voltage)
    return DEFAULT_VOLTAGE


def _sun(config: Config, when: datetime, timezone: str) -> Sun | None:
    site = config.site
    if site.latitude is None or site.longitude is None:
        return None
    return sun_at(when, latitude=site.latitude, longitude=site.longitude, timezone=timezone)
