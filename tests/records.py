"""Fingerprints of results recorded beside the tests, so a test that compares a fast path with
a slow reference runs the reference only where the record does not hold."""

from __future__ import annotations

import dataclasses
import hashlib
import struct
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any


def _encode(value: Any, out: list[bytes]) -> None:
    """``value`` as bytes that tell apart all :func:`exact` does: floats by their bits, each
    value's type, dicts in their order, dataclasses field by field."""
    kind = type(value)
    out.append(kind.__qualname__.encode() + b":")
    if kind is float:
        out.append(struct.pack("<d", value))
    elif kind in (int, bool, str, type(None)):
        out.append(repr(value).encode())
    elif kind is datetime:
        out.append(value.isoformat().encode())
    elif kind in (tuple, list):
        out.append(b"%d[" % len(value))
        for item in value:
            _encode(item, out)
        out.append(b"]")
    elif kind is dict:
        out.append(b"%d{" % len(value))
        for key, item in value.items():
            _encode(key, out)
            _encode(item, out)
        out.append(b"}")
    elif dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            out.append(field.name.encode() + b"=")
            _encode(getattr(value, field.name), out)
    else:  # a kind this does not know: no digest can vouch for it
        raise TypeError(f"cannot fingerprint a {kind.__qualname__}")


def fingerprint(result: object) -> str:
    """SHA-256 over every bucket's draw, level and battery flows, bit for bit, and the counts
    (of a replay; of any tuples, floats and ints alike)."""
    out: list[bytes] = []
    _encode(result, out)
    return hashlib.sha256(b"".join(out)).hexdigest()


def same_as_reference(
    found: Any,
    record: Path,
    reference: Callable[[], Any],
    rerecord: str,
    *,
    compare: Callable[[Any, Any], None] | None = None,
    stale_fails: bool = False,
) -> None:
    """``found`` is what ``reference()`` gives, as ``record`` holds its fingerprint: the
    reference runs only where the record differs, and then decides: ``found`` unlike it fails
    (``==``, or ``compare``, which asserts); alike, the record is out of date here (a changed
    engine, a solver's last bits on another machine), which is a warning to re-record it with
    ``rerecord``, as the comparison was made all the same (no record: the same, e.g. for a
    `make soak` length), or with ``stale_fails`` a failure (a record only a deliberate change
    may move)."""
    recorded = record.read_text(encoding="utf-8").strip() if record.exists() else None
    if fingerprint(found) == recorded:
        return
    replayed = reference()
    if compare is None:
        assert found == replayed
    else:
        compare(found, replayed)
    state = "out of date" if recorded else "missing"
    message = f"{record.name} is {state}: record it with {rerecord}"
    assert not stale_fails, f"the result is the reference's, but {message}"
    warnings.warn(message, stacklevel=2)


def write_record(path: Path, found: Any) -> None:
    """Record ``found``'s fingerprint at ``path`` (a test's ``python -m`` re-recording)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(fingerprint(found) + "\n", encoding="utf-8")
    print(f"wrote {path}")
