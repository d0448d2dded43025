"""Session energy as the 2026 cloud sends it: units by shape, readings checked against physics.

Fixtures are the reference's minimal wrapped status (``status_2026``) and variants derived from
it, one per reply seen in the field (enlighten-2026.md section 1).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.engine.decision import ChargerMemory, Memory
from optimizer.engine.evaluate import evaluate, track_energy, track_plug
from optimizer.engine.snapshot import Snapshot, TariffNow
from optimizer.enlighten.models import parse_status
from optimizer.observe.session_energy import (
    SINGLE_PHASE_CAP_W,
    Reading,
    Track,
    Verdict,
    check_charger,
    check_reading,
    energy_bound_kwh,
    max_power_w,
)
from tests.fixtures import load_fixture
from tests.profiles import examples
from tests.test_engine_sim import make_charger, policies

P_MAX = 7360.0  # 32 A x 230 V
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def status(name: str) -> Any:
    return parse_status(load_fixture(name)).chargers[0]


def check(track: Track | None, name: str) -> Verdict:
    """The reading as the service makes it, read at the reply's own server time (else 10 s
    after the charger's report)."""
    charger = status(name)
    now = parse_status(load_fixture(name)).server_time
    if now is None:
        assert charger.last_reported_at is not None
        now = charger.last_reported_at + timedelta(seconds=10)
    return check_charger(track, charger, None, now=now)


def run(*names: str) -> list[Verdict]:
    verdicts: list[Verdict] = []
    track: Track | None = None
    for name in names:
        verdicts.append(check(track, name))
        track = verdicts[-1].track
    return verdicts


# --- units by shape ----------------------------------------------------------------------------


def test_the_wrapped_shape_is_wh_and_keeps_the_raw_value() -> None:
    session = status("status_2026").session
    assert session.energy_kwh == pytest.approx(4.2105)
    assert (session.energy_raw, session.energy_unit, session.energy_unit_by) == (
        4210.5,
        "Wh",
        "shape",
    )


def test_the_first_watt_hours_of_a_session_are_wh_not_kwh() -> None:
    """The old ">200 is Wh" rule read this 150 Wh as 150 kWh."""
    assert status("status_2026_session_start").session.energy_kwh == pytest.approx(0.15)


def test_the_flat_shape_is_kwh() -> None:
    session = status("status_legacy").session
    assert (session.energy_kwh, session.energy_unit, session.energy_unit_by) == (
        1.25,
        "kWh",
        "shape",
    )


def test_an_unknown_shape_falls_back_to_the_threshold_and_physics_corrects_it() -> None:
    session = status("status_2026_unit_ambiguous").session
    assert (session.energy_unit, session.energy_unit_by) == ("kWh", "threshold")
    verdict = check(None, "status_2026_unit_ambiguous")
    assert verdict.problem is None
    assert verdict.kwh == pytest.approx(0.15)  # 150 kWh in 2 minutes is Wh
    assert (verdict.unit, verdict.track.unit) == ("Wh", "Wh")  # fixed for the session


def test_a_flat_value_too_big_for_kwh_is_wh() -> None:
    verdict = check(None, "status_legacy_unit_flip")
    assert (verdict.kwh, verdict.unit, verdict.problem) == (pytest.approx(1.25), "Wh", None)


@pytest.mark.parametrize("name", ["status_2026", "status_2026_charge_level_missing"])
def test_charge_level_is_null_or_missing(name: str) -> None:
    assert status(name).session.charge_level_amps is None


@pytest.mark.parametrize(
    ("name", "charging", "safe"),
    [
        ("status_2026", True, False),
        ("status_2026_safe_limit_charging", True, True),
        ("status_2026_safe_limit_idle", False, True),
    ],
)
def test_safe_limit_state_is_parsed(name: str, charging: bool, safe: bool) -> None:
    charger = status(name)
    assert (charger.charging, charger.safe_limit) == (charging, safe)


# --- P_max -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("voltage", "amps", "phases", "watts"),
    [
        (230, 32, 1, 7360),
        (240, 80, 1, SINGLE_PHASE_CAP_W),
        (240, 100, 1, SINGLE_PHASE_CAP_W),  # capped at 19.2 kW single phase
        (230, 32, 3, 3 * 7360),  # line-to-neutral: 3 x V x A
        (400, 32, 3, math.sqrt(3) * 400 * 32),  # line-to-line: not 3 x
        (None, 16, 1, 230 * 16),
        (230, 16, None, 3 * 230 * 16),  # phases unknown: it may have three (a bound)
    ],
)
def test_max_power(voltage: float | None, amps: int, phases: int | None, watts: float) -> None:
    assert max_power_w(voltage_v=voltage, max_amps=amps, phases=phases) == pytest.approx(watts)


# --- one reading after another -----------------------------------------------------------------


def test_a_decrease_keeps_the_highest_value() -> None:
    first, lower = run("status_2026", "status_2026_decrease")
    assert first.kwh == pytest.approx(4.2105)
    assert lower.kwh == pytest.approx(4.2105)
    assert lower.problem is not None
    assert "fell" in lower.problem


@pytest.mark.parametrize(
    ("bad", "reported"),
    [("status_2026_spike", True), ("status_2026_unit_flip", True), ("status_2026_garbage", False)],
)
def test_a_bad_reading_is_ignored_and_never_latched(bad: str, reported: bool) -> None:
    """A spike or a flipped unit is reported; a value that is no number is simply none."""
    good, glitch, next_good = run("status_2026", bad, "status_2026_next_report")
    assert glitch.kwh == good.kwh
    assert (glitch.problem is not None, glitch.report) == (reported, reported)
    assert next_good.problem is None
    assert next_good.kwh == pytest.approx(4.59)


def test_a_problem_is_reported_once_per_session() -> None:
    verdicts = run("status_2026", "status_2026_spike", "status_2026_unit_flip", "status_2026_spike")
    assert [v.report for v in verdicts] == [False, True, False, False]
    assert all(v.problem for v in verdicts[1:])


def test_a_new_strt_chrg_is_a_new_segment() -> None:
    _, segment = run("status_2026", "status_2026_new_segment")
    assert segment.problem is None
    assert segment.kwh == pytest.approx(0.12)


def test_after_unplugging_the_figure_is_not_new_energy() -> None:
    _, unplugged = run("status_2026", "status_2026_unplugged")
    assert unplugged.kwh == pytest.approx(4.2105)  # the 4.35 after plg_out_at is not counted
    assert unplugged.track.ended


def test_the_bound_uses_the_chargers_report_time_not_the_read() -> None:
    """150 Wh two minutes after strt_chrg is fine; as kWh it is not, whenever it is read."""
    reading = Reading(
        raw=150.0,
        unit="kWh",
        by_shape=True,
        started_at=T0,
        plugged_in_at=T0,
        plugged_out_at=None,
        reported_at=T0 + timedelta(minutes=2),
        observed_at=T0 + timedelta(hours=30),
    )
    verdict = check_reading(Track(), reading, P_MAX)
    assert verdict.kwh == pytest.approx(0.15)
    assert verdict.unit == "Wh"


def test_a_reading_without_a_report_time_may_be_a_report_old() -> None:
    """The flat shape has no lst_rpt_at: its figure can be up to one report old, so the next
    report's jump (5 minutes of charging, seen 30 s later) is not refused."""
    flat = Reading(0.92, "kWh", True, T0, None, None, None, T0 + timedelta(minutes=12))
    first = check_reading(Track(), flat, P_MAX)
    later = replace(flat, raw=1.38, observed_at=flat.observed_at + timedelta(seconds=30))
    second = check_reading(first.track, later, P_MAX)
    assert second.problem is None
    assert second.track.best == pytest.approx(1.38)


def test_the_flat_shape_keeps_the_session_of_the_wrapped_one() -> None:
    """Without plg_in_at, the same strt_chrg is the same session: no second report."""
    wrapped = Reading(1.0, "kWh", True, T0, T0 - timedelta(hours=1), None, T0, T0)
    flat = replace(wrapped, plugged_in_at=None, raw=5000.0, observed_at=T0 + timedelta(minutes=1))
    one = check_reading(Track(), wrapped, P_MAX)
    two = check_reading(one.track, flat, P_MAX)
    three = check_reading(two.track, replace(flat, observed_at=T0 + timedelta(minutes=2)), P_MAX)
    assert (two.report, three.report) == (True, False)


# --- properties --------------------------------------------------------------------------------

ANCHORS = [None, T0, T0 + timedelta(minutes=30), T0 + timedelta(hours=2)]
ODD = st.sampled_from([math.nan, math.inf, -math.inf, -5.0, 0.0, 1e300, 200.0, 201.0])
# A reading's field strategies, built once: one made inside the loop below is a new object
# each reading, which hypothesis validates again every time. The same strategies as written
# inline before, so the same sequences are drawn.
LAGS = st.none() | st.integers(-600, 1200)
RAWS = st.none() | st.floats(0, 100_000, allow_nan=False) | st.floats(0, 50) | ODD
UNITS = st.sampled_from(["Wh", "kWh", None])
STARTS = st.sampled_from(ANCHORS)
PLUG_INS = st.sampled_from(ANCHORS[:2])
PLUG_OUTS = st.sampled_from([None, None, T0 + timedelta(hours=1)])


@st.composite
def readings(draw: st.DrawFn) -> list[Reading]:
    """Arbitrary sequences: garbage, unit flips, decreases, huge values, skewed times."""
    count = draw(st.integers(1, 40))
    observed = T0
    out = []
    for _ in range(count):
        observed += timedelta(seconds=draw(st.integers(0, 900)))
        lag = draw(LAGS)
        raw = draw(RAWS)
        out.append(
            Reading(
                raw=raw,
                unit=draw(UNITS),
                by_shape=draw(st.booleans()),
                started_at=draw(STARTS),
                plugged_in_at=draw(PLUG_INS),
                plugged_out_at=draw(PLUG_OUTS),
                reported_at=None if lag is None else observed - timedelta(seconds=lag),
                observed_at=observed,
            )
        )
    return out


def delivered(outputs: list[float | None]) -> list[float | None]:
    """What the engine makes of the handed-on figures: energy since plug-in (its own rule)."""
    known = ChargerMemory(last_seen_plugged_in=True)
    result: list[float | None] = []
    for kwh in outputs:
        view = make_charger(session_kwh=kwh, charging=True)
        known, just = track_plug(known, view)
        known = track_energy(known, view, just)
        seen = known.session_kwh_seen
        result.append(None if seen is None else known.energy_base_kwh + seen)
    return result


@settings(max_examples=examples(100), deadline=None)  # a long reading sequence each
@given(readings())
def test_no_reading_makes_delivered_energy_jump(sequence: list[Reading]) -> None:
    """Whatever the cloud sends, neither the figure handed on nor the engine's energy since
    plug-in rises by more than the charger could deliver between two polls."""
    track, outputs = Track(), []
    for reading in sequence:
        verdict = check_reading(track, reading, P_MAX)
        track = verdict.track
        assert verdict.kwh is None or (math.isfinite(verdict.kwh) and verdict.kwh >= 0)
        outputs.append(verdict.kwh)
    times = [reading.observed_at for reading in sequence]  # the polls, not the reports
    for series in (outputs, delivered(outputs)):
        for n in range(1, len(series)):
            before, after = series[n - 1], series[n]
            if before is None or after is None:
                continue
            most = energy_bound_kwh(P_MAX, (times[n] - times[n - 1]).total_seconds())
            assert after - before <= most + 1e-9, (n, before, after, most)


GLITCHES = {
    "spike": lambda wh: wh + 250_000.0,
    "unit_flip": lambda wh: wh / 1000.0,
    "decrease": lambda wh: wh / 2,
    "huge": lambda _: 1e12,
    "nan": lambda _: math.nan,
}
# Off-peak top-up: stops when 30 kWh are in the car; 30 kWh take far longer than this sim.
TOP_UP = {
    "name": "top-up",
    "kind": "tariff_window",
    "priority": 60,
    "windows": ["off_peak"],
    "amps": 16,
    "target": {"energy_kwh": 30, "by": "07:00"},
}


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(sorted(GLITCHES)),
    where=st.integers(1, 18),
    lag=st.integers(0, 299),
)
def test_one_bad_reading_never_stops_the_car(kind: str, where: int, lag: int) -> None:
    """A policy that stops on "energy reached" must not stop on a glitch."""
    rules = policies(TOP_UP)
    memory, track = Memory(), Track()
    start = T0 + timedelta(hours=14)  # any night: the window is all the policy looks at
    for tick in range(20):
        now = start + timedelta(seconds=30 * tick + lag)
        report = start + timedelta(seconds=30 * tick)
        wh = 16 * 230 * (30 * tick) / 3600  # charging at 16 A since the start
        raw = GLITCHES[kind](wh) if tick == where else wh
        reading = Reading(raw, "Wh", True, start, start, None, report, now)
        verdict = check_reading(track, reading, P_MAX)
        track = verdict.track
        charger = make_charger(charging=True, amps=16, session_kwh=verdict.kwh)
        snapshot = Snapshot(
            now=now, timezone="UTC", chargers=(charger,), tariff=TariffNow(window="off_peak")
        )
        decisions, memory = evaluate(snapshot, rules, memory)
        actions = [d.action for d in decisions if d.target == "charging"]
        assert "stop" not in actions, (tick, verdict, decisions)


def test_the_same_policy_does_stop_when_the_target_is_really_reached() -> None:
    """The property above is not vacuous: a real 30 kWh does stop the car."""
    charger = make_charger(charging=True, amps=16, session_kwh=31.0)
    snapshot = Snapshot(
        now=T0, timezone="UTC", chargers=(charger,), tariff=TariffNow(window="off_peak")
    )
    memory = Memory(chargers={charger.sn: ChargerMemory(last_seen_plugged_in=True)})
    decisions, _ = evaluate(snapshot, policies(TOP_UP), memory)
    assert [d.action for d in decisions if d.target == "charging"] == ["stop"]
