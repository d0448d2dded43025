"""The live service's outlook: the forecast from the site's stored history, each tick.

The service hands it the decision store (where `evopt history fetch` keeps the site's
``lifetime_energy``) at every tick while a ``solar_plan`` policy is enabled. The slow parts
are kept: the history is read and parsed, and the panels' plane learned (or taken from the
config), at most once per :data:`RELOAD_EVERY`; each tick only :func:`forecast_at` runs (the
clear-sky index and the house profile, under 50 ms: ``make bench``). Anything that fails
(no history yet, no clear day to learn from, an unreadable database) gives no outlook, and
the kind then follows the current surplus and says so: a forecast is an aid, never a reason
for a failed tick.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from optimizer.config import Config
from optimizer.decisions.store import DecisionStore
from optimizer.enlighten.errors import ParseError
from optimizer.enlighten.models import parse_lifetime_energy
from optimizer.forecast import solar
from optimizer.planner.outlook import STEP_S, SurplusOutlook
from optimizer.planner.plane import plane

__all__ = ["RELOAD_EVERY", "LiveOutlooks"]

_LOGGER = logging.getLogger(__name__)
RELOAD_EVERY = timedelta(hours=24)


@dataclass
class _Learned:
    at: datetime
    history: solar.PowerHistory | None
    orientation: solar.Orientation | None
    why: str | None = None  # why there is no forecast, logged once per reload


class LiveOutlooks:
    """Per site: ``outlook(store, site_id, config, now)``."""

    def __init__(self) -> None:
        self._sites: dict[int, _Learned] = {}

    def outlook(
        self, store: DecisionStore, site_id: int, config: Config, now: datetime
    ) -> SurplusOutlook | None:
        site = config.site
        if site.latitude is None or site.longitude is None or site.timezone is None:
            return None
        where = solar.Site(site.latitude, site.longitude, site.timezone)
        learned = self._sites.get(site_id)
        if learned is None or not timedelta(0) <= now - learned.at < RELOAD_EVERY:
            learned = self._sites[site_id] = _learn(store, site_id, config, where, now)
            if learned.why is not None:
                _LOGGER.info("no solar forecast for site %s: %s", site_id, learned.why)
        if learned.history is None or learned.orientation is None:
            return None
        try:
            made = solar.forecast_at(
                learned.history,
                now,
                site=where,
                orientation=learned.orientation,
                horizon_h=config.forecast.horizon_h,
                index_days=config.forecast.index_days,
                load_days=config.forecast.load_days,
            )
        except (solar.ForecastError, ValueError) as err:
            _LOGGER.debug("no solar forecast for site %s this tick: %s", site_id, err)
            return None
        first = (
            int(made.start_s[0]) if len(made.start_s) else int(now.timestamp()) // STEP_S * STEP_S
        )
        return SurplusOutlook(
            made_at_s=now.timestamp(),
            first_s=first,
            p10_w=tuple(float(v) for v in made.surplus_p10_w),
            p50_w=tuple(float(v) for v in made.surplus_p50_w),
            p90_w=tuple(float(v) for v in made.surplus_p90_w),
            source="forecast",
            replan="tick",
        )


def _learn(
    store: DecisionStore, site_id: int, config: Config, where: solar.Site, now: datetime
) -> _Learned:
    stored = store.load_history_energy(site_id)
    if stored is None:
        return _Learned(now, None, None, "no lifetime energy stored (evopt history fetch)")
    try:
        energy = parse_lifetime_energy(stored[0], timezone=where.timezone)
        history = solar.PowerHistory.from_lifetime(energy)
    except (ParseError, solar.ForecastError, ValueError) as err:
        return _Learned(now, None, None, f"the stored lifetime energy: {err}")
    try:
        orientation = plane(history, where, config.forecast, now_s=now.timestamp())
    except solar.ForecastError as err:
        return _Learned(now, history, None, str(err))
    return _Learned(now, history, orientation)
