"""Times of day, days of the week and months as users write them in YAML.

One parser for config tariffs, rule conditions and the CLI, so that "mon-fri", "23:00-07:00"
and "nov-mar" mean the same everywhere. Ranges of times may cross midnight; ranges of months
may cross the new year.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAY_SETS = {
    "all": (1, 2, 3, 4, 5, 6, 7),
    "daily": (1, 2, 3, 4, 5, 6, 7),
    "weekdays": (1, 2, 3, 4, 5),
    "weekends": (6, 7),
}
_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


def parse_clock(text: str) -> int:
    """``"7:30"`` -> minutes after midnight; ``"24:00"`` is allowed as the end of the day."""
    match = _TIME.match(str(text))
    if not match:
        raise ValueError(f"'{text}' is not a time of day; use HH:MM, for example 07:30")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"'{text}' is not a time of day; use HH:MM from 00:00 to 24:00")
    return hours * 60 + minutes


def _clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class TimeRange:
    """``start`` to ``end`` in minutes after midnight (local); crosses midnight if end <= start."""

    start: int
    end: int

    @classmethod
    def parse(cls, value: Any) -> TimeRange:
        if isinstance(value, TimeRange):
            return value
        if not isinstance(value, str) or "-" not in value:
            raise ValueError(f"'{value}' is not a time range; write it as HH:MM-HH:MM")
        first, last = value.split("-", 1)
        start, end = parse_clock(first), parse_clock(last)
        if start == 24 * 60:
            raise ValueError(f"'{value}': 24:00 can only end a range; start at 00:00")
        if start == end:
            raise ValueError(f"'{value}' is an empty time range: start and end are the same")
        return cls(start, end)

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def contains(self, minute_of_day: int) -> bool:
        if self.crosses_midnight:
            return minute_of_day >= self.start or minute_of_day < self.end
        return self.start <= minute_of_day < self.end

    def contains_time(self, when: datetime | time) -> bool:
        return self.contains(when.hour * 60 + when.minute)

    @property
    def minutes(self) -> int:
        return (self.end - self.start) % (24 * 60) or 24 * 60

    def __str__(self) -> str:
        end = "24:00" if self.end == 24 * 60 else _clock_text(self.end)
        return f"{_clock_text(self.start)}-{end}"


def _number_or_name(token: str, names: tuple[str, ...], what: str) -> int:
    token = token.strip().lower()
    if token.isdigit() and 1 <= int(token) <= len(names):
        return int(token)
    if len(token) >= 3 and token[:3] in names:
        return names.index(token[:3]) + 1
    listed = ", ".join(names)
    raise ValueError(f"'{token}' is not a {what}; use 1-{len(names)} or one of {listed}")


def _parse_set(
    value: Any, names: tuple[str, ...], what: str, sets: dict[str, tuple[int, ...]]
) -> tuple[int, ...]:
    """Numbers, names, ``a-b`` ranges (wrapping), comma lists, or a named set."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        if value.strip().lower() in sets:
            return sets[value.strip().lower()]
        value = [part for part in re.split(r"[,\s]+", value) if part]
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"expected {what}s as a list or a range like {names[0]}-{names[4]}")
    result: set[int] = set()
    count = len(names)
    for item in value:
        token = str(item)
        if token.strip().lower() in sets:
            result.update(sets[token.strip().lower()])
        elif "-" in token:
            first, last = (_number_or_name(p, names, what) for p in token.split("-", 1))
            span = (last - first) % count
            result.update((first - 1 + k) % count + 1 for k in range(span + 1))
        else:
            result.add(_number_or_name(token, names, what))
    return tuple(sorted(result))


def parse_days(value: Any) -> tuple[int, ...]:
    """``weekdays``, ``mon-fri``, ``[sat, sun]``, ``1,2,3`` -> ISO weekdays (1 = Monday)."""
    return _parse_set(value, DAY_NAMES, "day", DAY_SETS)


def parse_months(value: Any) -> tuple[int, ...]:
    """``nov-mar`` (wraps the new year), ``[12, 1, 2]``, ``jun,jul`` -> months 1..12."""
    return _parse_set(value, MONTH_NAMES, "month", {"all": tuple(range(1, 13))})


def parse_time_ranges(value: Any) -> tuple[TimeRange, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise ValueError("expected at least one time range like 23:00-07:00")
    return tuple(TimeRange.parse(item) for item in items)


def format_days(days: tuple[int, ...]) -> str:
    for name, members in (
        ("daily", DAY_SETS["all"]),
        ("weekdays", DAY_SETS["weekdays"]),
        ("weekends", DAY_SETS["weekends"]),
    ):
        if days == members:
            return name
    return ",".join(DAY_NAMES[d - 1] for d in days)


_NAME_OR_NUMBER = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
_TIME_RANGE_SCHEMA = {"type": "string", "pattern": r"^\d{1,2}:\d{2}-\d{1,2}:\d{2}$"}

Days = Annotated[
    tuple[int, ...],
    BeforeValidator(parse_days),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "array", "items": _NAME_OR_NUMBER}],
            "description": "weekdays, weekends, all, mon-fri, [sat, sun] or 1-7 (1 = Monday)",
        }
    ),
]
Months = Annotated[
    tuple[int, ...],
    BeforeValidator(parse_months),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "array", "items": _NAME_OR_NUMBER}],
            "description": "nov-mar, [dec, jan, feb] or 1-12",
        }
    ),
]
TimeRanges = Annotated[
    tuple[TimeRange, ...],
    BeforeValidator(parse_time_ranges),
    PlainSerializer(lambda ranges: [str(r) for r in ranges], return_type=list[str]),
    WithJsonSchema(
        {
            "anyOf": [_TIME_RANGE_SCHEMA, {"type": "array", "items": _TIME_RANGE_SCHEMA}],
            "description": "local time range(s) HH:MM-HH:MM; 23:00-07:00 crosses midnight",
        }
    ),
]
