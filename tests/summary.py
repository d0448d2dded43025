"""Figures that long-running tests (the fault soak, the crash tests) print at the end of the run.

A test calls :func:`report`; ``tests/conftest.py`` prints everything reported in pytest's
terminal summary, so the figures show in `make test` output without ``-s``.
"""

from __future__ import annotations

from collections.abc import Iterable

LINES: list[str] = []


def report(lines: Iterable[str]) -> None:
    LINES.extend(lines)
