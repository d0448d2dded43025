"""The fault soak in `make test`: one fixed seed, 10,000 ticks (`make soak` runs more and
longer). What is checked and why is in tests/soak.py and docs/reliability.md."""

from __future__ import annotations

import pytest

from tests.soak import FAULT_KINDS, SoakFigures, check, soak
from tests.summary import report

CI_SEEDS = (20251201,)
CI_TICKS = 10_000


@pytest.mark.parametrize("seed", CI_SEEDS)
async def test_the_service_survives_ten_thousand_ticks_of_faults(seed: int) -> None:
    figures = await soak(seed, CI_TICKS)
    report(figures.lines())
    assert figures.ticks == CI_TICKS
    assert set(figures.faults) == set(FAULT_KINDS)  # every kind of fault was injected
    # The policies acted: the checks had writes to watch. (Fewer than before 2026: with the
    # commanded level remembered, a status without a level no longer restarts the session.)
    assert figures.commands_sent > 30
    assert figures.problems  # and the faults showed: some ticks failed and were survived
    assert check(figures) == []


def test_check_names_every_broken_guarantee() -> None:
    """The soak's verdict can fail: each kind of breakage is reported."""
    bad = SoakFigures(
        seed=0,
        ticks=5000,
        internal_errors=1,
        duplicates=2,
        level_violations=["start at 40 A"],
        slots_lost=["slot-1"],
        unlogged_ticks=3,
        decisions_made=10,
        decisions_logged=7,
        max_requests_per_hour=700,
        longest_auth_run=40,
    )
    broken = check(bad)
    assert len(broken) == 8
    assert any("never injected" in line for line in broken)
    assert check(SoakFigures(seed=0, ticks=10, decisions_made=4, decisions_logged=4)) == []
