"""The charging plan over the slots, in two stages (docs/planner.md, "The model").

**Stage 1, the sun's energy: a mixed-integer programme solved with HiGHS.** Per slot ``k`` of
length ``h_k`` hours:

* ``pick[k, l]`` in {0, 1}, at most one per slot: the slot charges at level ``l`` of
  :func:`levels` (none: off). Every level is one the charger takes (its minimum to the lower
  of its maximum, the breaker and the rule's ``max_amps``, on its granularity steps);
* ``draw_k <= sum_l level_l * kW_per_A * h_k * pick[k, l]`` (the car may draw less once
  full) and ``solar_k <= min(draw_k, surplus_k)``, the surplus at the rule's quantile;
* ``change_k >= |pick[k, l] - pick[k-1, l]|`` for every level: any start, stop or level change
  is one command (a MANUAL level change restarts the session); ``start_k >= on_k - on_{k-1}``;
  the level charging now stands before slot 0, so carrying on costs nothing;
* the grid gives at most half the minimum level's power in a slot, as excess_solar's stop
  threshold lets it, with a departure plan too: the plan's grid energy is stage 2's (late,
  in the cheapest slots), never a level held above a rising morning sun (that bought grid
  early which the noon sun would have given, and made the programme slower); with a plan,
  only the slots of :func:`sun_window` may charge.

Objective (minimised, in kWh-equivalents): each grid kWh costs :data:`GRID_KWH` plus up to
:data:`PRICE_SPREAD` by its price's place between the horizon's cheapest and dearest slot;
each solar kWh is worth :data:`SOLAR_KWH`; each command costs ``change_cost_kwh``, each start
``restart_cost_kwh`` on top. The choice per level keeps the relaxation tight, which is what
makes it solve in tens of milliseconds; the need is deliberately not a constraint here (with
it, the discrete levels make a knapsack that took HiGHS 0.2-2 s to prove).

**Stage 2, the rest of a departure plan** (``grid: cheapest``): what the sun's plan leaves
short goes first to idle slots with a weak sun (:data:`SUN_FLOOR_KWH`; at the level that
takes all of it), then to the cheapest slots at full power (idle ones first, the latest on a
tie); what even that cannot deliver is unmet. Energy beyond the need is dropped (the car is full).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.optimize import Bounds, LinearConstraint, milp  # type: ignore[import-untyped]
from scipy.sparse import coo_matrix  # type: ignore[import-untyped]

from optimizer.planner.slots import SlotPlan

__all__ = ["GridUse", "PlanInput", "PlanResult", "solve"]

GridUse = Literal["cheapest", "never"]
Floats = npt.NDArray[np.float64]

GRID_KWH = 1.0
"""A grid kWh, the unit: with a plan the energy is fixed, so every solar kWh saves one."""
PRICE_SPREAD = 0.2
"""The dearest slot's grid kWh costs this much more than the cheapest's: enough to place the
grid energy by price, small beside a solar kWh so the sun still comes first."""
LATE_EPS = 1e-4
"""Per slot nearer the departure, a grid kWh costs this much less: on a price tie the grid
waits (a late sun can still take its place at the next plan)."""
SOLAR_KWH = 1.0
"""Without a plan nothing else rewards charging: each solar kWh in the car is worth this."""
GRID_SHARE_OF_MIN = 0.5
"""In the sun's plan (stage 1) the grid may give at most this share of the minimum level's power."""
TIME_LIMIT_S = 0.5
MIP_GAP = 0.01
OFFSET_KWH = 10.0


@dataclass(frozen=True)
class PlanInput:
    """Everything one solve needs; levels in A, energy in kWh."""

    slots: SlotPlan
    low: int
    high: int
    step: int
    kw_per_amp: float
    now_amps: int  # the level charging now, 0 when not charging
    need_kwh: float | None  # None: no departure plan, solar only
    grid: GridUse = "cheapest"
    change_cost_kwh: float = 0.3
    restart_cost_kwh: float = 0.3
    guard_h: float = 0.0  # the rule's margin: the guard goes to full power once within it
    # Commands the session has left of its budget (``method: dp``: the session's count in the
    # engine's memory against ``dp.SESSION_BUDGET``); None: not known, a budget per solve.
    commands_left: int | None = None

    def full_kwh(self, index: int) -> float:
        return self.high * self.kw_per_amp * self.slots.hours[index]


@dataclass(frozen=True)
class PlanResult:
    """A solved plan: the level per slot (0: off), its solar and grid, and how it was found."""

    status: Literal["optimal", "feasible", "failed"]
    amps: tuple[int, ...]
    energy_kwh: tuple[float, ...]
    solar_kwh: tuple[float, ...]
    unmet_kwh: float
    commands: int
    objective: float | None
    solve_ms: float
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    @property
    def grid_kwh(self) -> tuple[float, ...]:
        return tuple(max(0.0, e - s) for e, s in zip(self.energy_kwh, self.solar_kwh, strict=True))


MAX_LEVELS = 10
"""Levels the programme chooses among (the lowest, the highest, the one charging now and
the ones the surplus pays for near now, then evenly spread): every one a level the charger
takes. A choice per level and slot keeps the programme's relaxation tight (a change is
exactly "some level's choice differs"), which is what makes it solve in milliseconds."""


def levels(data: PlanInput) -> tuple[int, ...]:
    """The levels the plan may use, ascending, all on the charger's steps."""
    allowed = list(range(data.low, data.high + 1, data.step))
    if len(allowed) <= MAX_LEVELS:
        return tuple(allowed)
    chosen = {allowed[0], allowed[-1]}
    if data.now_amps in allowed:
        chosen.add(data.now_amps)
    for k in range(min(len(data.slots), 4)):
        hours = data.slots.hours[k]
        if hours <= 0:
            continue
        paid = data.slots.surplus_kwh[k] / (hours * data.kw_per_amp)
        below = [a for a in allowed if a <= paid]
        if below:
            chosen.add(below[-1])
    spread = MAX_LEVELS - len(chosen)
    if spread > 0:
        for i in range(spread + 2):
            chosen.add(allowed[round(i * (len(allowed) - 1) / (spread + 1))])
    return tuple(sorted(chosen))


WINDOW_MARGIN = 1.25
"""The strong-sun slots must hold this many times the need in capped expected solar for the
weak ones to be left out: room for the programme to choose, and for a forecast a little too
bright."""


def sun_window(data: PlanInput) -> list[bool]:
    """The slots the sun's energy may be planned in when there is a need: those whose
    expected surplus pays for the minimum level on its own, when together (each capped at
    full power) they cover the need with :data:`WINDOW_MARGIN`; else every slot.

    Why: the programme plans the sun without a cap at the need (a cap makes it choose among
    countless equal combinations of slots, slow to prove optimal), and the need is met from
    its first slots on. Left alone it would count on the first weak morning sun, part of it
    grid, where strong sun later would do; leaving weak slots out when the strong ones are
    enough keeps the sun's energy where the sun is."""
    k = len(data.slots)
    need = data.need_kwh
    if need is None or k == 0:
        return [True] * k
    strong = [
        data.slots.surplus_kwh[i] >= data.low * data.kw_per_amp * data.slots.hours[i]
        for i in range(k)
    ]
    enough = sum(min(data.slots.surplus_kwh[i], data.full_kwh(i)) for i in range(k) if strong[i])
    return strong if enough >= need * WINDOW_MARGIN else [True] * k


def holdable(data: PlanInput, lineup: tuple[int, ...]) -> list[list[int]]:
    """Per slot, the indices into ``lineup`` of the levels stage 1 may choose there: none
    outside :func:`sun_window`, else those whose energy the slot's expected surplus plus the
    grid allowance (:data:`GRID_SHARE_OF_MIN` of the minimum level) can carry.

    Why: a level above that can never be picked (its grid part would break the cap), so
    offering it only makes the programme bigger; at night no slot holds any level and the
    plan needs no programme at all (:func:`solve` skips HiGHS then)."""
    allowed = sun_window(data)
    per_amp = data.kw_per_amp
    found: list[list[int]] = []
    for k in range(len(data.slots)):
        if not allowed[k]:
            found.append([])
            continue
        hours = data.slots.hours[k]
        room = max(0.0, data.slots.surplus_kwh[k]) + GRID_SHARE_OF_MIN * data.low * per_amp * hours
        found.append([j for j, amps in enumerate(lineup) if amps * per_amp * hours <= room + 1e-9])
    return found


class _Model:
    """Named variable blocks over the slots and sparse constraint rows.

    Columns: ``pick[k, l]`` for the levels slot k can hold (:func:`holdable`; none: off),
    then per slot ``solar``, ``change``, ``start`` and ``draw``, then ``unmet`` and the
    objective's constant."""

    def __init__(self, data: PlanInput, lineup: tuple[int, ...], held: list[list[int]]) -> None:
        self.data = data
        self.levels = lineup
        self.held = held
        self.k = len(data.slots)
        self.first: list[int] = []
        at = 0
        for choices in held:
            self.first.append(at)
            at += len(choices)
        self.column = [
            {j: self.first[k] + i for i, j in enumerate(choices)} for k, choices in enumerate(held)
        ]
        self.base = at
        self.n = self.base + 4 * self.k + 2
        self.unmet = self.n - 2
        self.offset = self.n - 1
        self.lower = np.zeros(self.n)
        self.upper = np.zeros(self.n)
        self.integral = np.zeros(self.n)
        self.cost = np.zeros(self.n)
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.lo: list[float] = []
        self.hi: list[float] = []

    def picks(self, k: int) -> dict[int, int]:
        """Level index -> column of slot ``k``'s choices."""
        return self.column[k]

    def solar(self, k: int) -> int:
        return self.base + k

    def change(self, k: int) -> int:
        return self.base + self.k + k

    def start(self, k: int) -> int:
        return self.base + 2 * self.k + k

    def draw(self, k: int) -> int:
        return self.base + 3 * self.k + k

    def row(self, terms: list[tuple[int, float]], lo: float, hi: float) -> None:
        index = len(self.lo)
        for col, val in terms:
            self.rows.append(index)
            self.cols.append(col)
            self.vals.append(val)
        self.lo.append(lo)
        self.hi.append(hi)

    def energy_terms(self, k: int, scale: float = 1.0) -> list[tuple[int, float]]:
        per_amp = self.data.kw_per_amp * self.data.slots.hours[k] * scale
        return [(col, self.levels[j] * per_amp) for j, col in self.picks(k).items()]

    # --- one builder per concern ---------------------------------------------------------------

    def add_levels(self) -> None:
        for k in range(self.k):
            cols = list(self.picks(k).values())
            for col in cols:
                self.upper[col], self.integral[col] = 1.0, 1
            if len(cols) > 1:
                self.row([(col, 1.0) for col in cols], -np.inf, 1.0)

    def add_solar(self) -> None:
        d = self.data
        for k in range(self.k):
            solar = self.solar(k)
            draw = self.draw(k)
            if not self.picks(k):
                continue  # off: no draw, no solar (both stay fixed at 0)
            self.upper[solar] = max(0.0, d.slots.surplus_kwh[k])
            self.upper[draw] = np.inf
            # the car draws up to the level's energy (less once it is full), solar within it
            self.row([(draw, 1.0), *self.energy_terms(k, -1.0)], -np.inf, 0.0)
            self.row([(solar, 1.0), (draw, -1.0)], -np.inf, 0.0)
            # level energy - solar_k <= half the minimum level's energy in the slot, with a
            # departure plan too: its grid energy is stage 2's (late, cheapest), never a
            # level held above a rising morning sun
            cap = GRID_SHARE_OF_MIN * d.low * d.kw_per_amp * d.slots.hours[k]
            self.row([*self.energy_terms(k), (solar, -1.0)], -np.inf, cap)

    def add_commands(self) -> None:
        d = self.data
        was_on = 1.0 if d.now_amps > 0 else 0.0
        now_index = self.levels.index(d.now_amps) if d.now_amps in self.levels else None
        for k in range(self.k):
            change, start = self.change(k), self.start(k)
            self.upper[change] = self.upper[start] = 1.0
            here = self.picks(k)
            if k == 0:
                for j, col in here.items():
                    now = 1.0 if j == now_index else 0.0
                    # change >= pick - before and >= before - pick, before a constant
                    self.row([(change, 1.0), (col, -1.0)], -now, np.inf)
                    self.row([(change, 1.0), (col, 1.0)], now, np.inf)
                if was_on and (now_index is None or now_index not in here):
                    self.lower[change] = 1.0  # the level now cannot be held in this slot
                earlier: list[tuple[int, float]] = []
            else:
                before = self.picks(k - 1)
                for j in here.keys() | before.keys():
                    now_col, before_col = here.get(j), before.get(j)
                    # change >= pick_k - pick_{k-1} and >= pick_{k-1} - pick_k, for the
                    # levels either slot can hold (a level neither holds never changes)
                    if now_col is not None:
                        terms = [(change, 1.0), (now_col, -1.0)]
                        self.row(
                            terms + ([] if before_col is None else [(before_col, 1.0)]), 0.0, np.inf
                        )
                    if before_col is not None:
                        terms = [(change, 1.0), (before_col, -1.0)]
                        self.row(terms + ([] if now_col is None else [(now_col, 1.0)]), 0.0, np.inf)
                earlier = [(col, 1.0) for col in before.values()]
            picks = [(col, -1.0) for col in here.values()]
            if picks:  # start_k >= on_k - on_{k-1} (with nothing to hold it cannot start)
                self.row([(start, 1.0), *picks, *earlier], -was_on if k == 0 else 0.0, np.inf)
            self.cost[change] += d.change_cost_kwh
            self.cost[start] += d.restart_cost_kwh

    def add_objective(self) -> None:
        d = self.data
        known = [p for p in d.slots.price if p is not None and math.isfinite(p)]
        cheap, dear = (min(known), max(known)) if known else (0.0, 0.0)
        spread = dear - cheap
        for k in range(self.k):
            price = d.slots.price[k]
            if spread <= 0:
                place = 0.0
            elif price is None or not math.isfinite(price):
                place = 1.0  # an unknown price is taken as the dearest
            else:
                place = (price - cheap) / spread
            grid = GRID_KWH + PRICE_SPREAD * place + LATE_EPS * (self.k - k)
            for col, val in self.energy_terms(k):  # grid_k = e_k - solar_k
                self.cost[col] += grid * val
            self.cost[self.solar(k)] -= grid + SOLAR_KWH

    def add_offset(self) -> None:
        """A constant in the objective (a column fixed at 1): the MIP gap is relative to the
        objective, and a plan that is all solar costs only its few commands, so without a
        floor the solver would chase 1e-4 kWh-equivalents. The floor makes the gap mean
        "within :data:`MIP_GAP` of the plan's energy"."""
        self.lower[self.offset] = self.upper[self.offset] = 1.0
        self.cost[self.offset] = OFFSET_KWH

    def build(self) -> None:
        self.add_offset()
        self.add_levels()
        self.add_solar()
        self.add_commands()
        self.add_objective()

    def constraints(self) -> LinearConstraint:
        matrix = coo_matrix(
            (self.vals, (self.rows, self.cols)), shape=(len(self.lo), self.n)
        ).tocsr()
        return LinearConstraint(matrix, np.array(self.lo), np.array(self.hi))

    def level_at(self, x: Floats, k: int) -> int:
        picks = self.picks(k)
        if not picks:
            return 0
        best = max(picks, key=lambda j: x[picks[j]])
        return self.levels[best] if x[picks[best]] > 0.5 else 0


def _failed(k: int, elapsed: float, message: str) -> PlanResult:
    return PlanResult("failed", (0,) * k, (0.0,) * k, (0.0,) * k, 0.0, 0, None, elapsed, message)


def _sun_plan(data: PlanInput) -> tuple[list[int], list[float], str, float] | str:
    """Stage 1, the programme: levels per slot that follow the expected surplus with the
    command costs, the grid giving at most half the minimum level; (levels, solar kWh,
    status, objective) or the solver's message when it found nothing. When no slot can hold
    any level (a night, a horizon outside the sun's window) the plan is all off without
    asking HiGHS: only a stop, when charging now."""
    lineup = levels(data)
    held = holdable(data, lineup)
    k = len(data.slots)
    if not any(held):
        stop = data.change_cost_kwh if data.now_amps > 0 else 0.0
        return [0] * k, [0.0] * k, "optimal", stop
    model = _Model(data, lineup, held)
    model.build()
    from optimizer.simulate.baselines import quiet_stdout  # noqa: PLC0415 - shared fd guard

    with quiet_stdout():
        result = milp(
            model.cost,
            constraints=model.constraints(),
            integrality=model.integral,
            bounds=Bounds(model.lower, model.upper),
            options={"time_limit": TIME_LIMIT_S, "mip_rel_gap": MIP_GAP},
        )
    if result.x is None:
        return str(getattr(result, "message", "no solution"))
    x: Floats = np.asarray(result.x, dtype=float)
    amps = [model.level_at(x, k) for k in range(model.k)]
    solar = [max(0.0, float(x[model.solar(k)])) for k in range(model.k)]
    status = "optimal" if result.status == 0 else "feasible"
    return amps, solar, status, float(result.fun) - OFFSET_KWH


SUN_FLOOR_KWH = 0.3
"""Per hour of slot: an idle slot whose expected surplus is above this takes stage 2's grid
before any dark one (at the level that takes all its sun, :func:`_sun_level`). The energy
is bought either way; bought beside a weak evening or morning sun, that sun goes into the car
too (the optimum does the same). Below it the sun is not worth a start."""


def _grid_order(data: PlanInput, amps: list[int]) -> list[int]:
    """Slots for grid energy: idle ones before ones the sun already uses (a change there is
    a command more), sunny ones before dark ones (:data:`SUN_FLOOR_KWH`), then by price
    (unknown last), then the latest first (a late sun may still take their place at the next
    plan)."""
    prices = data.slots.price

    sunny = data.slots.surplus_kwh

    def rank(k: int) -> tuple[bool, bool, bool, float, int]:
        price = prices[k]
        unknown = price is None or not math.isfinite(price)
        dark = sunny[k] <= SUN_FLOOR_KWH * data.slots.hours[k]
        return (amps[k] > 0, dark, unknown, 0.0 if unknown else float(price or 0.0), -k)

    return sorted(range(len(amps)), key=rank)


def _sun_level(data: PlanInput, k: int) -> int:
    """The lowest level that takes all of a weak sun's expected surplus in slot ``k``: the
    grid then only tops it up to the charger's minimum (or the step above the sun)."""
    paid = data.slots.surplus_kwh[k] / (data.kw_per_amp * data.slots.hours[k])
    level = data.low
    while level < paid and level + data.step <= data.high:
        level += data.step
    return level


def _with_grid(data: PlanInput, amps: list[int], need: float) -> tuple[list[int], float]:
    """Stage 2: the energy the sun leaves short of the need, first beside a weak sun at the
    level that takes it all, then in the cheapest slots (``grid: cheapest``) at one level
    that gives just the rest (:func:`_evened`); what even full power cannot deliver is
    returned as unmet."""
    slots, per_amp = data.slots, data.kw_per_amp
    planned = sum(a * per_amp * h for a, h in zip(amps, slots.hours, strict=True))
    short = need - planned
    added: dict[int, int] = {}  # slot raised to full power -> its level before
    beside_sun: list[int] = []  # idle slots given only the level that takes their weak sun
    for k in _grid_order(data, amps):
        if short <= 1e-6:
            break
        if amps[k] >= data.high:
            continue
        level = data.high
        if amps[k] == 0 and slots.surplus_kwh[k] > SUN_FLOOR_KWH * slots.hours[k]:
            level = _sun_level(data, k)
            beside_sun.append(k)
        else:
            added[k] = amps[k]
        short -= (level - amps[k]) * per_amp * slots.hours[k]
        amps[k] = level
    # Those weak-sun slots come first and took only their sun's level; when every other
    # slot at full power still leaves the need short, they go to full power as well (a
    # feasible plan was left unmet: 7 h, 21 kWh, 6-14 A, tests/test_planner.py).
    for k in beside_sun:
        if short <= 1e-6:
            break
        added[k] = amps[k]
        short -= (data.high - amps[k]) * per_amp * slots.hours[k]
        amps[k] = data.high
    if short < -1e-6 and added:
        amps = _evened(data, amps, added, -short)
    return amps, max(0.0, short)


def _evened(data: PlanInput, amps: list[int], added: dict[int, int], over: float) -> list[int]:
    """The slots raised to full power, at the lowest common level that still gives their
    energy less ``over`` (what the last of them overshoots the need by), and keeps the
    guard away (:func:`_guarded`).

    Why: at full power the run overshoots the need by up to a slot, and the car, filled
    early from the grid, leaves a later sun no room (a morning before the unplug, a daytime
    plan's last sunny slots). One level for the whole run costs no command more (lowering
    only its last slot was a level change in most sessions). A run under way keeps its level
    while that gives enough: made again each tick, the rounding would change it by a step."""
    per = [data.kw_per_amp * data.slots.hours[k] for k in range(len(amps))]
    wanted = sum((amps[k] - added[k]) * per[k] for k in added) - over
    level = data.low
    while level + data.step <= data.high:
        trial = list(amps)
        for k, before in added.items():
            trial[k] = max(before, level)
        enough = sum(max(0, level - added[k]) * per[k] for k in added) >= wanted - 1e-9
        if enough and _guarded(data, trial, per, max(added)):
            break
        level += data.step
    on_steps = (data.now_amps - data.low) % data.step == 0  # a level this charger can be set to
    if 0 in added and on_steps and level <= data.now_amps <= data.high:
        level = data.now_amps  # the run goes on at its level: a command less per tick
    for k, before in added.items():
        amps[k] = max(before, level)
    return amps


def _guarded(data: PlanInput, amps: list[int], per: list[float], last: int) -> bool:
    """At the start of every slot up to ``last`` (the run's end) the plan's energy from
    there on fits at full power before the departure less the guard's margin, so the guard
    does not take over the run (it would go to full power: a command, and the car full
    before a later sun). Near the departure the guard fires whatever the run did."""
    full = data.high * data.kw_per_amp
    rest = left = 0.0
    for k in range(len(amps) - 1, -1, -1):
        rest += amps[k] * per[k]
        left += data.slots.hours[k]
        if k <= last and rest / full > left - data.guard_h + 1e-9:
            return False
    return True


def _until_full(data: PlanInput, amps: list[int], need: float) -> list[float]:
    """Energy per slot, none once the need is met (the car stops drawing by itself)."""
    energy: list[float] = []
    left = need
    for k, level in enumerate(amps):
        e = min(max(left, 0.0), level * data.kw_per_amp * data.slots.hours[k])
        energy.append(e)
        left -= e
    return energy


def solve(data: PlanInput) -> PlanResult:
    """The plan for ``data`` in two stages (docs/planner.md, "The model"): the programme
    places the sun's energy with the command costs; the need's rest goes to the cheapest
    slots at full power. A failed status (no solution in time) carries all-zero levels."""
    started = time.perf_counter()
    k = len(data.slots)
    if k == 0 or data.high < data.low:
        return _failed(k, 0.0, "no slot or no level")
    found = _sun_plan(data)
    if isinstance(found, str):
        return _failed(k, (time.perf_counter() - started) * 1000, found)
    amps, solar, status, objective = found
    need = data.need_kwh
    unmet = 0.0
    if need is not None and data.grid == "cheapest":
        amps, unmet = _with_grid(data, amps, need)
    energy = (
        _until_full(data, amps, need)
        if need is not None
        else [a * data.kw_per_amp * h for a, h in zip(amps, data.slots.hours, strict=True)]
    )
    if need is not None and data.grid == "never":
        unmet = max(0.0, need - sum(energy))
    # the sun in each charged slot, stage 2's too (its grid beside a weak sun takes that sun)
    solar = [min(e, max(0.0, sur)) for e, sur in zip(energy, data.slots.surplus_kwh, strict=True)]
    levels = [
        a if e > 0 or i == 0 else 0 for i, (a, e) in enumerate(zip(amps, energy, strict=True))
    ]
    commands = sum(1 for a, b in zip([data.now_amps, *levels], levels, strict=False) if a != b)
    return PlanResult(
        status="optimal" if status == "optimal" else "feasible",
        amps=tuple(levels),
        energy_kwh=tuple(energy),
        solar_kwh=tuple(solar),
        unmet_kwh=unmet,
        commands=commands,
        objective=objective,
        solve_ms=(time.perf_counter() - started) * 1000,
    )
