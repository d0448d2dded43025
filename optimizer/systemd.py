"""systemd's notify protocol (sd_notify(3)), spoken directly: no dependency, no C library.

Why the service speaks it: under ``Type=notify`` systemd waits for ``READY=1`` before it calls
the unit started (so ``systemctl start`` reports a broken config instead of a false success),
shows the ``STATUS=`` line in ``systemctl status``, restarts the service when the
``WATCHDOG=1`` pings stop (a hung event loop is noticed), and knows when a reload or a stop
is under way.

The protocol is one datagram of newline-separated ``KEY=VALUE`` lines sent to the AF_UNIX
socket named by ``$NOTIFY_SOCKET``; a name starting with ``@`` is in Linux's abstract
namespace. systemd learns the sender's pid from the kernel (it sets ``SO_PASSCRED``), so no
credentials need to be attached by hand.

A notification is advice to the service manager, never a reason to stop: every failure to
send is logged (once at warning, later at debug) and swallowed, and the socket is
non-blocking so a busy systemd can never stall the event loop. Without ``$NOTIFY_SOCKET``
(a terminal, a test, another supervisor) every method does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from types import TracebackType

_LOGGER = logging.getLogger(__name__)

ENV_NOTIFY_SOCKET = "NOTIFY_SOCKET"
ENV_WATCHDOG_USEC = "WATCHDOG_USEC"
ENV_WATCHDOG_PID = "WATCHDOG_PID"

# `systemctl status` shows the whole STATUS= line; past a few hundred characters it only
# wraps or is cut by the terminal, and systemd reads at most one page per datagram.
STATUS_MAX_CHARS = 240
_ELLIPSIS = "…"


def one_line(text: str, limit: int = STATUS_MAX_CHARS) -> str:
    """``text`` as one printable line of at most ``limit`` characters.

    A newline would start a new ``KEY=VALUE`` assignment (a status could then forge
    ``READY=1``), and systemd ignores a datagram with an embedded NUL, so every control
    character becomes a space and runs of whitespace collapse.
    """
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    line = " ".join(printable.split())
    if len(line) > limit:
        line = line[: max(limit - len(_ELLIPSIS), 0)].rstrip() + _ELLIPSIS
    return line


def _env_int(name: str) -> int | None:
    """An integer from the environment; None when unset, empty or not a number."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        _LOGGER.debug("ignoring $%s=%r: not an integer", name, raw)
        return None


def _socket_address(path: str) -> bytes | None:
    """The address to send to: a file path, or ``\\0`` + name for ``@name``; None if unusable.

    systemd 253+ may also hand out ``vsock:CID:PORT`` (for virtual machines); evopt runs on
    the host, so such an address is reported and notifications are switched off.
    """
    if not path:
        return None
    if path.startswith("@"):
        return b"\0" + os.fsencode(path[1:])
    if path.startswith("/"):
        return os.fsencode(path)
    _LOGGER.warning(
        "$%s=%r is not an AF_UNIX socket path; systemd notifications are off",
        ENV_NOTIFY_SOCKET,
        path,
    )
    return None


class Notifier:
    """Tells systemd how the service is doing: ready, status, watchdog, reloading, stopping.

    Each argument defaults to the environment systemd sets for the unit (``NOTIFY_SOCKET``,
    ``WATCHDOG_USEC``, ``WATCHDOG_PID``). Pass ``socket_path=""`` to switch notifications off
    whatever the environment says, ``watchdog_usec=0`` to switch the watchdog off.

    The watchdog is this process's duty only when ``WATCHDOG_PID`` is unset or names this
    process: a child that inherited the variables must not ping on its parent's behalf.

    One lock serialises the sends, so it may be shared by the event loop and a worker thread;
    sends never block (a full socket buffer drops the message, which the next ping or status
    replaces).
    """

    def __init__(
        self,
        *,
        socket_path: str | None = None,
        watchdog_usec: int | None = None,
        watchdog_pid: int | None = None,
    ) -> None:
        path = socket_path if socket_path is not None else os.environ.get(ENV_NOTIFY_SOCKET, "")
        self._path = path
        self._address = _socket_address(path)
        usec = watchdog_usec if watchdog_usec is not None else _env_int(ENV_WATCHDOG_USEC)
        if watchdog_pid is not None:
            pid: int | None = watchdog_pid
        elif os.environ.get(ENV_WATCHDOG_PID, "").strip():
            # Set: ours only if it is our pid; an unreadable value is not (as sd_watchdog_enabled).
            pid = _env_int(ENV_WATCHDOG_PID) or -1
        else:
            pid = None
        self._watchdog_usec: int | None = None
        if self._address is not None and usec is not None and usec > 0:
            if pid is None or pid == os.getpid():
                self._watchdog_usec = usec
            else:
                _LOGGER.debug("watchdog belongs to pid %s, not to this process", pid)
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._warned = False

    @classmethod
    def from_env(cls) -> Notifier:
        """The notifier systemd's environment describes (a no-op one outside systemd)."""
        return cls()

    @property
    def enabled(self) -> bool:
        """True when systemd (or another supervisor) listens on ``$NOTIFY_SOCKET``."""
        return self._address is not None and not self._closed

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to call :meth:`watchdog`: half of ``WatchdogSec=``, as sd_watchdog_enabled(3)
        recommends; None when no watchdog is expected from this process."""
        if self._watchdog_usec is None or not self.enabled:
            return None
        return self._watchdog_usec / 2_000_000

    def ready(self, status: str | None = None) -> None:
        """Startup (or a reload) is complete: ``systemctl start`` / ``reload`` return now."""
        self._send("READY=1", status)

    def status(self, text: str) -> None:
        """The one-line summary ``systemctl status`` shows (newlines removed, length capped)."""
        self._send(None, text)

    def watchdog(self) -> None:
        """Still alive. Does nothing without a watchdog, so the loop may call it every tick."""
        if self.watchdog_interval_s is not None:
            self._send("WATCHDOG=1", None)

    def reloading(self) -> None:
        """A reload (SIGHUP) has begun; call :meth:`ready` when it is done, whatever the outcome.

        ``MONOTONIC_USEC`` lets systemd 253+ (``Type=notify-reload``) match this message to the
        reload it asked for; older versions ignore the field.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}", None)

    def stopping(self, status: str | None = None) -> None:
        """Shutdown has begun (SIGTERM): systemd shows "deactivating" instead of a hang."""
        self._send("STOPPING=1", status)

    def close(self) -> None:
        """Release the socket; later calls do nothing (safe to call twice)."""
        with self._lock:
            self._closed = True
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, head: str | None, status: str | None) -> None:
        if self._address is None:
            return
        lines = [head] if head else []
        if status is not None:
            lines.append(f"STATUS={one_line(status)}")
        if not lines:
            return
        message = "\n".join(lines)
        with self._lock:
            if self._closed:
                return
            try:
                if self._sock is None:
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    sock.setblocking(False)
                    self._sock = sock
                self._sock.sendto(message.encode("utf-8"), self._address)
            except OSError as err:
                self._report(err, message)

    def _report(self, err: OSError, message: str) -> None:
        """The first failure is worth a warning; repeating it every 30 s is noise."""
        what = message.split("\n", 1)[0].split("=", 1)[0]
        if self._warned:
            _LOGGER.debug("systemd notification %s not sent: %s", what, err)
            return
        self._warned = True
        _LOGGER.warning(
            "cannot notify systemd at %s (%s: %s); the service carries on, but systemd may "
            "not see its status or watchdog pings (later failures are logged at debug)",
            self._path,
            what,
            err,
        )
