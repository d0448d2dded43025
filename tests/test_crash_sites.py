"""SIGKILL a two-site `evopt run` (two accounts, two chargers per site) as a write reaches
the cloud: each site's engine memory matches its own decisions, and the restarted process
resumes both and sends no command twice (issue 13 item 2; the pattern of
tests/test_crash_safety.py, one process running a `sites:` list).

Every charger is plugged in under an all-day 16 A rule, so the first ticks send one start
per charger (four writes from two loops, interleaved); each seed kills at a different one of
them, 0-3 ms after it arrives.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from optimizer.fakecloud import FakeCloud, LoggedRequest, run_in_thread
from tests.cli_env import EMAIL, SITE_ID
from tests.test_crash_safety import (
    WatchedLog,
    daemon_timer,
    expected_memory,
    is_write,
    match_writes,
    seeds,
)
from tests.test_service_process import Proc, Site, wait_for

FARM_EMAIL = "farm@example.com"
FARM_PASSWORD = "farm-horse-battery"
RULES = """\
policies:
  - name: all-day
    kind: tariff_window
    windows: [always]
    amps: 16
"""
RESTART_TICKS = 4


class TwoSites(Site):
    """The fake with two accounts, and a config listing both sites."""

    farm_id: int = 0

    def serials(self, site_id: int) -> set[str]:
        model = self.cloud.model if site_id == SITE_ID else self.cloud.sites.models[site_id]
        return {c.sn for c in model.chargers}

    def charger_states(self) -> dict[str, tuple[bool, bool]]:
        models = [self.cloud.model, self.cloud.sites.models[self.farm_id]]
        return {c.sn: (c.plugged_in, c.charging) for m in models for c in m.chargers}

    def rows(self, sql: str = "SELECT * FROM decisions ORDER BY id") -> list[dict[str, Any]]:
        try:
            return [dict(r) for r in self.query(sql)]
        except sqlite3.OperationalError:  # the schema is being created
            return []


def write_config(tmp: Path, base_url: str, farm_id: int) -> tuple[Path, Path]:
    rules = tmp / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    site = (
        "    site: {timezone: Australia/Melbourne}\n"
        '    tariffs: {windows: {always: {price: 0.2, times: "00:00-24:00"}}}\n'
        f"    rules: [{rules}]\n"
    )
    config = tmp / "config.yaml"
    config.write_text(
        "charger:\n  settle_delay: 0s\n"
        f"service:\n  poll_interval: 200ms\n  state_dir: {tmp / 'state'}\n"
        "sites:\n"
        f"  - name: home\n    enlighten: {{base_url: '{base_url}', email: {EMAIL}, "
        f"site_id: {SITE_ID}}}\n{site}"
        f"  - name: farm\n    enlighten: {{base_url: '{base_url}', email: {FARM_EMAIL}, "
        f"site_id: {farm_id}, password_env: FARM_PASSWORD}}\n{site}",
        encoding="utf-8",
    )
    return config, rules


@pytest.fixture
def two_sites(tmp_path: Path) -> Iterator[tuple[TwoSites, WatchedLog]]:
    cloud = FakeCloud()
    cloud.add_charger(cloud.model.site_id)
    cloud.add_account(FARM_EMAIL, FARM_PASSWORD, sites=1, chargers_per_site=2)
    (farm,) = cloud.sites.of(FARM_EMAIL)
    for model in (cloud.model, farm):
        for charger in model.chargers:
            cloud.update_charger(charger.sn, plugged_in=True)
    log = WatchedLog()
    cloud.log = log
    with run_in_thread(cloud) as base_url:
        config, rules = write_config(tmp_path, base_url, farm.site_id)
        world = TwoSites(cloud, tmp_path, config, rules)
        world.farm_id = farm.site_id
        try:
            yield world, log
        finally:
            for proc in world.procs:
                proc.end()


def check_memory(world: TwoSites, site_id: int, decisions: list[dict[str, Any]]) -> None:
    """The site's saved memory knows exactly its own chargers' committed commands."""
    mine = [r for r in decisions if r["site_id"] == site_id and r["target"] == "charging"]
    found = world.query("SELECT value FROM state WHERE key = ?", f"memory:{site_id}")
    if not mine:
        return
    assert found, f"decisions of site {site_id} were committed but it has no memory"
    chargers = json.loads(found[0]["value"])["chargers"]
    assert set(chargers) <= world.serials(site_id)
    for sn in {r["charger_sn"] for r in mine}:
        want = expected_memory([r for r in mine if r["charger_sn"] == sn])
        known = chargers[sn]
        assert known["commanded_on"] == want["commanded_on"], (site_id, sn, known, want)


@pytest.mark.parametrize("seed", seeds())
def test_sigkill_mid_write_on_two_sites_restores_each_memory_and_sends_nothing_twice(
    two_sites: tuple[TwoSites, WatchedLog], seed: int
) -> None:
    world, log = two_sites
    rng = random.Random(f"crash-sites:{seed}")
    nth, delay = seed % 4 + 1, rng.uniform(0.0, 0.003)
    seen: list[LoggedRequest] = []
    proc: list[Proc] = []
    killed = threading.Event()

    def kill() -> None:
        if not killed.is_set():
            killed.set()
            proc[0].signal(signal.SIGKILL)

    def on_request(entry: LoggedRequest) -> None:
        if proc and is_write(entry):
            seen.append(entry)
            if len(seen) == nth:
                daemon_timer(delay, kill).start()

    log.on_request = on_request
    proc.append(world.start(env={"FARM_PASSWORD": FARM_PASSWORD}))
    fallback = daemon_timer(10.0, kill)
    fallback.start()
    try:
        assert proc[0].finish(timeout=20)[0] == -signal.SIGKILL, proc[0].log()
    finally:
        fallback.cancel()
    time.sleep(0.1)  # the cloud finishes the write it was handling

    assert world.query("PRAGMA integrity_check")[0][0] == "ok"
    survived = world.rows()
    runs = world.rows("SELECT * FROM runs ORDER BY site_id")
    assert {r["status"] for r in runs} == {"running"}
    for site_id in (SITE_ID, world.farm_id):
        check_memory(world, site_id, survived)
    # Per site: its writes map to its decisions, and at most the commands its loop had in
    # flight are missing: a site writes its chargers side by side (optimizer/actuate.py), one
    # command at a time per charger, so at most one per charger of the site.
    unrecorded: list[LoggedRequest] = []
    for site_id in (SITE_ID, world.farm_id):
        writes = [w for w in world.cloud.requests(f"/{site_id}/") if is_write(w)]
        mapping = match_writes([r for r in survived if r["site_id"] == site_id], writes)
        assert len(mapping.unrecorded) <= len(world.serials(site_id)), mapping
        assert len({w.path.split("/")[-2] for w in mapping.unrecorded}) == len(
            mapping.unrecorded
        ), mapping
        unrecorded.extend(mapping.unrecorded)

    # The restart with the world as the kill left it: a command the log says was applied is
    # not sent again; a charger still waiting for its start gets it. Only the charger whose
    # write was in flight at the kill (it reached the cloud, its row did not reach the log)
    # may be commanded again: the restarted engine cannot know that write happened.
    in_flight = {w.path.split("/")[-2] for w in unrecorded}
    done = {
        r["charger_sn"]
        for r in survived
        if r["action"] in ("start", "set_amps") and r["outcome"] == "applied"
    }
    states = world.charger_states()
    waiting = {sn for sn, (plugged, charging) in states.items() if plugged and not charging}
    before = len(world.cloud.requests())
    again = world.start(env={"FARM_PASSWORD": FARM_PASSWORD})
    reads = len(world.cloud.requests("/ev_chargers/status"))
    wait_for(
        "ticks of both sites after the restart",
        lambda: len(world.cloud.requests("/ev_chargers/status")) >= reads + 2 * RESTART_TICKS,
        again,
    )
    again.signal(signal.SIGTERM)
    assert again.finish()[0] == 0, again.log()
    sent_to = {w.path.split("/")[-2] for w in world.cloud.requests()[before:] if is_write(w)}
    assert not (sent_to & (done - in_flight)), (sent_to, done, again.log())
    assert waiting - done <= sent_to
    resumed = {
        int(line.split("resumed engine memory of site ")[1].split()[0])
        for line in again.log().splitlines()
        if "resumed engine memory of site " in line
    }
    assert resumed == {r["site_id"] for r in survived if r["commands"]}
    assert all(world.charger_states()[sn] == (True, True) for sn in states)
