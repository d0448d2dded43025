"""The notify protocol against real AF_UNIX datagram sockets standing in for systemd."""

from __future__ import annotations

import logging
import os
import socket
import struct
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from optimizer.systemd import (
    ENV_NOTIFY_SOCKET,
    ENV_WATCHDOG_PID,
    ENV_WATCHDOG_USEC,
    STATUS_MAX_CHARS,
    Notifier,
)

# sun_path holds 108 bytes; pytest's tmp_path can be longer on some machines.
_MAX_UNIX_PATH = 100


class Listener:
    """A bound datagram socket playing systemd's part: receives what a Notifier sends."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock = sock
        self.name = name  # what NOTIFY_SOCKET would hold

    def receive(self) -> str:
        return self.sock.recv(4096).decode("utf-8")

    def nothing_sent(self) -> bool:
        """Sends are synchronous: anything sent is already queued, so no waiting here."""
        self.sock.setblocking(False)
        try:
            self.sock.recv(4096)
        except BlockingIOError:
            return True
        finally:
            self.sock.settimeout(1.0)
        return False


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite may itself run under systemd: never talk to the real manager."""
    for name in (ENV_NOTIFY_SOCKET, ENV_WATCHDOG_USEC, ENV_WATCHDOG_PID):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Listener]:
    path = tmp_path / "notify.sock"
    short_dir = None
    if len(os.fsencode(path)) > _MAX_UNIX_PATH:
        short_dir = tempfile.mkdtemp(prefix="evopt-")
        path = Path(short_dir) / "n.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(os.fsencode(path))
    sock.settimeout(1.0)
    try:
        yield Listener(sock, str(path))
    finally:
        sock.close()
        path.unlink(missing_ok=True)
        if short_dir is not None:
            os.rmdir(short_dir)


@pytest.fixture
def abstract_listener() -> Iterator[Listener]:
    name = f"evopt-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(1.0)
    try:
        yield Listener(sock, "@" + name)
    finally:
        sock.close()


def test_ready_with_status(listener: Listener) -> None:
    with Notifier(socket_path=listener.name) as notifier:
        assert notifier.enabled
        notifier.ready("charger idle, surplus 1.2 kW")
        notifier.ready()
    assert listener.receive() == "READY=1\nSTATUS=charger idle, surplus 1.2 kW"
    assert listener.receive() == "READY=1"


def test_kernel_attaches_our_pid(listener: Listener) -> None:
    """systemd sets SO_PASSCRED and checks the sender's pid (NotifyAccess=main): no need to
    attach credentials by hand, the kernel fills in the real ones."""
    listener.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    Notifier(socket_path=listener.name).ready()
    creds_size = struct.calcsize("3i")
    data, ancillary, _flags, _addr = listener.sock.recvmsg(4096, socket.CMSG_SPACE(creds_size))
    assert data == b"READY=1"
    [(level, kind, payload)] = ancillary
    assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_CREDENTIALS)
    pid, uid, _gid = struct.unpack("3i", payload[:creds_size])
    assert (pid, uid) == (os.getpid(), os.getuid())


def test_status_is_one_capped_line(listener: Listener) -> None:
    notifier = Notifier(socket_path=listener.name)
    notifier.status("charging 16 A\nREADY=1\r\n\tsurplus\x00 3 kW")
    notifier.status("x" * 1000)
    assert listener.receive() == "STATUS=charging 16 A READY=1 surplus 3 kW"
    long = listener.receive()
    assert long.startswith("STATUS=xxx")
    assert long.endswith("…")
    assert len(long) == len("STATUS=") + STATUS_MAX_CHARS
    assert "\n" not in long


def test_watchdog_ping_and_interval(listener: Listener) -> None:
    notifier = Notifier(socket_path=listener.name, watchdog_usec=120_000_000)
    assert notifier.watchdog_interval_s == 60.0
    notifier.watchdog()
    assert listener.receive() == "WATCHDOG=1"


def test_stopping_with_and_without_status(listener: Listener) -> None:
    notifier = Notifier(socket_path=listener.name)
    notifier.stopping("stopping after the current tick")
    notifier.stopping()
    assert listener.receive() == "STOPPING=1\nSTATUS=stopping after the current tick"
    assert listener.receive() == "STOPPING=1"


def test_reloading_carries_monotonic_usec(listener: Listener) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    Notifier(socket_path=listener.name).reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    head, stamp = listener.receive().split("\n")
    assert head == "RELOADING=1"
    key, value = stamp.split("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_abstract_namespace(abstract_listener: Listener) -> None:
    notifier = Notifier(socket_path=abstract_listener.name)
    notifier.ready("up")
    notifier.watchdog()  # no watchdog configured: nothing sent
    notifier.stopping()
    assert abstract_listener.receive() == "READY=1\nSTATUS=up"
    assert abstract_listener.receive() == "STOPPING=1"


def test_defaults_come_from_the_environment(
    listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_NOTIFY_SOCKET, listener.name)
    monkeypatch.setenv(ENV_WATCHDOG_USEC, "30000000")
    monkeypatch.setenv(ENV_WATCHDOG_PID, str(os.getpid()))
    notifier = Notifier.from_env()
    assert notifier.enabled
    assert notifier.watchdog_interval_s == 15.0
    notifier.watchdog()
    assert listener.receive() == "WATCHDOG=1"


def test_watchdog_without_pid_is_ours(listener: Listener, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_NOTIFY_SOCKET, listener.name)
    monkeypatch.setenv(ENV_WATCHDOG_USEC, "1000000")
    assert Notifier().watchdog_interval_s == 0.5


@pytest.mark.parametrize("pid", ["parent", "not-a-pid"])
def test_watchdog_of_another_process_is_off(
    listener: Listener, monkeypatch: pytest.MonkeyPatch, pid: str
) -> None:
    monkeypatch.setenv(ENV_NOTIFY_SOCKET, listener.name)
    monkeypatch.setenv(ENV_WATCHDOG_USEC, "120000000")
    monkeypatch.setenv(ENV_WATCHDOG_PID, str(os.getppid()) if pid == "parent" else pid)
    notifier = Notifier()
    assert notifier.enabled
    assert notifier.watchdog_interval_s is None
    notifier.watchdog()
    assert listener.nothing_sent()


def test_watchdog_pid_argument_mismatch(listener: Listener) -> None:
    notifier = Notifier(
        socket_path=listener.name, watchdog_usec=120_000_000, watchdog_pid=os.getpid() + 1
    )
    assert notifier.watchdog_interval_s is None


@pytest.mark.parametrize("usec", ["", "0", "-5", "soon"])
def test_unusable_watchdog_usec_means_no_watchdog(
    listener: Listener, monkeypatch: pytest.MonkeyPatch, usec: str
) -> None:
    monkeypatch.setenv(ENV_WATCHDOG_USEC, usec)
    assert Notifier(socket_path=listener.name).watchdog_interval_s is None


def test_disabled_notifier_is_a_no_op(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(ENV_WATCHDOG_USEC, "120000000")
    for notifier in (Notifier(), Notifier(socket_path="")):
        assert not notifier.enabled
        assert notifier.watchdog_interval_s is None
        notifier.ready("up")
        notifier.status("x")
        notifier.watchdog()
        notifier.reloading()
        notifier.stopping("bye")
        notifier.close()
    assert caplog.records == []


def test_empty_socket_path_overrides_the_environment(
    listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_NOTIFY_SOCKET, listener.name)
    notifier = Notifier(socket_path="")
    notifier.ready()
    assert not notifier.enabled
    assert listener.nothing_sent()


def test_unsupported_address_is_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="optimizer.systemd"):
        notifier = Notifier(socket_path="vsock:2:1234")
    assert not notifier.enabled
    notifier.ready()
    assert "not an AF_UNIX socket path" in caplog.text


def test_vanished_socket_warns_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(socket_path=str(tmp_path / "gone.sock"), watchdog_usec=2_000_000)
    with caplog.at_level(logging.DEBUG, logger="optimizer.systemd"):
        notifier.ready("up")
        notifier.watchdog()
        notifier.status("still here")
        notifier.reloading()
        notifier.stopping()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "READY" in warnings[0].getMessage()
    assert len([r for r in caplog.records if r.levelno == logging.DEBUG]) == 4
    assert notifier.enabled  # a later systemd may be back: keep trying


def test_socket_removed_while_running(listener: Listener) -> None:
    notifier = Notifier(socket_path=listener.name)
    notifier.ready()
    assert listener.receive() == "READY=1"
    listener.sock.close()
    Path(listener.name).unlink()
    notifier.watchdog()
    notifier.status("after systemd went away")  # must not raise
    notifier.close()


def test_full_socket_buffer_does_not_block(
    listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    """A listener that stops reading (a busy systemd) must never stall the event loop."""
    notifier = Notifier(socket_path=listener.name)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="optimizer.systemd"):
        for _ in range(2000):
            notifier.status("y" * 200)
    assert time.monotonic() - started < 1.0
    assert len(caplog.records) == 1  # the queue did fill up: dropped, reported once


def test_close_is_idempotent_and_silences(listener: Listener) -> None:
    notifier = Notifier(socket_path=listener.name)
    notifier.close()
    notifier.close()
    notifier.ready()
    assert not notifier.enabled
    assert listener.nothing_sent()
