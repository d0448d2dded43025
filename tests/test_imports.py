"""Every module imports, and no import cycle hides behind the order tests happen to use.

Which module of a cycle is imported first can decide whether the cycle's imports work: a
module reached again while it is still being executed hands out only what it has defined so
far. A module in no cycle cannot fail that way: every module its import reaches is finished
before its own import statement returns, whatever was loaded before. So the import graph is
read from the source (the imports a module executes when it is imported: not those inside
functions, nor under ``if TYPE_CHECKING``), and only the modules in a cycle are imported first
on their own; one test imports every module, in one go, to show each imports at all, and checks
that the graph holds every import it saw executed.

A module that the first import of one of its packages loads on the way (the package's
``__init__`` imports it, directly or through others, at its top level) is not imported first by
a test of its own: importing it first imports that package first, which loads it, exactly as
importing the package first does (the package's test). That test checks the modules were
indeed loaded by it, so a misread ``__init__`` fails rather than goes untested.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

import pytest

import optimizer

ALL_MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(optimizer.__path__, prefix="optimizer.")
    if not info.name.endswith("__main__")  # these run the program when imported
)
_KNOWN = {"optimizer", *ALL_MODULES}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_statements(
    body: Iterable[ast.stmt],
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Each import statement run when the module is imported, and whether it always runs (it is
    a statement of the module's body itself, not inside an ``if``, ``try`` or loop)."""

    def walk(
        nodes: Iterable[ast.AST], always: bool
    ) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for node in nodes:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue  # runs only when called (decorators and defaults are rare; the
                # test that imports every module checks the graph saw each import run)
            if isinstance(node, ast.Import | ast.ImportFrom):
                yield node, always
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                yield from walk(node.orelse, always=False)
            else:
                yield from walk(ast.iter_child_nodes(node), always=False)

    yield from walk(body, always=True)


def _with_packages(name: str) -> set[str]:
    """``name`` and every package above it: importing it imports them first."""
    parts = name.split(".")
    return {".".join(parts[:end]) for end in range(1, len(parts) + 1)}


def _imports(name: str) -> tuple[set[str], set[str]]:
    """The project's modules that importing ``name`` imports itself (its package included),
    and the part of them it always imports."""
    spec = importlib.util.find_spec(name)
    assert spec is not None, name
    assert spec.origin is not None, name
    package = name if spec.submodule_search_locations is not None else name.rpartition(".")[0]
    above = name.rpartition(".")[0]
    every = _with_packages(above) if above else set()
    always = set(every)
    for statement, runs in _import_statements(ast.parse(Path(spec.origin).read_text()).body):
        found: set[str] = set()
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                found |= _with_packages(alias.name)
        else:
            base = statement.module or ""
            if statement.level:
                above = package.rsplit(".", statement.level - 1)[0]
                base = f"{above}.{base}" if base else above
            found |= _with_packages(base) | {f"{base}.{alias.name}" for alias in statement.names}
        every |= found
        if runs:
            always |= found
    return every & _KNOWN - {name, ""}, always & _KNOWN - {name, ""}


_GRAPH: dict[str, set[str]] = {}
_ALWAYS: dict[str, set[str]] = {}
for _name in sorted(_KNOWN):
    _GRAPH[_name], _ALWAYS[_name] = _imports(_name)


def _reached(start: Iterable[str], graph: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    return seen


IN_CYCLES = {name for name in ALL_MODULES if name in _reached(_GRAPH[name], _GRAPH)}


def _loaded_on_the_way(name: str) -> str | None:
    """The package whose first import loads ``name`` when ``name`` is imported first (the
    outermost that always imports it), if that package is tested first itself."""
    parts = name.split(".")
    for end in range(2, len(parts)):
        package = ".".join(parts[:end])
        if name in _reached([package], _ALWAYS):
            return package if package in IN_CYCLES else None
    return None


ON_THE_WAY: dict[str, set[str]] = {name: set() for name in ALL_MODULES}
for _name in sorted(IN_CYCLES):
    _package = _loaded_on_the_way(_name)
    if _package is not None:
        ON_THE_WAY[_package].add(_name)
MODULES = sorted(IN_CYCLES - set().union(*ON_THE_WAY.values()))


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
def test_module_in_a_cycle_imports_first(name: str) -> None:
    importlib.import_module(name)
    missed = sorted(sub for sub in ON_THE_WAY[name] if sub not in sys.modules)
    assert not missed, f"{name} was read as importing {missed}, but did not: test them first"


def _importer(frame: FrameType | None) -> str | None:
    """The project module whose top level is running (an import inside a function it calls
    while it is imported is its import too)."""
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if frame.f_code.co_name == "<module>" and isinstance(name, str) and _ours(name):
            return name
        frame = frame.f_back
    return None


@pytest.mark.usefixtures("fresh_modules")
def test_every_module_imports_and_the_graph_saw_its_imports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: set[tuple[str, str]] = set()
    real_import = builtins.__import__
    real_import_module = importlib.import_module

    def record(importer: str | None, target: str, names: Iterable[str]) -> None:
        if importer is not None:
            for module in _with_packages(target) | {f"{target}.{name}" for name in names}:
                if module in _KNOWN and module != importer:
                    seen.add((importer, module))

    def spy_import(
        name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> ModuleType:
        module = real_import(name, globals, locals, fromlist, level)
        if level:
            package = (globals or {}).get("__package__") or ""
            name = importlib.util.resolve_name("." * level + name, package).rstrip(".")
        record(_importer(sys._getframe(1)), name, fromlist or ())
        return module

    def spy_import_module(name: str, package: str | None = None) -> ModuleType:
        module = real_import_module(name, package)
        record(_importer(sys._getframe(1)), module.__name__, ())
        return module

    spies: list[tuple[Any, str, Callable[..., ModuleType]]] = [
        (builtins, "__import__", spy_import),
        (importlib, "import_module", spy_import_module),
    ]
    for owner, attribute, spy in spies:
        monkeypatch.setattr(owner, attribute, spy)
    for name in ALL_MODULES:
        real_import_module(name)
    unseen = sorted(f"{a} -> {b}" for a, b in seen if b not in _GRAPH[a])
    assert not unseen, (
        f"imports run at import time that the graph read from the source missed: {unseen}"
    )
