"""The optional online PV forecast (optimizer/forecast/online.py, `forecast.online`): its reply
read and checked, its index in place of the learned one's p50, kept on disk, asked at most once
per refresh, and never a failed tick or a leaked place when the provider fails."""

from __future__ import annotations

import json
import logging
import math
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as drawn
from hypothesis import strategies as st

from optimizer.config import OnlineForecastConfig
from optimizer.forecast.online import (
    INDEX_MAX,
    OnlineError,
    OnlineForecasts,
    OnlinePV,
    Plane,
    parse_periods,
)
from optimizer.forecast.site import Site
from optimizer.forecast.solar import STEP_S, Orientation, clear_sky_w, forecast_at
from tests.fake_forecast_solar import FIXTURES, FakeForecastSolar
from tests.profiles import examples
from tests.solar_history import GREENSBORO, synthetic_history

SITE = Site(36.1, -79.95, "America/New_York")
ORIENTATION = Orientation(30.4, 176.6, 4748.9, source="learned")
PLANE = Plane.of(ORIENTATION)
TODAY = date(2026, 12, 8)
NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


def fixture_pv(fetched: datetime = NOW) -> OnlinePV:
    reply = json.loads((FIXTURES / "estimate.json").read_text(encoding="utf-8"))
    return parse_periods(
        reply["result"]["watt_hours_period"], fetched_s=fetched.timestamp(), plane=PLANE
    )


def test_the_plane_is_asked_as_forecast_solar_counts_it() -> None:
    assert Plane(30.0, 177.0, 4750.0) == PLANE
    assert PLANE.request() == (30.0, -3.0, 4.75)  # from south, kWp
    assert Plane(20, 90, 1000).request()[1] == -90  # east
    assert Plane(20, 270, 1000).request()[1] == 90  # west
    assert PLANE.serves(Plane(34, 181, 4400))
    assert not PLANE.serves(Plane(36, 177, 4750))  # 6 degrees steeper
    assert not PLANE.serves(Plane(30, 177, 4000))  # 16 % smaller
    assert Plane(30, 358, 1000).serves(Plane(30, 2, 1000))  # across north


def test_each_period_s_energy_is_spread_over_its_steps() -> None:
    pv = fixture_pv()
    reply = json.loads((FIXTURES / "estimate.json").read_text(encoding="utf-8"))
    days = reply["result"]["watt_hours_day"]
    first = int(pv.ends_s[0]) // STEP_S * STEP_S
    steps = first + STEP_S * np.arange(2 * 96 + 8, dtype=np.int64)
    watts = pv.watts(steps)
    assert np.isnan(watts[0])  # the step holding the first point starts before it
    covered = np.isfinite(watts)
    wh = np.nansum(watts) * STEP_S / 3600
    # the steps wholly inside add up to the two days less what falls in the steps holding
    # the first and the last point (the reply says nothing of their other part)
    assert sum(days.values()) - 120 < wh <= sum(days.values())
    first_whole = -(-int(pv.ends_s[0]) // STEP_S) * STEP_S  # sunrise today to sunset tomorrow
    assert covered.sum() == (int(pv.ends_s[-1]) // STEP_S * STEP_S - first_whole) // STEP_S
    assert (watts[covered] >= 0).all()
    night = (steps % 86_400) // 3600 == 5  # 05:00 UTC, a Greensboro night
    assert np.all(watts[night & covered] == 0)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda p: p.pop(next(iter(p))) and {}, "at least two periods"),
        (lambda p: p.update({"2026-12-08T16:00:00+00:00": "lots"}), "is not a number"),
        (lambda p: p.update({"2026-12-08T16:00:00+00:00": -3}), "or negative"),
        (lambda p: p.update({"2026-12-08T16:00:00+00:00": 9000}), "more than a 4750 W plane"),
        (lambda p: p.update({"2026-12-08T25:00:00+00:00": 1}), "not an ISO 8601 time"),
        (lambda p: p.update({"2026-12-08T10:00:00": 1}), "without its UTC offset"),
    ],
)
def test_a_reply_that_cannot_be_is_refused_naming_the_field(change: object, says: str) -> None:
    reply = json.loads((FIXTURES / "estimate.json").read_text(encoding="utf-8"))
    periods = reply["result"]["watt_hours_period"]
    if says == "at least two periods":
        periods = {k: periods[k] for k in list(periods)[:1]}
    else:
        change(periods)  # type: ignore[operator]
    with pytest.raises(OnlineError, match=says) as caught:
        parse_periods(periods, fetched_s=0, plane=PLANE)
    assert "watt_hours_period" in str(caught.value)


def test_the_reply_s_index_becomes_the_p50_and_the_band_keeps_its_spread() -> None:
    pv = fixture_pv()
    first = int(pv.ends_s[0]) // STEP_S * STEP_S - 8 * STEP_S
    steps = first + STEP_S * np.arange(3 * 96, dtype=np.int64)
    clear = clear_sky_w(SITE, ORIENTATION, steps)
    learned = np.tile([0.2, 0.5, 0.9], (len(steps), 1))
    bands = pv.bands(steps, clear, learned)
    watts = pv.watts(steps)
    lit = np.isfinite(watts) & (clear > 0.02 * PLANE.peak_w)
    assert lit.sum() > 40
    index = np.minimum(watts[lit] / clear[lit], INDEX_MAX)
    assert bands[lit, 1] == pytest.approx(np.minimum(index, INDEX_MAX))
    assert bands[lit, 0] == pytest.approx(np.minimum(index * 0.4, INDEX_MAX))
    assert bands[lit, 2] == pytest.approx(np.minimum(index * 1.8, INDEX_MAX))
    assert np.array_equal(bands[~lit], learned[~lit])  # night, and past the reply: learned
    assert (bands >= 0).all()
    assert (bands <= INDEX_MAX).all()


def settings(**given: object) -> OnlineForecastConfig:
    return OnlineForecastConfig.model_validate(given)


def _kept_plane(directory: Path) -> object:
    (path,) = directory.iterdir()
    assert "36.1" not in path.name  # named by a hash of the place: a path logged names no home
    assert "79.95" not in path.name
    return json.loads(path.read_text())["plane"]


async def test_asked_once_per_refresh_kept_on_disk_and_read_after_a_restart(
    tmp_path: Path,
) -> None:
    async with FakeForecastSolar(TODAY) as fake:
        online = OnlineForecasts(settings(base_url=fake.base_url), directory=tmp_path)
        assert online.current(SITE, PLANE, NOW.timestamp()) is None
        assert await online.refresh(SITE, ORIENTATION, NOW)
        assert fake.requests == ["/estimate/36.1/-79.95/30.0/-3.0/4.75?time=utc&damping=0"]
        kept = online.current(SITE, PLANE, NOW.timestamp())
        assert kept is not None
        assert kept.wh.sum() == pytest.approx(19048 + 19026, abs=2)  # two clear days
        # within the hour: no request; the plane learned again a little differently serves
        later = NOW + timedelta(minutes=50)
        nudged = Orientation(31.9, 178.9, 4600.0, source="learned")
        assert not await online.refresh(SITE, nudged, later)
        assert len(fake.requests) == 1
        assert await online.refresh(SITE, nudged, NOW + timedelta(minutes=61))
        assert len(fake.requests) == 2
    assert _kept_plane(tmp_path) == [32.0, 179.0, 4600.0]
    restarted = OnlineForecasts(settings(), directory=tmp_path)
    again = restarted.current(SITE, PLANE, (NOW + timedelta(hours=2)).timestamp())
    assert again is not None
    assert again.fetched_s == (NOW + timedelta(minutes=61)).timestamp()
    assert restarted.current(SITE, PLANE, (NOW + timedelta(hours=8)).timestamp()) is None
    assert restarted.current(SITE, Plane(45, 177, 4750), NOW.timestamp() + 3600) is None


@pytest.mark.parametrize("mode", ["ratelimit", "down", "html", "hang"])
async def test_a_provider_that_fails_keeps_the_last_reply_and_names_no_place(
    tmp_path: Path, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeForecastSolar(TODAY) as fake:
        online = OnlineForecasts(settings(base_url=fake.base_url, timeout="2s"), directory=tmp_path)
        assert await online.refresh(SITE, ORIENTATION, NOW)
        fake.mode = mode
        later = NOW + timedelta(hours=1)
        with caplog.at_level(logging.DEBUG):
            assert not await online.refresh(SITE, ORIENTATION, later)
        assert len(fake.requests) == 2
        kept = online.current(SITE, PLANE, later.timestamp())
        assert kept is not None
        assert kept.fetched_s == NOW.timestamp()  # the last good reply, as it was
        # a failed request waits its hour too (the public tier counts every one)
        assert not await online.refresh(SITE, ORIENTATION, later + timedelta(minutes=30))
        assert len(fake.requests) == 2
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("optimizer"))
    assert "no online solar forecast this time" in text
    assert "36.1" not in text
    assert "79.95" not in text
    assert "127.0.0.1" not in text


async def test_an_unwritable_directory_keeps_the_reply_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    async with FakeForecastSolar(TODAY) as fake:
        online = OnlineForecasts(settings(base_url=fake.base_url), directory=blocked / "x")
        assert await online.refresh(SITE, ORIENTATION, NOW)
        assert online.current(SITE, PLANE, NOW.timestamp()) is not None
        assert "kept in memory only" in caplog.text
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert await online.refresh(SITE, ORIENTATION, NOW + timedelta(hours=1))
        assert "kept in memory only" not in caplog.text  # said once, not every hour


def test_a_damaged_file_is_not_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    online = OnlineForecasts(settings(), directory=tmp_path)
    path = online._path(SITE)
    path.write_text('{"version": 1, "provider": "forecast_solar", "fetched_at": "x"')
    assert online.current(SITE, PLANE, NOW.timestamp()) is None
    assert "is not read" in caplog.text
    caplog.clear()
    assert online.current(SITE, PLANE, NOW.timestamp() + 30) is None  # the next tick
    assert "is not read" not in caplog.text  # once per process, not at every tick
    record = {
        "version": 1,
        "provider": "forecast_solar",
        "fetched_at": NOW.isoformat(),
        "plane": PLANE.to_json(),
        "watt_hours_period": {"2026-12-08T12:00:00+00:00": 0, "2026-12-08T13:00:00+00:00": 1e6},
    }
    path.write_text(json.dumps(record))
    assert (
        OnlineForecasts(settings(), directory=tmp_path).current(SITE, PLANE, NOW.timestamp())
        is None
    )  # a value no plane gives: refused on reading too


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"refresh": "5m"}, "at least 15m"),
        ({"refresh": "2h", "max_age": "1h"}, "between forecast.online.refresh and 48h"),
        ({"max_age": "3d"}, "between forecast.online.refresh and 48h"),
        ({"provider": "solcast"}, "forecast_solar"),
        ({"base_url": "ftp://x"}, "pattern"),
        ({"api_key": "x"}, "Extra inputs"),
    ],
)
def test_bad_settings_say_what_would_do(given: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        settings(**given)


def test_the_cache_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EVOPT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CACHE_DIRECTORY", str(tmp_path / "systemd"))
    assert OnlineForecasts(settings()).directory == tmp_path / "forecast"
    monkeypatch.delenv("EVOPT_CACHE_DIR")
    assert OnlineForecasts(settings()).directory == tmp_path / "systemd" / "forecast"
    monkeypatch.delenv("CACHE_DIRECTORY")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert OnlineForecasts(settings()).directory == tmp_path / "xdg" / "evopt" / "forecast"
    assert os.environ.get("EVOPT_CACHE_DIR") is None


def test_a_forecast_made_with_a_reply_expects_what_the_reply_does() -> None:
    """At night (no recent index to blend in) the p50 PV is the reply's wherever the reply
    reaches and the clear sky lights the panels; the rest of the horizon is the learned one."""
    truth = synthetic_history()
    orientation = Orientation(25.0, 200.0, 6000.0, source="learned")
    plane = Plane.of(orientation)
    now = datetime(2025, 5, 30, 8, 0, tzinfo=UTC)  # 04:00 in Greensboro
    ends = now.timestamp() + 3600 * np.arange(0, 31)  # to 14:00 UTC tomorrow
    hours = ends[1:].astype(np.int64) - 1800
    half_sky = 0.5 * clear_sky_w(GREENSBORO, orientation, hours)
    periods = {
        datetime.fromtimestamp(end, UTC).isoformat(): (0.0 if i == 0 else float(half_sky[i - 1]))
        for i, end in enumerate(ends)
    }
    online = parse_periods(periods, fetched_s=now.timestamp(), plane=plane)
    without = forecast_at(truth.history, now, site=GREENSBORO, orientation=orientation)
    made = forecast_at(truth.history, now, site=GREENSBORO, orientation=orientation, online=online)
    assert made.source.startswith("Forecast.Solar, fetched 2025-05-30 08:00")
    assert without.source == "the learned clear-sky index"
    watts = online.watts(made.start_s)
    lit = np.isfinite(watts) & (made.clear_sky_w > 0.02 * plane.peak_w)
    assert lit.sum() > 40
    assert made.pv_p50_w[lit] == pytest.approx(watts[lit])
    assert np.array_equal(made.pv_p50_w[~lit], without.pv_p50_w[~lit])
    assert made.to_json()["source"] == made.source


@st.composite
def replies(draw: st.DrawFn) -> OnlinePV:
    """Any reply the checks let through: periods of 1-90 minutes, each with energy up to what
    the plane could give over it."""
    peak = draw(st.sampled_from([800.0, 4750.0, 12000.0]))
    plane = Plane(30.0, 180.0, peak)
    at = datetime(2026, 12, 8, 11, 7, tzinfo=UTC) + timedelta(seconds=draw(st.integers(0, 900)))
    periods = {at.isoformat(): 0.0}
    for _ in range(draw(st.integers(1, 40))):
        seconds = draw(st.integers(60, 5400))
        at += timedelta(seconds=seconds)
        share = draw(st.floats(0, 1))
        # Wh to the thousandth, rounded down: the most the plane gives stays within it
        periods[at.isoformat()] = math.floor(share * peak * INDEX_MAX * seconds / 3.6) / 1000
    return parse_periods(periods, fetched_s=0.0, plane=plane)


@drawn(max_examples=examples(60))
@given(replies())
def test_no_period_makes_a_step_take_more_than_its_period_gives(online: OnlinePV) -> None:
    """Each step's power is between the least and the most any period it overlaps averages
    (never negative, never above what the plane gives), and the steps tiling the reply's
    whole quarter hours add up to the energy the reply puts there."""
    first = -(-int(online.ends_s[0]) // STEP_S) * STEP_S
    last = int(online.ends_s[-1]) // STEP_S * STEP_S
    steps = np.arange(first - 2 * STEP_S, last + 2 * STEP_S, STEP_S, dtype=np.int64)
    watts = online.watts(steps)
    covered = np.isfinite(watts)
    assert covered.sum() == max(0, (last - first) // STEP_S)
    spans = np.diff(online.ends_s)
    density = online.wh[1:] * 3600 / spans  # each period's mean W
    assert (watts[covered] >= -1e-9).all()
    assert (watts[covered] <= density.max() + 1e-6).all()
    assert watts[covered].max(initial=0) <= online.plane.peak_w * INDEX_MAX + 1e-6
    if covered.any():
        total = np.cumsum(online.wh)
        inside = np.interp(last, online.ends_s, total) - np.interp(first, online.ends_s, total)
        assert watts[covered].sum() * STEP_S / 3600 == pytest.approx(inside, abs=1e-6)
