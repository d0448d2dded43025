"""The online forecast's last reply on disk: where it lives and when it was fetched, without
numpy, so `evopt status` can say whether the planner has one (optimizer/forecast/online.py
writes the file and reads its numbers)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optimizer.cachedir import cache_root

if TYPE_CHECKING:
    from optimizer.config import OnlineForecastConfig

__all__ = [
    "DAMAGED",
    "FILE_VERSION",
    "PROVIDER",
    "kept_path",
    "kept_record",
    "online_state",
    "read_kept",
]

PROVIDER = "forecast_solar"
FILE_VERSION = 1


def kept_path(directory: Path | None, latitude: float, longitude: float) -> Path:
    """The site's file, named by a hash of its place: a path in a log names no home."""
    place = hashlib.sha256(f"{latitude:.4f},{longitude:.4f}".encode()).hexdigest()
    folder = directory if directory is not None else cache_root() / "forecast"
    return folder / f"{PROVIDER}-{place[:16]}.json"


def kept_record(fetched_s: float, plane: list[float], periods: dict[str, float]) -> dict[str, Any]:
    """The file's content: the header :func:`read_kept` checks, the plane asked and the
    provider's periods as it sent them."""
    return {
        "version": FILE_VERSION,
        "provider": PROVIDER,
        "fetched_at": datetime.fromtimestamp(fetched_s, UTC).isoformat(),
        "plane": plane,
        "watt_hours_period": periods,
    }


def read_kept(path: Path) -> tuple[datetime, dict[str, Any]] | None:
    """When the reply in ``path`` was fetched, and the whole record; None without a file or
    for another version or provider. A damaged file raises (OSError, ValueError, TypeError,
    KeyError, AttributeError): whoever reads it says so or not."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    if record.get("version") != FILE_VERSION or record.get("provider") != PROVIDER:
        return None
    return datetime.fromisoformat(record["fetched_at"]).astimezone(UTC), record


DAMAGED = (OSError, ValueError, TypeError, KeyError, AttributeError)
"""What :func:`read_kept` and reading a record's fields raise for a file that is damaged."""


def online_state(
    settings: OnlineForecastConfig,
    latitude: float,
    longitude: float,
    *,
    now: datetime,
    directory: Path | None = None,
) -> dict[str, Any]:
    """`evopt status --json`'s ``online_forecast``: the provider, when its last reply kept
    here was fetched (None: none, or a file that cannot be read), its age, and whether the
    planner uses it (at most ``max_age`` old; it also needs the learned plane, which only the
    service knows)."""
    try:
        found = read_kept(kept_path(directory, latitude, longitude))
    except DAMAGED:
        found = None
    fetched = None if found is None else found[0]
    age = None if fetched is None else (now - fetched).total_seconds()
    return {
        "provider": PROVIDER,
        "fetched_at": None if fetched is None else fetched.isoformat(),
        "age_s": None if age is None else round(age),
        "in_use": age is not None and 0 <= age <= settings.max_age.total_seconds(),
    }
