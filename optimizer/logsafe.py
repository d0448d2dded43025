"""Keeps secrets out of every log line, whatever code emitted it.

Secrets are registered as they become known (password, session id, manager token, cookie
values, the account e-mail); the log formatter masks them in every finished line. This
is defence in depth: the client never logs headers or bodies in the first place.
"""

from __future__ import annotations

import logging
import re
import threading

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_BEARER = re.compile(r"(?i)(bearer\s+)[\w.\-~+/=]+")
_MIN_SECRET_LEN = 4

_lock = threading.Lock()
_secrets: set[str] = set()
# The secrets longest first, and by their first _MIN_SECRET_LEN characters, rebuilt when one
# is added. A process with many sites holds thousands of secrets (each account's session,
# tokens, cookie values, e-mail) and every site's heartbeat is redacted each tick: trying every
# secret (sorted first, at each call) cost what their number costs, per site and tick
# (docs/scale.md). Past _FEW secrets, each place in the text is looked up instead, which costs
# what the text's length costs.
_FEW = 32
_longest_first: tuple[str, ...] = ()
_by_prefix: dict[str, tuple[str, ...]] = {}
_indexed = 0  # the _version the two were built at
_version = 0  # counts the secrets added


def register_secret(value: str | None) -> None:
    """Remember a value that must never appear in a log line."""
    global _version  # noqa: PLW0603 - the cache's version, under _lock
    if value and len(value) >= _MIN_SECRET_LEN:
        with _lock:
            if value not in _secrets:
                _secrets.add(value)
                _version += 1


def _index() -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    global _longest_first, _by_prefix, _indexed  # noqa: PLW0603 - the module's cache, locked
    with _lock:
        if _indexed != _version:
            _longest_first = tuple(sorted(_secrets, key=len, reverse=True))
            grouped: dict[str, list[str]] = {}
            for secret in _secrets:
                grouped.setdefault(secret[:_MIN_SECRET_LEN], []).append(secret)
            _by_prefix = {k: tuple(v) for k, v in grouped.items()}
            _indexed = _version
        return _longest_first, _by_prefix


def _found(text: str) -> list[str]:
    """The registered secrets that occur in ``text``, longest first (one may contain
    another)."""
    longest_first, by_prefix = _index()
    if len(longest_first) <= _FEW:
        return [s for s in longest_first if s in text]
    found: set[str] = set()
    for at in range(len(text) - _MIN_SECRET_LEN + 1):
        candidates = by_prefix.get(text[at : at + _MIN_SECRET_LEN])
        if candidates:
            found.update(s for s in candidates if text.startswith(s, at))
    return sorted(found, key=len, reverse=True)


def redact(text: str) -> str:
    """Mask registered secrets, bearer tokens and e-mail addresses in ``text``.

    Masking repeats until no registered secret is left, even one the masking itself put
    together (each round shortens the text, so it ends)."""
    found = _found(text)
    while found:
        for secret in found:
            text = text.replace(secret, "***")
        found = _found(text)
    text = _BEARER.sub(r"\1***", text)
    return _EMAIL.sub("***@***", text)


class RedactingFormatter(logging.Formatter):
    """Formats a record, traceback included, then masks secrets in the finished text.

    A formatter rather than a filter: filters share the record with every other handler, and
    rewriting it there would strip the traceback from all of them (tests' log capture, a
    second handler); this changes only what this handler writes.
    """

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
