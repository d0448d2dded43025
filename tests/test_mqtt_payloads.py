"""The bridge's pure parts without a broker: topic names, discovery, scrubbing, and the steering
commands (`evopt pause|resume|rules use`) from a shell into the service's next tick."""

from __future__ import annotations

import asyncio
import errno
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimizer.cli import main
from optimizer.config import Config, load_config
from optimizer.connect import mqtt_password
from optimizer.decisions import DecisionStore
from optimizer.mqtt.bridge import _dead_socket
from optimizer.mqtt.payloads import CHARGER_STATES, SiteInfo, discovery, scrub, site_payload
from optimizer.mqtt.topics import Names, charger_aliases, slug
from optimizer.planner.outlook import SurplusOutlook
from optimizer.service.core import TickReport
from optimizer.steer import (
    CommandError,
    Steering,
    pause,
    pause_until,
    read_steering,
    take_actions,
    use_rule_set,
)
from tests.test_service import ROOT, World, applied

HA_ID = re.compile(r"^[A-Za-z0-9_-]+$")
NOW = datetime(2025, 1, 15, 2, 0, tzinfo=UTC)
NAMES = Names("evopt", "homeassistant")


def site(aliases: dict[str, str]) -> SiteInfo:
    return SiteInfo(
        slug="home",
        label="home",
        timezone="Australia/Melbourne",
        rule_sets=("default", "fast", "off"),
        aliases=aliases,
    )


def test_discovery_ids_are_unique_stable_and_free_of_serials() -> None:
    aliases = charger_aliases(["EV0002", "EV0001"])
    assert aliases == {"EV0001": "charger1", "EV0002": "charger2"}
    messages = discovery(NAMES, site(aliases), version="1.2.3")
    configs = [json.loads(m.payload) for m in messages]
    ids = [c["unique_id"] for c in configs]
    assert len(ids) == len(set(ids)) == 14 + 2 * 15
    assert all(m.retain for m in messages)
    for message, config in zip(messages, configs, strict=True):
        _, _, node, object_id, _ = message.topic.split("/")
        assert HA_ID.match(node)
        assert HA_ID.match(object_id)
        assert "EV000" not in message.topic + message.payload
        assert config["origin"] == {"name": "evopt", "sw_version": "1.2.3"}
    chargers = {c["device"]["identifiers"][0] for c in configs if "via_device" in c["device"]}
    assert chargers == {"evopt_home_charger1", "evopt_home_charger2"}
    state = next(c for c in configs if c["unique_id"] == "evopt_home_charger2_state")
    assert state["options"] == list(CHARGER_STATES)
    assert state["state_topic"] == "evopt/home/charger2/state"
    # Built again: the same ids (a restart must not make Home Assistant see new entities).
    again = [
        json.loads(m.payload)["unique_id"] for m in discovery(NAMES, site(aliases), version="2")
    ]
    assert again == ids


@pytest.mark.parametrize(
    ("token", "expires", "problem"),
    [
        (None, None, None),
        (
            {"expires_at": "2026-03-01T00:00:00+00:00", "renewal_failed": None},
            "2026-03-01T11:00:00+11:00",
            None,
        ),
        (
            {"expires_at": "2026-03-01T00:00:00+00:00", "renewal_failed": "Entrez refused: 403"},
            "2026-03-01T11:00:00+11:00",
            "Entrez refused: 403",
        ),
        ({"expires_at": "not a time", "renewal_failed": 7}, None, None),
    ],
)
def test_site_state_carries_the_gateway_tokens_expiry_never_the_token(
    token: dict[str, object] | None, expires: str | None, problem: str | None
) -> None:
    report = TickReport(at=NOW, status="ok", delay_s=30.0, gateway_token=token)
    message = site_payload(NAMES, site({}), report, Steering(), NOW)
    state = json.loads(message.payload)
    assert state["gateway_token_expires"] == expires  # in the site's zone, as HA wants
    assert state["gateway_token_problem"] == problem
    assert "eyJ" not in message.payload


def test_topics_round_trip_and_slugs() -> None:
    assert slug("home.farm 2") == "home_farm_2"
    assert slug("///") == "site"
    assert NAMES.parse_command(NAMES.command("home", "pause")) == ("home", None, "pause")
    assert NAMES.parse_command(NAMES.command("home", "plan", "charger1")) == (
        "home",
        "charger1",
        "plan",
    )
    assert NAMES.parse_command("evopt/home/state") is None
    assert NAMES.parse_command("other/home/set/pause") is None


serials = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=6, max_size=14)


@given(sn=serials, before=st.text(max_size=40), after=st.text(max_size=40))
def test_scrub_never_lets_a_serial_through(sn: str, before: str, after: str) -> None:
    text = scrub(f"{before}{sn}{after} and {sn}", {sn: "charger1"})
    assert sn not in text.replace("charger1", "")
    assert "charger1" in text


def test_scrub_masks_emails() -> None:
    assert "owner@example.com" not in scrub("ask owner@example.com", {})


def test_pause_bounds() -> None:
    assert pause_until(None, now=NOW) == NOW + timedelta(hours=1)
    assert pause_until("30m", now=NOW) == NOW + timedelta(minutes=30)
    for bad in ("0s", "8d", "soon", "-1h"):
        with pytest.raises(CommandError):
            pause_until(bad, now=NOW)


# --- the CLI into the service's next tick -------------------------------------------------------


def config_at(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"service:\n  state_dir: {tmp_path / 'state'}\n"
        f"rules: [{ROOT / 'rules' / 'excess-solar.yaml'}]\n"
        f"rule_sets:\n  fast: [{ROOT / 'rules' / 'sets' / 'fast.yaml'}]\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pause", "--for", "0s"], "longer than 0s"),
        (["pause", "--for", "8d"], "at most 7d"),
        (["rules", "use", "turbo"], "unknown rule set 'turbo'; use one of: default, fast, off"),
    ],
)
def test_cli_refuses_bad_values_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["--config", str(config_at(tmp_path)), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "state" / "decisions.db").exists()  # nothing half-written


def test_cli_rules_use_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(config_at(tmp_path))
    assert main(["--config", config, "rules", "use", "fast"]) == 0
    assert "rule set 'fast'" in capsys.readouterr().out
    assert main(["--config", config, "rules", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["in_use"]) for r in listed["rule_sets"]] == [
        ("default", False),
        ("fast", True),
        ("off", False),
    ]
    assert main(["--config", config, "pause", "--for", "2h", "--json"]) == 0
    paused = json.loads(capsys.readouterr().out)
    assert (paused["command"], paused["source"]) == ("pause", "cli")
    with DecisionStore(tmp_path / "state" / "decisions.db") as store:
        steering = read_steering(store, load_config(Path(config)))
    assert steering.rule_set == "fast"
    assert steering.paused_until is not None


@pytest.fixture
async def midday(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    from tests.test_service import MIDDAY, world_at  # noqa: PLC0415

    async for world in world_at(MIDDAY, tmp_path, monkeypatch):
        yield world


async def test_commands_from_a_shell_reach_the_next_tick(midday: World) -> None:
    """`evopt rules use fast` while the service runs: the next tick starts at full power and
    the decision log says the user chose it (the service recorded it, with its run)."""
    rules = (ROOT / "rules" / "excess-solar.yaml").read_text(encoding="utf-8")
    config = midday.config(rules)
    extra = f"rule_sets:\n  fast: [{ROOT / 'rules' / 'sets' / 'fast.yaml'}]\n"
    assert config.source is not None
    config.source.write_text(config.source.read_text(encoding="utf-8") + extra, encoding="utf-8")
    config = load_config(config.source)
    service = midday.service(config)
    service.start()
    await service.tick()
    assert applied(midday.rows(), "start") == []
    command = ["--config", str(config.source), "rules", "use", "fast"]
    assert await asyncio.to_thread(main, command) == 0  # another "process": its own loop
    midday.cloud.advance(30)
    await service.tick()
    [start] = applied(midday.rows(), "start")
    assert start["policy"] == "fast"
    [user] = midday.rows("SELECT * FROM decisions WHERE policy = 'user-command'")
    assert (user["action"], user["outcome"], user["charger_sn"]) == ("hold", "noop", None)
    assert user["run_id"] == service.run_id
    assert json.loads(user["inputs"])["source"] == "cli"
    assert json.loads(user["params"]) == {"command": "rules use", "rule_set": "fast"}
    # Taken once: the next tick records nothing more.
    midday.cloud.advance(30)
    await service.tick()
    assert len(midday.rows("SELECT * FROM decisions WHERE policy = 'user-command'")) == 1
    assert service.steering == Steering(rule_set="fast")
    await service.shutdown()


def test_take_actions_records_each_command_once(tmp_path: Path) -> None:
    config = Config(service={"state_dir": tmp_path})  # type: ignore[arg-type]
    with DecisionStore(tmp_path / "decisions.db") as store:
        run = store.start_run(
            mode="live",
            site_id=1,
            config_hash="c",
            rules_hash="r",
            version="v",
            started_at=NOW,
        )
        pause(store, config, until=NOW + timedelta(hours=1), now=NOW, source="cli")
        use_rule_set(store, config, "off", now=NOW, source="mqtt")
        steering, taken = take_actions(store, config, run_id=run, mode="live", site_id=1, now=NOW)
        assert [a.command for a in taken] == ["pause", "rules use"]
        assert steering == Steering(rule_set="off", paused_until=NOW + timedelta(hours=1))
        assert steering.holds_writes(NOW) is not None
        assert steering.holds_writes(NOW + timedelta(hours=2)) == "rule set off"
        _, again = take_actions(store, config, run_id=run, mode="live", site_id=1, now=NOW)
        assert again == []
        rows = store.db.execute("SELECT policy, outcome FROM decisions").fetchall()
    assert rows == [("user-command", "noop"), ("user-command", "noop")]


def test_only_a_closed_socket_is_kept_out_of_the_error_log() -> None:
    """aiomqtt 2.5 schedules add_writer for a socket paho may close first (a broker that
    vanished): asyncio would log EBADF with a traceback each time; anything else still shows."""
    loop = asyncio.new_event_loop()
    try:
        dead = {"exception": OSError(errno.EBADF, "Bad file descriptor")}
        writer = dead | {"handle": asyncio.Handle(loop.add_writer, (), loop)}
        assert _dead_socket(writer)
        assert not _dead_socket(dead | {"handle": asyncio.Handle(print, (), loop)})
        other = {"exception": OSError(errno.EPIPE, "Broken pipe")}
        assert not _dead_socket(other | {"handle": writer["handle"]})
        assert not _dead_socket({"message": "Task exception was never retrieved"})
    finally:
        loop.close()


def test_broker_password_comes_from_the_contracts_variable_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DESIGN.md promises $EVOPT_MQTT_PASSWORD without any `password_env` in the file; a named
    variable replaces it, and without either the systemd credential is the last resort."""
    path = tmp_path / "config.yaml"
    path.write_text("mqtt:\n  host: broker.local\n  username: evopt\n", encoding="utf-8")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.setenv("EVOPT_MQTT_PASSWORD", "from-default")
    assert mqtt_password(load_config(path)) == "from-default"

    path.write_text("mqtt:\n  host: broker.local\n  password_env: GARAGE_MQTT\n", encoding="utf-8")
    monkeypatch.setenv("GARAGE_MQTT", "from-named")
    assert mqtt_password(load_config(path)) == "from-named"

    monkeypatch.delenv("GARAGE_MQTT")
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "mqtt-password").write_text("from-credential\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    assert mqtt_password(load_config(path)) == "from-credential"


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        (None, None),  # no planner, or no forecast yet: it follows the current surplus
        ("forecast", "learned"),
        (
            "Forecast.Solar, fetched 2026-12-08 09:00 UTC",
            "Forecast.Solar, fetched 2026-12-08 09:00 UTC",
        ),
    ],
)
def test_site_state_says_whose_sun_the_planner_counts_on(
    source: str | None, shown: str | None
) -> None:
    outlook = None if source is None else SurplusOutlook(0.0, 0, (1.0,), (1.0,), (1.0,), source)
    report = TickReport(at=NOW, status="ok", delay_s=30.0)
    report = replace(report, snapshot=SimpleNamespace(outlook=outlook, surplus=None))
    state = json.loads(site_payload(NAMES, site({}), report, Steering(), NOW).payload)
    assert state["solar_forecast"] == shown
    assert (
        json.loads(site_payload(NAMES, site({}), None, Steering(), NOW).payload)["solar_forecast"]
        is None
    )
