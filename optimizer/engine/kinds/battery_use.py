"""battery_use: turn green mode's "use battery for EV charging" on or off by conditions
(for example off below a home battery SoC, on when the battery is nearly full)."""

from __future__ import annotations

from optimizer.engine.decision import PolicyState
from optimizer.engine.kinds.common import Context, Outcome, set_battery
from optimizer.engine.rules import BatteryUse


def propose(policy: BatteryUse, ctx: Context, state: PolicyState, met: str) -> Outcome:
    return [set_battery(policy, ctx, policy.use_battery, met)], state
