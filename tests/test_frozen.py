"""Frozen records built in one step (optimizer/engine/frozen.py) are the constructor's own
objects: equal, hashed alike, defaults filled, bad field names refused; and the pydantic
memory's cheap copy (``_Mutable.copied``) is ``model_copy``'s."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optimizer.engine.decision import (
    ChargerMemory,
    Control,
    Decision,
    Memory,
    PolicyState,
    Proposal,
)
from optimizer.engine.frozen import build, maker
from optimizer.engine.snapshot import Snapshot, Sun, Surplus, TariffNow, with_local
from optimizer.sun import sun_at

NOW = datetime(2026, 6, 1, 10, 15, tzinfo=UTC)


def test_built_records_equal_constructed_ones() -> None:
    cases: list[tuple[type, dict[str, object]]] = [
        (Sun, {"elevation_deg": 12.5, "azimuth_deg": 90.0, "sunrise": NOW, "sunset": None}),
        (TariffNow, {"window": "peak", "price": 0.3}),
        (Surplus, {"pv_minus_house_w": 1200.0, "source": "lifetime_energy", "age_s": 60.0}),
        (
            Proposal,
            {
                "policy": "p",
                "priority": 5,
                "target": "charging",
                "action": "hold",
                "params": {},
                "reason": "why",
            },
        ),
        (
            Decision,
            {
                "policy": "p",
                "charger_sn": "SN",
                "target": "mode",
                "action": "hold",
                "params": {},
                "reason": "why",
                "inputs": {"a": 1},
            },
        ),
        (Snapshot, {"now": NOW, "timezone": "Europe/Berlin", "chargers": ()}),
    ]
    for cls, values in cases:
        made = cls(**values)
        for built in (build(cls, **values), maker(cls)(**values)):
            assert type(built) is cls
            assert built == made
            assert repr(built) == repr(made)
            if cls not in (Proposal, Decision):  # these hold dicts: unhashable either way
                assert hash(built) == hash(made)


def test_defaults_are_filled_and_factories_called_per_record() -> None:
    @dataclass(frozen=True)
    class Record:
        a: int
        b: str = "x"
        c: list[int] = field(default_factory=list)

    new = maker(Record)
    assert maker(Record) is new  # made once per class
    for make in (lambda **v: build(Record, **v), new):
        one, two = make(a=1), make(a=2, c=[3])
        assert (one.a, one.b, one.c) == (1, "x", [])
        assert two.c == [3]
        assert make(a=1).c is not one.c
        with pytest.raises(FrozenInstanceError):
            one.a = 5


def test_bad_names_and_unfit_classes_are_refused() -> None:
    with pytest.raises(TypeError, match="no field 'wattage'"):
        build(Sun, elevation_deg=1.0, azimuth_deg=2.0, sunrise=None, wattage=3)
    with pytest.raises(TypeError, match="needs 'azimuth_deg'"):
        build(Sun, elevation_deg=1.0, sunrise=None, sunset=None)

    @dataclass(frozen=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            raise AssertionError

    with pytest.raises(TypeError, match="not a plain dataclass"):
        build(Checked, a=1)
    with pytest.raises(TypeError, match="not a plain dataclass"):
        maker(Checked)
    with pytest.raises(TypeError, match="unexpected keyword argument 'wattage'"):
        maker(Sun)(elevation_deg=1.0, azimuth_deg=2.0, sunrise=None, sunset=None, wattage=3)
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'azimuth_deg'"):
        maker(Sun)(elevation_deg=1.0, sunrise=None, sunset=None)


def test_a_snapshot_with_its_local_time_given_reads_it() -> None:
    snapshot = build(Snapshot, now=NOW, timezone="Europe/Berlin", chargers=())
    local = NOW.astimezone(snapshot.local.tzinfo)
    assert with_local(snapshot, local).local is local
    assert Snapshot(NOW, "Europe/Berlin", ()).local == local


def test_sun_with_local_time_given_is_the_same_sun() -> None:
    site = {"latitude": 52.5, "longitude": 13.4, "timezone": "Europe/Berlin"}
    for hour in range(0, 24, 5):
        now = NOW + timedelta(hours=hour)
        local = Snapshot(now, site["timezone"], ()).local  # type: ignore[arg-type]
        assert sun_at(now, **site, local=local) == sun_at(now, **site)  # type: ignore[arg-type]


def test_cheap_memory_copy_is_model_copy() -> None:
    known = ChargerMemory(commanded_on=True, level_changes=[NOW])
    changes = {"commanded_amps": 16, "started_at": NOW}
    copied, model = known.copied(changes), known.model_copy(update=changes)
    assert copied == model
    assert copied.model_dump() == model.model_dump()
    assert copied.model_fields_set == model.model_fields_set
    assert known.commanded_amps is None  # the original is left as it was
    memory = Memory(chargers={"SN": known}, policies={"p/SN": PolicyState(above_since=NOW)})
    update = {"chargers": dict(memory.chargers), "policies": {}}
    assert memory.copied(update) == memory.model_copy(update=update)
    assert memory.copied(update).model_dump(mode="json") == memory.model_copy(
        update=update
    ).model_dump(mode="json")


def test_cheap_construct_is_model_construct() -> None:
    values: dict[str, Any] = {
        "policy": "p",
        "since": NOW,
        "seen_at": NOW,
        "window": None,
        "until": None,
    }
    made, model = Control.constructed(**values), Control.model_construct(**values)
    assert made == model
    assert repr(made) == repr(model)
    assert made.model_fields_set == model.model_fields_set
    assert made.model_dump(mode="json") == model.model_dump(mode="json")
    short = Control.constructed(policy="p", since=NOW)  # fields left out: pydantic's own way
    assert short == Control.model_construct(policy="p", since=NOW)
    assert short.seen_at is None
