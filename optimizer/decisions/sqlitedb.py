"""The decision log's connection: the calls the service makes in plain SQL, sqlite-utils for the
rest, loaded on first use.

The service opens, migrates and writes the log with a handful of statements (decisions/store.py,
decisions/migrations.py), all through :class:`Database`'s own methods. Everything else a
caller asks of it (``table(...).rows_where``, ``query``, ``upsert_all``: `evopt log`, `why`,
`history fetch`, the tests) is sqlite-utils' ``Database`` on the same connection, made when
first asked for. So `evopt run` never imports sqlite-utils with its click, pluggy and dateutil
(about 3.5 MB resident, issue 16).

sqlite-utils imports pandas and numpy when they are installed (they are, for the simulator)
only to map their scalar types to column types when it creates a table from Python rows. Our
tables are created by SQL in decisions/migrations.py, so the mapping is never used; yet the
two libraries would cost a process about 50 MB resident and `evopt` about 0.4 s at start-up.
So they are hidden while sqlite-utils is first imported (a ``None`` in ``sys.modules`` makes an
import raise ImportError, which sqlite-utils handles as "not installed"), then shown again, so
the simulator and planner still import them when they run. If either is already loaded (a
simulation in this process), nothing is hidden.
"""

from __future__ import annotations

import importlib
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["Database", "sqlite_utils_db"]

_OPTIONAL = ("pandas", "numpy")


def sqlite_utils_db() -> Any:
    """The ``sqlite_utils.db`` module, imported with pandas and numpy hidden (see above)."""
    hidden = [name for name in _OPTIONAL if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        return importlib.import_module("sqlite_utils.db")
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


class Database:
    """One autocommit connection (``isolation_level=None``: every write transaction is an
    explicit ``BEGIN``) with what sqlite-utils' ``Database`` does for our calls; any other
    attribute is sqlite-utils' own, on the same connection.

    On such a connection sqlite-utils' ``execute`` is the connection's (it commits only a
    transaction the statement itself opened implicitly, which autocommit never does), and its
    constructor turns recursive triggers on, as this one does.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        if conn.isolation_level is not None:
            raise ValueError("the decision log's connection must be opened in autocommit mode")
        self.conn = conn
        self._full: Any = None
        self.conn.execute("PRAGMA recursive_triggers=on;")

    def execute(
        self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> sqlite3.Cursor:
        if parameters is None:
            return self.conn.execute(sql)
        return self.conn.execute(sql, parameters)

    def rollback(self) -> None:
        """Roll the open transaction back; nothing if none is open (an error ended it)."""
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def enable_wal(self) -> None:
        if self.conn.execute("PRAGMA journal_mode;").fetchone()[0] != "wal":
            self.conn.execute("PRAGMA journal_mode=wal;")

    def close(self) -> None:
        self.conn.close()

    def __getattr__(self, name: str) -> Any:
        """sqlite-utils' ``Database`` on this connection, for every other call."""
        if name.startswith("_"):  # ours are set in __init__; copy and pickle probe dunders
            raise AttributeError(name)
        if self._full is None:
            self._full = sqlite_utils_db().Database(self.conn, execute_plugins=False)
        return getattr(self._full, name)
