"""Secrets stay secret: the session file is private, and no password, token, cookie or e-mail
address reaches a log line, the decision log, a file in the state dir or a command's output.

The CLI runs in-process against the fake cloud (tests/cli_env.py), so every value the cloud
issued is known to the test: its sessions, manager tokens, CSRF tokens and pre-MFA nonces are
read from the fake itself, and the cookies and tokens the client kept from the session file.
The scan then looks for each of them (and for the password, the one-time code and the
account's e-mail address, also as they travel: URL-quoted and base64) everywhere a person or
a tool could read them. The e-mail address is not printed by any command (the project never
prints it: `evopt login` names the host and the state dir), so it counts as a hit too.

Log lines are scanned twice: as `evopt` writes them on stderr (through the redacting
formatter) and as raw records (caplog at DEBUG, no redaction). The redaction is only defence
in depth; the code is meant not to log secrets in the first place.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from optimizer.fakecloud import FakeCloud, run_in_thread
from optimizer.fakecloud.auth import AuthStore
from tests.cli_env import EMAIL, PASSWORD, CliRunner
from tests.test_service_process import write_run_config

# Distinctive values: none of them may occur in anything the project writes or prints.
OTP = "740392"
WRONG_PASSWORD = "wrong-Horse-8812"
HISTORY = ("--from", "2025-01-08", "--to", "2025-01-10")
MIN_SECRET = 6  # shorter issued values would match by accident


# --- the harness ------------------------------------------------------------------------------


@dataclass
class Secrets:
    """Everything that must never be seen, gathered as the fake issues it."""

    values: set[str] = field(default_factory=set)

    def add(self, *values: str | None) -> None:
        for value in values:
            if value and len(value) >= MIN_SECRET:
                self.values.add(value)
                self.values.add(quote(value, safe=""))
                if value.count(".") == 2:  # a JWT: its payload and signature on their own too
                    self.values.update(part for part in value.split(".")[1:] if len(part) > 16)

    def harvest(self, auth: AuthStore, session_file: Path) -> None:
        """Every session, token and pre-MFA login the fake knows of, and the client's file."""
        for session in auth.sessions.values():
            self.add(
                session.session_id,
                session.manager_token,
                session.xsrf_token,
                session.bp_xsrf_token,
            )
        for pending in auth.pending.values():
            self.add(pending.session_id, pending.nonce, pending.xsrf_token)
        if session_file.exists():
            data = json.loads(session_file.read_text(encoding="utf-8"))
            self.add(data.get("session_id"), data.get("manager_token"))
            self.add(*(data.get("cookies") or {}).values())

    def found_in(self, text: str) -> list[str]:
        return sorted(secret for secret in self.values if secret in text)


def base64_of(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class Harness(CliRunner):
    cloud: FakeCloud
    config: Path
    state_dir: Path
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch
    secrets: Secrets
    outputs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def session_file(self) -> Path:
        return self.state_dir / "session.json"

    def evopt(self, *args: str, code: int = 0) -> str:
        """Run one command at debug level; keep what it printed; check its exit code."""
        got, out, err = self.run("--log-level", "debug", *args)
        self.outputs.append((f"evopt {' '.join(args)} (stdout)", out))
        self.outputs.append((f"evopt {' '.join(args)} (stderr)", err))
        self.secrets.harvest(self.cloud.auth, self.session_file)
        assert got == code, f"evopt {' '.join(args)} exited {got}:\n{out}\n{err}"
        return out


def make_harness(
    cloud: FakeCloud,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Harness]:
    monkeypatch.setenv("ENLIGHTEN_PASSWORD", PASSWORD)
    for name in ("ENLIGHTEN_EMAIL", "EVOPT_CONFIG", "EVOPT_LOG_LEVEL", "NOTIFY_SOCKET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    secrets = Secrets()
    secrets.add(PASSWORD, WRONG_PASSWORD, OTP, EMAIL, base64_of(EMAIL), base64_of(OTP))
    with run_in_thread(cloud) as base_url:
        state_dir = tmp_path / "state"
        config = write_run_config(tmp_path, base_url, state_dir, site_id=None)
        yield Harness(cloud, config, state_dir, capsys, monkeypatch, secrets)


@pytest.fixture
def harness(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    cloud = FakeCloud(mfa=True, otp_code=OTP)
    cloud.update_charger(plugged_in=True)
    yield from make_harness(cloud, tmp_path, capsys, monkeypatch)


# --- what the scan reads ------------------------------------------------------------------------


def database_rows(path: Path) -> Iterator[tuple[str, str]]:
    """(where, text) for every column of every row of every table of one SQLite file."""
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            cursor = db.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from the file
            columns = [d[0] for d in cursor.description]
            for number, row in enumerate(cursor):
                for column, value in zip(columns, row, strict=True):
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    yield f"{path.name}:{table}[{number}].{column}", text


def state_files(state_dir: Path) -> Iterator[tuple[str, str]]:
    """(where, text) for every file in the state dir but the session file, byte for byte (a
    database's free pages and its WAL included), then every SQLite file's rows."""
    for path in sorted(p for p in state_dir.rglob("*") if p.is_file()):
        if path.name == "session.json":
            continue
        raw = path.read_bytes()
        yield str(path.relative_to(state_dir)), raw.decode("latin-1")
        if raw.startswith(b"SQLite format 3\x00"):
            yield from database_rows(path)


def log_records(caplog: pytest.LogCaptureFixture) -> Iterator[tuple[str, str]]:
    """Every record as a plain formatter writes it: message, arguments and traceback."""
    plain = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in caplog.records:
        yield f"log record {record.name}:{record.lineno}", plain.format(record)


def leaks(secrets: Secrets, places: Iterator[tuple[str, str]]) -> list[str]:
    return [f"{where}: {hit!r}" for where, text in places for hit in secrets.found_in(text)]


# --- (1) the session file ---------------------------------------------------------------------


@pytest.fixture
def plain_harness(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    cloud = FakeCloud()
    cloud.update_charger(plugged_in=True)
    yield from make_harness(cloud, tmp_path, capsys, monkeypatch)


def test_login_writes_the_session_file_0600_whatever_the_umask(
    plain_harness: Harness,
) -> None:
    """A umask of 0 would make a plainly created file world-readable: the tokens in it are a
    login to the owner's Enphase account."""
    old = os.umask(0)
    try:
        plain_harness.evopt("login")
    finally:
        os.umask(old)
    path = plain_harness.session_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not path.with_suffix(".tmp").exists()
    assert PASSWORD not in path.read_text(encoding="utf-8")
    # A later save (a re-login after the cloud dropped the session) keeps the mode.
    plain_harness.cloud.expire_sessions()
    old = os.umask(0)
    try:
        plain_harness.evopt("sites")
    finally:
        os.umask(old)
    assert len(plain_harness.cloud.requests("/login/login.json", method="POST")) == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606, 0o700], ids=oct)
@pytest.mark.parametrize(
    "command",
    [("status",), ("login",), ("run", "--once")],
    ids=" ".join,
)
def test_a_session_file_others_can_read_is_refused_with_a_message(
    plain_harness: Harness, mode: int, command: tuple[str, ...]
) -> None:
    """Refused, not silently used or replaced: the user must see that the tokens were exposed
    (and fix the mode, or delete the file to log in again)."""
    plain_harness.evopt("login")
    path = plain_harness.session_file
    before = path.read_bytes()
    requests = len(plain_harness.cloud.log)
    path.chmod(mode)

    code, out, err = plain_harness.run(*command)

    if mode & 0o077:
        assert code == 1  # a local file to fix (exit 1), not a failing cloud (4)
        message = err if command[0] != "run" else out + err
        assert str(path) in message
        assert f"mode {mode:o}" in message
        assert f"chmod 600 {path}" in message
        assert "Traceback" not in message
        # Nothing was sent with the exposed session, and the file is left as it was.
        assert len(plain_harness.cloud.log) == requests
        assert path.read_bytes() == before
        assert stat.S_IMODE(path.stat().st_mode) == mode
        path.chmod(0o600)
        plain_harness.evopt("status")  # fixed as the message says: works, no new login
        assert len(plain_harness.cloud.requests("/login/login.json", method="POST")) == 1
    else:  # 0700: only the owner, so accepted (the execute bit gives nothing away)
        assert code == 0, err


# --- (2) every CLI path, scanned ---------------------------------------------------------------


def run_every_command(h: Harness) -> None:
    """As many `evopt` paths as the fake can serve, the failing ones included."""
    cloud = h.cloud
    # Login with a one-time code, across commands (the pre-MFA cookies persist in between).
    h.evopt("login", code=3)
    cloud.advance(31)  # past the fake's resend throttle
    h.evopt("login", "--resend-otp")
    h.evopt("login", "--otp", "000000", code=3)
    h.evopt("login", "--otp", OTP)
    for args in (
        ("sites",),
        ("sites", "--json"),
        ("status",),
        ("status", "--json"),
        ("mode", "get"),
        ("mode", "get", "--json"),
        ("mode", "set", "GREEN_CHARGING"),
        ("mode", "set", "MANUAL_CHARGING", "--json"),
        ("battery", "get", "--json"),
        ("battery", "set", "off"),
        ("battery", "set", "on", "--json"),
        ("schedule", "list"),
        ("schedule", "list", "--json"),
        ("schedule", "add", "--start", "01:00", "--end", "02:00", "--days", "weekdays"),
        ("charge", "start", "--amps", "16"),
        ("charge", "stop", "--json"),
        ("live", "start"),
        ("live", "stop"),
        ("trigger", "metervalues"),
        ("plan", "set", "--by", "07:00", "--energy", "10"),
        ("plan", "show"),
        ("plan", "show", "--json"),
        ("run", "--once"),
        ("run", "--once", "--dry-run"),
        ("history", "fetch", *HISTORY, "--json"),
        ("simulate", *HISTORY, "--json"),
        ("validate",),
        ("validate", "--json"),
        ("log",),
        ("log", "--json"),
        ("log", "--csv"),
        ("log", "stats"),
        ("log", "stats", "--json"),
        ("log", "stats", "--csv"),
        ("log", "show", "1"),
        ("log", "show", "1", "--json"),
        ("plan", "clear"),
    ):
        h.evopt(*args)
    # A write the cloud refuses, and one that fails: the error paths print and log too.
    cloud.update_charger(plugged_in=False)
    h.evopt("charge", "start", code=1)
    cloud.update_charger(plugged_in=True)
    cloud.add_fault("status", path="/start_charging", status=500)
    h.evopt("charge", "start", "--amps", "16", code=4)
    # The cloud drops the session; the account no longer asks for a code, so the client logs
    # in again by itself with the password. Then once more with a password it refuses.
    cloud.set_account(mfa=False)
    cloud.expire_sessions()
    h.evopt("status")
    cloud.expire_sessions()
    h.monkeypatch.setenv("ENLIGHTEN_PASSWORD", WRONG_PASSWORD)
    h.evopt("sites", code=3)
    h.monkeypatch.setenv("ENLIGHTEN_PASSWORD", PASSWORD)
    h.evopt("sites", code=3)  # the refusal's cooldown: no automatic login for 5 minutes
    h.evopt("login")  # a person logs in, as the message says
    h.evopt("sites")
    h.evopt("run", "--once")
    h.evopt("log", "--json")


def test_no_secret_in_any_output_log_line_row_or_file(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    run_every_command(harness)

    secrets = harness.secrets
    issued = len(harness.cloud.auth.sessions)
    assert issued >= 2, "the test should have seen more than one session"
    assert len(secrets.values) > 20
    assert any(text for _, text in harness.outputs), "nothing was captured"
    assert caplog.records, "no log record was captured"
    found = leaks(secrets, iter(harness.outputs))
    found += leaks(secrets, log_records(caplog))
    found += leaks(secrets, state_files(harness.state_dir))
    assert found == [], "\n".join(found)


def test_the_scan_finds_what_it_looks_for(harness: Harness) -> None:
    """The scan itself can fail: a secret in a row, a file or a record is reported."""
    harness.evopt("login", code=3)
    harness.evopt("login", "--otp", OTP)
    harness.evopt("run", "--once")
    token = json.loads(harness.session_file.read_text(encoding="utf-8"))["manager_token"]
    database = harness.state_dir / "decisions.db"
    with sqlite3.connect(database) as db:
        db.execute("UPDATE decisions SET reason = ? WHERE id = 1", [f"leak {token}"])
    (harness.state_dir / "notes.txt").write_text(f"contact {EMAIL}", encoding="utf-8")
    found = leaks(harness.secrets, state_files(harness.state_dir))
    assert any("decisions[0].reason" in hit for hit in found), found
    assert any("notes.txt" in hit for hit in found), found
    assert leaks(harness.secrets, iter([("out", f"pw={PASSWORD}")])) == [f"out: {PASSWORD!r}"]


# --- (3) `evopt log` exports -------------------------------------------------------------------


def echoing(session: dict[str, Any]) -> str:
    """An error message as a gateway that echoes the request would write it."""
    cookies = "; ".join(f"{name}={value}" for name, value in session["cookies"].items())
    return (
        f"request of {EMAIL} refused: e-auth-token {session['session_id']}, "
        f"Authorization: Bearer {session['manager_token']}, Cookie: {cookies}"
    )


@pytest.mark.parametrize("status", [409, 500])
def test_log_exports_hold_no_token_or_cookie_even_when_the_cloud_echoes_them(
    plain_harness: Harness, status: int
) -> None:
    """Decision inputs are built from parsed, typed status fields (numbers, enums, the serial)
    and the config's own names: no auth value can reach them. The one free text from the cloud
    in a decision row is its error message (`decisions.error`: a refused write is "charger not
    ready (<what the cloud said>)", a failed one keeps the cloud's message). A cloud that echoes
    the request in it must not put the session into the log, its exports or the output."""
    h = plain_harness
    h.evopt("login")
    session = json.loads(h.session_file.read_text(encoding="utf-8"))
    assert session["cookies"], "the fake sets session cookies"
    h.cloud.add_fault(
        "status", path="/start_charging", status=status, message=echoing(session), times=0
    )

    out = h.evopt("run", "--once")
    assert "charging: start amps=16 -> " in out
    [row] = [
        r for _, r in database_rows_by_id(h.state_dir / "decisions.db") if r["action"] == "start"
    ]
    assert row["outcome"] == ("rejected" if status == 409 else "failed")
    assert "refused" in row["error"], "the cloud's message is kept (without the secrets)"
    assert "e-auth-token ***" in row["error"]
    for args in (
        ("log",),
        ("log", "--json"),
        ("log", "--csv"),
        ("log", "show", str(row["id"])),
        ("log", "show", str(row["id"]), "--json"),
        ("log", "--outcome", row["outcome"], "--json"),
    ):
        h.evopt(*args)
    h.evopt("charge", "start", code=1 if status == 409 else 4)  # the same reply, in the CLI

    found = leaks(h.secrets, iter(h.outputs))
    found += leaks(h.secrets, state_files(h.state_dir))
    assert found == [], "\n".join(found)


def database_rows_by_id(path: Path) -> list[tuple[int, dict[str, Any]]]:
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return [(r["id"], dict(r)) for r in db.execute("SELECT * FROM decisions ORDER BY id")]
