"""The solar forecast: the plane recovered from a synthetic pvlib history, the index and its band,
the house profile, and no peeking (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from optimizer.forecast.solar import (
    STEP_S,
    ForecastError,
    ForecastReuse,
    Orientation,
    PowerHistory,
    Site,
    forecast_at,
    learn_index,
    learn_orientation,
    sky,
)
from tests.profiles import examples
from tests.solar_history import GREENSBORO, synthetic_history

TRUTH = synthetic_history()
GREENSBORO_ZONE = ZoneInfo(GREENSBORO.timezone)
END_S = float(TRUTH.history.start_s[-1] + STEP_S)


def test_learns_the_plane_and_size_of_a_synthetic_array() -> None:
    fit = learn_orientation(TRUTH.history, GREENSBORO, now_s=END_S)
    assert fit.source == "learned"
    assert fit.tilt_deg == pytest.approx(25, abs=2)
    assert fit.azimuth_deg == pytest.approx(200, abs=3)
    assert fit.peak_w == pytest.approx(6000, rel=0.03)
    assert fit.clear_days >= 3


def test_a_hazier_sky_than_the_model_still_gives_the_plane_roughly() -> None:
    """The model's turbidity is fixed; a site's real haze differs, and the fit stays close."""
    hazy = synthetic_history(turbidity=4.0, tilt=35, azimuth=160, peak_w=4000, seed=3)
    fit = learn_orientation(hazy.history, GREENSBORO, now_s=END_S)
    assert fit.tilt_deg == pytest.approx(35, abs=6)
    assert fit.azimuth_deg == pytest.approx(160, abs=6)
    assert fit.peak_w == pytest.approx(4000, rel=0.08)


def test_a_configured_plane_is_kept_and_only_the_size_is_fitted() -> None:
    fit = learn_orientation(TRUTH.history, GREENSBORO, now_s=END_S, tilt=25, azimuth=200)
    assert (fit.tilt_deg, fit.azimuth_deg) == (25, 200)
    assert fit.peak_w == pytest.approx(6000, rel=0.02)


def test_without_clear_days_the_error_says_which_keys_to_set() -> None:
    cloudy = synthetic_history(clear_share=0.0, days=20)
    noisy = PowerHistory(
        cloudy.history.start_s,
        cloudy.history.pv_w * np.random.default_rng(0).uniform(0, 1, len(cloudy.history)),
        cloudy.history.house_w,
    )
    with pytest.raises(ForecastError, match=r"forecast\.tilt, forecast\.azimuth"):
        learn_orientation(noisy, GREENSBORO, now_s=float(noisy.start_s[-1] + STEP_S))


def test_history_must_be_increasing_quarter_hours() -> None:
    with pytest.raises(ValueError, match="quarter hours"):
        PowerHistory(np.array([0, 600]), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="one value per bucket"):
        PowerHistory(np.array([0, 900]), np.zeros(1), np.zeros(2))


ORIENTATION = Orientation(tilt_deg=25, azimuth_deg=200, peak_w=6000)


def test_band_is_ordered_and_covers_most_realised_days() -> None:
    """Forecasts made at each local midnight of the last 25 days, against the day's real PV."""
    history = TRUTH.history
    covered = 0
    days = 25
    for back in range(days, 0, -1):
        midnight = (
            datetime(2025, 5, 31, tzinfo=UTC).astimezone(GREENSBORO_ZONE) - timedelta(days=back - 1)
        ).replace(hour=0, minute=0)
        now_s = midnight.timestamp()
        fc = forecast_at(history, now_s, site=GREENSBORO, orientation=ORIENTATION, horizon_h=24)
        assert np.all(fc.pv_p10_w <= fc.pv_p50_w + 1e-9)
        assert np.all(fc.pv_p50_w <= fc.pv_p90_w + 1e-9)
        assert np.all(fc.pv_p10_w >= 0)
        first = int(np.searchsorted(history.start_s, fc.start_s[0]))
        real = np.nansum(history.pv_w[first : first + len(fc.start_s)]) * STEP_S / 3.6e6
        if fc.energy_kwh(fc.pv_p10_w) <= real <= fc.energy_kwh(fc.pv_p90_w):
            covered += 1
    assert covered >= 0.7 * days


def test_the_last_hours_persist_then_fade_into_the_climate() -> None:
    """At noon of a clear day the first step follows the morning's index (~1), the same hour
    a day later the band's median."""
    clear_days = np.flatnonzero(TRUTH.day_index == 1.0)
    day = int(clear_days[clear_days > 35][0])
    noon = datetime(2025, 3, 31, 12, tzinfo=GREENSBORO_ZONE) + timedelta(days=day)  # day 0
    fc = forecast_at(TRUTH.history, noon, site=GREENSBORO, orientation=ORIENTATION)
    index = learn_index(TRUTH.history, GREENSBORO, ORIENTATION, now_s=noon.timestamp())
    assert index.recent == pytest.approx(1.0, abs=0.05)
    ratio_now = fc.pv_p50_w[0] / fc.clear_sky_w[0]
    ratio_tomorrow = fc.pv_p50_w[96] / fc.clear_sky_w[96]
    assert ratio_now == pytest.approx(index.recent, abs=0.02)
    assert ratio_tomorrow == pytest.approx(index.bands[1][1], abs=0.02)


def test_a_glitch_reading_does_not_move_the_index() -> None:
    now_s = END_S
    before = learn_index(TRUTH.history, GREENSBORO, ORIENTATION, now_s=now_s)
    pv = TRUTH.history.pv_w.copy()
    pv[-200] = 1e7  # a wrong unit: ten megawatts from a 6 kW roof
    glitched = PowerHistory(TRUTH.history.start_s, pv, TRUTH.history.house_w)
    after = learn_index(glitched, GREENSBORO, ORIENTATION, now_s=now_s)
    assert np.allclose(before.bands, after.bands, atol=0.02)


def test_house_profile_knows_the_weekday_evening() -> None:
    monday = datetime(2025, 6, 2, tzinfo=GREENSBORO_ZONE)
    fc = forecast_at(TRUTH.history, monday, site=GREENSBORO, orientation=ORIENTATION)
    by_hour = fc.house_w.reshape(-1, 4).mean(axis=1)
    assert by_hour[18] == pytest.approx(1250, abs=80)  # Monday 18:00: the evening peak
    assert by_hour[3] == pytest.approx(350, abs=50)
    assert np.all(fc.surplus_p50_w == fc.pv_p50_w - fc.house_w)


@settings(max_examples=examples(6), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cut=st.integers(min_value=96 * 32, max_value=96 * 59),
    offset_s=st.integers(min_value=0, max_value=STEP_S - 1),
    scale=st.floats(min_value=0.0, max_value=3.0),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_changing_the_future_changes_nothing(
    cut: int, offset_s: int, scale: float, seed: int
) -> None:
    """Everything from the bucket in progress at ``now`` on is rewritten: the forecast is the
    same to the bit (the orientation learned inside it too)."""
    history = TRUTH.history
    now_s = float(history.start_s[cut] + offset_s)
    rng = np.random.default_rng(seed)
    pv, house = history.pv_w.copy(), history.house_w.copy()
    pv[cut:] = rng.uniform(0, 8000, len(pv) - cut) * scale
    house[cut:] = np.where(rng.random(len(pv) - cut) < 0.1, np.nan, house[cut:] * scale)
    changed = PowerHistory(history.start_s, pv, house)
    a = forecast_at(history, now_s, site=GREENSBORO, horizon_h=24)
    b = forecast_at(changed, now_s, site=GREENSBORO, horizon_h=24)
    assert a.orientation == b.orientation
    assert a.index == b.index
    for name in ("pv_p10_w", "pv_p50_w", "pv_p90_w", "house_w"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True)


@settings(max_examples=examples(6), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cut=st.integers(min_value=96 * 32, max_value=96 * 59),
    ticks=st.lists(st.integers(min_value=0, max_value=2 * STEP_S), min_size=2, max_size=4),
    index_days=st.sampled_from([30.0, 7.5, 29.99]),
    recent_h=st.sampled_from([2.0, 1.1]),
)
# Inside one bucket the last hours' window (1.1 h) lets go of a bucket at 360 s while no bucket
# ends: at 13:00 that moves the recent index, and only the key's windows tell the ticks apart.
@example(cut=3892, ticks=[100, 500], index_days=30.0, recent_h=1.1)
def test_a_reused_forecast_is_the_one_made_afresh(
    cut: int, ticks: list[int], index_days: float, recent_h: float
) -> None:
    """The live planner's ticks within a bucket reuse its parts: every figure of every tick is
    the fresh forecast's to the last bit, across bucket edges and odd window lengths."""
    history = TRUTH.history
    reuse = ForecastReuse()
    options = {"site": GREENSBORO, "orientation": ORIENTATION, "horizon_h": 12}
    for offset in sorted(ticks):
        now_s = float(history.start_s[cut] + offset)
        kept = forecast_at(
            history, now_s, index_days=index_days, recent_h=recent_h, reuse=reuse, **options
        )
        fresh = forecast_at(history, now_s, index_days=index_days, recent_h=recent_h, **options)
        assert kept.index == fresh.index
        for name in ("start_s", "clear_sky_w", "pv_p10_w", "pv_p50_w", "pv_p90_w", "house_w"):
            assert np.array_equal(getattr(kept, name), getattr(fresh, name), equal_nan=True)
    inside = [t // STEP_S for t in ticks if t % STEP_S]  # not on a bucket's first second
    if index_days == 30.0 and recent_h == 2.0 and len(set(inside)) < len(inside):
        assert reuse.reused > 0  # two ticks inside one bucket: the second reused the first


def test_on_the_sample_the_band_holds_most_days_of_measured_weather() -> None:
    """The bundled sample (measured TMY weather, a model the forecast does not share):
    day-ahead forecasts made at local midnight for 90 days; the realised day's PV falls in
    the p10-p90 band on most (the whole year: 77 %, docs/forecast.md)."""
    import json  # noqa: PLC0415

    from optimizer.enlighten.models import parse_lifetime_energy  # noqa: PLC0415
    from optimizer.simulate.sample import TIMEZONE, sample_paths  # noqa: PLC0415

    energy, _ = sample_paths()
    history = PowerHistory.from_lifetime(
        parse_lifetime_energy(json.loads(energy.read_text()), timezone=TIMEZONE)
    )
    site = Site(latitude=36.07, longitude=-79.79, timezone=TIMEZONE)
    zone = ZoneInfo(TIMEZONE)
    first = datetime(2025, 4, 1, tzinfo=zone)
    orientation = learn_orientation(history, site, now_s=first.timestamp())
    covered = days = 0
    for n in range(90):
        now = (first + timedelta(days=n)).timestamp()
        fc = forecast_at(history, now, site=site, orientation=orientation, horizon_h=24)
        start = int(np.searchsorted(history.start_s, fc.start_s[0]))
        real = history.pv_w[start : start + len(fc.start_s)]
        if np.isnan(real).any():
            continue  # the sample's null day
        kwh = float(real.sum()) * STEP_S / 3.6e6
        days += 1
        covered += fc.energy_kwh(fc.pv_p10_w) <= kwh <= fc.energy_kwh(fc.pv_p90_w)
    assert days >= 85
    assert covered >= 0.65 * days


def test_the_sky_of_any_instants_is_each_instant_s_own() -> None:
    """`sky` gathers from per-day tables at once: unsorted instants, days apart, the same
    day twice and none at all give each instant's own values."""
    start = TRUTH.history.start_s
    picked = np.array([start[500], start[3], start[-1], start[3], start[96 * 20 + 7]])
    together = sky(GREENSBORO, picked)
    for i, at in enumerate(picked):
        alone = sky(GREENSBORO, np.array([at]))
        for name in ("zenith", "azimuth", "dni", "ghi", "dhi", "dni_extra"):
            assert getattr(together, name)[i] == getattr(alone, name)[0], name
    empty = sky(GREENSBORO, np.array([], dtype=np.int64))
    assert empty.ghi.shape == (0,)
