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

More histories in other climates, with other drivers, sit in a folder each (``seattle/``,
``phoenix/``: ``data/`` and ``sample-config.yaml``), made by ``synth.py``; :data:`SAMPLES`
names them all (``evopt simulate --sample NAME``); :data:`DEFAULT_SAMPLE` is the one above.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib.resources import as_file, files
from pathlib import Path
from zoneinfo import ZoneInfo

from optimizer.forecast.site import Site

__all__ = [
    "DEFAULT_SAMPLE",
    "NULL_DAY",
    "SAMPLES",
    "TIMEZONE",
    "Sample",
    "sample_config_path",
    "sample_paths",
    "sample_shift",
    "sample_site",
]

TIMEZONE = "America/New_York"
NULL_DAY = date(2025, 6, 14)
ENERGY_FILE = "lifetime_energy.json"
SESSIONS_GLOB = "sessions-*.json"
CONFIG_FILE = "sample-config.yaml"
START = datetime(2025, 1, 1)  # every bundled history's first bucket, local midnight


@dataclass(frozen=True)
class Sample:
    """A bundled history: its folder in the package, its config file there, its zone."""

    name: str
    folder: str  # "" for the package folder itself
    config_file: str
    timezone: str
    summary: str
    latitude: float  # where its weather was measured or made (its config's site)
    longitude: float


DEFAULT_SAMPLE = "greensboro"
SAMPLES: dict[str, Sample] = {
    sample.name: sample
    for sample in (
        Sample(
            DEFAULT_SAMPLE,
            "",
            CONFIG_FILE,
            TIMEZONE,
            "Greensboro, NC: humid subtropical, measured weather; an evening commuter",
            36.1,
            -79.95,
        ),
        Sample(
            "seattle",
            "seattle",
            CONFIG_FILE,
            "America/Los_Angeles",
            "Seattle, WA: cloudy maritime, short winter days; a commuter who leaves at 07:00",
            47.61,
            -122.33,
        ),
        Sample(
            "phoenix",
            "phoenix",
            CONFIG_FILE,
            "America/Phoenix",
            "Phoenix, AZ: sunny, hot, monsoon afternoons, home battery; a shift worker",
            33.45,
            -112.07,
        ),
    )
}

_extracted = ExitStack()
atexit.register(_extracted.close)


def _package_dir() -> Path:
    """The package folder on disk (extracted once if the package is imported from a zip)."""
    root = files(__name__)
    if isinstance(root, Path):
        return root
    return _extracted.enter_context(as_file(root))


def _sample(name: str) -> Sample:
    try:
        return SAMPLES[name]
    except KeyError:
        raise KeyError(f"no bundled sample {name!r}; valid: {', '.join(SAMPLES)}") from None


def sample_paths(name: str = DEFAULT_SAMPLE) -> tuple[Path, list[Path]]:
    """A sample's energy file and its session-history pages (oldest month first)."""
    data = _package_dir() / _sample(name).folder / "data"
    energy = data / ENERGY_FILE
    if not energy.is_file():
        raise FileNotFoundError(f"the sample history {name!r} is missing from {data}")
    return energy, sorted(data.glob(SESSIONS_GLOB))


def sample_config_path(name: str = DEFAULT_SAMPLE) -> Path:
    """A sample site's config: location, time zone, tariffs and current limit."""
    sample = _sample(name)
    return _package_dir() / sample.folder / sample.config_file


def sample_shift(name: str, timezone: str) -> timedelta:
    """How far the bundled history ``name`` moves when read in ``timezone``: its energy file's
    buckets start at local midnight of its first day, so read in another zone they start at
    that zone's midnight, this much later (earlier when negative). Its sessions are instants
    and must move as much (`evopt simulate --sample` moves them), or the household's evening
    plug-ins land in another hour's sun (Greensboro's 18:00 commuter, read in Melbourne, came
    home at 10:00)."""
    zone, home = ZoneInfo(timezone), ZoneInfo(_sample(name).timezone)
    return START.replace(tzinfo=zone) - START.replace(tzinfo=home)


def sample_site(name: str, timezone: str) -> Site:
    """Where the sun of the bundled history ``name`` stands, read in ``timezone``.

    Each history was measured (or made) at its own site, in its own zone; read in another zone
    every bucket moves by :func:`sample_shift`, and the sun in the data then stands where a
    site that much further east (15 degrees an hour) would see it, at the history's latitude.
    That is where the forecast must place it, or no clear-sky curve fits the history. (The
    Greensboro site stood for every sample: Seattle's forecast was made 11.5 degrees of
    latitude too far south.)
    """
    sample = _sample(name)
    shift_h = -sample_shift(name, timezone) / timedelta(hours=1)
    longitude = (sample.longitude + 15 * shift_h + 180) % 360 - 180
    return Site(sample.latitude, longitude, timezone)
