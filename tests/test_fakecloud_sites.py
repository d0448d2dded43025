"""The fake cloud with several accounts, sites and chargers (issue 13 item 5)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.errors import EnlightenError
from optimizer.enlighten.headers import BROWSER_USER_AGENT
from optimizer.fakecloud import FakeCloud, FakeCloudServer
from optimizer.fakecloud.__main__ import build_cloud, parse_args
from tests.fixtures import load_fixture

OWNER = ("owner@example.com", "correct-horse-battery")
FLEET = ("fleet@example.com", "another-horse-battery")


@pytest.fixture
def cloud() -> FakeCloud:
    cloud = FakeCloud()
    cloud.add_account(*FLEET, sites=2, chargers_per_site=2)
    return cloud


@pytest.fixture
async def base_url(cloud: FakeCloud) -> AsyncIterator[str]:
    async with FakeCloudServer(cloud) as server:
        yield server.base_url


def client(base_url: str, account: tuple[str, str], state: Path) -> EnlightenClient:
    email, password = account
    return EnlightenClient(
        base_url=base_url, email=email, password_provider=lambda: password, state_dir=state
    )


async def test_each_account_discovers_only_its_own_sites(
    cloud: FakeCloud, base_url: str, tmp_path: Path
) -> None:
    fleet_ids = [m.site_id for m in cloud.sites.of(FLEET[0])]
    assert len(fleet_ids) == 2
    assert cloud.model.site_id not in fleet_ids
    async with client(base_url, OWNER, tmp_path / "a") as owner:
        assert [s.site_id for s in await owner.sites()] == [cloud.model.site_id]
    async with client(base_url, FLEET, tmp_path / "b") as fleet:
        assert sorted(s.site_id for s in await fleet.sites()) == sorted(fleet_ids)
        status = await fleet.status(fleet_ids[1])
        serials = {c.sn for c in cloud.sites.models[fleet_ids[1]].chargers}
        assert {c.sn for c in status.chargers} == serials
        # another account's site answers as an unmapped one does: the client gets an error
        with pytest.raises(EnlightenError):
            await fleet.status(cloud.model.site_id)


async def test_another_accounts_site_answers_468_invalid_system_id(
    cloud: FakeCloud, base_url: str
) -> None:
    async with aiohttp.ClientSession(headers={"User-Agent": BROWSER_USER_AGENT}) as session:
        sid = await _login(session, base_url, *OWNER)
        other = cloud.sites.of(FLEET[0])[0].site_id
        for path in (
            f"/service/evse_controller/{other}/ev_chargers/status",
            f"/pv/systems/{other}/lifetime_energy",
        ):
            async with session.get(base_url + path, headers={"e-auth-token": sid}) as resp:
                assert resp.status == 468
                assert await resp.json() == load_fixture("site_not_mapped_468")
        own = f"/service/evse_controller/{cloud.model.site_id}/ev_chargers/status"
        async with session.get(base_url + own, headers={"e-auth-token": sid}) as resp:
            assert resp.status == 200


async def test_the_chargers_of_a_site_share_its_pv_and_its_consumption(
    cloud: FakeCloud, base_url: str, tmp_path: Path
) -> None:
    site = cloud.sites.of(FLEET[0])[0]
    first, second = (c.sn for c in site.chargers)
    cloud.set_time(cloud.clock.now().replace(hour=0, minute=0, second=0, microsecond=0))
    cloud.update_charger(first, plugged_in=True, charging=True, level=16)
    cloud.update_charger(second, plugged_in=True, charging=True, level=10)
    cloud.advance(3 * 3600)
    async with client(base_url, FLEET, tmp_path) as fleet:
        raw = await fleet.lifetime_energy_raw(site.site_id)
    summary = next(s for s in cloud.snapshot()["sites"] if s["site_id"] == site.site_id)
    both_w = summary["chargers_w"][first] + summary["chargers_w"][second]
    assert summary["chargers_w"][first] > 0
    assert summary["chargers_w"][second] > 0
    assert summary["consumption_w"] == pytest.approx(summary["house_load_w"] + both_w, abs=0.2)
    # the last complete quarter hour: evse is both chargers' energy, inside consumption
    last = max(i for i, v in enumerate(raw["evse"]) if v is not None)
    assert raw["evse"][last] == pytest.approx(both_w / 4, abs=2)
    assert raw["consumption"][last] >= raw["evse"][last]
    # the other fleet site has its own PV/house model: none of these chargers draws there
    other = cloud.sites.of(FLEET[0])[1]
    assert all(cloud.snapshot()["sites"][2]["chargers_w"][c.sn] == 0 for c in other.chargers)


async def test_past_one_accounts_budget_the_other_is_still_served(
    cloud: FakeCloud, base_url: str
) -> None:
    cloud.set_profile(account_budget_per_hour=3)
    async with (
        aiohttp.ClientSession(headers={"User-Agent": BROWSER_USER_AGENT}) as a,
        aiohttp.ClientSession(headers={"User-Agent": BROWSER_USER_AGENT}) as b,
    ):
        owner_sid = await _login(a, base_url, *OWNER)
        fleet_sid = await _login(b, base_url, *FLEET)
        owner_path = f"/service/evse_controller/{cloud.model.site_id}/ev_chargers/status"
        fleet_site = cloud.sites.of(FLEET[0])[0].site_id
        fleet_path = f"/service/evse_controller/{fleet_site}/ev_chargers/status"
        owner_statuses = []
        for _ in range(4):
            async with a.get(base_url + owner_path, headers={"e-auth-token": owner_sid}) as r:
                owner_statuses.append(r.status)
                retry_after = r.headers.get("Retry-After")
                last_body = await r.json()
        assert last_body == load_fixture("rate_limited_429")
        assert owner_statuses == [200, 200, 200, 429]
        assert retry_after is not None
        assert int(retry_after) > 0
        for _ in range(3):
            async with b.get(base_url + fleet_path, headers={"e-auth-token": fleet_sid}) as r:
                assert r.status == 200


def test_admin_api_adds_accounts_sites_and_chargers(cloud: FakeCloud) -> None:
    site = cloud.sites.of(FLEET[0])[0]
    added = cloud.add_charger(site.site_id)
    assert added.sn not in {c.sn for m in cloud.sites.models.values() for c in m.chargers[:-1]}
    assert cloud.sites.with_charger(added.sn) is site
    with pytest.raises(ValueError, match="exists already"):
        cloud.add_account(*FLEET)
    with pytest.raises(ValueError, match="no account"):
        cloud.add_site("nobody@example.com")


async def test_the_admin_api_adds_an_account_a_site_and_a_charger(
    cloud: FakeCloud, base_url: str
) -> None:
    admin = base_url + "/__fake__/"
    async with aiohttp.ClientSession() as session:
        body = {"email": "third@example.com", "password": "third-horse", "chargers_per_site": 2}
        async with session.post(admin + "accounts", json=body) as resp:
            added = await resp.json()
        assert resp.status == 200
        assert "password" not in added
        (site_id,) = added["sites"]
        async with session.post(admin + f"sites/{site_id}/chargers") as resp:
            sn = (await resp.json())["sn"]
        assert [c.sn for c in cloud.sites.models[site_id].chargers][-1] == sn
        async with session.post(admin + "sites", json={"owner": "third@example.com"}) as resp:
            second = (await resp.json())["site_id"]
        async with session.post(admin + "sites", json={"owner": "x@example.com"}) as resp:
            assert resp.status == 400
            assert "no account 'x@example.com'" in (await resp.json())["error"]
        async with session.post(admin + "accounts", json={"email": "no-password"}) as resp:
            assert resp.status == 400
    async with aiohttp.ClientSession(headers={"User-Agent": BROWSER_USER_AGENT}) as session:
        sid = await _login(session, base_url, "third@example.com", "third-horse")
        cloud.set_profile(disabled_discovery=[])  # the 2026 default leaves only the search
        async with session.get(
            base_url + "/service/evse_controller/sites", headers={"e-auth-token": sid}
        ) as resp:
            listed = [s["site_id"] for s in (await resp.json())["data"]]
        assert listed == [site_id, second]


def test_the_command_line_builds_the_layout() -> None:
    args = parse_args(["--accounts", "2", "--sites-per-account", "3", "--chargers-per-site", "2"])
    cloud = build_cloud(args)
    owners = [cloud.sites.owners[sid] for sid in cloud.sites.models]
    assert len(cloud.sites.models) == 6
    assert owners.count("owner@example.com") == 3
    assert len(set(owners)) == 2
    serials = [c.sn for m in cloud.sites.models.values() for c in m.chargers]
    assert len(serials) == 12 == len(set(serials))
    assert cloud.model.chargers[0].sn == "EV9876543210"  # the first site as before


async def _login(session: aiohttp.ClientSession, base: str, email: str, password: str) -> str:
    async with session.post(
        base + "/login/login.json", data={"user[email]": email, "user[password]": password}
    ) as resp:
        return str((await resp.json())["session_id"])
