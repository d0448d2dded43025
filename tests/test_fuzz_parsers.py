"""Fuzzing every public payload parser: bad cloud replies parse or raise ParseError, nothing else.

The Enlighten cloud varies by region and firmware and sometimes sends truncated or odd replies.
The parsers promise (``optimizer/enlighten/models/``) that nothing but
:class:`~optimizer.enlighten.errors.ParseError` escapes them, because the callers (the service
loop, the CLI) map exactly that error to "the reply was malformed, retry later". A KeyError,
TypeError or OverflowError would instead reach the last-resort handler as an internal error,
or stop the service. These properties start from the recorded fixtures (so mutations land on
fields the parsers actually read) and also throw fully random JSON at each parser.

The mutations include targeted hostile values (huge and non-finite numbers, digit strings past
the int limit, extreme timestamps), deep nesting and key-vocabulary-aware random documents; the
targets include the parsers without recorded fixtures (latest power, battery status, network
config) and the JSON decoding step in front of them; and a successful parse is checked for what
it returns. (``test_models.py`` fuzzed the same parsers with four of these mutation kinds and
plain random JSON: folded in here, its helpers' own properties stay there.)
"""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from optimizer.enlighten import models
from optimizer.enlighten.errors import ParseError
from optimizer.enlighten.models import LifetimeEnergy
from optimizer.enlighten.preference import ModePreference, parse_mode_preference
from optimizer.enlighten.transport import Transport
from tests.fixtures import load_fixture
from tests.profiles import examples
from tests.test_models import json_paths

MELBOURNE = "Australia/Melbourne"
# Per parser: twenty targets; ten times as many in `make soak`.
SETTINGS = settings(
    max_examples=examples(80),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# --- seeds -----------------------------------------------------------------------------------

# No recorded fixture exists for these replies; the seeds follow the fake cloud's shapes
# (optimizer/fakecloud/payloads.py) and the variants test_observe.py documents.
LATEST_POWER_SEEDS: list[Any] = [
    {"latest_power": {"value": 752, "units": "W", "precision": 0, "time": 1761456789}},
    {"latest_power": {"value": "1.5", "units": "kW", "time": 1761456789000}},
    {"value": -3, "units": "w", "time": "2025-10-25T01:12:05Z[UTC]"},
    load_fixture("latest_power_data_wrapper"),
]
BATTERY_SEEDS: list[Any] = [
    {
        "current_charge": "48%",
        "available_energy": 4.84,
        "max_capacity": 10.08,
        "available_power": 3.84,
        "max_power": 3.84,
        "total_battery_count": 1,
        "active_battery_count": 1,
        "storages": [
            {
                "serial_number": "BT000000000001",
                "current_charge": "48%",
                "available_energy": 4.84,
                "max_capacity": 10.08,
                "status": "normal",
            }
        ],
    },
    {"data": {"current_charge": 55, "max_capacity": "10.5"}},
    {"storages": [{"available_energy": 1, "max_capacity": 5}, {"maxCapacity": 5}]},
]
NETWORK_SEEDS: list[Any] = [
    load_fixture("summary_list")["data"][0]["networkConfig"],
    "netmask=255.255.255.0,mac_addr=00:11:22:33:44:55,interface_name=eth0,connectionStatus=1\n"
    "interface_name=mlan0,ipaddr=192.0.2.11,bootproto=dhcp,connectionStatus=0",
    [{"interface_name": "eth0", "ipaddr": "192.0.2.1"}, "interface_name=wlan0,ipaddr=192.0.2.2"],
]


def _fixtures(*names: str) -> list[Any]:
    return [load_fixture(name) for name in names]


@dataclass(frozen=True)
class Target:
    """A public parser, the replies it is fuzzed from, and the type a success must return."""

    name: str
    parse: Callable[[Any], object]
    seeds: list[Any]
    returns: type | tuple[type, ...]


Interval = Literal["auto", "15min", "day"]


def _energy(interval: Interval) -> Callable[[Any], object]:
    return functools.partial(models.parse_lifetime_energy, timezone=MELBOURNE, interval=interval)


ENERGY_SEEDS = _fixtures("lifetime_energy_15min", "lifetime_energy_daily")
TARGETS = [
    Target("parse_sites", models.parse_sites, _fixtures("sites"), list),
    Target(
        "parse_status",
        models.parse_status,
        _fixtures("status_nested", "status_legacy", "status_2026", "status_2026_unit_ambiguous"),
        models.SiteStatus,
    ),
    Target(
        "parse_summary_list",
        models.parse_summary_list,
        _fixtures("summary_list"),
        list,
    ),
    Target(
        "parse_summary",
        models.parse_summary,
        _fixtures("summary_charger"),
        models.ChargerSummary,
    ),
    Target(
        "parse_live_stream",
        models.parse_live_stream,
        _fixtures("live_stream_start", "live_stream_start_alt", "live_stream_stop"),
        models.LiveStream,
    ),
    Target(
        "parse_session_history_page",
        models.parse_session_history_page,
        _fixtures("session_history_page1", "session_history_page2"),
        models.SessionHistoryPage,
    ),
    Target("parse_lifetime_energy-auto", _energy("auto"), ENERGY_SEEDS, LifetimeEnergy),
    Target("parse_lifetime_energy-15min", _energy("15min"), ENERGY_SEEDS, LifetimeEnergy),
    Target("parse_lifetime_energy-day", _energy("day"), ENERGY_SEEDS, LifetimeEnergy),
    Target(
        "parse_charge_mode",
        models.parse_charge_mode,
        _fixtures("charge_mode"),
        (models.ChargeMode, type(None)),
    ),
    Target(
        "parse_mode_preference",
        parse_mode_preference,
        _fixtures("preference_2026_smart", "preference_2026_storm", "preference_2026_no_modes"),
        ModePreference,
    ),
    Target(
        "parse_green_settings",
        models.parse_green_settings,
        _fixtures("green_settings"),
        dict,
    ),
    Target(
        "battery_for_self_consumption",
        models.battery_for_self_consumption,
        _fixtures("green_settings"),
        (bool, type(None)),
    ),
    Target("parse_schedules", models.parse_schedules, _fixtures("schedules"), models.Schedules),
    Target(
        "parse_login_reply",
        models.parse_login_reply,
        _fixtures("login_ok", "login_mfa", "login_requires_mfa", "login_blocked", "login_invalid"),
        models.LoginReply,
    ),
    Target(
        "parse_otp_reply",
        models.parse_otp_reply,
        _fixtures("otp_ok", "otp_invalid", "otp_blocked", "otp_resend"),
        models.LoginReply,
    ),
    Target("parse_latest_power", models.parse_latest_power, LATEST_POWER_SEEDS, models.LatestPower),
    Target(
        "parse_battery_status", models.parse_battery_status, BATTERY_SEEDS, models.BatteryStatus
    ),
    Target("parse_network_config", models.parse_network_config, NETWORK_SEEDS, tuple),
    Target(
        "session_energy_kwh",
        models.session_energy_kwh,
        [1.25, 1250, "29.94"],
        (float, type(None)),
    ),
]
TARGET_IDS = [target.name for target in TARGETS]

# --- hostile values --------------------------------------------------------------------------

HOSTILE_NUMBERS = st.sampled_from(
    [
        10**30,
        -(10**30),
        2**63,
        2**64 + 1,
        10**400,  # beyond float range: float(10**400) raises OverflowError
        math.inf,
        -math.inf,
        math.nan,
        1e308,
        -1e308,
        5e-324,
        -0.0,
        -1,
        -1.5,
        -(2**31),
        0,
    ]
)
HOSTILE_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "null",
        "None",
        "NaN",
        "nan",
        "Infinity",
        "-inf",
        "1e999",
        "-1e999",
        "9" * 5000,  # int() refuses more than 4300 digits with ValueError
        "0x1F",
        "1_000",
        "32.5",
        "-6",
        "true",
        "FALSE",
        "yes",
        "%",
        "148%",
        "[]",
        "{}",
        "[1, 2",
        "0001-01-01",
        "9999-12-31",
        "2025-02-30",
        "0001-01-01T00:00:00[Pacific/Kiritimati]",
        "9999-12-31T23:59:59Z[Etc/GMT+12]",
        "9999-12-31T23:59:59-23:59",
        "2025-10-25T01:12:05Z[Not/AZone]",
        "2025-10-25T01:12:05[../../etc/passwd]",
        "2025-10-25T01:12:05[" + "x" * 300 + "]",
        "2025-10-25T01:12:05.123456789123456789Z",
        "99999999999999999999",
        "-99999999999999999999",
        "kW",
        "MANUAL_CHARGING",
        "manual_charging",
        "accepted",
        "Australia/Melbourne",
        "\ud800",  # a lone surrogate, as a JSON decoder can produce from "\\ud800"
        "é" * 50,
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | HOSTILE_NUMBERS
    | HOSTILE_STRINGS
)


def _all_keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _all_keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _all_keys(item)


# Random documents are built from the keys the parsers look for, so that they reach past the
# first "is there a data key" check instead of all being rejected at the top.
KEY_VOCABULARY = sorted(
    {key for target in TARGETS for seed in target.seeds for key in _all_keys(seed)}
    | {"data", "value", "latest_power", "storages", "evChargerData", "chargers", "result"}
)
KEYS = st.sampled_from(KEY_VOCABULARY) | st.text(max_size=8)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    return st.recursive(
        SCALARS,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5)
        ),
        max_leaves=max_leaves,
    )


JSON_VALUES = json_values()

# --- mutation --------------------------------------------------------------------------------


def _nest(value: Any, depth: int, as_list: bool) -> Any:
    for _ in range(depth):
        value = [value] if as_list else {"data": value}
    return value


MUTATIONS = (
    "delete",
    "null",
    "hostile_number",
    "hostile_string",
    "wrong_type",
    "random",
    "wrap_list",
    "wrap_dict",
    "deep_nest",
    "stringify",
    "add_key",
    "duplicate_item",
)


def _replacement(data: st.DataObject, kind: str, current: Any) -> Any:
    """The new value for ``current`` under mutation ``kind`` (not for delete/add_key/dup)."""
    if kind == "null":
        return None
    if kind == "hostile_number":
        return data.draw(HOSTILE_NUMBERS, label="number")
    if kind == "hostile_string":
        return data.draw(HOSTILE_STRINGS, label="string")
    if kind == "wrong_type":
        choices = [True, False, "x", "", [], {}, [current], {"value": current}, 0, 1.5]
        return data.draw(st.sampled_from(choices), label="wrong type")
    if kind == "random":
        return data.draw(JSON_VALUES, label="random")
    if kind == "wrap_list":
        return [current]
    if kind == "wrap_dict":
        return {data.draw(KEYS, label="wrap key"): current}
    if kind == "deep_nest":
        depth = data.draw(st.integers(2, 60), label="depth")
        return _nest(current, depth, data.draw(st.booleans(), label="as list"))
    # "stringify": a number as its text, or JSON text where an object was.
    return json.dumps(current) if not isinstance(current, str) else current + current


def mutate(data: st.DataObject, document: Any) -> Any:
    """Apply one mutation to ``document`` (in place where possible); return the new root."""
    paths = json_paths(document)
    # An index into the list rather than a new sampled_from(paths) each mutation, which
    # hypothesis would validate anew every time: the same choice of path.
    path = paths[data.draw(st.integers(0, len(paths) - 1), label="path")]
    kind = data.draw(st.sampled_from(MUTATIONS), label="kind")
    parent: Any = None
    current = document
    for part in path:
        parent, current = current, current[part]
    if kind == "add_key":
        if isinstance(current, dict):
            current[data.draw(KEYS, label="new key")] = data.draw(JSON_VALUES, label="new value")
        return document
    if kind == "duplicate_item":
        if isinstance(current, list) and current:
            current.append(copy.deepcopy(current[0]))
        return document
    if kind == "delete":
        if parent is None:
            return data.draw(st.sampled_from([None, {}, []]), label="emptied root")
        del parent[path[-1]]
        return document
    new = _replacement(data, kind, current)
    if parent is None:
        return new
    parent[path[-1]] = new
    return document


def count_event(outcome: str) -> None:
    """Count outcomes in ``--hypothesis-show-statistics`` (also called outside @given)."""
    if currently_in_test_context():
        event(outcome)


# --- checks ----------------------------------------------------------------------------------


def _snapshot(document: Any) -> str:
    """JSON text of a document (NaN != NaN as a value); repr where json cannot go deep enough."""
    try:
        return json.dumps(document, sort_keys=True, default=repr)
    except (ValueError, RecursionError):
        return repr(document)


def _check_result(target: Target, result: object) -> None:
    """What a success returns must be usable by its callers, not just "not an exception"."""
    assert isinstance(result, target.returns), (target.name, type(result))
    items = result if isinstance(result, list | tuple) else [result]
    for item in items:
        if isinstance(item, BaseModel):
            item.model_dump()  # every field holds a value of its declared type
    if isinstance(result, float):
        assert math.isfinite(result)
    if isinstance(result, LifetimeEnergy):
        # The parser promises every bucket of the series has a place in the calendar.
        count = result.bucket_count
        first, last = result.bucket_start(0), result.bucket_end(max(count - 1, 0))
        assert first < last
        for flow in result.series:
            result.missing(flow)
        if count:
            # Each bucket's start maps back to that bucket: what the replay's lookups rely on.
            assert result.index_at(first) == 0
            assert result.index_at(result.bucket_start(count - 1)) == count - 1
    if isinstance(result, models.SiteStatus):
        for charger in result.chargers:
            assert charger.sn
            assert charger.sn.strip() == charger.sn
            assert isinstance(charger.session_active, bool)
    if isinstance(result, models.BatteryStatus):
        assert isinstance(result.present, bool)
        assert result.soc_pct is None or 0.0 <= result.soc_pct <= 100.0


def parse_or_parse_error(target: Target, document: Any) -> ParseError | None:
    """Run the parser: a success is checked, a ParseError returned, anything else propagates."""
    before = _snapshot(document)
    try:
        result = target.parse(document)
    except ParseError as err:
        message = str(err)
        assert message.strip(), "a ParseError must say what was wrong"
        assert "\n" not in message, f"the CLI prints a ParseError as one line: {message!r}"
        count_event("ParseError")
        return err
    finally:
        assert _snapshot(document) == before, "parsers must not modify their input"
    _check_result(target, result)
    count_event("parsed")
    return None


# --- the properties --------------------------------------------------------------------------


def test_every_public_parser_is_fuzzed() -> None:
    """A parser added to models.__all__ without a fuzz target here fails this test."""
    public = {
        name
        for name in models.__all__
        if name.startswith("parse_") or name in ("battery_for_self_consumption",)
    }
    public |= {name for name in models.__all__ if name.endswith("_kwh")}
    fuzzed = {target.name.split("-")[0] for target in TARGETS}
    assert public - fuzzed == set()
    constructors = [
        f"{name}.{attr}"
        for name in models.__all__
        if isinstance(getattr(models, name), type)
        for attr in vars(getattr(models, name))
        if attr.startswith("from_")
    ]
    assert constructors == [], f"fuzz these model constructors too: {constructors}"


@pytest.mark.parametrize("target", TARGETS, ids=TARGET_IDS)
def test_seeds_parse(target: Target) -> None:
    """The unmutated seeds must parse, or the mutations below would start from a failure."""
    for seed in target.seeds:
        assert parse_or_parse_error(target, copy.deepcopy(seed)) is None, seed


@pytest.mark.parametrize("target", TARGETS, ids=TARGET_IDS)
@SETTINGS
@given(data=st.data())
def test_mutated_replies_parse_or_raise_parse_error(target: Target, data: st.DataObject) -> None:
    """One to four mutations of a recorded reply: deleted keys, nulls, wrong types, nesting."""
    document = copy.deepcopy(data.draw(st.sampled_from(target.seeds), label="seed"))
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        document = mutate(data, document)
    parse_or_parse_error(target, document)


@pytest.mark.parametrize("target", TARGETS, ids=TARGET_IDS)
@settings(SETTINGS, max_examples=examples(50))
@given(document=JSON_VALUES)
def test_random_json_parses_or_raises_parse_error(target: Target, document: Any) -> None:
    """Replies with no relation to the recorded ones (from the parsers' key vocabulary)."""
    parse_or_parse_error(target, document)


@pytest.mark.parametrize("target", TARGETS, ids=TARGET_IDS)
@settings(SETTINGS, max_examples=30)
@given(depth=st.integers(50, 600), as_list=st.booleans(), leaf=SCALARS)
def test_deeply_nested_replies(target: Target, depth: int, as_list: bool, leaf: Any) -> None:
    """Hundreds of levels of nesting (a hostile or broken proxy) must not recurse to death."""
    parse_or_parse_error(target, _nest(leaf, depth, as_list))


@pytest.mark.parametrize("interval", ["auto", "15min", "day"], ids=["auto", "15min", "day"])
@settings(SETTINGS, max_examples=150)
@given(
    timezone=st.sampled_from(["UTC", MELBOURNE, "Pacific/Kiritimati", "Etc/GMT+12"])
    | HOSTILE_STRINGS
    | st.text(max_size=30),
    start=st.dates().map(str) | HOSTILE_STRINGS,
    buckets=st.lists(st.none() | st.integers(-5, 5000) | HOSTILE_NUMBERS, max_size=200),
    last_report=SCALARS,
)
def test_lifetime_energy_calendar_edges(
    interval: Interval, timezone: str, start: str, buckets: list[Any], last_report: Any
) -> None:
    """Dates near year 1 and 9999, odd zone names and long series: the bucket arithmetic is
    where a date overflow would surface, and the parser promises buckets fit the calendar."""
    target = Target(
        "parse_lifetime_energy",
        functools.partial(models.parse_lifetime_energy, timezone=timezone, interval=interval),
        [],
        LifetimeEnergy,
    )
    payload = {"start_date": start, "production": buckets, "last_report_date": last_report}
    parse_or_parse_error(target, payload)


# --- the JSON decoding in front of the parsers -----------------------------------------------


def _decode(text: str, status: int = 200) -> Any:
    return Transport._decode(text, "application/json", path="/fuzz", status=status)


DECODE_TEXT = (
    st.text(max_size=60)
    | JSON_VALUES.map(json.dumps)
    | JSON_VALUES.map(json.dumps).map(lambda text: text[: len(text) // 2])
    | st.sampled_from(
        [
            "[" * 100_000 + "]" * 100_000,
            '{"a":' * 50_000 + "1" + "}" * 50_000,
            '{"value": ' + "9" * 5000 + "}",
            "9" * 5000,
            '{"value": 1e999}',
            '{"value": NaN}',
            "\ufeff{}",
            '"\\ud800"',
        ]
    )
)


@settings(SETTINGS, max_examples=150)
@given(text=DECODE_TEXT, status=st.sampled_from([200, 204, 400, 500]))
def test_decoding_a_reply_gives_data_or_parse_error(text: str, status: int) -> None:
    """The transport turns the body into JSON before any parser sees it; a body too deep or
    with a number too long for Python must be a ParseError (retry later), like broken JSON."""
    error: ParseError | None = None
    try:
        _decode(text, status)
    except ParseError as err:
        error = err
    if error is not None:
        assert status < 400, "an error status with a broken body keeps its own error"
        assert error.message.strip()
        assert "\n" not in error.message


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"latest_power": {"value": ' + "9" * 5000 + "}}",
    ],
    ids=["nested-100k", "int-5000-digits"],
)
def test_pathological_json_is_a_parse_error(text: str) -> None:
    """The two JSON bodies Python's decoder refuses with something other than JSONDecodeError."""
    with pytest.raises(ParseError, match="/fuzz"):
        _decode(text)
