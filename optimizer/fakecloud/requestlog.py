"""What the client sent: every request the fake served, with headers and body.

Tests assert on this (which endpoint, which headers, how often, in what order), so secrets are
kept as sent. Admin routes under ``/__fake__/`` are not logged.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any


@dataclass
class LoggedRequest:
    time: str  # fake-clock instant, ISO 8601 UTC
    wall: float  # real epoch seconds, for ordering and timing checks
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] | None = None
    text: str | None = None
    status: int | None = None
    fault: str | None = None
    fault_after: bool = False  # the fault fired after the handler ran (it may have taken effect)
    # The client's address and port: one value per TCP connection, so the requests of one
    # kept-alive connection share it (benchmarks/daemon.py counts the connections opened).
    peer: str | None = None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    def cookies(self) -> dict[str, str]:
        raw = self.header("Cookie")
        if not raw:
            return {}
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return {}
        return {name: morsel.value for name, morsel in jar.items()}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []

    def append(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    def requests(
        self, path_contains: str | None = None, method: str | None = None
    ) -> list[LoggedRequest]:
        """Entries in arrival order, filtered by a path substring and/or method."""
        with self._lock:
            entries = list(self._entries)
        return [
            e
            for e in entries
            if (path_contains is None or path_contains in e.path)
            and (method is None or e.method == method.upper())
        ]

    def since(self, index: int) -> list[LoggedRequest]:
        """Entries from position ``index`` on: what arrived since a caller last looked (a long
        soak reads only the new ones instead of copying the whole log every tick)."""
        with self._lock:
            return self._entries[index:]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
