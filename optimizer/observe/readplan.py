"""How often the slow reads may run so that an account stays under its request budget.

The account's budget (``enlighten.budget_per_hour``, 2026 reference section 10) is shared by
every site and charger of the account. Per tick a site costs one status read (all its chargers
in one reply), and every charger adds its slow reads (summary, charge mode, green battery
setting, schedules, charger config) at their lifetimes. At the default lifetimes that is about
5 requests per hour per charger (the settings counted at their shorter lifetime, in the mode
where they act), so the slow reads alone reach the budget at about 60 chargers.

The rule (docs/operations.md, "Cache lifetimes that stretch"):

* ``usable = budget * READ_SHARE``: the rest is left for writes, the reads a write makes due
  again, logins and retries;
* ``fixed = sites * (3600 / poll + surplus reads)``: the status every tick and each site's
  surplus source (lifetime energy every quarter hour, the power sample when used) are never
  stretched: the status is what every decision starts from, the surplus what solar rules use;
* ``slow = sum over slow reads of 3600 / lifetime``, per charger (and per site for the battery
  and the feature flags);
* ``stretch = max(1, slow / (usable - fixed))``, at most ``MAX_STRETCH``: every slow lifetime
  is multiplied by it, so the slow reads together fit in what the status reads leave.

When even the status reads do not fit (``fixed >= usable``), the slow reads are stretched as
far as allowed and the status reads are the last to give: the account's limiter holds back the
ticks over the budget (``optimizer/enlighten/ratelimit.py``) and :attr:`ReadPlan.min_poll_s`
says which poll interval would fit. The function is pure so it can be checked on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

__all__ = ["MAX_STRETCH", "READ_SHARE", "ReadPlan", "plan_reads"]

HOUR_S = 3600.0
# The part of the budget planned for reads; a quarter stays free for writes, re-reads after
# them, logins and retries (a tick with a write costs about four more requests).
READ_SHARE = 0.75
# A slow read is never stretched past this factor (a mode read every 10 min becomes every
# 40 h at most): beyond it the account has too many chargers for one budget and must shard.
MAX_STRETCH = 240.0
SLACK = 1e-6  # requests/h: float rounding, not a request


@dataclass(frozen=True)
class ReadPlan:
    """The figures behind one stretch, for the log, `evopt status` and the tests."""

    stretch: float  # every slow lifetime times this (1: as configured)
    usable_per_hour: float  # the share of the budget planned for reads
    fixed_per_hour: float  # status and surplus reads, never stretched
    slow_per_hour: float  # the slow reads at their configured lifetimes
    planned_per_hour: float  # fixed plus the slow reads after the stretch
    min_poll_s: float | None  # a poll that would fit the status reads; None: the poll fits

    @property
    def fits(self) -> bool:
        return self.planned_per_hour <= self.usable_per_hour + SLACK


def _per_hour(lifetimes: Mapping[str, timedelta]) -> float:
    return sum(HOUR_S / ttl.total_seconds() for ttl in lifetimes.values())


def plan_reads(
    *,
    chargers: int,
    sites: int,
    poll_s: float,
    budget_per_hour: int,
    per_charger: Mapping[str, timedelta],
    per_site: Mapping[str, timedelta],
    surplus_per_site_per_hour: float,
) -> ReadPlan:
    """The stretch of the slow lifetimes for ``chargers`` on ``sites`` of one account.

    ``per_charger`` and ``per_site`` are the slow reads' configured lifetimes; the surplus
    reads of a site come in ``surplus_per_site_per_hour`` (they are not stretched).
    """
    if poll_s <= 0 or budget_per_hour < 1:
        raise ValueError(
            f"poll_s and budget_per_hour must be positive, got {poll_s} and {budget_per_hour}"
        )
    sites = max(1, sites)
    usable = budget_per_hour * READ_SHARE
    fixed = sites * (HOUR_S / poll_s + surplus_per_site_per_hour)
    slow = max(0, chargers) * _per_hour(per_charger) + sites * _per_hour(per_site)
    room = usable - fixed
    stretch = MAX_STRETCH if room <= 0 else min(MAX_STRETCH, max(1.0, slow / room))
    min_poll = None
    if fixed + slow / stretch > usable + SLACK:
        # The slow reads at their longest; what is left of the usable share for the status.
        left = usable - slow / stretch - sites * surplus_per_site_per_hour
        min_poll = sites * HOUR_S / left if left > 0 else float("inf")
    return ReadPlan(
        stretch=stretch,
        usable_per_hour=usable,
        fixed_per_hour=fixed,
        slow_per_hour=slow,
        planned_per_hour=fixed + slow / stretch,
        min_poll_s=min_poll,
    )
