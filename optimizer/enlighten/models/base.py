"""What every Enlighten reply parser shares: frozen models, the charge modes and the tolerant
scalar coercion (a reply whose *outer shape* or an *essential field* is wrong raises
:class:`ParseError`; an optional field of an unexpected type quietly becomes ``None``)."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, ParamSpec, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationError

from optimizer.enlighten.errors import ParseError

_P = ParamSpec("_P")
_R = TypeVar("_R")
_T = TypeVar("_T")

QUARTER_HOUR = timedelta(minutes=15)
ONE_DAY = timedelta(days=1)
USE_BATTERY_SETTING = "USE_BATTERY_FOR_SELF_CONSUMPTION"
_ACTIVE_CONNECTOR_STATES = frozenset({"CHARGING", "FINISHING", "SUSPENDED", "SUSPENDED_EV"})
_EPOCH_MS_THRESHOLD = 1e11  # 1e11 s is the year 5138, 1e11 ms is 1973: anything larger is ms
_WH_THRESHOLD = 200.0  # spec: session e_c above this is Wh, otherwise kWh
_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})
_ZONE_SUFFIX = re.compile(r"^(?P<stamp>[^\[]*)\[(?P<zone>[^\]]*)\]$")
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")
_NUMERIC = re.compile(r"-?\d+(\.\d+)?")


class FrozenModel(BaseModel):
    """Immutable so parsed replies can be shared between tasks without defensive copies."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class ChargeMode(StrEnum):
    """Values are the scheduler's own spellings, so a mode goes into a PUT body unchanged."""

    MANUAL_CHARGING = "MANUAL_CHARGING"
    SCHEDULED_CHARGING = "SCHEDULED_CHARGING"
    GREEN_CHARGING = "GREEN_CHARGING"
    SMART_CHARGING = "SMART_CHARGING"  # "AI optimisation": GREEN's place on ai_optimisation sites

    @property
    def takes_no_amps(self) -> bool:
        """GREEN and SMART are the charger's own automation: it picks the current, so a start
        carries no level, amps are never sent and a held charger is not auto-resumed."""
        return self in (ChargeMode.GREEN_CHARGING, ChargeMode.SMART_CHARGING)


# --- tolerant scalar coercion ------------------------------------------------------------------


def _as_float(value: Any) -> float | None:
    """Numbers arrive as numbers or numeric strings; bools and non-finite values are not data."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _as_int(value: Any) -> int | None:
    """Like :func:`_as_float` but only whole numbers ("32", 32.0), so amps never get rounded."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    number = _as_float(value)
    return int(number) if number is not None and number.is_integer() else None


def _as_bool(value: Any) -> bool | None:
    """The cloud spells flags as true, 1, "1" or "true" depending on the endpoint."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return {0: False, 1: True}.get(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    return None


def _as_str(value: Any) -> str | None:
    """Blank strings carry no information (``connectorStatusReason: ""``), so they become None."""
    return value if isinstance(value, str) and value.strip() else None


def _as_id(value: Any) -> str | None:
    """Identifiers (serials, slot ids, system ids) appear both as strings and as integers."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # beyond the interpreter's int-to-str digit limit
            return None
    text = _as_str(value)
    return text.strip() if text is not None else None


def _pick(
    raw: Mapping[str, Any], keys: Iterable[str], coerce: Callable[[Any], _T | None]
) -> _T | None:
    """The first usable value among alternative spellings of one field."""
    return _coalesce(*(coerce(raw.get(key)) for key in keys))


def _coalesce(*values: _T | None) -> _T | None:
    return next((value for value in values if value is not None), None)


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any] | None:
    return value if isinstance(value, list) else None


def _zone_or_none(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


@functools.lru_cache(maxsize=32)
def _site_zone(name: str) -> ZoneInfo:
    """Bucket arithmetic is meaningless without a real zone, so an unknown name is an error."""
    zone = _zone_or_none(name) if isinstance(name, str) and name else None
    if zone is None:
        raise ParseError(f"unknown timezone {name!r}")
    return zone


def _from_epoch(value: Any) -> datetime | None:
    seconds = _as_float(value)
    if seconds is None:
        return None
    if abs(seconds) >= _EPOCH_MS_THRESHOLD:
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _parse_enlighten_time(value: Any) -> datetime | None:
    """Accept every timestamp spelling seen in replies; return aware UTC or None.

    Java-style ``...Z[UTC]`` zone suffixes, nanosecond fractions, ``+00:00`` offsets, epoch
    seconds and epoch milliseconds all occur, sometimes within one reply.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(value)
    if not isinstance(value, str):
        return None
    stamp, zone = value.strip(), None
    if match := _ZONE_SUFFIX.match(stamp):
        stamp, zone = match["stamp"].strip(), _zone_or_none(match["zone"])
    if _NUMERIC.fullmatch(stamp):
        return _from_epoch(stamp)
    stamp = _LONG_FRACTION.sub(r"\1", stamp)
    if stamp[-1:] in ("Z", "z"):
        stamp = stamp[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(stamp)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone or UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _require_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ParseError(f"{what} is not a list")
    return value


def _require_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(f"{what} is not an object")
    return value


def _reports_as(what: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Backstop for the parsers' contract: the coercers hand pydantic only values of the
    declared types, but should one ever slip through, callers still see only ParseError."""

    def decorate(func: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(func)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return func(*args, **kwargs)
            except ValidationError as err:
                raise ParseError(
                    f"{what} reply has an invalid value: {err.errors()[0]['msg']}"
                ) from err

        return wrapper

    return decorate
