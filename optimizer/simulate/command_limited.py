"""The perfect-foresight optimum under a command budget: issue 15's ceiling for any policy.

Why: the optimum (:mod:`optimizer.simulate.baselines`) ignores commands and any level between
the minimum and the maximum; it sends 4.8 commands per session on the sample year, and issue
15's bar asks a policy for 0.95 of its solar with at most 4. This module answers whether that
bar can be reached at all: per session, the most solar into the car that still delivers the
session's energy by its unplug with at most ``k`` commands, for every ``k`` up to a cap, and
from those the best over the year with a budget of 4 commands per session on average
(:func:`pooled`).

The charger is modelled as the replay (:mod:`optimizer.simulate.replay`) models it:

* one decision per 15-minute bucket, at its start; the car is plugged in for
  ``series.fraction`` of the bucket and is off when it plugs in;
* the levels are the charger's (``limits.low`` to ``limits.high`` in granularity steps, the
  breaker included), each delivering ``amps * V * 0.25 h * fraction``;
* a command is a start (off to a level), a stop (a level to off) or a level change; a level
  change while charging restarts the session and loses ``restart_s`` of that bucket;
* the car stops drawing when it has its energy and the unplug ends the session, neither a
  command; in the bucket where it gets full it takes only what it still needs;
* solar is ``min(energy, max(pv - house, 0))`` per bucket, as ``figures`` counts it (none in
  a bucket without data).

It is a dynamic programme over (bucket, level or off, commands used, energy delivered) whose
value is the most solar so far: the future depends on nothing else, so the programme is exact
up to the energy's grid, :data:`UNIT_KWH`. At 240 V one amp for a whole bucket is 0.06 kWh,
a whole multiple; only the plugged share of a session's first and last buckets and a
restart's 0.058 kWh an amp round, each down (and the need up), so every schedule the
programme counts as meeting the need really meets it; its solar is then over-counted by at
most those roundings, in the bucket where the car gets full (a few hundredths of a kWh a
session). The energy is at most the session's need (a fuller car is full), so a session costs
its buckets times its need's units times the levels, in numpy.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from optimizer.simulate.baselines import optimal, surplus_kwh
from optimizer.simulate.series import BUCKET_H, Session, SiteSeries

if TYPE_CHECKING:
    from optimizer.limits import Limits

__all__ = [
    "UNIT_KWH",
    "Ceiling",
    "Forward",
    "Options",
    "Programme",
    "best_by_commands",
    "ceiling",
    "forward",
    "pooled",
    "programme",
    "schedule",
]

UNIT_KWH = 0.01
"""The energy's grid: one amp at 240 V for a whole bucket (0.06 kWh) is a whole multiple."""
_NONE = -np.inf


@dataclass(frozen=True)
class Programme:
    """One session's buckets as the programme sees them."""

    energy: tuple[tuple[float, ...], ...]
    """kWh per bucket per level (lowest first) for the plugged share of the bucket."""
    surplus: tuple[float, ...]
    """kWh of solar the car may take per bucket (0 without data)."""
    need: float
    """kWh to deliver: the session's energy, or all full power can give when it cannot."""
    restart_share: float
    """Share of a bucket left to charge after a level change restarts the session."""


def programme(
    series: SiteSeries,
    session: Session,
    limits: Limits,
    voltage_v: float,
    *,
    restart_s: float = 30,
) -> Programme:
    """The session's programme from the series (the same figures the replay charges by)."""
    levels = range(limits.low, limits.high + 1, limits.step) if limits.feasible else range(0)
    kwh_per_amp = voltage_v * BUCKET_H / 1000
    energy: list[tuple[float, ...]] = []
    surplus: list[float] = []
    for index in series.window(session):
        share = series.fraction(index, session)
        energy.append(tuple(amps * kwh_per_amp * share for amps in levels))
        surplus.append(surplus_kwh(series, index))
    most = sum(row[-1] for row in energy if row)
    return Programme(
        energy=tuple(energy),
        surplus=tuple(surplus),
        need=min(session.energy_kwh, most),
        restart_share=max(0.0, 1 - restart_s / (BUCKET_H * 3600)),
    )


SLACK_UNITS = 1e-3
"""Round-off (float32 energies) that must not take a whole unit off an energy on the grid."""


def _units(kwh: np.ndarray, unit: float = UNIT_KWH) -> np.ndarray:
    """An energy in whole units, rounded down: a schedule the programme finds to meet the
    need meets it really (the need is rounded up)."""
    return np.floor(kwh / unit + SLACK_UNITS).astype(np.int64)


def best_by_commands(prog: Programme, most: int) -> list[float]:
    """The most solar (kWh) that meets the need with at most ``k`` commands, for ``k`` in
    ``0..most``; ``-inf`` where no schedule with that many commands meets it."""
    found = forward(prog, most)
    if found is None:
        return [0.0] * (most + 1)
    best = np.maximum.accumulate(found.done)
    return [float(x) for x in best]


@dataclass(frozen=True)
class Options:
    """What a caller other than the ceiling changes in the programme (the live planner:
    :mod:`optimizer.planner.dp`). The defaults are the ceiling's."""

    unit: float = UNIT_KWH
    """The energy's grid (kWh): coarser is faster, its rounding costs a little energy."""
    start: int = 0
    """The state before the first bucket: 0 off, else the ``start``-th level charging."""
    restart: tuple[float, ...] = ()
    """Per bucket, the share kept after a level change (empty: ``prog.restart_share``)."""
    penalty: tuple[float, ...] = ()
    """Per bucket, what a grid kWh costs in solar kWh (a price's tie-break; empty: none)."""
    hedge: tuple[float, ...] = ()
    """Per bucket, what a grid kWh costs more while the sun still to come (``later``) could
    fill the rest of the car (empty: none): grid bought then may displace that sun."""
    later: tuple[float, ...] = ()
    """Per bucket, the kWh of sun the car could still take after it (with ``hedge``)."""
    trace: bool = False
    """Keep where each best state came from, so :func:`schedule` can give the levels."""


@dataclass
class Forward:
    """The programme's result: per commands count the best value of a schedule that fills the
    car (not accumulated over counts), and with ``trace`` the pointers to rebuild it."""

    done: np.ndarray
    need: int
    came: list[np.ndarray]
    """Per bucket: the level (0 off) each state after it came from."""
    steps: list[tuple[list[int], list[int]]]
    """Per bucket: units per level kept and after a restart."""
    filled: list[tuple[int, int, int, int] | None]
    """Per commands count: (bucket, level before, level in it, energy bin before) of the
    move that filled the car in the best schedule."""


def forward(prog: Programme, most: int, options: Options | None = None) -> Forward | None:
    """The dynamic programme over (bucket, level or off, commands used, energy delivered);
    None when the need is nothing.

    State: ``value[c, l, b]``, the most solar so far with ``c`` commands sent, the charger at
    level ``l`` (0 off, else the ``l``-th level) and ``b`` units delivered, the car not yet
    full. Each bucket, every state keeps its level (no command) or moves to another (one):
    from off a start, to off a stop, between levels a change that loses the restart's share.
    A move that reaches the need ends in ``done[c]`` with the solar of the part it took (less
    the grid's ``penalty`` per kWh, when given). Shared by the ceiling and the DP planner, so
    both count commands, restarts and a full car the same way.
    """
    opt = options or Options()
    unit = opt.unit
    # Rounded, the need stays within what full power delivers (a car that cannot be filled).
    top = sum(int(_units(np.asarray(row[-1:]), unit)[0]) for row in prog.energy if row)
    need = min(math.ceil(prog.need / unit - SLACK_UNITS), top)
    if need <= 0:
        return None
    width = len(prog.energy[0]) if prog.energy else 0
    counts = most + 1
    # Per bin of energy delivered, and past the last one a bin that stays unset: a move that
    # lands nowhere takes it (_Shift), so a gather needs no padding of its own.
    value = np.full((counts, width + 1, 2), _NONE, dtype=np.float32)
    value[0, opt.start, 0] = 0.0
    done = np.full(counts, _NONE)
    left = ((need - np.arange(need)) * unit).astype(np.float32)  # what the car still takes
    reach = 1  # states exist only below this bin: the energy full power can have given
    found = Forward(done, need, [], [], [None] * counts)
    for index, (kwh_row, sun) in enumerate(zip(prog.energy, prog.surplus, strict=True)):
        penalty = opt.penalty[index] if opt.penalty else 0.0
        share = opt.restart[index] if opt.restart else prog.restart_share
        kwh = np.asarray(kwh_row, dtype=np.float32)
        risk = _Risk(opt.hedge[index], opt.later[index]) if opt.hedge else _Risk()
        whole = _Energy.of(kwh, sun, left, penalty, unit, risk)
        moved = _Energy.of(whole.kwh * share, sun, left, penalty, unit, risk)
        was, reach = reach, min(need, reach + int(whole.units[-1]))
        new = np.full((counts, width + 1, reach + 1), _NONE, dtype=np.float32)
        new[:, 0, :was] = value[:, 0, :was]  # off stays off
        _bucket(found, index, old=value, new=new, whole=whole, moved=moved, trace=opt.trace)
        value = new
    return found


def _bucket(
    found: Forward,
    index: int,
    *,
    old: np.ndarray,
    new: np.ndarray,
    whole: _Energy,
    moved: _Energy,
    trace: bool,
) -> None:
    """One bucket of :func:`forward`, from the states before it (``old``) into ``new``, each
    with its unset bin past the last: the moves keep, start, change and stop in that order,
    each for every level at once (:class:`_Shift`). A later move takes a state only where it
    is strictly better, so a tie goes to the earlier move (and a filling move's to the lower
    level, then the lower bin). With ``trace``, per state the level it came from, and per
    commands count the move that filled the car."""
    was, reach, need = old.shape[2] - 1, new.shape[2] - 1, len(whole.left)
    came = np.zeros(new.shape, dtype=np.int16) if trace else None  # off stays off: from off
    on = old[:, 1:, :]
    keep = _Shift.of(whole.units, was, reach, need)
    # Keep the level: no command. The states at a level are all unset before it: it writes.
    new[:, 1:, :reach] = keep.landed(on) + whole.added(reach)
    if came is not None:
        came[:, 1:, :reach] = keep.origin
    _fill(found, index, 0, keep, keep.filling(on, whole), None, trace=trace)
    if old.shape[0] < 2:  # no command left to spend
        _traced(found, came, whole, moved)
        return
    # Start from off: one command, the level's whole energy.
    off = old[:-1, 0, :]
    _improve(new, came, keep.landed(off) + whole.added(reach), 0)
    starts = keep.filling(np.broadcast_to(off[:, None, :], on[:-1].shape), whole)
    _fill(found, index, 1, keep, starts, 0, trace=trace)
    # Change from another level: one command, a restart's loss.
    change = _Shift.of(moved.units, was, reach, need)
    other, where, stop, top = _best_other(on[:-1])
    froms = (where + 1).astype(np.int16)
    landed_from = change.landed(froms) if came is not None else 0  # untraced: never read
    _improve(new, came, change.landed(other) + moved.added(reach), landed_from)
    _fill(found, index, 1, change, change.filling(other, moved), froms, trace=trace)
    # Stop: one command, nothing charged; from the best level.
    stop, top = stop[:, :was], top[:, :was]
    target = new[1:, 0, :was]
    if came is not None:
        np.putmask(came[1:, 0, :was], stop > target, (top + 1).astype(np.int16))
    np.maximum(target, stop, out=target)
    _traced(found, came, whole, moved)


def _traced(found: Forward, came: np.ndarray | None, whole: _Energy, moved: _Energy) -> None:
    """Keep a traced bucket's pointers and steps, for :func:`schedule`."""
    if came is not None:
        found.came.append(came)
        found.steps.append((whole.units, moved.units))


def _improve(
    new: np.ndarray, came: np.ndarray | None, value: np.ndarray, origin: int | np.ndarray
) -> None:
    """A start or a change (one command: from the next commands count on) into the levels'
    states, where strictly better; traced, each such state came from ``origin`` (per state,
    or one level for all)."""
    reach = value.shape[2]
    target = new[1:, 1:, :reach]
    if came is not None:
        np.copyto(came[1:, 1:, :reach], origin, where=value > target)
    np.maximum(target, value, out=target)


def _fill(  # noqa: PLR0917 - the move and where it stands, each needed
    found: Forward,
    index: int,
    offset: int,
    shift: _Shift,
    filling: np.ndarray | None,
    origin: int | np.ndarray | None,
    *,
    trace: bool,
) -> None:
    """The moves that fill the car (``filling``: commands from ``offset``, level, source bin
    from ``shift.first``) into ``done`` where strictly better. Traced, which move it was:
    the lowest level, then the lowest bin, with the best value, as a level at a time would
    leave it; it came from ``origin`` (per source state, one level for all, or None: the
    level it keeps)."""
    if filling is None:
        return
    flat = filling.reshape(filling.shape[0], -1)
    best = flat.max(axis=1)
    done = found.done[offset : offset + len(best)]
    better = best > done
    if not better.any():  # most buckets: no filling move beats the best so far
        return
    if not trace:
        np.maximum(done, best, out=done)
        return
    for c in np.flatnonzero(better):
        done[c] = best[c]
        level, b = divmod(int(flat[c].argmax()), filling.shape[2])
        b += shift.first
        if origin is None:
            before = level + 1
        elif isinstance(origin, int):
            before = origin
        else:
            before = int(origin[c, level, b])
        found.filled[c + offset] = (index, before, level + 1, b)


@dataclass(frozen=True)
class _Shift:
    """Where one move lands at every level at once: at level ``l`` (its step ``s`` units) a
    destination bin ``d`` short of the need comes from source bin ``d - s``. Why: one level
    at a time, the moves were ten small numpy calls per level and bucket, three quarters of
    the planner's CPU in a replay; as one gather per move the same values are found, each
    element by the same float32 operation."""

    width: int
    """Source bins, each source with an unset one past them (``width`` itself)."""
    flat: np.ndarray
    """(levels, destination bins): the source state as ``level * (width + 1) + bin``, the
    bin ``width`` (unset) where the move does not land."""
    bins: np.ndarray
    """The same as a bin alone, for a source the same at every level (off)."""
    origin: np.ndarray
    """Where the move lands, its level from 1 (0 where it does not)."""
    first: int
    """The lowest source bin a move at any level can fill the car from."""
    fills: np.ndarray
    """(levels, source bins from ``first``): whether the move at that level from that bin
    fills the car."""

    @staticmethod
    def of(units: list[int], width: int, reach: int, need: int) -> _Shift:
        """The move's shift for levels of ``units`` each, from ``width`` source bins into
        ``reach`` destination bins, short of ``need``. Kept for the last few: nine buckets in
        ten of a month's plans ask again for one already made (each bucket's levels alike, the
        bins full once the car could be), and making one is a dozen numpy calls."""
        return _shift(tuple(units), width, reach, need)

    def landed(self, source: np.ndarray) -> np.ndarray:
        """``source`` (commands, levels, bins; or commands, bins for one alike at every
        level; each with its unset bin ``width``) where each level's move lands: (commands,
        levels, destination bins), the unset bin's value where it does not."""
        flat = source.reshape(len(source), -1)  # a view: the last two axes are contiguous
        # np.take: a third of the time of the same gather as an index (numpy 2.x)
        picked: np.ndarray = np.take(flat, self.bins if source.ndim == 2 else self.flat, axis=1)
        return picked

    def filling(self, source: np.ndarray, energy: _Energy) -> np.ndarray | None:
        """The value of each move from ``source`` that fills the car (commands, levels,
        source bins from :attr:`first`), ``-inf`` where it does not fill it; None if none
        can."""
        if self.first >= self.width:
            return None
        bins = slice(self.first, self.width)
        value = source[:, :, bins] + energy.gains[:, bins]
        return np.where(self.fills, value, np.float32(_NONE))


@functools.lru_cache(maxsize=64)  # about 35 kB each; 92 % of a month's plans hit
def _shift(units: tuple[int, ...], width: int, reach: int, need: int) -> _Shift:
    levels = len(units)
    steps = np.asarray(units, dtype=np.int64)[:, None]
    source = np.arange(reach)[None, :] - steps  # destinations below reach: short of need
    lands = (steps > 0) & (source >= 0) & (source < width)
    top = max(units, default=0)
    first = max(0, need - top)
    fills = (steps > 0) & (np.arange(first, max(first, width))[None, :] + steps >= need)
    made = _Shift(
        width=width,
        flat=(np.arange(levels)[:, None] * (width + 1) + np.where(lands, source, width)).astype(
            np.int32
        ),
        bins=np.where(lands, source, width).astype(np.int32),
        origin=np.where(lands, np.arange(1, levels + 1, dtype=np.int16)[:, None], 0).astype(
            np.int16
        ),
        first=first,
        fills=fills,
    )
    for array in (made.flat, made.bins, made.origin, made.fills):
        array.flags.writeable = False  # shared by every caller of the cache
    return made


def schedule(found: Forward, commands: int) -> list[int]:
    """The levels (0 off, else the level's index from 1) per bucket of the best schedule with
    exactly ``commands`` commands (a traced :func:`forward`), up to the bucket that fills the
    car; nothing after it (the car is full)."""
    end = found.filled[commands]
    if end is None:
        return []
    bucket, before, level, b = end
    c = commands - (0 if before == level else 1)
    levels = [level]
    state = before
    for k in range(bucket - 1, -1, -1):
        levels.append(state)
        origin = int(found.came[k][c, state, b])
        keep, moved = found.steps[k]
        if state > 0:
            b -= keep[state - 1] if origin in (0, state) else moved[state - 1]
        if origin != state:
            c -= 1
        state = origin
    return levels[::-1]


def _best_other(on: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per level ``l``: the best state at any other level (a change to ``l`` comes from one),
    and which level that is; and the best state at any level (a stop comes from it), and
    which (the lowest on a tie)."""
    top = on.argmax(axis=1)
    first = on.max(axis=1)
    if on.shape[1] < 2:
        return np.full_like(on, _NONE), np.zeros(on.shape, dtype=np.int64), first, top
    mine = np.arange(on.shape[1])[None, :, None] == top[:, None, :]
    rest = np.where(mine, np.float32(_NONE), on)
    second = rest.max(axis=1, keepdims=True)
    runner = rest.argmax(axis=1)[:, None, :]
    value = np.where(mine, second, first[:, None, :])
    where = np.where(mine, runner, top[:, None, :])
    return value, where, first, top


@dataclass(frozen=True)
class _Risk:
    """A bucket's hedge: a grid kWh costs ``hedge`` more solar while the car's rest after
    the move is less than the ``later`` sun it could still take (:class:`Options`)."""

    hedge: float = 0.0
    later: float = 0.0


@dataclass(frozen=True)
class _Energy:
    """What each level charges in one bucket: kWh, on the energy's grid, and its solar (less
    the grid's penalty per kWh)."""

    kwh: np.ndarray
    units: list[int]
    solar: np.ndarray
    sun: float
    left: np.ndarray
    """kWh the car still takes, per energy bin (the part a filling move charges)."""
    penalty: float = 0.0
    risk: _Risk = _Risk()

    @classmethod
    def of(  # noqa: PLR0917 - the bucket's figures, each needed
        cls,
        kwh: np.ndarray,
        sun: float,
        left: np.ndarray,
        penalty: float = 0.0,
        unit: float = UNIT_KWH,
        risk: _Risk = _Risk(),
    ) -> _Energy:
        solar = np.minimum(kwh, sun)
        if penalty:
            solar = solar - np.float32(penalty) * (kwh - solar)
        return cls(kwh, _units(kwh, unit).tolist(), solar, sun, left, penalty, risk)

    def added(self, reach: int) -> np.ndarray:
        """The value of a move at each level that leaves the car short, per bin it lands in
        (below ``reach``): its solar, less the hedge on the part of its grid that the sun
        still to come could have given (the car's rest after it under ``later``)."""
        if not self.risk.hedge or self.risk.later <= float(self.left[reach - 1]):
            return self.solar[:, None]  # the rest is over the sun still to come
        return self._hedged[:, :reach]

    @cached_property
    def _hedged(self) -> np.ndarray:
        """:meth:`added`'s hedged values per level and bin, made once per bucket."""
        grid = np.maximum(self.kwh - np.minimum(self.kwh, self.sun), 0.0)[:, None]
        # np.clip's own values (grid is never negative), without its wrapper's cost
        exposed = np.minimum(np.maximum(self.risk.later - self.left[None, :], 0.0), grid)
        hedged: np.ndarray = self.solar[:, None] - np.float32(self.risk.hedge) * exposed
        return hedged

    @cached_property
    def gains(self) -> np.ndarray:
        """The value of a move at each level that fills the car, per bin it comes from:
        the part the car still takes, its solar less the grid's penalty and hedge."""
        part = np.minimum(self.left[None, :], self.kwh[:, None])
        taken: np.ndarray = np.minimum(part, self.sun)
        if self.penalty or self.risk.hedge:
            grid = part - taken
            exposed = np.minimum(grid, np.float32(self.risk.later))
            taken = taken - np.float32(self.penalty) * grid - np.float32(self.risk.hedge) * exposed
        return taken


@dataclass(frozen=True)
class Ceiling:
    """The command-limited optimum over a series."""

    per_session: tuple[tuple[float, ...], ...]
    """Per session: the most solar with at most 0..``most`` commands."""
    optimum: tuple[float, ...]
    """Per such session: the unconstrained optimum's solar (the bound past ``most``)."""

    def unlimited(self) -> float:
        """The unconstrained optimum's solar over the series (with the same ready-by)."""
        return sum(self.optimum)

    def capped(self) -> list[list[float]]:
        """The rows at most each session's optimum: the energy's rounding (a few thousandths
        of a kWh a session, either way) must not lift a session above what it bounds."""
        return [
            [min(x, bound) for x in row]
            for row, bound in zip(self.per_session, self.optimum, strict=True)
        ]

    def at(self, k: int) -> float:
        """Solar over the series with at most ``k`` commands in every session."""
        return sum(max(row[min(k, len(row) - 1)], 0.0) for row in self.capped())


def ceiling(
    series: SiteSeries,
    limits: Limits,
    voltage_v: float,
    *,
    most: int = 10,
    margin: timedelta = timedelta(0),
) -> Ceiling:
    """Every session's best solar per command budget, beside the unconstrained optimum's.

    ``margin``: the energy is due that long before the unplug, as a departure plan's
    ready-by is (`evopt simulate --plans`: 15 minutes); the unconstrained optimum beside it
    is then solved for the same ready-by (:func:`optimizer.simulate.baselines.optimal`)."""
    cut = tuple(replace(s, end=max(s.start, s.end - margin)) for s in series.sessions)
    due = replace(series, sessions=cut)
    ev, _ = optimal(due, limits, voltage_v)
    rows: list[tuple[float, ...]] = []
    bounds: list[float] = []
    for session in due.sessions:
        prog = programme(due, session, limits, voltage_v)
        rows.append(tuple(best_by_commands(prog, most)))
        window = due.window(session)
        bounds.append(sum(min(ev[i], surplus_kwh(due, i)) for i in window if ev[i] > 0))
    return Ceiling(tuple(rows), tuple(bounds))


def pooled(found: Ceiling, per_session: float) -> float:
    """The most solar over the series with ``per_session`` commands per session on average,
    spent where they win most: a knapsack over sessions, each choosing its budget ``k``
    (0..cap, or past the cap at the unconstrained optimum's solar, an upper bound, counted as
    cap + 1 commands)."""
    sessions = len(found.per_session)
    budget = int(per_session * sessions)
    best = np.zeros(budget + 1)  # most solar with at most b commands over the sessions so far
    for row, bound in zip(found.capped(), found.optimum, strict=True):
        choices = [(k, x) for k, x in enumerate(row) if x > _NONE]
        choices.append((len(row), bound))
        new = np.full(budget + 1, _NONE)
        for k, solar in choices:
            if k <= budget:
                np.maximum(new[k:], best[: budget + 1 - k] + solar, out=new[k:])
        best = new
    return float(best.max())
