"""charge_mode: switch the charger between MANUAL, SCHEDULED and GREEN by conditions
(for example SCHEDULED overnight so the charger's own schedule runs, GREEN by day)."""

from __future__ import annotations

from optimizer.engine.decision import PolicyState
from optimizer.engine.kinds.common import Context, Outcome, set_mode
from optimizer.engine.rules import ChargeModePolicy


def propose(policy: ChargeModePolicy, ctx: Context, state: PolicyState, met: str) -> Outcome:
    return [set_mode(policy, ctx, policy.mode, met)], state
