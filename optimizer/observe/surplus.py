"""How much solar the car could take: the last complete energy bucket or a power sample.

Pure functions over parsed data and an explicit ``now``, so the live service and the simulator
estimate the surplus the same way. The quantity is PV minus the house's own load, with the EV's
draw added back (the car must not count against the surplus it is using); battery flows stay
apart so each policy decides whether they count. A gap in the data is unknown, never zero: a
zero would read as "no sun" or "no load" and drive a decision.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from optimizer.config import SurplusConfig
from optimizer.engine.frozen import maker
from optimizer.engine.snapshot import EnergyBucket, Sun, Surplus
from optimizer.enlighten.models import LatestPower, LifetimeEnergy
from optimizer.sun import clear_sky_factor

_new_surplus = maker(Surplus)

__all__ = [
    "FRESH_SAMPLE",
    "estimate_surplus",
    "last_reported_end",
    "latest_complete_bucket",
    "sun_scale",
    "surplus_from_bucket",
    "surplus_from_latest_power",
]

# Flows that make a bucket usable for a surplus; a bucket with only ``evse`` is not.
SURPLUS_FLOWS = ("production", "consumption", "export", "solar_grid", "import", "grid_home")
# How far back a missing tail is skipped; anything older is stale long before max_age.
LOOKBACK_BUCKETS = 96
# In ``auto``, the power sample wins over the bucket only while it is at least this fresh:
# older than that, the gateway has gone quiet and the bucket is the better witness.
FRESH_SAMPLE = timedelta(minutes=15)
# Below about 3 degrees of elevation the clear-sky ratio is noise (and divides by ~0).
MIN_SUN_FACTOR = 0.05
# Scaling may at most double the bucket's PV: morning ramps are steep, clouds are not modelled.
MAX_SUN_SCALE = 2.0


# --- buckets -----------------------------------------------------------------------------------


def last_reported_end(energy: LifetimeEnergy, now: datetime) -> datetime | None:
    """End (UTC) of the last bucket that is complete both by ``now`` and by the cloud's report.

    ``last_report_date`` says how far the site has reported: a bucket ending after it may hold
    a partial quarter-hour, which would understate both PV and load.
    """
    index = _last_complete_index(energy, now)
    return None if index is None else energy.bucket_end(index).astimezone(UTC)


def latest_complete_bucket(energy: LifetimeEnergy, now: datetime) -> EnergyBucket | None:
    """The newest complete bucket with data, as average watts over its real duration.

    Trailing buckets without any surplus flow (the gateway missed them) are skipped, up to a
    day back; a null value stays None in the result.
    """
    last = _last_complete_index(energy, now)
    if last is None:
        return None
    for index in range(last, max(-1, last - LOOKBACK_BUCKETS), -1):
        if any(_wh(energy, flow, index) is not None for flow in SURPLUS_FLOWS):
            return _bucket(energy, index)
    return None


def _last_complete_index(energy: LifetimeEnergy, now: datetime) -> int | None:
    if energy.bucket_count == 0:
        return None
    limit = now if energy.last_report_at is None else min(now, energy.last_report_at)
    containing = energy.index_at(limit)
    if containing is not None:
        return containing - 1 if containing > 0 else None
    before_start = limit.astimezone(UTC) < energy.bucket_start(0).astimezone(UTC)
    return None if before_start else energy.bucket_count - 1


def _wh(energy: LifetimeEnergy, flow: str, index: int) -> float | None:
    values = energy.values(flow)
    return values[index] if index < len(values) else None


def _bucket(energy: LifetimeEnergy, index: int) -> EnergyBucket:
    start = energy.bucket_start(index).astimezone(UTC)
    end = energy.bucket_end(index).astimezone(UTC)
    hours = (end - start).total_seconds() / 3600  # a DST day has 23 or 25 of them

    def watts(*flows: str) -> float | None:
        """The first flow with a value; the alternatives are Enlighten's other spellings."""
        for flow in flows:
            wh = _wh(energy, flow, index)
            if wh is not None:
                return wh / hours
        return None

    return EnergyBucket(
        start=start,
        end=end,
        pv_w=watts("production"),
        consumption_w=watts("consumption"),
        evse_w=watts("evse"),
        export_w=watts("export", "solar_grid"),
        import_w=watts("import", "grid_home"),
        battery_charge_w=watts("solar_battery", "charge"),
        battery_discharge_w=watts("battery_home", "discharge"),
    )


# --- estimates ---------------------------------------------------------------------------------


def estimate_surplus(
    bucket: EnergyBucket | None,
    *,
    now: datetime,
    charger_draw_w: float,
    latest: LatestPower | None,
    config: SurplusConfig,
    sun_now: Sun | None = None,
    sun_mid: Sun | None = None,
    bucket_draw_w: float | None = None,
    timezone: str = "UTC",
) -> Surplus:
    """The surplus from the source the config picks.

    ``charger_draw_w`` is what the chargers draw now (added back to a power sample);
    ``bucket_draw_w`` what they drew over the bucket, for a bucket without ``evse`` (default:
    the draw now). ``sun_now``/``sun_mid`` scale the bucket's PV when ``scale_by_sun`` is on.
    """
    sample = latest if latest is not None and latest.watts is not None else None
    evse_estimate_w = charger_draw_w if bucket_draw_w is None else bucket_draw_w
    if sample is not None and sample.time is not None and config.source != "lifetime_energy":
        fresh = _age_s(now, sample.time) <= FRESH_SAMPLE.total_seconds()
        if config.source == "latest_power" or fresh:
            return surplus_from_latest_power(
                sample,
                bucket=bucket,
                now=now,
                evse_estimate_w=evse_estimate_w,
                max_age=config.max_age,
                timezone=timezone,
            )
    if config.source == "latest_power":
        return Surplus(None, "none", wording="no latest power sample")
    if bucket is None:
        fallback = " and no fresh power sample" if config.source == "auto" else ""
        return Surplus(None, "none", wording=f"no complete energy bucket{fallback}")
    scale = sun_scale(sun_now, sun_mid) if config.scale_by_sun else None
    return surplus_from_bucket(
        bucket,
        now=now,
        evse_estimate_w=evse_estimate_w,
        max_age=config.max_age,
        pv_scale=scale,
        timezone=timezone,
    )


def sun_scale(sun_now: Sun | None, sun_mid: Sun | None) -> float | None:
    """Clear-sky factor now over the one at the bucket's midpoint; None when meaningless."""
    if sun_now is None or sun_mid is None:
        return None
    then = clear_sky_factor(sun_mid.elevation_deg)
    if then < MIN_SUN_FACTOR:
        return None
    return min(MAX_SUN_SCALE, clear_sky_factor(sun_now.elevation_deg) / then)


def surplus_from_bucket(
    bucket: EnergyBucket,
    *,
    now: datetime,
    evse_estimate_w: float,
    max_age: timedelta,
    pv_scale: float | None = None,
    timezone: str = "UTC",
) -> Surplus:
    """PV minus (consumption minus EV) over the bucket; import/export where PV is missing.

    Without ``evse`` the chargers' draw is estimated by ``evse_estimate_w`` and the method
    says so. Without production or consumption the grid balance stands in:
    export - import + EV + battery charge - battery discharge, which is the same quantity
    when the meters agree.
    """
    age = _age_s(now, bucket.end)
    evse, estimated = bucket.evse_w, bucket.evse_w is None
    if evse is None:
        evse = evse_estimate_w
    charge = bucket.battery_charge_w or 0.0
    discharge = bucket.battery_discharge_w or 0.0
    pv = house = value = None
    if bucket.pv_w is not None and bucket.consumption_w is not None:
        pv = bucket.pv_w * (pv_scale if pv_scale is not None else 1.0)
        house = max(0.0, bucket.consumption_w - evse)
        value = pv - house
    elif bucket.export_w is not None and bucket.import_w is not None:
        value = bucket.export_w - bucket.import_w + evse + charge - discharge
    stale = value is not None and age > max_age.total_seconds()
    return _new_surplus(  # Surplus(...) without its frozen __init__: every tick of a replay
        pv_minus_house_w=None if stale else value,
        source="lifetime_energy",
        pv_w=pv,
        house_w=house,
        evse_w=evse,
        battery_charge_w=charge,
        battery_discharge_w=discharge,
        measured_at=bucket.start + (bucket.end - bucket.start) / 2,
        age_s=age,
        pv_age_s=None,
        house_age_s=None,
        wording=partial(
            _bucket_words,
            bucket,
            timezone,
            age,
            (pv, house, pv_scale, evse, estimated),
            max_age if stale else None,
        ),
    )


def _bucket_words(
    bucket: EnergyBucket,
    timezone: str,
    age: float,
    figures: tuple[float | None, float | None, float | None, float, bool],
    too_old: timedelta | None,
) -> str:
    """What :func:`surplus_from_bucket` says of its estimate, written only when read (a replay
    estimates every tick of a year and reads none of it: docs/performance.md). ``figures``:
    PV, house, the sun's scale, the EV's draw and whether it was assumed (evse missing);
    ``too_old``: the age limit the bucket is past, when the figure was made unknown."""
    pv, house, pv_scale, evse, estimated = figures
    head = f"{_span(bucket, timezone)} (age {_minutes(age)})"
    evse_note = f" (evse missing: EV {_kw(evse)} assumed)" if estimated else ""
    if pv is not None and house is not None:
        scaled = f" (x{pv_scale:.2f} for the sun now)" if pv_scale is not None else ""
        method = f"{head}: PV {_kw(pv)}{scaled} - house {_kw(house)}{evse_note}"
    elif bucket.export_w is not None and bucket.import_w is not None:
        method = (
            f"{head}: export {_kw(bucket.export_w)} - import {_kw(bucket.import_w)}"
            f" + EV {_kw(evse)}{evse_note} (no PV/consumption figures)"
        )
    else:
        method = f"{head}: no PV/consumption or import/export figures"
    if too_old is not None:
        method = f"{method}; older than {_minutes(too_old.total_seconds())}: unknown"
    return method


def surplus_from_latest_power(
    sample: LatestPower,
    *,
    bucket: EnergyBucket | None,
    now: datetime,
    evse_estimate_w: float,
    max_age: timedelta,
    timezone: str = "UTC",
) -> Surplus:
    """PV now from the power sample, minus the house's load from the last complete bucket.

    ``get_latest_power`` tracks PV production (enlighten-2026.md section 9): a negative night
    value is no production. The cloud has no live load or grid figure, so the house's load
    comes from the bucket, the EV's share taken out of it (``evse``, else ``evse_estimate_w``).
    Both ages are kept; either one older than ``max_age`` makes the surplus unknown.
    """
    pv = sample.pv_w
    if pv is None:
        return Surplus(None, "none", wording="the power sample has no value")
    at = sample.time or now
    pv_age = _age_s(now, at)
    head = f"PV sample {_kw(pv)} at {_local_hm(at, timezone)} (age {_minutes(pv_age)})"
    house = evse = house_age = None
    if bucket is not None:
        evse = bucket.evse_w if bucket.evse_w is not None else evse_estimate_w
        house = _house_w(bucket, evse)
        house_age = _age_s(now, bucket.end)
    if bucket is None or house is None or house_age is None:
        why = "no complete bucket" if bucket is None else "the bucket has no load figures"
        return Surplus(
            None,
            "latest_power",
            pv_w=pv,
            measured_at=at,
            age_s=pv_age,
            pv_age_s=pv_age,
            wording=f"{head}; house load unknown ({why})",
        )
    value: float | None = pv - house
    method = (
        f"{head} - house {_kw(house)} from the {_span(bucket, timezone)}"
        f" (age {_minutes(house_age)})"
    )
    oldest = max(pv_age, house_age)
    if oldest > max_age.total_seconds():
        value, method = None, f"{method}; older than {_minutes(max_age.total_seconds())}: unknown"
    return Surplus(
        pv_minus_house_w=value,
        source="latest_power",
        pv_w=pv,
        house_w=house,
        evse_w=evse,
        measured_at=at,
        age_s=oldest,
        pv_age_s=pv_age,
        house_age_s=house_age,
        wording=method,
    )


def _house_w(bucket: EnergyBucket, evse_w: float) -> float | None:
    """The house's own load over the bucket: consumption without the EV, else the balance
    PV + import - export (+ battery discharge - charge) without the EV."""
    if bucket.consumption_w is not None:
        return max(0.0, bucket.consumption_w - evse_w)
    pv, bought, sold = bucket.pv_w, bucket.import_w, bucket.export_w
    if pv is None or bought is None or sold is None:
        return None
    battery = (bucket.battery_discharge_w or 0.0) - (bucket.battery_charge_w or 0.0)
    return max(0.0, pv + bought - sold + battery - evse_w)


# --- wording -----------------------------------------------------------------------------------


def _age_s(now: datetime, then: datetime) -> float:
    """Seconds since ``then``; a sample stamped slightly in the future (clock skew) is age 0."""
    return max(0.0, (now - then).total_seconds())


def _kw(watts: float) -> str:
    return f"{watts / 1000:.1f} kW"


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _local_hm(when: datetime, timezone: str) -> str:
    local = when.astimezone(ZoneInfo(timezone))
    return f"{local.hour:02d}:{local.minute:02d}"  # strftime("%H:%M") at a fifth of the cost


def _span(bucket: EnergyBucket, timezone: str) -> str:
    length = bucket.end - bucket.start
    label = "daily" if length >= timedelta(hours=23) else f"{length.total_seconds() / 60:.0f}-min"
    start, end = _local_hm(bucket.start, timezone), _local_hm(bucket.end, timezone)
    return f"{label} bucket {start}-{end}"
