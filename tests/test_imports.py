"""Every module imports on its own: no import cycle hides behind the order tests happen to use.

A submodule that its package's ``__init__`` imports at its top level is not imported first by a
test of its own: importing it first imports the package first, which imports it on the way,
exactly as importing the package first does (the package's test). That test checks the
submodules were indeed loaded by it, so a misread ``__init__`` fails rather than goes
untested. 42 of 211 modules, the heaviest ones (the fake cloud, the service, the models):
about a fifth of this file's CPU.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import optimizer

ALL_MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(optimizer.__path__, prefix="optimizer.")
    if not info.name.endswith("__main__")  # these run the program when imported
)


def _imported_by_init(package: str, modules: set[str]) -> set[str]:
    """The package's submodules its ``__init__`` imports unconditionally at its top level
    (``from . import x``, ``from .x import y``, ``import package.x``)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None or not spec.origin.endswith("__init__.py"):
        return set()
    named: set[str] = set()
    for statement in ast.parse(Path(spec.origin).read_text()).body:
        if isinstance(statement, ast.ImportFrom) and statement.level == 1:
            base = package + (f".{statement.module}" if statement.module else "")
            named |= {base} | {f"{base}.{alias.name}" for alias in statement.names}
        elif isinstance(statement, ast.ImportFrom) and statement.level == 0:
            base = statement.module or ""
            named |= {base} | {f"{base}.{alias.name}" for alias in statement.names}
        elif isinstance(statement, ast.Import):
            named |= {alias.name for alias in statement.names}
    return {name for name in named if name in modules and name.rpartition(".")[0] == package}


_KNOWN = set(ALL_MODULES)
ON_THE_WAY = {package: _imported_by_init(package, _KNOWN) for package in ALL_MODULES}
MODULES = sorted(_KNOWN - set().union(*ON_THE_WAY.values()))


def _ours(name: str) -> bool:
    return name == "optimizer" or name.startswith("optimizer.")


@pytest.fixture
def fresh_modules() -> Iterator[None]:
    """No optimizer module loaded during the test, and afterwards exactly the ones loaded
    before: a module first imported here must not stay behind, or later tests in this process
    would mix its copies of classes (an error class `except` no longer catches) with the
    originals. The CLI imports each command's module only when it runs, so most are first
    imported here."""
    saved = {name: module for name, module in sys.modules.items() if _ours(name)}
    for name in saved:
        del sys.modules[name]
    try:
        yield
    finally:
        for name in [name for name in sys.modules if _ours(name)]:
            del sys.modules[name]
        sys.modules.update(saved)


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.usefixtures("fresh_modules")
def test_module_imports_first(name: str) -> None:
    importlib.import_module(name)
    missed = sorted(sub for sub in ON_THE_WAY[name] if sub not in sys.modules)
    assert not missed, f"{name} was read as importing {missed}, but did not: test them first"
