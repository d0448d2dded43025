"""The planner replayed over small synthetic histories, against the perfect-foresight optimum.

Issue 15's property: whatever the sun and the session, `solar_plan` never puts more solar into
the car than the optimum (optimizer/simulate/baselines.py `optimal`, the bound every policy
lives under: a planner above it would be counting energy that is not there), and it meets every
departure plan that full power could meet in time.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.cli.args.simulate import DEFAULT_PLAN_MARGIN
from optimizer.cli.simulate import load_history, site_setup
from optimizer.config import Config, load_config
from optimizer.engine.loader import load_rules
from optimizer.engine.rules import SolarPlan
from optimizer.limits import Limits
from optimizer.simulate.baselines import optimal
from optimizer.simulate.replay import replay
from optimizer.simulate.sample import SAMPLES, sample_config_path, sample_paths
from optimizer.simulate.series import BUCKET, Session, SiteSeries, figures, series_from_history

ROOT = Path(__file__).resolve().parent.parent

T0 = datetime(2025, 6, 2, tzinfo=UTC)
VOLTS = 240.0
LIMITS = Limits(6, 32, 1)
FULL_KW = 32 * VOLTS / 1000
MARGIN = timedelta(minutes=15)
POLICY = SolarPlan(name="plan", kind="solar_plan", enabled=True)
DP = SolarPlan(name="plan", kind="solar_plan", enabled=True, method="dp")
DAYS = 2


def _series(peak_kw: float, house_kw: float, session: Session) -> SiteSeries:
    """Two days of a sine-shaped sun (06:00-20:00 UTC) over a flat house load."""
    n = DAYS * 96
    pv = []
    for i in range(n):
        hour = (i % 96) / 4 + 0.125
        pv.append(peak_kw * math.sin(math.pi * (hour - 6) / 14) / 4 if 6 < hour < 20 else 0.0)
    return SiteSeries(
        starts=tuple(T0 + i * BUCKET for i in range(n)),
        pv_kwh=tuple(pv),
        house_kwh=(house_kw / 4,) * n,
        missing=(False,) * n,
        import_price=(0.3,) * n,
        export_price=0.05,
        timezone="UTC",
        sessions=(session,),
    )


@pytest.mark.parametrize("policy", [POLICY, DP], ids=["milp", "dp"])
@settings(max_examples=12, deadline=None)
@given(
    peak_kw=st.floats(min_value=0.5, max_value=9.0),
    house_kw=st.floats(min_value=0.2, max_value=1.5),
    start_q=st.integers(min_value=0, max_value=120),
    length_q=st.integers(min_value=6, max_value=60),
    energy=st.floats(min_value=1.0, max_value=40.0),
)
def test_the_planner_never_beats_the_optimum_and_meets_every_feasible_plan(
    policy: SolarPlan,
    *,
    peak_kw: float,
    house_kw: float,
    start_q: int,
    length_q: int,
    energy: float,
) -> None:
    start = T0 + start_q * BUCKET
    session = Session(start, start + length_q * BUCKET, energy)
    series = _series(peak_kw, house_kw, session)
    result = replay(
        series, [policy], config=Config(), limits=LIMITS, voltage_v=VOLTS, plan_margin=MARGIN
    )
    best, _ = optimal(series, LIMITS, VOLTS)
    ours = figures(series, result.ev_kwh, commands=result.commands)
    bound = figures(series, best, commands=0)
    assert ours.ev_solar_kwh <= bound.ev_solar_kwh + 1e-6
    # feasible: full power from the first whole bucket after the plug-in (the engine sees a
    # bucket once it has ended) to the ready-by meets it, with an hour to spare for the ticks
    hours = (length_q * BUCKET - MARGIN) / timedelta(hours=1) - 1.0
    if energy <= FULL_KW * hours:
        assert ours.unmet_kwh < 0.05, (ours.unmet_kwh, energy, hours)


# --- the bundled sample: the figures the third pass reaches (docs/planner.md) --------------------

SAMPLE_MONTH = ("2025-05-01", "2025-06-01")
"""May on the Greensboro sample: long days, evening sun at the overnight sessions' plug-in and
daytime sessions that need more than the sun, the trade-offs the planner has to make."""


@pytest.mark.parametrize(
    ("method", "floor", "most"),
    [
        pytest.param("milp", 0.89, 4.5, marks=pytest.mark.soak),  # the alternative: 5 s of CPU
        ("dp", 0.895, 4.0),  # as shipped: 13 s
    ],
    ids=["milp", "dp"],
)
def test_on_a_sample_month_the_shipped_planner_holds_its_figures(
    method: str, floor: float, most: float
) -> None:
    """`rules/solar-plan.yaml` (enabled here), exact plans. As shipped (``method: dp``,
    ``change_cost_kwh`` 0.1): 0 unmet, at least 0.895 of the optimum's solar and at most 4
    commands per session (0.900 and 3.55 since the eighth pass, 0.884 and 3.62 before; the
    issue's bar is 0.95). With ``method: milp`` at ``change_cost_kwh`` 0.25, the alternative:
    at least 0.89 (0.896 measured since the third pass, 0.878 after the second, 0.793 after
    the first), at most 4.5 commands per session (4.34 in May, whose sunny evenings cost a
    start and a stop more; the year's figures are in docs/planner.md "Third pass")."""
    config = load_config(sample_config_path("greensboro"))
    site = site_setup(config, None, zone=SAMPLES["greensboro"].timezone)
    energy_path, pages = sample_paths("greensboro")
    energy, sessions = load_history(
        str(energy_path), [str(p) for p in pages], timezone=site.timezone
    )
    zone = ZoneInfo(site.timezone)
    start, end = (datetime.fromisoformat(d).replace(tzinfo=zone) for d in SAMPLE_MONTH)
    series = series_from_history(
        energy, sessions, tariffs=config.tariffs, timezone=site.timezone, start=start, end=end
    )
    shipped = load_rules([ROOT / "rules" / "solar-plan.yaml"], tariffs=config.tariffs)
    update: dict[str, object] = {"enabled": True}
    if method == "milp":  # the alternative, at the setting its figures are measured at
        update |= {"method": "milp", "change_cost_kwh": 0.25}
    policy = shipped.policies[0].model_copy(update=update)
    result = replay(
        series,
        [policy],
        config=config,
        limits=site.limits,
        voltage_v=site.voltage_v,
        plan_margin=DEFAULT_PLAN_MARGIN,
    )
    best, _ = optimal(series, site.limits, site.voltage_v)
    ours = figures(series, result.ev_kwh, commands=result.commands)
    share = ours.ev_solar_kwh / figures(series, best, commands=0).ev_solar_kwh
    assert ours.unmet_kwh < 0.05
    assert ours.commands_per_session is not None
    assert ours.commands_per_session <= most
    assert share >= floor, share
    if method == "dp":
        # The replay as measured when the programme became a gather per move (2026-12-08;
        # the same to the last bit before it): a change that moves a tie or a rounding shows
        # here, where the floors above would let it pass.
        assert (ours.ev_solar_kwh, result.commands) == (pytest.approx(83.819593, abs=1e-6), 103)
