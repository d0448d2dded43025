"""Every module imports on its own: no import cycle hides behind the order tests happen to use."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Iterator

import pytest

import optimizer

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(optimizer.__path__, prefix="optimizer.")
    if not info.name.endswith("__main__")  # these run the program when imported
)


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
