"""Small JSON files in the state dir that the client keeps between runs.

Remembered variants and commanded levels are worth having, never worth failing for: an
unreadable file is a warning and an empty memory, and a write replaces the file atomically so
a crash never leaves half of one.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

__all__ = ["load_object", "save_object"]

_LOGGER = logging.getLogger(__name__)


def load_object(path: Path | None, *, lost: str) -> dict[str, Any]:
    """The JSON object in ``path``; empty (with a warning saying what is ``lost``) if absent,
    unreadable or not an object."""
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        _LOGGER.warning("ignoring unreadable %s; %s", path, lost)
        return {}
    return data if isinstance(data, dict) else {}


def save_object(path: Path | None, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
