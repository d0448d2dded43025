"""One gateway reading, checked against physics, and the surplus it gives (pure).

The gateway meters every few seconds, so its surplus is fresh where the cloud's bucket is 7.5 to
30 minutes old; but one reading is one reading. Before it moves a charger it must be physically
possible (no production far below zero, no consumption above what the site's breaker lets
through, meters that agree with each other) and, when it jumps further than anything in the
house explains since the last trusted reading, it waits for the next reading to confirm it.
An implausible value becomes None, which the engine already treats as unknown. The surplus
itself is made in ``optimizer/observe/gateway.py``, beside the cloud's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

__all__ = [
    "Checked",
    "GatewayReading",
    "PhysicsLimits",
    "check_reading",
]

# Microinverters draw a few watts at night and CTs have an offset: below this it is noise.
METER_NOISE_W = 50.0
# Two meters summed must agree within this (or a tenth of the flows, whichever is larger).
BALANCE_TOLERANCE_W = 300.0
# A step larger than this between readings (after the chargers' own change) is confirmed by the
# next reading before it counts: larger than any one household appliance switching.
MAX_UNEXPLAINED_STEP_W = 7000.0
# A jump is judged against a trusted reading at most this old; after a gap anything goes.
JUMP_WINDOW = timedelta(minutes=5)
# Without site.max_current: a 100 A main breaker, the common residential maximum.
DEFAULT_BREAKER_A = 100


@dataclass(frozen=True)
class GatewayReading:
    """What the gateway measured, in W (None: not metered or not trusted).

    ``net_w`` is the grid (positive: import); ``battery_w`` positive while the battery
    discharges. ``consumption_metered`` False: the gateway has no consumption CT (production
    only), so the house's load must come from elsewhere.
    """

    at: datetime
    production_w: float | None
    consumption_w: float | None
    net_w: float | None
    battery_w: float | None = None
    battery_soc_pct: float | None = None
    consumption_metered: bool = True
    phases: int = 1


@dataclass(frozen=True)
class PhysicsLimits:
    """What the site can physically do: the breaker bounds consumption and the grid."""

    max_site_w: float
    noise_w: float = METER_NOISE_W
    max_step_w: float = MAX_UNEXPLAINED_STEP_W

    @classmethod
    def for_site(cls, *, max_current_a: int | None, voltage_v: float, phases: int) -> PhysicsLimits:
        amps = max_current_a or DEFAULT_BREAKER_A
        return cls(max_site_w=amps * voltage_v * max(1, phases))


@dataclass(frozen=True)
class Checked:
    """A reading after the checks: what may be used, why parts were dropped, and whether it is
    a jump still waiting for a second reading (then ``reading`` is the last trusted one)."""

    reading: GatewayReading
    problems: tuple[str, ...] = ()
    pending: GatewayReading | None = None


def check_reading(
    reading: GatewayReading,
    *,
    limits: PhysicsLimits,
    trusted: GatewayReading | None = None,
    pending: GatewayReading | None = None,
    charger_change_w: float = 0.0,
) -> Checked:
    """``reading`` with impossible values made None, then held if it jumps unexplained.

    ``trusted`` is the last reading that passed; ``pending`` a jump waiting for confirmation:
    a reading close to it confirms it (both pass), one close to ``trusted`` shows the jump was
    a glitch. ``charger_change_w`` is how much the chargers' draw changed since ``trusted``
    (the service commanded it, so it explains that much of a consumption step).
    """
    fixed, problems = _plausible(reading, limits)
    if trusted is None or fixed.at - trusted.at > JUMP_WINDOW:
        return Checked(fixed, problems)
    if pending is not None and not _jump(pending, fixed, limits, 0.0):
        return Checked(fixed, problems)  # two readings agree: the step is real
    if _jump(trusted, fixed, limits, charger_change_w):
        why = (
            f"a step to PV {_kw(fixed.production_w)}, house {_kw(fixed.consumption_w)} from "
            f"PV {_kw(trusted.production_w)}, house {_kw(trusted.consumption_w)} that nothing "
            "explains: waiting for the next reading to confirm it"
        )
        return Checked(trusted, (*problems, why), pending=fixed)
    return Checked(fixed, problems)


def _plausible(
    reading: GatewayReading, limits: PhysicsLimits
) -> tuple[GatewayReading, tuple[str, ...]]:
    problems: list[str] = []
    production, consumption, net = reading.production_w, reading.consumption_w, reading.net_w
    if production is not None:
        if production < -limits.noise_w:
            problems.append(f"negative production {production:.0f} W")
            production = None
        else:
            production = max(0.0, production)
    if consumption is not None:
        if consumption < -limits.noise_w or consumption > limits.max_site_w:
            problems.append(
                f"consumption {consumption:.0f} W outside 0-{limits.max_site_w:.0f} W "
                "(the site's breaker)"
            )
            consumption = None
        else:
            consumption = max(0.0, consumption)
    if net is not None and abs(net) > limits.max_site_w:
        problems.append(f"grid {net:.0f} W beyond the site's breaker ({limits.max_site_w:.0f} W)")
        net = None
    if production is not None and consumption is not None and net is not None:
        # Batteries sit behind the production CT on some installations and beside it on
        # others: the meters agree if the balance holds with or without the battery's flow.
        gaps = [consumption - (production + net)]
        if reading.battery_w:
            gaps.append(gaps[0] - reading.battery_w)
        gap = min(gaps, key=abs)
        tolerance = max(BALANCE_TOLERANCE_W, 0.1 * max(production, consumption))
        if abs(gap) > tolerance:
            problems.append(
                f"the meters disagree by {gap:.0f} W (consumption against production + grid)"
            )
            consumption = None
    fixed = replace(reading, production_w=production, consumption_w=consumption, net_w=net)
    return fixed, tuple(problems)


def _jump(before: GatewayReading, after: GatewayReading, limits: PhysicsLimits, ev: float) -> bool:
    pv = _step(before.production_w, after.production_w)
    house = max(0.0, _step(before.consumption_w, after.consumption_w) - abs(ev))
    return max(pv, house) > limits.max_step_w


def _step(before: float | None, after: float | None) -> float:
    return 0.0 if before is None or after is None else abs(after - before)


def _kw(watts: float | None) -> str:
    return "?" if watts is None else f"{watts / 1000:.1f} kW"
