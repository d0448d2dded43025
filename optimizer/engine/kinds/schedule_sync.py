"""schedule_sync: keep the charger's own schedule slots in line with the tariff windows, so the
car still charges in them when this service is down.

For every time range of every window (that applies this month) one enabled CUSTOM slot with
the same start, end, days and level should exist. Slots are matched exactly first, then by
their times (and fixed with a ``set``/``enable`` edit); anything unmatched is added. Nothing
is ever deleted; with ``disable_others`` enabled CUSTOM slots that match no window are
disabled. OFF_PEAK, the utility's own slot, is left alone.

Edits are JSON-ready dicts the actuator turns into ``schedule_edit`` values: ``{"op": "add",
"start_time", "end_time", "days", "charging_level"}``, ``{"op": "set", "slot_id", ...changed
fields}``, ``{"op": "enable"|"disable", "slot_id"}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optimizer.engine.decision import PolicyState
from optimizer.engine.kinds.common import Context, Outcome, proposal
from optimizer.engine.rules import ScheduleSync
from optimizer.enlighten.models import ScheduleSlot
from optimizer.enlighten.schedule_edit import CUSTOM, format_days, slot_summary
from optimizer.tariffs import Tariffs
from optimizer.timespec import TimeRange, parse_clock

DAY_MINUTES = 24 * 60


@dataclass(frozen=True)
class Wanted:
    """One slot the windows call for."""

    window: str
    start: str
    end: str
    days: tuple[int, ...]
    level: int

    def describe(self) -> str:
        return f"{self.window} {self.start}-{self.end} {format_days(self.days)} at {self.level} A"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _slot_times(r: TimeRange) -> tuple[str, str]:
    """A slot cannot end at 24:00 or start and end at once: 00:00-24:00 becomes 00:00-23:59."""
    if r.start == 0 and r.end == DAY_MINUTES:
        return "00:00", "23:59"
    return _hhmm(r.start), _hhmm(r.end % DAY_MINUTES)


def wanted_slots(names: Sequence[str], tariffs: Tariffs, month: int, level: int) -> list[Wanted]:
    result = []
    for name in names:
        window = tariffs.windows[name]
        if month not in window.months:
            continue
        for r in window.times:
            start, end = _slot_times(r)
            result.append(Wanted(name, start, end, tuple(sorted(window.days)), level))
    return result


def _times(slot: ScheduleSlot) -> tuple[int, int] | None:
    try:
        return parse_clock(slot.start_time or ""), parse_clock(slot.end_time or "")
    except ValueError:
        return None


def _same_times(slot: ScheduleSlot, want: Wanted) -> bool:
    return _times(slot) == (parse_clock(want.start), parse_clock(want.end))


def _exact(slot: ScheduleSlot, want: Wanted) -> bool:
    return (
        _same_times(slot, want)
        and tuple(sorted(slot.days)) == want.days
        and slot.charging_level == want.level
        and slot.enabled
    )


def _fix(slot: ScheduleSlot, want: Wanted) -> list[dict[str, Any]]:
    """Edits that turn a slot with the right times into the wanted one."""
    changes: dict[str, Any] = {}
    if tuple(sorted(slot.days)) != want.days:
        changes["days"] = list(want.days)
    if slot.charging_level != want.level:
        changes["charging_level"] = want.level
    edits: list[dict[str, Any]] = []
    if changes:
        edits.append({"op": "set", "slot_id": slot.id, **changes})
    if not slot.enabled:
        edits.append({"op": "enable", "slot_id": slot.id})
    return edits


def plan_edits(
    slots: Sequence[ScheduleSlot], wanted: Sequence[Wanted], *, disable_others: bool
) -> tuple[list[dict[str, Any]], list[str]]:
    """(edits, one phrase per edit) that bring ``slots`` in line with ``wanted``."""
    customs = [s for s in slots if s.schedule_type == CUSTOM]
    used: set[int] = set()
    pending: list[Wanted] = []
    for want in wanted:  # exact matches first, so a near match never steals one
        match = next((i for i, s in enumerate(customs) if i not in used and _exact(s, want)), None)
        if match is None:
            pending.append(want)
        else:
            used.add(match)
    edits: list[dict[str, Any]] = []
    phrases: list[str] = []
    for want in pending:
        match = next(
            (i for i, s in enumerate(customs) if i not in used and _same_times(s, want)), None
        )
        if match is None:
            edits.append(
                {
                    "op": "add",
                    "start_time": want.start,
                    "end_time": want.end,
                    "days": list(want.days),
                    "charging_level": want.level,
                }
            )
            phrases.append(f"add {want.describe()}")
            continue
        used.add(match)
        edits.extend(_fix(customs[match], want))
        phrases.append(f"fix {slot_summary(customs[match])} to {want.describe()}")
    if disable_others:
        for i, slot in enumerate(customs):
            if i not in used and slot.enabled:
                edits.append({"op": "disable", "slot_id": slot.id})
                phrases.append(f"disable {slot_summary(slot)} (matches no window)")
    return edits, phrases


def propose(policy: ScheduleSync, ctx: Context, state: PolicyState, met: str) -> Outcome:
    slots = ctx.charger.schedule_slots
    if slots is None:
        return [], state
    tariffs = ctx.tariffs
    missing = [n for n in policy.windows if tariffs is None or n not in tariffs.windows]
    if tariffs is None or missing:
        reason = f"tariff window {', '.join(missing)} is not in the config: schedules left alone"
        return [proposal(policy, "schedules", "hold", reason)], state
    level = ctx.limits.down(policy.amps or ctx.charger.max_amps)
    wanted = wanted_slots(policy.windows, tariffs, ctx.local(ctx.now).month, level)
    edits, phrases = plan_edits(slots, wanted, disable_others=policy.disable_others)
    if not edits:
        # Claims the target (a lower-priority sync cannot undo it); no decision is logged.
        reason = f"schedules match {', '.join(policy.windows)}"
        return [proposal(policy, "schedules", "hold", reason, in_line=True)], state
    reason = f"schedules for {', '.join(policy.windows)}: " + "; ".join(phrases)
    return [
        proposal(
            policy,
            "schedules",
            "patch_schedules",
            reason,
            {"edits": edits},
            wanted=[w.describe() for w in wanted],
            when=met,
        )
    ], state
