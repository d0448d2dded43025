"""The charge-mode preference as the scheduler sends it in 2026 (reference section 3).

Beyond the current mode the reply says things a controller must not fight: a storm alert that
suppresses some modes (``stormActive``, each mode's ``isDisabledByStorm``), a mode change the
charger has not yet taken (``modeSyncStatus`` other than "synced"), and the site battery
profile that makes SMART ("AI optimisation") appear in GREEN's place. They are kept in one
typed value so ``evopt mode get`` and ``evopt status`` can say so and the engine can hold.
"""

from __future__ import annotations

from typing import Any

from optimizer.enlighten.models.base import (
    ChargeMode,
    FrozenModel,
    _as_bool,
    _as_dict,
    _as_str,
    _reports_as,
)
from optimizer.enlighten.models.scheduler import _MODE_KEYS, parse_charge_mode

__all__ = ["SYNCED", "ModePreference", "parse_mode_preference"]

SYNCED = "synced"


class ModePreference(FrozenModel):
    """``mode`` None: the reply named none (or had no ``modes``); the caller keeps its own."""

    mode: ChargeMode | None
    profile: str | None = None
    sync_status: str | None = None
    storm_active: bool = False
    disabled_by_storm: tuple[ChargeMode, ...] = ()
    offered: tuple[ChargeMode, ...] = ()

    @property
    def unsynced(self) -> bool:
        """Inferred from the reference: any value but "synced" means not yet acknowledged."""
        return self.sync_status is not None and self.sync_status.lower() != SYNCED

    def notes(self) -> list[str]:
        """Human notes for ``mode get`` and ``status``: what the cloud says is in the way."""
        notes = []
        if self.storm_active or self.disabled_by_storm:
            held = ", ".join(mode.value for mode in self.disabled_by_storm)
            notes.append("storm guard active" + (f" (suppresses {held})" if held else ""))
        if self.unsynced:
            notes.append(f"mode change not yet synced to the charger ({self.sync_status})")
        return notes

    def remembering(self, last: ChargeMode | None) -> ModePreference:
        """This reply, with ``last`` filled in when it named no mode."""
        if self.mode is not None or last is None:
            return self
        return self.model_copy(update={"mode": last})


@_reports_as("charge mode")
def parse_mode_preference(payload: Any) -> ModePreference:
    mode = parse_charge_mode(payload)
    data = _as_dict(_as_dict(payload).get("data"))
    config = _as_dict(data.get("config"))
    modes = _as_dict(data.get("modes", _as_dict(payload).get("modes")))
    entries = {key: _as_dict(modes.get(key)) for key in _MODE_KEYS if key in modes}
    return ModePreference(
        mode=mode,
        profile=_as_str(config.get("profile")),
        sync_status=_as_str(config.get("modeSyncStatus")),
        storm_active=_as_bool(config.get("stormActive")) is True,
        disabled_by_storm=tuple(
            _MODE_KEYS[key]
            for key, entry in entries.items()
            if _as_bool(entry.get("isDisabledByStorm")) is True
        ),
        offered=tuple(_MODE_KEYS[key] for key in entries),
    )
