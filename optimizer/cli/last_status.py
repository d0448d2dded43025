"""The last good status `evopt status` saw, for when the status fails with the scheduler.

In 2026 the status read fails for hours together with the scheduler service (reference section
10: a 503 whose message names the scheduler). Rather than show nothing, `evopt status` then
prints the last status it read, marked stale with its age, and says why. Nothing secret is in
it (serials, names, states), and an unreadable file is ignored, never an error.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

from optimizer.enlighten.models import SiteStatus
from optimizer.statefile import write_private_json

__all__ = ["LAST_STATUS_FILE", "load", "save"]

_LOGGER = logging.getLogger(__name__)

LAST_STATUS_FILE = "last_status.json"


def save(state_dir: Path, site_id: int, status: SiteStatus, now: datetime) -> None:
    path = state_dir / LAST_STATUS_FILE
    try:
        entry = {
            "site_id": site_id,
            "at": now.isoformat(),
            "status": status.model_dump(mode="json"),
        }
        write_private_json(path, entry)
    except OSError as err:  # a cache: a read-only state dir must not fail the command
        _LOGGER.debug("last status not saved: %s", err)


def load(state_dir: Path, site_id: int) -> tuple[SiteStatus, datetime] | None:
    path = state_dir / LAST_STATUS_FILE
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        if entry.get("site_id") != site_id:
            return None
        return SiteStatus.model_validate(entry["status"]), datetime.fromisoformat(entry["at"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        _LOGGER.debug("no usable last status in %s: %s", path, err)
        return None
