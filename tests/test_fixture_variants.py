"""Variant fixture files resolve against their base, so a variant can never drift from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import fixtures
from tests.fixtures import fixture_names, load_fixture


@pytest.mark.parametrize("name", fixture_names())
def test_every_fixture_loads(name: str) -> None:
    payload = load_fixture(name)
    assert "$base" not in json.dumps(payload)


def test_variant_sets_and_deletes_against_its_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fixtures, "FIXTURE_DIR", tmp_path)
    (tmp_path / "zz_base.json").write_text(json.dumps({"a": {"b": [1, {"c": 2}], "d": 3}}))
    (tmp_path / "zz_variant.json").write_text(
        json.dumps({"$base": "zz_base", "$set": {"a.b.1.c": 5, "a.d": {"$delete": True}}})
    )
    assert fixtures.load_fixture("zz_variant") == {"a": {"b": [1, {"c": 5}]}}
    assert fixtures.load_fixture("zz_base") == {"a": {"b": [1, {"c": 2}], "d": 3}}
