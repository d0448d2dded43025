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


def register_secret(value: str | None) -> None:
    """Remember a value that must never appear in a log line."""
    if value and len(value) >= _MIN_SECRET_LEN:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """Mask registered secrets, bearer tokens and e-mail addresses in ``text``."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
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
