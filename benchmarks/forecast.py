"""`make bench` (forecast part): how long the solar forecast takes, against its target.

The planner rebuilds the forecast every tick, so the figure that matters is one 48-hour
forecast from 60 days of 15-minute history with the orientation known (it is learned once a
day) and the sun's per-day tables already computed: target under 50 ms. Also shown: the
same on a cold start (every day's sun computed) and learning the orientation.
History: the bundled sample (a year of a 6 kWp roof in Greensboro, NC), cut to 60 days.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optimizer.enlighten.models import parse_lifetime_energy  # noqa: E402
from optimizer.forecast import solar  # noqa: E402
from optimizer.simulate.sample import TIMEZONE, sample_paths  # noqa: E402

TARGET_MS = 50.0
SITE = solar.Site(latitude=36.07, longitude=-79.79, timezone=TIMEZONE)


def timed(fn: object, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> int:
    energy_path, _ = sample_paths()
    energy = parse_lifetime_energy(json.loads(energy_path.read_text()), timezone=TIMEZONE)
    full = solar.PowerHistory.from_lifetime(energy)
    now = datetime(2025, 6, 20, 9, 0, tzinfo=ZoneInfo(TIMEZONE)).timestamp()
    history = full.before(now).last_days(60, now_s=now)
    started = time.perf_counter()
    orientation = solar.learn_orientation(history, SITE, now_s=now)
    learn_ms = (time.perf_counter() - started) * 1000
    solar._SKY_CACHE.clear()

    def build() -> solar.Forecast:
        return solar.forecast_at(history, now, site=SITE, orientation=orientation, horizon_h=48)

    (cold,) = timed(build, 1)
    warm = timed(build, 30)
    median = statistics.median(warm)
    print(
        f"forecast: 48 h from {len(history) // 96} days of 15-minute history: "
        f"{median:.1f} ms per build (best {min(warm):.1f}; target < {TARGET_MS:.0f} ms: "
        f"{'met' if median < TARGET_MS else 'MISSED'})"
    )
    print(f"  cold start (sun tables for every day computed): {cold:.1f} ms")
    print(
        f"  learning the orientation (once a day): {learn_ms:.0f} ms -> tilt "
        f"{orientation.tilt_deg:.0f}, azimuth {orientation.azimuth_deg:.0f}, "
        f"{orientation.peak_w / 1000:.2f} kW (the sample: 25, 180, 6 kWp on a 5 kW inverter)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
