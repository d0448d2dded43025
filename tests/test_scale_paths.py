"""Per-tick paths made to scale with the number of sites (issue 13 item 6, docs/scale.md).

The tariff tests fail on the code before the change: the cache emptied itself beyond 8 sites,
so every site recomputed a day of price slots every tick. The fast paths (lifetime-energy
buckets, the log's row encoding and dedupe inputs) must give exactly what the general code gave,
errors included: each is compared with the code it replaced. Log redaction with thousands of
secrets (every site's) must still leave no registered secret in a line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimizer import logsafe
from optimizer.decisions import dedupe
from optimizer.decisions.store import _finite, _json_default, to_json
from optimizer.enlighten.errors import ParseError
from optimizer.enlighten.models.base import _as_float
from optimizer.enlighten.models.energy import _energy_series
from optimizer.observe import view
from optimizer.observe.view import _tariff_now, tariff_now
from optimizer.tariffs import Tariffs

MELBOURNE = "Australia/Melbourne"
SITES = 40  # well past the 8 entries the cache used to hold


def site_tariffs() -> list[Tariffs]:
    """One ``Tariffs`` per site, as each site's config builds its own."""
    return [
        Tariffs.model_validate(
            {
                "import_price": 0.30 + k / 1000,
                "windows": {"off_peak": {"price": 0.18, "times": "23:00-07:00"}},
            }
        )
        for k in range(SITES)
    ]


@pytest.fixture(autouse=True)
def fresh_tariff_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """This module's own cache: other tests' clocks (any date) must not decide what it keeps."""
    monkeypatch.setattr(view, "_TARIFF_CACHE", view._TariffCache(size=4096))


def test_every_site_keeps_its_tariff_answer_for_the_whole_slot() -> None:
    tariffs = site_tariffs()
    first = datetime(2025, 1, 15, 1, 0, 30, tzinfo=UTC)
    answers = [tariff_now(t, first, MELBOURNE) for t in tariffs]
    later = first + timedelta(seconds=30)  # the next tick, same 15-minute slot
    again = [tariff_now(t, later, MELBOURNE) for t in tariffs]
    assert all(a is b for a, b in zip(answers, again, strict=True))
    # The kept answer is the one a fresh computation gives.
    assert again[-1] == _tariff_now(tariffs[-1], later, MELBOURNE)
    assert again[-1].price == pytest.approx(0.30 + (SITES - 1) / 1000)


def test_a_later_slot_drops_the_answers_of_earlier_ones() -> None:
    tariffs = site_tariffs()
    start = datetime(2025, 1, 16, 1, 0, 30, tzinfo=UTC)
    for slot in range(3):
        for t in tariffs:
            tariff_now(t, start + timedelta(minutes=15 * slot), MELBOURNE)
    starts = {key[1] for key in view._TARIFF_CACHE.entries}
    assert starts == {datetime(2025, 1, 16, 1, 30, tzinfo=UTC)}
    assert len(view._TARIFF_CACHE.entries) == SITES


def _reference(flow: str, values: list[Any]) -> tuple[float | None, ...]:
    """The general coercion every bucket went through before the fast path."""
    series = []
    for index, value in enumerate(values):
        number = None if value is None else _as_float(value)
        if value is not None and number is None:
            raise ParseError(f"lifetime energy {flow}[{index}] is not a number")
        series.append(number)
    return tuple(series)


BUCKET = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**1100), max_value=2**1100),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.booleans(),
    st.sampled_from(["12.5", " 7 ", "nan", "inf", "1e999", "", "x"]),
    st.just({"wh": 1}),
)


# Replies of numbers and nulls only take the fastest path; other ones the per-bucket path.
FLOATS = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))
BIG = st.floats(min_value=1e307, max_value=1.7e308)  # finite buckets whose sum overflows


WHOLE = st.one_of(st.none(), st.integers(), st.integers(min_value=2**1000, max_value=2**1100))


@given(
    st.one_of(
        st.lists(BUCKET, max_size=30),
        st.lists(FLOATS),
        st.lists(st.one_of(FLOATS, WHOLE)),
        st.lists(BIG, min_size=2),
    )
)
def test_the_fast_energy_parse_matches_the_general_one(values: list[Any]) -> None:
    try:
        expected: tuple[float | None, ...] | str = _reference("production", values)
    except ParseError as err:
        expected = str(err)
    try:
        got: tuple[float | None, ...] | str = _energy_series("production", values)
    except ParseError as err:
        got = str(err)
    assert type(got) is type(expected)
    if isinstance(expected, str):
        assert got == expected
    else:
        assert isinstance(got, tuple)
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            assert (a is None and b is None) or (type(a) is float and a == b and math.isfinite(a))


# --- the decision log's per-row encoding ------------------------------------------------------


def _finite_reference(value: Any) -> Any:
    """``store._finite`` as it was before the exact-type fast path."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _finite_reference(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_reference(item) for item in value]
    return value


def _material_reference(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """``dedupe.material`` as it was before the exact-type fast path."""

    def one(key: str, value: Any) -> Any:
        if key in dedupe.SENTENCE_KEYS and isinstance(value, str):
            return dedupe.reason_shape(value)
        if isinstance(value, Mapping):
            return _material_reference(value)
        if isinstance(value, list | tuple):
            return [one(key, item) for item in value]
        if isinstance(value, int | float) and not isinstance(value, bool):
            for suffix, band in dedupe.BANDS.items():
                if key.endswith(suffix):
                    return math.floor(value / band) if math.isfinite(value) else None
        return value

    return {
        key: (value is not None) if key.endswith(dedupe.AGE_SUFFIX) else one(key, value)
        for key, value in inputs.items()
        if key not in dedupe.CLOCK_KEYS
    }


KEYS = st.sampled_from(
    ["surplus_w", "session_kwh", "soc_pct", "pv_age_s", "next", "now", "amps", "mode", "x"]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "surplus 1.2 kW until 13:05", "peak"]),
)


def _nested(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The leaves in lists, tuples, dicts and mapping proxies, as rows' inputs nest them."""
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.lists(inner, max_size=4).map(tuple),
            st.dictionaries(KEYS, inner, max_size=4),
            st.dictionaries(KEYS, inner, max_size=4).map(MappingProxyType),
        ),
        max_leaves=20,
    )


VALUES = _nested(SCALARS)


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN and types kept (True is not 1)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@given(VALUES)
def test_the_fast_finite_encoding_matches_the_general_one(value: Any) -> None:
    assert _same(_finite(value), _finite_reference(value))


ROW_VALUES = _nested(
    st.one_of(
        SCALARS,
        st.sampled_from([math.nan, math.inf, -math.inf]),  # what the fast try must refuse
        st.datetimes(timezones=st.just(UTC)),
        st.frozensets(st.floats(allow_nan=True, allow_infinity=True), max_size=3),
    )
)


@given(ROW_VALUES)
def test_the_row_text_is_the_sanitised_encoding(value: Any) -> None:
    """to_json's first try (the encoder refusing NaN, infinities and non-dict mappings) gives
    the text the sanitising walk gives, whatever the value holds."""
    expected = json.dumps(_finite_reference(value), default=_json_default, ensure_ascii=False)
    assert to_json(value) == expected


@given(st.dictionaries(KEYS, VALUES, max_size=6))
def test_the_fast_material_inputs_match_the_general_ones(inputs: dict[str, Any]) -> None:
    assert _same(dedupe.material(inputs), _material_reference(inputs))


# --- log redaction with many sites' secrets -----------------------------------------------------

SECRET = st.text(alphabet="ab*xy7", min_size=4, max_size=8)


@contextmanager
def only_secrets(secrets: list[str]) -> Iterator[None]:
    """The process-wide registry holding just ``secrets`` (restored after), so the secrets
    drawn here never mask another test's log lines."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(logsafe, "_secrets", set())
        patch.setattr(logsafe, "_version", 0)
        patch.setattr(logsafe, "_indexed", -1)
        patch.setattr(logsafe, "_longest_first", ())
        patch.setattr(logsafe, "_by_prefix", {})
        for secret in secrets:
            logsafe.register_secret(secret)
        yield


@given(
    secrets=st.lists(SECRET, min_size=1, max_size=6),
    filler=st.integers(min_value=0, max_value=60),  # past logsafe._FEW: the indexed lookup
    pieces=st.lists(st.one_of(SECRET, st.sampled_from(["a", "*", "q ", "7"])), max_size=12),
)
def test_no_registered_secret_survives_redaction(
    secrets: list[str], filler: int, pieces: list[str]
) -> None:
    others = [f"zz{k:04d}qq" for k in range(filler)]  # never in the text, only in the registry
    text = "".join(pieces + secrets[:2])
    with only_secrets(secrets + others):
        out = logsafe.redact(text)
    assert not [s for s in secrets if s in out]


@given(filler=st.integers(min_value=0, max_value=60), text=st.text(alphabet="cdefg 0123:."))
def test_a_line_without_secrets_is_left_as_it_is(filler: int, text: str) -> None:
    with only_secrets([f"zz{k:04d}qq" for k in range(filler)]):
        assert logsafe.redact(text) == text


@pytest.mark.parametrize("filler", [0, 40])  # the short list, then the indexed lookup
def test_a_secret_the_masking_puts_together_is_masked_too(filler: int) -> None:
    # Masking "xyxy" in "axyxy" leaves "a***", itself a (strange) registered password.
    with only_secrets(["a***", "xyxy"] + [f"zz{k:04d}qq" for k in range(filler)]):
        assert logsafe.redact("user axyxy in") == "user *** in"
