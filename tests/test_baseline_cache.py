"""The optimal baseline's cache and its process pool (issue 16 item 2): a rerun solves nothing,
any changed input solves again, and neither the pool nor the cache changes a single figure."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import threading
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from optimizer.limits import Limits
from optimizer.simulate import baseline_cache, optimum_exact
from optimizer.simulate.baseline_cache import cache_dir, cached_baseline, inputs_key, solve_ahead
from optimizer.simulate.baselines import POOL_MIN_GROUPS, optimal
from optimizer.simulate.series import BUCKET, Session, SiteSeries
from tests.records import same_as_reference, write_record

T0 = datetime(2024, 6, 1, tzinfo=UTC)
LIMITS = Limits(6, 32, 1)
VOLTS = 240.0
Profile = tuple[tuple[float, ...], int]


def seeded_series(seed: int, days: int) -> SiteSeries:
    """A broken-sun history with one or two sessions a day (evening and some midday ones)."""
    rng = random.Random(seed)
    pv, prices = [], []
    for _ in range(days):
        for q in range(96):
            hour = q / 4
            pv.append(max(0.0, 1 - abs(hour - 13) / 6) * rng.uniform(0.1, 1.0) * 1.6)
            prices.append(0.12 if hour < 7 or hour >= 23 else 0.33)
    sessions = []
    for day in range(days):
        for begin_h in rng.sample([8.25, 11.0, 17.5], rng.choice([1, 2])):
            begin = day * 96 + begin_h * 4 + rng.random()
            end = begin + rng.randint(6, 40) + rng.random()
            sessions.append((begin, min(end, days * 96.0), rng.uniform(2.0, 22.0)))
    sessions.sort()
    kept: list[tuple[float, float, float]] = []
    for begin, end, kwh in sessions:  # sessions never overlap (one car)
        if kept and begin < kept[-1][1]:
            continue
        kept.append((begin, end, kwh))
    n = len(pv)
    return SiteSeries(
        starts=tuple(T0 + i * BUCKET for i in range(n)),
        pv_kwh=tuple(pv),
        house_kwh=tuple(rng.uniform(0.1, 0.4) for _ in range(n)),
        missing=tuple(rng.random() < 0.003 for _ in range(n)),
        import_price=tuple(prices),
        export_price=0.04,
        timezone="UTC",
        sessions=tuple(Session(T0 + a * BUCKET, T0 + b * BUCKET, kwh) for a, b, kwh in kept),
    )


class Counting:
    """The real optimum, counting how often it is actually solved."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(
        self, series: SiteSeries, limits: Limits, voltage_v: float, *, workers: int | None = None
    ) -> Profile:
        self.calls += 1
        return optimal(series, limits, voltage_v, workers=workers)


POOL_SEEDS = (3, 11)
RECORDS = Path(__file__).parent / "fixtures" / "baseline_cache"


def _record(seed: int) -> Path:
    """The fingerprint of seed ``seed``'s answer solved in one process, every MILP by HiGHS
    (:func:`tests.records.fingerprint`: each bucket's energy by its bits, the
    commands); ``python -m tests.test_baseline_cache`` records it."""
    return RECORDS / f"pool-{seed}.sha256"


def _alone(seed: int, monkeypatch: pytest.MonkeyPatch) -> Profile:
    """Seed ``seed``'s optimum in this process, every session a MILP: the exact search gives
    up at once (its own answers are checked against HiGHS in test_optimum_exact.py)."""
    with monkeypatch.context() as inside:
        inside.setattr(optimum_exact, "NODE_LIMIT", 0)
        inside.setenv("EVOPT_SOLVE_WORKERS", "1")
        return optimal(seeded_series(seed, days=20), LIMITS, VOLTS)


@pytest.mark.parametrize("seed", POOL_SEEDS)
def test_the_pool_gives_the_single_process_answer_exactly(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool's answer is the one process's, as recorded: the one process solves again only
    where the record differs (then it decides: a pool that differs fails; a record that does
    not hold on this machine, HiGHS's last bits or a changed optimum, is a warning to
    re-record), so the 25-28 MILPs are solved once here, not twice."""
    series = seeded_series(seed, days=20)
    assert len(series.sessions) >= POOL_MIN_GROUPS  # else the pool is not used at all
    # The pool serves HiGHS only: with the exact search giving up at once, every session is
    # a MILP.
    monkeypatch.setattr(optimum_exact, "NODE_LIMIT", 0)
    monkeypatch.setenv("EVOPT_SOLVE_WORKERS", "2")
    pooled = optimal(series, LIMITS, VOLTS)
    assert sum(pooled[0]) > 0
    assert pooled[1] > 0
    rerecord = "python -m tests.test_baseline_cache"
    same_as_reference(pooled, _record(seed), partial(_alone, seed, monkeypatch), rerecord)


def test_a_rerun_reads_the_answer_instead_of_solving(tmp_path: Path) -> None:
    series = seeded_series(5, days=6)
    run = Counting()
    first = cached_baseline("optimal", run, series, LIMITS, VOLTS, directory=tmp_path)
    again = cached_baseline("optimal", run, series, LIMITS, VOLTS, directory=tmp_path)
    assert run.calls == 1
    assert again == first == optimal(series, LIMITS, VOLTS)  # exact: floats round-trip
    assert [p.name for p in tmp_path.iterdir()] == [
        f"optimal-{inputs_key('optimal', series, LIMITS, VOLTS)}.json"
    ]


def _changed(series: SiteSeries) -> dict[str, tuple[SiteSeries, Limits, float]]:
    pv = list(series.pv_kwh)
    pv[500] += 1e-9
    first = series.sessions[0]
    later = Session(first.start, first.end + BUCKET / 3, first.energy_kwh)
    return {
        "one PV reading": (replace(series, pv_kwh=tuple(pv)), LIMITS, VOLTS),
        "a session's end": (replace(series, sessions=(later, *series.sessions[1:])), LIMITS, VOLTS),
        "a price": (replace(series, export_price=0.05), LIMITS, VOLTS),
        "the limits": (series, Limits(6, 24, 1), VOLTS),
        "the voltage": (series, LIMITS, 230.0),
    }


def test_any_changed_input_solves_again(tmp_path: Path) -> None:
    series = seeded_series(5, days=6)
    run = Counting()
    cached_baseline("optimal", run, series, LIMITS, VOLTS, directory=tmp_path)
    for what, (changed, limits, volts) in _changed(series).items():
        before = run.calls
        got = cached_baseline("optimal", run, changed, limits, volts, directory=tmp_path)
        assert run.calls == before + 1, what
        assert got == optimal(changed, limits, volts), what


def test_an_unreadable_file_is_solved_again_and_rewritten(tmp_path: Path) -> None:
    series = seeded_series(5, days=3)
    run = Counting()
    first = cached_baseline("optimal", run, series, LIMITS, VOLTS, directory=tmp_path)
    (path,) = tmp_path.iterdir()
    for broken in ("{not json", '{"commands": 3}', '{"commands": 1, "nonzero": [[99999999, 1]]}'):
        path.write_text(broken, encoding="utf-8")
        assert cached_baseline("optimal", run, series, LIMITS, VOLTS, directory=tmp_path) == first
        assert json.loads(path.read_text(encoding="utf-8"))["commands"] == first[1]
    assert run.calls == 4


def test_concurrent_runs_leave_one_whole_file(tmp_path: Path) -> None:
    series = seeded_series(9, days=4)
    found: list[Profile] = []

    def one() -> None:
        found.append(cached_baseline("optimal", optimal, series, LIMITS, VOLTS, directory=tmp_path))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 4
    assert all(f == found[0] for f in found)
    assert len(list(tmp_path.iterdir())) == 1  # no temporary file left behind
    assert (
        cached_baseline("optimal", Counting(), series, LIMITS, VOLTS, directory=tmp_path)
        == (found[0])
    )


def test_the_oldest_answers_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(baseline_cache, "MAX_FILES", 2)
    series = seeded_series(2, days=2)
    for volts in (220.0, 230.0, 240.0):
        cached_baseline("optimal", optimal, series, LIMITS, volts, directory=tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_the_cache_lives_where_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVOPT_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine" / "baselines"
    monkeypatch.delenv("EVOPT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "evopt" / "baselines"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "evopt" / "baselines"


def test_a_rerun_of_simulate_solves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end: the second `evopt simulate` of the same week takes the optimum from the
    cache (the solver is not even imported for it) and reports the same figures."""
    from optimizer.cli import main  # noqa: PLC0415
    from optimizer.simulate import baselines  # noqa: PLC0415

    config = tmp_path / "config.yaml"
    config.write_text(f"rules:\n  - {Path(__file__).parents[1] / 'rules' / 'excess-solar.yaml'}\n")
    args = ["--config", str(config), "simulate", "--sample", "--no-log", "--json"]
    args += ["--from", "2025-06-02", "--to", "2025-06-08"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    solved = Counting()
    monkeypatch.setattr(baselines, "optimal", solved)
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert solved.calls == 0
    assert first["baselines"]["optimal"]["ev_energy_kwh"] > 0


def test_solved_ahead_is_the_in_process_answer_exactly(tmp_path: Path) -> None:
    """The forked child's answer is what the report would have solved itself, bit for bit,
    and it lands in the cache: the next run starts no child at all."""
    series = seeded_series(7, days=6)
    ahead = solve_ahead("optimal", optimal, series, LIMITS, VOLTS, directory=tmp_path)
    assert ahead is not None
    here = Counting()
    got = cached_baseline("optimal", here, series, LIMITS, VOLTS, directory=tmp_path, ahead=ahead)
    assert here.calls == 0  # solved in the child, not here
    assert got == optimal(series, LIMITS, VOLTS)
    assert solve_ahead("optimal", optimal, series, LIMITS, VOLTS, directory=tmp_path) is None
    assert cached_baseline("optimal", here, series, LIMITS, VOLTS, directory=tmp_path) == got
    assert here.calls == 0


def _raises(series: SiteSeries, limits: Limits, voltage_v: float) -> Profile:
    raise RuntimeError("no solver in this child")


def _dies(series: SiteSeries, limits: Limits, voltage_v: float) -> Profile:
    os._exit(3)


@pytest.mark.parametrize("child", [_raises, _dies])
def test_a_failed_child_leaves_the_solve_to_the_report(tmp_path: Path, child: object) -> None:
    series = seeded_series(4, days=3)
    ahead = solve_ahead("optimal", child, series, LIMITS, VOLTS, directory=tmp_path)  # type: ignore[arg-type]
    assert ahead is not None
    here = Counting()
    got = cached_baseline("optimal", here, series, LIMITS, VOLTS, directory=tmp_path, ahead=ahead)
    assert here.calls == 1
    assert got == optimal(series, LIMITS, VOLTS)


def _blocks(series: SiteSeries, limits: Limits, voltage_v: float) -> Profile:
    threading.Event().wait()
    raise AssertionError("never set")


def test_an_unread_child_is_ended_and_leaves_no_answer(tmp_path: Path) -> None:
    """A simulation that fails before its report ends the child instead of waiting for it."""
    series = seeded_series(4, days=2)
    with solve_ahead("optimal", _blocks, series, LIMITS, VOLTS, directory=tmp_path) as ahead:
        process = ahead._child._process
        assert process.is_alive()
    assert not process.is_alive()
    assert ahead.result() is None
    assert not list(tmp_path.glob("*.json"))


def _large(series: SiteSeries, limits: Limits, voltage_v: float) -> Profile:
    return tuple(float(i) for i in range(100_000)), 0  # about a megabyte pickled


def test_a_child_whose_parent_is_gone_ends(tmp_path: Path) -> None:
    """The parent killed before it read the answer (its end of the pipe closed): the child's
    send fails and it ends, its answer in the cache, where it blocked for ever on a pipe whose
    only reader was its own copy."""
    series = seeded_series(4, days=2)
    ahead = solve_ahead("optimal", _large, series, LIMITS, VOLTS, directory=tmp_path)
    assert ahead is not None
    process = ahead._child._process
    try:
        ahead._child._reader.close()  # as a killed parent's end is
        process.join(20)
        assert process.exitcode is not None
        assert list(tmp_path.glob("*.json"))  # the answer stays in the cache
    finally:
        if process.is_alive():
            process.kill()
            process.join()


def test_simulate_solving_ahead_reports_exactly_what_solving_at_the_report_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end, cold cache both times: `evopt simulate` with the optimum solved in a child
    during the replay prints the same JSON as with it solved in-process at the report (and
    the parent solves nothing itself)."""
    from optimizer.cli import main  # noqa: PLC0415
    from optimizer.cli import simulate as cli_simulate  # noqa: PLC0415
    from optimizer.simulate import baselines  # noqa: PLC0415

    config = tmp_path / "config.yaml"
    config.write_text(f"rules:\n  - {Path(__file__).parents[1] / 'rules' / 'excess-solar.yaml'}\n")
    args = ["--config", str(config), "simulate", "--sample", "--no-log", "--json"]
    args += ["--from", "2025-06-02", "--to", "2025-06-12"]
    solved = Counting()
    monkeypatch.setattr(baselines, "optimal", solved)

    monkeypatch.setenv("EVOPT_CACHE_DIR", str(tmp_path / "at-the-report"))
    with monkeypatch.context() as inline:
        inline.setattr(cli_simulate, "solve_optimum_ahead", lambda *_: None)
        assert main(args) == 0
    at_report = json.loads(capsys.readouterr().out)
    assert solved.calls == 1

    monkeypatch.setenv("EVOPT_CACHE_DIR", str(tmp_path / "ahead"))
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == at_report
    assert solved.calls == 1  # the second solve ran in the child
    assert len(list((tmp_path / "ahead" / "baselines").glob("optimal-*.json"))) == 1
    assert at_report["baselines"]["optimal"]["ev_energy_kwh"] > 0


def _blocks_with_a_helper(series: SiteSeries, limits: Limits, voltage_v: float) -> Profile:
    """Like a solve on several cores: a process of its own below the child, then blocks."""
    helper = multiprocessing.get_context("fork").Process(target=threading.Event().wait)
    helper.start()
    (Path(os.environ["EVOPT_TEST_HELPER_PID"])).write_text(str(helper.pid), encoding="utf-8")
    threading.Event().wait()
    raise AssertionError("never set")


def _ended(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in {"Z", "X"}  # a zombie left to whoever adopted it is ended too


def test_closing_ends_the_childs_own_processes_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    series = seeded_series(4, days=2)
    marker = tmp_path / "helper.pid"
    monkeypatch.setenv("EVOPT_TEST_HELPER_PID", str(marker))
    ahead = solve_ahead("optimal", _blocks_with_a_helper, series, LIMITS, VOLTS, directory=tmp_path)
    assert ahead is not None
    for _ in range(2000):  # the helper writes its pid once it runs
        if marker.exists() and marker.read_text(encoding="utf-8"):
            break
        threading.Event().wait(0.01)
    helper = int(marker.read_text(encoding="utf-8"))
    assert not _ended(helper)
    ahead.close()
    for _ in range(500):  # a signal is delivered asynchronously
        if _ended(helper):
            break
        threading.Event().wait(0.01)
    assert _ended(helper)


if __name__ == "__main__":
    with pytest.MonkeyPatch.context() as patch:
        for pool_seed in POOL_SEEDS:
            write_record(_record(pool_seed), _alone(pool_seed, patch))
