"""Two processes for one replay: the exact state comparison and the forked child behind it.

A replay is a loop whose every tick reads the state the previous one left, so it cannot be
cut in two by itself. It can be cut speculatively: a forked child replays the second half
from a fresh state a few days before the cut, while this process replays the first half; at
the cut the two states are compared, and where they are equal the child's ticks from there on
are the ones this process would have replayed (the same code on the same state and the same
inputs). Where they differ the child's work is thrown away and this process goes on alone:
slower, never different. optimizer/simulate/replay.py decides what the state is and where to
cut; this module holds what does not depend on the replay:

- :func:`exact`: equality with nothing rounded away. ``==`` says ``0.0 == -0.0``, ``1 ==
  True`` and two instants in other zones are equal; a later tick may tell each of them
  apart, so here floats compare by their bits, values by their type, instants by their zone
  object and fold, dicts by their order, models and dataclasses field by field. A type it
  does not know is unequal (the caller then goes on alone).
- :class:`Child`: a forked process that sends its messages through a pipe, ended when no
  longer wanted (``fork`` only: the child needs this process's objects as they are, and a
  spawned one would rebuild them, slowly). The child never waits for the parent to read: a
  thread writes its messages, pickled as they were sent, while it works on
  (:class:`_Sender`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import multiprocessing
import os
import queue
import signal
import struct
import sys
import threading
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import Any

from pydantic import BaseModel

__all__ = ["Child", "exact", "fork_child"]

_LOGGER = logging.getLogger(__name__)

_PLAIN = (int, str, bytes, bool, type(None), date, time, timedelta)


def exact(a: Any, b: Any) -> bool:
    """``a`` and ``b`` hold the same values, down to what no ``==`` sees (module docstring)."""
    if a is b:
        return True
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is float:
        return struct.pack("<d", a) == struct.pack("<d", b)
    if kind is datetime:
        return a.tzinfo is b.tzinfo and a.fold == b.fold and a == b
    if kind in _PLAIN:
        return bool(a == b)
    if kind is tuple or kind is list:
        return len(a) == len(b) and all(exact(x, y) for x, y in zip(a, b, strict=True))
    if kind is dict:
        return (
            len(a) == len(b)
            and all(exact(x, y) for x, y in zip(a, b, strict=True))
            and all(exact(a[key], b[key]) for key in a)
        )
    if isinstance(a, enum.Enum):
        return False  # members are singletons: ``a is b`` above
    np = sys.modules.get("numpy")  # none of its values exist before it is imported
    if np is not None and isinstance(a, np.generic):  # a numpy scalar: its bits, as a float's
        return bool(a.tobytes() == b.tobytes())
    if np is not None and isinstance(a, np.ndarray):
        return bool(a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes())
    if isinstance(a, BaseModel):
        names = type(a).model_fields
        return (
            a.__pydantic_extra__ == b.__pydantic_extra__
            and a.__pydantic_private__ == b.__pydantic_private__
            and all(exact(getattr(a, name), getattr(b, name)) for name in names)
        )
    if dataclasses.is_dataclass(a):
        return all(exact(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return False


class Child:
    """A forked process that sends messages back (:meth:`receive`) until it ends.

    With ``own_group`` it leads a process group of its own (:func:`fork_child`), and
    :meth:`close` ends the processes it started (a solve pool) with it."""

    def __init__(
        self, process: BaseProcess, reader: Connection, *, own_group: bool = False
    ) -> None:
        self._process = process
        self._reader = reader
        self._own_group = own_group

    def receive(self) -> Any:
        """The child's next message; None when it failed or is gone (the caller goes on
        alone). A child reports an exception as ``("failed", text)``: None here too."""
        try:
            got = self._reader.recv()
        except (EOFError, OSError) as err:
            _LOGGER.debug("forked child: no message (%s)", err)
            return None
        if isinstance(got, tuple) and got and got[0] == "failed":
            _LOGGER.debug("forked child failed: %s", got[1])
            return None
        return got

    def close(self) -> None:
        """End the child if it still runs (with its group, when it leads one) and release the
        pipe."""
        if self._process.is_alive():
            if self._own_group and self._process.pid is not None:
                try:
                    os.killpg(self._process.pid, signal.SIGTERM)
                except OSError:  # its group not made yet: nothing started below it
                    self._process.terminate()
            else:
                self._process.kill()
        self._process.join()
        self._reader.close()


class _Sender:
    """The child's messages, written to the pipe by a thread of their own.

    Why: a message bigger than the pipe's buffer (64 KiB) blocks its writer until the parent
    reads it, and the parent reads the child's state at a cut only when its own replay gets
    there. With the planner the state holds the causal forecast's arrays: the child stood
    still from its first cut until the parent reached it (50 of a year's 84 s), and the
    split saved nothing. Each message is pickled at once, as :meth:`Connection.send` would
    (so what the child changes after is not what is sent), and written in order."""

    def __init__(self, writer: Connection) -> None:
        self._writer = writer
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._gone = False  # the parent stopped reading: the work is for nobody
        self._thread = threading.Thread(target=self._write, name="split-sender", daemon=True)
        self._thread.start()

    def send(self, message: Any) -> None:
        """Queue ``message``; OSError once the parent stopped reading, so the work ends
        there, as when the child wrote itself."""
        if self._gone:
            raise OSError("the parent stopped reading")
        self._queue.put(bytes(ForkingPickler.dumps(message)))

    def close(self) -> None:
        """Wait until every message is written (or the parent stopped reading)."""
        self._queue.put(None)
        self._thread.join()

    def _write(self) -> None:
        while (data := self._queue.get()) is not None:
            try:
                self._writer.send_bytes(data)
            except OSError:  # the parent is gone or stopped listening: nothing more to say
                self._gone = True
                return


def _child_main(
    reader: Connection,
    writer: Connection,
    work: Callable[[Callable[[Any], None]], None],
    own_group: bool,
) -> None:
    # A Ctrl-C at the terminal reaches the whole group: the parent ends the child (and says
    # nothing about it), where the child would print a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The fork's copy of the parent's end: while it is open the pipe always has a reader, so a
    # parent that is gone (killed) or stopped reading would leave the child writing forever.
    reader.close()
    if own_group:
        try:
            os.setpgrp()
        except OSError as err:  # still works; only Child.close's clean-up is coarser
            _LOGGER.debug("forked child: no process group of its own (%s)", err)
    sender = _Sender(writer)
    try:
        work(sender.send)
    except Exception as err:  # noqa: BLE001 - reported to the parent, which goes on alone
        with contextlib.suppress(OSError):  # the parent is gone or stopped listening
            sender.send(("failed", f"{type(err).__name__}: {err}"))
    finally:
        sender.close()
        writer.close()


def fork_child(
    work: Callable[[Callable[[Any], None]], None], *, name: str, own_group: bool = False
) -> Child | None:
    """Run ``work(send)`` in a forked child; None where this platform cannot fork or no
    process can be had (the caller then does the work itself).

    The replay's second half and the optimum solved ahead of the report
    (optimizer/simulate/baseline_cache.py) both run here. ``own_group``: the child leads a
    process group of its own, so a Ctrl-C reaches the parent alone and :meth:`Child.close`
    ends what the child started too (the optimum's solve pool)."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(reader, writer, work, own_group), name=name)
    try:
        process.start()
    except OSError as err:
        _LOGGER.debug("%s: cannot fork (%s)", name, err)
        reader.close()
        writer.close()
        return None
    writer.close()  # the child's end: EOF for the reader when the child dies
    return Child(process, reader, own_group=own_group)


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
