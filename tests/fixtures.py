"""Recorded Enlighten payloads, and variants derived from them without copying whole files.

Each base file in ``tests/fixtures/`` is shaped exactly like the API reference's examples. A test
that needs "the same reply, but with X" derives it with :func:`patched_fixture`, so that a fix to
a base file reaches every variant and the difference a test cares about stays visible in the test.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

FIXTURE_DIR: Final = Path(__file__).parent / "fixtures"


class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


DELETE: Final = _Delete()
"""Use as a value in a merge patch to remove that key."""

Patch = Mapping[str, Any] | Callable[[Any], object]
"""A dict deep-merged into the payload, or a callable that mutates the payload in place."""


def fixture_names() -> list[str]:
    return sorted(path.stem for path in FIXTURE_DIR.glob("*.json"))


@functools.cache
def _fixture_text(name: str) -> str:
    return (FIXTURE_DIR / f"{name.removesuffix('.json')}.json").read_text(encoding="utf-8")


def load_fixture(name: str) -> Any:
    """A freshly decoded copy on every call, so one test's mutations never leak into another.

    A variant file holds only what differs from its base: ``{"$base": "status_2026",
    "$set": {"data.chargers.0.session_d.e_c": 150.0}, "$merge": {...}}``. ``$set`` maps dotted
    paths to values (``{"$delete": true}`` removes the key), ``$merge`` is deep-merged at the
    root. So every reply variant is a file of its own while a fix to the base reaches them all.
    """
    payload = json.loads(_fixture_text(name))
    if isinstance(payload, dict) and "$base" in payload:
        derived = load_fixture(payload["$base"])
        if "$merge" in payload:
            derived = deep_merge(derived, payload["$merge"])
        for path, value in payload.get("$set", {}).items():
            if value == {"$delete": True}:
                drop(path)(derived)
            else:
                set_at(path, value)(derived)
        return derived
    return payload


def patched_fixture(name: str, *patches: Patch) -> Any:
    """The base fixture with each patch applied in order."""
    payload = load_fixture(name)
    for patch in patches:
        if isinstance(patch, Mapping):
            payload = deep_merge(payload, patch)
        else:
            patch(payload)
    return payload


def deep_merge(base: Any, patch: Mapping[str, Any]) -> dict[str, Any]:
    """Objects merge key by key; anything else (lists included) is replaced wholesale."""
    merged = dict(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is DELETE:
            merged.pop(key, None)
        elif isinstance(value, Mapping):
            merged[key] = deep_merge(merged.get(key), value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _split(path: str) -> list[str | int]:
    return [int(part) if part.lstrip("-").isdigit() else part for part in path.split(".")]


def _parent(payload: Any, path: str) -> tuple[Any, str | int]:
    *parents, last = _split(path)
    node = payload
    for part in parents:
        node = node[part]
    return node, last


def at(path: str, patch: Mapping[str, Any]) -> Callable[[Any], None]:
    """Merge ``patch`` into the object at a dotted path; numeric parts index lists.

    ``at("data.chargers.0", {"sn": DELETE})`` removes the first charger's serial number.
    """

    def apply(payload: Any) -> None:
        parent, last = _parent(payload, path)
        parent[last] = deep_merge(parent[last], patch)

    return apply


def set_at(path: str, value: Any) -> Callable[[Any], None]:
    """Set the value at a dotted path (the key is created if missing)."""

    def apply(payload: Any) -> None:
        parent, last = _parent(payload, path)
        parent[last] = value

    return apply


def drop(path: str) -> Callable[[Any], None]:
    """Remove the key (or list item) at a dotted path."""

    def apply(payload: Any) -> None:
        parent, last = _parent(payload, path)
        del parent[last]

    return apply
