"""Every file evopt writes into its state dir is 0600 and every dir it makes there 0700.

The state dir holds login tokens, the decision log (site, chargers, habits) and memories of the
cloud. Instead of a test per file, every command the fake cloud can serve runs into a fresh
state dir under a permissive umask, and then every file found there is checked: a state file
added later is covered without anyone remembering to add it here.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from optimizer.statefile import (
    create_private,
    load_object,
    private_dir,
    save_object,
    write_private_json,
)
from tests.test_secrets import Harness, harness, run_every_command

__all__ = ["harness"]  # the fixture, used by name


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what most shells have: files 0644 unless made private
    try:
        yield
    finally:
        os.umask(old)


def modes(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode)
        for p in sorted(root.rglob("*"))
        if not p.is_symlink()
    }


@pytest.mark.usefixtures("permissive_umask")
def test_every_state_file_from_every_command_is_private(harness: Harness) -> None:
    run_every_command(harness)
    harness.evopt("validate")  # after the status reads: the charger limits are known

    found = modes(harness.state_dir)
    names = set(found)
    # What the commands are known to leave there (more may come; each is checked below).
    assert {
        "session.json",
        "variants.json",
        "decisions.db",
        "last_status.json",
        "levels.json",
        "login_guard.json",
        "charger_limits.json",
    } <= names, names
    assert stat.S_IMODE(harness.state_dir.stat().st_mode) == 0o700
    wrong = {
        name: f"{mode:o}"
        for name, mode in found.items()
        if mode != (0o700 if (harness.state_dir / name).is_dir() else 0o600)
    }
    assert wrong == {}


@pytest.mark.usefixtures("permissive_umask")
def test_a_rewrite_keeps_the_file_private_and_whole(tmp_path: Path) -> None:
    path = tmp_path / "state" / "memory.json"
    save_object(path, {"a": 1})
    path.chmod(0o644)  # made readable by someone else meanwhile
    (path.parent / f".{path.name}.tmp").write_text("stale", encoding="utf-8")
    write_private_json(path, {"a": 2})
    assert load_object(path, lost="nothing") == {"a": 2}
    assert modes(tmp_path) == {"state": 0o700, "state/memory.json": 0o600}


@pytest.mark.usefixtures("permissive_umask")
def test_an_existing_file_is_kept_and_an_existing_dir_left_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    shared.chmod(0o750)
    private_dir(shared)
    db = shared / "decisions.db"
    db.write_bytes(b"data")
    create_private(db)
    assert db.read_bytes() == b"data"
    assert stat.S_IMODE(shared.stat().st_mode) == 0o750
