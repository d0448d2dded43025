"""sqlite-utils' ``Database`` without pandas and numpy in the service's memory.

sqlite-utils imports pandas and numpy when they are installed (they are, for the simulator)
only to map their scalar types to column types when it creates a table from Python rows. Our
tables are created by SQL in decisions/migrations.py, so the mapping is never used; yet the
two libraries cost the long-running service about 50 MB resident and `evopt` about 0.4 s at
start-up (issue 16). So they are hidden while sqlite-utils is first imported (a ``None`` in
``sys.modules`` makes an import raise ImportError, which sqlite-utils handles as "not
installed"), then shown again, so the simulator and planner still import them when they run.
If either is already loaded (a simulation in this process), nothing is hidden.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

__all__ = ["Database"]

_OPTIONAL = ("pandas", "numpy")


def _import_sqlite_utils_db() -> object:
    hidden = [name for name in _OPTIONAL if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        return importlib.import_module("sqlite_utils.db")
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


if TYPE_CHECKING:
    from sqlite_utils import Database
else:
    Database = _import_sqlite_utils_db().Database
