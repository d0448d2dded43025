"""The charging level in effect, when the cloud no longer says it.

Since 2026 ``session_d.charge_level`` is null in every capture and the wrapped status has no
``chargingLevel`` (enlighten-2026.md section 1), so the only witness of the level a charger runs
at is the last one we commanded. :class:`LevelMemory` keeps it per charger in the state dir, so
the CLI, the service and a restart all see the same level. :func:`level_in_effect` is the one
rule for what a status means: ``safeLimitState`` 1 while charging is the charger's own fallback
to its minimum, reported as such and never taken for the user's setpoint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from optimizer.enlighten.models import ChargeMode, ChargerStatus
from optimizer.statefile import load_object, save_object

__all__ = ["LEVELS_FILE", "Level", "LevelMemory", "level_in_effect"]

_LOGGER = logging.getLogger(__name__)

LEVELS_FILE = "levels.json"

LevelSource = Literal["status", "remembered", "safe_limit"]


@dataclass(frozen=True)
class Level:
    """The current a charger runs at (or would start at), and who says so.

    ``setpoint`` is the level the user or the engine chose: under a safe limit it stays the
    commanded one while ``amps`` is the charger's minimum.
    """

    amps: int | None
    source: LevelSource | None
    setpoint: int | None

    @property
    def safe_limited(self) -> bool:
        return self.source == "safe_limit"


def level_in_effect(
    status: ChargerStatus, *, remembered: int | None, min_amps: int | None
) -> Level:
    """The level a status means: the charger's own ``charge_level`` when it sends one, else
    the remembered command; ``safeLimitState`` 1 while charging overrides both with ``min``.

    In GREEN the charger picks its current itself, so nothing remembered applies.
    """
    reported = status.session.charge_level_amps
    green = status.mode is ChargeMode.GREEN_CHARGING
    setpoint = reported if reported is not None else (None if green else remembered)
    if status.safe_limit and status.charging is True and min_amps is not None:
        return Level(min_amps, "safe_limit", setpoint)
    if reported is not None:
        return Level(reported, "status", setpoint)
    if setpoint is not None:
        return Level(setpoint, "remembered", setpoint)
    return Level(None, None, None)


class LevelMemory:
    """Site -> charger -> the last amps commanded, written atomically on each change."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.path = state_dir / LEVELS_FILE if state_dir is not None else None
        self._known: dict[str, dict[str, int]] = self._load()

    def _load(self) -> dict[str, dict[str, int]]:
        data = load_object(self.path, lost="the commanded levels are unknown")
        known: dict[str, dict[str, int]] = {}
        for site, chargers in data.items():
            if isinstance(chargers, dict):
                known[str(site)] = {
                    str(sn): amps
                    for sn, amps in chargers.items()
                    if isinstance(amps, int) and not isinstance(amps, bool) and amps > 0
                }
        return known

    def get(self, site_id: int, sn: str) -> int | None:
        return self._known.get(str(site_id), {}).get(sn)

    def for_site(self, site_id: int) -> dict[str, int]:
        return dict(self._known.get(str(site_id), {}))

    def remember(self, site_id: int, sn: str, amps: int) -> None:
        chargers = self._known.setdefault(str(site_id), {})
        if chargers.get(sn) != amps:
            chargers[sn] = amps
            self._save()

    def _save(self) -> None:
        try:
            save_object(self.path, self._known)
        except OSError as err:  # the command went through; only the memory of it is lost
            _LOGGER.warning("could not save the commanded level to %s: %s", self.path, err)
