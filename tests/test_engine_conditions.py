"""``when:`` conditions: each on its own, and how the text reads."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from optimizer.engine import conditions
from optimizer.engine.conditions import check
from optimizer.engine.rules import When
from optimizer.engine.snapshot import Snapshot, Sun, Surplus, TariffNow
from tests.test_engine_sim import make_charger


def snap(local: str = "2024-01-15 10:12", tz: str = "UTC", **fields: Any) -> Snapshot:
    now = datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)
    return Snapshot(now=now, timezone=tz, chargers=(make_charger(),), **fields)


def holds(when: dict[str, Any], snapshot: Snapshot) -> tuple[bool, str]:
    """``check``'s answer, after asserting that the verdict without words
    (:func:`conditions.holds`, what the engine asks first) agrees with it: every case below
    checks both."""
    rule = When.model_validate(when)
    answer = check(rule, snapshot, snapshot.chargers[0])
    assert conditions.holds(rule, snapshot, snapshot.chargers[0]) is answer[0]
    return answer


def test_no_conditions_always_hold() -> None:
    assert holds({}, snap()) == (True, "always")


def test_met_conditions_are_summarised_and_the_first_failing_one_named() -> None:
    up = snap(sun=Sun(23.4, 150.0, None, None))
    assert holds({"sun": "up", "time": "09:00-15:00"}, up) == (
        True,
        "sun 23.4° up, 10:12 in 09:00-15:00",
    )
    assert holds({"sun": "up", "time": "11:00-15:00"}, up) == (
        False,
        "10:12 not in 11:00-15:00",
    )


@pytest.mark.parametrize(
    ("local", "held"),
    [
        ("2024-01-15 23:30", True),
        ("2024-01-16 01:00", True),
        ("2024-01-16 07:00", False),
        ("2024-01-15 12:00", False),
    ],
)
def test_time_ranges_cross_midnight(local: str, held: bool) -> None:
    assert holds({"time": "23:00-07:00"}, snap(local))[0] is held


def test_time_uses_the_sites_local_time() -> None:
    melbourne = snap("2024-01-15 23:30", tz="Australia/Melbourne")  # 12:30 UTC
    assert holds({"time": "23:00-07:00"}, melbourne) == (True, "23:30 in 23:00-07:00")


def test_days_are_those_of_the_local_date() -> None:
    assert holds({"days": "weekdays"}, snap("2024-01-15 10:00")) == (True, "Mon in weekdays")
    assert holds({"days": "weekdays"}, snap("2024-01-20 10:00")) == (False, "Sat not in weekdays")


def test_months_wrap_the_new_year() -> None:
    assert holds({"months": "nov-mar"}, snap("2024-01-15 10:00"))[0]
    assert holds({"months": "nov-mar"}, snap("2024-07-15 10:00")) == (
        False,
        "jul not in jan,feb,mar,nov,dec",
    )


def test_sun_up_down_and_elevation_and_no_sun_data() -> None:
    low = snap(sun=Sun(-3.2, 90.0, None, None))
    assert holds({"sun": "down"}, low) == (True, "sun -3.2° down")
    assert holds({"sun": "up"}, low) == (False, "sun -3.2° down")
    high = snap(sun=Sun(23.4, 150.0, None, None))
    assert holds({"sun_above": 10, "sun_below": 30}, high) == (True, "sun 23.4° > 10° < 30°")
    assert holds({"sun_above": 30}, high) == (False, "sun 23.4° not above 30°")
    assert holds({"sun": "up"}, snap()) == (False, "no sun data")
    assert holds({"sun": "down"}, snap()) == (False, "no sun data")


def test_tariff_and_plugged_in() -> None:
    night = snap(tariff=TariffNow(window="off_peak", price=0.18))
    assert holds({"tariff": "off_peak"}, night) == (True, "tariff off_peak in off_peak")
    assert holds({"tariff": ["peak"]}, snap()) == (False, "tariff none not in peak")
    assert holds({"plugged_in": True}, night) == (True, "vehicle plugged in")
    assert holds({"plugged_in": False}, night) == (False, "vehicle plugged in")


def test_surplus_and_battery_soc_are_false_when_unknown() -> None:
    sunny = snap(surplus=Surplus(2500.0, "latest_power"), battery_soc_pct=80.0)
    assert holds({"surplus_above": 2000}, sunny) == (True, "surplus 2500 W > 2000 W")
    assert holds({"surplus_below": 2000}, sunny) == (False, "surplus 2500 W not below 2000 W")
    assert holds({"battery_soc_above": 50, "battery_soc_below": 90}, sunny) == (
        True,
        "battery SoC 80% > 50% < 90%",
    )
    assert holds({"surplus_above": 0}, snap()) == (False, "surplus unknown")
    assert holds({"surplus_below": 0}, snap()) == (False, "surplus unknown")
    assert holds({"battery_soc_below": 50}, snap()) == (False, "battery SoC unknown")


@pytest.mark.parametrize(
    ("when", "held"),
    [
        ({"sun": "down", "sun_above": -6}, False),
        ({"sun_above": 23.4}, False),
        ({"sun_below": 23.4}, False),
        ({"sun_above": 23.3, "sun_below": 23.5, "sun": "up"}, True),
        ({"surplus_above": 2500}, False),
        ({"surplus_below": 2500.5, "battery_soc_above": 79.5}, True),
        ({"battery_soc_below": 80}, False),
        ({"mode": ["MANUAL_CHARGING"]}, True),
        ({"mode": ["GREEN_CHARGING", "SMART_CHARGING"], "plugged_in": True}, False),
        ({"tariff": ["off_peak"], "days": [1], "months": [1], "time": "10:00-10:13"}, True),
    ],
)
def test_verdicts_at_the_bounds_and_with_the_data_unknown(when: dict[str, Any], held: bool) -> None:
    """Each condition's verdict at its bounds and with its data unknown (never held), the mode
    included: ``holds`` (asserted in the helper) must agree with ``check`` on every one."""
    known = snap(
        sun=Sun(23.4, 150.0, None, None),
        surplus=Surplus(2500.0, "latest_power"),
        battery_soc_pct=80.0,
        tariff=TariffNow(window="off_peak"),
    )
    unknown = replace(snap(), chargers=(make_charger(mode=None, plugged_in=False),))
    assert holds(when, known)[0] is held
    assert holds(when, unknown)[0] is False
