"""One module per policy kind; :func:`propose` sends each policy to its own.

Every kind is ``propose(policy, ctx, state, met) -> (proposals, new state)``: pure, with the
policy's timers passed in and returned, and ``met`` the text of its met conditions.
"""

from __future__ import annotations

from optimizer.engine.decision import PolicyState
from optimizer.engine.kinds import (
    battery_use,
    charge_mode,
    excess_solar,
    green_mode,
    schedule_sync,
    solar_plan,
    tariff_window,
)
from optimizer.engine.kinds.common import Context, Outcome
from optimizer.engine.rules import (
    BatteryUse,
    ChargeModePolicy,
    ExcessSolar,
    GreenMode,
    PolicyBase,
    ScheduleSync,
    SolarPlan,
    TariffWindow,
)
from optimizer.limits import Limits

__all__ = ["Context", "Limits", "Outcome", "propose"]


def propose(policy: PolicyBase, ctx: Context, state: PolicyState, met: str) -> Outcome:
    match policy:
        case ExcessSolar():
            return excess_solar.propose(policy, ctx, state, met)
        case GreenMode():
            return green_mode.propose(policy, ctx, state, met)
        case TariffWindow():
            return tariff_window.propose(policy, ctx, state, met)
        case BatteryUse():
            return battery_use.propose(policy, ctx, state, met)
        case ChargeModePolicy():
            return charge_mode.propose(policy, ctx, state, met)
        case ScheduleSync():
            return schedule_sync.propose(policy, ctx, state, met)
        case SolarPlan():
            return solar_plan.propose(policy, ctx, state, met)
    return [], state  # a kind this engine does not know proposes nothing
