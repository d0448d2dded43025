"""Session energy the engine can trust: every ``e_c`` reading checked against physics.

The status's ``e_c`` is the only energy figure a controller gets per session, and it lies in
three ways (enlighten-2026.md section 1): its unit depends on the reply's shape (and the old
">200 is Wh" rule reads the first 200 Wh of a session as up to 200 kWh), single readings glitch
(spikes, unit flips, values that go down), and after unplugging it keeps the last session's
figure. One such reading must never steer the car: a plan that stops on "energy reached" would
stop on a spike.

So each reading goes through :func:`check_reading`, a pure step over a small per-charger
:class:`Track`. A reading is plausible when it stays within what the charger could have
delivered: ``P_max x t x 1.1 + 0.05 kWh``, with ``t`` from the charger's own report time
(``lst_rpt_at``), never the local clock, since the status can be one reporting interval old.
An implausible reading is ignored (the last good value stays), reported once per session, and
never latched: the next plausible reading is taken again. What the engine is handed can
therefore never rise by more than the charger could deliver between two reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from optimizer.enlighten.models import ChargerSession, ChargerStatus, ChargerSummary, EnergyUnit

__all__ = [
    "MARGIN",
    "SINGLE_PHASE_CAP_W",
    "SLACK_KWH",
    "Reading",
    "Track",
    "Verdict",
    "check_charger",
    "check_reading",
    "energy_bound_kwh",
    "max_power_w",
    "reading_of",
    "summary_power_w",
]

SINGLE_PHASE_CAP_W = 80 * 240.0  # the largest single-phase unit: 80 A at 240 V (19.2 kW)
# Without a summary the charger is unknown: assume the largest common one (3 x 32 A x 230 V),
# so a real reading is never refused for want of data; the bound is still finite.
UNKNOWN_POWER_W = 3 * 32 * 230.0
DEFAULT_VOLTAGE = 230.0
LINE_TO_NEUTRAL_MAX_V = 300.0  # above this a three-phase voltage is line-to-line (400 V)
MARGIN = 1.1  # the reference's suggested margin on P_max x t
SLACK_KWH = 0.05  # rounding and one late report's worth at the start of a session
# A value this much below the last one of the plug-in is a new (reset) segment, not the same
# counter going on: the engine's own "new session" rule uses the same step.
RESET_DROP_KWH = 0.01
# How old a status's figures can be (summary ``reportingInterval``): the charger reports about
# every 5 minutes, so a reading without its own report time may be that much older than the read.
REPORT_INTERVAL = timedelta(seconds=300)


def max_power_w(
    *,
    voltage_v: float | None,
    max_amps: float | None,
    phases: int | None,
) -> float:
    """``P_max = V x A_max x k``: k is 3 only for three phases given line-to-neutral.

    Single-phase units are capped at 19.2 kW. This is an upper bound, never an estimate: with
    the phase count unknown the charger may have three, and with no current known the charger
    is unknown; the bound is then generous rather than wrong (a real reading is never refused).
    """
    if not max_amps or max_amps <= 0 or not math.isfinite(max_amps):
        return UNKNOWN_POWER_W
    volts = voltage_v if voltage_v and math.isfinite(voltage_v) and voltage_v > 0 else None
    volts = volts or DEFAULT_VOLTAGE
    if phases is None or phases >= 3:
        k = 3.0 if volts <= LINE_TO_NEUTRAL_MAX_V else math.sqrt(3.0)
        return volts * max_amps * k
    return min(volts * max_amps, SINGLE_PHASE_CAP_W)


def summary_power_w(summary: ChargerSummary | None, voltage_v: float | None = None) -> float:
    """P_max of a charger from its summary (``voltage_v``, the config's, wins when given)."""
    if summary is None:
        return UNKNOWN_POWER_W
    return max_power_w(
        voltage_v=voltage_v or summary.operating_voltage,
        max_amps=summary.max_amps or summary.max_current,
        phases=summary.phase_count,
    )


def energy_bound_kwh(p_max_w: float, seconds: float) -> float:
    """The most energy a charger of ``p_max_w`` can have delivered in ``seconds``."""
    return p_max_w / 1000.0 * max(0.0, seconds) / 3600.0 * MARGIN + SLACK_KWH


@dataclass(frozen=True)
class Reading:
    """One status's session figures for one charger, as the parser left them."""

    raw: float | None  # e_c exactly as sent
    unit: EnergyUnit | None  # the unit the parser decided
    by_shape: bool  # the unit came from the reply's shape (not from the ">200" rule)
    started_at: datetime | None  # strt_chrg: a new one starts a new segment
    plugged_in_at: datetime | None  # plg_in_at: a new one starts a new session
    plugged_out_at: datetime | None  # plg_out_at: set once the car is gone
    reported_at: datetime | None  # lst_rpt_at: when the charger reported these figures
    observed_at: datetime  # when the status was read (a fallback for a missing lst_rpt_at)


def reading_of(status: ChargerStatus, now: datetime) -> Reading:
    session: ChargerSession = status.session
    return Reading(
        raw=session.energy_raw,
        unit=session.energy_unit,
        by_shape=session.energy_unit_by == "shape",
        started_at=session.started_at,
        plugged_in_at=session.plugged_in_at,
        plugged_out_at=session.plugged_out_at,
        reported_at=status.last_reported_at,
        observed_at=now,
    )


@dataclass(frozen=True)
class Track:
    """What one charger's earlier readings established (kept by the service between ticks).

    ``kwh``/``at`` are what was last handed to the engine and the report time it stood for;
    ``handed_at`` when (the poll) it was handed on; ``best``/``best_at`` the highest plausible
    reading of the segment. They differ while the figure handed on catches up, at no more than
    the charger's own pace between two polls: after ignored readings, and after each report,
    which carries up to a reporting interval (300 s) of energy at once.
    """

    session: datetime | None = None  # plg_in_at (else strt_chrg) of the session tracked
    segment: datetime | None = None  # strt_chrg of the segment tracked
    kwh: float | None = None  # the last value handed on
    at: datetime | None = None  # the report time of the last reading (never goes back)
    handed_at: datetime | None = None  # the poll at which ``kwh`` was handed on
    best: float | None = None  # the highest plausible reading of the segment
    best_at: datetime | None = None  # its report time
    unit: EnergyUnit | None = None  # fixed once per session when the shape cannot tell
    flagged: bool = False  # an implausible reading of this session was already reported
    ended: bool = False  # the car was unplugged: the figure is the finished session's


@dataclass(frozen=True)
class Verdict:
    """What to hand the engine for this reading, the track to keep, and any problem."""

    kwh: float | None
    track: Track
    problem: str | None = None  # why the reading was ignored (None: taken, or nothing to take)
    report: bool = False  # the problem is the first of this session: log it (once)
    unit: EnergyUnit | None = None  # the unit the reading was taken in


@dataclass(frozen=True)
class _Window:
    """The readings physics allows: a reset counter up to ``reset_max``, or the counter
    carried on between ``carry_min`` and ``carry_max`` (kWh)."""

    reset_max: float
    carry_min: float = math.inf
    carry_max: float = -math.inf

    def fits(self, kwh: float) -> bool:
        return kwh <= self.reset_max or self.carry_min <= kwh <= self.carry_max


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _time_of(reading: Reading, track: Track) -> tuple[datetime, bool]:
    """The charger's report time, never later than the read, never before an earlier one;
    and whether it is the report's own (else it is the time of the read).

    A report time before the segment's own start cannot be the report that carries its
    energy (a stale or skewed field): the time of the read is the honest bound then.
    """
    reported = reading.reported_at
    start = reading.started_at or reading.plugged_in_at
    at, trusted = reading.observed_at, False
    if reported is not None and reported <= at and (start is None or reported >= start):
        at, trusted = reported, True
    return (at, trusted) if track.at is None or at > track.at else (track.at, trusted)


def _same_session(track: Track, reading: Reading, session: datetime | None) -> bool:
    """The flat shape has no ``plg_in_at``: its ``strt_chrg`` then names the session."""
    if track.session is None:
        return False
    if session == track.session:
        return True
    return reading.plugged_in_at is None and reading.started_at == track.segment


def check_reading(track: Track, reading: Reading, p_max_w: float) -> Verdict:
    """Take ``reading`` if physics allows it, else keep the last good value (see module doc)."""
    at, trusted = _time_of(reading, track)
    session = reading.plugged_in_at or reading.started_at
    if not _same_session(track, reading, session):
        track = Track(session=session, kwh=track.kwh, at=track.at, handed_at=track.handed_at)
    raw = _finite(reading.raw)
    if raw is None or raw < 0:
        problem = None if reading.raw is None else f"e_c {reading.raw!r} is not an energy"
        return _keep(track, at, reading.observed_at, p_max_w, problem)
    new_segment = track.best is None or reading.started_at != track.segment
    ended = reading.plugged_out_at is not None and (
        reading.plugged_in_at is None or reading.plugged_out_at >= reading.plugged_in_at
    )
    if ended and not new_segment:
        # After unplugging the figure is the finished session's: nothing new can come of it.
        return _keep(replace(track, ended=True), at, reading.observed_at, p_max_w, None)
    window = _window(track, reading, at, p_max_w, new_segment)
    unit, kwh = _read(raw, reading, track.unit, window)
    if kwh is None:
        return _keep(
            track,
            at,
            reading.observed_at,
            p_max_w,
            f"e_c {raw:g} is more than the charger can deliver",
        )
    if not new_segment and track.best is not None and kwh < track.best:
        fell = f"e_c fell from {track.best:.3f} to {kwh:.3f} kWh within one session"
        return _keep(track, at, reading.observed_at, p_max_w, fell)
    fixed = track.unit or (unit if not reading.by_shape and _unambiguous(raw, window) else None)
    taken = replace(
        track,
        segment=reading.started_at,
        best=kwh,
        # Without the report's own time the value may be a reporting interval older than the
        # read: later readings are measured from that earlier moment, so none is refused for
        # energy the charger had already delivered.
        best_at=at if trusted else at - REPORT_INTERVAL,
        unit=fixed,
        ended=ended,
    )
    return _keep(taken, at, reading.observed_at, p_max_w, None, unit=unit)


def _keep(
    track: Track,
    at: datetime,
    observed: datetime,
    p_max_w: float,
    problem: str | None,
    *,
    unit: EnergyUnit | None = None,
) -> Verdict:
    """Hand on the segment's best value at the charger's pace; report a problem once."""
    kwh = _paced(track, observed, p_max_w)
    report = problem is not None and not track.flagged
    handed = observed if track.handed_at is None else max(track.handed_at, observed)
    kept = replace(
        track, kwh=kwh, at=at, handed_at=handed, flagged=track.flagged or problem is not None
    )
    return Verdict(kwh, kept, problem=problem, report=report, unit=unit)


def _paced(track: Track, observed: datetime, p_max_w: float) -> float | None:
    """The best value, but never more above the last one handed on than could be delivered
    since that poll (a reset counter counts from zero), so no single poll moves the engine
    further than the charger could have in the time between the two polls."""
    best, last = track.best, track.kwh
    if best is None:
        return last
    if last is None or track.handed_at is None:
        return best
    seconds = max(0.0, (observed - track.handed_at).total_seconds())
    step = energy_bound_kwh(p_max_w, seconds)
    base = last if best >= last - RESET_DROP_KWH else 0.0
    return min(best, base + step)


def _window(
    track: Track, reading: Reading, at: datetime, p_max_w: float, new_segment: bool
) -> _Window:
    """What a reading may be, in kWh.

    Never more than could be delivered since the segment began (``strt_chrg``, else the
    plug-in). Within a segment, also no more than could be delivered since the last good
    reading; a new segment may reset the counter or carry it on from the last good value.
    """
    start = reading.started_at or reading.plugged_in_at
    from_start = math.inf
    if start is not None:
        from_start = energy_bound_kwh(p_max_w, (at - start).total_seconds())
    if track.best is None or track.best_at is None:
        return _Window(from_start)
    step = energy_bound_kwh(p_max_w, (at - track.best_at).total_seconds())
    if not new_segment:
        return _Window(min(from_start, track.best + step))
    return _Window(from_start, track.best - RESET_DROP_KWH, track.best + step)


def _read(
    raw: float, reading: Reading, fixed: EnergyUnit | None, window: _Window
) -> tuple[EnergyUnit | None, float | None]:
    """The reading in kWh, in the unit the shape (or the session) says; None if implausible.

    "If reading a value as kWh breaks the energy bound, it is Wh": a kWh reading that is too
    big is taken as Wh when that fits; a Wh shape is never read as kWh (its small values are
    the start of a session, exactly what the old rule got wrong).
    """
    unit = reading.unit if reading.by_shape else (fixed or reading.unit)
    if unit == "Wh":
        return "Wh", (raw / 1000.0 if window.fits(raw / 1000.0) else None)
    if window.fits(raw):
        return "kWh", raw
    return ("Wh", raw / 1000.0) if window.fits(raw / 1000.0) else ("kWh", None)


def _unambiguous(raw: float, window: _Window) -> bool:
    """Only one reading of ``raw`` fits: the session's unit can be fixed by it."""
    return window.fits(raw) != window.fits(raw / 1000.0)


def check_charger(
    track: Track | None,
    status: ChargerStatus,
    summary: ChargerSummary | None,
    *,
    now: datetime,
    voltage_v: float | None = None,
) -> Verdict:
    """:func:`check_reading` for one charger of a status read at ``now``."""
    return check_reading(
        track or Track(), reading_of(status, now), summary_power_w(summary, voltage_v)
    )
