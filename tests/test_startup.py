"""`evopt --help` answers at once because it imports nothing heavy (issue 16, item 3).

The check is on module names, not time: a fresh interpreter asks for every command's `--help`,
`--version` and a usage error, then lists what it imported. A heavy library (or any optimizer
module beyond the parser) imported on that path fails here with its name, whatever the
machine's speed; `make bench` (benchmarks/daemon.py) times it beside the 0.25 s target.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from optimizer.cli.args import TRIGGER_MESSAGES
from optimizer.cli.args import log as log_args
from optimizer.cli.args import simulate as simulate_args
from optimizer.cli.args.lazy import resolve
from tests.test_bench_daemon import _daemon_bench
from tests.test_cli_usage import TREE

# What issue 16 names, and what they pull in: each costs tens to hundreds of milliseconds.
HEAVY = (
    "aiohttp",
    "cryptography",
    "highspy",
    "jwt",
    "matplotlib",
    "numpy",
    "pandas",
    "pvlib",
    "pydantic",
    "pyenphase",
    "scipy",
    "sqlite_utils",
    "yaml",
)
PARSER_MODULES = {"optimizer", "optimizer.cli", "optimizer.cli.args"}

_PROBE = """
import contextlib, io, json, sys
from optimizer.cli import main
paths = json.loads(sys.argv[1])
for argv in paths:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(argv)
        except SystemExit as exit:
            assert exit.code in (0, 2), (argv, exit.code)
        else:
            raise AssertionError(f"{argv} did not exit in the parser")
print(json.dumps(sorted(sys.modules)))
"""


def _imported_by(argvs: list[list[str]]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(argvs)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    modules: list[str] = json.loads(out)
    return modules


def _heavy(modules: list[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules} & set(HEAVY))


def _beyond_parser(modules: list[str]) -> list[str]:
    ours = [m for m in modules if m.split(".")[0] == "optimizer"]
    return [m for m in ours if m not in PARSER_MODULES and not m.startswith("optimizer.cli.args.")]


def test_every_help_and_version_import_only_the_parser() -> None:
    argvs = [[*path, "--help"] for path, _ in TREE]
    argvs += [["--version"], ["status", "--no-such-option"], ["no-such-command"]]
    modules = _imported_by(argvs)
    assert _heavy(modules) == []
    assert _beyond_parser(modules) == []


def test_the_probe_sees_a_command_that_runs() -> None:
    """The probe would catch an import: `evopt schema` runs and imports the engine (pydantic)."""
    code = """
import contextlib, io, sys
from optimizer.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    main(["schema"])
print(" ".join(sorted(sys.modules)))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    modules = out.split()
    assert "pydantic" in _heavy(modules)
    assert "optimizer.cli.rules" in _beyond_parser(modules)


COMMANDS = [(path, p.get_default("handler")) for path, p in TREE if p.get_default("handler")]


@pytest.mark.parametrize(("path", "ref"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_named_handler_is_a_coroutine_function(path: tuple[str, ...], ref: str) -> None:
    """A handler is a name until the command runs: a typo must fail here, not for a user."""
    assert isinstance(ref, str), path
    handler = resolve(ref)
    assert inspect.iscoroutinefunction(handler), (path, ref)


def test_the_parser_s_copies_match_their_originals() -> None:
    """Help texts and choices show copies (importing the originals costs the engine, the
    store, the client and the simulator); each copy must stay what the library uses."""
    from optimizer.decisions.store import OUTCOMES, RUN_MODES  # noqa: PLC0415
    from optimizer.engine.decision import ACTIONS  # noqa: PLC0415
    from optimizer.enlighten.control import TRIGGER_MESSAGES as SENT  # noqa: PLC0415
    from optimizer.simulate.logdb import DEFAULT_NAME  # noqa: PLC0415
    from optimizer.simulate.minutes import DEFAULT_TICK, SOURCES  # noqa: PLC0415
    from optimizer.simulate.sample import DEFAULT_SAMPLE, SAMPLES  # noqa: PLC0415

    assert TRIGGER_MESSAGES == SENT
    assert (log_args.ACTIONS, log_args.OUTCOMES, log_args.RUN_MODES) == (
        ACTIONS,
        OUTCOMES,
        RUN_MODES,
    )
    assert simulate_args.DEFAULT_NAME == DEFAULT_NAME
    assert (simulate_args.SOURCES, simulate_args.DEFAULT_TICK) == (SOURCES, DEFAULT_TICK)
    assert simulate_args.DEFAULT_SAMPLE == DEFAULT_SAMPLE
    assert {name: s.summary for name, s in SAMPLES.items()} == simulate_args.SAMPLES


_DAEMON_PROBE = """
import json, sys
import optimizer.cli.run, optimizer.service, optimizer.observe.live, optimizer.gateway.source
print(json.dumps(sorted(sys.modules)))
"""


def test_the_daemon_imports_no_simulator_library_and_no_pyenphase() -> None:
    """`evopt run` with the cloud as surplus source (issue 16: RSS within 60 MB): pandas and
    numpy (about 50 MB, pulled in by sqlite-utils), the planner's and simulator's libraries and
    pyenphase (about 19 MB, only for `surplus.source: gateway`) stay out of the process."""
    out = subprocess.run(
        [sys.executable, "-c", _DAEMON_PROBE], capture_output=True, text=True, check=True
    ).stdout
    loaded = {m.split(".")[0] for m in json.loads(out)}
    absent = {"numpy", "pandas", "scipy", "highspy", "matplotlib", "pvlib", "pyenphase"}
    assert loaded & absent == set()
    assert "aiohttp" in loaded  # the probe did import the service's path
    assert "sqlite_utils" not in loaded  # the service's own calls are plain SQL (sqlitedb.py)


_STORE_PROBE = """
import json, sys, tempfile
from datetime import UTC, datetime
from pathlib import Path
from optimizer.decisions.store import DecisionStore
from optimizer.engine.decision import Decision
now = datetime(2025, 1, 15, 10, tzinfo=UTC)
with tempfile.TemporaryDirectory() as tmp, DecisionStore(Path(tmp) / "d.db") as store:
    run = store.start_run(mode="live", site_id=1, config_hash="c", rules_hash="r",
                          version="0", started_at=now)
    decision = Decision(policy="p", charger_sn="EV1", target="charging", action="hold",
                        params={}, reason="r", inputs={})
    store.record(decision, run_id=run, mode="live", site_id=1, ts=now, outcome="noop",
                 state=("memory", {"a": 1}))
    store.save_state("k", [1], updated_at=now)
    store.add_requests(run, hour=now, counts={"status": 1})
    store.end_run(run, ended_at=now)
    # The session history the service keeps with plans: auto (service/sessions.py).
    store.save_history_sessions(1, "EV1", {now.date(): []}, fetched_at=now)
    store.save_history_days(1, "EV1", [({now.date(): [{"a": 1}]}, now)])
    assert store.history_session_days(1, "EV1") == {now.date(): now}
    assert store.load_history_sessions_by_charger(1)[0][1]["data"]["result"] == [{"a": 1}]
    before = "sqlite_utils" in sys.modules
    tables = store.db.table_names()  # anything else: sqlite-utils, on the same connection
print(json.dumps([before, "sqlite_utils" in sys.modules, "decisions" in tables]))
"""


def test_the_service_writes_its_log_without_sqlite_utils() -> None:
    """Creating, migrating and writing the decision log (and the session history, kept by the
    service with ``plans: auto``) is plain SQL; sqlite-utils (with click, pluggy and
    dateutil, about 3.5 MB resident) loads only for a call beyond those."""
    out = subprocess.run(
        [sys.executable, "-c", _STORE_PROBE], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == [False, True, True]


def test_the_config_does_not_import_the_transport() -> None:
    """`evopt validate` and every command read the config; it names the cloud's default
    address without importing aiohttp."""
    code = "import sys, optimizer.config; print('aiohttp' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


OFFLINE = ("forecast", "log", "logplot", "logsim", "plan", "rules", "simulate", "simulate_minutes")


def test_the_commands_that_never_reach_the_cloud_do_not_import_its_client() -> None:
    """`evopt simulate`, `evopt log` and the other commands that work from files and the
    decision log: the cloud's client, aiohttp and the sign-in's libraries stay out (0.16 s of
    each start). The service's package and the live observer load them on first use."""
    modules = ", ".join(f"optimizer.cli.{name}" for name in OFFLINE)
    code = f"import json, sys, {modules}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    assert {"aiohttp", "jwt", "cryptography"} & {m.split(".")[0] for m in loaded} == set()
    assert "optimizer.enlighten.client" not in loaded
    assert "optimizer.service.core" not in loaded


def test_the_lazy_packages_still_give_their_names() -> None:
    """``from optimizer.service import Service`` and ``from optimizer.observe import
    observe_live`` keep working: the names load their modules when first asked for."""
    import optimizer.observe  # noqa: PLC0415
    import optimizer.service  # noqa: PLC0415
    from optimizer.observe import live  # noqa: PLC0415
    from optimizer.service import clock, core, fleet  # noqa: PLC0415

    assert optimizer.observe.observe_live is live.observe_live
    assert optimizer.service.Service is core.Service
    assert optimizer.service.Fleet is fleet.Fleet
    assert optimizer.service.SystemClock is clock.SystemClock
    for package in (optimizer.observe, optimizer.service):
        for name in package.__all__:
            assert getattr(package, name) is not None
        with pytest.raises(AttributeError, match="no_such_name"):
            getattr(package, "no_such_name")  # noqa: B009


def test_pandas_and_numpy_still_import_after_the_store() -> None:
    """Hidden only while sqlite-utils loads: the simulator imports them afterwards."""
    code = (
        "from optimizer.decisions.sqlitedb import sqlite_utils_db; db = sqlite_utils_db(); "
        "import numpy, pandas; "
        "print(db.np is None, db.pd is None, numpy.zeros(2).sum(), len(pandas.DataFrame()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["True", "True", "0.0", "0"]


_SIMULATE_PROBE = """
import atexit, sys
atexit.register(lambda: print(sorted(sys.modules), file=sys.stderr))
from optimizer.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_replay_of_rules_alone_imports_no_numpy(tmp_path: Path) -> None:
    """`evopt simulate --no-log` on the example rules, the optimum solved (in the forked
    process, or by the exact search): numpy (a twentieth of the command's time) is for the
    forecast and the optimum's HiGHS programme, never imported by the replay or the report."""
    bench = _daemon_bench()  # its example config: config.example.yaml with a scratch state
    config = bench.example_config("http://127.0.0.1:9", tmp_path)  # type: ignore[attr-defined]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _SIMULATE_PROBE,
            "--config",
            str(config),
            "simulate",
            "--sample",
            "--from",
            "2025-05-01",
            "--to",
            "2025-05-04",
            "--no-log",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "EVOPT_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert "optimal" in done.stdout  # the report with its baselines
    modules = ast.literal_eval(done.stderr.strip().splitlines()[-1])
    loaded = {m.split(".")[0] for m in modules}
    assert "optimizer" in loaded  # the probe ran the command
    assert {"numpy", "scipy", "pandas", "pvlib"} & loaded == set()
    # Nor the one-minute replay (0.1 s of imports) for a 15-minute source.
    assert "optimizer.cli.simulate_minutes" not in modules
