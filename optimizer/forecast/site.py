"""Where a site's panels are, apart from the forecast that needs numpy and pvlib.

A replay of rules alone names the site (the bundled sample's, for a forecast it may never
make) but forecasts nothing, so it imports this and not :mod:`optimizer.forecast.solar`
(numpy's import was a twentieth of `evopt simulate --no-log`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Site"]


@dataclass(frozen=True)
class Site:
    """Where the panels are: the sun's path depends on nothing else."""

    latitude: float
    longitude: float
    timezone: str = "UTC"
    altitude_m: float = 0.0
