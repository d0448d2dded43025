"""The live service's outlook: the forecast from the site's own history, each tick.

The history is the site's ``lifetime_energy``: the reply the service itself reads for the
surplus (every day since the system was installed, so no `evopt history fetch` is needed),
else the one `evopt history fetch` stored in the decision store (the service has not read
it yet, or its reads fail). The slow part, the panels' plane (learned, or taken from the
config), is found at most once per :data:`RELOAD_EVERY`; a new live reply only replaces
the history, so the forecast's clear-sky index sees the buckets of the last hours (a
stored history is as old as its last fetch). Each tick only :func:`forecast_at` runs (the
clear-sky index and the house profile, under 50 ms: ``make bench``), and of it only the blend
of the last hours' index while no bucket has ended (:class:`~optimizer.forecast.solar.
ForecastReuse`: about 29 of every 30 ticks at a 30 s poll). Anything that fails
(no history yet, no clear day to learn from, an unreadable database) gives no outlook, and
the kind then follows the current surplus and says so: a forecast is an aid, never a reason
for a failed tick. With ``forecast.online`` the last reply of the online forecast
(optimizer/forecast/online.py) stands in for the learned index where it reaches;
:meth:`LiveOutlooks.refresh_online` asks for a new one when it is due, which the service runs
beside its ticks, never inside one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from optimizer.config import Config
from optimizer.decisions.store import DecisionStore
from optimizer.enlighten.errors import ParseError
from optimizer.enlighten.models import LifetimeEnergy, parse_lifetime_energy
from optimizer.forecast import solar
from optimizer.forecast.online import OnlineForecasts, Plane
from optimizer.planner.outlook import LEARNED_SOURCE, STEP_S, SurplusOutlook
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
    live: LifetimeEnergy | None = None  # the live reply the history came from, if one did
    # A forecast's parts that change once per bucket, kept between the ticks (exactly).
    reuse: solar.ForecastReuse = field(default_factory=solar.ForecastReuse)


class LiveOutlooks:
    """Per site: ``outlook(store, site_id, config, now, live=...)``, ``live`` being the
    service's last ``lifetime_energy`` reply (None before the first)."""

    def __init__(self) -> None:
        self._sites: dict[int, _Learned] = {}
        self._online: OnlineForecasts | None = None

    def online(self, config: Config) -> OnlineForecasts | None:
        """The online forecasts under the config's ``forecast.online`` (made again when a
        reload changes it; None without it)."""
        settings = config.forecast.online
        if settings is None:
            self._online = None
        elif self._online is None or self._online.settings != settings:
            self._online = OnlineForecasts(settings)
        return self._online

    async def refresh_online(self, site_id: int, config: Config, now: datetime) -> bool:
        """Ask the online forecast again for the site when it is due, on the plane the
        forecast uses (none before one is known); True when a new reply was kept."""
        online = self.online(config)
        learned = self._sites.get(site_id)
        site = config.site
        if online is None or learned is None or learned.orientation is None:
            return False
        if site.latitude is None or site.longitude is None or site.timezone is None:
            return False
        where = solar.Site(site.latitude, site.longitude, site.timezone)
        return await online.refresh(where, learned.orientation, now)

    def outlook(
        self,
        store: DecisionStore,
        site_id: int,
        config: Config,
        now: datetime,
        *,
        live: LifetimeEnergy | None = None,
    ) -> SurplusOutlook | None:
        site = config.site
        if site.latitude is None or site.longitude is None or site.timezone is None:
            return None
        where = solar.Site(site.latitude, site.longitude, site.timezone)
        learned = self._sites.get(site_id)
        if learned is None or not timedelta(0) <= now - learned.at < RELOAD_EVERY:
            learned = self._relearned(store, site_id, config, now, where=where, live=live)
        elif live is not None and live is not learned.live:
            # A new reply: its buckets replace the history and the plane stays (learning it
            # is the slow part: daily), unless there was no history to learn it from at all.
            if learned.history is None:
                learned = self._relearned(store, site_id, config, now, where=where, live=live)
            else:
                learned = self._sites[site_id] = _refreshed(learned, live)
        if learned.history is None or learned.orientation is None:
            return None
        online = self.online(config)
        reply = (
            None
            if online is None
            else online.current(where, Plane.of(learned.orientation), now.timestamp())
        )
        try:
            made = solar.forecast_at(
                learned.history,
                now,
                site=where,
                orientation=learned.orientation,
                horizon_h=config.forecast.horizon_h,
                index_days=config.forecast.index_days,
                load_days=config.forecast.load_days,
                reuse=learned.reuse,
                online=reply,
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
            source=LEARNED_SOURCE if reply is None else reply.source,
            replan="tick",
        )

    def _relearned(
        self,
        store: DecisionStore,
        site_id: int,
        config: Config,
        now: datetime,
        *,
        where: solar.Site,
        live: LifetimeEnergy | None,
    ) -> _Learned:
        learned = self._sites[site_id] = _learn(store, site_id, config, where, now, live=live)
        if learned.why is not None:
            _LOGGER.info("no solar forecast for site %s: %s", site_id, learned.why)
        return learned


def _learn(
    store: DecisionStore,
    site_id: int,
    config: Config,
    where: solar.Site,
    now: datetime,
    *,
    live: LifetimeEnergy | None,
) -> _Learned:
    if live is not None:
        energy, whose = live, "the lifetime energy read"
    else:
        stored = store.load_history_energy(site_id)
        if stored is None:
            why = "no lifetime energy read yet, and none stored (evopt history fetch)"
            return _Learned(now, None, None, why)
        whose = "the stored lifetime energy"
        try:
            energy = parse_lifetime_energy(stored[0], timezone=where.timezone)
        except (ParseError, ValueError) as err:
            return _Learned(now, None, None, f"{whose}: {err}")
    try:
        history = solar.PowerHistory.from_lifetime(energy)
    except (solar.ForecastError, ValueError) as err:
        return _Learned(now, None, None, f"{whose}: {err}", live)
    try:
        orientation = plane(history, where, config.forecast, now_s=now.timestamp())
    except solar.ForecastError as err:
        return _Learned(now, history, None, str(err), live)
    return _Learned(now, history, orientation, None, live)


def _refreshed(learned: _Learned, live: LifetimeEnergy) -> _Learned:
    """The same plane over the new reply's buckets; a reply that cannot be used keeps the
    history there was (one bad reply does not take the forecast away)."""
    try:
        history = solar.PowerHistory.from_lifetime(live)
    except (solar.ForecastError, ValueError) as err:
        _LOGGER.debug("the lifetime energy read is not used for the forecast: %s", err)
        return replace(learned, live=live)
    return replace(learned, history=history, live=live)
