"""`make bench`: figures for the parts whose speed users feel.

- Parsing `lifetime_energy` for one and ten years of 15-minute buckets (what `history fetch`
  and the simulator load), to show the cost grows linearly.
- Parsing a status reply (done every poll).
- Full client round trips of `status` against the fake cloud on 127.0.0.1 (transport, auth
  headers, parsing; no network latency), as an upper bound on per-tick client overhead.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optimizer.enlighten.client import EnlightenClient  # noqa: E402
from optimizer.enlighten.models import parse_lifetime_energy, parse_status  # noqa: E402
from optimizer.fakecloud import FakeCloud, FakeCloudServer  # noqa: E402

FLOWS = ("production", "consumption", "solar_home", "solar_grid", "grid_home", "evse")
BUCKETS_PER_DAY = 96


def lifetime_payload(days: int) -> dict[str, Any]:
    n = days * BUCKETS_PER_DAY
    payload: dict[str, Any] = {
        "system_id": 1234567,
        "start_date": "2015-01-01",
        "last_report_date": 1420070400 + days * 86400,
        "update_pending": False,
    }
    for k, flow in enumerate(FLOWS):
        payload[flow] = [None if i % 997 == 0 else float((i * (k + 3)) % 2500) for i in range(n)]
    payload["heatpump"] = []
    return payload


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_lifetime() -> None:
    per_bucket = []
    for years in (1, 10):
        days = 365 * years
        # Parse from JSON text, as it arrives from the cloud.
        text = json.dumps(lifetime_payload(days))
        seconds = best_of(
            lambda text=text: parse_lifetime_energy(
                json.loads(text), timezone="Australia/Melbourne", interval="15min"
            ),
            repeat=3,
        )
        buckets = days * BUCKETS_PER_DAY
        per_bucket.append(seconds / buckets)
        print(
            f"lifetime_energy parse, {years:>2} year(s), {buckets:>7} buckets x {len(FLOWS)} flows:"
            f" {seconds * 1000:8.1f} ms  ({buckets / seconds:,.0f} buckets/s)"
        )
    print(
        f"  cost per bucket, 10 years / 1 year: {per_bucket[1] / per_bucket[0]:.2f} (1.0 = linear)"
    )


def bench_status_parse() -> None:
    fixture = json.loads((ROOT / "tests/fixtures/status_nested.json").read_text())
    n = 5000
    seconds = best_of(lambda: [parse_status(fixture) for _ in range(n)], repeat=3)
    print(f"status parse: {n / seconds:,.0f} replies/s ({seconds / n * 1e6:.0f} us each)")


async def bench_client_roundtrip() -> None:
    cloud = FakeCloud()
    n = 300
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            FakeCloudServer(cloud) as server,
            EnlightenClient(
                base_url=server.base_url,
                email="owner@example.com",
                password_provider=lambda: "correct-horse-battery",
                state_dir=Path(tmp),
            ) as client,
        ):
            await client.status(1234567)  # log in, pick the variant
            latencies = []
            for _ in range(n):
                start = time.perf_counter()
                await client.status(1234567)
                latencies.append(time.perf_counter() - start)
    latencies.sort()
    median_ms = statistics.median(latencies) * 1000
    p95_ms = latencies[int(n * 0.95)] * 1000
    print(
        f"client status round trip on 127.0.0.1 ({n} calls): "
        f"median {median_ms:.2f} ms, p95 {p95_ms:.2f} ms"
    )


def main() -> int:
    bench_lifetime()
    bench_status_parse()
    asyncio.run(bench_client_roundtrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
