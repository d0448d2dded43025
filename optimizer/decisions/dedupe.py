"""Which holds the decision log keeps: a log that grows with what happens, not with time.

A service that ticks every 30 s and mostly holds would write thousands of identical rows a
day. A hold is recorded when it says something new about its charger and target: another
policy, other parameters, another reason, or other *material* inputs than the last recorded
row; and at least every heartbeat, so a gap in the log means the service was not running.
Everything else (commands, failures, refusals, a user's own change) is always recorded.

Pure functions: the service keeps the last recorded :class:`Fingerprint` per charger and
target and asks :func:`should_record` for each decision.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from optimizer.engine.decision import Decision

DEFAULT_HEARTBEAT = timedelta(minutes=15)
# Inputs that change with the clock rather than with the world: never a reason to record.
CLOCK_KEYS = frozenset({"now", "local_time", "sun_elevation_deg", "session_kwh"})
# Ages: how old a reading is does not count, whether there is one does (``status_age_s``
# appears while the status is a kept, stale one: the start and the end of that are news).
AGE_SUFFIX = "_age_s"
# Readings that drift every tick are compared by band: power in 500 W steps (the smallest
# start or stop threshold worth telling apart), energy in 1 kWh, percentages in 10 points.
BANDS = {"_w": 500.0, "_kwh": 1.0, "_pct": 10.0}
# Outcomes of a hold that did nothing; a hold that failed is always recorded.
QUIET_OUTCOMES = frozenset({"noop", "dry_run"})
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")
# Sentences among the inputs (the engine's "what next" hint quotes the current surplus, "now
# 0.8 kW"): compared like the reason, numbers masked.
SENTENCE_KEYS = frozenset({"next"})


@dataclass(frozen=True)
class Fingerprint:
    """What a recorded row said about its charger and target, and when it was recorded."""

    policy: str
    action: str
    params: str
    reason: str
    inputs: str
    at: datetime

    @classmethod
    def of(cls, decision: Decision, at: datetime) -> Fingerprint:
        return cls(
            policy=decision.policy,
            action=decision.action,
            params=_canonical(decision.params),
            reason=reason_shape(decision.reason),
            inputs=_canonical(material(decision.inputs)),
            at=at,
        )

    def same_as(self, other: Fingerprint) -> bool:
        """Says the same thing (whenever each was recorded)."""
        return (self.policy, self.action, self.params, self.reason, self.inputs) == (
            other.policy,
            other.action,
            other.params,
            other.reason,
            other.inputs,
        )


def should_record(
    decision: Decision,
    outcome: str,
    *,
    last: Fingerprint | None,
    now: datetime,
    heartbeat: timedelta,
) -> bool:
    """Whether this decision gets a row, given the last recorded one of its charger and target.

    ``heartbeat`` of zero records every hold (the log of older versions).
    """
    if decision.action != "hold" or outcome not in QUIET_OUTCOMES or last is None:
        return True
    if now - last.at >= heartbeat:
        return True
    return not Fingerprint.of(decision, now).same_as(last)


Said = tuple[str, str, str, str]


def said(decision: Decision) -> Said:
    """What a simulation's log tells a hold apart by: its policy, action, parameters and
    reason with the numbers masked; not its inputs, and no heartbeat.

    A replay's figures are in its report and plots, and a heartbeat shows a live service was
    running, which a replay always is; so a simulated hold says something new only when it
    says another thing (optimizer/simulate/daylog.py). That is also what lets a logged replay
    reuse its settled ticks and run in two processes like an unlogged one (issue 16): a
    reused tick repeats the decisions it reuses, words and all.
    """
    params = decision.params
    return (
        decision.policy,
        decision.action,
        _canonical(params) if params else "{}",
        reason_shape(decision.reason),
    )


@lru_cache(maxsize=4096)  # a replay's holds say the same few sentences tick after tick
def reason_shape(reason: str) -> str:
    """The reason with its numbers masked: "surplus 0.9 kW ..." and "surplus 1.0 kW ..." say
    the same; whether the number matters is for the banded inputs to tell."""
    return _NUMBER.sub("#", " ".join(reason.split()))


def material(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs that say what the world is like: clock readings dropped, ages reduced to
    whether there is a reading, drifting readings banded (see :data:`BANDS`); plugged,
    charging, amps, mode, tariff window, price, limits, plans and the policy's own facts as
    they are."""
    return {
        key: (value is not None) if key.endswith(AGE_SUFFIX) else _material_value(key, value)
        for key, value in inputs.items()
        if key not in CLOCK_KEYS
    }


def _material_value(key: str, value: Any) -> Any:
    # Every decision of every charger passes here each tick: the plain JSON kinds are told
    # apart by their exact type first (an ABC isinstance check costs several times more).
    kind = type(value)
    if kind is str:
        return reason_shape(value) if key in SENTENCE_KEYS else value
    if value is None or kind is bool:
        return value
    if kind is dict:
        return material(value)
    if key in SENTENCE_KEYS and isinstance(value, str):
        return reason_shape(value)
    if isinstance(value, Mapping):
        return material(value)
    if isinstance(value, list | tuple):
        return [_material_value(key, item) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        for suffix, band in BANDS.items():
            if key.endswith(suffix):
                return math.floor(value / band) if math.isfinite(value) else None
    return value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
