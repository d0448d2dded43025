"""The bundled sample's `evopt simulate --json` reports, pinned (issue 16: every simulate figure
unchanged to the printed precision after the speed work).

The reports under tests/fixtures/simulate_golden/ were recorded from the code before the replay,
the engine and the baselines were made fast; the rules replayed are a frozen copy of the example
rules beside the config there, so a change to rules/ or config.example.yaml does not move them.
A deliberate change of a figure re-records them with ``python -m tests.test_simulate_golden``
and says why in its commit.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import tempfile
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from optimizer.cli import main

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


@pytest.mark.parametrize("name", list(CASES))
def test_the_sample_report_is_unchanged(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    expected = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    assert report(name, capsys) == expected


# Every column a reader of the log sees, except the ids a run is given.
LOGGED = (
    "ts, mode, site_id, charger_sn, policy, target, action, params, reason, inputs, overruled,"
    " outcome, error, commands"
)


def logged_digest(tmp: Path) -> str:
    """SHA-256 over every decision row June's replay logs to simulations.db, in order."""
    config = tmp / "config.yaml"
    text = (GOLDEN / "config.yaml").read_text(encoding="utf-8")
    text = text.replace("  - rules/*.yaml", f"  - {GOLDEN / 'rules' / '*.yaml'}")
    config.write_text(text + f"service:\n  database: {tmp / 'decisions.db'}\n", encoding="utf-8")
    with redirect_stdout(StringIO()):
        code = main(["--config", str(config), "simulate", "--sample", *JUNE, "--json"])
    assert code == 0
    digest = hashlib.sha256()
    with sqlite3.connect(tmp / "simulations.db") as db:
        for row in db.execute(f"SELECT {LOGGED} FROM decisions ORDER BY id"):  # noqa: S608
            digest.update(json.dumps(row).encode())
    return digest.hexdigest()


def test_the_logged_decisions_are_unchanged(tmp_path: Path) -> None:
    """Encoding the rows more cheaply must not change one byte a reader of the log sees."""
    expected = (GOLDEN / "june-decisions.sha256").read_text(encoding="utf-8").strip()
    assert logged_digest(tmp_path) == expected


if __name__ == "__main__":
    for case in sys.argv[1:] or [*CASES, "decisions"]:
        if case == "decisions":
            with tempfile.TemporaryDirectory() as tmp:
                path = GOLDEN / "june-decisions.sha256"
                path.write_text(logged_digest(Path(tmp)) + "\n", encoding="utf-8")
        else:
            path = GOLDEN / f"{case}.json"
            path.write_text(json.dumps(report(case), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")
