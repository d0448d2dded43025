"""Time-of-use tariffs: named windows with prices, and the price at any moment.

Pure functions over local time, shared by the engine (which window is open, which 15-minute
slots before a deadline are cheapest), the config validator and the simulator's costs. Windows
are checked in the order written; where two overlap, the first listed wins (and `evopt
validate` warns about it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from optimizer.timespec import DAY_SETS, Days, Months, TimeRange, TimeRanges

SLOT = timedelta(minutes=15)
_WHOLE_DAY = (TimeRange(0, 24 * 60),)


class TariffWindow(BaseModel):
    """One named window: a price per kWh during some times, days and months."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    price: float = Field(description="import price per kWh during this window")
    times: TimeRanges = Field(default=_WHOLE_DAY, description="local time ranges")
    days: Days = Field(default=DAY_SETS["all"], description="days of the week")
    months: Months = Field(default=tuple(range(1, 13)), description="months of the year")

    def contains(self, local: datetime) -> bool:
        return (
            local.month in self.months
            and self._day_of_range_start(local) in self.days
            and any(r.contains_time(local) for r in self.times)
        )

    def _day_of_range_start(self, local: datetime) -> int:
        """The weekday a range started on: 01:00 Saturday in 23:00-07:00 belongs to Friday."""
        minute = local.hour * 60 + local.minute
        for r in self.times:
            if r.crosses_midnight and r.contains(minute) and minute < r.end:
                return (local - timedelta(days=1)).isoweekday()
        return local.isoweekday()


@dataclass(frozen=True)
class PriceSlot:
    """A 15-minute slot and its import price; ``window`` None means the default price."""

    start: datetime
    end: datetime
    window: str | None
    price: float | None


class Tariffs(BaseModel):
    """The ``tariffs:`` section of the config."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    currency: str = Field(default="", description="shown with costs, e.g. AUD")
    import_price: float | None = Field(
        default=None, description="price per kWh outside every window (None: unknown)"
    )
    export_price: float = Field(default=0.0, description="feed-in credit per kWh exported")
    windows: dict[str, TariffWindow] = Field(default_factory=dict)

    def window_at(self, local: datetime) -> tuple[str | None, float | None]:
        """(window name, price) at a local time; (None, import_price) outside every window."""
        for name, window in self.windows.items():
            if window.contains(local):
                return name, window.price
        return None, self.import_price

    def boundaries(self) -> tuple[int, ...]:
        """The minutes of the day where a window's time range starts or ends, sorted: between
        two of them (and in one month and on one weekday) :meth:`window_at` answers the same,
        since a window reads the time of day only through its ranges' ``contains`` at the
        minute and whether the minute is before a range's end. A year of quarter hours has
        a few intervals a day where it has 96 slots (the replay's price table, issue 16)."""
        return tuple(
            sorted({m for w in self.windows.values() for r in w.times for m in (r.start, r.end)})
        )

    def slots(self, start: datetime, end: datetime, *, timezone: str) -> list[PriceSlot]:
        """Price of each 15-minute slot from ``start`` (rounded down) until ``end``."""
        zone = ZoneInfo(timezone)
        at = floor_slot(start)
        result = []
        while at < end:
            name, price = self.window_at(at.astimezone(zone))
            result.append(PriceSlot(at, at + SLOT, name, price))
            at += SLOT
        return result

    def next_change(
        self, now: datetime, *, timezone: str, horizon: timedelta = timedelta(days=8)
    ) -> tuple[datetime, str | None, float | None] | None:
        """When the window next changes after ``now``, and to which; None within the horizon."""
        zone = ZoneInfo(timezone)
        current = self.window_at(now.astimezone(zone))
        at = floor_slot(now) + SLOT
        while at < now + horizon:
            here = self.window_at(at.astimezone(zone))
            if here != current:
                return at, here[0], here[1]
            at += SLOT
        return None


def floor_slot(when: datetime) -> datetime:
    return when - timedelta(
        minutes=when.minute % 15, seconds=when.second, microseconds=when.microsecond
    )
