"""The parsers turn every recorded reply shape into typed data, and nothing else into a crash."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from optimizer.enlighten.errors import ParseError
from optimizer.enlighten.models import (
    ChargeMode,
    ChargerSession,
    ChargerStatus,
    LifetimeEnergy,
    battery_for_self_consumption,
    parse_charge_mode,
    parse_green_settings,
    parse_lifetime_energy,
    parse_live_stream,
    parse_login_reply,
    parse_network_config,
    parse_otp_reply,
    parse_schedules,
    parse_session_history_page,
    parse_sites,
    parse_status,
    parse_summary,
    parse_summary_list,
    session_energy_kwh,
)
from optimizer.enlighten.models import scheduler as scheduler_models
from optimizer.enlighten.models.base import _parse_enlighten_time
from tests.fixtures import DELETE, at, drop, load_fixture, patched_fixture, set_at

MELBOURNE = "Australia/Melbourne"
BERLIN = "Europe/Berlin"


def utc(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC)


# --- timestamps and energy units ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-10-25T01:12:05Z[UTC]", utc("2025-10-25T01:12:05")),
        ("2025-10-23T03:00:29.082Z[UTC]", utc("2025-10-23T03:00:29.082")),
        ("2030-01-01T00:00:00.000000000Z[UTC]", utc("2030-01-01")),
        ("2025-10-16T08:45:14.230924038Z", utc("2025-10-16T08:45:14.230924")),
        ("2025-01-01T00:00:00.000+00:00", utc("2025-01-01")),
        ("2025-01-01T10:00:00+10:00", utc("2025-01-01")),
        ("2025-07-01T12:00:00[Europe/Berlin]", utc("2025-07-01T10:00:00")),
        ("2025-07-01T12:00:00", utc("2025-07-01T12:00:00")),
        (1761456500000, utc("2025-10-26T05:28:20")),
        (1761456500, utc("2025-10-26T05:28:20")),
        ("1761456500", utc("2025-10-26T05:28:20")),
        (None, None),
        (True, None),
        ("", None),
        ("yesterday", None),
        ("2025-13-01T00:00:00Z", None),
        (10**400, None),
        (float("inf"), None),
        ([2025], None),
    ],
)
def test_enlighten_timestamps(raw: Any, expected: datetime | None) -> None:
    parsed = _parse_enlighten_time(raw)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (3542.11, 3.54211),
        (1.25, 1.25),
        (200, 200.0),
        (200.5, 0.2005),
        ("3542", 3.542),
        (0, 0.0),
        (None, None),
        ("n/a", None),
        (True, None),
        (float("nan"), None),
        ({"value": 1}, None),
    ],
)
def test_session_energy_units(raw: Any, expected: float | None) -> None:
    assert session_energy_kwh(raw) == pytest.approx(expected)


# --- sites -------------------------------------------------------------------------------------


def test_sites_fixture() -> None:
    sites = parse_sites(load_fixture("sites"))
    assert [(s.site_id, s.name) for s in sites] == [(1234567, "Home"), (7654321, "Holiday house")]


@pytest.mark.parametrize(
    "payload",
    [
        [{"siteId": "42", "siteName": "Barn"}],
        {"sites": [{"system_id": 42, "system_name": "Barn"}]},
        {"data": {"sites": [{"id": "42", "displayName": "Barn"}]}},
        {"data": [{"site_id": 42, "site_name": "Barn"}]},
        {"data": [{"site_id": None, "id": 42, "name": "", "displayName": "Barn"}]},
    ],
)
def test_sites_shapes(payload: Any) -> None:
    [site] = parse_sites(payload)
    assert (site.site_id, site.name) == (42, "Barn")


def test_sites_without_name_or_with_bare_ids() -> None:
    assert [(s.site_id, s.name) for s in parse_sites([7, "8"])] == [(7, None), (8, None)]


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"result": []}, "no list of sites"),
        ("<html>", "no list of sites"),
        ({"data": {"sites": "many"}}, "no list of sites"),
        (patched_fixture("sites", {"data": [{"name": "Home"}]}), "entry #0"),
        ([{"site_id": "abc"}], "entry #0"),
    ],
)
def test_sites_errors(payload: Any, match: str) -> None:
    with pytest.raises(ParseError, match=match):
        parse_sites(payload)


# --- status ------------------------------------------------------------------------------------


def only_charger(payload: Any) -> ChargerStatus:
    [charger] = parse_status(payload).chargers
    return charger


def test_status_nested() -> None:
    status = parse_status(load_fixture("status_nested"))
    assert status.site_id == "1234567"
    assert status.timezone == MELBOURNE
    assert status.server_time == datetime.fromtimestamp(1761456789.123, UTC)
    [charger] = status.chargers
    assert charger.sn == "EV9876543210"
    assert charger.name == "IQ EV Charger"
    assert (charger.connected, charger.plugged_in, charger.charging, charger.faulted) == (
        True,
        True,
        True,
        False,
    )
    assert charger.connector_status == "CHARGING"
    assert charger.connector_status_reason is None  # "" on the wire
    assert (charger.mode_code, charger.mode) == (0, ChargeMode.MANUAL_CHARGING)
    assert charger.dlb_active is False
    assert charger.safe_limit is False
    assert charger.session_active
    assert charger.last_reported_at == utc("2025-10-25T01:12:05")
    assert charger.offline_at == utc("2025-10-23T03:00:29.082")
    [connector] = charger.connectors
    assert connector.connector_id == 1
    assert connector.status_info == "EVConnected"
    session = charger.session
    assert session.energy_kwh == pytest.approx(3.54211)
    assert session.started_at == utc("2025-10-26T05:28:20")
    assert session.plugged_in_at == utc("2025-10-24T23:57:05.145")
    assert session.plugged_out_at is None
    assert session.charge_level_amps == 32
    assert session.miles == pytest.approx(14.35)
    assert session.cost is None


def test_status_legacy() -> None:
    status = parse_status(load_fixture("status_legacy"))
    assert status.site_id is None
    assert status.server_time == utc("2025-10-26T05:33:09")
    [charger] = status.chargers
    assert charger.connectors == ()
    assert charger.connector_status == "SUSPENDED_EVSE"
    assert charger.connector_status_reason == "INSUFFICIENT_SOLAR"
    assert charger.mode == ChargeMode.GREEN_CHARGING
    assert not charger.session_active
    assert charger.session.energy_kwh == pytest.approx(1.25)
    assert charger.session.started_at == utc("2025-10-26T05:28:20")
    assert charger.dlb_active is None
    assert charger.safe_limit is False


def test_status_legacy_under_data() -> None:
    payload = patched_fixture(
        "status_legacy", lambda p: p.update(data={"evChargerData": p.pop("evChargerData")})
    )
    assert only_charger(payload).sn == "EV9876543210"


@pytest.mark.parametrize(
    ("state", "active"),
    [
        ("CHARGING", True),
        ("FINISHING", True),
        ("SUSPENDED", True),
        ("SUSPENDED_EV", True),
        ("SUSPENDED_EVSE", False),
        ("AVAILABLE", False),
        ("FAULTED", False),
    ],
)
def test_session_active(state: str, active: bool) -> None:
    payload = patched_fixture(
        "status_nested", at("data.chargers.0.connectors.0", {"connectorStatusType": state})
    )
    assert only_charger(payload).session_active is active


def test_status_connector_flags() -> None:
    payload = patched_fixture(
        "status_nested",
        at(
            "data.chargers.0.connectors.0",
            {"safeLimitState": 1, "dlbActive": True, "connectorStatusReason": "INSUFFICIENT_SOLAR"},
        ),
        at("data.chargers.0", {"pluggedIn": DELETE, "mode": 7}),
    )
    charger = only_charger(payload)
    assert charger.safe_limit is True
    assert charger.dlb_active is True
    assert charger.connector_status_reason == "INSUFFICIENT_SOLAR"
    assert charger.plugged_in is True  # from the connector
    assert (charger.mode_code, charger.mode) == (7, None)


def test_status_tolerates_wrong_optional_types() -> None:
    payload = patched_fixture(
        "status_nested",
        at(
            "data.chargers.0",
            {
                "connected": "maybe",
                "lst_rpt_at": "soon",
                "name": 12,
                "mode": "zero",
                "connectors": "one",
                "session_d": {"e_c": "lots", "charge_level": "32", "strt_chrg": None},
            },
        ),
        set_at("data.tz", ["UTC"]),
    )
    status = parse_status(payload)
    assert status.timezone is None
    [charger] = status.chargers
    assert charger.connected is None
    assert charger.last_reported_at is None
    assert charger.name is None
    assert charger.mode is None
    assert charger.connectors == ()
    assert charger.connector_status is None
    assert charger.session.energy_kwh is None
    assert charger.session.charge_level_amps == 32
    assert charger.session.started_at is None


def test_status_without_session() -> None:
    charger = only_charger(patched_fixture("status_nested", drop("data.chargers.0.session_d")))
    assert charger.session == ChargerSession()


def test_status_without_chargers_is_empty() -> None:
    assert parse_status(patched_fixture("status_nested", {"data": {"chargers": []}})).chargers == ()


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (patched_fixture("status_nested", drop("data.chargers.0.sn")), "charger #0 has no sn"),
        (patched_fixture("status_nested", set_at("data.chargers.0.sn", "")), "has no sn"),
        (patched_fixture("status_nested", set_at("data.chargers.0", "EV1")), "not an object"),
        (patched_fixture("status_nested", set_at("data.chargers", {})), "not a list"),
        ({"meta": {}, "data": {}}, "neither data.chargers nor evChargerData"),
        ("<html>login</html>", "not an object"),
        (None, "not an object"),
    ],
)
def test_status_errors(payload: Any, match: str) -> None:
    with pytest.raises(ParseError, match=match):
        parse_status(payload)


# --- summary -----------------------------------------------------------------------------------


def test_summary_charger() -> None:
    summary = parse_summary(load_fixture("summary_charger"))
    assert summary.sn == "EV000000000000"
    assert summary.display_name == "IQ EV Charger"
    assert summary.model_name == "IQ-EVSE-EXAMPLE"
    assert summary.sku == "IQ-EVSE-EXAMPLE-0000"
    assert summary.firmware_version == "25.37.1.14"
    assert summary.processor_board_version == "2.0.713.0"
    assert (summary.min_amps, summary.max_amps, summary.granularity_amps) == (6, 32, 1)
    assert summary.max_current == 32
    assert summary.operating_voltage == 230
    assert summary.supports_use_battery is True
    assert summary.dlb_enabled is True
    assert summary.phase_count == 1
    assert summary.is_connected is True
    assert summary.last_reported_at == utc("2025-01-25T09:09:01.943")
    assert summary.timezone == "Australia/Example"
    assert summary.reporting_interval_s == 300
    eth0, mlan0 = summary.networks
    assert (eth0.name, eth0.ip_address, eth0.connected) == ("eth0", "192.0.2.10", False)
    assert (mlan0.name, mlan0.mac_address, mlan0.connected) == ("mlan0", "00:11:22:33:44:66", True)
    assert (mlan0.netmask, mlan0.gateway, mlan0.bootproto) == ("255.255.255.0", "192.0.2.1", "dhcp")


def test_summary_list() -> None:
    [summary] = parse_summary_list(load_fixture("summary_list"))
    assert summary.sn == "EV1234567890"
    assert summary.operating_voltage == 240
    assert summary.timezone is None
    assert [n.name for n in summary.networks] == ["eth0"]


def test_summary_charge_levels_are_tolerant() -> None:
    payload = patched_fixture(
        "summary_charger",
        {"data": {"chargeLevelDetails": {"min": "six", "max": 40.0, "granularity": "0"}}},
    )
    summary = parse_summary(payload)
    assert (summary.min_amps, summary.max_amps, summary.granularity_amps) == (None, 40, 1)
    summary = parse_summary(patched_fixture("summary_charger", drop("data.chargeLevelDetails")))
    assert (summary.min_amps, summary.max_amps, summary.granularity_amps) == (None, None, 1)


def test_summary_single_entry_list() -> None:
    payload = patched_fixture("summary_charger", lambda p: p.update(data=[p["data"]]))
    assert parse_summary(payload).sn == "EV000000000000"


def test_summary_list_accepts_bare_list() -> None:
    payload = load_fixture("summary_list")["data"]
    assert [s.sn for s in parse_summary_list(payload)] == ["EV1234567890"]


@pytest.mark.parametrize(
    ("parser", "payload", "match"),
    [
        (parse_summary, patched_fixture("summary_charger", drop("data.serialNumber")), "serial"),
        (parse_summary, patched_fixture("summary_charger", {"data": DELETE}), "not an object"),
        (parse_summary, [], "not an object"),
        (parse_summary_list, {"data": {"serialNumber": "EV1"}}, "not a list"),
        (parse_summary_list, {"data": ["EV1"]}, "entry #0 is not an object"),
        (
            parse_summary_list,
            patched_fixture("summary_list", drop("data.0.serialNumber")),
            "entry #0 has no serialNumber",
        ),
    ],
)
def test_summary_errors(parser: Callable[[Any], object], payload: Any, match: str) -> None:
    with pytest.raises(ParseError, match=match):
        parser(payload)


def test_network_config_csv_lines() -> None:
    text = (
        "interface_name=eth0, ipaddr=192.0.2.10, connectionStatus=0\n"
        "interface_name=mlan0, ipaddr=192.0.2.11, connectionStatus=1, bootproto=static\n"
    )
    eth0, mlan0 = parse_network_config(text)
    assert (eth0.name, eth0.ip_address, eth0.connected) == ("eth0", "192.0.2.10", False)
    assert (mlan0.name, mlan0.bootproto, mlan0.connected) == ("mlan0", "static", True)
    assert mlan0.mac_address is None


def test_network_config_decoded_list_of_objects() -> None:
    [interface] = parse_network_config([{"interface_name": "eth0", "ipaddr": "192.0.2.1"}])
    assert (interface.name, interface.ip_address) == ("eth0", "192.0.2.1")


@pytest.mark.parametrize(
    "garbage", ["[...]", "", "hello", "[broken", "a=b", None, 42, {"eth0": "up"}, '["x"]']
)
def test_network_config_garbage(garbage: Any) -> None:
    assert parse_network_config(garbage) == ()


# --- live stream -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "topics", "duration"),
    [
        ("live_stream_start", ("evse/EV9876543210/status",), 900),
        ("live_stream_start_alt", ("v1/evse/prod/live-stream/EV9876543210",), 900),
        ("live_stream_stop", (), None),
    ],
)
def test_live_stream(name: str, topics: tuple[str, ...], duration: int | None) -> None:
    stream = parse_live_stream(load_fixture(name))
    assert stream.accepted
    assert stream.topics == topics
    assert stream.duration_s == duration


def test_live_stream_refused() -> None:
    stream = parse_live_stream({"status": "error", "message": "LIVE_STREAM_NOT_SUPPORTED"})
    assert not stream.accepted


@pytest.mark.parametrize("payload", [{}, {"data": {}}, {"status": 1}, "accepted", None])
def test_live_stream_errors(payload: Any) -> None:
    with pytest.raises(ParseError):
        parse_live_stream(payload)


# --- session history ---------------------------------------------------------------------------


def test_session_history_pages() -> None:
    first = parse_session_history_page(load_fixture("session_history_page1"))
    assert (first.has_more, first.offset, first.limit) == (True, 0, 2)
    newest, older = first.sessions
    assert newest.id == "123456789012:1700000001"
    assert newest.session_id == 1700000001
    assert newest.started_at == utc("2025-10-16T00:02:08.826")
    assert newest.ended_at == utc("2025-10-16T04:39:50.618")
    assert newest.energy_kwh == pytest.approx(29.94)
    assert newest.active_charge_time_s == 15284
    assert newest.miles_added == pytest.approx(120.7)
    assert newest.cost == pytest.approx(0.77)
    assert newest.avg_cost_per_kwh == pytest.approx(0.03)
    assert newest.cost_state == "COST_CALCULATED"
    assert newest.manual_override is True
    assert (older.miles_added, older.cost, older.manual_override) == (None, None, False)

    second = parse_session_history_page(load_fixture("session_history_page2"))
    assert (second.has_more, second.offset, second.limit) == (False, 2, 2)
    [last] = second.sessions
    assert last.ended_at is None


def test_session_history_tolerance() -> None:
    payload = patched_fixture(
        "session_history_page1",
        at("data.result.0", {"id": DELETE, "aggEnergyValue": "n/a", "manualOverridden": "yes"}),
        {"data": {"offset": DELETE, "limit": "twenty", "hasMore": None}},
    )
    page = parse_session_history_page(payload)
    assert page.sessions[0].id == "1700000001"  # falls back to sessionId
    assert page.sessions[0].energy_kwh is None
    assert page.sessions[0].manual_override is True
    assert (page.has_more, page.offset, page.limit) == (False, 0, 2)


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        (at("data.result.0", {"id": DELETE, "sessionId": DELETE}), "entry #0 has neither id"),
        (at("data.result.1", {"startTime": "later"}), "entry #1 has no readable startTime"),
        (set_at("data.result.1", None), "entry #1 is not an object"),
        ({"data": {"result": DELETE}}, "data.result is not a list"),
        ({"data": DELETE}, "data.result is not a list"),
    ],
)
def test_session_history_errors(patch: Any, match: str) -> None:
    with pytest.raises(ParseError, match=match):
        parse_session_history_page(patched_fixture("session_history_page1", patch))


# --- lifetime energy ---------------------------------------------------------------------------


def quarter_hours(timezone: str = MELBOURNE, *patches: Any) -> LifetimeEnergy:
    payload = patched_fixture("lifetime_energy_15min", *patches)
    return parse_lifetime_energy(payload, timezone=timezone)


def quarter_hours_from(start_date: str, timezone: str) -> LifetimeEnergy:
    """The 15-minute fixture moved to another day, its interval stated outright."""
    payload = patched_fixture("lifetime_energy_15min", {"start_date": start_date})
    return parse_lifetime_energy(payload, timezone=timezone, interval="15min")


def test_lifetime_energy_quarter_hours() -> None:
    energy = quarter_hours()
    assert energy.interval == timedelta(minutes=15)
    assert energy.system_id == 1234567
    assert energy.start_date == date(2025, 10, 25)
    assert energy.last_report_at == utc("2025-10-26T12:45:00")
    assert energy.update_pending is False
    assert energy.bucket_count == 192
    assert set(energy.series) >= {"production", "consumption", "evse", "import", "heatpump"}
    assert energy.values("heatpump") == ()
    assert energy.values("no_such_flow") == ()
    assert energy.values("import") == (None,) * 192
    assert energy.missing("production") == [136, 137, 138, 139]
    assert energy.missing("heatpump") == []
    assert energy.values("evse")[40] == 1750.0


def test_lifetime_energy_quarter_hour_times() -> None:
    energy = quarter_hours()
    zone = ZoneInfo(MELBOURNE)
    assert energy.bucket_start(0) == datetime(2025, 10, 25, tzinfo=zone)
    assert energy.bucket_start(0).tzinfo == zone
    assert energy.bucket_end(0) == datetime(2025, 10, 25, 0, 15, tzinfo=zone)
    assert energy.bucket_start(96) == datetime(2025, 10, 26, tzinfo=zone)
    assert energy.index_at(datetime(2025, 10, 25, 10, 7, tzinfo=zone)) == 40
    assert energy.index_at(utc("2025-10-24T13:00:00")) == 0  # local midnight
    assert energy.index_at(utc("2025-10-24T12:59:00")) is None
    assert energy.index_at(datetime(2025, 10, 27, tzinfo=zone)) is None
    with pytest.raises(ValueError, match="timezone-aware"):
        energy.index_at(datetime(2025, 10, 25, 10))


def test_lifetime_energy_dst_autumn_day_has_100_quarter_hours() -> None:
    energy = quarter_hours_from("2025-10-26", BERLIN)
    zone = ZoneInfo(BERLIN)
    first_two, second_two = energy.bucket_start(8), energy.bucket_start(12)
    assert first_two.isoformat() == "2025-10-26T02:00:00+02:00"
    assert second_two.isoformat() == "2025-10-26T02:00:00+01:00"
    assert second_two.astimezone(UTC) - first_two.astimezone(UTC) == timedelta(hours=1)
    assert energy.bucket_start(100) == datetime(2025, 10, 27, tzinfo=zone)
    assert energy.bucket_start(96) == datetime(2025, 10, 26, 23, tzinfo=zone)
    assert energy.index_at(first_two) == 8
    assert energy.index_at(second_two) == 12  # same wall clock, one hour later
    assert energy.index_at(utc("2025-10-26T01:14:00")) == 12


def test_lifetime_energy_dst_spring_day_has_92_quarter_hours() -> None:
    energy = quarter_hours_from("2025-03-30", BERLIN)
    zone = ZoneInfo(BERLIN)
    assert energy.bucket_start(8) == datetime(2025, 3, 30, 3, tzinfo=zone)
    assert energy.bucket_start(92) == datetime(2025, 3, 31, tzinfo=zone)
    melbourne = quarter_hours_from("2025-10-05", MELBOURNE)
    assert melbourne.bucket_start(8) == datetime(2025, 10, 5, 3, tzinfo=ZoneInfo(MELBOURNE))


def test_lifetime_energy_daily() -> None:
    energy = parse_lifetime_energy(load_fixture("lifetime_energy_daily"), timezone=MELBOURNE)
    zone = ZoneInfo(MELBOURNE)
    assert energy.interval == timedelta(days=1)
    assert energy.bucket_count == 11
    assert energy.missing("production") == [8]
    assert energy.values("evse")[1] == 10550.0
    assert energy.bucket_start(0) == datetime(2025, 12, 1, tzinfo=zone)
    assert energy.bucket_end(10) == datetime(2025, 12, 12, tzinfo=zone)
    assert energy.index_at(utc("2025-12-11T08:45:00")) == 10
    assert energy.index_at(utc("2025-11-30T13:30:00")) == 0  # 00:30 local on Dec 1
    assert energy.index_at(utc("2025-12-12T13:00:00")) is None


def test_lifetime_energy_daily_over_dst_keeps_local_midnights() -> None:
    payload = patched_fixture("lifetime_energy_daily", {"start_date": "2025-10-20"})
    energy = parse_lifetime_energy(payload, timezone=BERLIN, interval="day")
    assert energy.bucket_start(6) == datetime(2025, 10, 26, tzinfo=ZoneInfo(BERLIN))
    length = energy.bucket_end(6).astimezone(UTC) - energy.bucket_start(6).astimezone(UTC)
    assert length == timedelta(hours=25)


def test_lifetime_energy_forced_interval() -> None:
    payload = load_fixture("lifetime_energy_daily")
    assert parse_lifetime_energy(payload, timezone=MELBOURNE, interval="15min").interval == (
        timedelta(minutes=15)
    )
    payload = load_fixture("lifetime_energy_15min")
    assert parse_lifetime_energy(payload, timezone=MELBOURNE, interval="day").interval == (
        timedelta(days=1)
    )


def test_lifetime_energy_auto_without_last_report_uses_today() -> None:
    today = datetime.now(ZoneInfo(MELBOURNE)).date()
    recent = {"last_report_date": DELETE, "start_date": str(today - timedelta(days=1))}
    assert quarter_hours(MELBOURNE, recent).interval == timedelta(minutes=15)
    old = {"last_report_date": DELETE, "start_date": str(today - timedelta(days=10))}
    daily = parse_lifetime_energy(patched_fixture("lifetime_energy_daily", old), timezone=MELBOURNE)
    assert daily.interval == timedelta(days=1)


def test_lifetime_energy_unequal_lengths_and_numeric_strings() -> None:
    energy = quarter_hours(
        MELBOURNE,
        lambda p: p.update(evse=p["evse"][:10]),
        set_at("production.30", "156.5"),
    )
    assert energy.bucket_count == 192
    assert len(energy.values("evse")) == 10
    assert energy.missing("evse") == list(range(10, 192))
    assert energy.values("production")[30] == 156.5


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        (set_at("production.3", "lots"), r"production\[3\] is not a number"),
        (set_at("evse.0", True), r"evse\[0\] is not a number"),
        (set_at("consumption.5", [1]), r"consumption\[5\] is not a number"),
        ({"start_date": DELETE}, "start_date"),
        ({"start_date": "10-08-2023"}, "start_date"),
        ({"start_date": 20231008}, "start_date"),
        ({"start_date": "9999-12-31"}, "outside the calendar"),
    ],
)
def test_lifetime_energy_errors(patch: Any, match: str) -> None:
    with pytest.raises(ParseError, match=match):
        quarter_hours(MELBOURNE, patch)


def test_lifetime_energy_needs_known_timezone() -> None:
    with pytest.raises(ParseError, match="unknown timezone"):
        quarter_hours("Mars/Olympus_Mons")
    with pytest.raises(ParseError, match="not an object"):
        parse_lifetime_energy([], timezone=MELBOURNE)


# --- scheduler ---------------------------------------------------------------------------------


def test_charge_mode_fixture() -> None:
    assert parse_charge_mode(load_fixture("charge_mode")) == ChargeMode.MANUAL_CHARGING


@pytest.mark.parametrize(
    ("modes", "expected"),
    [
        (
            {"manualCharging": {"enabled": False}, "greenCharging": {"enabled": True}},
            ChargeMode.GREEN_CHARGING,
        ),
        (
            {"manualCharging": {"enabled": False}, "scheduledCharging": {"enabled": "true"}},
            ChargeMode.SCHEDULED_CHARGING,
        ),
        (
            {"manualCharging": {"enabled": False, "chargingMode": "MANUAL_CHARGING"}},
            None,
        ),
        (
            {"manualCharging": {"enabled": True, "chargingMode": "TURBO"}},
            ChargeMode.MANUAL_CHARGING,
        ),
        (
            {"manualCharging": {"enabled": True, "chargingMode": "green_charging"}},
            ChargeMode.GREEN_CHARGING,
        ),
    ],
)
def test_charge_mode_variants(modes: dict[str, Any], expected: ChargeMode | None) -> None:
    payload = patched_fixture("charge_mode", set_at("data.modes", modes))
    assert parse_charge_mode(payload) == expected


@pytest.mark.parametrize("payload", [{}, {"data": {"modes": []}}, {"data": None}, "MANUAL"])
def test_charge_mode_errors(payload: Any) -> None:
    with pytest.raises(ParseError):
        parse_charge_mode(payload)


def test_green_settings() -> None:
    payload = load_fixture("green_settings")
    settings_by_name = parse_green_settings(payload)
    setting = settings_by_name["USE_BATTERY_FOR_SELF_CONSUMPTION"]
    assert (setting.enabled, setting.value) == (True, None)
    assert battery_for_self_consumption(payload) is True
    disabled = patched_fixture("green_settings", at("data.0", {"enabled": "false"}))
    assert battery_for_self_consumption(disabled) is False
    assert battery_for_self_consumption(patched_fixture("green_settings", {"data": []})) is None


@pytest.mark.parametrize(
    "payload",
    [
        load_fixture("green_settings_put"),
        patched_fixture("green_settings", at("data.0", {"chargerSettingName": DELETE})),
        patched_fixture("green_settings", set_at("data.0", "USE_BATTERY")),
    ],
)
def test_green_settings_errors(payload: Any) -> None:
    with pytest.raises(ParseError):
        parse_green_settings(payload)


def test_schedules() -> None:
    schedules = parse_schedules(load_fixture("schedules"))
    config = schedules.config
    assert (config.is_off_peak_eligible, config.schedule_sync_status) == (True, "synced")
    assert (config.is_mode_cancellable, config.pending_modes_off_grid) == (True, False)
    assert config.pending_schedules_off_grid is False
    custom, off_peak = schedules.slots
    assert (custom.start_time, custom.end_time) == ("23:00", "06:00")
    assert (custom.charging_level, custom.charging_level_amp) == (32, 32)
    assert custom.days == (1, 2, 3, 4, 5, 6, 7)
    assert (custom.remind_time, custom.remind_flag, custom.enabled) == (10, False, True)
    assert (custom.recurring_kind, custom.charge_level_type) == ("Recurring", "Weekly")
    assert (off_peak.schedule_type, off_peak.start_time, off_peak.enabled) == (
        "OFF_PEAK",
        None,
        False,
    )


def test_schedule_to_wire_round_trips_the_fixture() -> None:
    payload = load_fixture("schedules")
    slots = parse_schedules(payload).slots
    assert [slot.to_wire() for slot in slots] == payload["data"]["slots"]


def test_schedule_coercion_and_wire_defaults() -> None:
    payload = patched_fixture(
        "schedules",
        at(
            "data.slots.0",
            {
                "id": 42,
                "chargingLevel": "32",
                "enabled": "false",
                "remindFlag": 1,
                "days": ["1", 2, 9, None],
                "unknownField": "dropped",
            },
        ),
        at("data.slots.1", {"days": DELETE}),
        {"data": {"config": DELETE}},
    )
    schedules = parse_schedules(payload)
    custom, off_peak = schedules.slots
    assert (custom.id, custom.charging_level, custom.enabled, custom.remind_flag) == (
        "42",
        32,
        False,
        True,
    )
    assert custom.days == (1, 2)
    wire = custom.to_wire()
    assert "unknownField" not in wire
    assert (wire["id"], wire["startTime"], wire["days"]) == ("42", "23:00", [1, 2])
    assert off_peak.days == ()
    assert off_peak.to_wire()["days"] == [1, 2, 3, 4, 5, 6, 7]
    assert schedules.config.is_off_peak_eligible is None


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        (at("data.slots.0", {"id": DELETE}), "slot #0"),
        (at("data.slots.1", {"scheduleType": None}), "slot #1"),
        (at("data.slots.0", {"enabled": "perhaps"}), "slot #0"),
        (set_at("data.slots.0", []), "slot #0 is not an object"),
        ({"data": {"slots": DELETE}}, "data.slots is not a list"),
        ({"data": DELETE}, "schedules data is not an object"),
    ],
)
def test_schedule_errors(patch: Any, match: str) -> None:
    with pytest.raises(ParseError, match=match):
        parse_schedules(patched_fixture("schedules", patch))


# --- login -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("login_ok", "authenticated"),
        ("login_mfa", "mfa_required"),
        ("login_requires_mfa", "mfa_required"),
        ("login_blocked", "blocked"),
        ("login_invalid", "invalid"),
        ("otp_resend", "mfa_required"),
    ],
)
def test_login_replies(name: str, kind: str) -> None:
    assert parse_login_reply(load_fixture(name)).kind == kind


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("otp_ok", "authenticated"),
        ("otp_invalid", "invalid"),
        ("otp_blocked", "blocked"),
        ("otp_resend", "mfa_required"),
    ],
)
def test_otp_replies(name: str, kind: str) -> None:
    assert parse_otp_reply(load_fixture(name)).kind == kind


def test_authenticated_reply_carries_tokens() -> None:
    reply = parse_login_reply(load_fixture("login_ok"))
    assert reply.session_id == "0123456789abcdef0123456789abcdef"
    assert reply.manager_token is not None
    assert reply.manager_token.startswith("eyJ")
    assert reply.system_id == "1234567"
    otp = parse_otp_reply(patched_fixture("otp_ok", {"system_id": 1234567}))
    assert (otp.kind, otp.system_id) == ("authenticated", "1234567")


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (patched_fixture("login_ok", {"manager_token": DELETE}), "invalid"),
        (patched_fixture("login_ok", {"manager_token": ""}, {"success": True}), "mfa_required"),
        ({"requires_mfa": "true"}, "mfa_required"),
        ({"success": True, "isBlocked": True}, "blocked"),
        ({}, "invalid"),
    ],
)
def test_login_reply_edge_cases(payload: Any, kind: str) -> None:
    reply = parse_login_reply(payload)
    assert reply.kind == kind
    assert reply.session_id is None
    assert reply.manager_token is None


@pytest.mark.parametrize("parser", [parse_login_reply, parse_otp_reply])
@pytest.mark.parametrize("payload", ["<html>", None, [], 0])
def test_login_reply_not_an_object(parser: Callable[[Any], object], payload: Any) -> None:
    with pytest.raises(ParseError, match="not an object"):
        parser(payload)


# --- model contract ----------------------------------------------------------------------------


def test_parsed_models_are_frozen() -> None:
    slot = parse_schedules(load_fixture("schedules")).slots[0]
    with pytest.raises(ValidationError):
        slot.enabled = False  # type: ignore[misc]


def test_validation_failures_surface_as_parse_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler_models, "_parse_days", lambda _value: ("Monday",))
    with pytest.raises(ParseError, match="schedules reply has an invalid value") as caught:
        parse_schedules(load_fixture("schedules"))
    assert isinstance(caught.value.__cause__, ValidationError)


# --- fuzzing: the helpers never raise (the parsers themselves: tests/test_fuzz_parsers.py) -------

HUGE_NUMBERS = st.sampled_from([10**20, -(10**20), 2**63, 10**400, 1e308, -1e308, 1e-320])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | HUGE_NUMBERS
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["", "0", "1", "true", "null", "[]", "2025-10-25T01:12:05Z[UTC]", "32"])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
JsonPath = tuple[str | int, ...]


def json_paths(node: Any, prefix: JsonPath = ()) -> list[JsonPath]:
    """Every location in a decoded JSON document, the root included, parents first.

    Into one list: each level returning its own list to be copied into its parent's copied
    every path once per level above it (a deeply nested mutant's paths hundreds of times)."""
    paths: list[JsonPath] = []

    def walk(node: Any, prefix: JsonPath) -> None:
        paths.append(prefix)
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, (*prefix, key))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, (*prefix, index))

    walk(node, prefix)
    return paths


@given(text=st.text() | JSON_VALUES)
def test_network_config_never_raises(text: Any) -> None:
    assert isinstance(parse_network_config(text), tuple)


@given(value=JSON_VALUES)
def test_energy_and_time_helpers_never_raise(value: Any) -> None:
    energy = session_energy_kwh(value)
    assert energy is None or isinstance(energy, float)
    when = _parse_enlighten_time(value)
    assert when is None or when.tzinfo is UTC
