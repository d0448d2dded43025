"""`evopt run`'s line per tick (pure) and where it goes, and the service's heartbeat.

The line is built from a tick report alone, so each case is a hand-built report; the
heartbeat is checked in the decision log after a service ran against the fake cloud.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import re
import select
import signal
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimizer.actuate import Actuation
from optimizer.decisions.store import Outcome
from optimizer.engine.decision import Action, Decision, TargetName
from optimizer.logsafe import register_secret
from optimizer.service import Acted, TickReport
from optimizer.service.heartbeat import (
    STALE_TICKS,
    TickFacts,
    heartbeat_key,
    heartbeat_record,
    judge,
)
from optimizer.service.talk import (
    REASON_WIDTH,
    Talker,
    shorten,
    tick_line,
    tick_sink,
    under_systemd,
)
from tests.cli_env import EMAIL, SITE_ID
from tests.test_service import HOLD_ONLY, MIDDAY, SN, STATUS_PATH, World, world_at
from tests.test_service_process import DEADLINE_S, Proc, running_site, wait_for

MELBOURNE = ZoneInfo("Australia/Melbourne")
AT = datetime(2025, 1, 15, 3, 5, 30, tzinfo=UTC)  # 14:05:30 in Melbourne
INPUTS = {"surplus_w": 420.0, "surplus_source": "lifetime_energy", "surplus_age_s": 540.0}
STOP_REASON = "surplus below the 1.0 kW stop threshold for 6 min"


def acted(
    sn: str,
    action: Action,
    outcome: Outcome,
    *,
    policy: str = "solar_excess",
    reason: str = STOP_REASON,
    target: TargetName = "charging",
    params: dict[str, Any] | None = None,
    inputs: dict[str, Any] | None = None,
    error: str | None = None,
) -> Acted:
    decision = Decision(
        policy, sn, target, action, params or {}, reason, INPUTS if inputs is None else inputs
    )
    return Acted(decision, Actuation(outcome, error=error), row_id=1)


def report(*items: Acted, **fields: Any) -> TickReport:
    return TickReport(
        **({"at": AT, "status": "status line", "delay_s": 30.0} | fields), acted=items
    )


# --- the line -----------------------------------------------------------------------------------


def test_a_stop_reads_as_the_issue_asks() -> None:
    line = tick_line(report(acted("EV123", "stop", "applied")), MELBOURNE)
    assert line == (
        "14:05:30  surplus 0.4 kW (bucket 9 min old)  "
        f"EV123: stop applied (solar_excess: {STOP_REASON})"
    )


def test_several_chargers_each_say_what_they_do_or_hold() -> None:
    line = tick_line(
        report(
            acted("EV1", "set_amps", "applied", params={"amps": 16}, reason="surplus 4.2 kW"),
            acted("EV1", "hold", "noop", target="mode", policy="green", reason="mode is right"),
            acted("EV2", "hold", "noop", policy="night", reason="waiting for 23:00"),
            acted("EV2", "hold", "noop", target="mode", policy="green", reason="mode is right"),
        ),
        MELBOURNE,
    )
    assert line.endswith(
        "EV1: set_amps 16 A applied (solar_excess: surplus 4.2 kW)  "
        "EV2: holds (night: waiting for 23:00)"
    )
    assert "mode is right" not in line  # a hold of another target is no news


def test_unknown_surplus_and_dry_run() -> None:
    unknown = {"surplus_w": None, "surplus_source": "none", "surplus_age_s": None}
    line = tick_line(report(acted("EV1", "start", "dry_run", inputs=unknown)), MELBOURNE)
    assert "  surplus unknown  " in line
    assert "EV1: start dry run, not sent (solar_excess:" in line


def test_a_failed_command_shows_its_error() -> None:
    line = tick_line(report(acted("EV1", "stop", "failed", error="HTTP 500")), MELBOURNE)
    assert "EV1: stop failed [HTTP 500] (solar_excess:" in line


def test_a_failed_tick_says_what_went_wrong_and_when_it_retries() -> None:
    status = f"Enlighten failing (HTTP 503 for {EMAIL}); next try in 60 s"
    line = tick_line(report(problem="cloud", error="HTTP 503", status=status), MELBOURNE)
    assert line.startswith("14:05:30  Enlighten failing (HTTP 503")
    assert line.endswith("next try in 60 s")
    assert EMAIL not in line  # never an e-mail address


def test_a_long_reason_is_cut_between_words_with_an_ellipsis() -> None:
    reason = "surplus " + "averaged over the last bucket " * 6 + "is below the threshold"
    line = tick_line(report(acted("EV1", "stop", "applied", reason=reason)), MELBOURNE)
    shown = line.split("(solar_excess: ", 1)[1].removesuffix(")")
    assert shown.endswith("...")
    assert len(shown) <= REASON_WIDTH
    assert reason.startswith(shown.removesuffix("..."))
    assert reason[len(shown) - 3] == " "  # cut where a word ended


@given(st.text(alphabet=st.sampled_from("ab  xyz-"), max_size=200), st.integers(4, 100))
def test_shorten_never_cuts_a_word_silently(text: str, width: int) -> None:
    flat = " ".join(text.split())
    short = shorten(text, width)
    assert len(short) <= width
    if short == flat:
        return
    assert short.endswith("...")
    kept = short.removesuffix("...")
    assert flat.startswith(kept)
    # Either a whole word ends where the cut is, or the first word alone is too long.
    assert flat[len(kept) : len(kept) + 1] in (" ", ",", ";", ":", ".", "") or " " not in kept


# --- where it goes ----------------------------------------------------------------------------


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_the_line_on_stdout(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    out = Tty()
    Talker(MELBOURNE, tick_sink(out=out, env={}))(report(acted("EV1", "stop", "applied")))
    assert out.getvalue().startswith("14:05:30  surplus 0.4 kW")
    assert not [r for r in caplog.records if r.name == "optimizer.service.talk"]


@pytest.mark.parametrize(
    ("env", "out"),
    [
        ({"JOURNAL_STREAM": "8:1234"}, Tty()),  # systemd's stdout is the journal
        ({"INVOCATION_ID": "abc"}, Tty()),
        ({}, io.StringIO()),  # a pipe or a file
    ],
)
def test_otherwise_the_log_gets_it_at_info(
    env: dict[str, str], out: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    Talker(MELBOURNE, tick_sink(out=out, env=env))(report(acted("EV1", "stop", "applied")))
    assert out.getvalue() == ""
    [record] = [r for r in caplog.records if r.name == "optimizer.service.talk"]
    assert record.levelno == logging.INFO
    assert record.getMessage().startswith("14:05:30  surplus 0.4 kW")


def test_under_systemd() -> None:
    assert under_systemd({"INVOCATION_ID": "x"})
    assert not under_systemd({"JOURNAL_STREAM": ""})


# --- the service: one line per tick, and the heartbeat ------------------------------------------


@pytest.fixture
async def midday(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    async for world in world_at(MIDDAY, tmp_path, monkeypatch):
        yield world


def heartbeat(world: World) -> dict[str, Any]:
    [row] = world.rows("SELECT value FROM state WHERE key = ?", heartbeat_key(SITE_ID))
    value: dict[str, Any] = json.loads(row["value"])
    return value


async def test_each_tick_talks_and_beats(midday: World) -> None:
    lines: list[str] = []
    service = midday.service(midday.config(HOLD_ONLY), on_tick=Talker(MELBOURNE, lines.append))
    assert await service.run(max_ticks=3) == 0
    assert [line[:8] for line in lines] == ["13:00:00", "13:00:30", "13:01:00"]
    assert all("EV9876543210: holds (manual:" in line for line in lines)

    beat = heartbeat(midday)
    assert beat["state"] == "stopped"  # marked on shutdown
    assert beat["last_tick_at"] == "2025-01-15T02:01:00Z"
    assert beat["stopped_at"] == "2025-01-15T02:01:00Z"
    assert beat["started_at"] == "2025-01-15T02:00:00Z"
    assert beat["mode"] == "live"
    assert beat["poll_interval_s"] == 30.0
    assert beat["problem"] is None
    [run] = midday.rows("SELECT run_id FROM runs")
    assert beat["run_id"] == run["run_id"]
    assert isinstance(beat["pid"], int)
    assert "req/h" in beat["status"]
    assert not judge(beat, now=MIDDAY + timedelta(minutes=1)).running


async def test_the_heartbeat_of_a_running_service_and_its_trouble(midday: World) -> None:
    midday.cloud.add_fault("status", path=STATUS_PATH, status=503, skip=1, times=100)
    service = midday.service(midday.config(HOLD_ONLY), dry_run=True)
    await service.tick()
    first = heartbeat(midday)
    assert (first["state"], first["mode"], first["problem"]) == ("running", "dry_run", None)
    health = judge(first, now=MIDDAY + timedelta(seconds=20))
    assert (health.running, health.healthy, health.last_tick_age_s) == (True, True, 20)

    await service.tick()  # the cloud fails now
    second = heartbeat(midday)
    assert second["problem"] == "cloud"
    assert "503" in second["message"]
    assert second["next_tick_at"] > second["last_tick_at"]
    health = judge(second, now=MIDDAY + timedelta(seconds=40))
    assert (health.running, health.healthy, health.problem) == (True, False, "cloud")
    await service.shutdown()
    assert heartbeat(midday)["state"] == "stopped"


def test_the_heartbeat_never_holds_a_secret() -> None:
    register_secret("s3cr3t-session-id")
    failed = report(
        problem="auth",
        error=f"refused for {EMAIL} (session s3cr3t-session-id)",
        status=f"authentication needed: run `evopt login`; acting on nothing ({EMAIL})",
    )
    facts = TickFacts(failed, poll_s=30.0, mode="live", run_id="r1", pid=42)
    record = heartbeat_record(facts, started_at=AT)
    text = json.dumps(record)
    assert EMAIL not in text
    assert "s3cr3t-session-id" not in text
    assert record["problem"] == "auth"
    assert record["message"].startswith("refused for ***")  # masked, whichever way


def test_a_heartbeat_older_than_a_few_ticks_is_not_running() -> None:
    beat = {
        "state": "running",
        "last_tick_at": "2025-01-15T02:00:00Z",
        "next_tick_at": "2025-01-15T02:00:30Z",
        "poll_interval_s": 30.0,
        "problem": None,
    }
    last = datetime(2025, 1, 15, 2, 0, tzinfo=UTC)
    assert judge(beat, now=last + timedelta(seconds=STALE_TICKS * 30)).running
    late = judge(beat, now=last + timedelta(seconds=STALE_TICKS * 30 + 1))
    assert (late.running, late.healthy, late.state) == (False, False, "not responding")
    # A long back-off announced its next tick: not dead before that.
    backing_off = beat | {"next_tick_at": "2025-01-15T02:15:00Z", "problem": "cloud"}
    assert judge(backing_off, now=last + timedelta(minutes=15)).running
    assert not judge({"state": "running"}, now=last).running  # damaged: never ran


# --- `evopt run` as a real process: a terminal gets the lines, systemd's journal gets them ------


def test_run_under_systemd_prints_nothing_and_logs_each_tick(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        proc = site.start(env={"JOURNAL_STREAM": "8:12345"})
        wait_for("two ticks", lambda: site.decisions() >= 2, proc)
        wait_for("a tick line", lambda: f"{SN}: " in proc.log(), proc)
        proc.signal(signal.SIGTERM)
        assert proc.finish() == (0, "")
        lines = [line for line in proc.log().splitlines() if "optimizer.service.talk" in line]
        assert lines
        assert all(line.startswith("INFO optimizer.service.talk: ") for line in lines)
        assert f"{SN}: start 16 A applied (all-day: in always" in lines[0]
        [beat] = site.query("SELECT value FROM state WHERE key = ?", heartbeat_key(SITE_ID))
        assert json.loads(beat["value"])["state"] == "stopped"


def test_run_in_a_terminal_prints_a_line_per_tick(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        leader, follower = pty.openpty()
        proc = site.start(env={"JOURNAL_STREAM": "", "INVOCATION_ID": ""}, stdout=follower)
        os.close(follower)
        try:
            seen = _read_until(leader, f"{SN}: holds", proc)
        finally:
            proc.signal(signal.SIGTERM)
            proc.finish()
            os.close(leader)
        lines = [line for line in seen.splitlines() if SN in line]
        assert re.match(r"^\d\d:\d\d:\d\d  surplus ", lines[0])
        assert f"{SN}: start 16 A applied (all-day: in always" in lines[0]
        assert "optimizer.service.talk" not in proc.log()  # not twice


def _read_until(fd: int, text: str, proc: Proc) -> str:
    seen = ""
    deadline = time.monotonic() + DEADLINE_S
    while text not in seen:
        if time.monotonic() > deadline or proc.popen.poll() is not None:
            pytest.fail(f"no {text!r} on the terminal:\n{seen}\n{proc.log()}")
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            seen += os.read(fd, 4096).decode("utf-8", "replace")
    return seen
