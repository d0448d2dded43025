"""`make bench`: figures for the parts whose speed users feel.

- Parsing `lifetime_energy` for one and ten years of 15-minute buckets (what `history fetch`
  and the simulator load), to show the cost grows linearly.
- Parsing a status reply (done every poll).
- Full client round trips of `status` against the fake cloud on 127.0.0.1 (transport, auth
  headers, parsing; no network latency), as an upper bound on per-tick client overhead.
- One engine evaluation of the rules in `rules/*.yaml` (or, without any, one policy of each
  kind) on a realistic snapshot, as the per-tick cost of deciding.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optimizer.engine.decision import EngineSettings, Memory  # noqa: E402
from optimizer.engine.evaluate import evaluate  # noqa: E402
from optimizer.engine.rules import PolicyBase, RuleFile  # noqa: E402
from optimizer.engine.snapshot import ChargerView, Snapshot, Sun, Surplus, TariffNow  # noqa: E402
from optimizer.enlighten.client import EnlightenClient  # noqa: E402
from optimizer.enlighten.models import ChargeMode, ScheduleSlot, parse_lifetime_energy, parse_status  # noqa: E402  # noqa: E402
from optimizer.fakecloud import FakeCloud, FakeCloudServer  # noqa: E402
from optimizer.tariffs import Tariffs  # noqa: E402

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


# As in config.example.yaml, which the example rules refer to by window name.
BENCH_TARIFFS = Tariffs.model_validate(
    {
        "currency": "AUD",
        "import_price": 0.30,
        "windows": {
            "off_peak": {"price": 0.18, "times": "23:00-07:00"},
            "peak": {"price": 0.45, "times": "15:00-21:00", "days": "weekdays"},
        },
    }
)
# One policy of each kind, for a checkout without rules/*.yaml.
BENCH_POLICIES: list[dict[str, Any]] = [
    {"name": "solar", "kind": "excess_solar", "when": {"sun": "up"}},
    {"name": "green-when-sunny", "kind": "green_mode", "priority": 40, "use_battery": True,
     "when": {"surplus_above": 6000}},
    {"name": "by-seven", "kind": "tariff_window", "windows": "off_peak", "priority": 70,
     "target": {"energy_kwh": 20, "by": "07:00"}},
    {"name": "spare-the-battery", "kind": "battery_use", "use_battery": False,
     "when": {"battery_soc_below": 30}},
    {"name": "scheduled-at-night", "kind": "charge_mode", "mode": "scheduled", "priority": 20,
     "when": {"time": "22:00-06:00"}},
    {"name": "fallback-schedule", "kind": "schedule_sync", "windows": "off_peak"},
]  # fmt: skip


def engine_policies() -> list[PolicyBase]:
    """The policies of rules/*.yaml (files that fail to parse are skipped), else the set above."""
    found: list[PolicyBase] = []
    for path in sorted((ROOT / "rules").glob("*.yaml")):
        try:
            found.extend(RuleFile.model_validate(yaml.safe_load(path.read_text())).policies)
        except (OSError, yaml.YAMLError, ValidationError):
            continue
    return found or list(RuleFile.model_validate({"policies": BENCH_POLICIES}).policies)


def engine_snapshot() -> Snapshot:
    """Midday on a weekday: one charger charging at 16 A, 4 kW of surplus, a day of prices."""
    now = datetime(2024, 1, 17, 2, 0, tzinfo=UTC)  # 13:00 in Melbourne
    zone = "Australia/Melbourne"
    slot: dict[str, Any] = {
        "id": "1:202301000001:a",
        "startTime": "23:00",
        "endTime": "07:00",
        "chargingLevel": 32,
        "chargingLevelAmp": 32,
        "scheduleType": "CUSTOM",
        "days": [1, 2, 3, 4, 5, 6, 7],
        "remindTime": 10,
        "remindFlag": False,
        "enabled": True,
        "recurringKind": "Recurring",
        "chargeLevelType": "Weekly",
        "sourceType": "SYSTEM",
        "reminderTimeUtc": None,
    }
    charger = ChargerView(
        sn="202301000001",
        connected=True,
        plugged_in=True,
        charging=True,
        faulted=False,
        min_amps=6,
        max_amps=32,
        amps=16,
        mode=ChargeMode.MANUAL_CHARGING,
        supports_use_battery=True,
        use_battery=True,
        schedule_slots=(ScheduleSlot.model_validate(slot),),
        session_kwh=4.2,
    )
    window, price = BENCH_TARIFFS.window_at(now)
    return Snapshot(
        now=now,
        timezone=zone,
        chargers=(charger,),
        surplus=Surplus(4000.0, "latest_power", battery_charge_w=800.0),
        tariff=TariffNow(
            window=window,
            price=price,
            slots=tuple(BENCH_TARIFFS.slots(now, now + timedelta(days=1), timezone=zone)),
        ),
        sun=Sun(62.0, 10.0, None, None),
        battery_soc_pct=64.0,
    )


def bench_engine() -> None:
    policies = engine_policies()
    snapshot = engine_snapshot()
    settings = EngineSettings(site_max_amps=32, tariffs=BENCH_TARIFFS)
    # A tick earlier, so the memory holds timers and commanded state as in service.
    earlier = Snapshot(**{**snapshot.__dict__, "now": snapshot.now - timedelta(minutes=5)})
    _, memory = evaluate(earlier, policies, Memory(), settings=settings)
    n = 2000
    seconds = best_of(
        lambda: [evaluate(snapshot, policies, memory, settings=settings) for _ in range(n)],
        repeat=3,
    )
    print(f"engine: one evaluation of {len(policies)} policies: {seconds / n * 1e6:.0f} us")


def main() -> int:
    bench_lifetime()
    bench_status_parse()
    asyncio.run(bench_client_roundtrip())
    bench_engine()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
