"""Names a package gives from its submodules, each imported on first use (PEP 562).

Why: a package whose ``__init__`` imports its heavy half (the cloud's client, the service's
loop) makes every light import of it pay for that half: `evopt simulate` reading two file
hashes from ``optimizer.service`` loaded aiohttp. The package keeps its names (typed under
``TYPE_CHECKING``) and asks for them here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["names_from"]


def names_from(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each name in ``homes`` from the submodule
    ``homes[name]``, imported when the name is first asked for."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{home}"), name)

    return __getattr__
