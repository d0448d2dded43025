"""The bundled sample history: present, readable by our own parsers, and physically plausible.

The generator itself is not run here (it needs pvlib, which is not a runtime dependency).
"""

from __future__ import annotations

import importlib
import json
import sys
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from optimizer.config import load_config
from optimizer.enlighten.models import (
    ChargingSession,
    LifetimeEnergy,
    parse_lifetime_energy,
    parse_session_history_page,
)
from optimizer.simulate.sample import NULL_DAY, TIMEZONE, sample_config_path, sample_paths

QUARTER = timedelta(minutes=15)
FLOWS = ("production", "consumption", "solar_home", "solar_grid", "grid_home", "evse")
BATTERY = ("charge", "discharge", "solar_battery", "battery_home", "battery_grid", "grid_battery")


@cache
def _raw() -> dict[str, object]:
    energy, _ = sample_paths()
    payload = json.loads(energy.read_text(encoding="utf-8"))
    assert isinstance(payload, dict)
    return payload


@cache
def _energy() -> LifetimeEnergy:
    return parse_lifetime_energy(_raw(), timezone=TIMEZONE)


@cache
def _sessions() -> tuple[ChargingSession, ...]:
    _, pages = sample_paths()
    found: list[ChargingSession] = []
    for page in pages:
        parsed = parse_session_history_page(json.loads(page.read_text(encoding="utf-8")))
        assert not parsed.has_more
        found.extend(parsed.sessions)
    return tuple(sorted(found, key=lambda s: s.started_at))


def _known(flow: str) -> list[tuple[int, float]]:
    return [(i, v) for i, v in enumerate(_energy().values(flow)) if v is not None]


def test_files_exist_and_load() -> None:
    energy, pages = sample_paths()
    assert energy.is_file()
    assert energy.suffix == ".json"
    assert len(pages) == 12
    assert all(isinstance(p, Path) and p.is_file() for p in pages)
    assert pages == sorted(pages)


def test_a_full_year_of_quarter_hours() -> None:
    energy = _energy()
    assert energy.interval == QUARTER
    assert energy.system_id is not None
    zone = ZoneInfo(TIMEZONE)
    start = datetime(2025, 1, 1, tzinfo=zone)
    end = datetime(2026, 1, 1, tzinfo=zone)
    assert energy.bucket_count == (end - start) // QUARTER  # 35,040: both DST changes inside
    assert energy.bucket_start(0) == start
    assert energy.bucket_end(energy.bucket_count - 1).astimezone(UTC) == end.astimezone(UTC)
    raw = _raw()
    for flow in (*FLOWS, "import", "export"):
        assert len(energy.values(flow)) == energy.bucket_count, flow
    for flow in BATTERY:
        assert raw[flow] == [None] * energy.bucket_count, flow
    assert raw["heatpump"] == []
    assert raw["water_heater"] == []


def test_production_is_zero_at_night_and_peaks_plausibly() -> None:
    energy = _energy()
    production = _known("production")
    assert all(v >= 0 for _, v in production)
    for index, value in production:
        hour = energy.bucket_start(index).hour
        if hour < 5 or hour >= 21:
            assert value == 0, energy.bucket_start(index)
    peak = max(v for _, v in production)
    assert 1000 <= peak <= 1250  # a 6 kWp array on a 5 kW inverter: at most 1.25 kWh / 15 min
    yearly_kwh = sum(v for _, v in production) / 1000
    assert 7000 < yearly_kwh < 9500  # about 1,350 kWh per kWp in North Carolina
    by_hour = [0.0] * 24
    for index, value in production:
        by_hour[energy.bucket_start(index).hour] += value
    assert by_hour.index(max(by_hour)) in (12, 13)  # solar noon, mostly summer time


def test_house_load_is_about_ten_kwh_a_day() -> None:
    consumption = dict(_known("consumption"))
    evse = dict(_known("evse"))
    house = [consumption[i] - evse[i] for i in consumption]
    assert all(v > 0 for v in house)
    assert 9.0 < sum(house) / 1000 / (len(house) / 96) < 11.0


def test_flows_balance() -> None:
    energy = _energy()
    for index in range(energy.bucket_count):
        p, c, sh, sg, gh, imp, exp = (
            energy.values(flow)[index] for flow in (*FLOWS[:5], "import", "export")
        )
        if p is None:
            continue
        assert c is not None
        assert sh is not None
        assert sg is not None
        assert gh is not None
        assert p == sh + sg
        assert c == sh + gh
        assert (imp, exp) == (gh, sg)


def test_consumption_includes_the_car() -> None:
    evse = dict(_known("evse"))
    consumption = _known("consumption")
    assert consumption
    assert all(value >= evse[index] for index, value in consumption)


def test_the_null_day_is_missing_in_every_flow() -> None:
    energy = _energy()
    zone = ZoneInfo(TIMEZONE)
    first = energy.index_at(datetime.combine(NULL_DAY, datetime.min.time(), tzinfo=zone))
    assert first is not None
    expected = list(range(first, first + 96))
    for flow in (*FLOWS, "import", "export"):
        assert energy.missing(flow) == expected, flow


def test_evse_energy_matches_the_sessions() -> None:
    energy = _energy()
    sessions = _sessions()
    assert len(sessions) > 250
    evse = energy.values("evse")
    null_day = set(energy.missing("evse"))
    accounted = 0.0
    cut = 0
    for session in sessions:
        assert session.energy_kwh is not None
        assert session.ended_at is not None
        assert session.ended_at > session.started_at
        first = energy.index_at(session.started_at)
        assert first is not None
        last = energy.index_at(session.ended_at) or energy.bucket_count - 1
        buckets = range(first, last + 1)
        delivered = sum(evse[i] or 0.0 for i in buckets) / 1000
        if null_day.intersection(buckets):
            cut += 1
            assert delivered <= session.energy_kwh + 0.006
        else:
            assert delivered == pytest.approx(session.energy_kwh, abs=0.006)
        accounted += delivered
    # The null day's Saturday session, and Friday night's (unplugged that morning).
    assert cut == 2
    assert sum(s.energy_kwh or 0 for s in sessions) - accounted > 1.0
    total = sum(v for _, v in _known("evse")) / 1000
    assert total == pytest.approx(accounted, abs=0.01)


def test_sessions_look_like_a_commuter() -> None:
    zone = ZoneInfo(TIMEZONE)
    sessions = _sessions()
    evenings = [s for s in sessions if s.started_at.astimezone(zone).hour >= 16]
    assert len(evenings) > 200
    for earlier, later in pairwise(sessions):
        assert earlier.ended_at is not None
        assert earlier.ended_at < later.started_at
    for session in sessions:
        assert session.energy_kwh is not None
        assert 5 <= session.energy_kwh <= 20
        assert session.cost is not None
        assert session.cost > 0
        assert session.manual_override is True
    assert {s.started_at.month for s in sessions} == set(range(1, 13))


def test_sample_config_validates() -> None:
    config = load_config(sample_config_path())
    assert config.site.timezone == TIMEZONE
    assert config.site.max_current == 32
    assert {"off_peak", "peak"} <= set(config.tariffs.windows)
    assert config.rules == []


def test_generator_imports_without_pvlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pvlib", None)  # importing pvlib now fails
    monkeypatch.delitem(sys.modules, "optimizer.simulate.sample.generate", raising=False)
    generate = importlib.import_module("optimizer.simulate.sample.generate")
    assert generate.TIMEZONE == TIMEZONE
    assert generate.NULL_DAY == NULL_DAY
    with pytest.raises(ImportError):
        generate.model_weather()
    quarters = generate.quarters_from_hours([0.0, 1000.0, 4800.0, 0.0], 1250.0)
    assert len(quarters) == 16
    assert sum(quarters) == pytest.approx(5800.0)
    assert max(quarters) <= 1250.0
    assert quarters[:4] == [0.0] * 4
