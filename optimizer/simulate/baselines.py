"""The two yardsticks a simulated policy is judged against: "plug in and charge" and the optimum.

Both return ``(EV energy kWh per bucket, commands sent)`` over the whole series, so they feed
:func:`optimizer.simulate.series.figures` exactly like a replayed policy does.

The charging model (shared by both, and by any schedule a test calls feasible)
-------------------------------------------------------------------------------
In bucket ``t`` of session ``s`` the car takes either nothing or between the minimum and the
maximum power for the share of the bucket it is plugged in::

    e_t = 0   or   emin_t <= e_t <= emax_t,   emin/emax_t = min/high amps * V * 0.25 h * f_t / 1000

with one exception: the bucket in which the car becomes full may carry less than ``emin_t``
(the charger runs at a valid level and stops part-way through). The car never takes more than
the session's energy. Missing buckets carry pv = house = 0, i.e. no surplus, so nothing
counts as solar there (and ``figures`` skips them anyway).

``immediate``
    From plug-in at ``limits.high`` until the session's energy is met (last bucket partial):
    one start and one stop command per session that took anything.

``optimal``
    Perfect foresight, solved exactly per group of sessions. Sessions are independent except
    when one ends and the next starts in the same bucket; such sessions share that bucket's
    surplus and are solved together. A lone session (every one on the bundled samples) is
    solved by :mod:`optimizer.simulate.optimum_exact`, a branch and bound over the minimum
    power whose relaxation is a greedy, in pure Python; a group, or a session whose search
    gives up, by the mixed-integer programme below with ``scipy.optimize.milp`` (HiGHS). Both
    give the same figures, and the same schedule where HiGHS reaches the earliest one
    (tests/test_optimum_exact.py). Per session bucket ``t``:

    * ``on_t`` in {0, 1}; ``p_t`` in {0, 1} marks the "car got full here" bucket;
    * ``e_t <= on_t * emax_t`` and ``e_t >= (on_t - p_t) * emin_t``, ``p_t <= on_t``,
      at most one ``p_t`` per session, no charging after it, and ``p`` fixed to 0 when the
      window cannot deliver the energy (the car is then never full, so never stops early);
    * ``sum e_t = need = min(energy, sum emax_t)``: the need is always met when it can be
      (charging at full power from plug-in does it), otherwise the window's maximum is
      delivered, the same amount ``immediate`` delivers, so unmet energy is never traded for
      solar share.

    Per bucket, ``solar_t <= max(pv_t - house_t, 0)`` and ``solar_t <= sum of e_t`` over the
    sessions in it, so at the optimum ``solar_t = min(ev_t, surplus_t)`` as ``figures`` counts
    it; ``grid_t = ev_t - solar_t``.

    The objective is lexicographic, solved in stages rather than with a big-M weight: a
    weight can only be "big enough" against continuous trade-offs, while with integer
    variables a tiny solar gain may require a large cost change. Stage 1 maximises
    ``sum solar_t``; stage 2 keeps that solar (to a 1e-9 relative tolerance) and minimises
    the charging's cost ``sum grid_t * import_price_t + sum solar_t * export_price`` (every
    solar kWh put in the car is a kWh not exported). Given the solar, that places the grid
    energy in the cheapest buckets. Stage 2 is first tried alone with solar pinned at the
    obvious bound ``min(need, sum min(surplus_t, emax_t))``; when that is feasible it is the
    lexicographic optimum and stage 1 is skipped (the usual case).

    Stage 3 is the canonical tie-break: among the schedules with that solar and that cost, the
    one whose energy comes earliest (least ``sum rank_t * e_t``, ``rank_t`` the bucket's
    position with the buckets without data first, :func:`optimum_exact.ranks`). Equally
    good schedules are the rule, not the exception (a tariff window of equally priced hours),
    and the command count depends on which one is returned: until programme version 2 it was
    whichever vertex HiGHS happened to return (3,340 commands on the sample year, 11.6 per
    session); the earliest schedule charges in one block where it can (1,382, 4.8 per
    session), and the exact search and the MILP return the same one. Commands themselves are
    not minimised (a tie-break term on level changes doubled the solve time).

    Granularity is ignored (any level between min and high): the optimum is then a relaxation
    of what the charger can actually do, i.e. an upper bound, which is what "the policy never
    beats the optimum" needs. Commands are counted from the resulting profile: two per
    contiguous charging block (start and stop) plus one per level change of at least 1 A
    between consecutive charging buckets (the "full" bucket, the last one charging when the
    need is below the window's maximum, runs at the previous level).

    Each HiGHS solve has a 10 s time limit; if it returns no solution in time the group falls
    back to the immediate profile (never observed). `make bench` times the optimum alone on
    the sample year and on a synthetic year (250 sessions of 2-15 h with broken sun,
    tests/test_baselines.py); the unit test checks only what the solve gives.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optimizer.simulate.optimum_exact import Window, ranks
from optimizer.simulate.optimum_exact import solve as solve_exactly
from optimizer.simulate.series import BUCKET_H, Session, SiteSeries


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence file descriptor 1 while HiGHS solves.

    HiGHS (C++) now and then prints a diagnostic line straight to stdout, past Python's
    ``sys.stdout``; under `evopt simulate --json` that line would corrupt the JSON a script
    reads. Redirecting the descriptor itself is the only way to catch it.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
            try:
                yield
            finally:
                os.dup2(saved, 1)
    finally:
        os.close(saved)


if TYPE_CHECKING:
    # Only for annotations: a cold ``import optimizer.limits`` runs into the limits <->
    # enlighten.client import cycle, and this module only reads a Limits' attributes.
    import numpy as np

    from optimizer.limits import Limits

__all__ = ["immediate", "optimal", "solve_workers", "solved_exactly", "surplus_kwh"]

_LOGGER = logging.getLogger(__name__)

TIME_LIMIT_S = 10.0
SOLAR_TOLERANCE = 1e-9
"""Relative slack on stage 1's solar when stage 2 optimises cost (solver round-off only)."""
STAGE3_TOLERANCES = (1e-9, 1e-8, 1e-7)
"""Relative slacks on solar and cost tried in turn when stage 3 takes the earliest schedule."""
_EPS = 1e-9
_HIGHS_TOLERANCE = 1e-7
"""HiGHS's primal feasibility tolerance: a solved energy below it is round-off."""
_SLACK_KWH = 1e-5
"""Less than this alone in a bucket is the stage pins' slack, not a charge (0.01 Wh, a
hundredth of the data's resolution): stage 3 may move as much into a bucket that ranks earlier
(a gap in the data) for a cost within its 1e-9 relative pin, which the search never does, and
kept there it would count a start and a stop no schedule sends (:func:`_without_slack`)."""


def _kwh_per_amp(voltage_v: float) -> float:
    """kWh one amp delivers over a whole bucket."""
    return voltage_v * BUCKET_H / 1000


def surplus_kwh(series: SiteSeries, index: int) -> float:
    """The solar the car may take in bucket ``index`` (none without data), as figures counts."""
    if series.missing[index]:
        return 0.0
    return max(series.pv_kwh[index] - series.house_kwh[index], 0.0)


def immediate(
    series: SiteSeries, limits: Limits, voltage_v: float
) -> tuple[tuple[float, ...], int]:
    """Full power (``limits.high``) from plug-in until the car is full, as a dumb charger does."""
    ev = [0.0] * len(series.starts)
    commands = 0
    if not limits.feasible:
        return tuple(ev), 0
    per_amp = _kwh_per_amp(voltage_v)
    for session in series.sessions:
        left = session.energy_kwh
        took = 0.0
        for index in series.window(session):
            if left <= _EPS:
                break
            cap = limits.high * per_amp * series.fraction(index, session)
            give = min(cap, left)
            ev[index] += give
            left -= give
            took += give
        if took > _EPS:
            commands += 2
    return tuple(ev), commands


@dataclass(frozen=True)
class _Part:
    """One session's share of a group programme: its buckets and column offsets."""

    session: Session
    indices: tuple[int, ...]
    emin: tuple[float, ...]
    emax: tuple[float, ...]
    amps_per_kwh: tuple[float, ...]
    need: float
    can_fill: bool
    on: int  # first column of on_t; then p_t, e_t, z_t follow in blocks of len(indices)

    @property
    def size(self) -> int:
        return len(self.indices)

    def col(self, block: int, j: int) -> int:
        return self.on + block * self.size + j


_ON, _P, _E, _Z = 0, 1, 2, 3
_BLOCKS = 4


def _groups(series: SiteSeries) -> list[list[Session]]:
    """Sessions chained by shared buckets (sorted by window start); usually singletons."""
    ordered = sorted(
        (s for s in series.sessions if series.window(s)), key=lambda s: series.window(s).start
    )
    groups: list[list[Session]] = []
    reach = -1
    for session in ordered:
        window = series.window(session)
        if groups and window.start < reach:
            groups[-1].append(session)
        else:
            groups.append([session])
        reach = max(reach, window.stop)
    return groups


def _parts(
    series: SiteSeries, sessions: Sequence[Session], limits: Limits, voltage_v: float
) -> list[_Part]:
    """Each session's buckets, energy bounds and need, with its columns in a group programme."""
    per_amp = _kwh_per_amp(voltage_v)
    parts: list[_Part] = []
    column = 0
    for session in sessions:
        indices = tuple(series.window(session))
        shares = [series.fraction(i, session) for i in indices]
        emin = tuple(limits.low * per_amp * f for f in shares)
        emax = tuple(limits.high * per_amp * f for f in shares)
        amps = tuple(1 / (per_amp * f) if f > 0 else 0.0 for f in shares)
        capacity = sum(emax)
        need = min(max(session.energy_kwh, 0.0), capacity)
        can_fill = session.energy_kwh < capacity
        parts.append(_Part(session, indices, emin, emax, amps, need, can_fill, column))
        column += _BLOCKS * len(indices)
    return parts


class _Programme:
    """The MILP of one group of sessions, built as sparse rows."""

    def __init__(
        self, series: SiteSeries, sessions: Sequence[Session], limits: Limits, voltage_v: float
    ) -> None:
        self.parts = _parts(series, sessions, limits, voltage_v)
        column = sum(_BLOCKS * part.size for part in self.parts)
        self.buckets = sorted({i for part in self.parts for i in part.indices})
        self.solar_col = {index: column + k for k, index in enumerate(self.buckets)}
        self.n = column + len(self.buckets)
        self.series = series
        self._rows: list[int] = []
        self._cols: list[int] = []
        self._vals: list[float] = []
        self._lo: list[float] = []
        self._hi: list[float] = []
        self._build()

    def _row(self, terms: Sequence[tuple[int, float]], lo: float, hi: float) -> None:
        row = len(self._lo)
        for col, val in terms:
            self._rows.append(row)
            self._cols.append(col)
            self._vals.append(val)
        self._lo.append(lo)
        self._hi.append(hi)

    def _build(self) -> None:
        # scipy.optimize takes a second to import: only a solve pays it, so a report whose
        # optimum comes from the cache (optimizer/simulate/baseline_cache.py) never does.
        # numpy too: a replay of rules alone never imports it (docs/performance.md).
        import numpy as np  # noqa: PLC0415
        from scipy.optimize import Bounds  # type: ignore[import-untyped]  # noqa: PLC0415

        inf = math.inf
        lower = np.zeros(self.n)
        upper = np.full(self.n, inf)
        integral = np.zeros(self.n)
        feeding: dict[int, list[int]] = {index: [] for index in self.buckets}
        for part in self.parts:
            m = part.size
            for j in range(m):
                on, p, e = (part.col(b, j) for b in (_ON, _P, _E))
                upper[on] = 1.0
                upper[p] = 1.0 if part.can_fill else 0.0
                integral[on] = integral[p] = 1
                upper[e] = part.emax[j]
                feeding[part.indices[j]].append(e)
                self._row([(e, 1.0), (on, -part.emax[j])], -inf, 0.0)
                self._row([(e, 1.0), (on, -part.emin[j]), (p, part.emin[j])], 0.0, inf)
                self._row([(p, 1.0), (on, -1.0)], -inf, 0.0)
                if part.can_fill:
                    # z_j = "full by bucket j" = sum of p up to j; nothing runs once full.
                    z = part.col(_Z, j)
                    upper[z] = 1.0
                    earlier = [(part.col(_Z, j - 1), -1.0)] if j else []
                    self._row([(z, 1.0), *earlier, (p, -1.0)], 0.0, 0.0)
                    if j:
                        self._row([(on, 1.0), (part.col(_Z, j - 1), 1.0)], -inf, 1.0)
                else:
                    upper[part.col(_Z, j)] = 0.0
            self._row([(part.col(_P, j), 1.0) for j in range(m)], -inf, 1.0)
            self._row([(part.col(_E, j), 1.0) for j in range(m)], part.need, part.need)
        for index in self.buckets:
            solar = self.solar_col[index]
            upper[solar] = surplus_kwh(self.series, index)
            self._row([(solar, 1.0)] + [(e, -1.0) for e in feeding[index]], -inf, 0.0)
        self.bounds = Bounds(lower, upper)
        self.integrality = integral

    def _constraints(self, extra: Sequence[tuple[np.ndarray, float, float]]) -> Any:
        """The programme's rows plus ``extra`` ones (coefficients, lower, upper): the pins
        each later stage puts on what an earlier one reached."""
        import numpy as np  # noqa: PLC0415
        from scipy.optimize import LinearConstraint  # noqa: PLC0415
        from scipy.sparse import coo_matrix  # type: ignore[import-untyped]  # noqa: PLC0415

        rows, cols, vals = list(self._rows), list(self._cols), list(self._vals)
        lo, hi = list(self._lo), list(self._hi)
        for coeffs, floor, ceiling in extra:
            row = len(lo)
            for col in np.flatnonzero(coeffs):
                rows.append(row)
                cols.append(int(col))
                vals.append(float(coeffs[col]))
            lo.append(floor)
            hi.append(ceiling)
        matrix = coo_matrix((vals, (rows, cols)), shape=(len(lo), self.n)).tocsr()
        return LinearConstraint(matrix, np.array(lo), np.array(hi))

    def _solve(
        self, c: np.ndarray, extra: Sequence[tuple[np.ndarray, float, float]] = ()
    ) -> np.ndarray | None:
        import numpy as np  # noqa: PLC0415
        from scipy.optimize import milp  # noqa: PLC0415

        with quiet_stdout():
            result = milp(
                c,
                constraints=self._constraints(extra),
                integrality=self.integrality,
                bounds=self.bounds,
                options={"time_limit": TIME_LIMIT_S, "mip_rel_gap": 1e-9},
            )
        if result.x is None:
            return None
        x: np.ndarray = np.asarray(result.x, dtype=float)
        return x

    def _bound(self) -> float:
        """Most solar conceivable: each bucket's surplus up to full power, capped by the need.

        Usually achievable, and then one solve (cost, with solar at this bound) is exact."""
        top: dict[int, float] = dict.fromkeys(self.buckets, 0.0)
        for part in self.parts:
            for j, index in enumerate(part.indices):
                top[index] += part.emax[j]
        reachable = sum(min(surplus_kwh(self.series, i), top[i]) for i in self.buckets)
        return min(reachable, sum(part.need for part in self.parts))

    def solve(self) -> np.ndarray | None:
        """Most solar, then cheapest given that solar, then the earliest energy.

        Stage 2 alone at the solar bound when that is feasible (it then is the lexicographic
        optimum); otherwise stage 1 finds the best solar and stage 2 runs at that floor.
        Stage 3 keeps both and takes the schedule whose energy comes earliest (least sum of
        bucket position times kWh): the canonical one among equally good schedules, the same
        the exact search (:mod:`optimizer.simulate.optimum_exact`) returns."""
        import numpy as np  # noqa: PLC0415

        solar = np.zeros(self.n)
        for col in self.solar_col.values():
            solar[col] = 1.0
        cost = np.zeros(self.n)
        for part in self.parts:
            for j, index in enumerate(part.indices):
                cost[part.col(_E, j)] += self.series.import_price[index]
        for index, col in self.solar_col.items():
            # solar_t replaces grid_t: saves the import price, forgoes the export credit.
            cost[col] = self.series.export_price - self.series.import_price[index]
        bound = self._bound()
        second: np.ndarray | None
        if bound <= 0:
            second = self._solve(cost)
        else:
            second = self._solve(cost, [_at_least(solar, bound)])
            if second is None:
                first = self._solve(-solar)
                if first is None:
                    return None
                second = self._solve(cost, [_at_least(solar, float(solar @ first))])
                second = first if second is None else second
        if second is None:
            return None
        earliest = np.zeros(self.n)
        rank = dict(
            zip(
                self.buckets,
                ranks(tuple(self.series.missing[i] for i in self.buckets)),
                strict=True,
            )
        )
        for part in self.parts:
            for j, index in enumerate(part.indices):
                earliest[part.col(_E, j)] = rank[index]
        # Stage 2's answer may sit a hair outside the rows (HiGHS's feasibility tolerance),
        # so pins at 1e-9 of its own values can be infeasible for a fresh solve: widen them
        # tenfold at a time (each width only lets stage 3 trade that share of solar or cost).
        for tolerance in STAGE3_TOLERANCES:
            reached = [
                _at_least(solar, float(solar @ second), tolerance),
                _at_most(cost, float(cost @ second), tolerance),
            ]
            third = self._solve(earliest, reached)
            if third is not None:
                return third
        return second


def _at_least(
    coeffs: np.ndarray, value: float, tolerance: float = SOLAR_TOLERANCE
) -> tuple[np.ndarray, float, float]:
    """``coeffs @ x`` kept at ``value`` or above, to a relative tolerance."""
    return coeffs, value - tolerance * max(1.0, abs(value)), math.inf


def _at_most(coeffs: np.ndarray, value: float, tolerance: float) -> tuple[np.ndarray, float, float]:
    """``coeffs @ x`` kept at ``value`` or below, to a relative tolerance."""
    return coeffs, -math.inf, value + tolerance * max(1.0, abs(value))


def _commands(part: _Part, energy: Sequence[float], full: int | None) -> int:
    """Two per charging block, one per level change of at least 1 A inside a block."""
    commands = 0
    previous: float | None = None
    for j in range(part.size):
        if energy[j] <= _EPS:
            previous = None
            continue
        amps = energy[j] * part.amps_per_kwh[j]
        if previous is None:
            commands += 2
            previous = amps
        elif j != full and abs(amps - previous) >= 1.0 - 1e-6:
            commands += 1
            previous = amps
    return commands


GroupAnswer = list[tuple[tuple[int, ...], list[float], int]] | None
"""Per session of a group: its buckets, the energy in each, its commands; None: no solution."""
POOL_MIN_GROUPS = 24
"""Below this many groups a process pool costs more than it saves."""


def _window(series: SiteSeries, part: _Part) -> Window:
    """A lone session's programme as the exact search reads it."""
    solar = tuple(
        min(surplus_kwh(series, i), top) for i, top in zip(part.indices, part.emax, strict=True)
    )
    prices = tuple(series.import_price[i] for i in part.indices)
    missing = tuple(series.missing[i] for i in part.indices)
    return Window(part.emin, part.emax, solar, prices, part.need, part.can_fill, ranks(missing))


def _full(part: _Part, energy: Sequence[float]) -> int | None:
    """The bucket the car gets full in: the last one charging, when the need can be met
    (the same rule for both methods, whatever the MILP's marker says)."""
    if not part.can_fill:
        return None
    running = [j for j in range(part.size) if energy[j] > _EPS]
    return running[-1] if running else None


def _exact(
    series: SiteSeries, group: Sequence[Session], limits: Limits, voltage_v: float
) -> GroupAnswer:
    """A lone session solved without HiGHS (:mod:`optimizer.simulate.optimum_exact`), or None
    when the group has several sessions or the search gives up."""
    if len(group) != 1:
        return None
    (part,) = _parts(series, group, limits, voltage_v)
    energy = solve_exactly(_window(series, part))
    if energy is None:
        return None
    return [(part.indices, energy, _commands(part, energy, _full(part, energy)))]


def _milp_group(
    series: SiteSeries, group: Sequence[Session], limits: Limits, voltage_v: float
) -> GroupAnswer:
    """The group's MILP solved by HiGHS: sessions sharing a bucket, or the exact search's
    fallback."""
    programme = _Programme(series, group, limits, voltage_v)
    x = programme.solve()
    if x is None:
        return None
    answer = []
    for part in programme.parts:
        # A bucket whose on_t rounds to 0, or that carries less than the solver's feasibility
        # tolerance, holds only round-off (e <= on * emax with on ~ 1e-7; a few 1e-9 kWh
        # moved past a minimum power met to 1e-9): it does not run, and counts no command.
        energy = [
            min(max(float(x[part.col(_E, j)]), 0.0), part.emax[j])
            if x[part.col(_ON, j)] > 0.5 and x[part.col(_E, j)] > _HIGHS_TOLERANCE
            else 0.0
            for j in range(part.size)
        ]
        energy = _without_slack(energy, part.emax)
        answer.append((part.indices, energy, _commands(part, energy, _full(part, energy))))
    return answer


def _without_slack(energy: list[float], emax: Sequence[float]) -> list[float]:
    """``energy`` with each bucket under :data:`_SLACK_KWH` given to the session's largest
    charge that has room for it: the same total, the schedule the pins' slack blurred (a
    hypothesis draw found HiGHS putting 1e-6 kWh of a 0.291 kWh session in a one-minute gap
    at its end, two more commands than the search's). Kept where no charge has room, or where
    the session's whole need is that small."""
    out = list(energy)
    for j, e in enumerate(energy):
        if not 0.0 < e < _SLACK_KWH:
            continue
        room = [k for k, v in enumerate(out) if v >= _SLACK_KWH and v + e <= emax[k]]
        if room:
            k = max(room, key=lambda k: out[k])
            out[k] += e
            out[j] = 0.0
    return out


_WORK: tuple[SiteSeries, list[list[Session]], Limits, float] | None = None


def _solve_share(share: int, workers: int) -> list[tuple[int, GroupAnswer]]:
    """In a forked worker: every ``workers``-th group from ``share`` (the work is inherited,
    not pickled: a year of series would cost more to send than a solve)."""
    if _WORK is None:
        raise RuntimeError("no work inherited: the pool must fork")
    series, groups, limits, voltage_v = _WORK
    return [
        (k, _milp_group(series, groups[k], limits, voltage_v))
        for k in range(share, len(groups), workers)
    ]


def solve_workers() -> int:
    """Processes for the solves: ``$EVOPT_SOLVE_WORKERS``, else one per core (at most 4)."""
    wanted = os.environ.get("EVOPT_SOLVE_WORKERS", "")
    if wanted.isdigit() and int(wanted) >= 1:
        return int(wanted)
    return max(1, min(4, os.cpu_count() or 1))


def _answers(
    series: SiteSeries,
    groups: list[list[Session]],
    limits: Limits,
    voltage_v: float,
    *,
    workers: int | None = None,
) -> list[GroupAnswer]:
    """Each group's answer: lone sessions by the exact search in this process (a year's take
    well under a second, less than a process pool costs to start), the rest by HiGHS."""
    found = [_exact(series, group, limits, voltage_v) for group in groups]
    left = [k for k, answer in enumerate(found) if answer is None]
    _LOGGER.debug(
        "optimal baseline: %d of %d groups solved exactly, %d by HiGHS",
        len(groups) - len(left),
        len(groups),
        len(left),
    )
    solved = _milp_answers(series, [groups[k] for k in left], limits, voltage_v, workers=workers)
    for k, answer in zip(left, solved, strict=True):
        found[k] = answer
    return found


def solved_exactly(series: SiteSeries, limits: Limits, voltage_v: float) -> tuple[int, int]:
    """(groups the exact search solves, all groups): the share HiGHS is spared, for the bench."""
    groups = _groups(series)
    exact = sum(_exact(series, group, limits, voltage_v) is not None for group in groups)
    return exact, len(groups)


def _milp_answers(
    series: SiteSeries,
    groups: list[list[Session]],
    limits: Limits,
    voltage_v: float,
    *,
    workers: int | None = None,
) -> list[GroupAnswer]:
    """Each group's MILP answer, the groups shared out over the cores when there are many: the
    groups are independent programmes (no bucket in two), so the answers are the same."""
    workers = min(solve_workers() if workers is None else max(1, workers), len(groups))
    methods = multiprocessing.get_all_start_methods()
    if workers < 2 or len(groups) < POOL_MIN_GROUPS or "fork" not in methods:
        return [_milp_group(series, group, limits, voltage_v) for group in groups]
    global _WORK  # noqa: PLW0603 - what the forked workers inherit
    _WORK = (series, groups, limits, voltage_v)
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            shares = list(pool.map(_solve_share, range(workers), [workers] * workers))
    except (OSError, BrokenProcessPool) as err:  # no processes to be had: solve here
        _LOGGER.debug("optimal baseline: no process pool (%s), solving in-process", err)
        return [_milp_group(series, group, limits, voltage_v) for group in groups]
    finally:
        _WORK = None
    found: list[GroupAnswer] = [None] * len(groups)
    for share in shares:
        for k, answer in share:
            found[k] = answer
    return found


def optimal(
    series: SiteSeries, limits: Limits, voltage_v: float, *, workers: int | None = None
) -> tuple[tuple[float, ...], int]:
    """The best any policy could do with perfect foresight: most solar, then least cost.

    ``workers``: processes for the solves (default :func:`solve_workers`); the answer is the
    same for any number (the groups are independent), only the time differs."""
    ev = [0.0] * len(series.starts)
    commands = 0
    if not limits.feasible:
        return tuple(ev), 0
    fallback: tuple[tuple[float, ...], int] | None = None
    groups = _groups(series)
    for group, answer in zip(
        groups, _answers(series, groups, limits, voltage_v, workers=workers), strict=True
    ):
        if answer is None:
            if fallback is None:
                fallback = immediate(series, limits, voltage_v)
            for session in group:
                window = series.window(session)
                for index in window:
                    ev[index] = fallback[0][index]
                took = sum(fallback[0][i] for i in window)
                commands += 2 if took > _EPS else 0
            continue
        for indices, energy, sent in answer:
            for j, index in enumerate(indices):
                ev[index] += energy[j]
            commands += sent
    return tuple(ev), commands
