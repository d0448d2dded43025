"""The command-limited optimum (optimizer/simulate/command_limited.py) against brute force.

Every schedule of a few buckets is tried, with the replay's rules for commands (a start, a
stop, a level change, the last one losing a restart's share of its bucket) and for a full car
(it stops drawing; no command); the programme must find the same best solar per budget. Its
unlimited figure never beats the unconstrained optimum, and the pooled budget lies between
the per-session one and that optimum.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.limits import Limits
from optimizer.simulate import command_limited
from optimizer.simulate.baselines import optimal
from optimizer.simulate.command_limited import (
    UNIT_KWH,
    Ceiling,
    Programme,
    best_by_commands,
    ceiling,
    pooled,
)
from optimizer.simulate.series import figures
from tests.test_baselines import VOLTS
from tests.test_optimum_exact import one_session

RESTART = 0.5  # a restart's share kept, so restarted energies stay on the unit's grid


def replayed(prog: Programme, choice: Sequence[int], start: int = 0) -> tuple[float, int, float]:
    """(solar, commands, energy) of a schedule (off or a level per bucket) from the level
    ``start``, by the replay's rules."""
    level, sent, delivered, solar = start, 0, 0.0, 0.0
    for kwh, sun, wanted in zip(prog.energy, prog.surplus, choice, strict=False):
        if delivered >= prog.need - 1e-9:
            break  # full: the charger stays as it is, draws nothing, sends nothing
        restarted = False
        if wanted != level:
            sent += 1
            restarted = level != 0 and wanted != 0
            level = wanted
        if level:
            energy = kwh[level - 1] * (prog.restart_share if restarted else 1.0)
            took = min(energy, prog.need - delivered)
            delivered += took
            solar += min(took, sun)
    return solar, sent, delivered


def brute_force(prog: Programme, most: int) -> list[float]:
    """The best solar per budget over every schedule (off or a level per bucket)."""
    best = [-math.inf] * (most + 1)
    width = len(prog.energy[0])
    for choice in itertools.product(range(width + 1), repeat=len(prog.energy)):
        solar, sent, delivered = replayed(prog, choice)
        if delivered >= prog.need - 1e-9 and sent <= most:
            best[sent] = max(best[sent], solar)
    return list(itertools.accumulate(best, max))


@st.composite
def programmes(draw: st.DrawFn) -> Programme:
    n = draw(st.integers(1, 5))
    levels = sorted(draw(st.sets(st.integers(1, 20), min_size=1, max_size=3)))
    step = 4 * UNIT_KWH  # a restart (x 0.5) of a half-plugged bucket (x 0.5) stays on the grid
    shares = draw(st.lists(st.sampled_from([1.0, 1.0, 0.5]), min_size=n, max_size=n))
    energy = tuple(tuple(a * step * share for a in levels) for share in shares)
    surplus = tuple(draw(st.lists(st.integers(0, 40), min_size=n, max_size=n)))
    most_kwh = sum(row[-1] for row in energy)
    need_units = draw(st.integers(1, max(1, round(most_kwh / UNIT_KWH))))
    return Programme(
        energy=energy,
        surplus=tuple(s * UNIT_KWH for s in surplus),
        need=min(need_units * UNIT_KWH, most_kwh),
        restart_share=RESTART,
    )


@settings(max_examples=150, deadline=None)
@given(programmes(), st.integers(0, 4))
def test_the_programme_finds_what_trying_every_schedule_finds(prog: Programme, most: int) -> None:
    found = best_by_commands(prog, most)
    expected = brute_force(prog, most)
    for got, want in zip(found, expected, strict=True):
        if want == -math.inf:
            assert got == -math.inf
        else:
            assert got == pytest.approx(want, abs=1e-4)


def test_a_level_change_loses_its_restart_and_a_budget_buys_the_sun() -> None:
    # Sun of 0.36 kWh, none, then 0.72 kWh (6 A, then 12 A at 240 V); the car needs 1.08 kWh.
    prog = Programme(
        energy=((0.36, 0.72),) * 3,
        surplus=(0.36, 0.0, 0.72),
        need=1.08,
        restart_share=0.5,
    )
    best = best_by_commands(prog, 3)
    assert best[0] == -math.inf  # nothing charges without a command
    # One start: 6 A throughout, 0.36 + 0 + 0.36 of sun.
    assert best[1] == pytest.approx(0.72, abs=1e-6)
    # A change to 12 A in the third bucket loses half of it to the restart: no better.
    assert best[2] == pytest.approx(0.72, abs=1e-6)
    # A stop in the second bucket and a start at 12 A in the third: all the sun.
    assert best[3] == pytest.approx(1.08, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(one_session(), st.sampled_from([Limits(6, 32, 1), Limits(6, 16, 2)]))
def test_unlimited_commands_never_beat_the_optimum(series, limits: Limits) -> None:  # type: ignore[no-untyped-def]
    ev, _ = optimal(series, limits, VOLTS)
    best = figures(series, ev, commands=0).ev_solar_kwh
    found = ceiling(series, limits, VOLTS, most=6)
    assert found.unlimited() == pytest.approx(best, abs=1e-9)
    # Rounded down, the first and last buckets' energy and each restart's (up to 6), and the
    # need rounded up, over-count the filling bucket's solar by at most as many units.
    assert sum(max(row[-1], 0.0) for row in found.per_session) <= best + (3 + 6) * UNIT_KWH
    assert found.at(6) <= pooled(found, 6) <= sum(found.optimum) + 1e-9


def test_pooling_spends_the_budget_where_it_wins_most() -> None:
    # Two sessions: one wins 2 kWh with a second command, the other nothing.
    found = Ceiling(per_session=((0.0, 1.0, 3.0), (0.0, 5.0, 5.0)), optimum=(3.0, 5.0))
    assert found.at(1) == 6.0
    assert pooled(found, 1.5) == 8.0  # three commands: 2 + 1
    assert pooled(found, 1.0) == 6.0
    assert command_limited.pooled(found, 0.0) == 0.0
