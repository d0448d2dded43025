"""The level in effect when ``charge_level`` is null, and ``safeLimitState`` (2026 section 1)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from optimizer.engine.decision import ChargerMemory, Decision, EngineSettings
from optimizer.engine.evaluate import Context, clamp
from optimizer.engine.overrides import detect_override
from optimizer.engine.snapshot import Snapshot
from optimizer.enlighten.levels import LEVELS_FILE, LevelMemory, level_in_effect
from optimizer.enlighten.models import ChargeMode, ChargerStatus, parse_status
from optimizer.limits import Limits
from tests.fixtures import load_fixture
from tests.test_engine_sim import make_charger

NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def charger(name: str, **session: object) -> ChargerStatus:
    found = parse_status(load_fixture(name)).chargers[0]
    return found.model_copy(update={"session": found.session.model_copy(update=session)})


@pytest.mark.parametrize(
    ("name", "reported", "remembered", "expected"),
    [
        ("status_2026", None, 16, (16, "remembered", 16)),
        ("status_2026", None, None, (None, None, None)),
        ("status_2026", 24, 16, (24, "status", 24)),  # the charger's own word wins
        ("status_2026_safe_limit_charging", None, 16, (6, "safe_limit", 16)),
        ("status_2026_safe_limit_idle", None, 16, (16, "remembered", 16)),  # means nothing
    ],
)
def test_level_in_effect(
    name: str, reported: int | None, remembered: int | None, expected: tuple[object, ...]
) -> None:
    status = charger(name, charge_level_amps=reported)
    level = level_in_effect(status, remembered=remembered, min_amps=6)
    assert (level.amps, level.source, level.setpoint) == expected


def test_green_mode_has_no_remembered_level() -> None:
    """In GREEN the charger picks its current: a level commanded in MANUAL says nothing."""
    green = charger("status_2026").model_copy(
        update={"mode": ChargeMode.GREEN_CHARGING, "mode_code": 1}
    )
    assert level_in_effect(green, remembered=16, min_amps=6).amps is None


def test_commanded_levels_survive_a_restart(tmp_path: Path) -> None:
    LevelMemory(tmp_path).remember(1234567, "EV1", 16)
    again = LevelMemory(tmp_path)
    assert again.get(1234567, "EV1") == 16
    assert again.for_site(1234567) == {"EV1": 16}
    assert again.get(7654321, "EV1") is None


def test_an_unreadable_levels_file_is_no_memory(tmp_path: Path) -> None:
    (tmp_path / LEVELS_FILE).write_text("{nope", encoding="utf-8")
    assert LevelMemory(tmp_path).for_site(1) == {}
    (tmp_path / LEVELS_FILE).write_text('{"1": {"EV1": true, "EV2": -3, "EV3": 8}}')
    assert LevelMemory(tmp_path).for_site(1) == {"EV3": 8}


def test_a_safe_limit_is_never_taken_for_the_users_level() -> None:
    """The engine commanded 16 A; the charger fell back to 6 A: no override, no new setpoint."""
    view = make_charger(charging=True, amps=6, safe_limited=True)
    known = ChargerMemory(
        commanded_on=True,
        commanded_amps=16,
        commanded_at=NOW - timedelta(hours=1),
        last_seen_plugged_in=True,
    )
    snapshot = Snapshot(now=NOW, timezone="UTC", chargers=(view,))
    after, changes = detect_override(known, view, snapshot, EngineSettings())
    assert changes == []
    assert after.overrides == {}
    assert after.commanded_amps == 16


def test_a_level_change_waits_while_the_charger_is_safe_limited() -> None:
    view = make_charger(charging=True, amps=6, safe_limited=True)
    snapshot = Snapshot(now=NOW, timezone="UTC", chargers=(view,))
    ctx = Context(
        snapshot=snapshot,
        charger=view,
        memory=ChargerMemory(),
        limits=Limits.of(view, None),
        delivered_kwh=0.0,
        tariffs=None,
    )
    wanted = Decision("p", view.sn, "charging", "set_amps", {"amps": 16}, "surplus", {})
    held = clamp(wanted, ctx)
    assert held.action == "hold"
    assert "safe limit" in held.reason
    assert clamp(replace(wanted, action="stop", params={}), ctx).action == "stop"
