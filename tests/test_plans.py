"""Departure plans: parsing and storage, the engine meeting them, the replay, the CLI, the sample.

The replay cases are hand-made histories with known answers (a sunless session, a small
surplus, a plan solar alone meets); the last test holds the bundled sample to the issue's bar:
with plans, the example rules reach 85 % of the optimum's solar with no unmet energy.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.cli import main
from optimizer.config import Config, load_config
from optimizer.decisions.store import DecisionStore
from optimizer.engine.loader import load_config_rules, load_rules
from optimizer.engine.snapshot import DeparturePlan, Snapshot
from optimizer.limits import Limits
from optimizer.plans import clear_plan, load_plans, parse_ready_by, save_plan, with_plans
from optimizer.simulate.baselines import optimal
from optimizer.simulate.replay import replay
from optimizer.simulate.series import BUCKET, Session, SiteSeries, figures
from tests.test_engine_sim import make_charger
from tests.test_simulate_golden import GOLDEN, JUNE

ROOT = Path(__file__).parents[1]
RULES = ROOT / "rules" / "excess-solar.yaml"
T0 = datetime(2025, 6, 2, tzinfo=UTC)  # a Monday
VOLTS = 230.0
LIMITS = Limits(6, 32, 1)
FULL_KW = 32 * VOLTS / 1000


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def series_of(pv_kw: list[float], house_kw: float, sessions: tuple[Session, ...]) -> SiteSeries:
    n = len(pv_kw)
    return SiteSeries(
        starts=tuple(T0 + i * BUCKET for i in range(n)),
        pv_kwh=tuple(p / 4 for p in pv_kw),
        house_kwh=(house_kw / 4,) * n,
        missing=(False,) * n,
        import_price=(0.3,) * n,
        export_price=0.05,
        timezone="UTC",
        sessions=sessions,
    )


def run(series: SiteSeries, margin: timedelta | None) -> tuple[float, ...]:
    policies = load_rules([RULES], tariffs=None).enabled
    return replay(
        series, policies, config=Config(), limits=LIMITS, voltage_v=VOLTS, plan_margin=margin
    ).ev_kwh


# --- ready-by times and the stored plans ---------------------------------------------------------


NOW = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)  # 10:00 in New York


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15:30", datetime(2025, 6, 2, 19, 30, tzinfo=UTC)),  # later today, local time
        ("07:00", datetime(2025, 6, 3, 11, 0, tzinfo=UTC)),  # passed today: tomorrow
        ("2025-06-03T08:15", datetime(2025, 6, 3, 12, 15, tzinfo=UTC)),  # local without offset
        ("2025-06-02T18:00+00:00", datetime(2025, 6, 2, 18, 0, tzinfo=UTC)),
    ],
)
def test_ready_by_times(text: str, expected: datetime) -> None:
    assert parse_ready_by(text, now=NOW, timezone="America/New_York") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2025-06-01T10:00", "in the past"),
        ("2025-06-20T10:00", "more than 7 days"),
        ("25:00", "not a time of day"),
        ("soon", "neither HH:MM nor"),
    ],
)
def test_bad_ready_by_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_ready_by(text, now=NOW, timezone="America/New_York")


def test_plans_are_stored_replaced_and_cleared(tmp_path: Path) -> None:
    with DecisionStore(tmp_path / "d.db") as store:
        first = DeparturePlan(NOW + timedelta(hours=2), 10.0)
        save_plan(store, "SN1", first, now=NOW)
        save_plan(store, "SN2", DeparturePlan(NOW + timedelta(hours=3), 5.0), now=NOW)
        assert load_plans(store) == {
            "SN1": first,
            "SN2": DeparturePlan(NOW + timedelta(hours=3), 5.0),
        }
        save_plan(store, "SN1", DeparturePlan(NOW + timedelta(hours=4), 8.0), now=NOW)
        assert load_plans(store)["SN1"].energy_kwh == 8.0
        assert clear_plan(store, "SN2", now=NOW) == 1
        assert set(load_plans(store)) == {"SN1"}
        save_plan(store, None, first, now=NOW)  # a plan for every charger replaces the others
        assert load_plans(store) == {"*": first}
        assert clear_plan(store, None, now=NOW) == 1
        assert load_plans(store) == {}


def test_a_damaged_stored_plan_is_skipped(tmp_path: Path) -> None:
    with DecisionStore(tmp_path / "d.db") as store:
        store.save_state(
            "departure_plans",
            {"A": {"ready_by": "not a time", "energy_kwh": 3}, "B": {"energy_kwh": "x"}, "C": 5},
            updated_at=NOW,
        )
        assert load_plans(store) == {}


def test_each_charger_gets_its_own_plan_else_the_common_one_and_expired_ones_none() -> None:
    snapshot = Snapshot(
        now=NOW, timezone="UTC", chargers=tuple(make_charger(sn=sn) for sn in "ABC")
    )
    own = DeparturePlan(NOW + timedelta(hours=1), 4.0)
    common = DeparturePlan(NOW + timedelta(hours=2), 9.0)
    done = DeparturePlan(NOW - timedelta(minutes=1), 9.0)
    seen = with_plans(snapshot, {"A": own, "*": common, "C": done})
    assert [c.plan for c in seen.chargers] == [own, common, None]
    assert with_plans(snapshot, {}) is snapshot


# --- the engine and the replay with plans ------------------------------------------------------


def test_without_sun_a_plan_starts_at_the_last_moment_and_is_met() -> None:
    # 10 kWh between 10:00 and 16:00, no sun at all: without a plan the solar policy never
    # charges; with one it waits, then charges at full power just in time.
    series = series_of([0.0] * 96, 0.3, (Session(at(10), at(16), 10.0),))
    assert sum(run(series, None)) == 0.0
    ev = run(series, timedelta(0))
    assert sum(ev) == pytest.approx(10.0)
    first = next(i for i, e in enumerate(ev) if e > 0)
    # 10 kWh take 81.5 min at 32 A; full power begins within 16 min of that before 16:00.
    assert series.starts[first] == at(14.5)
    assert all(e == pytest.approx(FULL_KW / 4, rel=0.05) for e in ev[first : first + 5])


def test_a_margin_makes_the_plan_earlier() -> None:
    series = series_of([0.0] * 96, 0.3, (Session(at(10), at(16), 10.0),))
    ev = run(series, timedelta(minutes=30))
    first = next(i for i, e in enumerate(ev) if e > 0)
    assert series.starts[first] == at(14.0)
    assert sum(ev) == pytest.approx(10.0)


def test_a_small_surplus_is_taken_at_the_minimum_level_at_once() -> None:
    # 0.5 kW of surplus all day is far below the 1.4 kW start threshold: without a plan the
    # car gets nothing; with one, the minimum level (1.38 kW) runs from the first tick that
    # sees the surplus, a third of it from the sun, and the plan is met.
    series = series_of([0.8] * 96, 0.3, (Session(at(8), at(18), 6.0),))
    assert sum(run(series, None)) == 0.0
    ev = run(series, timedelta(0))
    figs = figures(series, ev, commands=0)
    assert figs.ev_energy_kwh == pytest.approx(6.0)
    assert ev[33] == pytest.approx(6 * VOLTS / 4000)  # 08:15, the first tick with a seen bucket
    charging = [e for e in ev if e > 0]
    assert len(charging) == 18  # 4.35 h at 1.38 kW, the last bucket partial
    assert figs.ev_solar_kwh == pytest.approx(len(charging) * 0.5 / 4)


def test_with_a_plan_the_level_rounds_up_so_no_surplus_is_exported() -> None:
    # 3.0 kW of surplus is 13.04 A: the plan's level is 14 A (3.22 kW), so all of the sun goes
    # into the car and 7 % of the charge is bought, energy the plan needs anyway; no forced
    # full-power phase, since the sun alone is far ahead of the plan.
    series = series_of([3.3] * 96, 0.3, (Session(at(9), at(17), 5.0),))
    ev = run(series, timedelta(minutes=15))
    figs = figures(series, ev, commands=0)
    assert figs.ev_energy_kwh == pytest.approx(5.0)
    assert max(ev) == pytest.approx(14 * VOLTS / 4000)
    assert figs.ev_solar_kwh == pytest.approx(5.0 * 3000 / (14 * VOLTS), rel=0.01)  # last: partial


def test_decisions_carry_the_plan_figures(tmp_path: Path) -> None:
    series = series_of([0.0] * 96, 0.3, (Session(at(10), at(16), 10.0),))
    policies = load_rules([RULES], tariffs=None).enabled
    with DecisionStore(tmp_path / "d.db") as store:
        run_id = store.start_run(
            mode="simulation",
            site_id=None,
            config_hash="",
            rules_hash="",
            version="t",
            started_at=T0,
        )
        replay(
            series,
            policies,
            config=Config(),
            limits=LIMITS,
            voltage_v=VOLTS,
            store=store,
            run_id=run_id,
            plan_margin=timedelta(0),
        )
        rows = list(
            store.db.query(
                "SELECT reason, inputs FROM decisions"
                " WHERE action = 'start' AND policy = 'solar-surplus'"
            )
        )
    assert len(rows) == 1
    assert "ready by 16:00" in rows[0]["reason"]
    assert "last moment" in rows[0]["reason"]
    departure = json.loads(rows[0]["inputs"])["departure"]
    assert departure["ready_by"] == "16:00"
    assert departure["needed_kwh"] == pytest.approx(10.0)
    assert json.loads(rows[0]["inputs"])["charger"]["plan"]["energy_kwh"] == 10.0


def test_ignore_leaves_the_policy_as_without_plans(tmp_path: Path) -> None:
    text = RULES.read_text(encoding="utf-8").replace(
        "variant: pv", "variant: pv\n    departure: ignore"
    )
    rules = tmp_path / "ignore.yaml"
    rules.write_text(text, encoding="utf-8")
    series = series_of([0.8] * 96, 0.3, (Session(at(8), at(18), 6.0),))
    policies = load_rules([rules], tariffs=None).enabled
    ev = replay(
        series,
        policies,
        config=Config(),
        limits=LIMITS,
        voltage_v=VOLTS,
        plan_margin=timedelta(0),
    ).ev_kwh
    assert sum(ev) == 0.0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.floats(0.0, 6.0), min_size=96, max_size=96),
    st.floats(0.5, 20.0),
    st.integers(0, 40),
    st.integers(8, 48),
    st.integers(0, 2),
)
def test_with_plans_the_policy_never_beats_the_optimum_and_meets_feasible_plans(
    pv: list[float], need: float, begin: int, length: int, margin_q: int
) -> None:
    end = min(begin + length, 95)
    session = Session(T0 + begin * BUCKET, T0 + end * BUCKET, need)
    series = series_of(pv, 0.4, (session,))
    ev = run(series, margin_q * BUCKET)
    best_ev, _ = optimal(series, LIMITS, VOLTS)
    mine, best = figures(series, ev, commands=0), figures(series, best_ev, commands=0)
    assert mine.ev_solar_kwh <= best.ev_solar_kwh + 1e-6
    # Within its limits: never more than the need, never above full power in a bucket.
    assert mine.ev_energy_kwh <= need + 1e-9
    assert max(ev) <= FULL_KW / 4 + 1e-9
    # A plan that leaves over an hour of slack at full power is met in full.
    window_h = (end - begin) / 4 - margin_q / 4
    if need / FULL_KW < window_h - 1.0:
        assert mine.ev_energy_kwh == pytest.approx(need, abs=1e-6)


# --- the command line ---------------------------------------------------------------------------


def test_cli_plan_set_show_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"site:\n  timezone: Europe/Berlin\nservice:\n  state_dir: {tmp_path / 'state'}\n",
        encoding="utf-8",
    )
    base = ["--config", str(config), "plan"]
    assert main([*base, "show"]) == 0
    assert "No departure plan" in capsys.readouterr().out
    assert main([*base, "set", "--by", "23:59", "--energy", "12.5", "--charger", "SN1"]) == 0
    assert "12.5 kWh since plug-in" in capsys.readouterr().out
    assert main([*base, "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(p["charger"], p["energy_kwh"], p["active"]) for p in shown] == [("SN1", 12.5, True)]
    assert shown[0]["ready_by"].endswith(("+01:00", "+02:00"))  # shown in the site's zone
    with DecisionStore(load_config(config).database_path) as store:
        assert load_plans(store)["SN1"].energy_kwh == 12.5
    assert main([*base, "clear", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"removed": 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", "2001-01-01T10:00", "--energy", "5"], "in the past"),
        (["--by", "12:00", "--energy", "0"], "above 0"),
        (["--by", "12:00", "--energy", "lots"], "not a number"),
        (["--energy", "5"], "--by"),
    ],
)
def test_cli_plan_set_refuses_bad_values_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"service:\n  state_dir: {tmp_path}\n", encoding="utf-8")
    try:
        code = main(["--config", str(config), "plan", "set", *args])
    except SystemExit as exit_:  # argparse's own usage errors
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "decisions.db").exists()  # nothing half-written


# --- the bundled sample: the bar ---------------------------------------------------------


def sample_simulate(tmp_path: Path) -> list[str]:
    """`evopt simulate` of the bundled sample with the demo's config and the example rules."""
    from optimizer.demo import write_config  # noqa: PLC0415
    from optimizer.simulate.sample import sample_paths  # noqa: PLC0415

    config = write_config(tmp_path, ROOT / "rules")
    energy, pages = sample_paths()
    args = ["--config", str(config), "simulate", "--energy", str(energy)]
    for page in pages:
        args += ["--sessions", str(page)]
    return args


def _golden_holds_the_example_setup(config_path: Path) -> bool:
    """Whether the frozen setup of tests/fixtures/simulate_golden/ is the example one today: the
    same config (but where the rules and the state are) and the same enabled policies, in order."""
    ours, frozen = load_config(config_path), load_config(GOLDEN / "config.yaml")
    mine, theirs = ours.model_dump(exclude={"rules"}), frozen.model_dump(exclude={"rules"})
    for dump in (mine, theirs):
        del dump["service"]["state_dir"]
    if mine != theirs:
        return False

    def policies(config: Config) -> list[dict[str, Any]]:
        return [policy.model_dump() for policy in load_config_rules(config).enabled]

    return policies(ours) == policies(frozen)


def _but_the_rule_paths(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key != "rules"}


def test_the_example_rules_with_plans_reach_85_percent_of_the_optimum_on_the_sample(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The bar on the sample year with the example rules. While the golden reports' frozen setup
    is the example one (so far it has always been), the year's report is the golden one, which
    tests/test_simulate_golden.py proves the code still gives: a second replay of the same year
    here proved nothing more for 10 s of CPU. This test's own path, the files given with
    --energy and --sessions, must then give the golden June with plans exactly. When rules/ or
    the sample's config move away from the frozen copy, the year is replayed here as before."""
    args = [*sample_simulate(tmp_path), "--plans", "--json", "--no-log"]
    if _golden_holds_the_example_setup(Path(args[1])):
        assert main([*args, *JUNE]) == 0
        june = json.loads(capsys.readouterr().out)
        golden_june = json.loads((GOLDEN / "june-plans.json").read_text(encoding="utf-8"))
        assert _but_the_rule_paths(june) == _but_the_rule_paths(golden_june)
        report = json.loads((GOLDEN / "year-plans.json").read_text(encoding="utf-8"))
    else:
        assert main(args) == 0
        report = json.loads(capsys.readouterr().out)
    best = report["baselines"]["optimal"]
    assert best["unmet_kwh"] == pytest.approx(0.0, abs=1e-6)
    assert report["unmet_kwh"] == pytest.approx(0.0, abs=1e-6)
    assert report["ev_solar_kwh"] >= 0.85 * best["ev_solar_kwh"]
    assert report["ev_solar_kwh"] <= best["ev_solar_kwh"] + 1e-6
    assert report["departure_plans"] == {"ready_by": "unplug time minus margin", "margin_min": 15.0}
