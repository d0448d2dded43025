"""The session's command count in the engine's memory (``ChargerMemory.session_commands``).

A planner with a per-session command budget (``method: dp``, docs/planner.md) plans with what
is left of it, so the count must be the replay's own: a start, a stop, a level change, a mode
switch, one each, from the plug-in on. Replayed sessions compare the two tick by tick; a
level change's restart (live: a stop now, the start later) counts once; a command the service
could not apply is taken off; an old state file without the field loads with 0.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from optimizer.config import Config
from optimizer.engine.decision import ChargerMemory, Decision, Memory
from optimizer.engine.evaluate import evaluate, remember, sent
from optimizer.engine.feedback import acknowledge
from optimizer.engine.rules import SolarPlan
from optimizer.limits import Limits
from optimizer.simulate import replay as replay_module
from optimizer.simulate.idle import Idle
from optimizer.simulate.replay import replay
from optimizer.simulate.series import BUCKET, Session, SiteSeries
from tests.test_engine_feedback import ALWAYS_ON, snapshot
from tests.test_engine_sim import SN as SN_SIM

T0 = datetime(2025, 6, 2, tzinfo=UTC)
SN = "SIM0001"
DP = SolarPlan(name="plan", kind="solar_plan", enabled=True, method="dp", change_cost_kwh=0.02)


def _series(sessions: tuple[Session, ...], days: int = 3) -> SiteSeries:
    """A sine-shaped sun with a passing cloud every few hours, over a flat house load."""
    n = days * 96
    pv = []
    for i in range(n):
        hour = (i % 96) / 4 + 0.125
        sun = 6.0 * math.sin(math.pi * (hour - 6) / 14) if 6 < hour < 20 else 0.0
        pv.append(sun * (0.3 if i % 11 < 3 else 1.0) / 4)
    return SiteSeries(
        starts=tuple(T0 + i * BUCKET for i in range(n)),
        pv_kwh=tuple(pv),
        house_kwh=(0.1,) * n,
        missing=(False,) * n,
        import_price=tuple(0.3 if 16 <= (i % 96) / 4 < 21 else 0.1 for i in range(n)),
        export_price=0.05,
        timezone="UTC",
        sessions=sessions,
    )


@pytest.mark.parametrize(
    "change_cost",
    [
        0.0,  # the most commands (starts, stops, 20 level changes): every kind counted
        # Other trade-offs, the same counting (4-5 s of CPU each): `make soak`.
        pytest.param(0.02, marks=pytest.mark.soak),
        pytest.param(0.25, marks=pytest.mark.soak),
    ],
)
def test_the_memory_counts_each_session_s_commands_as_the_replay_does(
    monkeypatch: pytest.MonkeyPatch, change_cost: float
) -> None:
    sessions = (
        Session(T0 + timedelta(hours=7), T0 + timedelta(hours=18), 14.0),
        Session(T0 + timedelta(hours=19, minutes=10), T0 + timedelta(hours=33), 20.0),
        Session(T0 + timedelta(hours=34), T0 + timedelta(hours=45, minutes=40), 9.0),
        Session(T0 + timedelta(hours=50), T0 + timedelta(hours=70), 30.0),
    )
    series = _series(sessions)
    counted: list[int] = []  # the memory's count after each tick
    applied: list[int] = []  # the commands the replay applied at each tick
    decide, repeats, apply = Idle.decide, Idle.repeats, replay_module._apply

    def deciding(self: Idle, *args: object, **kwargs: object) -> tuple[list[Decision], Memory]:
        decided, memory = decide(self, *args, **kwargs)  # type: ignore[arg-type]
        counted.append(memory.charger(SN).session_commands)
        applied.append(0)
        return decided, memory

    def repeating(self: Idle, view: object, memory: Memory, **kwargs: object) -> bool:
        found = repeats(self, view, memory, **kwargs)  # type: ignore[arg-type]
        if found:  # a tick with no car counted without a snapshot: its memory unchanged
            counted.append(memory.charger(SN).session_commands)
            applied.append(0)
        return found

    def applying(*args: object) -> tuple[int, bool]:
        found = apply(*args)  # type: ignore[arg-type]
        applied[-1] += found[0]
        return found

    monkeypatch.setattr(Idle, "decide", deciding)
    monkeypatch.setattr(Idle, "repeats", repeating)
    monkeypatch.setattr(replay_module, "_apply", applying)
    policy = DP.model_copy(update={"change_cost_kwh": change_cost})
    result = replay(
        series,
        [policy],
        config=Config(),
        limits=Limits(6, 32, 1),
        voltage_v=240.0,
        plan_margin=timedelta(minutes=15),
    )
    assert result.commands == sum(applied) > len(sessions)
    for number in range(len(sessions)):
        ticks = [i for i in range(len(series)) if series.session_index(i) == number]
        # The count at the session's last tick: every command since its first one.
        assert counted[ticks[-1]] == sum(applied[i] for i in ticks), number


def _decision(action: str, **params: object) -> Decision:
    target = "mode" if action == "set_mode" else "charging"
    return Decision("plan", SN, target, action, dict(params), "why", {})  # type: ignore[arg-type]


def test_a_level_change_counts_once_and_a_command_not_applied_not_at_all() -> None:
    now = T0
    known = ChargerMemory(session_commands=2)
    changed = remember(known, {"charging": _decision("set_amps", amps=16)}, now, control={})
    assert changed.session_commands == 3
    # The restart's start, a tick later, completes the same level change.
    restarted = remember(
        changed, {"charging": _decision("start", amps=16)}, now, control={}, restarting=True
    )
    assert restarted.session_commands == 3
    both = {"charging": _decision("start", amps=6), "mode": _decision("set_mode", mode="M")}
    assert remember(known, both, now, control={}).session_commands == 4
    assert sent(_decision("hold")) == 0
    before = Memory(chargers={SN: known})
    after = Memory(chargers={SN: changed})
    refused = acknowledge(after, _decision("set_amps", amps=16), applied=False, before=before)
    assert refused.charger(SN).session_commands == 2
    kept = acknowledge(after, _decision("set_amps", amps=16), applied=True, before=before)
    assert kept.charger(SN).session_commands == 3


def test_an_old_state_file_loads_with_no_commands_counted() -> None:
    old = {"version": 1, "chargers": {SN: {"commanded_on": True, "commanded_amps": 16}}}
    memory = Memory.model_validate(old)
    assert memory.charger(SN).session_commands == 0
    again = Memory.model_validate(memory.model_dump(mode="json"))
    assert again == memory


def test_commands_sent_while_no_car_was_plugged_in_do_not_count_for_the_next_session() -> None:
    """A mode switch at night with no car (the unplug already cleared the memory) is counted
    by ``remember``; the plug-in starts the session's count again, so the new session counts
    only its own commands."""
    before = Memory(
        chargers={SN_SIM: ChargerMemory(last_seen_plugged_in=False, session_commands=2)}
    )
    decisions, after = evaluate(snapshot(0, plugged_in=True), ALWAYS_ON, before)
    own = sum(sent(decision) for decision in decisions)
    assert own > 0  # the plug-in's tick sent something, so the count is not trivially 0
    assert after.charger(SN_SIM).session_commands == own
