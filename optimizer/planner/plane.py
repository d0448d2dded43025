"""The panels' plane for a forecast: the config's when it names all of it, else learned.

One rule for the simulator's causal outlooks and the live service's, so both forecast with
the same plane for the same history and config (docs/forecast.md: learning the orientation).
"""

from __future__ import annotations

from optimizer.config import ForecastConfig
from optimizer.forecast import solar

__all__ = ["plane"]


def plane(
    history: solar.PowerHistory, site: solar.Site, settings: ForecastConfig, *, now_s: float
) -> solar.Orientation:
    """The configured plane, or one learned from the history before ``now_s`` (raises
    :class:`~optimizer.forecast.solar.ForecastError` when the history cannot support it)."""
    if settings.tilt is not None and settings.azimuth is not None and settings.peak_w is not None:
        return solar.Orientation(settings.tilt, settings.azimuth, settings.peak_w)
    return solar.learn_orientation(
        history,
        site,
        now_s=now_s,
        days=settings.history_days,
        tilt=settings.tilt,
        azimuth=settings.azimuth,
    )
