"""Which request variant each site and charger accepts, remembered across runs.

Probing costs requests (the account has a budget) and every failed variant is a command that
did not happen, so once a variant works it is tried first from then on, also after a restart.
A variant that starts failing with 404/405 is forgotten and the probe starts over.
"""

from __future__ import annotations

from pathlib import Path

from optimizer.statefile import load_object, save_object

VARIANTS_FILE = "variants.json"


class VariantMemory:
    """A small key -> variant-name map, written atomically to the state dir on each change."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.path = state_dir / VARIANTS_FILE if state_dir is not None else None
        self._known: dict[str, str] = self._load()

    def _load(self) -> dict[str, str]:
        data = load_object(self.path, lost="variants will be probed again")
        return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}

    def get(self, key: str) -> str | None:
        return self._known.get(key)

    def remember(self, key: str, variant: str) -> None:
        if self._known.get(key) != variant:
            self._known[key] = variant
            self._save()

    def forget(self, key: str) -> None:
        if self._known.pop(key, None) is not None:
            self._save()

    def _save(self) -> None:
        save_object(self.path, self._known)
