"""Builds the engine's :class:`~optimizer.engine.snapshot.Snapshot`, live or from history.

``observe_live`` reads the cloud within the request budget (status every tick, the rest when
due) and keeps the last good value of every optional source; the pure functions below it turn
parsed data into charger views, a surplus estimate, the tariff now and the sun, so the
simulator builds its snapshots from history with the very same code. docs/surplus.md explains
the surplus estimate and the request budget.
"""

from optimizer.observe.live import Cached, ObserveCache, What, observe_live
from optimizer.observe.surplus import (
    FRESH_SAMPLE,
    estimate_surplus,
    last_reported_end,
    latest_complete_bucket,
    sun_scale,
    surplus_from_bucket,
    surplus_from_latest_power,
)
from optimizer.observe.view import (
    build_snapshot,
    charger_draw_w,
    charger_view,
    site_timezone,
    tariff_now,
)

__all__ = [
    "FRESH_SAMPLE",
    "Cached",
    "ObserveCache",
    "What",
    "build_snapshot",
    "charger_draw_w",
    "charger_view",
    "estimate_surplus",
    "last_reported_end",
    "latest_complete_bucket",
    "observe_live",
    "site_timezone",
    "sun_scale",
    "surplus_from_bucket",
    "surplus_from_latest_power",
    "tariff_now",
]
