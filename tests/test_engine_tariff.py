"""tariff_window over time: a window opening and closing, and targets met in the cheapest
15-minute slots (32 A at 230 V is 7.36 kW, so one slot delivers 1.84 kWh)."""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from typing import Any

from optimizer.engine.decision import ChargerMemory
from optimizer.engine.kinds.common import Context
from optimizer.engine.kinds.tariff_window import ahead_until, target_level
from optimizer.engine.snapshot import Snapshot, TariffNow
from optimizer.enlighten.models import ChargeMode
from optimizer.limits import Limits
from optimizer.tariffs import PriceSlot, Tariffs
from tests.test_engine_sim import Sim, at, make_charger, policies, run

EVENING = datetime(2024, 1, 15, 22, 0, tzinfo=UTC)  # Monday 22:00 (UTC is local here)
MORNING = datetime(2024, 1, 16, 10, 0, tzinfo=UTC)


def tariffs(**extra: dict[str, Any]) -> Tariffs:
    """Cheaper windows come first: where windows overlap, the first listed wins."""
    windows = {**extra, "off_peak": {"price": 0.18, "times": "23:00-07:00"}}
    return Tariffs.model_validate({"import_price": 0.30, "windows": windows})


def test_a_tariff_window_opening_starts_charging_at_its_first_slot_and_closing_stops() -> None:
    night = {"name": "night", "kind": "tariff_window", "windows": "off_peak"}
    scheduled = make_charger(mode=ChargeMode.SCHEDULED_CHARGING)
    run(
        Sim(policies(night), charger=scheduled, tariffs=tariffs(), start=EVENING),
        [
            at(0, "hold", "outside off_peak (now no window, 0.3/kWh): not charging"),
            at(
                0,
                "set_mode",
                "charging by tariff needs MANUAL mode: switch to MANUAL",
                target="mode",
            ),
            at(59, "hold", "not charging"),
            at(60, "start", "in off_peak (0.18/kWh): charge at 32 A", policy="night"),
            at(60, "hold", "already in MANUAL mode", target="mode"),
            at(75, "hold", "in off_peak (0.18/kWh): charging at 32 A"),
            at(540, "stop", "outside off_peak (now no window, 0.3/kWh): stop"),
            at(555, "hold", "not charging"),
        ],
    )


def test_a_target_charges_in_the_cheapest_slots_and_stops_when_delivered() -> None:
    night = {
        "name": "night",
        "kind": "tariff_window",
        "windows": ["off_peak", "super_off_peak"],
        "target": {"energy_kwh": 8, "by": "07:00"},
    }
    cheap = {"super_off_peak": {"price": 0.10, "times": "01:00-04:00"}}
    run(
        Sim(policies(night), tariffs=tariffs(**cheap), start=EVENING),
        [
            at(
                0,
                "hold",
                "8.0 kWh still needed by 07:00: 01:00-02:15 are the cheapest slots (0.1/kWh); "
                "waiting until 01:00",
            ),
            at(60, "hold", "waiting until 01:00"),  # off_peak has begun, but it costs more
            at(180, "start", "01:00-02:15 are the cheapest slots (0.1/kWh); now: charge at 32 A"),
            at(195, "hold", "6.2 kWh still needed by 07:00: 01:15-02:15 are the cheapest slots"),
            at(
                240,
                "hold",
                "0.6 kWh still needed by 07:00: 02:00-02:15 is the cheapest slot (0.1/kWh)",
            ),
            at(245, "hold", "charging at 32 A"),
            at(246, "stop", "target 8 kWh reached (8.1 kWh delivered): stop"),
            at(300, "hold", "target 8 kWh reached (8.1 kWh delivered): done"),
        ],
    )


def test_a_target_split_over_two_cheap_spells_counts_energy_across_the_restart() -> None:
    night = {
        "name": "night",
        "kind": "tariff_window",
        "windows": ["off_peak", "dip_a", "dip_b"],
        "target": {"energy_kwh": 6, "by": "07:00"},
    }
    dips = {
        "dip_a": {"price": 0.08, "times": "01:00-01:30"},
        "dip_b": {"price": 0.09, "times": "03:00-03:30"},
    }
    run(
        Sim(policies(night), tariffs=tariffs(**dips), start=EVENING),
        [
            at(0, "hold", "01:00-01:30, 03:00-03:30 are the cheapest slots (0.08-0.09/kWh)"),
            at(180, "start", "now: charge at 32 A"),
            at(
                210,
                "stop",
                "2.3 kWh still needed by 07:00: 03:00-03:30 are the cheapest slots (0.09/kWh); "
                "stop until 03:00",
            ),
            at(211, "hold", "waiting until 03:00"),
            # A new session starts at zero kWh; the 3.7 kWh of the first one still count.
            at(300, "start", "2.3 kWh still needed by 07:00"),
            at(318, "hold", "charging at 32 A"),
            at(319, "stop", "target 6 kWh reached (6.0 kWh delivered): stop"),
        ],
    )


def test_a_target_takes_solar_first_and_waits_for_the_cheap_slots_otherwise() -> None:
    day = {
        "name": "top-up",
        "kind": "tariff_window",
        "windows": "off_peak",
        "target": {"energy_kwh": 10, "by": "07:00"},
    }
    run(
        Sim(policies(day), tariffs=tariffs(), start=MORNING),
        [
            at(0, "start", "surplus 3.0 kW covers 13 A, solar first: charge at 13 A", surplus=3000),
            at(5, "set_amps", "surplus 4.0 kW covers 17 A, solar first", surplus=4000),
            at(
                10,
                "stop",
                "9.7 kWh still needed by 07:00: 23:00-00:30 are the cheapest slots (0.18/kWh); "
                "stop until 23:00",
                surplus=500,
            ),
            at(15, "hold", "waiting until 23:00"),
        ],
    )


def test_a_target_that_cannot_wait_charges_now() -> None:
    urgent = {
        "name": "urgent",
        "kind": "tariff_window",
        "windows": "off_peak",
        "target": {"energy_kwh": 30, "by": "01:00"},
    }
    run(
        Sim(policies(urgent), tariffs=tariffs(), start=EVENING),
        [
            at(
                0,
                "start",
                "30.0 kWh still needed by 01:00 takes 17 slots and only 12 are left: "
                "charge at 32 A",
            )
        ],
    )
    run(
        Sim(policies(urgent), start=EVENING),  # no prices at all
        [at(0, "start", "30.0 kWh still needed by 01:00, no slot prices known: charge at 32 A")],
    )


def test_outside_hold_proposes_nothing_so_others_decide() -> None:
    rules = policies(
        {
            "name": "night",
            "kind": "tariff_window",
            "windows": "off_peak",
            "outside": "hold",
            "priority": 90,
        },
        {"name": "sun", "kind": "excess_solar", "start_delay": "0s"},
    )
    run(
        Sim(rules, tariffs=tariffs(), start=MORNING),
        [
            at(0, "start", "surplus 3.0 kW for 0 s", policy="sun", surplus=3000),
            at(
                780, "set_amps", "in off_peak (0.18/kWh): charge at 32 A (now 13 A)", policy="night"
            ),
        ],
    )


def test_slots_before_a_deadline_bisected_as_the_scan_found_them() -> None:
    """``ahead_until`` bisects the ordered slots: for every now and deadline around a day of
    them (on, between and beyond their edges) it picks exactly what the scan of every slot
    did (those ending after now and starting before the deadline)."""
    start = datetime(2024, 3, 30, 23, 7, tzinfo=UTC)
    slots = tuple(tariffs().slots(start, start + timedelta(days=1), timezone="Europe/Paris"))
    assert len(slots) == 97
    times = [start + timedelta(minutes=m) for m in range(-30, 25 * 60, 7)]
    for now in times[::5]:
        for deadline in times:
            scanned = [s for s in slots if s.end > now and s.start < deadline]
            assert ahead_until(slots, now, deadline) == scanned


def test_a_kept_plan_is_served_only_for_the_prices_it_was_made_from() -> None:
    """Two ticks at the same instant, the same policy and energy, prices that differ only in
    which slot is cheapest: each gets its own plan (charge now, then wait), and asking the
    first again still charges: no plan answers for other prices."""

    night = {"name": "night", "kind": "tariff_window", "windows": ["peak"], "amps": 16}
    night["target"] = {"energy_kwh": 1, "by": "23:00"}
    (policy,) = policies(night)
    view = make_charger()

    def level(cheap_now: bool) -> int | None:
        prices = (0.1, 0.3) if cheap_now else (0.3, 0.1)
        slots = tuple(
            PriceSlot(
                EVENING + timedelta(minutes=15 * i),
                EVENING + timedelta(minutes=15 * (i + 1)),
                None,
                p,
            )
            for i, p in enumerate(prices * 2)
        )
        snapshot = Snapshot(
            now=EVENING, timezone="UTC", chargers=(view,), tariff=TariffNow(slots=slots)
        )
        ctx = Context(snapshot, view, ChargerMemory(), Limits.of(view, None), delivered_kwh=0.0)
        return target_level(policy, ctx)  # type: ignore[arg-type]

    assert [level(True), level(False), level(True)] == [16, None, 16]


def test_the_window_is_the_same_between_two_boundaries() -> None:
    """Tariffs.boundaries, which the replay's price table keys by (month, weekday, interval):
    every minute of a week in winter and in summer answers as the interval's first minute."""
    week_days = {
        "price": 0.40,
        "times": ["16:00-21:00", "06:30-08:15"],
        "days": "weekdays",
        "months": [6, 7, 8],
    }
    weekend = {"price": 0.12, "times": "22:15-05:45", "days": "weekends"}
    table = tariffs(peak=week_days, weekend=weekend)
    bounds = table.boundaries()
    assert bounds == (345, 390, 420, 495, 960, 1260, 1335, 1380)
    for first in (datetime(2024, 1, 8), datetime(2024, 7, 8)):  # Mondays
        seen: dict[tuple[int, int, int], tuple[str | None, float | None]] = {}
        for minute in range(8 * 24 * 60):
            local = first + timedelta(minutes=minute)
            key = (
                local.month,
                local.isoweekday(),
                bisect_right(bounds, local.hour * 60 + local.minute),
            )
            assert seen.setdefault(key, table.window_at(local)) == table.window_at(local), local
