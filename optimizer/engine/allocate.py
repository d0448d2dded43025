"""Site allocation: the surplus and the breaker are shared among a site's chargers.

Each charger's policies are arbitrated on their own first; a solar-only policy sizes its level
from the whole site surplus (``observe/surplus.py``: PV minus the house's own load, with every
EV's draw added back, so the figure is *gross* of what the chargers draw). With two chargers
both would take all of it, so this step, pure and linear in the number of chargers, decides
what each may have:

1. Claims: what each charger's decision would have it draw (a start or level change: its amps;
   a hold while charging: its present level; anything else: nothing). Decisions the engine may
   not change (a fault, a user override, a user's own change seen in the status) are fixed:
   they count against the breaker first and are never cut.
2. Solar: claims of solar policies (``excess_solar``, not driven by a departure plan) share
   the surplus those policies may use (never below zero). When their sum fits the surplus plus
   one minimum level, nothing changes (so a policy's own hysteresis, which may keep the minimum
   through a short dip, is respected); otherwise they are shared. A ``min_pv`` claim has a
   floor: its minimum level is its own to draw from the grid whatever the sun does (that is
   what the variant promises), so it is granted first and only what it draws above its
   minimum comes out of the surplus; the site then draws the larger of the surplus and the
   floors, not the surplus once per charger.
3. Breaker: every adjustable claim (grid-fed ones too: tariff windows, departure plans, fixed
   levels) shares the site limit (``site.max_current``) left after the fixed ones.

Sharing (:func:`share`) is in priority order (the charger's ``site.charger_priority`` from the
config, then the winning rule's ``priority``, then the order the chargers are listed in): a
priority group is served before the next gets anything. Within a group, chargers are admitted
in order while the budget still pays each its minimum level (one car at 6 A is better than two
below it: a charger whose minimum does not fit gets nothing and the rest goes on to the next),
then the admitted are topped up one step each in turn (fair share) up to what they asked for.
When the surplus does not pay even the first solar claim's minimum, that claim keeps its
minimum (the policy's own stop threshold decides when it stops): hence "surplus plus one
minimum level".

A site with one charger is left exactly as its policies decided (their own limits already hold
the site limit and the surplus).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

__all__ = ["RULE", "Claim", "Grant", "allocate", "share"]

RULE = "priority, then fair share in steps; min-level aware"


@dataclass(frozen=True)
class Claim:
    """What one charger's arbitrated decision would draw, and the levels it may take."""

    sn: str
    # (the charger's priority from the config, its winning rule's priority): higher first.
    priority: tuple[int, int]
    wanted_amps: int  # 0: the decision draws nothing
    low: int  # lowest level (A)
    high: int  # highest level (A)
    step: int  # granularity (A)
    watts_per_amp: float
    solar: bool = False  # a solar policy: bounded by the surplus too
    floor: bool = False  # min_pv: its minimum level is drawn whatever the surplus
    fixed: bool = False  # the engine may not change it (safety, override, observed)


@dataclass(frozen=True)
class Grant:
    """What one charger may draw after allocation, and which budget bounded it."""

    sn: str
    amps: int
    bound: str | None = None  # "surplus" or "site limit" when the grant is below the claim


def allocate(
    claims: Sequence[Claim], *, surplus_w: float | None, site_max_amps: int | None
) -> list[Grant]:
    """Grants in the order of ``claims`` (which is the stable order: the snapshot's)."""
    caps = {c.sn: c.wanted_amps for c in claims}
    bound: dict[str, str] = {}
    solar = [c for c in claims if c.solar and not c.fixed and c.wanted_amps > 0]
    pool = max(0.0, surplus_w or 0.0)
    solar_w = sum(c.wanted_amps * c.watts_per_amp for c in solar)
    floors = sum(c.low * c.watts_per_amp for c in solar if c.floor and c.wanted_amps >= c.low)
    slack = solar[0].low * solar[0].watts_per_amp if solar and not floors else 0.0
    if solar and solar_w > max(pool, floors) + slack:
        granted = share(solar, pool, by_watts=True, keep_first=True)
        for claim in solar:
            if granted[claim.sn] < caps[claim.sn]:
                bound[claim.sn] = "surplus"
            caps[claim.sn] = granted[claim.sn]
    if site_max_amps is not None:
        fixed = sum(c.wanted_amps for c in claims if c.fixed)
        movable = [_capped(c, caps[c.sn]) for c in claims if not c.fixed and caps[c.sn] > 0]
        if sum(c.wanted_amps for c in movable) > site_max_amps - fixed:
            granted = share(movable, max(0, site_max_amps - fixed), by_watts=False)
            for claim in movable:
                if granted[claim.sn] < caps[claim.sn]:
                    bound[claim.sn] = "site limit"
                caps[claim.sn] = granted[claim.sn]
    return [Grant(c.sn, caps[c.sn], bound.get(c.sn)) for c in claims]


def _capped(claim: Claim, amps: int) -> Claim:
    """The claim as the breaker sees it: the breaker is safety, so no floor survives it."""
    return replace(claim, wanted_amps=amps, floor=False)


def share(
    claims: Sequence[Claim], budget: float, *, by_watts: bool, keep_first: bool = False
) -> dict[str, int]:
    """``budget`` (W or A) shared by priority, then admission by minimum, then fair steps.

    ``keep_first``: when no claim's minimum fits at all, the first keeps its minimum (the
    "one minimum level" a solar policy may draw beyond the surplus). Claims with a ``floor``
    get their minimum before anything is shared, whether the budget pays it or not.
    """
    order = sorted(
        range(len(claims)), key=lambda i: (-claims[i].priority[0], -claims[i].priority[1], i)
    )
    granted = {c.sn: 0 for c in claims}
    left = budget
    for claim in claims:
        if claim.floor and claim.wanted_amps >= claim.low:
            granted[claim.sn] = claim.low
            left -= claim.low * claim.watts_per_amp if by_watts else float(claim.low)

    def cost(claim: Claim, amps: int) -> float:
        return amps * claim.watts_per_amp if by_watts else float(amps)

    start = 0
    while start < len(order):
        priority = claims[order[start]].priority
        end = start
        while end < len(order) and claims[order[end]].priority == priority:
            end += 1
        group = [claims[i] for i in order[start:end]]
        admitted: list[Claim] = []
        for claim in group:
            if granted[claim.sn]:  # a floor, granted above
                admitted.append(claim)
            elif claim.wanted_amps >= claim.low and cost(claim, claim.low) <= left + 1e-9:
                admitted.append(claim)
                granted[claim.sn] = claim.low
                left -= cost(claim, claim.low)
        left = _fill(admitted, granted, left, cost)
        start = end
    if keep_first and not any(granted.values()) and order:
        first = claims[order[0]]
        if first.wanted_amps >= first.low:
            granted[first.sn] = first.low
    return granted


def _fill(
    admitted: list[Claim],
    granted: dict[str, int],
    left: float,
    cost: Callable[[Claim, int], float],
) -> float:
    """Round robin, one step each, up to each claim's wish, while the budget lasts; returns
    what is left of it."""
    moved = True
    while moved:
        moved = False
        for claim in admitted:
            more = granted[claim.sn] + claim.step
            if more > min(claim.wanted_amps, claim.high):
                continue
            extra = cost(claim, more) - cost(claim, granted[claim.sn])
            if extra <= left + 1e-9:
                granted[claim.sn] = more
                left -= extra
                moved = True
    return left
