"""Past charging sessions: a plausible generated history, and the paged query over it.

The history is generated once from the seed so that a fresh fake already has weeks of evening
and midday sessions for ``evopt history fetch`` and the simulator; the same sessions also feed
the ``evse`` series of lifetime energy, so the two endpoints agree with each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from optimizer.fakecloud.curves import noise


@dataclass
class PastSession:
    """One finished charging session as session history reports it."""

    sn: str
    start: float
    end: float
    energy_kwh: float
    active_s: float
    manual_overridden: bool = False
    cost_per_kwh: float = 0.25

    @property
    def session_id(self) -> int:
        return int(self.start)

    def local_date(self, tz: ZoneInfo) -> date:
        return datetime.fromtimestamp(self.start, tz).date()


def _at(day: date, hours: float, tz: ZoneInfo) -> float:
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    return (midnight + timedelta(hours=hours)).timestamp()


def generate_history(
    sn: str,
    *,
    watts: float,
    tz: ZoneInfo,
    history_start: float,
    before: float,
    seed: int,
) -> list[PastSession]:
    """Sessions between ``history_start`` and ``before``, oldest first.

    About half the evenings the car is plugged in after work and charges at full power until
    it is full, then unplugged the next morning; on some days it charges slowly at midday on
    solar instead.
    """
    sessions: list[PastSession] = []
    day = datetime.fromtimestamp(history_start, tz).date()
    last_day = datetime.fromtimestamp(before, tz).date()
    while day <= last_day:
        key = day.toordinal()
        pick = noise(seed, 20, key)
        if pick < 0.55:
            start = _at(day, 17.25 + 2.25 * noise(seed, 21, key), tz)
            end = _at(day + timedelta(days=1), 6.75 + 1.75 * noise(seed, 22, key), tz)
            energy = 4.0 + 24.0 * noise(seed, 23, key)
            power = watts
        elif pick < 0.75:
            start = _at(day, 10.0 + 1.5 * noise(seed, 24, key), tz)
            end = _at(day, 15.0 + 1.5 * noise(seed, 25, key), tz)
            energy = 3.0 + 7.0 * noise(seed, 26, key)
            power = min(watts, 3000.0 + 1500.0 * noise(seed, 27, key))
        else:
            day += timedelta(days=1)
            continue
        active = energy * 1000.0 / power * 3600.0
        if active > end - start - 60:
            active = end - start - 60
            energy = active * power / 3600.0 / 1000.0
        if start >= history_start and end < before:
            sessions.append(
                PastSession(
                    sn=sn,
                    start=start,
                    end=end,
                    energy_kwh=round(energy, 2),
                    active_s=round(active),
                    manual_overridden=noise(seed, 28, key) < 0.3,
                )
            )
        day += timedelta(days=1)
    return sessions


def query_sessions(
    sessions: list[PastSession],
    *,
    tz: ZoneInfo,
    start_date: date | None,
    end_date: date | None,
    offset: int,
    limit: int,
) -> tuple[list[PastSession], bool]:
    """One page of sessions whose local start date is in [start_date, end_date], newest first.

    Returns the page and ``hasMore``.
    """
    matching = [
        s
        for s in sessions
        if (start_date is None or s.local_date(tz) >= start_date)
        and (end_date is None or s.local_date(tz) <= end_date)
    ]
    matching.sort(key=lambda s: s.start, reverse=True)
    page = matching[offset : offset + limit]
    return page, offset + limit < len(matching)
