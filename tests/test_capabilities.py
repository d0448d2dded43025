"""Capabilities before commands (2026 reference section 8).

Parsing and merging (fixtures), the client's reads (aioresponses: the exact body and the
401/403 retry without the bearer), properties (snapped levels on the grid and in range; no 3x
power estimate when the phases in use are unknown), and end to end against the fake's 2026
profile: `evopt status` reports session authentication, `evopt charge start` refuses without
``--force``, and the service never sends a start to such a charger.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aioresponses import aioresponses
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from optimizer.engine.snapshot import ChargerView
from optimizer.enlighten.capabilities import (
    NO_FLAGS,
    FeatureFlags,
    merge_capabilities,
    parse_charger_config,
    parse_feature_flags,
)
from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.errors import (
    AuthError,
    ForbiddenError,
    InvalidLevelError,
    ServiceUnavailableError,
)
from optimizer.enlighten.models import ChargerSummary, parse_summary
from optimizer.fakecloud import FakeCloud, FakeCloudServer
from optimizer.fakecloud.profile import LEGACY_2024
from optimizer.limits import Limits
from optimizer.observe.view import charger_view
from tests.cli_env import SITE_ID, Env, owner_client
from tests.conftest import ENLIGHTEN_BASE_URL as BASE
from tests.fixtures import load_fixture
from tests.test_engine_sim import Sim, decided, make_charger, policies
from tests.test_observe import NESTED, SUMMARY
from tests.test_service import ALWAYS_16, MIDDAY, World, world_at

SN = "<sn>"
FAKE_SN = "EV9876543210"
FLAGS_URL = f"{BASE}/service/evse_management/api/v1/config/feature-flags?site_id={SITE_ID}"
CONFIG_URL = (
    f"{BASE}/service/evse_controller/api/v1/{SITE_ID}/ev_chargers/{FAKE_SN}/ev_charger_config"
)


def summary(name: str) -> ChargerSummary:
    return parse_summary(load_fixture(name))


# --- parsing and merging ------------------------------------------------------------------------


def test_per_charger_flags_first_then_site() -> None:
    flags = parse_feature_flags(load_fixture("feature_flags_2026"))
    assert flags.known
    assert flags.flag(SN, "max_current_config_support") is True
    assert flags.flag(SN, "evse_phase_switching") is True  # site-wide
    assert flags.flag("other", "max_current_config_support") is None
    own = parse_feature_flags(load_fixture("feature_flags_per_serial"))
    able = merge_capabilities(SN, flags=own)
    assert able.amps_control is True  # evse_charge_level_control, the fallback
    assert able.modes is False  # the serial's own flag beats the site's true
    assert able.session_auth is False  # neither feature on this charger
    assert merge_capabilities(SN, flags=own, runtime={"amps_control": False}).amps_control is False


def test_site_only_and_missing_flags() -> None:
    site = merge_capabilities(
        SN, flags=parse_feature_flags(load_fixture("feature_flags_site_only"))
    )
    assert (site.amps_control, site.modes, site.session_auth) == (None, True, None)
    missing = parse_feature_flags(load_fixture("feature_flags_missing"))
    assert not missing.known
    assert merge_capabilities(SN, flags=missing) == merge_capabilities(SN, flags=NO_FLAGS)


@pytest.mark.parametrize(
    ("fixture", "app", "rfid", "pending", "switching"),
    [
        ("charger_config_2026", True, None, False, "auto"),
        ("charger_config_pending", None, True, True, "auto"),  # reqValue counts while pending
        ("charger_config_null", False, None, False, None),  # null is off or unset
    ],
)
def test_charger_config_settled_pending_and_null(
    fixture: str, app: bool | None, rfid: bool | None, pending: bool, switching: str | None
) -> None:
    config = parse_charger_config(load_fixture(fixture))
    able = merge_capabilities(SN, config=config)
    assert (able.session_auth_app, able.session_auth_rfid) == (app, rfid)
    assert able.session_auth_pending is pending
    assert able.phase_switching == switching
    assert able.session_auth is (app or rfid or (False if app is False else None))
    assert config.value("DefaultChargeLevel") is None


def test_summary_additions_and_the_80r() -> None:
    plain = summary("summary_2026")
    assert plain.lifetime_consumption_wh == pytest.approx(1936050.5)
    assert (plain.phase_mode, plain.grid_type, plain.breaker_rating_amps) == (1, 2, 32)
    assert plain.rated_current_amps == 32
    big = summary("summary_2026_80r")
    assert (big.min_amps, big.max_amps, big.phase_count) == (16, 80, 3)
    limits = Limits.for_charger(big, site_max_amps=None)
    with pytest.raises(InvalidLevelError):
        limits.validate(8)  # the 80R's minimum is 16 A
    assert limits.snap(8) == 16
    steps = Limits.for_charger(summary("summary_2026_granularity"), site_max_amps=None)
    assert (steps.snap(7), steps.snap(9.2), steps.snap(40)) == (6, 10, 32)
    with pytest.raises(InvalidLevelError, match="steps of 2 A"):
        steps.validate(7)


def test_three_phases_installed_is_only_a_bound() -> None:
    big = summary("summary_2026_80r")
    flags = parse_feature_flags(load_fixture("feature_flags_2026"))
    config = parse_charger_config(load_fixture("charger_config_2026"))  # phase switching: auto
    able = merge_capabilities(SN, summary=big, flags=flags, config=config)
    assert (able.phases_in_use, able.estimate_phases, able.bound_phases) == (None, 1, 3)
    assert "phases in use unknown" in able.describe()
    fixed = FeatureFlags(site={"evse_phase_switching": False})
    assert merge_capabilities(SN, summary=big, flags=fixed).phases_in_use == 3


# --- properties ---------------------------------------------------------------------------------


@given(
    low=st.integers(min_value=1, max_value=40),
    span=st.integers(min_value=0, max_value=80),
    step=st.integers(min_value=1, max_value=16),
    site=st.one_of(st.none(), st.integers(min_value=1, max_value=120)),
    wanted=st.floats(min_value=-50, max_value=300, allow_nan=False),
)
def test_snapped_levels_are_always_on_the_grid_and_in_range(
    low: int, span: int, step: int, site: int | None, wanted: float
) -> None:
    limits = Limits.within(low, low + span, step, site)
    level = limits.snap(wanted)
    if limits.feasible:
        assert limits.low <= level <= limits.high
        assert (level - limits.min_amps) % limits.granularity == 0
        assert limits.allows(level)
        assert abs(level - wanted) <= max(abs(limits.low - wanted), abs(limits.high - wanted))


@given(
    phases=st.sampled_from([None, 1, 3]),
    switching=st.sampled_from([None, "auto", "disabled", "3"]),
    site_switch=st.sampled_from([None, True, False]),
    own_switch=st.sampled_from([None, True, False]),
    voltage=st.sampled_from([230, 240, 120]),
    amps=st.integers(min_value=6, max_value=80),
)
def test_power_is_never_estimated_3x_when_phases_in_use_are_unknown(
    *,
    phases: int | None,
    switching: str | None,
    site_switch: bool | None,
    own_switch: bool | None,
    voltage: int,
    amps: int,
) -> None:
    flags = FeatureFlags(
        site={} if site_switch is None else {"evse_phase_switching": site_switch},
        chargers={} if own_switch is None else {NESTED.sn: {"phase_config_support": own_switch}},
    )
    config = parse_charger_config(
        {"data": [] if switching is None else [{"key": "phase_switch_config", "value": switching}]}
    )
    with_phases = SUMMARY.model_copy(update={"phase_count": phases, "operating_voltage": voltage})
    able = merge_capabilities(NESTED.sn, summary=with_phases, flags=flags, config=config)
    view: ChargerView = charger_view(NESTED, with_phases, capabilities=able)
    assert view.max_phases >= view.phases
    if able.phases_in_use is None:
        assert view.watts_per_amp == pytest.approx(voltage)
    can_switch = switching == "auto" or (site_switch is not False and own_switch is not False)
    if phases == 3 and can_switch:
        assert view.watts_per_amp * amps == pytest.approx(voltage * amps)  # never 3x


# --- the client ---------------------------------------------------------------------------------


def sent(mock: aioresponses, method: str, url: str) -> list[Any]:
    return list(mock.requests.get((method, URL(url)), []))


async def test_feature_flags_read_and_optional(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.get(FLAGS_URL, payload=load_fixture("feature_flags_2026"))
    flags = await client.feature_flags(SITE_ID)
    assert flags.flag(SN, "iqevse_rfid") is True
    for status in (401, 403, 404):
        mock_cloud.get(FLAGS_URL, status=status, payload={"message": "nope"})
        assert await client.feature_flags(SITE_ID) == NO_FLAGS
    assert not [k for k in mock_cloud.requests if "login" in str(k[1])]  # no re-login


async def test_charger_config_body_and_the_retry_without_the_bearer(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.post(CONFIG_URL, status=401, payload={"message": "Not Authorized"})
    mock_cloud.post(CONFIG_URL, payload=load_fixture("charger_config_2026"))

    config = await client.charger_config(SITE_ID, FAKE_SN)

    assert config.enabled("sessionAuthentication") is True
    first, second = sent(mock_cloud, "POST", CONFIG_URL)
    assert first.kwargs["json"] == load_fixture("charger_config_request")
    assert second.kwargs["json"] == load_fixture("charger_config_request")
    assert "Authorization" in first.kwargs["headers"]
    assert "Authorization" not in second.kwargs["headers"]
    assert "e-auth-token" not in second.kwargs["headers"]
    assert "Cookie" in second.kwargs["headers"]


async def test_charger_config_refusals_and_outages(
    mock_cloud: aioresponses, client: EnlightenClient
) -> None:
    mock_cloud.post(CONFIG_URL, status=403, payload={})
    mock_cloud.post(CONFIG_URL, status=401, payload={})
    with pytest.raises(ForbiddenError) as refused:
        await client.charger_config(SITE_ID, FAKE_SN)
    assert not isinstance(refused.value, AuthError)  # optional: no re-login, no exit 3
    mock_cloud.post(CONFIG_URL, status=404, payload={})
    assert (await client.charger_config(SITE_ID, FAKE_SN)).settings == {}
    mock_cloud.post(CONFIG_URL, status=503, payload={})
    with pytest.raises(ServiceUnavailableError):
        await client.charger_config(SITE_ID, FAKE_SN)
    assert len(sent(mock_cloud, "POST", CONFIG_URL)) == 4  # 5xx not retried here


# --- end to end: the fake's 2026 profile ---------------------------------------------------------


def test_status_reports_session_authentication(env: Env) -> None:
    env.cloud.update_charger(session_auth_rfid=True, phase_switch_config="auto")
    (record,) = env.json("status")
    assert record["session_auth"] is True
    caps = record["capabilities"]
    assert caps["session_auth_kinds"] == ["RFID"]
    assert (caps["amps_control"], caps["min_amps"], caps["max_amps"]) == (True, 6, 32)
    assert caps["phase_switching"] == "auto"
    assert {"sn", "session_kwh", "mode", "dlb_active"} <= set(record)  # the contract keys stay
    code, out, err = env.run("status")
    assert code == 0, err
    assert "session authentication on (RFID)" in out
    assert "no energy flows until someone authenticates" in out


def test_status_without_the_capability_routes(env: Env) -> None:
    env.cloud.set_profile(**LEGACY_2024)
    (record,) = env.json("status")
    assert record["session_auth"] is None
    assert record["capabilities"]["min_amps"] == 6


def test_charge_start_refuses_a_session_auth_charger_unless_forced(env: Env) -> None:
    env.cloud.update_charger(plugged_in=True, session_auth_app=True)
    code, _, err = env.run("charge", "start")
    assert code == 1
    assert "session authentication" in err
    assert "--force" in err
    assert "Traceback" not in err
    assert env.cloud.requests("start_charging") == []

    code, _, err = env.run("charge", "start", "--force")
    assert code == 0, err
    assert "warning" in err
    assert "no energy flows" in err
    assert len(env.cloud.requests("start_charging")) == 1
    env.cloud.advance(1800)
    (record,) = env.json("status")
    assert record["connector_status"] == "SUSPENDED_EVSE"  # accepted, but nothing flows
    (charger,) = env.cloud.snapshot()["chargers"]
    assert charger["charging"] is True
    assert charger["session_energy_wh"] == 0
    env.cloud.update_charger(session_authenticated=True)  # someone taps a card
    env.cloud.advance(600)
    assert env.cloud.snapshot()["chargers"][0]["session_energy_wh"] > 0


async def test_the_fake_reports_a_pending_config_write(env: Env) -> None:
    async with EnlightenClient(
        base_url=env.base_url,
        email=env.cloud.account.email,
        password_provider=lambda: env.cloud.account.password,
    ) as client:
        await client.login()
        path = CONFIG_URL.removeprefix(BASE)
        body = [{"key": "sessionAuthentication", "value": "enabled"}]
        reply = await client.transport.request("PUT", path, family="t", json_body=body)
        assert reply.data["data"][0] == {
            "key": "sessionAuthentication",
            "value": "disabled",
            "reqValue": "enabled",
            "status": 2,
        }
        config = await client.charger_config(SITE_ID, FAKE_SN)
        assert config.pending("sessionAuthentication")
        assert config.enabled("sessionAuthentication") is True  # the requested value counts
        env.cloud.advance(120)
        settled = await client.charger_config(SITE_ID, FAKE_SN)
        assert not settled.pending("sessionAuthentication")
        assert settled.enabled("sessionAuthentication") is True


@pytest.fixture
async def midday(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    async for world in world_at(MIDDAY, tmp_path, monkeypatch):
        yield world


async def test_the_service_never_starts_a_session_auth_charger(
    midday: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    midday.cloud.update_charger(session_auth_app=True)
    service = midday.service(midday.config(ALWAYS_16))
    assert await service.run(max_ticks=6) == 0

    assert midday.cloud.requests("start_charging") == []
    rows = midday.rows("SELECT * FROM decisions WHERE target = 'charging' ORDER BY id")
    assert rows
    assert all(r["action"] == "hold" for r in rows)
    assert "session authentication is on" in rows[0]["reason"]
    inputs = json.loads(rows[0]["inputs"])
    assert inputs["charger"]["session_auth"] is True
    warnings = [r for r in caplog.records if "session authentication on" in r.getMessage()]
    assert len(warnings) == 1  # logged once, not every tick
    # Reads stay within the cadence: flags once per 30 min, the config once per hour.
    assert len(midday.cloud.requests("/feature-flags")) == 1
    assert len(midday.cloud.requests("/ev_charger_config")) == 1

    midday.cloud.update_charger(session_auth_app=False)
    again = midday.service(midday.config(ALWAYS_16))
    assert await again.run(max_ticks=2) == 0
    assert len(midday.cloud.requests("start_charging")) == 1


# --- the engine ---------------------------------------------------------------------------------

SUN = {"name": "sun", "kind": "excess_solar", "start_delay": "0s", "stop_delay": "0s"}


def test_the_engine_holds_starts_to_a_session_auth_charger_but_lets_stops_through() -> None:
    sim = Sim(policies(SUN), charger=make_charger(session_auth=True))
    held = decided(sim.tick(0, surplus=3000), "charging")
    assert held.action == "hold"
    assert held.policy == "sun"
    assert "session authentication is on" in held.reason
    assert "no start" in held.reason
    assert held.inputs["charger"]["session_auth"] is True
    # Someone authenticated and it charges: a level change restarts the session, so it holds;
    # a stop is still sent.
    level = decided(sim.tick(10, charging=True, amps=13, surplus=5000), "charging")
    assert level.action == "hold"
    stop = decided(sim.tick(20, charging=True, amps=13, surplus=-2000), "charging")
    assert stop.action == "stop"


def test_the_engine_sends_no_level_to_a_charger_without_amps_control() -> None:
    sim = Sim(policies(SUN), charger=make_charger(amps_control=False))
    start = decided(sim.tick(0, surplus=3000), "charging")
    assert start.action == "start"
    assert "amps" not in start.params
    assert "takes no amps from the cloud" in start.reason
    change = decided(sim.tick(10, charging=True, amps=13, surplus=6000), "charging")
    assert change.action == "hold"


async def test_the_login_page_on_an_optional_read_logs_in_again(tmp_path: Path) -> None:
    """The session ended and the cloud answers the flags or the charger config with its login
    page (field notes): one re-login and the read again, as every other read does. A 401 there
    still means "not available" (above). The fault soak met a tick whose only request was the
    flags read: without the re-login it failed tick after tick until another read logged in."""
    cloud = FakeCloud()
    async with FakeCloudServer(cloud) as server, owner_client(server.base_url, tmp_path) as client:
        await client.status(SITE_ID)
        logins = len(cloud.requests("/login/login.json"))
        cloud.add_fault("html_login", path="feature-flags", times=1)
        flags = await client.feature_flags(SITE_ID)
        assert flags != NO_FLAGS
        assert len(cloud.requests("/login/login.json")) == logins + 1
        cloud.add_fault("html_login", path="ev_charger_config", times=1)
        config = await client.charger_config(SITE_ID, cloud.charger().sn)
        assert config.settings
        assert len(cloud.requests("/login/login.json")) == logins + 2
