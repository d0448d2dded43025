"""The optimal baseline, remembered by its inputs, so a rerun or `--compare` solves nothing.

The perfect-foresight optimum (:func:`optimizer.simulate.baselines.optimal`) is a few hundred
mixed-integer solves for a year: most of what `evopt simulate` spends when the policies are
fast. It depends only on the history, the charger's limits and the voltage (plans, rules and
the home battery never enter its programme: the report runs the battery model over its profile
afterwards), so its answer is stored under a content hash of exactly those inputs, plus the
programme's version and the solver's. Any change to one of them is a different key: there is
nothing to invalidate by hand.

Ahead of need (:class:`Ahead`): a cold answer is a few seconds of solving that nothing in the
replay depends on, so `evopt simulate` forks one process for it before the replay starts and
collects the answer for the report; the solves then run on the second core while the replay
runs on the first. The child solves exactly what the report would have solved in-process (the
same function on the same inputs, written to the same cache file), so the figures are the same;
if the child cannot be had or dies, the report solves in-process as before.

Where: ``$EVOPT_CACHE_DIR``, else ``$XDG_CACHE_HOME/evopt``, else ``~/.cache/evopt``, in
``baselines/``; one small JSON file per key (the profile's non-zero buckets). Safe under
concurrent runs: each file is written to a temporary name in the same directory and renamed
into place, so a reader sees the whole file or none. A file that cannot be read or does not
parse is a miss (solved again and rewritten), never an error; a cache directory that cannot be
written only costs the solve next time. The oldest files go beyond :data:`MAX_FILES`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

from optimizer.cachedir import cache_root
from optimizer.simulate.series import SiteSeries
from optimizer.simulate.split import Child, fork_child

if TYPE_CHECKING:
    from optimizer.limits import Limits

__all__ = [
    "MAX_FILES",
    "PROGRAMME_VERSION",
    "Ahead",
    "cache_dir",
    "cached_baseline",
    "inputs_key",
    "solve_ahead",
]

_LOGGER = logging.getLogger(__name__)

PROGRAMME_VERSION = 3
"""Bump when the optimum's programme or its command count changes: old answers stop matching."""
MAX_FILES = 64
"""Files kept; a year's answer is ~100 kB, so the cache stays under ~10 MB."""

Profile = tuple[tuple[float, ...], int]


def cache_dir() -> Path:
    """The directory baseline answers live in (created when the first one is written)."""
    return cache_root() / "baselines"


def _solver_version() -> str:
    try:
        return version("scipy")
    except PackageNotFoundError:
        return "unknown"


def inputs_key(name: str, series: SiteSeries, limits: Limits, voltage_v: float) -> str:
    """SHA-256 of everything the baseline reads, floats by their exact bits (``float.hex``)."""
    digest = hashlib.sha256()

    def add(*parts: object) -> None:
        for part in parts:
            digest.update(part.hex().encode() if isinstance(part, float) else repr(part).encode())
            digest.update(b"\x00")

    add(name, PROGRAMME_VERSION, _solver_version(), len(series.starts))
    add(limits.min_amps, limits.max_amps, limits.granularity, float(voltage_v))
    add(float(series.export_price))
    if series.starts:
        add(series.starts[0].isoformat(), series.starts[-1].isoformat())
    for values in (series.pv_kwh, series.house_kwh, series.import_price):
        digest.update(b"|".join(float(v).hex().encode() for v in values))
        digest.update(b"\x01")
    digest.update(bytes(bool(m) for m in series.missing))
    for session in series.sessions:
        add(session.start.isoformat(), session.end.isoformat(), float(session.energy_kwh))
    return digest.hexdigest()


def _read(path: Path, count: int) -> Profile | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        ev = [0.0] * count
        for index, value in data["nonzero"]:
            ev[int(index)] = float(value)
        commands = int(data["commands"])
    except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
        if not isinstance(err, FileNotFoundError):
            _LOGGER.debug("baseline cache: %s unusable (%s), solving again", path, err)
        return None
    return tuple(ev), commands


def _write(path: Path, profile: Profile) -> None:
    ev, commands = profile
    text = json.dumps(
        {"commands": commands, "nonzero": [[i, v] for i, v in enumerate(ev) if v != 0.0]},
        separators=(",", ":"),
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        _prune(path.parent)
    except OSError as err:
        _LOGGER.debug("baseline cache: cannot write %s (%s)", path, err)


def _prune(directory: Path) -> None:
    files = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in files[MAX_FILES:]:
        stale.unlink(missing_ok=True)


_LAST_KEY: list[tuple[str, SiteSeries, Limits, float, str]] = []
"""The last key worked out, with its inputs: `evopt simulate` asks for the same one twice
(:func:`solve_ahead` before the replay, :func:`cached_baseline` in the report), and hashing a
year's floats is a twentieth of a second the report waits for. The series is held and
compared by identity (it is frozen; a series with the same values is hashed again)."""


def _path(
    name: str, series: SiteSeries, limits: Limits, voltage_v: float, directory: Path | None
) -> Path:
    key = next(
        (
            found
            for known, same, lim, volts, found in _LAST_KEY
            if same is series and (known, lim, volts) == (name, limits, voltage_v)
        ),
        None,
    )
    if key is None:
        key = inputs_key(name, series, limits, voltage_v)
        _LAST_KEY[:] = [(name, series, limits, voltage_v, key)]
    return (directory or cache_dir()) / f"{name}-{key}.json"


def cached_baseline(
    name: str,
    run: Callable[[SiteSeries, Limits, float], Profile],
    series: SiteSeries,
    limits: Limits,
    voltage_v: float,
    *,
    directory: Path | None = None,
    ahead: Ahead | None = None,
) -> Profile:
    """``run(series, limits, voltage_v)``, from the cache when these inputs were seen before,
    else from ``ahead`` when it was started for them (:func:`solve_ahead`)."""
    path = _path(name, series, limits, voltage_v, directory)
    if ahead is not None and ahead.path == path:
        solved = ahead.result()
        if solved is not None:
            return solved
    found = _read(path, len(series.starts))
    if found is not None:
        return found
    profile = run(series, limits, voltage_v)
    _write(path, profile)
    return profile


class Ahead:
    """One baseline being solved in a forked child while the caller does other work.

    :meth:`result` waits for the child's answer (None when the child failed: the caller then
    solves in-process); :meth:`close` ends a child whose answer is no longer wanted, so an
    aborted simulation neither waits for it nor leaves it behind. Use as a context manager.
    """

    def __init__(self, path: Path, child: Child) -> None:
        self.path = path
        self._child = child
        self._answer: Profile | None = None
        self._done = False

    def result(self) -> Profile | None:
        """The child's profile (waiting for it), or None when it failed."""
        if not self._done:
            self._done = True
            got = self._child.receive()
            if got is not None:
                self._answer = (tuple(got[0]), int(got[1]))
            self._child.close()
        return self._answer

    def close(self) -> None:
        """End the child (if still running) with any solve processes it started, and release
        the pipe: the child leads a process group of its own (:func:`fork_child`)."""
        self._done = True
        self._child.close()

    def __enter__(self) -> Ahead:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def solve_ahead(
    name: str,
    run: Callable[[SiteSeries, Limits, float], Profile],
    series: SiteSeries,
    limits: Limits,
    voltage_v: float,
    *,
    directory: Path | None = None,
) -> Ahead | None:
    """Start solving ``run(series, limits, voltage_v)`` in a forked process, unless its answer
    is already cached (None: :func:`cached_baseline` reads it in a moment) or this platform
    cannot fork (None: solved in-process when the report asks)."""
    path = _path(name, series, limits, voltage_v, directory)
    if path.is_file():
        return None

    def solve(send: Callable[[Profile], None]) -> None:
        answer = run(series, limits, voltage_v)
        _write(path, answer)  # kept even when the parent is gone before it reads it
        send(answer)

    child = fork_child(solve, name=f"evopt-{name}-baseline", own_group=True)
    return None if child is None else Ahead(path, child)
