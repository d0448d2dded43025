"""The history a simulation replays: 15-minute site energy, plug-in windows and prices.

Everything the replay and the baselines need is precomputed here once, as flat tuples indexed
by bucket, so that a year (35,040 buckets) can be replayed many times cheaply. Missing source
buckets are carried as 0.0 *and* flagged in ``missing``: the figures skip them and the report
counts them, so a gap is never mistaken for a quiet, sunless quarter-hour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from optimizer.enlighten.errors import ParseError
from optimizer.enlighten.models import ChargingSession, LifetimeEnergy
from optimizer.tariffs import Tariffs

__all__ = [
    "BUCKET",
    "BUCKET_H",
    "UNMET_TOLERANCE_KWH",
    "Figures",
    "Session",
    "SiteSeries",
    "figures",
    "series_from_history",
]

BUCKET_H = 0.25
BUCKET = timedelta(hours=BUCKET_H)
UNMET_TOLERANCE_KWH = 0.05
"""Less than this left unmet is rounding (a bucket's partial share), not a car left short."""
OPEN_SESSION = timedelta(hours=12)
"""How long a session with no ``endTime`` is assumed to last (unless the next one starts)."""


@dataclass(frozen=True)
class Session:
    """One plug-in window; ``energy_kwh`` is what the car took in reality, i.e. what it would
    accept in the simulation (the car decides when it is full, not the policy)."""

    start: datetime
    end: datetime
    energy_kwh: float


@dataclass(frozen=True)
class SiteSeries:
    """15-minute buckets with UTC-aware, evenly spaced starts (elapsed time, DST-proof)."""

    starts: tuple[datetime, ...]
    pv_kwh: tuple[float, ...]
    house_kwh: tuple[float, ...]
    missing: tuple[bool, ...]
    import_price: tuple[float, ...]
    export_price: float
    timezone: str
    sessions: tuple[Session, ...]
    _plugged: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Precompute which session (index, -1 for none) covers each bucket: the replay asks on
        # every tick, and a scan over the sessions each time would make a year quadratic.
        plugged = [-1] * len(self.starts)
        best = [0.0] * len(self.starts)
        for number, session in enumerate(self.sessions):
            for index in self.window(session):
                share = self.fraction(index, session)
                if share > best[index]:
                    plugged[index], best[index] = number, share
        object.__setattr__(self, "_plugged", tuple(plugged))

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def end(self) -> datetime | None:
        """Where the period ends, after its last bucket (None: no buckets). Plans are held to
        it, exact and learned alike, and the report prints it."""
        return self.starts[-1] + BUCKET if self.starts else None

    def _index_of(self, when: datetime) -> float:
        """Bucket position of an instant (fractional), relative to the first bucket."""
        if not self.starts:
            return 0.0
        return (when - self.starts[0]) / BUCKET

    def plugged(self, index: int) -> Session | None:
        """The session covering bucket ``index`` (the larger share wins if two touch it)."""
        number = self._plugged[index]
        return self.sessions[number] if number >= 0 else None

    def session_index(self, index: int) -> int:
        """Position in ``sessions`` of the session covering bucket ``index``; -1 for none."""
        return self._plugged[index]

    def window(self, session: Session) -> range:
        """Bucket indices the session overlaps, clipped to the series; partial buckets count."""
        first = max(0, math.floor(self._index_of(session.start)))
        last = min(len(self.starts), math.ceil(self._index_of(session.end)))
        return range(first, max(first, last))

    def fraction(self, index: int, session: Session) -> float:
        """Share (0..1) of bucket ``index`` that lies inside the session window."""
        if not 0 <= index < len(self.starts):
            return 0.0
        begin = self.starts[index]
        overlap = min(begin + BUCKET, session.end) - max(begin, session.start)
        return min(1.0, max(0.0, overlap / BUCKET))

    def local(self, index: int) -> datetime:
        """Bucket start in the site's timezone (for per-day grouping and plots)."""
        return self.starts[index].astimezone(ZoneInfo(self.timezone))


@dataclass(frozen=True)
class Figures:
    """The outcome of one way of charging over some buckets."""

    ev_energy_kwh: float
    ev_solar_kwh: float
    solar_share: float
    unmet_kwh: float
    grid_import_kwh: float
    grid_export_kwh: float
    cost: float
    commands: int
    unmet_sessions: int = 0  # sessions that ended short of what the car took in reality
    ev_cost: float = 0.0  # what the charging added to the bill (cost minus cost without it)
    sessions: int = 0  # plug-in sessions the figures cover (those counted for unmet energy)

    @property
    def cost_per_kwh(self) -> float | None:
        """The charging's own cost per kWh delivered; None when nothing was delivered.

        Per kWh, because a run that delivers less costs less: the whole-site ``cost`` of two
        runs compares only when both delivered the same energy (neither left any unmet).
        """
        return self.ev_cost / self.ev_energy_kwh if self.ev_energy_kwh > 0 else None

    @property
    def commands_per_session(self) -> float | None:
        """Commands sent per plug-in session; None when no session is covered.

        Per session, because each MANUAL level change is a stop, a 30 s wait and a start the
        driver can hear and the cloud counts against the account: issue 15 bounds it at 4.
        """
        return self.commands / self.sessions if self.sessions else None

    @property
    def leaves_unmet(self) -> bool:
        return self.unmet_kwh >= UNMET_TOLERANCE_KWH

    def to_json(self) -> dict[str, float | int | None]:
        per_kwh = self.cost_per_kwh
        per_session = self.commands_per_session
        return {
            "ev_energy_kwh": round(self.ev_energy_kwh, 3),
            "ev_solar_kwh": round(self.ev_solar_kwh, 3),
            "solar_share": round(self.solar_share, 4),
            "unmet_kwh": round(self.unmet_kwh, 3),
            "grid_import_kwh": round(self.grid_import_kwh, 3),
            "grid_export_kwh": round(self.grid_export_kwh, 3),
            "cost": round(self.cost, 4),
            "commands": self.commands,
            "unmet_sessions": self.unmet_sessions,
            "ev_cost": round(self.ev_cost, 4),
            "cost_per_kwh": None if per_kwh is None else round(per_kwh, 4),
            "sessions": self.sessions,
            "commands_per_session": None if per_session is None else round(per_session, 3),
        }


def figures(
    series: SiteSeries,
    ev_kwh: Sequence[float],
    *,
    commands: int,
    indices: Sequence[int] | None = None,
    battery: tuple[Sequence[float], Sequence[float]] | None = None,
    sessions: Sequence[Session] | None = None,
) -> Figures:
    """Energy, solar share, unmet need, grid exchange and cost of an EV charging profile.

    Missing buckets are skipped in every energy sum (the caller counts them). Unmet energy is
    per session: what the car wanted minus what it got anywhere in its window (a car charged
    during a gap still got the energy); with ``indices``, only sessions ending in those
    buckets count, so per-day rows add up to the whole period. ``battery``: kWh into and out of
    a home battery per bucket; they change the grid exchange and cost, not the solar into the
    car (``pv - house`` is the surplus a policy can use, with or without a battery).
    ``sessions``: the only sessions that may count (default all), so a caller figuring many
    slices (the per-day report) need not look at every session for every slice.
    """
    if len(ev_kwh) != len(series.starts):
        raise ValueError(f"ev_kwh has {len(ev_kwh)} buckets, the series {len(series.starts)}")
    chosen: Sequence[int] = range(len(series.starts)) if indices is None else indices
    pv, house, missing, price = series.pv_kwh, series.house_kwh, series.missing, series.import_price
    ev_total = ev_solar = imported = exported = cost = ev_cost = 0.0
    export_price = series.export_price
    for i in chosen:
        if missing[i]:
            continue
        ev = ev_kwh[i]
        without = house[i] - pv[i]
        if battery is not None:
            without += battery[0][i] - battery[1][i]
        net = without + ev
        if net > 0:
            imported += net
            cost += net * price[i]
        else:
            exported -= net
        if ev:
            ev_cost += _bill(net, price[i], export_price) - _bill(without, price[i], export_price)
        ev_total += ev
        ev_solar += min(ev, max(pv[i] - house[i], 0.0))
    cost -= exported * series.export_price
    unmet = 0.0
    unmet_sessions = 0
    counted = 0
    selected = None if indices is None else set(indices)
    for session in series.sessions if sessions is None else sessions:
        window = series.window(session)
        if not window:
            continue
        if selected is not None and window[-1] not in selected:
            continue
        counted += 1
        delivered = sum(ev_kwh[i] for i in window)
        short = max(0.0, session.energy_kwh - delivered)
        unmet += short
        if short >= UNMET_TOLERANCE_KWH:
            unmet_sessions += 1
    return Figures(
        ev_energy_kwh=ev_total,
        ev_solar_kwh=ev_solar,
        solar_share=ev_solar / ev_total if ev_total > 0 else 0.0,
        unmet_kwh=unmet,
        grid_import_kwh=imported,
        grid_export_kwh=exported,
        cost=cost,
        commands=commands,
        unmet_sessions=unmet_sessions,
        ev_cost=ev_cost,
        sessions=counted,
    )


def _bill(net_kwh: float, import_price: float, export_price: float) -> float:
    """One bucket's grid bill: imports at the window's price, exports credited."""
    return net_kwh * import_price if net_kwh > 0 else net_kwh * export_price


def _sessions(
    raw: Sequence[ChargingSession], *, start: datetime, end: datetime
) -> tuple[Session, ...]:
    """Plug-in windows sorted, open ends closed, overlaps merged, clipped to the period."""
    ordered = sorted(raw, key=lambda s: s.started_at)
    windows: list[Session] = []
    for number, item in enumerate(ordered):
        begin = item.started_at.astimezone(UTC)
        finish = item.ended_at.astimezone(UTC) if item.ended_at else None
        if finish is None:
            finish = begin + OPEN_SESSION
            if number + 1 < len(ordered):
                finish = min(finish, ordered[number + 1].started_at.astimezone(UTC))
        if finish <= begin:
            continue
        energy = max(0.0, item.energy_kwh or 0.0)
        if windows and begin < windows[-1].end:
            last = windows[-1]
            windows[-1] = Session(last.start, max(last.end, finish), last.energy_kwh + energy)
        else:
            windows.append(Session(begin, finish, energy))
    return tuple(s for s in windows if s.end > start and s.start < end)


def _prices(tariffs: Tariffs, starts: Sequence[datetime], zone: ZoneInfo) -> tuple[float, ...]:
    """Import price per bucket; a window depends only on month, weekday and time of day, so
    the lookup is cached on that key (a year is then ~700 evaluations, not 35,040)."""
    cache: dict[tuple[int, int, int, int], float] = {}
    prices = []
    for at in starts:
        local = at.astimezone(zone)
        key = (local.month, local.isoweekday(), local.hour, local.minute)
        price = cache.get(key)
        if price is None:
            found = tariffs.window_at(local)[1]
            price = cache[key] = found if found is not None else 0.0
        prices.append(price)
    return tuple(prices)


def _value(values: tuple[float | None, ...], index: int) -> float | None:
    return values[index] if index < len(values) else None


def series_from_history(
    energy: LifetimeEnergy,
    sessions: Sequence[ChargingSession],
    *,
    tariffs: Tariffs,
    timezone: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> SiteSeries:
    """Build the replayable series from Enlighten's lifetime energy and session history.

    House load is ``consumption - evse`` so the simulated charging replaces the real one. A
    bucket is missing when production or consumption is null or absent, or when the ``evse``
    flow is reported but null there (subtracting an unknown would invent house load).
    """
    if energy.interval != BUCKET:
        raise ParseError("simulation needs 15-minute buckets")
    production = energy.values("production")
    consumption = energy.values("consumption")
    evse = energy.values("evse")
    if not production and not consumption:
        raise ParseError("lifetime energy has neither production nor consumption")
    zone = ZoneInfo(timezone)
    starts: list[datetime] = []
    pv: list[float] = []
    house: list[float] = []
    missing: list[bool] = []
    origin = energy.bucket_start(0).astimezone(UTC)
    for index in range(energy.bucket_count):
        at = origin + index * BUCKET
        if (start is not None and at < start) or (end is not None and at >= end):
            continue
        made, used = _value(production, index), _value(consumption, index)
        car = _value(evse, index) if evse else 0.0
        gap = made is None or used is None or car is None
        starts.append(at)
        missing.append(gap)
        pv.append(0.0 if gap or made is None else max(0.0, made) / 1000)
        load = 0.0 if gap or used is None or car is None else (used - car) / 1000
        house.append(max(0.0, load))
    period_start = starts[0] if starts else origin
    period_end = starts[-1] + BUCKET if starts else origin
    return SiteSeries(
        starts=tuple(starts),
        pv_kwh=tuple(pv),
        house_kwh=tuple(house),
        missing=tuple(missing),
        import_price=_prices(tariffs, starts, zone),
        export_price=tariffs.export_price,
        timezone=timezone,
        sessions=_sessions(sessions, start=period_start, end=period_end),
    )
