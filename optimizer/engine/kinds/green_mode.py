"""green_mode: hand solar following to the charger's own GREEN mode while the conditions hold.

GREEN ignores amps levels, so while it is (or is about to be) the mode the engine sends no
level or start/stop at all (see ``evaluate``); this kind only sets the mode and, when the rule
says so, green mode's battery support.
"""

from __future__ import annotations

from optimizer.engine.decision import PolicyState
from optimizer.engine.kinds.common import Context, Outcome, set_battery, set_mode
from optimizer.engine.rules import GreenMode
from optimizer.enlighten.models import ChargeMode


def propose(policy: GreenMode, ctx: Context, state: PolicyState, met: str) -> Outcome:
    proposals = [set_mode(policy, ctx, ChargeMode.GREEN_CHARGING, met)]
    if policy.use_battery is not None:
        proposals.append(set_battery(policy, ctx, policy.use_battery, met))
    return proposals, state
