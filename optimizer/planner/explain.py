"""What a solved plan expects, in words for the reason and as a small JSON for the inputs.

Reasons name exact times and energies from the plan itself ("sun from 11:00 covers 9.0 of
12.0 kWh; grid 01:00-02:15 for the rest"), so a decision can be checked against what
happened: the decision log keeps the sentence in ``reason`` and :func:`summary` in
``inputs["plan"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from optimizer.planner.slots import SlotPlan

if TYPE_CHECKING:  # problem.py imports scipy: the daemon loads it only when a plan is solved
    from optimizer.planner.problem import PlanResult

__all__ = ["expectation", "grid_runs", "next_change", "summary", "sun_from"]

SOLAR_SHOWN_KWH = 0.05
"""Solar or grid below this in a slot is rounding, not something the plan counts on."""
MAX_RUNS = 3


def _clock(when: datetime, zone: tzinfo) -> str:
    return when.astimezone(zone).strftime("%H:%M")


def sun_from(slots: SlotPlan, result: PlanResult, zone: tzinfo) -> str | None:
    """Local HH:MM of the first slot the plan charges from the sun ("now" for the first)."""
    for index, solar in enumerate(result.solar_kwh):
        if solar >= SOLAR_SHOWN_KWH:
            return "now" if index == 0 else _clock(slots.starts[index], zone)
    return None


def grid_runs(slots: SlotPlan, result: PlanResult, zone: tzinfo) -> list[str]:
    """``01:00-02:15``: the runs of slots that take grid energy, merged, in local time."""
    runs: list[tuple[datetime, datetime]] = []
    for index, grid in enumerate(result.grid_kwh):
        if grid < SOLAR_SHOWN_KWH:
            continue
        start, end = slots.starts[index], slots.end(index)
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return [f"{_clock(a, zone)}-{_clock(b, zone)}" for a, b in runs]


def _runs_text(runs: Sequence[str]) -> str:
    shown = ", ".join(runs[:MAX_RUNS])
    more = len(runs) - MAX_RUNS
    return shown + (f" and {more} more" if more > 0 else "")


def expectation(
    slots: SlotPlan, result: PlanResult, zone: tzinfo, *, need_kwh: float | None
) -> str:
    """The plan in one clause: where the energy is expected to come from."""
    solar = sum(result.solar_kwh)
    grid = sum(result.grid_kwh)
    sun = sun_from(slots, result, zone)
    runs = grid_runs(slots, result, zone)
    if need_kwh is None:
        if sun is None:
            return "no usable sun expected before " + _clock(slots.end(len(slots) - 1), zone)
        return f"sun from {sun} expected to give {solar:.1f} kWh"
    parts = []
    covered = min(solar, need_kwh)
    if sun is None:
        parts.append("no usable sun expected")
    elif covered >= need_kwh - SOLAR_SHOWN_KWH:
        parts.append(f"sun from {sun} covers all {need_kwh:.1f} kWh")
    else:
        parts.append(f"sun from {sun} covers {covered:.1f} of {need_kwh:.1f} kWh")
    if runs and grid >= SOLAR_SHOWN_KWH:
        rest = "for the rest" if sun is not None else f"for {need_kwh:.1f} kWh"
        parts.append(f"grid {_runs_text(runs)} {rest}")
    if result.unmet_kwh >= SOLAR_SHOWN_KWH:
        parts.append(f"{result.unmet_kwh:.1f} kWh cannot be delivered in time")
    return "; ".join(parts)


def next_change(slots: SlotPlan, result: PlanResult, zone: tzinfo) -> str | None:
    """``11:00 -> 16 A``: the plan's next level change after the first slot, if any."""
    first = result.amps[0] if result.amps else 0
    for index in range(1, len(result.amps)):
        if result.amps[index] != first:
            level = result.amps[index]
            if level == 0:
                what = "stop"
            elif first == 0:
                what = f"start at {level} A"
            else:
                what = f"{level} A"
            return f"{_clock(slots.starts[index], zone)} {what}"
    return None


def summary(
    slots: SlotPlan,
    result: PlanResult,
    zone: tzinfo,
    *,
    need_kwh: float | None,
    quantile: str,
) -> dict[str, Any]:
    """The plan's figures for the decision's inputs: small, rounded, no series."""
    return {
        "status": result.status,
        "need_kwh": None if need_kwh is None else round(need_kwh, 2),
        "solar_kwh": round(sum(result.solar_kwh), 2),
        "grid_kwh": round(sum(result.grid_kwh), 2),
        "unmet_kwh": round(result.unmet_kwh, 2),
        "sun_from": sun_from(slots, result, zone),
        "grid": grid_runs(slots, result, zone)[:MAX_RUNS],
        "until": _clock(slots.end(len(slots) - 1), zone) if len(slots) else None,
        "slots": len(slots),
        "commands": result.commands,
        "next": next_change(slots, result, zone),
        "quantile": quantile,
    }
