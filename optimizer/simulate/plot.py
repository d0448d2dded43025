"""A picture of one simulated day or week: PV, house and EV power, the amps, tariff windows.

matplotlib with the Agg backend (no display needed, safe under systemd and in CI). Without a
chosen day the sunniest day with a session is drawn: the day where a policy matters most.
Missing buckets are gaps with a hatched span (a flat 0 is a real zero); the tariff is one band
per stretch of equal price, one legend entry per price; the amps (on a twin axis) are in the
legend with the rest.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.dates import date2num
from matplotlib.figure import Figure

from optimizer.simulate.plotkit import merged_legend, shade_bands, shade_missing, with_gaps
from optimizer.simulate.series import BUCKET_H, SiteSeries

if TYPE_CHECKING:
    from optimizer.simulate.replay import ReplayResult

__all__ = ["default_day", "draw_replay", "plot_replay"]


def default_day(series: SiteSeries) -> date:
    """The local day with the most PV among the days a session covers (else the sunniest)."""
    pv: dict[date, float] = {}
    with_session: set[date] = set()
    for index in range(len(series.starts)):
        day = series.local(index).date()
        pv[day] = pv.get(day, 0.0) + series.pv_kwh[index]
        if series.session_index(index) >= 0:
            with_session.add(day)
    pool = {d: v for d, v in pv.items() if d in with_session} or pv
    return max(pool, key=lambda d: pool[d])


def plot_replay(
    series: SiteSeries,
    result: ReplayResult,
    path: Path,
    *,
    day: date | None = None,
    week: date | None = None,
    currency: str = "",
) -> Path:
    """Write the picture of ``day`` or ``week`` (default: :func:`default_day`) to ``path``."""
    fig = draw_replay(series, result, day=day, week=week, currency=currency)
    try:
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path


def draw_replay(
    series: SiteSeries,
    result: ReplayResult,
    *,
    day: date | None = None,
    week: date | None = None,
    currency: str = "",
) -> Figure:
    """The figure itself (tests read its lines, bands and legend rather than pixels)."""
    first = week or day or default_day(series)
    last = first + timedelta(days=7 if week else 1)
    indices = [i for i in range(len(series.starts)) if first <= series.local(i).date() < last]
    if not indices:
        raise ValueError(f"no buckets on {first.isoformat()} in the simulated period")
    # Naive local times: matplotlib would otherwise draw the axis in UTC.
    times = [float(date2num(series.local(i).replace(tzinfo=None))) for i in indices]  # type: ignore[no-untyped-call]
    width = BUCKET_H / 24  # one bucket in matplotlib's day units
    to_kw = 1 / BUCKET_H
    fig, ax = plt.subplots(figsize=(12 if week else 9, 4.5))
    missing = [series.missing[i] for i in indices]
    # Buckets drawn as steps from their start; missing ones are NaN: a gap, not a zero.
    pv = with_gaps([series.pv_kwh[i] * to_kw for i in indices], missing)
    house = with_gaps([series.house_kwh[i] * to_kw for i in indices], missing)
    ev = with_gaps([result.ev_kwh[i] * to_kw for i in indices], missing)
    ax.step(times, pv, where="post", label="PV kW", color="orange")
    ax.step(times, house, where="post", label="house kW", color="grey")
    ax.fill_between(times, ev, step="post", alpha=0.4, color="green", label="EV kW (simulated)")
    ends = [t + width for t in times]
    shade_bands(
        ax,
        times,
        ends,
        [series.import_price[i] for i in indices],
        label=f"import price{' ' + currency if currency else ''}",
    )
    shade_missing(ax, times, ends, missing)
    ax.set_ylabel("kW")
    ax.xaxis_date()
    amps_axis = ax.twinx()
    # Not charging is 0 A (a real zero); a missing bucket is a gap.
    amps = with_gaps([result.amps[i] or 0 for i in indices], missing)
    amps_axis.step(times, amps, where="post", color="purple", linewidth=0.8, label="amps (A)")
    amps_axis.set_ylabel("A")
    span = f"{first.isoformat()}" + (
        f" .. {(last - timedelta(days=1)).isoformat()}" if week else ""
    )
    ax.set_title(f"simulation {span} ({series.timezone})")
    merged_legend(ax, amps_axis)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
