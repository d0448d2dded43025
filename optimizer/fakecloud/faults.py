"""Scriptable fault injection: the failures the real cloud shows, on demand and in order.

A test lists rules; each request is matched against them in order and the first rule that
matches takes it (consuming one of its ``times``). That makes sequences easy to script: "the
first status call gets a 503, the second a 429 with Retry-After, then it works".

Note for GET and PUT requests: aiohttp's client silently retries an idempotent request once
when the server drops the connection, so a ``disconnect`` rule for a GET or PUT (e.g.
``stop_charging``) needs ``times=2`` for the client code to see the failure.
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from email.utils import format_datetime
from typing import Any, Literal, get_args

FaultKind = Literal[
    "status", "html_login", "malformed_json", "timeout", "disconnect", "expire_session"
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)

# Messages the real services put in their error envelopes (spec 7.1).
DEFAULT_MESSAGES: dict[int, str] = {
    400: "Bad request",
    401: "Not Authorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method not allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    466: "UNSUPPORTED_ENVOY",
    468: "INVALID_SYSTEM_ID",
    472: "LIVE_STREAM_NOT_SUPPORTED",
    473: "IQ_GATEWAY_NOT_REPORTING",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    550: "SERVICE_UNREACHABLE",
    551: "SERVICE_UNREACHABLE",
    552: "CONNECTION_NOT_ESTABLISHED",
}

TRUNCATED_JSON = '{"data": {"chargers": ['


@dataclass
class FaultRule:
    """One scripted failure.

    Matching: ``method`` (any when None), and the request path containing ``path`` and/or
    matching the regular expression ``path_regex`` (``re.search``). ``skip`` lets that many
    matching requests through before the rule starts firing; ``times`` is how often it fires
    (0 or None: forever).

    Kinds and their options:

    - ``status``: reply ``status`` with JSON ``body`` (default
      ``{"status": "error", "message": ..., "code": ...}`` from ``message``/``code``), extra
      ``headers``, and ``retry_after`` (seconds, an HTTP-date string, or a datetime).
    - ``html_login``: 200 text/html login page (``body`` replaces the page when a string).
    - ``malformed_json``: 200 application/json whose body is cut short (``body`` overrides).
    - ``timeout``: wait ``delay_s`` seconds (real time), then answer normally, unless the
      client gave up meanwhile: then the request is dropped unhandled (it never took effect).
    - ``disconnect``: drop the connection without any response.
    - ``expire_session``: revoke every session, then handle the request normally (so it
      gets the usual 401 or login wall).

    ``after``: the fault fires *after* the real handler ran, so a write did take effect and
    the client still sees the failure (a 500 or a timeout on a start that started the
    charger). By default (False) it fires before, and a faulted write changes nothing.
    """

    kind: FaultKind
    path: str | None = None
    path_regex: str | None = None
    method: str | None = None
    times: int | None = 1
    skip: int = 0
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: float | str | datetime | None = None
    code: str | None = None
    message: str | None = None
    delay_s: float = 30.0
    after: bool = False
    hits: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, not {self.kind!r}")
        if self.kind == "status" and self.status is None:
            raise ValueError("a status fault needs a status code")
        if self.path_regex is not None:
            re.compile(self.path_regex)
        if self.method is not None:
            self.method = self.method.upper()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        """A rule from JSON (the admin route); unknown keys are an error, not ignored."""
        known = {f.name for f in fields(cls)} - {"hits"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault rule fields: {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if isinstance(self.retry_after, datetime):
            data["retry_after"] = self.retry_after_header()
        return data

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        if self.path is not None and self.path not in path:
            return False
        return self.path_regex is None or re.search(self.path_regex, path) is not None

    def exhausted(self) -> bool:
        return bool(self.times) and self.hits >= (self.times or 0)

    def retry_after_header(self) -> str | None:
        value = self.retry_after
        if value is None:
            return None
        if isinstance(value, datetime):
            return format_datetime(value, usegmt=True)
        if isinstance(value, int | float):
            return str(int(value)) if float(value).is_integer() else str(value)
        return value

    def error_body(self) -> Any:
        if self.body is not None:
            return self.body
        status = self.status or 500
        message = self.message or DEFAULT_MESSAGES.get(status, "error")
        return {"status": "error", "message": message, "code": self.code or message}


class FaultPlan:
    """The ordered rules of one fake; thread-safe so a test thread can script a running server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, kind: FaultKind | FaultRule, **options: Any) -> FaultRule:
        """Append a rule: ``plan.add("status", path="/status", status=503, times=2)``."""
        rule = kind if isinstance(kind, FaultRule) else FaultRule(kind=kind, **options)
        with self._lock:
            self._rules.append(rule)
        return rule

    def extend(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._rules.extend(rules)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def remove(self, rule: FaultRule) -> bool:
        """Lift one rule (a lasting outage that ends); False if it is no longer armed."""
        with self._lock:
            for index, armed in enumerate(self._rules):
                if armed is rule:
                    del self._rules[index]
                    return True
            return False

    @property
    def rules(self) -> list[FaultRule]:
        """The rules still armed, in matching order."""
        with self._lock:
            return list(self._rules)

    def take(self, method: str, path: str) -> FaultRule | None:
        """The rule that fires for this request (consuming one use), or None."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                if rule.skip > 0:
                    rule.skip -= 1
                    return None
                rule.hits += 1
                if rule.exhausted():
                    self._rules.remove(rule)
                return rule
            return None
