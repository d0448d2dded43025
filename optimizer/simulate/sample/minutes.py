"""Minute-level variability for 15-minute history (the bundled sample), by a seeded method.

A 15-minute bucket hides what a fresh source reacts to: a cloud edge drops PV by two thirds
for three minutes, a kettle adds 2 kW for four. To replay the sample at one-minute resolution
each bucket's energy is spread over its 15 minutes like this (docs/surplus.md):

PV, a cloud-edge process:
  1. A clear-sky bound per bucket: the highest mean power of the same time of day within
     ``envelope_days`` either side (the sample's own clear days), never below the bucket's.
  2. The bucket's clear-sky index ``k = P / bound``.
  3. A seeded two-state (clear / cloudy) random telegraph runs minute by minute through the
     whole series: from clear it turns cloudy with probability ``SWITCH * (1 - k)``, from
     cloudy clear with ``SWITCH * k``, so a bucket that lost a third of its clear-sky energy
     spends about a third of its minutes under cloud, in runs of a few minutes.
  4. A clear minute weighs 1, a cloudy one ``CLOUD_DEPTH``; each minute's power is the bucket's
     mean times its weight over the bucket's mean weight (the bucket's energy, exactly).
  5. Where that puts a minute above the bound, the minutes are pulled towards the mean by the
     one factor that brings the highest to the bound: the mean (the energy) is unchanged, no
     minute goes below zero or above the bound.

House load, appliance spikes:
  each minute starts an appliance (1.2 to 2.4 kW, 2 to 6 minutes, cut at the bucket's end) with
  probability ``SPIKE_P``; the spikes are scaled down if they would take more than
  ``SPIKE_SHARE`` of the bucket's energy, and the rest of the energy is a flat base under them.

Missing buckets stay missing (15 gap minutes). The same series and seed give the same minutes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from optimizer.simulate.minutes import PER_BUCKET, MinuteSeries
from optimizer.simulate.series import BUCKET_H, SiteSeries

__all__ = [
    "CLOUD_DEPTH",
    "SPIKE_P",
    "SPIKE_SHARE",
    "SWITCH",
    "clear_sky_bounds",
    "minute_series",
]

SWITCH = 0.35  # the telegraph's switching rate per minute at k = 0.5: runs of ~3-6 minutes
CLOUD_DEPTH = 0.25  # a cloudy minute's PV against a clear one's
CLEAR_K = 0.97  # a bucket this close to its bound is taken as clear throughout
SPIKE_P = 0.04
SPIKE_SHARE = 0.6
SPIKE_W = (1200.0, 1800.0, 2400.0)
PER_DAY = 96


def clear_sky_bounds(pv_w: Sequence[float], missing: Sequence[bool], days: int) -> list[float]:
    """Per bucket, the highest mean PV of its time of day within ``days`` days either side."""
    count = len(pv_w)
    bounds = [0.0] * count
    for slot in range(PER_DAY):
        column = [
            0.0 if missing[i] else pv_w[i] for i in range(slot, count, PER_DAY)
        ]  # one value per day
        for day, _ in enumerate(column):
            window = column[max(0, day - days) : day + days + 1]
            bounds[slot + day * PER_DAY] = max(window)
    return bounds


def _pv_minutes(mean: float, bound: float, clear: list[bool]) -> list[float]:
    weights = [1.0 if state else CLOUD_DEPTH for state in clear]
    scale = mean / (sum(weights) / len(weights))
    minutes = [w * scale for w in weights]
    top = max(minutes)
    if top > bound > mean:
        pull = (bound - mean) / (top - mean)
        minutes = [mean + pull * (m - mean) for m in minutes]
    elif top > bound:
        minutes = [mean] * len(minutes)
    return minutes


def _house_minutes(mean: float, rng: random.Random) -> list[float]:
    spikes = [0.0] * PER_BUCKET
    for minute in range(PER_BUCKET):
        if rng.random() < SPIKE_P:
            watts = rng.choice(SPIKE_W)
            for at in range(minute, min(PER_BUCKET, minute + rng.randint(2, 6))):
                spikes[at] += watts
    spike_mean = sum(spikes) / PER_BUCKET
    if spike_mean > SPIKE_SHARE * mean:
        factor = SPIKE_SHARE * mean / spike_mean if spike_mean else 0.0
        spikes = [s * factor for s in spikes]
        spike_mean = sum(spikes) / PER_BUCKET
    base = mean - spike_mean
    return [base + s for s in spikes]


def minute_series(buckets: SiteSeries, *, seed: int = 0, envelope_days: int = 15) -> MinuteSeries:
    """The buckets as one-minute power, each bucket's energy kept (see the module's method)."""
    to_w = 1000 / BUCKET_H
    pv_mean = [kwh * to_w for kwh in buckets.pv_kwh]
    house_mean = [kwh * to_w for kwh in buckets.house_kwh]
    bounds = clear_sky_bounds(pv_mean, buckets.missing, envelope_days)
    rng = random.Random(seed)  # noqa: S311 - a reproducible model, not a secret
    clear_now = True
    pv: list[float] = []
    house: list[float] = []
    missing: list[bool] = []
    for index, gap in enumerate(buckets.missing):
        if gap:
            pv.extend([0.0] * PER_BUCKET)
            house.extend([0.0] * PER_BUCKET)
            missing.extend([True] * PER_BUCKET)
            continue
        mean, bound = pv_mean[index], max(bounds[index], pv_mean[index])
        k = mean / bound if bound > 0 else 1.0
        states: list[bool] = []
        for _ in range(PER_BUCKET):
            if k >= CLEAR_K or mean <= 0:
                clear_now = True
            elif clear_now:
                clear_now = rng.random() >= SWITCH * 2 * (1 - k)
            else:
                clear_now = rng.random() < SWITCH * 2 * k
            states.append(clear_now)
        pv.extend(_pv_minutes(mean, bound, states) if mean > 0 else [0.0] * PER_BUCKET)
        house.extend(_house_minutes(house_mean[index], rng))
        missing.extend([False] * PER_BUCKET)
    return MinuteSeries(
        start=buckets.starts[0],
        pv_w=tuple(pv),
        house_w=tuple(house),
        missing=tuple(missing),
        sessions=buckets.sessions,
        timezone=buckets.timezone,
    )
