"""Hypothesis profiles: ``ci`` for `make test`, ``soak`` for `make soak`.

`make test` has to finish in minutes on two shared cores, so a property whose examples are
expensive runs fewer of them there; `make soak` (``--hypothesis-profile soak``) runs ten times
as many of every property, so nothing a property proves is lost, only moved to the long run.
Deadlines are off in both: the machine is shared, and a slow example is not a wrong one.

A test states its count for the ``ci`` profile through :func:`examples`, which scales it with the
profile in use; a test that states no count takes the profile's own (100, or 1,000 in soak).
"""

from __future__ import annotations

import os
from typing import Final

from hypothesis import HealthCheck, settings

CI_EXAMPLES: Final = 100
SOAK_FACTOR: Final = 10

settings.register_profile(
    "ci",
    max_examples=CI_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "soak", parent=settings.get_profile("ci"), max_examples=CI_EXAMPLES * SOAK_FACTOR
)
# `--hypothesis-profile NAME` (the hypothesis pytest plugin) overrides this after conftest loads.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def examples(ci: int) -> int:
    """``ci`` examples under the ``ci`` profile, as many more under ``soak`` as its default has.

    Read when a test module is imported, which is after the hypothesis plugin has loaded the
    profile named on the command line.
    """
    return max(1, ci * settings.default.max_examples // CI_EXAMPLES)
