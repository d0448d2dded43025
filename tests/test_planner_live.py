"""The live outlook's history: the service's own lifetime-energy reply first, the stored one
(`evopt history fetch`) without it; the plane learned once a day, the buckets each reply."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from optimizer.config import load_config
from optimizer.decisions import DecisionStore
from optimizer.enlighten.models import LifetimeEnergy, parse_lifetime_energy
from optimizer.forecast.solar import Site
from optimizer.planner import live as live_module
from optimizer.planner.live import LiveOutlooks
from tests.solar_history import synthetic_history

MELBOURNE = ZoneInfo("Australia/Melbourne")
SITE = Site(latitude=-37.81, longitude=144.96, timezone="Australia/Melbourne")
NOW = datetime(2025, 1, 15, 10, 0, tzinfo=MELBOURNE)
SITE_ID = 42


def _payload(days: int, *, scale: float = 1.0) -> dict[str, Any]:
    first_day = NOW.date() - timedelta(days=days)
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=MELBOURNE)
    truth = synthetic_history(site=SITE, start=start, days=days, azimuth=0.0, clear_share=0.5)
    history = truth.history
    return {
        "start_date": first_day.isoformat(),
        "production": [round(scale * float(w) / 4) for w in np.nan_to_num(history.pv_w)],
        "consumption": [round(float(w) / 4) for w in np.nan_to_num(history.house_w)],
        "evse": [0] * len(history),
    }


def _energy(payload: dict[str, Any]) -> LifetimeEnergy:
    return parse_lifetime_energy(payload, timezone=SITE.timezone)


@pytest.fixture
def config(tmp_path: Path) -> Any:
    path = tmp_path / "config.yaml"
    path.write_text(
        "site:\n  latitude: -37.81\n  longitude: 144.96\n  timezone: Australia/Melbourne\n"
        f"service:\n  database: {tmp_path / 'decisions.db'}\n",
        encoding="utf-8",
    )
    return load_config(path)


def test_nothing_read_and_nothing_stored_is_no_outlook(config: Any) -> None:
    with DecisionStore(config.database_path) as store:
        assert LiveOutlooks().outlook(store, SITE_ID, config, NOW) is None


def test_the_live_reply_gives_an_outlook_without_a_stored_history(config: Any) -> None:
    with DecisionStore(config.database_path) as store:
        made = LiveOutlooks().outlook(store, SITE_ID, config, NOW, live=_energy(_payload(30)))
    assert made is not None
    assert made.source == "forecast"
    assert max(made.p50_w) > 0


def test_the_stored_history_serves_until_the_service_has_read_one(config: Any) -> None:
    with DecisionStore(config.database_path) as store:
        store.save_history_energy(
            SITE_ID, _payload(30), start_date=NOW.date() - timedelta(days=30), fetched_at=NOW
        )
        assert LiveOutlooks().outlook(store, SITE_ID, config, NOW) is not None


def test_a_new_reply_replaces_the_buckets_and_keeps_the_plane_until_the_day_is_over(
    config: Any,
) -> None:
    learned: list[int] = []
    real = live_module.plane

    def counting(*args: Any, **kwargs: Any) -> Any:
        learned.append(1)
        return real(*args, **kwargs)

    outlooks = LiveOutlooks()
    first, brighter = _energy(_payload(30)), _energy(_payload(30, scale=1.5))
    with DecisionStore(config.database_path) as store, patch.object(live_module, "plane", counting):
        a = outlooks.outlook(store, SITE_ID, config, NOW, live=first)
        later = NOW + timedelta(minutes=15)
        kept = outlooks.outlook(store, SITE_ID, config, later, live=first)
        b = outlooks.outlook(store, SITE_ID, config, later, live=brighter)
        assert len(learned) == 1  # the plane once; the new reply only replaced the buckets
        outlooks.outlook(store, SITE_ID, config, NOW + timedelta(days=1, minutes=1), live=brighter)
        assert len(learned) == 2  # a day later, learned again
    assert a is not None
    assert kept is not None
    assert b is not None
    assert b.p50_w != kept.p50_w  # the same moment, the new reply's buckets


def test_an_unusable_reply_keeps_the_history_there_was(config: Any) -> None:
    outlooks = LiveOutlooks()
    good = _energy(_payload(30))
    hourly = good.model_copy(update={"interval": timedelta(hours=1)})
    with DecisionStore(config.database_path) as store:
        a = outlooks.outlook(store, SITE_ID, config, NOW, live=good)
        b = outlooks.outlook(store, SITE_ID, config, NOW + timedelta(minutes=15), live=hourly)
    assert a is not None
    assert b is not None
