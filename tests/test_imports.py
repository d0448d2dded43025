"""Every module imports on its own: no import cycle hides behind the order tests happen to use."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import pytest

import optimizer

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(optimizer.__path__, prefix="optimizer.")
    if not info.name.endswith("__main__")  # these run the program when imported
)


@pytest.mark.parametrize("name", MODULES)
def test_module_imports_first(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for loaded in [m for m in sys.modules if m == "optimizer" or m.startswith("optimizer.")]:
        monkeypatch.delitem(sys.modules, loaded)
    importlib.import_module(name)
