"""The surplus from the site's IQ Gateway: PV now minus the house now (pure).

Beside ``surplus.py`` (the cloud's buckets and power sample) so that every surplus the engine
sees is made in ``observe``; the gateway package reads and checks, this turns a checked
reading into the engine's :class:`~optimizer.engine.snapshot.Surplus`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from optimizer.config import Config
from optimizer.engine.snapshot import EnergyBucket, Snapshot, Surplus
from optimizer.enlighten.models import LatestPower, SiteStatus
from optimizer.gateway.reading import GatewayReading
from optimizer.gateway.source import GatewaySource
from optimizer.observe.surplus import surplus_from_latest_power
from optimizer.observe.view import charger_draw_w

__all__ = ["gateway_surplus", "with_gateway"]


def with_gateway(
    snapshot: Snapshot,
    status: SiteStatus,
    gateway: GatewaySource,
    reading: GatewayReading,
    *,
    config: Config,
) -> Snapshot:
    """The snapshot with the gateway's surplus (checked against physics) and battery charge.

    The chargers' draw comes from the snapshot's own view of them (their status and level),
    the same figure the cloud path adds back when a bucket has no ``evse``. A charger that
    charges at a level nobody here set (the status no longer says it) cannot be taken out: its
    draw stays in the house's load, which understates the surplus, and the method says so.
    """
    read = {charger.sn for charger in status.chargers}
    draw = sum(charger_draw_w(view) for view in snapshot.chargers if view.sn in read)
    unknown = [v.sn for v in snapshot.chargers if v.charging and v.amps is None]
    checked = gateway.check(reading, charger_draw_w=draw)
    notes = list(checked.problems)
    if unknown:
        notes.append(f"the level of {', '.join(unknown)} is unknown: its draw counts as house")
    surplus = gateway_surplus(
        checked.reading,
        now=snapshot.now,
        charger_draw_w=draw,
        max_age=config.surplus.max_age,
        bucket=snapshot.bucket,
        note="; ".join(notes),
        timezone=snapshot.timezone,
    )
    soc = checked.reading.battery_soc_pct
    return replace(
        snapshot,
        surplus=surplus,
        battery_soc_pct=soc if soc is not None else snapshot.battery_soc_pct,
    )


def gateway_surplus(
    reading: GatewayReading,
    *,
    now: datetime,
    charger_draw_w: float,
    max_age: timedelta,
    bucket: EnergyBucket | None = None,
    note: str = "",
    timezone: str = "UTC",
) -> Surplus:
    """PV now minus the house now (consumption without the chargers' draw), from the gateway.

    The gateway's consumption CT sees the chargers too, so their draw (``charger_draw_w``, from
    the status as the cloud path takes ``evse``) is taken out. Without a consumption meter the
    house's load comes from the last complete cloud bucket, as the power-sample path does.
    ``note`` (the checks' findings) is added to the method.
    """
    age = max(0.0, (now - reading.at).total_seconds())
    battery = reading.battery_w or 0.0
    charge, discharge = max(0.0, -battery), max(0.0, battery)
    pv = reading.production_w
    tail = f"; {note}" if note else ""
    if pv is None:
        return Surplus(None, "gateway", age_s=age, wording=f"gateway: no trusted production{tail}")
    if reading.consumption_w is None:
        sample = LatestPower(watts=pv, time=reading.at)
        from_bucket = surplus_from_latest_power(
            sample,
            bucket=bucket,
            now=now,
            evse_estimate_w=charger_draw_w,
            max_age=max_age,
            timezone=timezone,
        )
        why = "no consumption meter" if not reading.consumption_metered else "consumption unknown"
        return replace(
            from_bucket,
            source="gateway",
            battery_charge_w=charge,
            battery_discharge_w=discharge,
            wording=f"gateway ({why}): {from_bucket.method}{tail}",
        )
    house = max(0.0, reading.consumption_w - charger_draw_w)
    value: float | None = pv - house
    method = (
        f"gateway: PV {_kw(pv)} - house {_kw(house)} (consumption {_kw(reading.consumption_w)}"
        f" - EV {_kw(charger_draw_w)}), {age:.0f} s old{tail}"
    )
    if age > max_age.total_seconds():
        value, method = (
            None,
            f"{method}; older than {max_age.total_seconds() / 60:.0f} min: unknown",
        )
    return Surplus(
        pv_minus_house_w=value,
        source="gateway",
        pv_w=pv,
        house_w=house,
        evse_w=charger_draw_w,
        battery_charge_w=charge,
        battery_discharge_w=discharge,
        measured_at=reading.at,
        age_s=age,
        wording=method,
    )


def _kw(watts: float | None) -> str:
    return "?" if watts is None else f"{watts / 1000:.1f} kW"
