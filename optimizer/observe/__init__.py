"""Builds the engine's :class:`~optimizer.engine.snapshot.Snapshot`, live or from history.

``observe_live`` reads the cloud within the request budget (status every tick, the rest when
due) and keeps the last good value of every optional source; the pure functions below it turn
parsed data into charger views, a surplus estimate, the tariff now and the sun, so the
simulator builds its snapshots from history with the very same code. docs/surplus.md explains
the surplus estimate and the request budget.

The live half (``observe_live`` and its cache) is loaded on first use: it brings the cloud's
client and aiohttp, which the simulator and the offline commands that build snapshots from
history never need (0.16 s of `evopt simulate`'s start).
"""

from typing import TYPE_CHECKING

from optimizer.lazy import names_from
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

if TYPE_CHECKING:
    from optimizer.observe.live import Cached, ObserveCache, What, observe_live

__getattr__ = names_from(  # the live half, on first use (see the module's docstring)
    __name__, dict.fromkeys(("Cached", "ObserveCache", "What", "observe_live"), "live")
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
