"""The gateway source piece by piece: the real pyenphase against recorded and fake gateways,
the physics checks, the surplus, the token file and the config.

Recorded gateways (tests/fixtures/gateway/<firmware>_<variant>/, shaped from pyenphase's own
fixtures) are served through the fake gateway as they are, a missing file being a 404; the fake's
own replies are held to the same shapes, so the fake stays a gateway pyenphase recognises.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyenphase.ssl import NO_VERIFY_SSL_CONTEXT

from optimizer.config import Config, load_config
from optimizer.fakecloud import FakeClock, FakeCloud
from optimizer.gateway.fake import FakeGateway, FakeGatewayServer
from optimizer.gateway.reading import (
    GatewayReading,
    PhysicsLimits,
    check_reading,
)
from optimizer.gateway.source import GatewaySource
from optimizer.gateway.token import GatewayTokenError, load_token, store_token, token_facts
from optimizer.logsafe import redact
from optimizer.observe.gateway import gateway_surplus
from optimizer.yamlpos import YamlFileError

FIXTURES = Path(__file__).parent / "fixtures" / "gateway"
MIDDAY = datetime(2025, 1, 15, 2, 0, tzinfo=UTC)
LIMITS = PhysicsLimits.for_site(max_current_a=63, voltage_v=230, phases=1)
T0 = datetime(2025, 1, 15, 2, 0, tzinfo=UTC)


def recorded(folder: str) -> dict[str, Any]:
    """A fixture folder as path -> reply (the naming rule of fixtures/gateway/README.md)."""
    replies: dict[str, Any] = {}
    for file in (FIXTURES / folder).iterdir():
        if file.name == "info.xml":
            replies["/info"] = file.read_text(encoding="utf-8")
        else:
            replies["/" + file.stem.replace("_", "/")] = json.loads(file.read_text())
    # The one endpoint whose name has a dot of its own.
    replies["/production.json"] = replies.pop("/production")
    return replies


async def read_once(
    gateway: FakeGateway, tmp_path: Path, now: datetime
) -> tuple[GatewaySource, GatewayReading | None]:
    token = tmp_path / "gateway.token"
    store_token(token, gateway.issue_token())
    async with FakeGatewayServer(gateway) as server:
        source = GatewaySource(
            host=server.host, token_path=token, timeout=timedelta(seconds=5), limits=LIMITS
        )
        read = await source.read(now)
        await source.close()
    return source, read


# --- recorded gateways through the real pyenphase ------------------------------------------------

EXPECTED = {
    # production CT, consumption = production + grid (the gateway's own total), batteries
    # charging at 641 W (the sum of five), their aggregate charge 21 %.
    "8.2.127_metered_battery": {
        "at": datetime.fromtimestamp(1709829517, UTC),
        "production_w": 1714,
        "consumption_w": 1844,
        "net_w": 129,
        "battery_w": -641,
        "battery_soc_pct": 21,
        "consumption_metered": True,
        "features": (
            "production",
            "production meter",
            "total consumption",
            "net consumption",
            "battery",
        ),
    },
    # Only the production CT: no consumption and no grid, said so.
    "7.3.130_production_only": {
        "at": datetime.fromtimestamp(1694549733, UTC),
        "production_w": 3781,
        "consumption_w": None,
        "net_w": None,
        "battery_w": None,
        "battery_soc_pct": None,
        "consumption_metered": False,
        "features": ("production", "production meter"),
    },
}


@pytest.mark.parametrize("folder", sorted(EXPECTED))
async def test_a_recorded_gateway_reads_as_expected(folder: str, tmp_path: Path) -> None:
    want = EXPECTED[folder]
    cloud = FakeCloud(clock=FakeClock(want["at"]), history_days=1)
    gateway = FakeGateway(cloud, recorded=recorded(folder))
    source, reading = await read_once(gateway, tmp_path, want["at"] + timedelta(seconds=2))
    assert reading is not None, source.problem
    assert source.features == want["features"]
    for key in ("at", "production_w", "consumption_w", "net_w", "battery_w", "battery_soc_pct"):
        assert getattr(reading, key) == want[key], key
    assert reading.consumption_metered is want["consumption_metered"]
    assert check_reading(reading, limits=LIMITS).problems == ()


def shape(value: Any) -> Any:
    """Keys all the way down (lists by their first element), values left out."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__ in ("int", "float")  # numbers alike, whichever JSON gave


@pytest.mark.parametrize(
    ("path", "folder"),
    [
        ("/ivp/meters", "8.2.127_metered_battery"),
        ("/ivp/meters/readings", "8.2.127_metered_battery"),
        ("/production.json", "8.2.127_metered_battery"),
        ("/ivp/ensemble/inventory", "8.2.127_metered_battery"),
        ("/ivp/ensemble/secctrl", "8.2.127_metered_battery"),
        ("/ivp/ensemble/power", "8.2.127_metered_battery"),
        ("/api/v1/production", "7.3.130_production_only"),
    ],
)
def test_the_fake_answers_in_the_recorded_shapes(path: str, folder: str) -> None:
    cloud = FakeCloud(clock=FakeClock(MIDDAY), history_days=1)
    fake = FakeGateway(cloud, battery=True).reply(path, cloud.now())
    assert shape(fake) == shape(recorded(folder)[path])


def test_the_fake_production_only_variant_matches_its_recording() -> None:
    cloud = FakeCloud(clock=FakeClock(MIDDAY), history_days=1)
    gateway = FakeGateway(cloud, consumption_meter=False)
    record = recorded("7.3.130_production_only")
    meters = gateway.reply("/ivp/meters", cloud.now())
    assert [m["state"] for m in meters] == [m["state"] for m in record["/ivp/meters"]]
    production = gateway.reply("/production.json", cloud.now())
    assert [c["activeCount"] for c in production["consumption"]] == [0, 0]
    assert shape(production) == shape(record["/production.json"])


async def test_the_fake_gateway_tells_the_clouds_story(tmp_path: Path) -> None:
    """One site model: the gateway's power now is the cloud's curves at that instant."""
    cloud = FakeCloud(clock=FakeClock(MIDDAY), history_days=1)
    cloud.update_charger(plugged_in=True, charging=True, level=16)
    _, reading = await read_once(FakeGateway(cloud), tmp_path, MIDDAY)
    assert reading is not None
    t = MIDDAY.timestamp()
    assert reading.production_w == round(cloud.model.curves.pv_w(t))
    assert reading.consumption_w == pytest.approx(cloud.model.curves.load_w(t) + 16 * 230, abs=1)


async def test_a_gateway_that_times_out_is_reported_not_raised(tmp_path: Path) -> None:
    cloud = FakeCloud(clock=FakeClock(MIDDAY), history_days=1)
    gateway = FakeGateway(cloud)
    gateway.faults.add("timeout", path="/ivp/meters/readings", delay_s=5.0, times=0)
    token = tmp_path / "gateway.token"
    store_token(token, gateway.issue_token())
    async with FakeGatewayServer(gateway) as server:
        source = GatewaySource(
            host=server.host, token_path=token, timeout=timedelta(seconds=1), limits=LIMITS
        )
        assert await source.read(MIDDAY) is None
        await source.close()
    assert source.problem == "no answer within 1 s"
    assert source.down_since == MIDDAY
    assert source.next_try == MIDDAY + timedelta(seconds=30)


async def test_without_a_token_file_it_says_how_to_get_one(tmp_path: Path) -> None:
    cloud = FakeCloud(clock=FakeClock(MIDDAY), history_days=1)
    async with FakeGatewayServer(FakeGateway(cloud)) as server:
        source = GatewaySource(
            host=server.host,
            token_path=tmp_path / "missing.token",
            timeout=timedelta(seconds=5),
            limits=LIMITS,
        )
        assert await source.read(MIDDAY) is None
        await source.close()
    assert source.token_refused
    assert "entrez.enphaseenergy.com" in (source.problem or "")
    assert "evopt gateway token" in (source.problem or "")


# --- physics -------------------------------------------------------------------------------------


def reading(**values: Any) -> GatewayReading:
    base: dict[str, Any] = {"at": T0, "production_w": 4000.0, "consumption_w": 1500.0}
    base["net_w"] = base["consumption_w"] - base["production_w"]
    base.update(values)
    if "net_w" not in values and base["consumption_w"] is not None:
        base["net_w"] = base["consumption_w"] - (base["production_w"] or 0.0)
    return GatewayReading(**base)


def test_night_noise_is_no_production_and_a_large_negative_is_not_trusted() -> None:
    assert check_reading(reading(production_w=-12.0), limits=LIMITS).reading.production_w == 0
    checked = check_reading(reading(production_w=-900.0, net_w=2400.0), limits=LIMITS)
    assert checked.reading.production_w is None
    assert "negative production -900 W" in checked.problems[0]


def test_consumption_beyond_the_breaker_is_not_trusted() -> None:
    checked = check_reading(reading(consumption_w=60_000.0), limits=LIMITS)
    assert checked.reading.consumption_w is None
    assert "the site's breaker" in checked.problems[0]


def test_meters_that_disagree_leave_the_house_unknown() -> None:
    checked = check_reading(reading(net_w=2000.0), limits=LIMITS)
    assert checked.reading.consumption_w is None
    assert "the meters disagree" in checked.problems[0]


def test_an_unexplained_jump_waits_for_the_next_reading() -> None:
    first = check_reading(reading(), limits=LIMITS).reading
    spike = reading(at=T0 + timedelta(seconds=30), consumption_w=12_000.0)
    held = check_reading(spike, limits=LIMITS, trusted=first)
    assert held.reading == first  # the last trusted reading stands in
    assert held.pending is not None
    assert "waiting for the next reading" in held.problems[-1]
    # The next reading agrees with the jump: it was real (an oven and a heat pump).
    again = reading(at=T0 + timedelta(seconds=60), consumption_w=11_900.0)
    confirmed = check_reading(again, limits=LIMITS, trusted=first, pending=held.pending)
    assert confirmed.pending is None
    assert confirmed.reading.consumption_w == 11_900.0
    # Or it goes back: the spike was a glitch and never counted.
    back = reading(at=T0 + timedelta(seconds=60), consumption_w=1520.0)
    glitch = check_reading(back, limits=LIMITS, trusted=first, pending=held.pending)
    assert glitch.pending is None
    assert glitch.reading.consumption_w == 1520.0


def test_the_chargers_own_change_explains_a_step() -> None:
    first = check_reading(reading(), limits=LIMITS).reading
    car = reading(at=T0 + timedelta(seconds=30), consumption_w=1500.0 + 32 * 230 * 1.0)
    assert check_reading(car, limits=LIMITS, trusted=first, charger_change_w=7360).pending is None
    assert check_reading(car, limits=LIMITS, trusted=first).pending is not None


@given(
    production=st.floats(-20_000, 80_000),
    consumption=st.floats(-20_000, 80_000),
    net=st.floats(-80_000, 80_000),
)
def test_a_checked_reading_is_always_physically_possible(
    production: float, consumption: float, net: float
) -> None:
    raw = GatewayReading(at=T0, production_w=production, consumption_w=consumption, net_w=net)
    fixed = check_reading(raw, limits=LIMITS).reading
    if fixed.production_w is not None:
        assert fixed.production_w >= 0
    if fixed.consumption_w is not None:
        assert 0 <= fixed.consumption_w <= LIMITS.max_site_w
    if None not in (fixed.production_w, fixed.consumption_w, fixed.net_w):
        assert fixed.production_w is not None
        assert fixed.consumption_w is not None
        assert fixed.net_w is not None
        tolerance = max(300, 0.1 * max(fixed.production_w, fixed.consumption_w)) + LIMITS.noise_w
        assert abs(fixed.consumption_w - fixed.production_w - fixed.net_w) <= tolerance


@given(
    pv=st.floats(0, 20_000), house=st.floats(0, 20_000), ev=st.sampled_from([0.0, 1380.0, 7360.0])
)
def test_the_gateway_surplus_takes_the_car_out_of_the_house(
    pv: float, house: float, ev: float
) -> None:
    measured = GatewayReading(
        at=T0, production_w=pv, consumption_w=house + ev, net_w=house + ev - pv
    )
    surplus = gateway_surplus(
        measured, now=T0 + timedelta(seconds=3), charger_draw_w=ev, max_age=timedelta(minutes=45)
    )
    assert surplus.source == "gateway"
    assert surplus.age_s == 3
    assert surplus.pv_minus_house_w == pytest.approx(pv - house, abs=1e-6)


def test_a_stale_reading_is_unknown() -> None:
    old = reading(at=T0 - timedelta(hours=1))
    surplus = gateway_surplus(old, now=T0, charger_draw_w=0, max_age=timedelta(minutes=45))
    assert surplus.pv_minus_house_w is None


# --- the token file ------------------------------------------------------------------------------


def fake_token(tmp_path: Path) -> str:
    cloud = FakeCloud(clock=FakeClock(MIDDAY), history_days=1)
    return FakeGateway(cloud).issue_token()


def test_a_stored_token_is_0600_and_says_when_it_expires(tmp_path: Path) -> None:
    token = fake_token(tmp_path)
    path = tmp_path / "state" / "gateway.token"
    facts = store_token(path, token)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert facts.user_type == "owner"
    assert facts.expires_at == MIDDAY + timedelta(days=365)
    assert load_token(path) == token
    assert token not in redact(f"Authorization: Bearer {token} in {token[:40]}..{token}")


def test_a_token_file_others_can_read_is_made_private(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = fake_token(tmp_path)
    path = tmp_path / "gateway.token"
    path.write_text(token)
    os.chmod(path, 0o644)
    assert load_token(path) == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "readable by others" in caplog.text
    assert token not in caplog.text


@pytest.mark.parametrize("text", ["not-a-token", "a.b.c", "a.bnVsbA.c"])
def test_what_is_not_a_token_is_refused(text: str) -> None:
    with pytest.raises(GatewayTokenError):
        token_facts(text)


def test_an_empty_token_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.token"
    path.write_text("")
    path.chmod(0o600)
    with pytest.raises(GatewayTokenError, match="is empty"):
        load_token(path)


# --- config --------------------------------------------------------------------------------------


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_gateway_source_needs_a_gateway_block(tmp_path: Path) -> None:
    path = write_config(tmp_path, "surplus:\n  source: gateway\n")
    with pytest.raises(YamlFileError) as err:
        load_config(path)
    assert f"{path}:2:3:" in str(err.value)
    assert "add gateway.host" in str(err.value)


def test_a_gateway_host_with_a_scheme_is_refused_with_what_is_valid(tmp_path: Path) -> None:
    path = write_config(tmp_path, "gateway:\n  host: https://envoy.local\n")
    with pytest.raises(YamlFileError) as err:
        load_config(path)
    assert f"{path}:2:3:" in str(err.value)
    assert "envoy.local or host:port" in str(err.value)


def test_each_site_has_its_own_gateway_and_token(tmp_path: Path) -> None:
    text = (
        "surplus:\n  source: gateway\nservice:\n  state_dir: state\nsites:\n"
        "  - name: home\n    enlighten: {site_id: 1}\n    gateway: {host: 192.168.1.50}\n"
        "  - name: farm\n    enlighten: {site_id: 2}\n"
        "    gateway: {host: envoy.local, token_file: farm.token}\n"
    )
    config = load_config(write_config(tmp_path, text))
    home, farm = config.site_configs()
    assert home.gateway is not None
    assert home.gateway.host == "192.168.1.50"
    assert home.gateway_token_path == tmp_path / "state" / "gateway-home.token"
    assert farm.gateway_token_path == tmp_path / "farm.token"
    missing = text.replace("    gateway: {host: 192.168.1.50}\n", "")
    with pytest.raises(YamlFileError) as err:
        load_config(write_config(tmp_path, missing))
    assert "sites[0]: surplus.source is 'gateway' but this site has no 'gateway:'" in str(err.value)


def test_the_single_site_token_lives_in_the_state_dir(tmp_path: Path) -> None:
    text = "surplus:\n  source: gateway\ngateway:\n  host: envoy.local\nservice:\n  state_dir: s\n"
    config: Config = load_config(write_config(tmp_path, text))
    assert config.gateway_token_path == tmp_path / "s" / "gateway.token"


# --- the fake's admin routes (what the demo or a subprocess test drives it with) ------------------


async def test_the_admin_routes_script_faults_tokens_and_meters() -> None:
    cloud = FakeCloud(clock=FakeClock(MIDDAY), history_days=1)
    gateway = FakeGateway(cloud)
    connector = aiohttp.TCPConnector(ssl=NO_VERIFY_SSL_CONTEXT)
    async with (
        FakeGatewayServer(gateway) as server,
        aiohttp.ClientSession(connector=connector) as http,
    ):
        admin = f"https://{server.host}/__fake__/"
        async with http.post(admin + "token", json={"lifetime_s": 60}) as reply:
            token = (await reply.json())["token"]
        headers = {"Authorization": f"Bearer {token}"}
        meters = f"https://{server.host}/ivp/meters"
        async with http.get(meters, headers=headers) as reply:
            assert reply.status == 200
        rule = {"kind": "status", "path": "/ivp/meters", "status": 503, "times": 1}
        async with http.post(admin + "faults", json=rule) as reply:
            assert reply.status == 200
        async with http.get(meters, headers=headers) as reply:
            assert reply.status == 503
        async with http.post(admin + "meters", json={"consumption": False}) as reply:
            assert await reply.json() == {"consumption": False}
        async with http.get(meters, headers=headers) as reply:
            assert [m["state"] for m in await reply.json()] == ["enabled", "disabled"]
        async with http.post(admin + "expire_tokens") as reply:
            assert reply.status == 200
        async with http.get(meters, headers=headers) as reply:
            assert reply.status == 401
        async with http.get(f"https://{server.host}/info") as reply:
            assert reply.status == 200  # /info needs no token
    assert gateway.requests["/ivp/meters"] == 4


def test_readings_that_fail_a_check_are_logged_once_while_it_lasts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="optimizer.gateway.source")
    source = GatewaySource(
        host="envoy.local", token_path=tmp_path / "t", timeout=timedelta(seconds=1), limits=LIMITS
    )
    bad = [reading(at=T0 + timedelta(seconds=30 * i), net_w=2000.0) for i in range(3)]
    for each in bad:
        assert source.check(each, charger_draw_w=0).reading.consumption_w is None
    source.check(reading(at=T0 + timedelta(seconds=90)), charger_draw_w=0)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("not trusted: the meters disagree" in m for m in messages) == 1
    assert sum("pass the physics checks again" in m for m in messages) == 1
