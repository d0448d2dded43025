"""A picture of one real day from the decision log: `evopt log plot --day DATE`.

Everything drawn comes from the decisions themselves (what the engine saw and chose), so the
picture answers "what happened and why" without the cloud: the surplus it read, the amps the
charger reported and the amps last commanded, each command as a marker, and the policy in
control as coloured bands. Times are the site's local times. Drawing shares the simulation
plot's pieces (optimizer.simulate.plotkit): gaps, bands by key, one merged legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
from matplotlib import colormaps
from matplotlib.dates import date2num
from matplotlib.figure import Figure

from optimizer.decisions.review import DecisionRow
from optimizer.simulate.plotkit import merged_legend, shade_bands, with_gaps

__all__ = ["DayPoint", "day_bounds", "day_points", "draw_day", "with_buckets"]

CHARGING_TARGET = "charging"
SENT = frozenset({"applied", "dry_run"})  # a command that took effect (or would have)
_MARKERS = {"start": "^", "stop": "v", "set_amps": "o"}


@dataclass(frozen=True)
class DayPoint:
    """One charging decision reduced to what the picture needs."""

    at: datetime
    policy: str
    action: str
    sent: bool
    surplus_kw: float | None
    observed_amps: float | None  # what the charger reported (0 when not charging)
    commanded_amps: float | None  # the level in effect after this decision


def day_bounds(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The local day as an aware [start, end) pair (23 or 25 hours across a DST change)."""
    start = datetime.combine(day, time(), tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)


def day_points(rows: Sequence[DecisionRow]) -> list[DayPoint]:
    """The charging decisions oldest first, the commanded level carried from one to the next.

    The level in effect is the last sent start/set_amps (its amps) until a sent stop; before
    the first command of the day it is unknown (None), not zero.
    """
    commanded: float | None = None
    points: list[DayPoint] = []
    for row in sorted(rows, key=lambda r: (r.ts, r.id)):
        if row.target not in (None, CHARGING_TARGET):
            continue
        sent = row.outcome in SENT
        if sent and row.action == "stop":
            commanded = 0.0
        elif sent and row.action in ("start", "set_amps"):
            amps = row.params.get("amps")
            commanded = float(amps) if isinstance(amps, int | float) else commanded
        points.append(
            DayPoint(
                at=row.ts,
                policy=row.policy,
                action=row.action,
                sent=sent,
                surplus_kw=_kw(row.inputs.get("surplus_w")),
                observed_amps=_observed(row.inputs.get("charger")),
                commanded_amps=commanded,
            )
        )
    return points


def with_buckets(
    points: Sequence[DayPoint], buckets: Sequence[tuple[datetime, float | None, float | None]]
) -> list[DayPoint]:
    """A simulated day's decisions and its figures per bucket, one picture: a simulation logs
    only the decisions that say something new (docs/simulation.md), so the surplus and the level
    drawn come from the replay's own figures (the log's ``simulation_days``), each bucket under
    the policy in control and the level commanded as the last decision before it left them.
    The decisions stay as they are (their markers); a bucket at a decision's time gives way."""
    if not buckets:
        return list(points)
    ordered = sorted(points, key=lambda p: p.at)
    taken = {p.at for p in ordered}
    merged = list(ordered)
    before = 0
    for at, watts, level in buckets:
        if at in taken:
            continue
        while before < len(ordered) and ordered[before].at <= at:
            before += 1
        last = ordered[before - 1] if before else (ordered[0] if ordered else None)
        merged.append(
            DayPoint(
                at=at,
                policy=last.policy if last is not None else "",
                action="hold",
                sent=False,
                surplus_kw=None if watts is None else watts / 1000,
                observed_amps=0.0 if level is None else float(level),
                commanded_amps=last.commanded_amps if last is not None and before else None,
            )
        )
    merged.sort(key=lambda p: p.at)
    return merged


def _kw(watts: object) -> float | None:
    return float(watts) / 1000 if isinstance(watts, int | float) else None


def _observed(charger: object) -> float | None:
    if not isinstance(charger, dict):
        return None
    if charger.get("charging") is False:
        return 0.0
    amps = charger.get("amps")
    return float(amps) if isinstance(amps, int | float) else None


def draw_day(points: Sequence[DayPoint], day: date, zone: tzinfo, *, charger: str) -> Figure:
    """The figure (tests read its lines, markers, bands and legend rather than pixels)."""
    if not points:
        raise ValueError(f"no decisions on {day.isoformat()}")
    # Naive local times: matplotlib would otherwise draw the axis in UTC.
    times = [float(date2num(p.at.astimezone(zone).replace(tzinfo=None))) for p in points]  # type: ignore[no-untyped-call]
    end = float(date2num(day_bounds(day, zone)[1].replace(tzinfo=None)))  # type: ignore[no-untyped-call]
    # Each decision holds until the next one (the last until the end of its poll, at most
    # the end of the day): the span a band covers.
    step = min(times[1] - times[0], end - times[-1]) if len(times) > 1 else 0.0
    ends = [*times[1:], min(end, times[-1] + step)]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    never = [False] * len(points)
    surplus = with_gaps([p.surplus_kw for p in points], never)
    ax.step(times, surplus, where="post", color="orange", label="surplus kW")
    ax.axhline(0.0, color="black", linewidth=0.5)
    ax.set_ylabel("kW")
    names = sorted({p.policy for p in points})
    palette = colormaps["tab10"]
    colours: dict[object, str] = {
        name: mpl.colors.to_hex(palette(n % 10)) for n, name in enumerate(names)
    }
    shade_bands(ax, times, ends, [p.policy for p in points], label="policy", colours=colours)
    amps_axis = ax.twinx()
    observed = with_gaps([p.observed_amps for p in points], never)
    commanded = with_gaps([p.commanded_amps for p in points], never)
    amps_axis.step(times, observed, where="post", color="purple", label="amps observed")
    amps_axis.step(
        times, commanded, where="post", color="blue", linestyle="--", label="amps commanded"
    )
    for action, marker in _MARKERS.items():
        chosen = [(t, p) for t, p in zip(times, points, strict=True) if p.action == action]
        sent = [(t, p) for t, p in chosen if p.sent]
        if sent:
            amps_axis.scatter(
                [t for t, _ in sent],
                [p.commanded_amps if p.commanded_amps is not None else math.nan for _, p in sent],
                marker=marker,
                color="black",
                zorder=5,
                label=f"command: {action}",
            )
    amps_axis.set_ylabel("A")
    ax.xaxis_date()
    ax.set_xlim(float(date2num(day_bounds(day, zone)[0].replace(tzinfo=None))), end)  # type: ignore[no-untyped-call]
    zone_name = getattr(zone, "key", None) or str(zone)
    ax.set_title(f"charger {charger} on {day.isoformat()} ({zone_name})")
    merged_legend(ax, amps_axis)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
