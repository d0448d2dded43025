"""Two sites on two accounts in one process against the fake cloud (issue 13 item 2).

One fake cloud with a second account (``FakeCloud.add_account``), two chargers per site, and
a `sites:` config. The fleet runs both on one simulated clock that moves on only when every
site's loop sleeps (``LockstepClock``), so "site A ticked every 30 s while site B was in
trouble" is a statement about one timeline. Site B's trouble is real: a wrong password, or the
fake failing every request of its site; site A keeps acting all along, and B recovers.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.cli import account, main, why
from optimizer.config import Config, load_config
from optimizer.fakecloud import FakeClock, FakeCloud, FakeCloudServer
from optimizer.fakecloud.model import Charger
from optimizer.service import Fleet, Service, TickReport
from optimizer.service.fleet import fleet_status
from optimizer.service.lockstep import LockstepClock
from tests.cli_env import EMAIL, PASSWORD, SITE_ID
from tests.test_service import ALWAYS_16, MIDDAY, Notes

FARM_EMAIL = "farm@example.com"
FARM_PASSWORD = "farm-horse-battery"
POLL_S = 30.0


def fleet_clock(cloud: FakeCloud, count: int = 2) -> LockstepClock:
    """The fleet's loops on one simulated timeline, the fake cloud's clock kept in step."""
    return LockstepClock(cloud.clock.now(), loops=count, advance=cloud.advance)


@dataclass
class Sites:
    cloud: FakeCloud
    base_url: str
    tmp: Path
    farm_id: int
    notes: Notes = field(default_factory=Notes)
    reports: dict[str, list[TickReport]] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return self.tmp / "state"

    def config(self) -> Config:
        rules = self.tmp / "rules.yaml"
        rules.write_text(ALWAYS_16, encoding="utf-8")
        text = f"""\
service:
  poll_interval: 30s
  state_dir: {self.state}
sites:
  - name: home
    enlighten: {{base_url: "{self.base_url}", email: {EMAIL}, site_id: {SITE_ID}}}
    site: {{timezone: Australia/Melbourne, max_current: 40}}
    rules: [{rules}]
  - name: farm
    enlighten:
      base_url: "{self.base_url}"
      email: {FARM_EMAIL}
      site_id: {self.farm_id}
      password_env: FARM_PASSWORD
    site: {{timezone: Australia/Melbourne, max_current: 40}}
    rules: [{rules}]
"""
        path = self.tmp / "config.yaml"
        path.write_text(text, encoding="utf-8")
        return load_config(path)

    def fleet(self, config: Config, clock: LockstepClock) -> Fleet:
        def sink(view: Config) -> Callable[[TickReport], None]:
            return self.reports.setdefault(view.label, []).append

        return Fleet(
            config,
            config_path=config.source,
            dry_run=False,
            notifier=self.notes,  # type: ignore[arg-type]
            clock=clock,
            on_tick=sink,
        )

    def rows(self, site_id: int) -> list[dict[str, Any]]:
        with sqlite3.connect(self.state / "decisions.db") as db:
            db.row_factory = sqlite3.Row
            return [
                dict(r)
                for r in db.execute(
                    "SELECT * FROM decisions WHERE site_id = ? ORDER BY id", (site_id,)
                )
            ]


@pytest.fixture
async def sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Sites]:
    monkeypatch.setenv("ENLIGHTEN_PASSWORD", PASSWORD)
    monkeypatch.setenv("FARM_PASSWORD", FARM_PASSWORD)
    monkeypatch.delenv("ENLIGHTEN_EMAIL", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    cloud = FakeCloud(clock=FakeClock(MIDDAY))
    cloud.add_charger(cloud.model.site_id)
    cloud.add_account(FARM_EMAIL, FARM_PASSWORD, sites=1, chargers_per_site=2)
    (farm,) = cloud.sites.of(FARM_EMAIL)
    for model in (cloud.model, farm):
        for charger in model.chargers:
            cloud.update_charger(charger.sn, plugged_in=True)
    async with FakeCloudServer(cloud) as server:
        yield Sites(cloud, server.base_url, tmp_path, farm.site_id)


def serials(cloud: FakeCloud, site_id: int) -> set[str]:
    model = cloud.model if site_id == SITE_ID else cloud.sites.models[site_id]
    chargers: list[Charger] = model.chargers
    return {c.sn for c in chargers}


def started(rows: list[dict[str, Any]]) -> set[str]:
    return {r["charger_sn"] for r in rows if r["action"] == "start" and r["outcome"] == "applied"}


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def gaps(reports: list[TickReport]) -> list[float]:
    return [(b.at - a.at).total_seconds() for a, b in pairwise(reports)]


async def test_a_failing_site_never_stalls_the_other_and_recovers(sites: Sites) -> None:
    """The farm's site answers 503 to everything for 20 minutes: home starts both its cars
    at once and ticks every 30 s throughout; the farm backs off on its own, then starts its
    two cars once the cloud answers again."""
    cloud = sites.cloud
    fault = cloud.add_fault("status", status=503, path=f"/{sites.farm_id}/", times=0)
    clock = fleet_clock(cloud)
    start = clock.timestamp()
    fleet = sites.fleet(sites.config(), clock)
    clock.after(20 * 60, cloud.faults.clear)
    clock.after(40 * 60, fleet.request_stop)
    assert fault.times == 0

    assert await fleet.run() == 0

    home, farm = sites.reports["home"], sites.reports["farm"]
    during = [r for r in home if (r.at.timestamp() - start) < 20 * 60]
    assert all(r.problem is None for r in home)
    assert len(during) >= 39  # a tick every 30 s, never held back by the farm
    assert set(gaps(home)) == {POLL_S}
    assert started(sites.rows(SITE_ID)) == serials(cloud, SITE_ID)
    # The farm was in trouble, said so, and came back after the fault was lifted.
    troubled = [r for r in farm if r.problem is not None]
    assert troubled
    assert {r.problem for r in troubled} == {"cloud"}
    assert all(r.at.timestamp() - start < 20 * 60 for r in troubled)
    assert farm[-1].problem is None
    farm_rows = sites.rows(sites.farm_id)
    assert started(farm_rows) == serials(cloud, sites.farm_id)
    first_start = min(parse_ts(r["ts"]) for r in farm_rows if r["action"] == "start")
    assert first_start > max(r.at for r in troubled)
    # systemd heard the summing-up line each time it changed (not once per site tick: with
    # many sites that was N squared work per poll), naming the troubled site.
    said = sites.notes.said("status")
    assert "1 site: ok; 1 site: Enlighten failing (farm)" in said
    assert said[-1] == "2 sites: ok"
    assert all(a != b for a, b in pairwise(said))
    assert len(said) <= 4  # starting/ok/failing, then both ok: far fewer than the 100+ ticks
    assert len(sites.notes.said("ready")) == 1


async def test_a_wrong_password_on_one_account_leaves_the_other_acting(
    sites: Sites, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The farm account's password is wrong: home logs in and acts, the farm waits for a
    person; `evopt login --site farm` (right password) brings it back without a restart.
    Each account has its own session file, 0600, not named by the e-mail."""
    monkeypatch.setenv("FARM_PASSWORD", "wrong-password")
    cloud = sites.cloud
    clock = fleet_clock(cloud)
    config = sites.config()
    fleet = sites.fleet(config, clock)

    async def person_logs_in() -> None:
        monkeypatch.setenv("FARM_PASSWORD", FARM_PASSWORD)
        argv = ["--config", str(config.source), "login", "--site", "farm"]
        assert await asyncio.to_thread(main, argv) == 0

    clock.after(10 * 60, person_logs_in)
    clock.after(40 * 60, fleet.request_stop)
    assert await fleet.run() == 0

    home, farm = sites.reports["home"], sites.reports["farm"]
    assert all(r.problem is None for r in home)
    assert set(gaps(home)) == {POLL_S}
    assert started(sites.rows(SITE_ID)) == serials(cloud, SITE_ID)
    assert farm[0].problem == "auth"
    assert farm[-1].problem is None
    assert started(sites.rows(sites.farm_id)) == serials(cloud, sites.farm_id)
    assert any("authentication needed (farm)" in s for s in sites.notes.said("status"))
    # One session file per account, private, no e-mail in its name.
    files = sorted(p.name for p in sites.state.glob("session*.json"))
    keys = [view.account_key() for view in config.site_configs()]
    assert files == sorted(f"session-{key}.json" for key in keys)
    for name in files:
        assert "example" not in name
        assert stat.S_IMODE(os.stat(sites.state / name).st_mode) == 0o600
        text = (sites.state / name).read_text()
        assert FARM_PASSWORD not in text
        assert PASSWORD not in text


async def test_status_shows_every_site(
    sites: Sites, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`evopt status --json` lists the chargers of both sites with their site; `--site farm`
    only the farm's; the human output groups them under a line per site."""
    config = sites.config()
    clock = fleet_clock(sites.cloud)
    fleet = sites.fleet(config, clock)
    assert await fleet.run(once=True) == 0
    monkeypatch.setattr(account, "_now", clock.now)
    path = str(config.source)
    assert await asyncio.to_thread(main, ["--config", path, "status", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    by_site = {(r["site"], r["site_id"]) for r in records}
    assert by_site == {("home", SITE_ID), ("farm", sites.farm_id)}
    assert {r["sn"] for r in records} == serials(sites.cloud, SITE_ID) | serials(
        sites.cloud, sites.farm_id
    )
    assert all(r["service"]["running"] is not None for r in records)
    assert (
        await asyncio.to_thread(main, ["--config", path, "status", "--site", "farm", "--json"]) == 0
    )
    farm_only = json.loads(capsys.readouterr().out)
    assert {r["site_id"] for r in farm_only} == {sites.farm_id}
    assert all(
        r["automation"] == {"rule_set": None, "paused_until": None, "writes_held": None}
        for r in records
    )
    # A pause of one site shows on its chargers only, with why nothing is written.
    assert await asyncio.to_thread(main, ["--config", path, "pause", "--site", "farm"]) == 0
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["--config", path, "status", "--json"]) == 0
    held = {r["site"]: r["automation"] for r in json.loads(capsys.readouterr().out)}
    assert held["home"]["writes_held"] is None
    assert held["farm"]["paused_until"] is not None
    assert held["farm"]["writes_held"] == f"paused until {held['farm']['paused_until']}"
    assert await asyncio.to_thread(main, ["--config", path, "status"]) == 0
    out = capsys.readouterr().out
    assert f"site home ({SITE_ID}):" in out
    assert f"site farm ({sites.farm_id}):" in out
    assert await asyncio.to_thread(main, ["--config", path, "status", "--site", "nowhere"]) == 1
    assert "no site 'nowhere'" in capsys.readouterr().err


async def test_log_and_why_take_a_site(
    sites: Sites, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`evopt log --site farm` lists only the farm's decisions, by name or by id; `why
    --site farm` explains only the farm's chargers; without --site both show every site."""
    config = sites.config()
    fleet = sites.fleet(config, fleet_clock(sites.cloud))
    assert await fleet.run(once=True) == 0
    monkeypatch.setattr(why, "_now", lambda: datetime.now(UTC))
    path = str(config.source)
    farm_sns = serials(sites.cloud, sites.farm_id)

    async def run(*argv: str) -> Any:
        assert await asyncio.to_thread(main, ["--config", path, *argv]) == 0
        return json.loads(capsys.readouterr().out)

    every = await run("log", "--json")
    assert {r["site_id"] for r in every} == {SITE_ID, sites.farm_id}
    for chosen in ("farm", str(sites.farm_id)):
        rows = await run("log", "--site", chosen, "--json")
        assert rows
        assert {r["site_id"] for r in rows} == {sites.farm_id}
    explained = await run("why", "--site", "farm", "--json")
    assert {e["charger_sn"] for e in explained} == farm_sns
    everyone = await run("why", "--json")
    assert len(everyone) == len(farm_sns | serials(sites.cloud, SITE_ID))


def test_the_summing_up_line_counts_and_names() -> None:
    ok = TickReport(at=MIDDAY, status="", delay_s=30)
    auth = TickReport(at=MIDDAY, status="", delay_s=300, problem="auth")
    cloud = TickReport(at=MIDDAY, status="", delay_s=60, problem="cloud")
    line = fleet_status([("a", ok), ("b", auth), ("c", ok), ("d", cloud), ("e", None)])
    assert line == (
        "2 sites: ok; 1 site: authentication needed (b); 1 site: Enlighten failing (d); "
        "1 site: starting (e)"
    )


async def test_sighup_applies_to_every_site_or_to_none(sites: Sites) -> None:
    """A reload with one site's part broken keeps every site's old config and rules (the
    status line says why); the fixed file then reaches both sites between their ticks."""
    cloud = sites.cloud
    clock = fleet_clock(cloud)
    start = clock.timestamp()
    config = sites.config()
    fleet = sites.fleet(config, clock)
    path = config.source
    assert path is not None
    good = path.read_text(encoding="utf-8")
    outcomes: list[bool] = []

    def break_the_farm() -> None:
        path.write_text(good.replace("      password_env:", "      pasword_env:"), "utf-8")
        outcomes.append(fleet.request_reload())

    def ten_amps_everywhere() -> None:
        path.write_text(good, "utf-8")
        (sites.tmp / "rules.yaml").write_text(ALWAYS_16.replace("16", "10"), "utf-8")
        outcomes.append(fleet.request_reload())

    clock.after(2 * 60, break_the_farm)
    clock.after(5 * 60, ten_amps_everywhere)
    clock.after(8 * 60, fleet.request_stop)
    assert await fleet.run() == 0

    assert outcomes == [False, True]
    refused = [s for s in sites.notes.said("ready") if "reload refused" in s]
    assert len(refused) == 1
    assert "unknown key 'pasword_env'" in refused[0]
    for site_id in (SITE_ID, sites.farm_id):
        rows = sites.rows(site_id)
        levels = [
            (parse_ts(r["ts"]).timestamp() - start, json.loads(r["params"])["amps"])
            for r in rows
            if r["action"] in ("start", "set_amps") and r["outcome"] == "applied"
        ]
        # 16 A until the good reload (the refused one changed nothing), 10 A after it.
        assert {amps for at, amps in levels if at < 5 * 60} == {16}
        assert {amps for at, amps in levels if at >= 5 * 60} == {10}
        assert {r["charger_sn"] for r in rows if "10" in r["params"]} == serials(cloud, site_id)
    with sqlite3.connect(sites.state / "decisions.db") as db:
        statuses = sorted(r[0] for r in db.execute("SELECT status FROM runs"))
    assert statuses == ["reloaded", "reloaded", "stopped", "stopped"]


async def test_the_sites_of_one_account_share_one_login(sites: Sites) -> None:
    """Two sites of the owner's account: one login at start, one re-login after the cloud
    revokes every session (whichever site meets the 401 first), one session file."""
    cloud = sites.cloud
    second = cloud.add_site(EMAIL, chargers=1)
    cloud.update_charger(second.chargers[0].sn, plugged_in=True)
    rules = sites.tmp / "rules.yaml"
    rules.write_text(ALWAYS_16, encoding="utf-8")
    item = (
        "    enlighten: {{base_url: '{url}', email: {email}, site_id: {site}}}\n"
        "    site: {{timezone: Australia/Melbourne}}\n    rules: [{rules}]\n"
    )
    path = sites.tmp / "config.yaml"
    path.write_text(
        f"service:\n  poll_interval: 30s\n  state_dir: {sites.state}\nsites:\n"
        + "".join(
            "  - "
            + item.format(url=sites.base_url, email=EMAIL, site=site_id, rules=rules).lstrip()
            for site_id in (SITE_ID, second.site_id)
        ),
        encoding="utf-8",
    )
    config = load_config(path)
    clock = fleet_clock(cloud)
    fleet = sites.fleet(config, clock)
    clock.after(5 * 60, lambda: cloud.add_fault("expire_session"))
    clock.after(10 * 60, fleet.request_stop)
    assert await fleet.run() == 0

    assert len(cloud.requests("/login/login.json")) == 2
    for label in (str(SITE_ID), str(second.site_id)):
        reports = sites.reports[label]
        assert len(reports) >= 20
        assert all(r.problem is None for r in reports)
    assert started(sites.rows(second.site_id)) == {second.chargers[0].sn}
    assert [p.name for p in sites.state.glob("session*.json")] == [
        f"session-{config.site_configs()[0].account_key()}.json"
    ]
    # One budget: each site plans its reads for the account's 3 chargers on 2 sites.
    others = {s.config.enlighten.site_id: s.cache.account_others for s in fleet.services}
    assert others == {SITE_ID: (1, 1), second.site_id: (1, 2)}


async def test_run_once_prints_each_site_and_exits_with_the_worst_code(
    sites: Sites, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`evopt run --once` ticks every site once: each site's decisions under ``[name]``; the
    exit code is the worst site's (3: the farm's password is refused), home decided anyway."""
    config = sites.config()
    argv = ["--config", str(config.source), "run", "--once"]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("[home]\n")
    home, farm = out.split("[farm]\n")
    home_sns, farm_sns = serials(sites.cloud, SITE_ID), serials(sites.cloud, sites.farm_id)
    assert {line.split()[0] for line in home.splitlines()[1:-1]} == home_sns
    assert {line.split()[0] for line in farm.splitlines()[:-1]} == farm_sns
    monkeypatch.setenv("FARM_PASSWORD", "wrong-password")
    for name in sites.state.glob("session*.json"):
        name.unlink()
    assert await asyncio.to_thread(main, argv) == 3
    home, farm = capsys.readouterr().out.split("[farm]\n")
    assert {line.split()[0] for line in home.splitlines()[1:-1]} == home_sns
    assert farm.startswith("authentication needed")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([None, "auth", "cloud", "rate_limited", "ok"]), max_size=12))
def test_the_summing_up_line_counts_every_site_once(states: list[str | None]) -> None:
    reports = [
        (
            f"s{i}",
            None
            if state is None
            else TickReport(
                at=MIDDAY, status="", delay_s=30, problem=None if state == "ok" else state
            ),
        )
        for i, state in enumerate(states)
    ]
    line = fleet_status(reports)  # type: ignore[arg-type]
    counts = [int(part.split()[0]) for part in line.split("; ")] if line else []
    assert sum(counts) == len(states)
    troubled = {f"s{i}" for i, state in enumerate(states) if state != "ok"}
    named = {name for part in line.split("(")[1:] for name in part.split(")")[0].split(", ")}
    assert named == troubled
    if "ok" in states:
        assert line.split(": ")[1].startswith("ok")


async def test_a_site_loop_that_crashes_stops_the_others(
    sites: Sites, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug that escapes one site's loop ends the whole process (systemd restarts it)
    instead of leaving the other sites running without it; every site's run is closed."""
    config = sites.config()
    fleet = sites.fleet(config, fleet_clock(sites.cloud))
    original = Service._pause

    async def broken(self: Service, seconds: float) -> bool:
        if self.config.label == "farm":
            raise RuntimeError("a bug in the loop")
        return await original(self, seconds)

    monkeypatch.setattr(Service, "_pause", broken)
    with pytest.raises(RuntimeError, match="a bug in the loop"):
        await fleet.run()
    with sqlite3.connect(sites.state / "decisions.db") as db:
        statuses = sorted(r[0] for r in db.execute("SELECT status FROM runs"))
    assert statuses == ["crashed", "stopped"]
