"""Drawing pieces the simulation plot and the log's day plot share (matplotlib, Agg).

Each reads one thing plainly: a gap in the data is a gap in the line with a marked span, never
a zero; a tariff is one contiguous band per stretch of equal price, coloured by that price,
with one legend entry per price; the legend holds the lines of every axis, twins included.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib as mpl

mpl.use("Agg")
from matplotlib import colormaps
from matplotlib.artist import Artist
from matplotlib.axes import Axes

__all__ = [
    "MISSING_LABEL",
    "bands",
    "merged_legend",
    "shade_bands",
    "shade_missing",
    "with_gaps",
]

MISSING_LABEL = "missing data"
_BAND_ALPHA = 0.18


def with_gaps(values: Sequence[float | None], missing: Sequence[bool]) -> list[float]:
    """The values with NaN where data is missing (or None): matplotlib breaks the line there.

    A real zero stays a zero, so a flat line at 0 reads "none" and a gap reads "unknown".
    """
    return [
        math.nan if gap or value is None else float(value)
        for value, gap in zip(values, missing, strict=True)
    ]


def bands(keys: Sequence[object]) -> list[tuple[int, int, object]]:
    """Runs of equal, non-None keys as (first index, index after the last, key)."""
    found: list[tuple[int, int, object]] = []
    for index, key in enumerate(keys):
        if key is None:
            continue
        if found and found[-1][1] == index and found[-1][2] == key:
            found[-1] = (found[-1][0], index + 1, key)
        else:
            found.append((index, index + 1, key))
    return found


def shade_bands(
    ax: Axes,
    starts: Sequence[float],
    ends: Sequence[float],
    keys: Sequence[object],
    *,
    label: str,
    colours: dict[object, str] | None = None,
) -> dict[object, str]:
    """One shaded span per run of equal keys, one legend entry per distinct key.

    Item ``i`` covers ``starts[i]`` to ``ends[i]`` on the time axis (a bucket, or the time
    until the next decision).
    Without ``colours``, keys are numbers (prices) coloured from cheap (green) to dear (red)
    by rank, so three prices are three colours whatever their values. Returns the colours.
    """
    distinct = sorted({key for key in keys if key is not None}, key=_order)
    if colours is None:
        ramp = colormaps["RdYlGn_r"]
        steps = max(len(distinct) - 1, 1)
        colours = {key: mpl.colors.to_hex(ramp(n / steps)) for n, key in enumerate(distinct)}
    labelled: set[object] = set()
    for first, end, key in bands(keys):
        name = None
        if key not in labelled:
            labelled.add(key)
            name = f"{label} {_fmt(key)}"
        ax.axvspan(
            starts[first],
            ends[end - 1],
            color=colours[key],
            alpha=_BAND_ALPHA,
            linewidth=0,
            label=name,
        )
    return colours


def shade_missing(
    ax: Axes, starts: Sequence[float], ends: Sequence[float], missing: Sequence[bool]
) -> int:
    """Hatch each run of missing items (one legend entry); returns how many runs."""
    runs = bands([True if gap else None for gap in missing])
    for n, (first, end, _) in enumerate(runs):
        ax.axvspan(
            starts[first],
            ends[end - 1],
            facecolor="none",
            edgecolor="red",
            hatch="//",
            linewidth=0,
            label=MISSING_LABEL if n == 0 else None,
        )
    return len(runs)


def merged_legend(ax: Axes, *others: Axes) -> None:
    """One legend for ``ax`` and its twins: a twin's lines are otherwise left out of it."""
    handles: list[Artist] = []
    labels: list[str] = []
    for axis in (ax, *others):
        more, names = axis.get_legend_handles_labels()
        handles += more
        labels += names
    ax.legend(handles, labels, loc="upper left", fontsize="small")


def _order(key: object) -> tuple[int, float, str]:
    return (0, float(key), "") if isinstance(key, int | float) else (1, 0.0, str(key))


def _fmt(key: object) -> str:
    return f"{key:g}" if isinstance(key, float) else str(key)
