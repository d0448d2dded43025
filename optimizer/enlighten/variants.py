"""Which request variant each site and charger accepts, remembered across runs.

Probing costs requests (the account has a budget) and every failed variant is a command that
did not happen, so once a variant works it is tried first from then on, also after a restart.
A variant that starts failing with 404/405 is forgotten and the probe starts over.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

VARIANTS_FILE = "variants.json"


class VariantMemory:
    """A small key -> variant-name map, written atomically to the state dir on each change."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.path = state_dir / VARIANTS_FILE if state_dir is not None else None
        self._known: dict[str, str] = self._load()

    def _load(self) -> dict[str, str]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            _LOGGER.warning("ignoring unreadable %s; variants will be probed again", self.path)
            return {}
        if not isinstance(data, dict):
            return {}
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
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._known, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)
