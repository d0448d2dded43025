"""The seeded histories in other climates (optimizer/simulate/sample/synth.py): reproducible,
physically possible, in the shapes `evopt simulate` parses, with the habits they claim."""

from __future__ import annotations

import dataclasses
import filecmp
import json
import statistics
from datetime import UTC, date, datetime, timedelta
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from optimizer.cli import main
from optimizer.cli.simulate import load_history
from optimizer.config import load_config
from optimizer.enlighten.models import ChargingSession, LifetimeEnergy
from optimizer.simulate.sample import (
    DEFAULT_SAMPLE,
    SAMPLES,
    sample_config_path,
    sample_paths,
    sample_site,
    synth,
)
from optimizer.simulate.series import series_from_history

NAMES = tuple(synth.HISTORIES)
QUARTER_H = 0.25


@cache
def _loaded(name: str) -> tuple[LifetimeEnergy, tuple[ChargingSession, ...]]:
    energy, pages = sample_paths(name)
    parsed, sessions = load_history(
        str(energy), [str(p) for p in pages], timezone=SAMPLES[name].timezone
    )
    return parsed, tuple(sorted(sessions, key=lambda s: s.started_at))


@cache
def _raw(name: str) -> dict[str, Any]:
    energy, _ = sample_paths(name)
    payload: dict[str, Any] = json.loads(energy.read_text(encoding="utf-8"))
    return payload


def _known(values: list[int | None]) -> list[int]:
    return [v for v in values if v is not None]


# --- reproducible ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_the_generator_remakes_the_shipped_files_byte_for_byte(name: str, tmp_path: Path) -> None:
    """Same seed, same bytes: the files in the package are exactly what the generator makes."""
    history = synth.HISTORIES[name]
    synth.build(history, tmp_path)
    shipped = history.folder / "data"
    names = sorted(p.name for p in shipped.glob("*.json"))
    assert names == sorted(p.name for p in tmp_path.glob("*.json"))
    match, mismatch, errors = filecmp.cmpfiles(shipped, tmp_path, names, shallow=False)
    assert (mismatch, errors) == ([], [])
    assert len(match) == 13  # the energy file and twelve monthly pages


def test_another_seed_gives_other_weather_and_other_plugs() -> None:
    history = synth.SEATTLE
    other = dataclasses.replace(history, seed=history.seed + 7)
    assert synth.weather(history) == synth.weather(history)
    assert synth.weather(history)[0] != synth.weather(other)[0]
    assert synth.plugs(history) == synth.plugs(history)
    assert synth.plugs(history) != synth.plugs(other)


# --- physics -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_no_bucket_above_what_the_panels_or_the_charger_could_deliver(name: str) -> None:
    history = synth.HISTORIES[name]
    raw = _raw(name)
    day_temp = synth.weather(history)[1]
    clear = synth.clear_sky_wh(history, synth.air_temperature(history, day_temp))
    production, evse = raw["production"], raw["evse"]
    assert len(production) == len(clear)
    # Rounding to whole Wh keeps running totals, so a bucket may carry one Wh more.
    for made, bound in zip(production, clear, strict=True):
        assert made is None or 0 <= made <= bound + 1
    assert max(_known(production)) <= history.ac_kw * 1000 * QUARTER_H
    assert max(_known(production)) > 0.8 * history.ac_kw * 1000 * QUARTER_H  # clear noons
    charger_wh = history.amps * history.voltage * QUARTER_H
    assert all(0 <= value <= charger_wh + 1 for value in _known(evse))
    assert max(_known(evse)) > charger_wh - 2  # full power from plug-in, as the history says


@pytest.mark.parametrize("name", NAMES)
def test_flows_balance_and_the_battery_stays_within_its_limits(name: str) -> None:
    history = synth.HISTORIES[name]
    raw = _raw(name)
    battery = history.battery
    stored = None
    if battery is not None:
        top = battery.capacity_kwh * 1000
        floor = top * battery.reserve_pct / 100
        stored = (top + floor) / 2
    for index in range(len(raw["production"])):
        p, c, e = (raw[f][index] for f in ("production", "consumption", "evse"))
        if p is None:
            assert c is None
            assert e is None
            continue
        sh, sg, gh = (raw[f][index] for f in ("solar_home", "solar_grid", "grid_home"))
        into = raw["solar_battery"][index] or 0
        out = raw["battery_home"][index] or 0
        assert p == sh + sg + into
        assert c == sh + gh + out
        assert min(sh, sg, gh, into, out) >= 0
        assert c >= e  # consumption includes the car
        assert (raw["import"][index], raw["export"][index]) == (gh, sg)
        if battery is not None and stored is not None:
            assert into <= battery.power_kw * 1000 * QUARTER_H + 1
            assert out <= battery.power_kw * 1000 * QUARTER_H + 1
            one_way = battery.efficiency**0.5
            stored += into * one_way - out / one_way
            assert floor - 2 <= stored <= top + 2
        else:
            assert raw["charge"][index] is None
    assert (battery is not None) == any(_known(raw["charge"]))


@pytest.mark.parametrize("name", NAMES)
def test_the_null_days_are_missing_in_every_flow(name: str) -> None:
    history = synth.HISTORIES[name]
    energy, _ = _loaded(name)
    zone = ZoneInfo(history.timezone)
    assert history.null_days
    for day in history.null_days:
        first = energy.index_at(datetime.combine(day, datetime.min.time(), tzinfo=zone))
        assert first is not None
        for flow in ("production", "consumption", "evse", "grid_home"):
            assert set(range(first, first + 96)) <= set(energy.missing(flow)), flow


# --- shapes: what `evopt simulate` reads --------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_a_year_of_quarter_hours_and_sessions_that_parse_and_add_up(name: str) -> None:
    history = synth.HISTORIES[name]
    energy, sessions = _loaded(name)
    zone = ZoneInfo(history.timezone)
    start = datetime(2025, 1, 1, tzinfo=zone)
    assert energy.bucket_start(0) == start
    assert energy.bucket_count == (datetime(2026, 1, 1, tzinfo=zone) - start) // timedelta(
        minutes=15
    )
    assert len(sessions) > 150
    assert {s.started_at.astimezone(zone).month for s in sessions} == set(range(1, 13))
    for earlier, later in pairwise(sessions):
        assert earlier.ended_at is not None
        assert earlier.ended_at < later.started_at
    for session in sessions:
        assert session.ended_at is not None
        assert session.energy_kwh is not None
        hours = (session.ended_at - session.started_at) / timedelta(hours=1)
        assert hours >= 1
        assert 0 < session.energy_kwh <= history.car_kwh
        # Feasible with a plan's margin and the report lag to spare (synth.SLACK).
        assert session.energy_kwh <= (hours - 0.75) * history.charge_w / 1000 + 0.01
    evse = sum(_known(_raw(name)["evse"])) / 1000
    taken = sum(s.energy_kwh or 0.0 for s in sessions)
    assert taken >= evse - 0.01  # a null day hides some of the sessions' energy
    assert taken - evse < 60
    config = load_config(sample_config_path(name))
    series = series_from_history(
        energy, sessions, tariffs=config.tariffs, timezone=history.timezone
    )
    assert len(series.sessions) == len(sessions)
    assert sum(series.missing) == 96 * len(history.null_days)


@pytest.mark.parametrize("name", NAMES)
def test_each_config_validates_and_names_the_rules_windows(name: str) -> None:
    history = synth.HISTORIES[name]
    config = load_config(sample_config_path(name))
    assert config.site.timezone == history.timezone == SAMPLES[name].timezone
    assert config.site.latitude == pytest.approx(history.latitude)
    assert config.site.max_current == history.amps
    assert config.site.voltage == history.voltage
    assert {"off_peak", "peak"} <= set(config.tariffs.windows)
    assert config.rules == []
    if history.battery is not None:
        assert config.site.battery is not None
        assert config.site.battery.capacity_kwh == history.battery.capacity_kwh
    else:
        assert config.site.battery is None


# --- the habits each history claims -------------------------------------------------------------


def _local(when: datetime | None, zone: str) -> datetime:
    assert when is not None
    return when.astimezone(ZoneInfo(zone))


def test_seattle_is_a_0700_commuter_in_a_grey_winter() -> None:
    zone = synth.SEATTLE.timezone
    _, sessions = _loaded("seattle")
    ends = [_local(s.ended_at, zone) for s in sessions]
    weekday_mornings = [e for e in ends if e.weekday() < 5 and e.hour < 10]
    assert len(weekday_mornings) > 120
    minutes = [e.hour * 60 + e.minute for e in weekday_mornings]
    assert 415 <= statistics.median(minutes) <= 425  # 06:55-07:05
    assert any(
        (e - _local(s.started_at, zone)).days >= 2 for s, e in zip(sessions, ends, strict=True)
    )
    raw = _raw("seattle")
    december = sum(_known(raw["production"][334 * 96 : 365 * 96]))
    july = sum(_known(raw["production"][181 * 96 : 212 * 96]))
    assert july > 3 * december  # about 1.3 kWh/kWp a day in December, 4.1 in July


def test_phoenix_is_a_shift_worker_with_monsoon_afternoons() -> None:
    zone = synth.PHOENIX.timezone
    _, sessions = _loaded("phoenix")
    starts = [_local(s.started_at, zone).hour for s in sessions]
    # After day, night and swing shifts: afternoon, morning and late-evening plug-ins.
    assert sum(5 <= h < 10 for h in starts) > 30
    assert sum(13 <= h < 17 for h in starts) > 30
    assert sum(h >= 21 or h < 2 for h in starts) > 30
    gaps = [
        (later.started_at - earlier.ended_at) / timedelta(days=1)
        for earlier, later in pairwise(sessions)
        if earlier.ended_at is not None
    ]
    assert sum(gap >= 2.5 for gap in gaps) >= 5  # long weekend trips
    # Monsoon: July-September afternoons lose more of their clear-sky PV than May-June's.
    history = synth.PHOENIX
    index_k, _ = synth.weather(history)
    origin = datetime(2025, 1, 1, tzinfo=ZoneInfo(zone)).astimezone(UTC)

    def afternoon_k(months: set[int]) -> float:
        chosen = [
            k
            for i, k in enumerate(index_k)
            if (at := (origin + timedelta(minutes=15 * i)).astimezone(ZoneInfo(zone))).month
            in months
            and 14 <= at.hour < 18
        ]
        return statistics.fmean(chosen)

    assert afternoon_k({7, 8, 9}) < afternoon_k({5, 6}) - 0.1


# --- `evopt simulate --sample NAME` -------------------------------------------------------------


def test_sample_name_replays_that_history_in_its_own_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = Path(__file__).parents[1] / "rules" / "excess-solar.yaml"
    config = tmp_path / "config.yaml"
    config.write_text(f"rules:\n  - {rules}\n")  # no site.timezone: the sample's own
    week = ["--from", "2025-07-07", "--to", "2025-07-13", "--no-log", "--json"]
    assert main(["--config", str(config), "simulate", "--sample", "phoenix", *week]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["period"]["start"] == "2025-07-07T07:00:00+00:00"  # midnight in Phoenix
    energy, _ = _loaded("phoenix")
    assert report["baselines"]["immediate"]["ev_energy_kwh"] > 0
    assert energy.system_id == synth.PHOENIX.system_id
    assert main(["--config", str(config), "simulate", "--sample", *week]) == 0
    default = json.loads(capsys.readouterr().out)
    assert default["period"]["start"] == "2025-07-07T04:00:00+00:00"  # New York: the default
    assert DEFAULT_SAMPLE == "greensboro"


def test_a_sample_read_in_another_zone_is_the_same_household(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read in the config's zone, the history's buckets start at that zone's midnight; its
    sessions must move with them, or the household is another one (Greensboro's evening
    commuter, read in Melbourne, was home through the midday sun: five times the optimum's
    solar). Phoenix in Tokyo (neither has daylight saving time, so local clocks stay in step
    all year): the same week's report, figure for figure, the period aside."""
    rules = Path(__file__).parents[1] / "rules" / "excess-solar.yaml"
    own = sample_config_path("phoenix").read_text(encoding="utf-8")
    assert "timezone: America/Phoenix" in own
    reports = []
    for zone in ("America/Phoenix", "Asia/Tokyo"):
        config = tmp_path / f"{zone.replace('/', '-')}.yaml"
        text = own.replace("timezone: America/Phoenix", f"timezone: {zone}")
        config.write_text(text.replace("\nrules: []", f"\nrules:\n  - {rules}"))
        week = ["--from", "2025-03-03", "--to", "2025-03-09", "--no-log", "--json"]
        assert main(["--config", str(config), "simulate", "--sample", "phoenix", *week]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    home, away = reports
    assert away["period"]["start"] == "2025-03-02T15:00:00+00:00"  # midnight in Tokyo
    assert home["baselines"]["optimal"]["ev_solar_kwh"] > 50  # a week with sun in the car
    assert home["ev_solar_kwh"] > 40
    assert home["commands"] > 20
    for report in reports:
        del report["period"]
    assert away == home


def test_an_unknown_sample_name_lists_the_valid_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("rules: []\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(config), "simulate", "--sample", "atlantis"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "atlantis" in err
    for name in SAMPLES:
        assert name in err
    assert "Traceback" not in err
    with pytest.raises(KeyError, match="valid: greensboro, seattle, phoenix"):
        sample_paths("atlantis")


def test_every_sample_is_registered_with_its_files() -> None:
    assert set(SAMPLES) == {DEFAULT_SAMPLE, *NAMES}
    for name in SAMPLES:
        energy, pages = sample_paths(name)
        assert energy.is_file()
        assert len(pages) == 12
        assert sample_config_path(name).is_file()
    assert date(2025, 1, 1).year == synth.YEAR


@pytest.mark.parametrize("name", list(SAMPLES))
def test_each_sample_s_sun_stands_where_its_history_was_made(name: str) -> None:
    """`--sample NAME` forecasts at that history's own site (Seattle's was forecast at
    Greensboro's latitude), moved east by 15 degrees an hour when read in a later zone."""
    site = load_config(sample_config_path(name)).site
    own = sample_site(name, SAMPLES[name].timezone)
    assert (own.latitude, own.longitude) == pytest.approx((site.latitude, site.longitude))
    assert own.timezone == SAMPLES[name].timezone
    offset = datetime(2025, 1, 1, tzinfo=ZoneInfo(SAMPLES[name].timezone)).utcoffset()
    assert offset is not None
    later = sample_site(name, "Asia/Tokyo")  # +9 h, no daylight saving time
    shift = 15 * (9 - offset / timedelta(hours=1))
    assert later.latitude == own.latitude
    assert later.longitude == pytest.approx((own.longitude + shift + 180) % 360 - 180)


# --- invariants over seeds and profiles ---------------------------------------------------------


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**31), name=st.sampled_from(NAMES))
def test_any_seed_gives_plugs_a_charger_can_serve_and_an_index_within_the_sky(
    seed: int, name: str
) -> None:
    history = dataclasses.replace(synth.HISTORIES[name], seed=seed)
    found = synth.plugs(history)
    assert found
    for earlier, later in pairwise(found):
        assert earlier.unplug < later.plug_in
    for plug in found:
        assert plug.unplug - plug.plug_in >= timedelta(hours=1)
        assert 0 < plug.wanted_kwh <= history.car_kwh
    index_k, day_temp = synth.weather(history)
    assert all(0 < k <= 1 for k in index_k)
    assert len(day_temp) == 365


@settings(max_examples=50, deadline=None)
@given(
    made=st.lists(st.integers(min_value=0, max_value=2000), min_size=1, max_size=200),
    used=st.lists(st.integers(min_value=0, max_value=4000), min_size=200, max_size=200),
)
# Emptied to the reserve, the store landed a rounding under it: a discharge of -1e-13 Wh.
@example(
    made=[0, 0, 12, 88, 327, 1058, 3, 1058, 0, 0],
    used=[0, 843, 879, 966, 1049, 639, 961, 874, 544, *[0] * 191],
)
def test_the_home_battery_never_passes_its_power_reserve_or_capacity(
    made: list[int], used: list[int]
) -> None:
    battery = synth.PHOENIX.battery
    assert battery is not None
    used = used[: len(made)]
    into, out = synth.battery_flows(battery, made, used)
    one_way = battery.efficiency**0.5
    top = battery.capacity_kwh * 1000
    floor = top * battery.reserve_pct / 100
    stored = (top + floor) / 2
    step = battery.power_kw * 1000 * QUARTER_H
    for charge_wh, give, p, c in zip(into, out, made, used, strict=True):
        assert 0 <= charge_wh <= min(step, max(p - c, 0)) + 1e-9
        assert 0 <= give <= min(step, max(c - p, 0)) + 1e-9
        stored += charge_wh * one_way - give / one_way
        assert floor - 1e-6 <= stored <= top + 1e-6
