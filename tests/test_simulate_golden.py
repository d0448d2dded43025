"""The bundled sample's `evopt simulate --json` reports, pinned (issue 16: every simulate figure
unchanged to the printed precision after the speed work).

The reports under tests/fixtures/simulate_golden/ were recorded from the code before the replay,
the engine and the baselines were made fast; the rules replayed are a frozen copy of the example
rules beside the config there, so a change to rules/ or config.example.yaml does not move them.
A deliberate change of a figure re-records them with ``python -m tests.test_simulate_golden``
and says why in its commit.

The year with plans is also the sample year's check of the replay in two processes
(optimizer/simulate/replay.py ``_split_advance``, tests/test_replay_split.py): the child's half
is taken, and the replay's every bucket is the replay alone's to the bit, as recorded in
``year-plans-replay.sha256`` (:func:`tests.records.fingerprint` of the run with the
split turned off); this run is then the only year the suite replays for it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import tempfile
from contextlib import redirect_stdout
from functools import partial
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

import optimizer.cli.simulate as simulate_cli
import optimizer.simulate.replay as replay_module
from optimizer.cli import main
from optimizer.simulate.replay import ReplayResult
from tests.records import same_as_reference, write_record
from tests.test_replay_split import cuts_seen, same

GOLDEN = Path(__file__).parent / "fixtures" / "simulate_golden"
JUNE = ("--from", "2025-06-01", "--to", "2025-06-30")
JUNE_WEEK = ("--from", "2025-06-01", "--to", "2025-06-07")
# name -> the `evopt simulate` arguments after --sample (--no-log --json are always added).
CASES: dict[str, tuple[str, ...]] = {
    "june": JUNE,
    "june-plans": (*JUNE, "--plans"),
    "year": (),
    "year-plans": ("--plans",),
    "minutes-week-tick1": ("--minutes", *JUNE_WEEK, "--tick", "1", "--compare-sources"),
    "minutes-week-tick5": ("--minutes", *JUNE_WEEK, "--tick", "5", "--compare-sources"),
}


def report(name: str, capsys: pytest.CaptureFixture[str] | None = None) -> dict[str, Any]:
    """The report of case ``name`` from the code as it is now."""
    args = ["--config", str(GOLDEN / "config.yaml"), "simulate", "--sample", *CASES[name]]
    if capsys is None:
        out = StringIO()
        with redirect_stdout(out):
            code = main([*args, "--no-log", "--json"])
        text = out.getvalue()
    else:
        code = main([*args, "--no-log", "--json"])
        text = capsys.readouterr().out
    assert code == 0, text
    parsed: dict[str, Any] = json.loads(text)
    return parsed


SPLIT = "year-plans"  # the case whose replay is also checked against the replay alone
# June's report is checked on the run that logs its decisions (the other cases run --no-log):
# one replay of June for both, and a log that changed a figure would show.
LOGGED_CASE = "june"


def _replays(monkeypatch: pytest.MonkeyPatch) -> list[ReplayResult]:
    """Each result of the 15-minute replay `evopt simulate` makes, as it comes."""
    results: list[ReplayResult] = []
    real = simulate_cli.replay

    def recording(*args: Any, **kwargs: Any) -> ReplayResult:
        results.append(real(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(simulate_cli, "replay", recording)
    return results


def alone_replay(monkeypatch: pytest.MonkeyPatch) -> ReplayResult:
    """The year with plans replayed in this process alone (the split turned off)."""
    with monkeypatch.context() as inside:
        inside.setenv(replay_module.SPLIT_ENV, "0")
        results = _replays(inside)
        report(SPLIT)
    (result,) = results
    return result


@pytest.mark.parametrize("name", [name for name in CASES if name != LOGGED_CASE])
def test_the_sample_report_is_unchanged(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    results, seen = _replays(monkeypatch), cuts_seen(monkeypatch)
    assert report(name, capsys) == expected
    if name != SPLIT:
        return
    (split,) = results
    assert seen[-1] is True  # taken: the second half came from the forked child
    record = GOLDEN / f"{SPLIT}-replay.sha256"
    alone = partial(alone_replay, monkeypatch)
    rerecord = f"python -m tests.test_simulate_golden {SPLIT}-replay"
    same_as_reference(split, record, alone, rerecord, compare=same, stale_fails=True)


# Every column a reader of the log sees, except the ids a run is given.
LOGGED = (
    "ts, mode, site_id, charger_sn, policy, target, action, params, reason, inputs, overruled,"
    " outcome, error, commands"
)


def logged_run(tmp: Path) -> tuple[dict[str, Any], str]:
    """June's report, and the SHA-256 over every decision row its replay logs to
    simulations.db, in order."""
    config = tmp / "config.yaml"
    text = (GOLDEN / "config.yaml").read_text(encoding="utf-8")
    text = text.replace("  - rules/*.yaml", f"  - {GOLDEN / 'rules' / '*.yaml'}")
    config.write_text(text + f"service:\n  database: {tmp / 'decisions.db'}\n", encoding="utf-8")
    out = StringIO()
    with redirect_stdout(out):
        code = main(
            ["--config", str(config), "simulate", "--sample", *CASES[LOGGED_CASE], "--json"]
        )
    assert code == 0
    digest = hashlib.sha256()
    with sqlite3.connect(tmp / "simulations.db") as db:
        for row in db.execute(f"SELECT {LOGGED} FROM decisions ORDER BY id"):  # noqa: S608
            digest.update(json.dumps(row).encode())
    parsed: dict[str, Any] = json.loads(out.getvalue())
    return parsed, digest.hexdigest()


def test_june_s_report_and_logged_decisions_are_unchanged(tmp_path: Path) -> None:
    """Encoding the rows more cheaply must not change one byte a reader of the log sees, and
    logging them changes no figure of the report."""
    expected = json.loads((GOLDEN / f"{LOGGED_CASE}.json").read_text(encoding="utf-8"))
    digest = (GOLDEN / "june-decisions.sha256").read_text(encoding="utf-8").strip()
    found, logged = logged_run(tmp_path)
    assert found.pop("run_id") is not None  # the run logged is named: the record ran --no-log
    assert expected.pop("run_id") is None
    assert (found, logged) == (expected, digest)


if __name__ == "__main__":
    for case in sys.argv[1:] or [*CASES, "decisions", f"{SPLIT}-replay"]:
        if case == f"{SPLIT}-replay":
            with pytest.MonkeyPatch.context() as patch:
                write_record(GOLDEN / f"{case}.sha256", alone_replay(patch))
            continue
        if case == "decisions":
            with tempfile.TemporaryDirectory() as tmp:
                path = GOLDEN / "june-decisions.sha256"
                path.write_text(logged_run(Path(tmp))[1] + "\n", encoding="utf-8")
        else:
            path = GOLDEN / f"{case}.json"
            path.write_text(json.dumps(report(case), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")
