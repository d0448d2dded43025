"""Replay one-minute power history through the engine, with each surplus source's real lag.

The question this answers is what a fresh surplus buys on a user's own days: the same minutes
are replayed twice through the same ``evaluate``, once seeing what a local gateway would give
(``gateway``: the last minute's power, seconds old) and once what the cloud gives
(``lifetime_energy``: the last complete 15-minute bucket, 7.5 to 30 minutes old when used).
The car's real draw follows the commands (the simulated charger), and the solar it took is
counted against each *minute's* real surplus, never the lagged one the engine saw.

Choices (they shape the figures; docs/surplus.md gives them):

* The engine ticks every ``tick`` minutes (:data:`DEFAULT_TICK`), the same for both sources,
  at the start of a minute. ``gateway`` sees the minute just ended (age 30 s, its midpoint);
  ``lifetime_energy`` sees the last bucket that ended before now (as ``observe`` does), its
  figures the bucket's averages of the same minutes, the simulated car included.
* Energy moves per minute: the charger draws its level (MANUAL) or the minute's own surplus
  (GREEN/SMART, as the charger's own automation does); a MANUAL level change restarts the
  session and costs ``restart_s`` of charging; the car stops taking energy at what it took in
  reality (the session's ``energy_kwh``).
* A minute with no PV or house reading is a gap: the engine sees no fresh value (the gateway
  source then reports no surplus), and the gap's minutes count in no figure; a bucket with any
  gap minute is a missing bucket for the cloud source.
* Sessions come from the history: plug-in windows (from the recorded ``plugged`` column, or
  the session history for the sample).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal
from zoneinfo import ZoneInfo

from optimizer.config import Config
from optimizer.decisions.minutes import MinuteRow, minute_of
from optimizer.engine.decision import Decision, Memory
from optimizer.engine.rules import PolicyBase
from optimizer.engine.snapshot import Snapshot, Sun, Surplus, TariffNow
from optimizer.limits import Limits
from optimizer.observe.surplus import estimate_surplus
from optimizer.simulate.idle import Idle
from optimizer.simulate.replay import (
    _apply,
    _Charger,
    _seen_bucket,
    _sun,
    _Tariff,
    _view,
    engine_settings,
)
from optimizer.simulate.series import (
    BUCKET,
    UNMET_TOLERANCE_KWH,
    Session,
    SiteSeries,
    _prices,
)
from optimizer.tariffs import Tariffs

__all__ = [
    "DEFAULT_TICK",
    "GATEWAY_AGE_S",
    "SOURCES",
    "MinuteFigures",
    "MinuteSeries",
    "Source",
    "replay_minutes",
    "series_from_rows",
]

Source = Literal["gateway", "lifetime_energy"]
SOURCES: tuple[Source, ...] = ("gateway", "lifetime_energy")
MINUTE = timedelta(minutes=1)
PER_BUCKET = 15
DEFAULT_TICK = 1
"""Minutes between engine evaluations: every minute (issue 14), the closest to the service,
which decides every poll (30 s). Settled ticks, idle or plugged in, reuse an evaluation
(optimizer/simulate/idle.py), so deciding every minute replays about 13,700-13,900 minutes
per CPU second on June and on the year (docs/performance.md; ``make bench``'s target is
10,000). Both sources get the same cadence, the energy and the surplus it met are counted
minute by minute, and a policy's delays round up to the tick. `evopt simulate --tick 5`
decides every 5 minutes (about 40,000 minutes per CPU second).
"""
GATEWAY_AGE_S = 30.0
"""The age of what the gateway source shows at a tick: the midpoint of the minute just ended
(a real gateway's reading is seconds old; a minute's mean is the finest this history has)."""


@dataclass(frozen=True)
class MinuteSeries:
    """One site's power per minute from ``start`` (UTC, on a quarter-hour), and its sessions.

    ``pv_w`` and ``house_w`` (the house's own load, the chargers' draw excluded) are 0.0 where
    ``missing`` is set: a gap is flagged, never taken for a quiet minute.
    """

    start: datetime
    pv_w: tuple[float, ...]
    house_w: tuple[float, ...]
    missing: tuple[bool, ...]
    sessions: tuple[Session, ...]
    timezone: str

    def __post_init__(self) -> None:
        if not len(self.pv_w) == len(self.house_w) == len(self.missing):
            raise ValueError("pv_w, house_w and missing must have one value per minute")
        if self.start.tzinfo is None:
            raise ValueError("the series needs a timezone-aware start")
        if self.start.minute % PER_BUCKET or self.start.second or self.start.microsecond:
            raise ValueError("a minute series starts on a quarter-hour (pad it with gaps)")

    def __len__(self) -> int:
        return len(self.pv_w)

    @property
    def end(self) -> datetime:
        return self.start + len(self) * MINUTE

    def missing_buckets(self) -> int:
        """Quarter-hours with at least one minute without a reading."""
        return sum(
            any(self.missing[index : index + PER_BUCKET])
            for index in range(0, len(self), PER_BUCKET)
        )

    def buckets(self, tariffs: Tariffs) -> SiteSeries:
        """The same history as the cloud reports it: 15-minute energy, a gap making the whole
        bucket missing (the cloud's bucket would be null or partial)."""
        count = math.ceil(len(self) / PER_BUCKET)
        pv: list[float] = []
        house: list[float] = []
        missing: list[bool] = []
        for index in range(count):
            cut = slice(index * PER_BUCKET, (index + 1) * PER_BUCKET)
            gap = len(self.missing[cut]) < PER_BUCKET or any(self.missing[cut])
            missing.append(gap)
            pv.append(0.0 if gap else sum(self.pv_w[cut]) / 60_000)
            house.append(0.0 if gap else sum(self.house_w[cut]) / 60_000)
        starts = tuple(self.start + index * BUCKET for index in range(count))
        return SiteSeries(
            starts=starts,
            pv_kwh=tuple(pv),
            house_kwh=tuple(house),
            missing=tuple(missing),
            import_price=_prices(tariffs, starts, ZoneInfo(self.timezone)),
            export_price=tariffs.export_price,
            timezone=self.timezone,
            sessions=self.sessions,
        )


@dataclass(frozen=True)
class MinuteFigures:
    """What one source's replay gave the car, counted against each minute's real surplus."""

    source: Source
    minutes: int
    missing_minutes: int
    ev_energy_kwh: float
    ev_solar_kwh: float
    ev_grid_kwh: float
    unmet_kwh: float
    commands: int
    sessions: int
    decisions: int

    @property
    def solar_share(self) -> float:
        return self.ev_solar_kwh / self.ev_energy_kwh if self.ev_energy_kwh > 0 else 0.0

    @property
    def commands_per_session(self) -> float | None:
        return self.commands / self.sessions if self.sessions else None

    def to_json(self) -> dict[str, Any]:
        per = self.commands_per_session
        return {
            "source": self.source,
            "minutes": self.minutes,
            "missing_minutes": self.missing_minutes,
            "ev_energy_kwh": round(self.ev_energy_kwh, 3),
            "ev_solar_kwh": round(self.ev_solar_kwh, 3),
            "ev_grid_kwh": round(self.ev_grid_kwh, 3),
            "solar_share": round(self.solar_share, 4),
            "unmet_kwh": round(self.unmet_kwh, 3),
            "commands": self.commands,
            "sessions": self.sessions,
            "commands_per_session": None if per is None else round(per, 2),
            "decisions": self.decisions,
        }


@dataclass(frozen=True)
class MinuteReplay:
    figures: MinuteFigures
    ev_wh: tuple[float, ...]  # what the car took in each minute


def _plugged_minutes(series: MinuteSeries) -> tuple[list[int], list[float]]:
    """Per minute: the session covering it (-1: none) and the share of the minute inside it."""
    number = [-1] * len(series)
    share = [0.0] * len(series)
    for index, session in enumerate(series.sessions):
        first = max(0, math.floor((session.start - series.start) / MINUTE))
        last = min(len(series), math.ceil((session.end - series.start) / MINUTE))
        for minute in range(first, last):
            begin = series.start + minute * MINUTE
            inside = min(begin + MINUTE, session.end) - max(begin, session.start)
            part = min(1.0, max(0.0, inside / MINUTE))
            if part > share[minute]:
                number[minute], share[minute] = index, part
    return number, share


def series_from_rows(
    rows: Iterable[MinuteRow],
    *,
    timezone: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> MinuteSeries:
    """Recorded (or exported) one-minute rows of one site as a replayable series.

    Minutes without a row, or without PV or house load, are gaps. Plug-in windows are the runs
    of minutes with a car plugged in (``plugged`` > 0; a NULL, a status outage, continues the
    minute before); each session accepts what the chargers really drew in it.
    """
    by_minute = {minute_of(row.minute): row for row in rows}
    if not by_minute and (start is None or end is None):
        raise ValueError("no one-minute history in the chosen period")
    first = minute_of(start) if start is not None else min(by_minute)
    last = minute_of(end) if end is not None else max(by_minute) + MINUTE
    first -= timedelta(minutes=first.minute % PER_BUCKET)  # buckets start on a quarter-hour
    count = max(0, round((last - first) / MINUTE))
    pv: list[float] = []
    house: list[float] = []
    missing: list[bool] = []
    sessions: list[Session] = []
    opened: datetime | None = None
    taken_wh = 0.0
    plugged = False
    for minute in range(count):
        at = first + minute * MINUTE
        row = by_minute.get(at)
        gap = row is None or row.pv_w is None or row.house_w is None
        missing.append(gap)
        pv.append(0.0 if gap or row is None else float(row.pv_w or 0))
        house.append(0.0 if gap or row is None else float(row.house_w or 0))
        if row is not None and row.plugged is not None:
            plugged = row.plugged > 0
        if plugged and opened is None:
            opened, taken_wh = at, 0.0
        elif not plugged and opened is not None:
            sessions.append(Session(opened, at, taken_wh / 1000))
            opened = None
        if plugged and row is not None and row.evse_w is not None:
            taken_wh += row.evse_w / 60
    if opened is not None:
        sessions.append(Session(opened, first + count * MINUTE, taken_wh / 1000))
    return MinuteSeries(
        start=first,
        pv_w=tuple(pv),
        house_w=tuple(house),
        missing=tuple(missing),
        sessions=tuple(sessions),
        timezone=timezone,
    )


class _Seen:
    """What each source shows the engine at a tick (the lag models), with per-bucket caches."""

    def __init__(self, series: MinuteSeries, buckets: SiteSeries, config: Config) -> None:
        self.series = series
        self.buckets = buckets
        self.config = config
        self.tariff = _Tariff(config.tariffs, buckets)
        self._tariffs: dict[int, TariffNow] = {}
        self._suns: dict[int, Sun | None] = {}

    def tariff_now(self, bucket: int) -> TariffNow:
        found = self._tariffs.get(bucket)
        if found is None:
            self._tariffs.clear()  # one bucket at a time: the replay walks forward
            found = self._tariffs[bucket] = self.tariff.now(bucket)
        return found

    def sun(self, bucket: int) -> Sun | None:
        """The sun at the bucket's start: it moves under 4 degrees in 15 minutes."""
        if bucket not in self._suns:
            self._suns.clear()
            self._suns[bucket] = _sun(
                self.config, self.buckets.starts[bucket], self.series.timezone
            )
        return self._suns[bucket]

    def gateway(self, minute: int, now: datetime, ev_wh: Sequence[float]) -> Surplus:
        last = minute - 1
        if last < 0 or self.series.missing[last]:
            return Surplus(None, "gateway", wording="gateway: no reading of the last minute")
        pv, house = self.series.pv_w[last], self.series.house_w[last]
        return Surplus(
            pv - house,
            "gateway",
            pv_w=pv,
            house_w=house,
            evse_w=ev_wh[last] * 60,
            measured_at=now - timedelta(seconds=GATEWAY_AGE_S),
            age_s=GATEWAY_AGE_S,
            wording=partial(_gateway_words, pv, house),
        )

    def cloud(self, bucket: int, now: datetime, ev_kwh: Sequence[float], draw_w: float) -> Surplus:
        seen = _seen_bucket(self.buckets, bucket, 1, ev_kwh, None) if bucket >= 1 else None
        return estimate_surplus(
            seen,
            now=now,
            charger_draw_w=draw_w,
            latest=None,
            config=self.config.surplus,
            sun_now=None,
            sun_mid=None,
            timezone=self.series.timezone,
        )


def _gateway_words(pv: float, house: float) -> str:
    """A replayed gateway reading's method, written only when read (a replay reads none)."""
    return f"gateway (replayed): PV {pv / 1000:.1f} kW - house {house / 1000:.1f} kW"


def replay_minutes(
    series: MinuteSeries,
    policies: Sequence[PolicyBase],
    *,
    source: Source,
    config: Config,
    limits: Limits,
    voltage_v: float,
    tick: int = DEFAULT_TICK,
    restart_s: float = 30,
    charger_sn: str = "SIM0001",
    site_id: int | None = None,
    skip_idle: bool = True,
    log: list[tuple[int, Decision]] | None = None,
) -> MinuteReplay:
    """Run the policies over the minutes, the engine seeing the surplus as ``source`` gives it.

    ``tick``: minutes between engine evaluations (1: every minute). ``skip_idle``: while no
    car is plugged in, reuse an evaluation that only held and left the memory as it was for
    the following ticks whose snapshot is in the same class (optimizer/simulate/idle.py); False
    evaluates every tick (the identity test compares the two). ``log`` gets each decision
    with its minute.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; one of {', '.join(SOURCES)}")
    if tick < 1:
        raise ValueError("tick must be at least one minute")
    count = len(series)
    buckets = series.buckets(config.tariffs)
    seen = _Seen(series, buckets, config)
    # Without a log a decision is counted and applied, never read: its words are not built.
    settings = replace(engine_settings(config), words=log is not None)
    memory = Memory()
    charger = _Charger()
    number, share = _plugged_minutes(series)
    ev_wh = [0.0] * count
    ev_kwh_bucket = [0.0] * len(buckets.starts)
    commands = decisions = 0
    wh_per_amp_minute = voltage_v / 60
    restart_part = max(0.0, 1 - restart_s / 60)
    idle = Idle(policies, settings, enabled=skip_idle)
    for minute in range(count):
        bucket = minute // PER_BUCKET
        session_number = number[minute]
        session = series.sessions[session_number] if session_number >= 0 else None
        charger.follow(session_number)
        restarted = False
        if minute % tick == 0:
            now = series.start + minute * MINUTE
            view = _view(
                charger, plugged=session is not None, limits=limits, voltage_v=voltage_v,
                sn=charger_sn,
            )  # fmt: skip
            if source == "gateway":
                surplus = seen.gateway(minute, now, ev_wh)
            else:
                surplus = seen.cloud(bucket, now, ev_kwh_bucket, view.draw_w)
            snapshot = Snapshot(
                now=now,
                timezone=series.timezone,
                chargers=(view,),
                surplus=surplus,
                tariff=seen.tariff_now(bucket),
                sun=seen.sun(bucket),
                site_id=site_id,
            )
            decided, memory = idle.decide(
                snapshot, view, memory, period=bucket, plugged=session is not None
            )
            for decision in decided:
                decisions += 1
                if log is not None:
                    log.append((minute, decision))
                sent, restarted_now = _apply(decision, charger, limits, session is not None)
                restarted = restarted or restarted_now
                commands += sent
        if session is None:
            continue
        level = _level(charger, series, minute, limits, voltage_v)
        if level is None:
            continue
        part = share[minute] * (restart_part if restarted else 1.0)
        need_wh = max(0.0, session.energy_kwh - charger.delivered) * 1000
        wh = min(need_wh, level * wh_per_amp_minute * part)
        if wh > 0:
            charger.take(wh / 1000)
            ev_wh[minute] = wh
            ev_kwh_bucket[bucket] += wh / 1000
    return MinuteReplay(
        figures=minute_figures(
            series, ev_wh, source=source, commands=commands, decisions=decisions
        ),
        ev_wh=tuple(ev_wh),
    )


def _level(
    charger: _Charger, series: MinuteSeries, minute: int, limits: Limits, voltage_v: float
) -> float | None:
    """The amps the charger draws in this minute: its level (MANUAL), or in GREEN/SMART the
    minute's own surplus, as the charger's automation follows it; None: nothing."""
    if charger.mode.takes_no_amps:
        if series.missing[minute]:
            return None
        amps = (series.pv_w[minute] - series.house_w[minute]) / voltage_v
        return float(limits.down(amps)) if amps >= limits.low else None
    if charger.on and charger.amps:
        return float(charger.amps)
    return None


def minute_figures(
    series: MinuteSeries,
    ev_wh: Sequence[float],
    *,
    source: Source,
    commands: int,
    decisions: int,
) -> MinuteFigures:
    """Solar and grid into the car, minute by minute, against each minute's real surplus."""
    solar = grid = total = 0.0
    for minute, wh in enumerate(ev_wh):
        if not wh:
            continue
        total += wh
        if series.missing[minute]:
            continue  # a gap: what it was made of is not known
        surplus_wh = max(0.0, series.pv_w[minute] - series.house_w[minute]) / 60
        from_sun = min(wh, surplus_wh)
        solar += from_sun
        grid += wh - from_sun
    unmet = 0.0
    sessions = 0
    for session in series.sessions:
        first = max(0, math.floor((session.start - series.start) / MINUTE))
        last = min(len(series), math.ceil((session.end - series.start) / MINUTE))
        if last <= first:
            continue
        sessions += 1
        short = max(0.0, session.energy_kwh - sum(ev_wh[first:last]) / 1000)
        unmet += short if short >= UNMET_TOLERANCE_KWH else 0.0
    return MinuteFigures(
        source=source,
        minutes=len(series),
        missing_minutes=sum(series.missing),
        ev_energy_kwh=total / 1000,
        ev_solar_kwh=solar / 1000,
        ev_grid_kwh=grid / 1000,
        unmet_kwh=unmet,
        commands=commands,
        sessions=sessions,
        decisions=decisions,
    )
