"""A picture of one simulated day or week: PV, house and EV power, the amps, tariff windows.

matplotlib with the Agg backend (no display needed, safe under systemd and in CI). Without a
chosen day the sunniest day with a session is drawn: the day where a policy matters most.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.dates import date2num

from optimizer.simulate.series import BUCKET_H, SiteSeries

if TYPE_CHECKING:
    from optimizer.simulate.replay import ReplayResult

__all__ = ["default_day", "plot_replay"]


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
) -> Path:
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
    ax.plot(times, [series.pv_kwh[i] * to_kw for i in indices], label="PV kW", color="orange")
    ax.plot(times, [series.house_kwh[i] * to_kw for i in indices], label="house kW", color="grey")
    ax.fill_between(
        times,
        [result.ev_kwh[i] * to_kw for i in indices],
        step="post",
        alpha=0.4,
        color="green",
        label="EV kW (simulated)",
    )
    # Shade the more expensive buckets (above the cheapest price in view).
    prices = [series.import_price[i] for i in indices]
    cheapest = min(prices)
    for n, i in enumerate(indices):
        if series.missing[i]:
            ax.axvspan(times[n], times[n] + width, color="red", alpha=0.15)
        elif prices[n] > cheapest:
            ax.axvspan(times[n], times[n] + width, color="blue", alpha=0.06)
    ax.set_ylabel("kW")
    ax.xaxis_date()
    amps_axis = ax.twinx()
    amps_axis.step(
        times,
        [result.amps[i] or 0 for i in indices],
        where="post",
        color="purple",
        linewidth=0.8,
        label="amps",
    )
    amps_axis.set_ylabel("A")
    span = f"{first.isoformat()}" + (
        f" .. {(last - timedelta(days=1)).isoformat()}" if week else ""
    )
    ax.set_title(f"simulation {span} ({series.timezone}); shaded: pricier tariff, red: missing")
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
