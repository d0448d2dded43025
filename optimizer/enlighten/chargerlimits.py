"""The level limits of each charger, as its summary last said, kept for `evopt validate`.

`validate` runs without the cloud, yet a rule asking for 48 A from a 32 A charger is worth
catching before it runs. So each time a summary is read (by the service or a command), the
charger's minimum and maximum are written to a small private file in the state dir; validate
reads it. Nothing secret is in it (serials, names, amps); an unreadable file means unknown.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimizer.enlighten.models import ChargerSummary
from optimizer.statefile import load_object, save_object

__all__ = ["CHARGER_LIMITS_FILE", "ChargerLimit", "ChargerLimitsMemory", "read_charger_limits"]

_LOGGER = logging.getLogger(__name__)

CHARGER_LIMITS_FILE = "charger_limits.json"


@dataclass(frozen=True)
class ChargerLimit:
    """One charger's level range as its summary reported it (None where it said nothing)."""

    sn: str
    min_amps: int | None
    max_amps: int | None
    name: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.sn})" if self.name else self.sn


def _entry(summary: ChargerSummary) -> dict[str, Any]:
    return {
        "min_amps": summary.min_amps,
        # As the client takes it (limits.py): chargeLevelDetails' max, else maxCurrent.
        "max_amps": summary.max_amps or summary.max_current,
        "name": summary.display_name,
    }


class ChargerLimitsMemory:
    """Charger serial -> its limits; written (atomically, 0600) only when they change."""

    def __init__(self, state_dir: Path | None) -> None:
        self.path = state_dir / CHARGER_LIMITS_FILE if state_dir is not None else None
        self._known = load_object(self.path, lost="charger limits are unknown to validate")

    def record(self, summaries: Iterable[ChargerSummary]) -> None:
        changed = False
        for summary in summaries:
            entry = _entry(summary)
            if self._known.get(summary.sn) != entry:
                self._known[summary.sn] = entry
                changed = True
        if changed:
            try:
                save_object(self.path, self._known)
            except OSError as err:  # only validate's hint is lost
                _LOGGER.debug("charger limits not saved to %s: %s", self.path, err)


def _amps(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def read_charger_limits(state_dir: Path) -> tuple[ChargerLimit, ...]:
    """Every charger whose limits were recorded, in serial order (empty if none)."""
    data = load_object(state_dir / CHARGER_LIMITS_FILE, lost="charger limits are unknown")
    limits = []
    for sn, entry in sorted(data.items()):
        if isinstance(entry, dict):
            name = entry.get("name")
            limits.append(
                ChargerLimit(
                    sn=str(sn),
                    min_amps=_amps(entry.get("min_amps")),
                    max_amps=_amps(entry.get("max_amps")),
                    name=name if isinstance(name, str) else None,
                )
            )
    return tuple(limits)
