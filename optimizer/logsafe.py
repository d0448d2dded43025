"""Keeps secrets out of every log line, whatever code emitted it.

Secrets are registered as they become known (password, session id, manager token, cookie
values, the account e-mail); a logging filter replaces them before a record is formatted. This
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


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message with :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = redact(exc_text)
        return True
