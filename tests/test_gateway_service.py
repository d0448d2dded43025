"""The service against the fake cloud plus the fake IQ Gateway, both on one site model and clock.

The real pyenphase reads the fake gateway over https (no mock): the surplus follows a step in
one tick, a gateway that goes away hands over to the cloud's buckets in the same tick (no failed
tick) and takes over again when it answers, an expired token is set up once more and then
reported, a gateway without consumption meters takes the house's load from the buckets, and the
cloud's surplus reads stop while the gateway answers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from optimizer.config import Config, GatewayConfig, SurplusConfig
from optimizer.gateway.fake import FakeGateway, FakeGatewayServer
from optimizer.gateway.fakepayloads import flows_at
from optimizer.gateway.token import store_token, token_facts
from optimizer.service import Service
from optimizer.service.heartbeat import judge
from tests.cli_env import SITE_ID
from tests.test_fleet_e2e import Sites, fleet_clock, sites  # noqa: F401 - the fixture
from tests.test_service import HOLD_ONLY, MIDDAY, World, world_at

SURPLUS_PATHS = ("/lifetime_energy", "/get_latest_power")
# Follows the surplus at once: no delays, no deadband, as many changes as it likes.
FOLLOW = """\
policies:
  - name: follow
    kind: excess_solar
    variant: pv
    min_amps: 6
    max_amps: 32
    reserve_w: 0
    start_delay: 0s
    stop_delay: 0s
    min_on_time: 0s
    min_off_time: 0s
    deadband_amps: 0
    max_changes_per_hour: 60
"""


@dataclass
class Site:
    world: World
    gateway: FakeGateway
    server: FakeGatewayServer
    token_path: Path

    def config(self, rules: str = FOLLOW, *, source: str = "gateway") -> Config:
        base = self.world.config(rules)
        gateway = GatewayConfig(host=self.server.host, token_file=self.token_path, timeout="20s")
        surplus = SurplusConfig(source=source)  # type: ignore[arg-type]
        return base.model_copy(update={"surplus": surplus, "gateway": gateway})

    def service(self, config: Config) -> Service:
        return self.world.service(config)

    def surplus_reads(self) -> int:
        return sum(len(self.world.cloud.requests(path)) for path in SURPLUS_PATHS)

    def inputs(self) -> list[dict[str, Any]]:
        return [json.loads(row["inputs"]) for row in self.world.rows()]

    def house_and_pv_now(self) -> tuple[float, float]:
        cloud = self.world.cloud
        with cloud.lock:
            now = cloud.clock.timestamp()
            flows = flows_at(cloud.model, now)
            return flows.pv_w, cloud.model.curves.load_w(now)


@pytest.fixture
async def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Site]:
    async for world in world_at(MIDDAY, tmp_path, monkeypatch):
        gateway = FakeGateway(world.cloud)
        token_path = tmp_path / "gateway.token"
        store_token(token_path, gateway.issue_token())
        async with FakeGatewayServer(gateway) as server:
            yield Site(world, gateway, server, token_path)


def dim_the_sun(site: Site, factor: float) -> None:
    """A cloud passes from now on: PV falls to ``factor`` of what it was."""
    curves = site.world.cloud.model.curves
    with site.world.cloud.lock:
        curves.pv_peak_w *= factor


async def test_the_surplus_follows_a_step_within_one_tick(site: Site) -> None:
    service = site.service(site.config())
    first = await service.tick()
    assert first.problem is None
    pv, load = site.house_and_pv_now()
    [before] = [i for i in site.inputs() if i.get("charger")][-1:]
    assert before["surplus_source"] == "gateway"
    assert before["surplus_age_s"] <= 1
    assert before["surplus_w"] == pytest.approx(pv - load, abs=2)
    started = site.world.cloud.charger()
    assert started.charging
    assert started.level > 6

    site.world.cloud.advance(30)
    dim_the_sun(site, 0.25)
    pv, load = site.house_and_pv_now()
    second = await service.tick()
    assert second.problem is None
    after = site.inputs()[-1]
    # The very next tick saw the new surplus, to the watt, with the car's draw taken out.
    assert after["surplus_w"] == pytest.approx(pv - load, abs=2)
    assert after["surplus_w"] < before["surplus_w"] - 2000
    acted = [a.decision.action for a in second.acted]
    assert set(acted) & {"stop", "set_amps"}, acted
    assert site.surplus_reads() == 0
    await service.shutdown()


async def test_the_gateway_going_away_falls_back_without_a_failed_tick_and_comes_back(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    service = site.service(site.config())
    assert (await service.tick()).surplus_source == "gateway"
    assert site.surplus_reads() == 0

    await site.server.stop()  # unplugged from the LAN: connections are refused
    caplog.set_level(logging.INFO)
    reports = []
    for _ in range(3):
        site.world.cloud.advance(30)
        reports.append(await service.tick())
    assert all(r.problem is None for r in reports)  # no failed tick
    assert [r.surplus_source for r in reports] == [
        "lifetime_energy (gateway unreachable since 13:00)"
    ] * 3
    assert "surplus from lifetime_energy (gateway unreachable since 13:00)" in reports[0].status
    fallback = site.inputs()[-1]
    assert fallback["surplus_source"] == "lifetime_energy"
    assert fallback["surplus_w"] is not None  # the buckets, read in that same tick
    assert len(site.world.cloud.requests("/lifetime_energy")) == 1
    warnings = [r for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(warnings) == 1  # logged once, not every tick

    [beat] = site.world.rows("SELECT value FROM state WHERE key LIKE 'service:%'")
    health = judge(json.loads(beat["value"]), now=reports[-1].at)
    assert health.surplus_source == "lifetime_energy (gateway unreachable since 13:00)"

    await site.server.start()  # back on the same address
    site.world.cloud.advance(60)  # past the pause after the last failure
    back = await service.tick()
    assert back.problem is None
    assert back.surplus_source == "gateway"
    assert site.inputs()[-1]["surplus_source"] == "gateway"
    assert any("answers again" in r.getMessage() for r in caplog.records)
    await service.shutdown()


async def test_an_expired_token_is_set_up_again_once_then_reported(site: Site) -> None:
    service = site.service(site.config())
    await service.tick()
    # A one-off 401 (a firmware update, a reboot): one new setup with the stored token works.
    site.gateway.faults.add("status", path="/ivp/meters/readings", status=401, times=1)
    site.world.cloud.advance(30)
    assert (await service.tick()).surplus_source == "gateway"
    assert site.gateway.requests["/auth/check_jwt"] == 2

    site.gateway.expire_tokens()  # the year is over
    site.world.cloud.advance(30)
    report = await service.tick()
    assert report.problem is None
    assert report.surplus_source == "lifetime_energy (gateway refused the token since 13:01)"
    assert "store it with `evopt gateway token`" in report.status
    assert service.gateway is not None
    assert service.gateway.token_refused

    store_token(site.token_path, site.gateway.issue_token())  # the owner pastes a new one
    site.world.cloud.advance(60)
    assert (await service.tick()).surplus_source == "gateway"
    await service.shutdown()


async def test_a_gateway_without_consumption_meters_takes_the_house_from_the_buckets(
    site: Site,
) -> None:
    site.gateway.consumption_meter = False
    site.world.cloud.advance(7 * 60)  # 13:07: the last complete bucket ended at 13:00
    service = site.service(site.config())
    report = await service.tick()
    assert report.problem is None
    inputs = site.inputs()[-1]
    assert inputs["surplus_source"] == "gateway"
    # PV from the gateway now, the house from the last complete bucket (so it has an age).
    assert inputs["pv_age_s"] <= 1
    assert inputs["house_age_s"] == 7 * 60
    assert len(site.world.cloud.requests("/lifetime_energy")) == 1
    assert len(site.world.cloud.requests("/get_latest_power")) == 0
    await service.shutdown()


async def test_a_car_at_a_level_nobody_here_set_stays_in_the_house(site: Site) -> None:
    """Started from the app at 16 A: the status does not say the level, so the gateway's
    consumption keeps the car in the house's load: the surplus is understated, never more."""
    site.world.cloud.update_charger(charging=True, level=16)
    service = site.service(site.config(HOLD_ONLY))
    assert (await service.tick()).problem is None
    pv, load = site.house_and_pv_now()
    inputs = site.inputs()[-1]
    assert inputs["charger"]["amps"] is None
    assert inputs["surplus_w"] == pytest.approx(pv - load - 16 * 230, abs=2)
    await service.shutdown()


async def test_the_cloud_surplus_reads_stop_while_the_gateway_answers(site: Site) -> None:
    """An hour of ticks (120 at 30 s, rules that only hold) with each source: the gateway
    asks the cloud nothing for the surplus, so the account's requests per hour fall."""
    counts = {}
    for source in ("lifetime_energy", "auto", "gateway"):
        before = len(site.world.cloud.requests())
        surplus_before = site.surplus_reads()
        service = site.service(site.config(HOLD_ONLY, source=source))
        assert await service.run(max_ticks=120) == 0
        counts[source] = (
            len(site.world.cloud.requests()) - before,
            site.surplus_reads() - surplus_before,
        )
    # Measured: lifetime_energy 153 requests (5 of them buckets), auto 213 (65), gateway 148
    # (none); docs/gateway.md.
    assert counts["gateway"][1] == 0
    assert counts["lifetime_energy"][1] >= 4  # a bucket each quarter-hour
    assert counts["auto"][1] >= 60  # and a power sample a minute
    assert counts["gateway"][0] < counts["lifetime_energy"][0] < counts["auto"][0]
    assert site.gateway.requests["/ivp/meters/readings"] == 120  # one read a tick


async def test_each_site_of_a_fleet_reads_its_own_gateway(sites: Sites) -> None:  # noqa: F811
    """Two sites on two accounts, each with its own gateway and token: each site's surplus is
    its own gateway's, and the farm's gateway going away touches only the farm."""
    cloud = sites.cloud
    home_gw, farm_gw = FakeGateway(cloud), FakeGateway(cloud, site_id=sites.farm_id)
    async with FakeGatewayServer(home_gw) as home, FakeGatewayServer(farm_gw) as farm:
        base = sites.config()
        assert base.sites is not None
        entries = []
        for entry, gateway, server in zip(
            base.sites, (home_gw, farm_gw), (home, farm), strict=True
        ):
            token = sites.tmp / f"{entry.name}.token"
            store_token(token, gateway.issue_token())
            # A stopped gateway refuses at once; the timeout only has to outlast a loaded
            # machine (at 3 s, a suite on two busy cores once timed out the farm's first read).
            block = GatewayConfig(host=server.host, token_file=token, timeout="20s")
            entries.append(entry.model_copy(update={"gateway": block}))
        surplus = SurplusConfig(source="gateway")
        config = base.model_copy(update={"sites": entries, "surplus": surplus})
        clock = fleet_clock(cloud, count=2)
        fleet = sites.fleet(config, clock)
        clock.after(60, farm.stop)
        clock.after(120, fleet.request_stop)
        assert await fleet.run() == 0

    home_reports, farm_reports = sites.reports["home"], sites.reports["farm"]
    assert all(r.problem is None for r in home_reports + farm_reports)
    assert {r.surplus_source for r in home_reports} == {"gateway"}
    assert [r.surplus_source for r in farm_reports][:2] == ["gateway", "gateway"]
    assert farm_reports[-1].surplus_source == "lifetime_energy (gateway unreachable since 13:01)"
    assert home_gw.requests["/ivp/meters/readings"] == len(home_reports)
    for site_id in (SITE_ID, sites.farm_id):
        sources = {json.loads(r["inputs"])["surplus_source"] for r in sites.rows(site_id)}
        assert "gateway" in sources


# --- the token renewed by the service (issue 14; optimizer/gateway/renew.py) -----------------

DAY = 86400.0


def _tokens_asked(site: Site) -> int:
    """Entrez requests for a gateway token (the login's own cloud token aside)."""
    return sum(1 for r in site.world.cloud.requests("/tokens") if "serial_num" in (r.json or {}))


async def test_the_service_renews_a_token_10_days_before_it_expires(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    old = site.gateway.issue_token(lifetime_s=10 * DAY)
    store_token(site.token_path, old)
    service = site.service(site.config())
    report = await service.tick()
    assert report.problem is None  # no failed tick
    assert report.surplus_source == "gateway"
    new = site.token_path.read_text(encoding="utf-8").strip()
    assert new != old
    expires = token_facts(new).expires_at
    assert expires is not None
    assert (expires - site.world.cloud.clock.now()).days >= 364  # an owner's year again
    assert report.gateway_token is not None
    assert report.gateway_token["renewal_failed"] is None
    assert report.gateway_token["expires_at"] == expires.isoformat()
    assert _tokens_asked(site) == 1

    for _ in range(3):  # renewed: nothing more to ask
        site.world.cloud.advance(30)
        assert (await service.tick()).surplus_source == "gateway"
    assert _tokens_asked(site) == 1
    assert site.gateway.requests["/auth/check_jwt"] == 1  # the old one served until its 401

    [beat] = site.world.rows("SELECT value FROM state WHERE key LIKE 'service:%'")
    health = judge(json.loads(beat["value"]), now=site.world.cloud.clock.now())
    assert health.gateway_token is not None
    assert health.gateway_token["expires_at"] == expires.isoformat()
    await service.shutdown()

    # Never in the log, the decision log, the heartbeat or any file but its own.
    for token in (old, new):
        assert all(token not in r.getMessage() for r in caplog.records)
        for path in site.token_path.parent.rglob("*"):
            if path.is_file() and path != site.token_path:
                assert token.encode() not in path.read_bytes(), path


async def test_a_failed_renewal_is_shown_and_tried_again_a_day_later_not_before(
    site: Site,
) -> None:
    old = site.gateway.issue_token(lifetime_s=10 * DAY)
    store_token(site.token_path, old)
    issuer = site.world.cloud.gateways.pop(site.gateway.serial)  # Entrez refuses it (403)
    service = site.service(site.config())
    report = await service.tick()
    assert report.problem is None
    assert report.surplus_source == "gateway"  # the old token still works
    assert report.gateway_token is not None
    failed = report.gateway_token["renewal_failed"]
    assert "Entrez refused a token for gateway" in failed
    assert "HTTP 403" in failed
    assert site.token_path.read_text(encoding="utf-8").strip() == old  # kept as it was

    for _ in range(4):
        site.world.cloud.advance(3 * 3600)
        assert (await service.tick()).problem is None
    await service.shutdown()
    restarted = site.service(site.config())  # a restart does not ask again within the day
    assert (await restarted.tick()).problem is None
    assert _tokens_asked(site) == 1

    site.world.cloud.gateways[site.gateway.serial] = issuer  # Entrez answers again
    site.world.cloud.advance(12 * 3600 + 60)  # a day after the failed attempt
    report = await restarted.tick()
    assert _tokens_asked(site) == 2
    assert report.gateway_token is not None
    assert report.gateway_token["renewal_failed"] is None
    assert site.token_path.read_text(encoding="utf-8").strip() != old
    await restarted.shutdown()


async def test_a_refused_token_is_replaced_by_the_service_itself(site: Site) -> None:
    service = site.service(site.config())
    await service.tick()
    site.gateway.expire_tokens()  # revoked, or the year is over while the service was down
    site.world.cloud.advance(30)
    refused = await service.tick()
    assert refused.problem is None
    assert refused.surplus_source.startswith("lifetime_energy (gateway refused the token")
    site.world.cloud.advance(30)
    back = await service.tick()  # the next tick fetches a new one and reads with it
    assert back.problem is None
    assert back.surplus_source == "gateway"
    assert _tokens_asked(site) == 1
    await service.shutdown()
