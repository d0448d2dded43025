"""The simulation report: the policy run against the immediate and optimal baselines.

``to_json`` follows DESIGN section 2 (one object; figures at the top level for the policy run
and the same figures per baseline under ``baselines``). Missing buckets are counted and shown
so that a thin history is never read as a quiet one.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from optimizer.config import BatteryConfig
from optimizer.limits import Limits
from optimizer.simulate.battery import BatteryFlows, run_battery
from optimizer.simulate.series import Figures, Session, SiteSeries, figures

if TYPE_CHECKING:
    from optimizer.simulate.baseline_cache import Ahead

__all__ = [
    "BASELINES",
    "DayRow",
    "Ranked",
    "SimReport",
    "baseline_figures",
    "build_report",
    "compare_json",
    "compare_text",
    "optimal_figures",
    "per_kwh_text",
    "per_session_text",
    "unmet_note",
]

_LOGGER = logging.getLogger(__name__)
BASELINES = ("immediate", "optimal")
CACHED = frozenset({"optimal"})  # optimizer/simulate/baseline_cache.py
Baseline = Callable[[SiteSeries, Limits, float], tuple[tuple[float, ...], int]]


def unmet_note(name: str, figures: Figures, *, others: str) -> str | None:
    """The plain sentence a run that left cars short needs, or None when it met every need.

    Its ``cost`` is then lower for a reason that is no merit: less energy delivered. Said in
    words beside the table because a reader compares the cost row first.
    """
    if not figures.leaves_unmet:
        return None
    sessions = figures.unmet_sessions
    over = f"{sessions} session{'s' if sessions != 1 else ''}" if sessions else "its sessions"
    return (
        f"{name} left {figures.unmet_kwh:.1f} kWh unmet over {over}: its cost is not "
        f"comparable with {others}; compare the cost per kWh delivered"
    )


def per_session_text(figures: Figures) -> str:
    value = figures.commands_per_session
    return "n/a" if value is None else f"{value:.2f}"


def per_kwh_text(figures: Figures) -> str:
    value = figures.cost_per_kwh
    return "n/a" if value is None else f"{value:.3f}"


@dataclass(frozen=True)
class DayRow:
    day: date
    missing_buckets: int
    figures: Figures


@dataclass(frozen=True)
class SimReport:
    start: datetime | None
    end: datetime | None
    buckets: int
    missing_buckets: int
    figures: Figures
    baselines: dict[str, Figures | None]
    per_day: tuple[DayRow, ...] = ()
    currency: str = ""
    run_id: str | None = None
    rules: tuple[str, ...] = ()
    decisions: int = 0
    by_action: dict[str, int] = field(default_factory=dict)
    plan_margin_min: float | None = None  # departure plans given to the policies (None: none)
    # --plans learned: (sessions with a learned plan, sessions); None when not learned.
    plans_learned: tuple[int, int] | None = None
    battery: dict[str, float] | None = None  # the home battery's totals in the policy run

    def to_json(self) -> dict[str, Any]:
        return {
            "period": {
                "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None,
            },
            "buckets": self.buckets,
            "missing_buckets": self.missing_buckets,
            **self.figures.to_json(),
            "baselines": {
                name: (value.to_json() if value is not None else None)
                for name, value in self.baselines.items()
            },
            "currency": self.currency,
            "run_id": self.run_id,
            "rules": list(self.rules),
            "decisions": self.decisions,
            "by_action": dict(self.by_action),
            "departure_plans": self._plans_json(),
            "home_battery": self.battery,
            "notes": self.notes(),
            "per_day": [
                {"day": row.day.isoformat(), "missing_buckets": row.missing_buckets}
                | row.figures.to_json()
                for row in self.per_day
            ],
        }

    def to_text(self) -> str:
        """Policy vs baselines, side by side; solar as a share of the optimum's."""
        columns: list[tuple[str, Figures | None]] = [("policy", self.figures)]
        columns += list(self.baselines.items())
        best = self.baselines.get("optimal")
        start = self.start.strftime("%Y-%m-%d %H:%M") if self.start else "-"
        end = self.end.strftime("%Y-%m-%d %H:%M") if self.end else "-"
        lines = [
            f"period {start} .. {end} UTC: {self.buckets} buckets, "
            f"{self.missing_buckets} missing (skipped, not zero)",
            self._plans_text(),
            *self._battery_text(),
            "",
            f"{'':<22}" + "".join(f"{name:>12}" for name, _ in columns),
        ]
        unit = f" ({self.currency})" if self.currency else ""
        rows: list[tuple[str, Callable[[Figures], str]]] = [
            ("EV energy kWh", lambda f: f"{f.ev_energy_kwh:.2f}"),
            ("EV solar kWh", lambda f: f"{f.ev_solar_kwh:.2f}"),
            ("solar share", lambda f: f"{f.solar_share:.0%}"),
            ("unmet kWh", lambda f: f"{f.unmet_kwh:.2f}"),
            ("grid import kWh", lambda f: f"{f.grid_import_kwh:.2f}"),
            ("grid export kWh", lambda f: f"{f.grid_export_kwh:.2f}"),
            (f"cost{unit}", lambda f: f"{f.cost:.2f}"),
            (f"EV cost{unit}", lambda f: f"{f.ev_cost:.2f}"),
            (f"per kWh to EV{unit}", per_kwh_text),
            ("unmet sessions", lambda f: str(f.unmet_sessions)),
            ("commands", lambda f: str(f.commands)),
            ("commands per session", per_session_text),
        ]
        if best is not None and best.ev_solar_kwh > 0:
            rows.append(
                ("% of optimal solar", lambda f: f"{f.ev_solar_kwh / best.ev_solar_kwh:.0%}")
            )
        for label, show in rows:
            cells = "".join(f"{show(f) if f is not None else 'n/a':>12}" for _, f in columns)
            lines.append(f"{label:<22}{cells}")
        notes = self.notes()
        return "\n".join([*lines, *([""] if notes else []), *notes])

    def notes(self) -> list[str]:
        """Each column that left energy unmet, in words."""
        found = [unmet_note("the policy", self.figures, others="the baselines'")]
        for name, value in self.baselines.items():
            if value is not None and value.leaves_unmet:
                found.append(
                    f"the {name} baseline left {value.unmet_kwh:.1f} kWh unmet too: more than "
                    "the charger could deliver in time in those sessions"
                )
        return [note for note in found if note]

    def _battery_text(self) -> list[str]:
        if self.battery is None:
            return []
        b = self.battery
        return [
            f"home battery {b['capacity_kwh']:g} kWh: {b['charged_kwh']:.0f} kWh charged, "
            f"{b['discharged_kwh']:.0f} kWh discharged in the policy run (the same model in "
            "every column)"
        ]

    def _plans_json(self) -> dict[str, object] | None:
        if self.plans_learned is not None:
            planned, sessions = self.plans_learned
            return {"learned": True, "sessions_with_plan": planned, "sessions": sessions}
        if self.plan_margin_min is None:
            return None
        return {"ready_by": "unplug time minus margin", "margin_min": self.plan_margin_min}

    def _plans_text(self) -> str:
        if self.plans_learned is not None:
            planned, sessions = self.plans_learned
            return (
                f"departure plans: learned from the sessions before each day (`plans: auto`), "
                f"{planned} of {sessions} sessions had one"
            )
        if self.plan_margin_min is None:
            return "departure plans: none (the policies know neither departure times nor needs)"
        return (
            "departure plans: each session ready by its unplug time minus "
            f"{self.plan_margin_min:g} min with the energy it took (as `evopt plan set` tells it)"
        )


def solve_optimum_ahead(series: SiteSeries, limits: Limits, voltage_v: float) -> Ahead | None:
    """Start the optimum's solves in a forked process now, for :func:`build_report` to collect
    (``ahead=``): they run on one core while the replay runs on another. None when its answer
    is cached, the baselines cannot run here, or no process can be had (the report then solves
    as before). The child uses one core fewer than a solve alone would: the replay has one."""
    try:
        module = importlib.import_module("optimizer.simulate.baselines")
    except ImportError:
        return None  # the report says why
    from optimizer.simulate.baseline_cache import solve_ahead  # noqa: PLC0415

    workers = max(1, module.solve_workers() - 1)
    run = functools.partial(module.optimal, workers=workers)
    return solve_ahead("optimal", run, series, limits, voltage_v)


def baseline_figures(
    series: SiteSeries, limits: Limits, voltage_v: float, *, ahead: Ahead | None = None
) -> dict[str, tuple[tuple[float, ...], int] | None]:
    """Each baseline's (ev_kwh, commands); None where the baselines module is not available
    (it is imported lazily: it needs scipy, and a failure there must not hide the policy run).
    ``ahead``: the optimum already being solved (:func:`solve_optimum_ahead`)."""
    try:
        module = importlib.import_module("optimizer.simulate.baselines")
    except ImportError as err:
        _LOGGER.warning("baselines unavailable: %s", err)
        return dict.fromkeys(BASELINES)
    from optimizer.simulate.baseline_cache import cached_baseline  # noqa: PLC0415

    found: dict[str, tuple[tuple[float, ...], int] | None] = {}
    for name in BASELINES:
        run = cast("Baseline | None", getattr(module, name, None))
        try:
            if run is None:
                found[name] = None
            elif name in CACHED:  # hundreds of solves a year: remembered by their inputs
                found[name] = cached_baseline(name, run, series, limits, voltage_v, ahead=ahead)
            else:
                found[name] = run(series, limits, voltage_v)
        except ImportError as err:  # scipy, imported only when a solve is needed
            _LOGGER.warning("baseline %s unavailable: %s", name, err)
            found[name] = None
    return found


def _days(series: SiteSeries) -> dict[date, list[int]]:
    days: dict[date, list[int]] = {}
    zone = ZoneInfo(series.timezone)
    for index, start in enumerate(series.starts):
        days.setdefault(start.astimezone(zone).date(), []).append(index)
    return days


def _sessions_by_day(series: SiteSeries, days: dict[date, list[int]]) -> dict[date, list[Session]]:
    """Each day's sessions: those whose window ends in one of its buckets (where
    :func:`figures` counts a session's unmet energy), found in one pass, so the per-day report
    stays linear in the period (it looked at every session for every day: x70 for ten years)."""
    day_of = {index: day for day, indices in days.items() for index in indices}
    found: dict[date, list[Session]] = {}
    for session in series.sessions:
        window = series.window(session)
        if window:
            found.setdefault(day_of[window[-1]], []).append(session)
    return found


def build_report(
    series: SiteSeries,
    ev_kwh: tuple[float, ...],
    *,
    commands: int,
    limits: Limits,
    voltage_v: float,
    currency: str = "",
    run_id: str | None = None,
    rules: tuple[str, ...] = (),
    decisions: int = 0,
    by_action: dict[str, int] | None = None,
    with_baselines: bool = True,
    plan_margin_min: float | None = None,
    plans_learned: tuple[int, int] | None = None,
    battery: BatteryConfig | None = None,
    battery_flows: BatteryFlows | None = None,
    ahead: Ahead | None = None,
) -> SimReport:
    """The report; with a ``battery``, each baseline runs the same battery model (which never
    feeds the car: the baselines leave the green-mode setting off). ``ahead``: the optimum
    started before the replay (:func:`solve_optimum_ahead`), collected here."""
    runs = baseline_figures(series, limits, voltage_v, ahead=ahead) if with_baselines else {}

    def same_battery(ev: tuple[float, ...]) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        return None if battery is None else run_battery(series, ev, battery).kwh()

    baselines = {
        name: (
            figures(series, run[0], commands=run[1], battery=same_battery(run[0]))
            if run is not None
            else None
        )
        for name, run in runs.items()
    }
    mine = battery_flows.kwh() if battery_flows is not None else same_battery(ev_kwh)
    days = _days(series)
    ending = _sessions_by_day(series, days)
    per_day = tuple(
        DayRow(
            day=day,
            missing_buckets=sum(series.missing[i] for i in indices),
            figures=figures(
                series,
                ev_kwh,
                commands=0,
                indices=indices,
                battery=mine,
                sessions=ending.get(day, ()),
            ),
        )
        for day, indices in days.items()
    )
    totals = None
    if battery is not None and mine is not None:
        totals = {
            "capacity_kwh": battery.capacity_kwh,
            "charged_kwh": round(sum(mine[0]), 3),
            "discharged_kwh": round(sum(mine[1]), 3),
        }
    return SimReport(
        start=series.starts[0] if series.starts else None,
        end=series.end,
        buckets=len(series.starts),
        missing_buckets=sum(series.missing),
        figures=figures(series, ev_kwh, commands=commands, battery=mine),
        baselines=baselines,
        per_day=per_day,
        currency=currency,
        run_id=run_id,
        rules=rules,
        decisions=decisions,
        by_action=dict(by_action or {}),
        plan_margin_min=plan_margin_min,
        plans_learned=plans_learned,
        battery=totals,
    )


# --- `evopt simulate --compare`: rule files ranked beside the optimum ---------------------------


@dataclass(frozen=True)
class Ranked:
    """One rule file's run in a comparison (``rank`` 1 is the best)."""

    rank: int
    rules: str
    figures: Figures


def optimal_figures(
    series: SiteSeries,
    limits: Limits,
    voltage_v: float,
    battery: BatteryConfig | None = None,
    *,
    ahead: Ahead | None = None,
) -> Figures | None:
    """The perfect-foresight optimum's figures (with the site's battery model, as in the
    report's column), or None when the baselines cannot run here (the immediate baseline,
    run beside it, costs next to nothing)."""
    run = baseline_figures(series, limits, voltage_v, ahead=ahead)["optimal"]
    if run is None:
        return None
    home = None if battery is None else run_battery(series, run[0], battery).kwh()
    return figures(series, run[0], commands=run[1], battery=home)


def _pct_of_optimal(f: Figures, best: Figures | None) -> float | None:
    """Solar into the car as a share of the optimum's (None without an optimum or its sun)."""
    if best is None or best.ev_solar_kwh <= 0:
        return None
    return f.ev_solar_kwh / best.ev_solar_kwh


def compare_json(rows: list[Ranked], best: Figures | None) -> dict[str, Any]:
    """``ranking`` (each rule file's figures, its rank and share of the optimum's solar) and
    ``optimal`` (the optimum's figures, the bound beside them, never ranked)."""

    def share(f: Figures) -> float | None:
        pct = _pct_of_optimal(f, best)
        return None if pct is None else round(pct, 4)

    return {
        "ranking": [
            {"rank": row.rank, "rules": row.rules}
            | row.figures.to_json()
            | {"pct_of_optimal_solar": share(row.figures)}
            for row in rows
        ],
        "optimal": None if best is None else best.to_json() | {"pct_of_optimal_solar": share(best)},
    }


def compare_text(rows: list[Ranked], best: Figures | None) -> list[str]:
    """The ranking table: the optimum's line first (``-``: a bound, not a contender), then the
    rule files by rank; solar share, % of the optimum's solar and commands per session last."""

    def line(rank: str, name: str, f: Figures) -> str:
        pct = _pct_of_optimal(f, best)
        return (
            f"{rank:>2}  {name:<36}{f.ev_solar_kwh:>10.2f}{f.ev_energy_kwh:>9.2f}"
            f"{f.cost:>9.2f}{per_kwh_text(f):>9}{f.unmet_kwh:>8.2f}{f.unmet_sessions:>6}"
            f"{f.commands:>6}{f.solar_share:>8.0%}"
            f"{'n/a' if pct is None else f'{pct:.0%}':>7}{per_session_text(f):>10}"
        )

    lines = [
        f"{'#':>2}  {'rules':<36}{'solar kWh':>10}{'EV kWh':>9}{'cost':>9}{'per kWh':>9}"
        f"{'unmet':>8}{'short':>6}{'cmds':>6}{'share':>8}{'% opt':>7}{'cmds/ses':>10}"
    ]
    if best is not None:
        lines.append(line("-", "optimal (perfect foresight)", best))
    lines += [line(str(row.rank), row.rules, row.figures) for row in rows]
    notes = [unmet_note(row.rules, row.figures, others="the others'") for row in rows]
    return lines + [note for note in notes if note]
