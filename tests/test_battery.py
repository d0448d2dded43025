"""The simulated home battery: the model's arithmetic, and the replay and report using it."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from optimizer.config import BatteryConfig, Config, SiteConfig
from optimizer.engine.loader import load_rules
from optimizer.limits import Limits
from optimizer.simulate.battery import Battery, run_battery
from optimizer.simulate.replay import replay
from optimizer.simulate.report import build_report
from optimizer.simulate.series import Session, figures
from tests.test_plans import RULES, T0, series_of

VOLTS = 230.0
LIMITS = Limits(6, 32, 1)
TEN = BatteryConfig(capacity_kwh=10, max_power_kw=4, round_trip_efficiency=0.81, reserve_pct=10)


def test_charging_is_limited_by_power_room_and_losses() -> None:
    battery = Battery(TEN)  # starts at 50 %: 5 kWh
    assert battery.step(pv=2.0, house=0.5, ev=0.0, feeds_ev=False) == (1.0, 0.0)  # 4 kW x 15 min
    assert battery.soc == pytest.approx(5.9)  # 0.9 of it is stored
    for _ in range(10):
        battery.step(pv=2.0, house=0.0, ev=0.0, feeds_ev=False)
    assert battery.soc == pytest.approx(10.0)
    assert battery.step(pv=2.0, house=0.0, ev=0.0, feeds_ev=False) == (0.0, 0.0)  # full


def test_discharge_covers_the_house_keeps_the_reserve_and_feeds_the_car_only_when_allowed() -> None:
    battery = Battery(TEN)
    # House 0.6, car 1.0, no sun: only the house part comes from the battery.
    assert battery.step(pv=0.0, house=0.6, ev=1.0, feeds_ev=False) == (0.0, pytest.approx(0.6))
    # With battery support the car is covered too, up to the power limit (1 kWh per bucket).
    assert battery.step(pv=0.0, house=0.6, ev=1.0, feeds_ev=True) == (0.0, pytest.approx(1.0))
    for _ in range(20):
        battery.step(pv=0.0, house=1.0, ev=0.0, feeds_ev=False)
    assert battery.soc == pytest.approx(1.0)  # the 10 % reserve is never used
    assert battery.step(pv=0.0, house=1.0, ev=0.0, feeds_ev=False) == (0.0, 0.0)


def test_a_sunny_house_with_a_charging_car_leaves_the_car_on_the_grid() -> None:
    battery = Battery(TEN)
    # The sun covers the house (1.0 > 0.4) but not the car: the house part is nil.
    assert battery.step(pv=1.0, house=0.4, ev=1.5, feeds_ev=False) == (0.0, 0.0)


@given(st.lists(st.tuples(st.floats(0, 3), st.floats(0, 2), st.floats(0, 2), st.booleans())))
def test_the_state_of_charge_stays_within_reserve_and_capacity(
    steps: list[tuple[float, float, float, bool]],
) -> None:
    battery = Battery(TEN)
    stored = battery.soc
    for pv, house, ev, feeds in steps:
        charged, given = battery.step(pv=pv, house=house, ev=ev, feeds_ev=feeds)
        assert charged == 0.0 or given == 0.0
        assert 0.0 <= charged <= 1.0 + 1e-12
        assert 0.0 <= given <= 1.0 + 1e-12
        assert given <= max(0.0, house + ev - pv) + 1e-12  # never exports from the battery
        stored += charged * math.sqrt(0.81) - given / math.sqrt(0.81)
        assert 1.0 - 1e-9 <= battery.soc <= 10.0 + 1e-9
    assert battery.soc == pytest.approx(stored, abs=1e-6)


def test_config_names_a_bad_battery_key() -> None:
    with pytest.raises(ValidationError, match="capacity_kwh"):
        SiteConfig.model_validate({"battery": {"capacity_kwh": 0}})
    with pytest.raises(ValidationError, match="capacity"):
        SiteConfig.model_validate({"battery": {"capasity_kwh": 5}})


BATTERY_RULES = """\
policies:
  - name: battery-helps-when-full
    kind: battery_use
    priority: 40
    use_battery: true
    when:
      battery_soc_above: 80
"""


def test_the_replay_shows_the_engine_the_battery_and_the_report_counts_it(tmp_path: Path) -> None:
    # Sun all day: the battery fills up from 50 %, and once it is above 80 % the battery rule
    # (which needs a state of charge, so never acts without a battery) sends its setting once.
    rules = tmp_path / "battery.yaml"
    rules.write_text(BATTERY_RULES, encoding="utf-8")
    series = series_of(
        [3.0] * 96, 0.4, (Session(T0 + timedelta(hours=9), T0 + timedelta(hours=12), 4.0),)
    )
    policies = load_rules([RULES, rules], tariffs=None).enabled
    config = Config(site=SiteConfig(battery=TEN))
    result = replay(series, policies, config=config, limits=LIMITS, voltage_v=VOLTS)
    assert result.battery is not None
    assert result.by_action.get("set_battery") == 1
    assert result.battery.soc_pct[0] == pytest.approx(50.0)
    assert max(result.battery.soc_pct) == pytest.approx(100.0)
    bare = replay(series, policies, config=Config(), limits=LIMITS, voltage_v=VOLTS)
    assert bare.battery is None
    assert "set_battery" not in bare.by_action  # no state of charge: the rule never applies
    report = build_report(
        series,
        result.ev_kwh,
        commands=result.commands,
        limits=LIMITS,
        voltage_v=VOLTS,
        battery=TEN,
        battery_flows=result.battery,
    )
    plain = figures(series, result.ev_kwh, commands=0)
    charged = sum(result.battery.charge_kwh)
    assert report.figures.grid_export_kwh == pytest.approx(plain.grid_export_kwh - charged)
    assert report.battery is not None
    assert report.battery["charged_kwh"] == pytest.approx(charged, abs=1e-3)
    # The baselines run the same battery: their export is lower by what it took, too.
    optimal = report.baselines["optimal"]
    assert optimal is not None
    assert optimal.grid_export_kwh < figures(series, result.ev_kwh, commands=0).grid_export_kwh
    assert report.to_json()["home_battery"]["capacity_kwh"] == 10


def test_run_battery_matches_the_replay_when_it_never_feeds_the_car() -> None:
    series = series_of([2.0] * 48 + [0.0] * 48, 0.5, (Session(T0, T0 + timedelta(hours=6), 6.0),))
    policies = load_rules([RULES], tariffs=None).enabled
    config = Config(site=SiteConfig(battery=TEN))
    result = replay(series, policies, config=config, limits=LIMITS, voltage_v=VOLTS)
    again = run_battery(series, result.ev_kwh, TEN)
    assert result.battery is not None
    assert again.charge_kwh == pytest.approx(result.battery.charge_kwh)
    assert again.discharge_kwh == pytest.approx(result.battery.discharge_kwh)
