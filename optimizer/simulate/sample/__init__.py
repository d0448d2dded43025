"""The bundled sample history: a year of a solar home with a commuter's electric car.

A 6 kWp rooftop array in Greensboro, NC (typical-year weather), a household of about
10 kWh a day, and a car charged at 32 A from plug-in, for calendar year 2025 in
``America/New_York``. ``generate.py`` made the files (``python -m
optimizer.simulate.sample.generate``, needs pvlib) and its docstring says how.

* ``lifetime_energy.json``: Enlighten's ``lifetime_energy`` reply (spec 2.6), Wh per
  15-minute bucket from local midnight of 1 January; one whole day (:data:`NULL_DAY`) is
  ``null`` in every flow, as when a gateway is offline.
* ``sessions-YYYY-MM.json``: one session-history page (spec 2.5) per month of plug-in.

Read them with :func:`optimizer.enlighten.models.parse_lifetime_energy` (``timezone=``
:data:`TIMEZONE`) and :func:`optimizer.enlighten.models.parse_session_history_page`.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack
from datetime import date
from importlib.resources import as_file, files
from pathlib import Path

__all__ = ["NULL_DAY", "TIMEZONE", "sample_config_path", "sample_paths"]

TIMEZONE = "America/New_York"
NULL_DAY = date(2025, 6, 14)
ENERGY_FILE = "lifetime_energy.json"
SESSIONS_GLOB = "sessions-*.json"
CONFIG_FILE = "sample-config.yaml"

_extracted = ExitStack()
atexit.register(_extracted.close)


def _package_dir() -> Path:
    """The package folder on disk (extracted once if the package is imported from a zip)."""
    root = files(__name__)
    if isinstance(root, Path):
        return root
    return _extracted.enter_context(as_file(root))


def sample_paths() -> tuple[Path, list[Path]]:
    """The sample's energy file and its session-history pages (oldest month first)."""
    data = _package_dir() / "data"
    energy = data / ENERGY_FILE
    if not energy.is_file():
        raise FileNotFoundError(f"the sample history is missing from {data}")
    return energy, sorted(data.glob(SESSIONS_GLOB))


def sample_config_path() -> Path:
    """The sample site's config: location, time zone, tariffs and current limit."""
    return _package_dir() / CONFIG_FILE
