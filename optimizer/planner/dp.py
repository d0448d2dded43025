"""The planner's ``method: dp``: each tick, the command-limited dynamic programme on the slots.

Why: against the command-limited optimum (:mod:`optimizer.simulate.command_limited`, issue
15's ceiling) the two-stage plan (:mod:`optimizer.planner.problem`: a MILP for the sun, then
a heuristic for the grid) loses 8-10 points of the optimum's solar even with a perfect
forecast: its structure, not the forecast, is what loses. This solves the same programme the
ceiling solves, exactly (up to the energy's grid), on the planner's own slots and forecast:
the surplus at the rule's quantile, the levels of :func:`~optimizer.planner.problem.levels`,
the level charging now as the starting state, the plan's remaining need (by the ready-by,
where the slots end), a command costing the rule's ``change_cost_kwh`` of solar, and a grid
kWh costing a little more in a dear slot than a cheap one (a tie-break, at most
:data:`~optimizer.planner.problem.PRICE_SPREAD` of a solar kWh). The caller applies its first
slot, as with the MILP. Without a departure plan there is no need to meet, and the MILP's
solar-only plan stays (:func:`solve` hands it over).
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta

from optimizer.planner import problem
from optimizer.planner.problem import PlanInput, PlanResult
from optimizer.simulate.command_limited import Forward, Options, Programme, forward, schedule

__all__ = [
    "FAR_FLOOR",
    "HEDGE_KWH",
    "MOST",
    "OVER_KWH",
    "SESSION_BUDGET",
    "UNIT_KWH",
    "commands_left",
    "solve",
]

UNIT_KWH = 0.05
"""The energy's grid: coarser than the ceiling's 0.01 kWh so a solve stays under 50 ms of CPU
(median 25 ms on 60 synthetic plans, against 50 at 0.025 kWh with 6 commands); each slot's
energy rounds down to it (a plan can only over-deliver, and is made again at the next tick
from the energy really delivered). Measured no worse: docs/planner.md "Fifth pass"."""
MOST = 4
"""Commands the programme counts up to in what is left of a session (each costs
``change_cost_kwh``); the bar's own 4, and the states' count is the solve's cost."""
SESSION_BUDGET = 4
"""Commands a session may send per started day from its plug-in to its ready-by (issue 15's
bar is 4 a session on average): each solve knows what is left (``PlanInput.commands_left``,
:func:`commands_left` of the engine's count since plug-in), and a command past it costs
:data:`OVER_KWH` more."""
OVER_KWH = 0.5
"""What a command past the session's budget costs on top of ``change_cost_kwh``: a soft
bound, so a session that spent its budget still stops before a better sun (a hard one kept
a level charging from the grid through Seattle's weekends)."""
SURE_H = 1.0
"""Hours ahead the programme counts on the rule's quantile; the forecast's p10 after them, but
at least :data:`FAR_FLOOR` of the quantile."""
FAR_FLOOR = 0.5
"""Past :data:`SURE_H`, the surplus counted is at least this share of the rule's quantile:
Seattle's p10 is a fifth of its p50 and less, so counting it alone the programme saw no better
sun ahead and filled the car from a weak morning sun and the grid before a sunny weekend
(docs/planner.md "Sixth pass"); where the p10 is over half the p50 (Phoenix) nothing changes."""
HEDGE_KWH = 0.3
"""A grid kWh in the first slot costs this much more solar than one in the last (linear
between): the grid waits as late as the need allows, so sun that comes above the p10 the
programme counts on displaces grid rather than being lost (the hedge the MILP's late grid
gives). Above :data:`~optimizer.planner.problem.PRICE_SPREAD`, so lateness outweighs the
price's tie-break. Only on the grid that sun could displace: while the car's rest after the
move is under the sun it could still take (the p90; full power past the forecast's end), none
on the rest (an evening's grid before a night has no sun to wait for). Measured:
docs/planner.md "Fifth pass" (0.1-1.0 tried, 0.25-0.3 best), "Eighth pass" (the part that sun
could displace)."""
RESTART_S = 30.0
"""A level change restarts the session: this long of its slot charges nothing."""


def _hedge(data: PlanInput, hedge: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per slot, the hedge on a grid kWh (``hedge`` in the first slot, linearly down to
    nothing in the last) and the sun the car could still take after the slot: the p90, each
    slot's at most full power, and full power past the forecast's end (unknown sun). The
    programme charges the hedge only on the grid the car's rest could have taken from that
    sun (:class:`~optimizer.simulate.command_limited.Options`)."""
    slots = data.slots
    k = len(slots)
    weights = tuple(hedge * (k - 1 - i) / (k - 1) if k > 1 else 0.0 for i in range(k))
    ends = slots.forecast_ends
    later: list[float] = []
    total = 0.0
    for i in range(k - 1, -1, -1):
        later.append(total)
        full = data.full_kwh(i)
        known = ends is not None and slots.end(i) <= ends
        total += min(max(0.0, slots.high_kwh[i]), full) if known else full
    return weights, tuple(reversed(later))


def _sunny(data: PlanInput, index: int) -> bool:
    """Whether slot ``index`` has a sun the grid beside it would carry into the car: its grid
    is then priced as the cheapest slot's, as the MILP's second stage buys its grid beside a
    weak sun first (the energy is needed anyway, the sun is the bar). Where it is not, the
    price's tie-break kept an evening's weak sun out of the car at the peak price
    (docs/planner.md "Eighth pass")."""
    return data.slots.surplus_kwh[index] > problem.SUN_FLOOR_KWH * data.slots.hours[index]


def _penalty(data: PlanInput) -> tuple[float, ...]:
    """Per slot, what a grid kWh costs beyond the solar it displaces: up to
    :data:`~optimizer.planner.problem.PRICE_SPREAD` by the price's place between the
    horizon's cheapest and dearest
    slot (unknown: the dearest; with a sun, :func:`_sunny`, the cheapest), plus a hair per
    slot earlier (on a tie the grid waits: a later sun may still take its place at the next
    plan). The hedge is apart
    (:func:`_hedge`): it depends on the car's rest, so on the programme's state."""
    known = [p for p in data.slots.price if p is not None and math.isfinite(p)]
    cheap, dear = (min(known), max(known)) if known else (0.0, 0.0)
    spread = dear - cheap
    k = len(data.slots)
    out: list[float] = []
    for index, price in enumerate(data.slots.price):
        if spread <= 0 or _sunny(data, index):
            place = 0.0
        elif price is None or not math.isfinite(price):
            place = 1.0
        else:
            place = (price - cheap) / spread
        out.append(problem.PRICE_SPREAD * place + problem.LATE_EPS * (k - index))
    return tuple(out)


def _surplus(data: PlanInput, sure_h: float | None, floor: float = 0.0) -> tuple[float, ...]:
    """The surplus the programme counts on per slot: the rule's quantile for the slots that
    start within ``sure_h`` hours of now, the forecast's p10 after them but at least ``floor``
    of the quantile (None: the quantile throughout). Why: the DP trusts the sun still to come
    as much as a perfect forecast would; counting the cautious band past the near hours keeps
    the grid late, the hedge the MILP's second stage gives, and the floor keeps a band as wide
    as Seattle's from hiding the sun ahead altogether."""
    slots = data.slots
    first = slots.starts[0]
    out: list[float] = []
    for start, mid, low in zip(slots.starts, slots.surplus_kwh, slots.low_kwh, strict=True):
        near = sure_h is None or (start - first).total_seconds() < sure_h * 3600
        out.append(max(0.0, mid if near else max(low, floor * mid)))
    return tuple(out)


def commands_left(since: datetime, ready_by: datetime | None, used: int) -> int:
    """What a session plugged in at ``since`` has left of its budget after ``used`` commands:
    :data:`SESSION_BUDGET` per started day from the plug-in to the ready-by (a weekend's sun
    on two days takes a start and a stop on each)."""
    days = 1 if ready_by is None else max(1, math.ceil((ready_by - since) / timedelta(days=1)))
    return max(0, SESSION_BUDGET * days - used)


def _best(
    found: Forward, change_cost: float, left: int | None, over: float
) -> tuple[list[float], int]:
    """Per commands count the schedule's value less its commands' cost (``over`` more for
    each past the ``left`` of the session's budget), and the best count (the fewest commands
    on a tie)."""
    budget = len(found.done) if left is None else max(0, left)
    scores = [
        float(v) - change_cost * c - over * max(0, c - budget) for c, v in enumerate(found.done)
    ]
    return scores, max(range(len(scores)), key=lambda c: (scores[c], -c))


def solve(
    data: PlanInput,
    *,
    most: int = MOST,
    unit: float = UNIT_KWH,
    sure_h: float | None = SURE_H,
    hedge: float = HEDGE_KWH,
    floor: float = FAR_FLOOR,
    over: float = OVER_KWH,
) -> PlanResult:
    """The plan over ``data.slots`` that meets the need with the most solar less its
    commands' cost (module docstring); the MILP's plan without a need, or when no schedule
    with at most ``most`` commands meets it (the guard still covers the departure)."""
    started = time.perf_counter()
    need = data.need_kwh
    k = len(data.slots)
    if need is None or data.grid != "cheapest" or k == 0 or data.high < data.low:
        return problem.solve(data)
    lineup = problem.levels(data)
    hours = data.slots.hours
    prog = Programme(
        energy=tuple(tuple(a * data.kw_per_amp * h for a in lineup) for h in hours),
        surplus=_surplus(data, sure_h, floor),
        need=need,
        restart_share=1.0,
    )
    start = lineup.index(data.now_amps) + 1 if data.now_amps in lineup else 0
    weights, later = _hedge(data, hedge)
    options = Options(
        unit=unit,
        start=start,
        restart=tuple(max(0.0, 1 - RESTART_S / (h * 3600)) if h > 0 else 0.0 for h in hours),
        penalty=_penalty(data),
        hedge=weights,
        later=later,
        trace=True,
    )
    found = forward(prog, most, options)
    if found is None:
        return problem.solve(data)
    scores, best = _best(found, data.change_cost_kwh, data.commands_left, over)
    if not math.isfinite(scores[best]):
        return problem.solve(data)
    picked = schedule(found, best)
    amps = [lineup[i - 1] if i else 0 for i in picked]
    if len(amps) < k:  # the car is full: it stays at its level, drawing nothing
        amps += [amps[-1] if amps else 0] * (k - len(amps))
    energy = problem._until_full(data, amps, need)  # one rule for a full car
    solar = [min(e, max(0.0, s)) for e, s in zip(energy, data.slots.surplus_kwh, strict=True)]
    commands = sum(1 for a, b in zip([data.now_amps, *amps], amps, strict=False) if a != b)
    return PlanResult(
        status="optimal",
        amps=tuple(amps),
        energy_kwh=tuple(energy),
        solar_kwh=tuple(solar),
        unmet_kwh=max(0.0, need - sum(energy)),
        commands=commands,
        objective=-scores[best],
        solve_ms=(time.perf_counter() - started) * 1000,
    )
