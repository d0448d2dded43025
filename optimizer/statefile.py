"""Files in the state dir: private to the owner, written whole, never worth failing for.

The state dir holds login tokens, the decision log (it names the site and its chargers) and
small memories of the cloud (variants, levels, charger limits, the last status). Every file
there is created mode 0600 and the dir 0700, through this one module, so that a new state file
cannot be created readable by others by forgetting a ``chmod``. A write goes through a
temporary file (created 0600 itself, so the content is never exposed for a moment) and an
atomic rename: a crash leaves the old file whole.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "create_private",
    "load_object",
    "private_dir",
    "save_object",
    "write_private_json",
    "write_private_text",
]

_LOGGER = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) with mode 0700; an existing dir is left as it is.

    The user may have chosen a group-readable dir on purpose; what we create is private.
    """
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)


def create_private(path: Path) -> None:
    """An empty file at ``path`` (mode 0600) unless one exists: for files others open, such as
    SQLite's, which then gives its -wal and -shm files the same mode."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)


def write_private_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, mode 0600, atomically."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # a leftover temporary file may have had another mode
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_private_json(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON, mode 0600; a crash leaves the old file whole."""
    write_private_text(path, json.dumps(data, indent=1, sort_keys=True))


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
    """Write ``data`` to ``path`` (private, atomic); nothing without a state dir."""
    if path is not None:
        write_private_json(path, data)
