"""Shared fixtures. Retries sleep for real nowhere in the suite."""

from __future__ import annotations

import inspect
from typing import Any
from unittest.mock import Mock

import aioresponses.core
from aiohttp import ClientResponse

import tests.profiles  # noqa: F401 - registers and loads the hypothesis profiles (ci, soak)

# aioresponses 0.7.9 predates aiohttp 3.14's required ``stream_writer`` argument
# (pnuckowski/aioresponses#289). Until a release carries the fix, hand it a writer stub.
if "stream_writer" in inspect.signature(ClientResponse.__init__).parameters:

    class _CompatClientResponse(ClientResponse):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("stream_writer", Mock(output_size=0))
            super().__init__(*args, **kwargs)

    aioresponses.core.ClientResponse = _CompatClientResponse  # type: ignore[misc]


# --- Enlighten client fixtures (tests/test_transport.py, test_auth.py, test_client.py) -------

import base64
import itertools
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aioresponses import aioresponses

from optimizer import logsafe
from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.transport import Transport
from optimizer.fakecloud import FakeCloud
from tests.cli_env import Env, make_env

ENLIGHTEN_BASE_URL = "https://enlighten.enphaseenergy.com"


class SleepRecorder:
    """Stands in for ``asyncio.sleep`` in every Transport: records each delay, never waits."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)

    @property
    def total(self) -> float:
        return sum(self.delays)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """`evopt` commands run in-process install a stderr handler on the root logger; remove
    it afterwards, or later tests would log to a capture stream that pytest has closed."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> SleepRecorder:
    """Retry sleeps are instant everywhere: every Transport built without ``sleep=`` gets this."""
    recorder = SleepRecorder()
    defaults = Transport.__init__.__kwdefaults__
    assert defaults is not None
    assert "sleep" in defaults
    monkeypatch.setitem(defaults, "sleep", recorder)
    return recorder


@dataclass(frozen=True)
class Credentials:
    email: str
    password: str


@pytest.fixture
def creds() -> Credentials:
    # Distinctive values: they are registered as log secrets and must not match anything else.
    return Credentials(email="ev.owner.test@example.com", password="Pa55-w0rd-never-logged")


@pytest.fixture
def mock_cloud() -> Iterator[aioresponses]:
    with aioresponses() as mocked:
        yield mocked


@pytest.fixture
def make_jwt() -> Callable[..., str]:
    """A JWT-shaped token (unsigned) with the given claims."""

    def build(**claims: object) -> str:
        def part(obj: object) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

        return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"

    return build


@pytest.fixture
async def client(tmp_path: Path, creds: Credentials) -> AsyncIterator[EnlightenClient]:
    """A client with an established session (seeded, not saved) and a password to re-login."""
    async with EnlightenClient(
        base_url=ENLIGHTEN_BASE_URL,
        email=creds.email,
        password_provider=lambda: creds.password,
        state_dir=tmp_path / "state",
    ) as enlighten:
        state = enlighten.transport.state
        state.session_id = "seeded-session-id-4711"
        state.manager_token = "seeded.manager.token-4711"
        state.cookies = {"_enlighten_4_session": "seeded-cookie-4711", "XSRF-TOKEN": "xsrf-4711"}
        state.generation = 1
        yield enlighten


# --- `evopt` end to end against the fake cloud -------------------------------------------


@pytest.fixture
def env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Env]:
    yield from make_env(FakeCloud(), tmp_path, capsys, monkeypatch)


@pytest.fixture
def mfa_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Env]:
    yield from make_env(FakeCloud(mfa=True), tmp_path, capsys, monkeypatch)


# The longest tests (each 2 to 13 s of CPU; `make unit` lists the ten slowest): run first, so
# that under pytest-xdist no worker is left with one of them while the other has finished.
# A name here that no longer matches only loses its place in the queue.
LONG_FIRST = (
    "tests/test_planner_replay.py::test_on_a_sample_month",  # the DP's May, 11-13 s
    "tests/test_planner_service.py::",
    "tests/test_simulate_golden.py::test_the_sample_report_is_unchanged[year",
    "tests/test_planner_replay.py::test_the_planner_never_beats_the_optimum",
    "tests/test_replay_split.py::test_drawn_rules_split",
    "tests/test_level_restart.py::test_sigkill_between_the_halves",
    "tests/test_session_commands.py::test_the_memory_counts_each_session",
    "tests/test_replay_plugged.py::",
    "tests/test_soak.py::",
    "tests/test_site_allocation_e2e.py::test_two_cars_over_a_simulated_day",
    "tests/test_forecast_solar.py::test_changing_the_future_changes_nothing",
    "tests/test_service.py::test_six_hours_of_the_example_rules",
    "tests/test_minute_replay.py::test_skipping_idle_ticks",
    "tests/test_crash_safety.py::",
    "tests/test_crash_sites.py::",
    "tests/test_simulate_learned.py::test_simulate_plans_learned_on_the_sample",
    "tests/test_service_process.py::",
    "tests/test_mqtt.py::test_the_soak_with_the_broker_dropping",
    "tests/test_baseline_cache.py::test_the_pool_gives_the_single_process_answer_exactly",
    "tests/test_engine_properties.py::",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests of LONG_FIRST first, in that order; every other test keeps its place."""

    def rank(item: pytest.Item) -> int:
        return next(
            (i for i, prefix in enumerate(LONG_FIRST) if item.nodeid.startswith(prefix)),
            len(LONG_FIRST),
        )

    items.sort(key=rank)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The soak's and the crash tests' figures (tests/summary.py), after the results."""
    from tests.summary import LINES  # noqa: PLC0415 - read at the end, after the tests ran

    if LINES:
        terminalreporter.section("reliability figures")
        for line in LINES:
            terminalreporter.write_line(line)


_CACHE_NUMBERS = itertools.count()


@pytest.fixture(scope="session")
def _baseline_caches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("evopt-cache")


@pytest.fixture(autouse=True)
def _private_baseline_cache(_baseline_caches: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own (empty) optimal-baseline cache, never the user's ~/.cache: a test
    must solve what it means to test, not read an answer another test or run left.

    A path not yet made, under one directory per worker: the cache makes it when it writes its
    first answer, and few tests write one. A numbered directory per test (``mktemp``) listed
    the worker's whole temp root to number each one, quadratic in the tests it ran: 1,500
    directories took 1.3 s, and the next run's clean-up removed each again."""
    monkeypatch.setenv("EVOPT_CACHE_DIR", str(_baseline_caches / str(next(_CACHE_NUMBERS))))


@pytest.fixture(autouse=True)
def _secrets_of_this_test() -> Iterator[None]:
    """The redaction registry as it was before the test: a secret one test registers (an OTP
    "123456") must not redact another test's site id ("evopt/***7/state") in the same worker."""
    with logsafe._lock:
        before = set(logsafe._secrets)
    yield
    with logsafe._lock:
        logsafe._secrets.clear()
        logsafe._secrets.update(before)
        logsafe._version += 1  # the index is rebuilt from the restored set
