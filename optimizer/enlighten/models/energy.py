"""Lifetime energy buckets: Wh per 15 minutes or per day, missing kept as missing."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from optimizer.enlighten.errors import ParseError
from optimizer.enlighten.models.base import (
    ONE_DAY,
    QUARTER_HOUR,
    FrozenModel,
    _as_bool,
    _as_float,
    _as_int,
    _parse_enlighten_time,
    _reports_as,
    _require_dict,
    _site_zone,
)

# Whole numbers below 2**53 convert to float exactly and never overflow: the fast path's bound.
_FLOAT_EXACT = 2**53
_NUMBERS_OR_NULLS = frozenset({float, int, type(None)})

# --- lifetime energy ---------------------------------------------------------------------------


class LifetimeEnergy(FrozenModel):
    """Energy per bucket (Wh) for every flow the site reports; ``None`` is a gap, never zero."""

    system_id: int | None
    start_date: date
    interval: timedelta
    timezone: str
    last_report_at: datetime | None
    update_pending: bool
    series: dict[str, tuple[float | None, ...]]

    @property
    def bucket_count(self) -> int:
        return _longest(self.series)

    def bucket_start(self, index: int) -> datetime:
        """Quarter-hours count elapsed time, so a DST day has 92 or 100 of them, not 96.

        Python subtracts two datetimes of one zone by wall clock, so compare or subtract these
        only after ``.astimezone(UTC)``.
        """
        zone = _site_zone(self.timezone)
        if self.interval == ONE_DAY:
            return datetime.combine(self.start_date + index * ONE_DAY, time(), tzinfo=zone)
        return (self._origin_utc() + index * self.interval).astimezone(zone)

    def bucket_end(self, index: int) -> datetime:
        return self.bucket_start(index + 1)

    def values(self, flow: str) -> tuple[float | None, ...]:
        return self.series.get(flow, ())

    def missing(self, flow: str) -> list[int]:
        """Gaps in a reported flow, counting a short array's tail; a flow never sent has none."""
        values = self.values(flow)
        if not values:
            return []
        return [i for i in range(self.bucket_count) if i >= len(values) or values[i] is None]

    def index_at(self, when: datetime) -> int | None:
        if when.tzinfo is None:
            raise ValueError("index_at needs a timezone-aware datetime")
        if self.interval == ONE_DAY:
            local_day = when.astimezone(_site_zone(self.timezone)).date()
            index = (local_day - self.start_date).days
        else:
            index = (when.astimezone(UTC) - self._origin_utc()) // self.interval
        return index if 0 <= index < self.bucket_count else None

    def _origin_utc(self) -> datetime:
        local_midnight = datetime.combine(self.start_date, time(), tzinfo=_site_zone(self.timezone))
        return local_midnight.astimezone(UTC)


def _longest(series: Mapping[str, tuple[float | None, ...]]) -> int:
    return max(map(len, series.values()), default=0)


def _parse_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _energy_series(flow: str, values: list[Any]) -> tuple[float | None, ...]:
    """Every bucket as a float or None. A reply holds weeks of buckets per flow and is parsed
    every few minutes per site, so plain JSON numbers skip the general coercion; anything else
    goes through ``_as_float`` and is refused exactly as before (docs/scale.md)."""
    kinds = set(map(type, values))
    if kinds <= _NUMBERS_OR_NULLS:  # the usual reply (whole Wh or floats), checked at C speed:
        try:  # a finite sum means every bucket is finite (an inf or nan would carry through)
            finite = math.isfinite(math.fsum(filter(None, values)))
        except (OverflowError, ValueError):  # inf - inf, a huge int, or a sum past max
            finite = False
        if finite and int not in kinds:
            return tuple(values)
        if finite:
            return tuple([None if v is None else float(v) for v in values])
    series: list[float | None] = []
    append = series.append
    for index, value in enumerate(values):
        kind = type(value)
        if value is None:
            append(None)
        elif kind is float and math.isfinite(value):
            append(value)
        elif kind is int and -_FLOAT_EXACT < value < _FLOAT_EXACT:
            append(float(value))
        else:
            number = _as_float(value)
            if number is None:
                raise ParseError(f"lifetime energy {flow}[{index}] is not a number")
            append(number)
    return tuple(series)


def _local_date(when: datetime, zone: ZoneInfo) -> date | None:
    try:
        return when.astimezone(zone).date()
    except (OverflowError, ValueError):
        return None


def _detect_interval(
    start: date, bucket_count: int, last_report: datetime | None, zone: ZoneInfo
) -> timedelta:
    """A daily series has about one bucket per elapsed day; anything much longer is 15-min."""
    end = (_local_date(last_report, zone) if last_report else None) or datetime.now(zone).date()
    return QUARTER_HOUR if bucket_count > (end - start).days + 2 else ONE_DAY


@_reports_as("lifetime energy")
def parse_lifetime_energy(
    payload: Any,
    *,
    timezone: str,
    interval: Literal["auto", "15min", "day"] = "auto",
) -> LifetimeEnergy:
    body = _require_dict(payload, "lifetime energy reply")
    zone = _site_zone(timezone)
    start = _parse_date(body.get("start_date"))
    if start is None:
        raise ParseError("lifetime energy reply has no readable start_date")
    series = {
        flow: _energy_series(flow, values)
        for flow, values in body.items()
        if isinstance(values, list)
    }
    last_report = _parse_enlighten_time(body.get("last_report_date"))
    step = {"15min": QUARTER_HOUR, "day": ONE_DAY}.get(interval)
    if step is None:
        if interval != "auto":
            raise ValueError(f"unknown lifetime energy interval {interval!r}")
        step = _detect_interval(start, _longest(series), last_report, zone)
    energy = LifetimeEnergy(
        system_id=_as_int(body.get("system_id")),
        start_date=start,
        interval=step,
        timezone=timezone,
        last_report_at=last_report,
        update_pending=_as_bool(body.get("update_pending")) is True,
        series=series,
    )
    try:
        energy.bucket_end(energy.bucket_count)
    except (OverflowError, ValueError) as err:
        raise ParseError("lifetime energy start_date puts buckets outside the calendar") from err
    return energy
