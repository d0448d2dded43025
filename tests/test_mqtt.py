"""The MQTT bridge end to end: the service against the fake cloud, a real broker (amqtt on
127.0.0.1), and a real aiomqtt client recording what Home Assistant would see and sending what
it would send. No mocked MQTT client.

What is checked: the discovery configs (shape, ids, units, devices), the state after a tick,
each command's effect at the next tick (a plan from Home Assistant starts the charger; pause;
resume; a rule-set switch; a bad value answered on the result topic), the broker going away
and coming back (the service ticks on, the bridge reconnects and republishes), and that no
e-mail, password, token, cookie or serial is ever published.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from optimizer.cli import main
from optimizer.config import Config, load_config
from optimizer.gateway.tls import write_self_signed
from optimizer.mqtt.bridge import Bridge
from optimizer.mqtt.payloads import CHARGER_ENTITIES, SITE_ENTITIES
from optimizer.service import Service
from optimizer.yamlpos import YamlFileError
from tests.cli_env import EMAIL, PASSWORD, SITE_ID
from tests.mqtt_broker import LocalBroker, Recorder, recording, running_broker
from tests.soak import check, soak
from tests.summary import report
from tests.test_fleet_e2e import Sites, sites  # noqa: F401 - the two-site fixture
from tests.test_secrets import Secrets
from tests.test_service import MIDDAY, ROOT, SN, TARIFFS, World, applied, world_at

SITE = str(SITE_ID)  # the site's topic level: no alias in this config, so its id
BASE = f"evopt/{SITE}"
CHARGER = f"{BASE}/charger1"
MELBOURNE = ZoneInfo("Australia/Melbourne")
SITE_N, CHARGER_N = len(SITE_ENTITIES), len(CHARGER_ENTITIES)  # counted in test_mqtt_payloads
ONE_CHARGER = SITE_N + CHARGER_N  # a site with one charger: its discovery configs
HA_ID = re.compile(r"^[A-Za-z0-9_-]+$")  # Home Assistant's discovery TOPIC_MATCHER ids


@pytest.fixture
async def broker() -> AsyncIterator[LocalBroker]:
    async with running_broker() as running:
        yield running


@pytest.fixture
async def midday(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    async for world in world_at(MIDDAY, tmp_path, monkeypatch):
        yield world


def mqtt_config(world: World, port: int, *, extra: str = "") -> Config:
    """Excess solar as the default rules, the fast set beside them, and the mqtt block."""
    text = (
        f"enlighten:\n  base_url: {world.base_url}\n  email: {EMAIL}\n  site_id: {SITE_ID}\n"
        "site:\n  latitude: -37.81\n  longitude: 144.96\n"
        "  timezone: Australia/Melbourne\n  max_current: 32\n"
        f"service:\n  poll_interval: 30s\n  state_dir: {world.tmp / 'state'}\n"
        f"{TARIFFS}rules:\n  - {ROOT / 'rules' / 'excess-solar.yaml'}\n"
        f"rule_sets:\n  solar only: [{ROOT / 'rules' / 'excess-solar.yaml'}]\n"
        f"  fast: [{ROOT / 'rules' / 'sets' / 'fast.yaml'}]\n"
        f"mqtt:\n  host: 127.0.0.1\n  port: {port}\n{extra}"
    )
    path = world.tmp / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def bridge_for(world: World, config: Config) -> Bridge:
    assert config.mqtt is not None
    # The bridge's clock is the fake cloud's, so "ready by 13:30" means the fake's 13:30.
    return Bridge(
        config.mqtt,
        database=config.database_path,
        now=world.clock.now,
        first_retry_s=0.05,
        max_retry_s=0.2,  # the test broker restarts in a second or two
    )


def service_for(world: World, config: Config, bridge: Bridge) -> Service:
    return world.service(config, on_tick=bridge.site(config).after_tick)


def linked(world: World, port: int) -> tuple[Bridge, Service]:
    """The service of :func:`mqtt_config` with its bridge hooked after each tick."""
    config = mqtt_config(world, port)
    bridge = bridge_for(world, config)
    return bridge, service_for(world, config, bridge)


async def command(ha: Recorder, topic: str, payload: str) -> dict[str, Any]:
    """Send a command as Home Assistant would and wait for its result."""
    ha.latest.pop(f"{BASE}/result", None)
    await ha.send(topic, payload)
    await ha.until(lambda: f"{BASE}/result" in ha.latest, f"the result of {topic}")
    result: dict[str, Any] = ha.json(f"{BASE}/result")
    return result


def configs(recorder: Any) -> dict[str, dict[str, Any]]:
    found = recorder.on("homeassistant/").items()
    return {t: json.loads(p) for t, p in found if p and t.endswith("/config")}


# --- discovery and state ---------------------------------------------------------------------


async def test_discovery_and_state_after_a_tick(midday: World, broker: LocalBroker) -> None:
    bridge, service = linked(midday, broker.port)
    async with recording(broker.port) as ha, bridge.running():
        service.start()
        await service.tick()
        await ha.until(lambda: f"{CHARGER}/state" in ha.latest, "the charger's state")
        await ha.until(lambda: len(configs(ha)) == ONE_CHARGER, "every discovery config")

        found = configs(ha)
        ids = [c["unique_id"] for c in found.values()]
        assert len(set(ids)) == len(ids)
        for topic, entity in found.items():
            prefix, component, node, object_id, last = topic.split("/")
            assert (prefix, node, last) == ("homeassistant", f"evopt_{SITE}", "config")
            assert component in {"sensor", "binary_sensor", "select", "number", "text", "button"}
            assert HA_ID.match(object_id)
            assert entity["availability"] == [{"topic": "evopt/status"}]
            assert entity["origin"]["name"] == "evopt"
            assert entity["device"]["identifiers"]
            if component != "button":
                assert entity["state_topic"].startswith(BASE)
                assert entity["value_template"].startswith("{{ value_json.") or (
                    component == "binary_sensor"
                )
        site_device = found[f"homeassistant/sensor/evopt_{SITE}/site_surplus/config"]["device"]
        power = found[f"homeassistant/sensor/evopt_{SITE}/site_surplus/config"]
        assert (power["unit_of_measurement"], power["device_class"]) == ("W", "power")
        energy = found[f"homeassistant/sensor/evopt_{SITE}/charger1_session_energy/config"]
        assert (energy["unit_of_measurement"], energy["device_class"]) == ("kWh", "energy")
        assert energy["state_class"] == "total_increasing"
        amps = found[f"homeassistant/sensor/evopt_{SITE}/charger1_amps/config"]
        assert (amps["unit_of_measurement"], amps["device_class"]) == ("A", "current")
        age = found[f"homeassistant/sensor/evopt_{SITE}/site_surplus_age/config"]
        assert (age["unit_of_measurement"], age["device_class"]) == ("s", "duration")
        charger_device = energy["device"]
        assert charger_device["via_device"] == site_device["identifiers"][0]
        select = found[f"homeassistant/select/evopt_{SITE}/site_rule_set/config"]
        assert select["options"] == ["default", "solar only", "fast", "off"]
        assert select["command_topic"] == f"{BASE}/set/rule_set"
        number = found[f"homeassistant/number/evopt_{SITE}/charger1_plan_energy/config"]
        assert (number["min"], number["max"], number["unit_of_measurement"]) == (1, 250.0, "kWh")
        text = found[f"homeassistant/text/evopt_{SITE}/charger1_plan_ready_by/config"]
        assert re.match(text["pattern"], "07:30")
        assert not re.match(text["pattern"], "25:00")
        pause = found[f"homeassistant/button/evopt_{SITE}/site_pause/config"]
        assert (pause["command_topic"], pause["payload_press"]) == (f"{BASE}/set/pause", "1h")

        assert ha.latest["evopt/status"] == "online"
        site = ha.json(f"{BASE}/state")
        assert site["healthy"] is True
        assert site["rule_set"] == "default"
        assert site["automation"] == "on"
        assert isinstance(site["surplus"], float | int)
        assert site["surplus_source"] == "lifetime_energy"
        assert site["gateway_token_expires"] is None  # no gateway configured
        assert site["last_tick"].startswith("2025-01-15T13:00:00+11:00")  # local, with offset
        charger = ha.json(f"{CHARGER}/state")
        assert charger["plugged_in"] is True
        assert charger["state"] in ("plugged_in", "charging")
        assert charger["policy"] == "solar-surplus"
        assert charger["reason"]
        assert charger["plan"] == "none"

        # Home Assistant restarted (its birth message): every config and state again.
        ha.latest = {t: p for t, p in ha.latest.items() if not t.startswith("homeassistant/")}
        await ha.send("homeassistant/status", "online")
        await ha.until(lambda: len(configs(ha)) == ONE_CHARGER, "discovery after the birth message")

        # Stopped cleanly: the bridge says so itself (a clean disconnect sends no Will).
        await bridge.stop()
        await ha.until(lambda: ha.latest["evopt/status"] == "offline", "offline at the stop")
    await service.shutdown()


async def test_a_plan_from_home_assistant_changes_the_next_tick(
    midday: World, broker: LocalBroker
) -> None:
    """Done-when of issue 17: the plan entities' commands reach the engine at the next tick."""
    bridge, service = linked(midday, broker.port)
    async with recording(broker.port) as ha, bridge.running():
        service.start()
        await service.tick()
        assert applied(midday.rows(), "start") == []  # no plan: waits for the surplus to last
        await ha.until(lambda: f"{CHARGER}/state" in ha.latest, "the first state")

        assert (await command(ha, f"{CHARGER}/set/plan_energy", "20"))["ok"] is True
        result = await command(ha, f"{CHARGER}/set/plan_ready_by", "14:00")
        assert (result["command"], result["ok"], result["error"]) == ("plan_ready_by", True, None)
        # The state shows the plan at once, before the next tick.
        await ha.until(
            lambda: ha.json(f"{CHARGER}/state")["plan_ready_by"] == "14:00", "the plan's state"
        )
        assert ha.json(f"{CHARGER}/state")["plan_energy_kwh"] == 20.0

        midday.cloud.advance(30)
        await service.tick()
        starts = applied(midday.rows(), "start")
        assert len(starts) == 1
        assert "ready by" in starts[0]["reason"]
        assert json.loads(starts[0]["params"]) == {"amps": 32}
        await ha.until(
            lambda: ha.json(f"{CHARGER}/decision")["action"] == "start", "the start published"
        )
        decision = ha.json(f"{CHARGER}/decision")
        assert (decision["outcome"], decision["params"]) == ("applied", {"amps": 32})
        assert ha.json(f"{CHARGER}/state")["decision"] == "start 32 A"
    users = midday.rows("SELECT * FROM decisions WHERE policy = 'user-command' ORDER BY id")
    assert [json.loads(r["params"])["command"] for r in users] == ["plan set", "plan set"]
    assert {json.loads(r["inputs"])["source"] for r in users} == {"mqtt"}
    assert {(r["action"], r["outcome"], r["charger_sn"]) for r in users} == {("hold", "noop", SN)}
    await service.shutdown()


async def test_pause_resume_and_rule_sets_from_home_assistant(
    midday: World, broker: LocalBroker
) -> None:
    bridge, service = linked(midday, broker.port)

    async with recording(broker.port) as ha, bridge.running():
        service.start()
        await service.tick()
        await ha.until(lambda: f"{BASE}/state" in ha.latest, "the site's state")

        # A bad value: refused on the result topic, nothing changed, the service goes on.
        bad = await command(ha, f"{BASE}/set/rule_set", "turbo")
        assert bad["ok"] is False
        assert "unknown rule set 'turbo'" in bad["error"]
        assert "fast" in bad["error"]
        bad = await command(ha, f"{CHARGER}/set/plan_energy", "-3")
        assert (bad["ok"], bad["command"]) == (False, "plan_energy")
        assert "above 0" in bad["error"]
        bad = await command(ha, f"{BASE}/charger9/set/plan_energy", "3")
        assert "no charger 'charger9'" in bad["error"]

        # Paused, then the fast rule set chosen: the ticks write nothing, though the fast
        # rules would start at once.
        assert (await command(ha, f"{BASE}/set/pause", "1h"))["ok"]
        await ha.until(lambda: ha.json(f"{BASE}/state")["automation"] == "paused", "paused")
        assert (await command(ha, f"{BASE}/set/rule_set", "fast"))["ok"]
        await ha.until(lambda: ha.json(f"{BASE}/state")["rule_set"] == "fast", "the select")
        for _ in range(3):
            midday.cloud.advance(30)
            report = await service.tick()
            assert "automation off: paused until" in report.status
            assert report.acted == ()
        await ha.until(lambda: "paused until" in ha.json(f"{CHARGER}/state")["reason"], "why")
        assert ha.json(f"{CHARGER}/state")["decision"] == "none"
        assert midday.writes() == []
        # Resumed: the fast rules start the charger at the next tick.
        assert (await command(ha, f"{BASE}/set/resume", "PRESS"))["ok"]
        await ha.until(lambda: ha.json(f"{BASE}/state")["automation"] == "on", "resumed")
        midday.cloud.advance(30)
        await service.tick()
        assert [r["policy"] for r in applied(midday.rows(), "start")] == ["fast"]
        # Off: nothing decided, nothing sent.
        assert (await command(ha, f"{BASE}/set/rule_set", "off"))["ok"]
        writes = len(midday.writes())
        midday.cloud.advance(30)
        report = await service.tick()
        assert (report.acted, len(midday.writes())) == ((), writes)
        assert "automation off: rule set off" in report.status
        await ha.until(lambda: ha.json(f"{BASE}/state")["automation"] == "off", "off")

    users = midday.rows("SELECT * FROM decisions WHERE policy = 'user-command' ORDER BY id")
    assert [(json.loads(r["params"])["command"], r["outcome"]) for r in users] == [
        ("rule_set", "rejected"),
        ("plan_energy", "rejected"),
        ("plan_energy", "rejected"),
        ("pause", "noop"),
        ("rules use", "noop"),
        ("resume", "noop"),
        ("rules use", "noop"),
    ]
    assert "turbo" in users[0]["error"]
    await service.shutdown()


async def test_the_broker_going_away_and_back(midday: World, broker: LocalBroker) -> None:
    """Ticks go on while the broker is away; it comes back to the present state, online."""
    bridge, service = linked(midday, broker.port)
    async with bridge.running():
        service.start()
        await service.tick()
        async with recording(broker.port) as ha:
            await ha.until(lambda: f"{BASE}/state" in ha.latest, "the first state")
        await broker.stop()
        for _ in range(4):  # nothing to publish to: the ticks are not held up
            midday.cloud.advance(30)
            report = await service.tick()
            assert report.problem is None
            assert report.acted  # each tick decided as ever
        await broker.start()  # a new broker: every retained message is gone
        async with recording(broker.port) as ha:
            await ha.until(lambda: bridge.connections == 2, "the reconnect")
            await ha.until(lambda: ha.latest.get("evopt/status") == "online", "online again")
            await ha.until(lambda: len(configs(ha)) == ONE_CHARGER, "discovery again")
            await ha.until(lambda: f"{CHARGER}/state" in ha.latest, "the state again")
            # The present only: the states of the ticks it missed are not replayed.
            now = report.at.astimezone(MELBOURNE).isoformat()
            states = [json.loads(p) for t, p, _ in ha.seen if t == f"{BASE}/state"]
            assert [state["last_tick"] for state in states] == [now]
    await service.shutdown()


async def test_nothing_secret_is_published(midday: World, broker: LocalBroker) -> None:
    bridge, service = linked(midday, broker.port)
    async with recording(broker.port) as ha, bridge.running():
        service.start()
        await service.tick()
        await ha.send(f"{CHARGER}/set/plan", json.dumps({"by": "16:00", "energy_kwh": 12}))
        await ha.send(f"{BASE}/set/rule_set", f"{EMAIL} {SN}")  # echoed in an error: scrubbed
        await ha.until(lambda: f"{BASE}/result" in ha.latest, "a result")
        midday.cloud.advance(30)
        await service.tick()
        await ha.until(lambda: f"{CHARGER}/decision" in ha.latest, "the decision")
    await service.shutdown()
    secrets = Secrets()
    secrets.add(EMAIL, PASSWORD, SN)
    secrets.harvest(midday.cloud.auth, midday.tmp / "state" / "session.json")
    assert len(secrets.values) > 3  # the session's ids and tokens were harvested
    sent = [(t, p) for t, p, _ in ha.seen if not t.endswith("/set/rule_set")]
    assert len(sent) > 30
    leaks = [(t, s) for t, p in sent for s in secrets.found_in(f"{t} {p}")]
    assert leaks == []
    assert any(t == f"{BASE}/result" for t, _ in sent)


# --- TLS ----------------------------------------------------------------------------------------


async def test_tls_with_the_ca_file_of_the_config(midday: World) -> None:
    """``tls: ca.pem`` (relative to the config file): the bridge verifies the broker's
    certificate with it and publishes over TLS."""
    cert, key = write_self_signed(midday.tmp)
    async with running_broker(tls=(cert, key)) as broker:
        config = mqtt_config(midday, broker.port, extra=f"  tls: {cert.name}\n")
        assert config.mqtt_ca_file == cert
        bridge = Bridge.from_config(config)
        assert bridge is not None
        assert bridge.config.broker_port == broker.port
        service = service_for(midday, config, bridge)
        async with recording(broker.port, cafile=cert) as ha, bridge.running():
            service.start()
            await service.tick()
            await ha.until(lambda: f"{CHARGER}/state" in ha.latest, "the state over TLS")
            assert ha.latest["evopt/status"] == "online"
        await service.shutdown()


# --- `evopt run` with a sites: list ----------------------------------------------------------


async def test_evopt_run_once_bridges_every_site_of_a_fleet(
    sites: Sites,  # noqa: F811 - the fixture imported above
    broker: LocalBroker,
) -> None:
    """`evopt run --once` with `sites:` and `mqtt:`: one bridge for the process, each site
    under its alias with its own device and chargers, the last state flushed before exit and
    ``offline`` said at the stop."""
    config = sites.config()
    assert config.source is not None
    with config.source.open("a", encoding="utf-8") as file:
        file.write(f"mqtt:\n  host: 127.0.0.1\n  port: {broker.port}\n")
    argv = ["--config", str(config.source), "run", "--once"]
    assert await asyncio.to_thread(main, argv) == 0
    async with recording(broker.port) as ha:  # what the broker kept (retained)
        wanted = [f"evopt/{site}/charger{n}/state" for site in ("home", "farm") for n in (1, 2)]
        await ha.until(lambda: all(t in ha.latest for t in wanted), "every charger's state")
        await ha.until(
            lambda: len(configs(ha)) == 2 * (SITE_N + 2 * CHARGER_N), "both sites' discovery"
        )
        assert ha.latest["evopt/status"] == "offline"
        assert ha.json("evopt/home/state")["healthy"] is True
        assert ha.json("evopt/farm/state")["site"] == "farm"
        farm = ha.json("homeassistant/sensor/evopt_farm/charger2_amps/config")
        assert farm["device"]["via_device"] == "evopt_farm"


# --- the soak with the broker dropping --------------------------------------------------------

MQTT_SOAK_SEED = 3  # its schedule drops the broker five times in the first 500 ticks


async def test_the_soak_with_the_broker_dropping_loses_no_decision() -> None:
    """`make soak` runs this longer (tests/soak.py --mqtt): every guarantee of the fault soak
    holds with the bridge on, every decision is in the log, and the broker ends with the last
    tick's state however often it went away."""
    figures = await soak(MQTT_SOAK_SEED, 500, mqtt=True)
    report(figures.lines())
    assert figures.broker_drops >= 2
    assert figures.bridge_connections >= 2
    assert figures.bridge_current
    assert figures.decisions_logged == figures.decisions_made > 0
    assert check(figures) == []


# --- config ------------------------------------------------------------------------------------


def config_problems(tmp_path: Path, text: str) -> str:
    """The problems loading ``text`` as a config reports, one a line."""
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(YamlFileError) as caught:
        load_config(path)
    return "\n".join(str(p) for p in caught.value.problems)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mqtt:\n  host: mqtt://x\n", "2:3: mqtt.host: 'mqtt://x' is not a broker address"),
        ("mqtt:\n  host: h\n  base_topic: homeassistant\n", "must differ"),
        ("mqtt:\n  host: h\n  base_topic: evopt/#\n", "3:3: mqtt.base_topic: 'evopt/#' is"),
        ("mqtt:\n  host: h\n  port: 0\n", "3:3: mqtt.port: must be at least 1"),
        ("mqtt:\n  host: h\n  password_env: 1bad\n", "3:3: mqtt.password_env"),
        ("mqtt:\n  host: h\n  colour: red\n", "unknown key 'colour' in 'mqtt'"),
        ("mqtt:\n  host: h\n  tls: ca.pem\n", "3:3: mqtt.tls: no CA file at"),
        ("rule_sets:\n  default: [a.yaml]\n", "'default' is reserved"),
        ("rule_sets:\n  off: [a.yaml]\n", "'off' is reserved"),
        ("rule_sets:\n  'bad/name': [a.yaml]\n", "rule_sets"),
        ("rules: []\nrule_sets:\n  fast: [none.yaml]\n", "3:10: rule_sets.fast: 'none.yaml'"),
        (
            "mqtt:\n  host: h\nsites:\n"
            "  - name: home.a\n    enlighten: {site_id: 1}\n    rules: []\n"
            "  - name: home_a\n    enlighten: {site_id: 2}\n    rules: []\n",
            "7:5: sites[1]: name 'home_a' makes the MQTT topic level 'home_a', as 'home.a'",
        ),
    ],
)
def test_bad_mqtt_and_rule_set_keys_are_named(tmp_path: Path, text: str, message: str) -> None:
    problems = config_problems(tmp_path, text)
    assert message in problems
    assert str(tmp_path / "config.yaml") in problems


def test_mqtt_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("mqtt:\n  host: broker.local\n  tls: true\n", encoding="utf-8")
    mqtt = load_config(path).mqtt
    assert mqtt is not None
    assert (mqtt.base_topic, mqtt.discovery_prefix) == ("evopt", "homeassistant")
    assert (mqtt.broker_port, mqtt.identifier) == (8883, "evopt-evopt")
