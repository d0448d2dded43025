"""A replay in two processes (optimizer/simulate/replay.py ``_split_advance``) gives exactly the
replay in one: on the sample year with the example rules (where the child's half is taken:
tests/test_simulate_golden.py's year with plans, against the replay alone as recorded there),
on August to December (a cut where the battery setting is a relic), on drawn rules and periods
(taken or not), when the states at every cut are made to differ, when the child fails and
where nothing can fork. And :func:`exact` tells apart what ``==`` does not.

August to December is compared with the replay alone as recorded: the SHA-256 of every
bucket's bits of it (:func:`fingerprint`) in tests/fixtures/replay_split/, so `make test`
replays it in two processes only, not once more alone. A record that no longer matches
replays the period alone to say which is wrong: the split (the test fails on what differs) or
the record (a changed engine: re-record with ``python -m tests.test_replay_split``, which
replays alone, never split, and say why in the commit; tests/test_simulate_golden.py moves
with it)."""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optimizer.simulate.replay as replay_module
from optimizer.config import Config
from optimizer.engine.decision import Control, Memory
from optimizer.engine.loader import load_config_rules
from optimizer.engine.rules import PolicyBase
from optimizer.limits import Limits
from optimizer.planner.causal import CausalOutlooks
from optimizer.simulate.replay import ReplayResult, replay
from optimizer.simulate.sample import DEFAULT_SAMPLE, sample_site
from optimizer.simulate.series import SiteSeries
from optimizer.simulate.split import exact, fork_child
from tests.records import same_as_reference, write_record
from tests.test_replay_idle import _config, _series
from tests.test_replay_plugged import _policies, rules

RECORDS = Path(__file__).parent / "fixtures" / "replay_split"


def _replay(
    series: SiteSeries, config: Config, policies: list[PolicyBase], **extra: Any
) -> ReplayResult:
    return replay(
        series, policies, config=config, limits=Limits(6, 32, 1), voltage_v=240.0, **extra
    )


def cuts_seen(monkeypatch: pytest.MonkeyPatch, verdict: bool | None = None) -> list[bool]:
    """Each comparison at a cut, as it came out (or forced to ``verdict``)."""
    seen: list[bool] = []
    real = replay_module._same_state

    def comparing(mine: Any, theirs: Any) -> bool:
        found = real(mine, theirs) if verdict is None else verdict
        seen.append(found)
        return found

    monkeypatch.setattr(replay_module, "_same_state", comparing)
    return seen


def same(split: ReplayResult, alone: ReplayResult) -> None:
    assert exact(split.ev_kwh, alone.ev_kwh)
    assert split.amps == alone.amps
    assert (split.commands, split.decisions) == (alone.commands, alone.decisions)
    assert list(split.by_action.items()) == list(alone.by_action.items())  # the order too
    assert exact(split.battery, alone.battery)
    assert split == alone


def _august_on(tmp: Path) -> tuple[SiteSeries, Config, list[PolicyBase], dict[str, Any]]:
    """August to December with the example rules (no battery, no plans)."""
    config = _config(tmp, battery=False)
    series = _series(config, (8, 1), (12, 31))
    return series, config, list(load_config_rules(config).enabled), {}


RECORD = RECORDS / "august-on.sha256"


def _august_alone(tmp: Path) -> ReplayResult:
    series, config, policies, extra = _august_on(tmp)
    return _replay(series, config, policies, split=False, **extra)


def _short_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Weeks split as a year would be (the floor is there for speed, not for correctness)."""
    monkeypatch.setattr(replay_module, "MIN_SPLIT_BUCKETS", 96 * 7)
    monkeypatch.setattr(replay_module, "WARM_UP", 96)


PERIODS = [((1, 3), (1, 24)), ((3, 1), (3, 22)), ((6, 5), (6, 26)), ((10, 20), (11, 10))]


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    drawn=rules(), period=st.sampled_from(PERIODS), flags=st.tuples(st.booleans(), st.booleans())
)
def test_drawn_rules_split_are_the_replay_alone(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    drawn: list[dict[str, Any]],
    period: Any,
    flags: tuple[bool, bool],
) -> None:
    """Drawn rules over drawn three weeks, with or without a battery and plans."""
    battery, plans = flags
    _short_splits(monkeypatch)
    config = _config(tmp_path, battery=battery)
    series = _series(config, *period)
    policies = _policies(tmp_path, config, drawn)
    extra = {"plan_margin": timedelta(minutes=15)} if plans else {}
    alone = _replay(series, config, policies, split=False, **extra)
    seen = cuts_seen(monkeypatch)
    same(_replay(series, config, policies, **extra), alone)
    assert seen  # it did fork and compare


def _june(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, battery: bool = False
) -> tuple[SiteSeries, Config, list[PolicyBase]]:
    """June with the example rules, split as a year would be."""
    _short_splits(monkeypatch)
    config = _config(tmp_path, battery=battery)
    series = _series(config, (6, 1), (6, 30))
    return series, config, list(load_config_rules(config).enabled)


_JUNE_ALONE: dict[bool, ReplayResult] = {}


def _june_alone(
    series: SiteSeries, config: Config, policies: list[PolicyBase], *, battery: bool = False
) -> ReplayResult:
    """June's replay alone, replayed once per process: each test that compares with it has the
    same June, rules and battery (the result is frozen)."""
    if battery not in _JUNE_ALONE:
        _JUNE_ALONE[battery] = _replay(series, config, policies, split=False)
    return _JUNE_ALONE[battery]


def test_states_that_differ_at_every_cut_replay_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    series, config, policies = _june(tmp_path, monkeypatch, battery=True)
    alone = _june_alone(series, config, policies, battery=True)
    seen = cuts_seen(monkeypatch, verdict=False)
    same(_replay(series, config, policies), alone)
    assert seen == [False] * replay_module.CUTS


def test_a_child_that_fails_leaves_the_replay_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    series, config, policies = _june(tmp_path, monkeypatch)
    alone = _june_alone(series, config, policies)

    def failing(*_: Any) -> None:
        raise RuntimeError("the child breaks")

    monkeypatch.setattr(replay_module, "_child_work", failing)
    seen = cuts_seen(monkeypatch)
    same(_replay(series, config, policies), alone)
    assert seen == []  # nothing came to compare with


def test_no_fork_replays_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    series, config, policies = _june(tmp_path, monkeypatch)
    alone = _june_alone(series, config, policies)
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    seen = cuts_seen(monkeypatch)
    same(_replay(series, config, policies), alone)
    assert seen == []


def test_the_environment_turns_it_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    series, config, policies = _june(tmp_path, monkeypatch)
    monkeypatch.setenv(replay_module.SPLIT_ENV, "0")
    seen = cuts_seen(monkeypatch)
    _replay(series, config, policies)
    assert seen == []


@pytest.mark.parametrize("mark", ["commanded_at", "started_at", "stopped_at"])
def test_a_stop_older_than_every_duration_is_no_stop_at_a_cut(mark: str) -> None:
    """A charger stopped in June (this process) and one never stopped since the child's fresh
    start compare equal at an October cut: no duration a tick compares reaches that far back.
    A stop within the longest duration still tells them apart. (With the example rules on
    the sample read in Melbourne, no cut was ever taken for it.)"""
    now = datetime(2025, 10, 1, tzinfo=UTC)
    horizon = timedelta(hours=2)

    def memory(moment: datetime | None) -> Memory:
        return Memory.model_validate({"chargers": {"EV1": {mark: moment}}})

    fresh = replay_module._memory_state(memory(None), now, horizon)
    june = replay_module._memory_state(memory(datetime(2025, 6, 20, 21, tzinfo=UTC)), now, horizon)
    recent = replay_module._memory_state(memory(now - timedelta(hours=1)), now, horizon)
    assert exact(june, fresh)
    assert not exact(recent, fresh)


def _big_then_mark(marker: Path, send: Callable[[Any], None]) -> None:
    send(("at", 0, bytes(1 << 20)))  # a megabyte: sixteen times the pipe's buffer
    marker.write_text("on")  # the child went on without waiting for it to be read
    send(("done",))


def test_the_child_goes_on_while_its_message_waits_to_be_read(tmp_path: Path) -> None:
    """The parent reads the child's state at a cut only when its own replay gets there; a
    state bigger than the pipe's buffer (the planner's forecast) held the child still until
    then, so the split saved nothing. The child now writes from a thread of its own."""
    marker = tmp_path / "marker"
    child = fork_child(partial(_big_then_mark, marker), name="test-sender")
    assert child is not None
    try:
        deadline = time.monotonic() + 20
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marker.exists()  # before the parent read a byte
        assert child.receive() == ("at", 0, bytes(1 << 20))
        assert child.receive() == ("done",)
        assert child.receive() is None  # the child ended
    finally:
        child.close()


def _until_unread(marker: Path, send: Callable[[Any], None]) -> None:
    try:
        for _ in range(100_000):  # far longer than the test waits
            send(("at", 0, bytes(1 << 16)))
            time.sleep(0.001)
    finally:
        marker.write_text("stopped")


def test_the_child_stops_when_the_parent_stops_reading(tmp_path: Path) -> None:
    """A parent that went on alone (or is gone) closes its end: the child's next message
    fails and its work ends there, rather than replaying the rest for nobody."""
    marker = tmp_path / "marker"
    child = fork_child(partial(_until_unread, marker), name="test-sender")
    assert child is not None
    try:
        assert child.receive() is not None
        child._reader.close()
        deadline = time.monotonic() + 20
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marker.read_text() == "stopped"
    finally:
        child._process.kill()
        child._process.join()


def test_exact_tells_apart_what_equality_does_not() -> None:
    zone = ZoneInfo("America/New_York")
    at = datetime(2025, 6, 1, 12, tzinfo=UTC)
    assert exact((1.0, "a", None, at), (1.0, "a", None, at))
    pairs: list[tuple[Any, Any]] = [
        (0.0, -0.0),
        (1, True),
        (1, 1.0),
        (at, at.astimezone(zone)),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        (np.float64(0.0), np.float64(-0.0)),
        (np.array([0.0]), np.array([-0.0])),
    ]
    for a, b in pairs:
        assert a == b
        assert not exact(a, b)
    assert exact(float("nan"), float("nan"))
    assert not exact(object(), object())  # a kind it does not know: unequal
    control = Control(policy="p", since=at)
    assert exact(Memory(), Memory())
    assert exact(control, Control(policy="p", since=at))
    assert not exact(control, Control(policy="p", since=at + timedelta(minutes=15)))


def test_the_causal_forecast_resumes_as_if_asked_all_along(tmp_path: Path) -> None:
    """The child's fresh forecast takes the plane the calls before its start would have left
    (fitted weekly, on the first asked day a week after the last fit)."""
    config = _config(tmp_path, battery=False)
    series = _series(config, (5, 1), (5, 12))
    site = sample_site(DEFAULT_SAMPLE, series.timezone)
    index = 96 * 10  # 11 May: fitted on the first asked day and a week or more later
    asked = CausalOutlooks(series, config, site=site)
    for at in range(index):
        if series.session_index(at) >= 0:
            asked.at(at)
    resumed = CausalOutlooks(series, config, site=site)
    resumed.resume(index)
    assert asked.oriented_on is not None
    assert asked.orientation is not None
    assert asked.oriented_on >= series.starts[0].date() + timedelta(days=7)  # fitted again
    assert asked.oriented_on < series.starts[index].date()
    assert exact(resumed.state()[:3], asked.state()[:3])


def test_the_first_plane_is_found_ahead_and_the_replay_still_waits_for_it(
    tmp_path: Path,
) -> None:
    """`warm_from` fits ahead of a split replay (the sample's first plane holds in February)
    and leaves the forecast as fresh as it found it: the replay's first outlook comes at the
    bucket it names, as it does without it, with the same plane (no peeking)."""
    config = _config(tmp_path, battery=False)
    series = _series(config, (1, 1), (3, 1))
    site = sample_site(DEFAULT_SAMPLE, series.timezone)
    ahead = CausalOutlooks(series, config, site=site)
    warm = ahead.warm_from()
    assert warm is not None
    assert series.starts[warm] - series.starts[0] > timedelta(days=14)
    assert exact(ahead.state(), CausalOutlooks(series, config, site=site).state())
    alone = CausalOutlooks(series, config, site=site)
    plugged = [i for i in range(len(series.starts)) if series.session_index(i) >= 0]
    assert next(i for i in plugged if ahead.at(i) is not None) == warm
    assert next(i for i in plugged if alone.at(i) is not None) == warm
    assert exact(ahead.state()[:3], alone.state()[:3])
    days = (series.starts[warm] - series.starts[0]).days
    assert CausalOutlooks(series, config, site=site).warm_from(within_days=days) is None
    # the weights a split replay takes from it: the cut comes earlier than with flat ones
    weights = replay_module._weights(ahead.at)
    assert weights == (replay_module.COLD_COST, replay_module.PLANNED_COST, warm)
    assert replay_module._weights(None) == (replay_module.PLUGGED_COST,) * 2 + (0,)
    flat = (replay_module.PLANNED_COST,) * 2 + (0,)
    cold_cut = replay_module._candidates(series, weights)[1][0]
    assert cold_cut < replay_module._candidates(series, flat)[1][0]


def test_a_solar_plan_split_is_the_replay_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planner with the causal forecast over four days."""
    monkeypatch.setattr(replay_module, "MIN_SPLIT_BUCKETS", 96 * 3)
    monkeypatch.setattr(replay_module, "WARM_UP", 48)
    config = _config(tmp_path, battery=False)
    series = _series(config, (5, 6), (5, 10))
    plan = [{"name": "plan", "kind": "solar_plan"}]
    policies = _policies(tmp_path, config, plan)
    extra: dict[str, Any] = {
        "plan_margin": timedelta(minutes=15),
        "forecast_site": sample_site(DEFAULT_SAMPLE, series.timezone),
    }
    alone = _replay(series, config, policies, split=False, **extra)
    seen = cuts_seen(monkeypatch)
    same(_replay(series, config, policies, **extra), alone)
    assert seen
    assert True in seen


@pytest.mark.parametrize("candidates", [1, replay_module.CANDIDATES])
def test_a_cut_where_the_battery_setting_is_a_relic_moves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, candidates: int
) -> None:
    """August to December with the example rules: in the middle (October) the charger's
    battery setting is what the summer rule left in September, which a child starting fresh
    two days before cannot know, so a cut there never agrees; the child cuts a month earlier,
    where the summer rule still sets it, and the halves agree. Either way, the same result."""
    series, config, policies, extra = _august_on(tmp_path)
    monkeypatch.setattr(replay_module, "CANDIDATES", candidates)
    seen = cuts_seen(monkeypatch)
    split = _replay(series, config, policies, **extra)
    assert seen[-1] is (candidates > 1)
    alone = partial(_august_alone, tmp_path)
    rerecord = "python -m tests.test_replay_split"
    same_as_reference(split, RECORD, alone, rerecord, compare=same, stale_fails=True)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        write_record(RECORD, _august_alone(Path(tmp)))
