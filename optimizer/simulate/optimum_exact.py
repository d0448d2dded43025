"""One session's optimum solved exactly in pure Python: a branch and bound whose relaxation
is a greedy.

Why: the sample year's optimum was 291 HiGHS solves, 3.4 of its 3.9 s of CPU inside the
solver (docs/performance.md). A single session's programme is small and has a shape a MILP
solver cannot exploit: per bucket ``j`` of the window the car takes ``e_j = 0`` or
``low_j <= e_j <= high_j``, except that the last bucket charging may carry less than
``low_j`` when the car gets full there (``can_fill``); the energies sum to ``need``. The
objective is lexicographic (see :mod:`optimizer.simulate.baselines`):

1. most solar, ``sum min(e_j, solar_j)`` with ``solar_j = min(surplus_j, high_j)``;
2. then the least grid cost, ``sum price_j * max(e_j - solar_j, 0)`` (the solar's export
   credit is the same for every schedule with that solar);
3. then, the canonical tie-break, the earliest energy: least ``sum rank_j * e_j``, where
   ``rank_j`` is the bucket's position in the window, buckets without data (``missing``)
   ranked before all others. A missing bucket has no surplus and the report skips it, so
   among equally priced buckets the energy goes to the gaps first: that is what the HiGHS
   vertex did on the bundled sample (a night with a gap in its off-peak hours), and the
   rule keeps the reports' every figure as recorded.

Without the minimum power (every ``e_j`` anywhere in ``[lower_j, upper_j]``) this is a
fractional knapsack with one sum constraint: fill each bucket's solar by rank, then each
bucket's grid room by (price, rank). Every unit has a distinct lexicographic value, so
that relaxation has exactly one optimum, and the greedy finds it. When that optimum breaks
the minimum power (a bucket charging below ``low_j`` that is not the last one charging), the
search branches on that bucket: it charges at least ``low_j``; or nothing; or it is the last
bucket charging (nothing after it). The three cover every schedule the real programme allows,
and each is again a box the greedy solves, so the search is exact: a node whose relaxation is
no better than the best schedule found is dropped, and the first schedule found at the end is
the optimum of all three stages. Most sessions need a handful of nodes (one per bucket at
sunrise or sunset whose surplus is below the minimum power).

Comparisons use the tolerances the MILP's stages use (solar and cost equal within 1e-9
relative), so both methods pick the same schedule where HiGHS reaches it; the property test
in tests/test_optimum_exact.py checks it against HiGHS. A search that exceeds
:data:`NODE_LIMIT` nodes returns None and the caller solves the MILP instead.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NODE_LIMIT", "ON_KWH", "Window", "ranks", "solve"]

ON_KWH = 1e-9
"""Energy in a bucket above which the charger counts as running (the command count's rule)."""
NODE_LIMIT = 20_000
"""Nodes searched before the MILP is asked instead: about half a second of search, what
HiGHS takes for such a session (never reached on the bundled year; 2 of the synthetic
year's 248 lone sessions need 4,000 to 20,000)."""
RELATIVE_TOLERANCE = 1e-9
"""Solar (and then cost) within this share of each other are equal, as in the MILP's stages."""

Key = tuple[float, float, float]
"""(-solar kWh, grid cost, sum of bucket rank * kWh): smaller is better, in that order."""
Bounds = tuple[tuple[float, ...], tuple[float, ...]]


@dataclass(frozen=True)
class Window:
    """One session's programme, per bucket of its window in time order."""

    low: tuple[float, ...]
    """kWh at the minimum power for the share of the bucket plugged in."""
    high: tuple[float, ...]
    """kWh at the highest level for that share."""
    solar: tuple[float, ...]
    """kWh the sun can give the car here: ``min(surplus, high)``."""
    price: tuple[float, ...]
    """Import price of a kWh from the grid."""
    need: float
    """kWh to deliver: the session's energy, or the window's maximum when it cannot."""
    can_fill: bool
    """The car gets full here (need below the window's maximum): the last bucket charging
    may then carry less than the minimum power."""
    rank: tuple[int, ...]
    """The tie-break's weight of a kWh in each bucket (:func:`ranks`)."""

    @property
    def size(self) -> int:
        return len(self.high)


def ranks(missing: tuple[bool, ...]) -> tuple[int, ...]:
    """Each bucket's tie-break weight: its position, the buckets without data first (both
    methods weigh a kWh by it, so the MILP's third stage and the search agree)."""
    size = len(missing)
    return tuple(j - size if gap else j for j, gap in enumerate(missing))


@dataclass(frozen=True)
class _Order:
    """The greedy's order: the buckets with sun by rank, then every bucket's grid room by
    (price, rank). Fixed per window, so sorted once for all the search's nodes."""

    solar: tuple[int, ...]
    grid: tuple[int, ...]

    @classmethod
    def of(cls, window: Window) -> _Order:
        sunny = sorted(
            (j for j in range(window.size) if window.solar[j] > 0), key=window.rank.__getitem__
        )
        grid = sorted(range(window.size), key=lambda j: (window.price[j], window.rank[j]))
        return cls(tuple(sunny), tuple(grid))


def key_of(window: Window, energy: list[float]) -> Key:
    """The lexicographic value of a schedule (see :data:`Key`)."""
    solar = cost = position = 0.0
    for e, sun, price, rank in zip(energy, window.solar, window.price, window.rank, strict=True):
        if e:  # most buckets of a window are empty: this is the search's inner loop
            if e <= sun:
                solar += e
            else:
                solar += sun
                cost += price * (e - sun)
            position += rank * e
    return -solar, cost, position


def better(a: Key, b: Key) -> bool:
    """``a`` strictly better than ``b``: solar, then cost, then the tie-break, each compared
    within :data:`RELATIVE_TOLERANCE` (what the MILP's pinned stages allow)."""
    for x, y in zip(a, b, strict=True):
        slack = RELATIVE_TOLERANCE * max(1.0, abs(x), abs(y))
        if x < y - slack:
            return True
        if x > y + slack:
            return False
    return False


def _relax(window: Window, order: _Order, bounds: Bounds) -> list[float] | None:
    """The unique optimum with every bucket anywhere between its bounds, or None if none."""
    lower, upper = bounds
    slack = 1e-12 * max(1.0, window.need)
    left = window.need - sum(lower)
    if left < -slack or sum(upper) < window.need - slack:
        return None
    energy = list(lower)
    sun = window.solar
    for j in order.solar:
        if left <= slack:
            return energy
        top = sun[j] if sun[j] < upper[j] else upper[j]
        take = top - energy[j]
        if take > 0:
            take = take if take < left else left
            energy[j] += take
            left -= take
    # Every bucket now holds all the sun it may take: the rest is grid, cheapest first.
    for j in order.grid:
        if left <= slack:
            return energy
        take = upper[j] - energy[j]
        if take > 0:
            take = take if take < left else left
            energy[j] += take
            left -= take
    return energy


def _violation(window: Window, energy: list[float]) -> int | None:
    """The first bucket charging below the minimum power that may not (not the last one
    charging of a car that gets full), or None when the schedule is one the charger can run."""
    running = [j for j, e in enumerate(energy) if e > ON_KWH]
    last = running[-1] if running else -1
    for j in running:
        if j == last and window.can_fill:
            continue
        if energy[j] < window.low[j] * (1 - 1e-12):
            return j
    return None


Child = tuple[Bounds, int | None]
"""A branch's bounds, and the bucket it emptied ("nothing" branches only)."""


def _alike(window: Window, first: int, later: int) -> bool:
    """Two buckets that differ only in time: no sun in either, the same price and bounds, and
    both with data or both without (so their ranks keep their time order)."""
    return (
        first < later
        and window.solar[first] == 0.0
        and window.solar[later] == 0.0
        and window.price[first] == window.price[later]
        and window.low[first] == window.low[later]
        and window.high[first] == window.high[later]
        and window.rank[first] - first == window.rank[later] - later
    )


def _branches(window: Window, bounds: Bounds, k: int, emptied: int | None) -> list[Child]:
    """Bucket ``k`` charges at least the minimum; or nothing; or is the last one charging.

    ``emptied``: the bucket this node's parent branched to nothing, if it did. When ``k`` is
    alike to it (:func:`_alike`), "``k`` at least the minimum" is left out: swapping the two
    buckets' energies maps each of its schedules onto one of the parent's own "at least the
    minimum" branch with the same solar and cost and earlier energy. Without this, each
    "nothing" walks the greedy's last partial bucket one bucket later through a cheap
    window's equally priced buckets, three nodes a step."""
    lower, upper = bounds
    nothing = list(upper)
    nothing[k] = 0.0
    out: list[Child] = [((lower, tuple(nothing)), k)]
    if emptied is None or not _alike(window, emptied, k):
        at_least = list(lower)
        at_least[k] = window.low[k]
        out.append(((tuple(at_least), upper), None))
    if window.can_fill and not any(lower[k + 1 :]):
        out.append(((lower, upper[: k + 1] + (0.0,) * (window.size - k - 1)), None))
    return out


def solve(window: Window, *, node_limit: int | None = None) -> list[float] | None:
    """The optimal schedule (kWh per bucket), or None when the search would exceed
    ``node_limit`` nodes (default :data:`NODE_LIMIT`; the caller then solves the MILP)."""
    limit = NODE_LIMIT if node_limit is None else node_limit
    if window.need <= 0:
        return [0.0] * window.size
    order = _Order.of(window)
    best: list[float] | None = None
    best_key: Key | None = None
    stack: list[tuple[Key, list[float], Bounds, int | None]] = []

    def push(bounds: Bounds, emptied: int | None) -> None:
        energy = _relax(window, order, bounds)
        if energy is None:
            return
        key = key_of(window, energy)
        if best_key is None or better(key, best_key):
            stack.append((key, energy, bounds, emptied))

    push((tuple(0.0 for _ in window.high), window.high), None)
    nodes = 0
    while stack:
        key, energy, bounds, emptied = stack.pop()
        if best_key is not None and not better(key, best_key):
            continue  # the incumbent improved since this node was pushed
        nodes += 1
        if nodes > limit:
            return None
        k = _violation(window, energy)
        if k is None:
            best, best_key = energy, key
            continue
        found = len(stack)
        for child, emptied_here in _branches(window, bounds, k, emptied):
            push(child, emptied_here)
        # Depth first, the most promising child on top: it finds a good incumbent soonest.
        children = stack[found:]
        children.sort(key=lambda node: node[0], reverse=True)
        stack[found:] = children
    return best
