"""The simulation log: the simulated days' decisions, a week of whole days in one transaction,
written by the replay itself or, for a long replay, by a process of its own beside it.

What is logged: every command, and a hold when it says another thing than the last row of its
charger and target (:func:`optimizer.decisions.dedupe.said`: policy, action, parameters,
reason with the numbers masked). Logging every tick's holds made a year 87,652 rows (119 MB)
and kept the replay from reusing its settled ticks or running in two processes, about 10 s
against 2 (issue 16); the rows `evopt log` shows by default (commands and changes of control)
are the same either way. The day's figures per bucket (:func:`bucket_days`) go beside them,
for `evopt log plot --simulation`.

A replay of :data:`MIN_WRITER_BUCKETS` or more pickles each day's decisions to a writer
process, which turns them into rows and inserts them on the other core with the store's own
:meth:`~optimizer.decisions.store.DecisionStore.record_many`, so the file holds the same rows
in the same order and transactions as the replay writing them itself. (It was made
when a logged year wrote 87,600 rows, about 4 s of the 15 s a logged `evopt simulate` took.)

The writer is a fresh interpreter running this module, not a fork: the replay's process has
the decision log open, and SQLite's locks do not survive a fork (a forked child's new
connection would share the parent's lock bookkeeping). Without a process to be had, the
replay writes each day itself. A writer that fails (a full disk, a locked file) fails the
replay with its own error, as a failed write in the replay's process would: the days it
committed stay, the run stays unfinished.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

from optimizer.decisions.dedupe import Said, said
from optimizer.decisions.store import DecisionStore, Outcome
from optimizer.engine.decision import Decision

__all__ = ["DayLog", "Item", "LogWriterError", "bucket_days"]

_LOGGER = logging.getLogger(__name__)

Item = tuple[Decision, datetime, Outcome, int]

MIN_WRITER_BUCKETS = 2 * 365 * 96
"""Shorter replays write their own log. A year logs about 3,600-6,800 rows (the example rules
on the bundled years), 0.1-0.2 s to write here, less than the writer's start (a fresh
interpreter) costs the other core, which a replay of that length uses for its second half
(measured on the sample year: 3.47 s wall writing here against 3.63 s through the writer).
Longer ones (ten years, 40,000 rows and more) hand them over (tests lower the floor to see a
writer on a few days)."""


DAYS_PER_COMMIT = 7
"""Whole simulated days are committed this many at a time, so a reader never sees half a day.
A commit cost about 1.3 ms (WAL), and with a dozen rows a day one a day was half a second of a
logged year (the sample, the example config: 4.84 s against 4.24 s a week at a time, four
alternated runs on a slow host)."""

_END = pickle.dumps(None)


def bucket_days(
    starts: Sequence[datetime],
    seen_w: Sequence[float | None],
    amps: Sequence[int | None],
    zone: ZoneInfo,
) -> list[tuple[datetime, list[int | None], list[int | None]]]:
    """A replay's figures per local day, for the log's ``simulation_days``: each day's first
    bucket, the surplus in W each tick read (None: none known) and the level the charger
    drew (None: not charging).

    The log keeps only the decisions that say something new, too few to draw a day from
    (`evopt log plot --simulation`, optimizer/cli/logplot.py)."""
    days: list[tuple[datetime, list[int | None], list[int | None]]] = []
    current = None
    for start, watts, level in zip(starts, seen_w, amps, strict=True):
        today = start.astimezone(zone).date()
        if today != current:
            current = today
            days.append((start, [], []))
        days[-1][1].append(None if watts is None else round(watts))
        days[-1][2].append(level)
    return days


class LogWriterError(RuntimeError):
    """The writer process ended without saying why (killed, or its error could not be sent)."""


class DayLog:
    """The decisions to log, written a week of whole days per transaction (nothing without a
    store and run). :meth:`close` waits for every day to be committed; :meth:`abandon` stops
    the writer without waiting (the replay failed).

    ``collect``: no store, the rows kept in :attr:`kept` instead (the second process of a
    logged replay, which hands them to the first: optimizer/simulate/replay.py)."""

    def __init__(
        self,
        store: DecisionStore | None,
        run_id: str | None,
        site_id: int | None,
        zone: ZoneInfo,
        *,
        buckets: int = 0,
        collect: bool = False,
    ) -> None:
        """``buckets``: how long the replay is; a writer process only from
        :data:`MIN_WRITER_BUCKETS` on."""
        self.store, self.run_id, self.site_id, self.zone = store, run_id, site_id, zone
        self.on = collect or (store is not None and run_id is not None)
        self.collect = collect
        self.pending: list[Item] = []
        self.kept: list[Item] = []
        self.day: object = None
        self._days = 0  # the days the rows pending cover
        self._day_span: tuple[datetime, datetime] | None = None  # the day's bounds, in UTC
        self._figures: tuple[str, list[Any]] | None = None
        # Per charger and target, the last row's decision and what it said; a reused tick
        # hands back the very decisions it reuses, so most holds are told apart by identity.
        self.last: dict[tuple[str, str], tuple[Decision, Said]] = {}
        self._writer: _Writer | None = None
        self._started = buckets < MIN_WRITER_BUCKETS  # too short: never started

    def day_of(self, now: datetime) -> None:
        """The tick at ``now`` is next: a new local day commits the rows pending once they
        cover :data:`DAYS_PER_COMMIT` days."""
        if not self.on or self.collect:
            return
        span = self._day_span
        if span is not None and span[0] <= now < span[1]:
            return  # most ticks: the same day (a zone conversion per tick cost more)
        today = now.astimezone(self.zone).date()
        if today != self.day:
            if self._days >= DAYS_PER_COMMIT:
                self.flush()
            self._days += 1
        self.day = today
        # In UTC, as the replay's ticks are: aware times of two zones compare by their offsets.
        begin = datetime.combine(today, time(), tzinfo=self.zone).astimezone(UTC)
        end = datetime.combine(today + timedelta(days=1), time(), tzinfo=self.zone)
        self._day_span = begin, end.astimezone(UTC)

    def add(self, decision: Decision, now: datetime, sent: int) -> None:
        """Log the decision unless it is a hold that says what its last row said."""
        if not self.on:
            return
        key = (decision.charger_sn, decision.target)
        last = self.last.get(key)
        if not sent and decision.action == "hold" and last is not None:
            if last[0] is decision:
                return
            words = said(decision)
            self.last[key] = (decision, words)
            if words == last[1]:
                return
        else:
            self.last[key] = (decision, said(decision))
        item: Item = (decision, now, "applied" if sent else "noop", sent)
        (self.kept if self.collect else self.pending).append(item)

    def figures(
        self,
        starts: Sequence[datetime],
        seen_w: Sequence[float | None],
        amps: Sequence[int | None],
        charger_sn: str,
    ) -> None:
        """The replay's figures per bucket, saved beside the rows (:func:`bucket_days`) when
        the log is closed: the surplus each tick read and the level the charger drew."""
        self._figures = (charger_sn, bucket_days(starts, seen_w, amps, self.zone))

    def take(self, items: list[Item]) -> None:
        """Log rows another process decided on (already told apart), in their order."""
        for item in items:
            self.day_of(item[1])
            self.pending.append(item)

    def state(self) -> list[tuple[tuple[str, str], Said]]:
        """What the next rows are told apart from (the split compares it at its cuts)."""
        return sorted((key, words) for key, (_, words) in self.last.items())

    def flush(self) -> None:
        self._days = 0
        store, run_id = self.store, self.run_id
        if store is None or run_id is None or not self.pending:
            return
        items, self.pending = self.pending, []
        writer = self._writer_now(store, run_id)
        if writer is None:
            store.record_many(items, run_id=run_id, mode="simulation", site_id=self.site_id)
        else:
            writer.send(items)

    def close(self) -> None:
        """Flush, then wait until the writer has committed every day (raising its error), and
        save the figures (:meth:`figures`)."""
        self.flush()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.finish()
        store, run_id, figures = self.store, self.run_id, self._figures
        if store is not None and run_id is not None and figures is not None:
            store.save_simulation_days(run_id, *figures)

    def abandon(self) -> None:
        """End the writer without waiting: the replay failed, its error is the one to see."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.kill()

    def _writer_now(self, store: DecisionStore, run_id: str) -> _Writer | None:
        if not self._started:
            self._started = True
            self._writer = _Writer.start(store.path, run_id, self.site_id)
        return self._writer


class _Writer:
    """The writer process and the two pipes to it: days in, one answer out at the end."""

    def __init__(self, process: subprocess.Popen[bytes], days: Connection, answer: Connection):
        self._process, self._days, self._answer = process, days, answer

    @classmethod
    def start(cls, path: Path, run_id: str, site_id: int | None) -> _Writer | None:
        """A writer for the log at ``path``; None where no process can be had.

        A fresh interpreter running this module (not multiprocessing's spawn, which would
        import the caller's main script again in the child)."""
        days_in, days_out = os.pipe()
        answer_in, answer_out = os.pipe()
        site = "" if site_id is None else str(site_id)  # a site 0 stays 0
        command = [sys.executable, "-m", __name__, str(path), run_id, site]
        command += [str(days_in), str(answer_out)]
        try:
            process = subprocess.Popen(command, pass_fds=(days_in, answer_out))  # noqa: S603
        except (OSError, ValueError) as err:  # ValueError: no pass_fds (not POSIX)
            _LOGGER.debug("simulation log: no writer process (%s); writing here", err)
            for fd in (days_in, days_out, answer_in, answer_out):
                os.close(fd)
            return None
        os.close(days_in)
        os.close(answer_out)
        return cls(
            process, Connection(days_out, readable=False), Connection(answer_in, writable=False)
        )

    def send(self, items: list[Item]) -> None:
        try:
            # Plain pickle, not the Connection's own (multiprocessing's reducer table made
            # pickling a fifth of what the handing over cost the replay).
            self._days.send_bytes(pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            self._fail()

    def finish(self) -> None:
        try:
            self._days.send_bytes(_END)
            answer = self._answer.recv()
        except (OSError, EOFError):
            self._fail()
        self._end()
        if answer[0] == "failed":
            raise _error_of(answer)

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._end()

    def _fail(self) -> NoReturn:
        """The writer stopped reading: its report if it left one, else that it is gone."""
        try:
            answer = self._answer.recv() if self._answer.poll(5) else None
        except (OSError, EOFError):
            answer = None
        self.kill()
        if isinstance(answer, tuple) and answer and answer[0] == "failed":
            raise _error_of(answer)
        raise LogWriterError(
            "the simulation log's writer process ended unexpectedly (the days before are in "
            "the log; `evopt simulate --no-log` runs without it)"
        )

    def _end(self) -> None:
        self._process.wait()
        self._days.close()
        self._answer.close()


def _error_of(answer: tuple[Any, ...]) -> BaseException:
    error = answer[1]
    return error if isinstance(error, BaseException) else LogWriterError(str(error))


def _write_days(
    days: Connection, answer: Connection, path: Path, run_id: str, site_id: int | None
) -> None:
    """The writer: each day received in its own transaction, until None; then one answer."""
    try:
        written = 0
        with DecisionStore(path) as store:
            while (items := pickle.loads(days.recv_bytes())) is not None:  # noqa: S301 - our replay
                written += store.record_many(
                    items, run_id=run_id, mode="simulation", site_id=site_id
                )
        answer.send(("done", written))
    except Exception as err:  # noqa: BLE001 - reported to the replay, which raises it
        with contextlib.suppress(OSError):
            try:
                answer.send(("failed", err))
            except Exception:  # noqa: BLE001 - an error that does not pickle: its text
                answer.send(("failed", f"{type(err).__name__}: {err}"))
    finally:
        days.close()
        answer.close()


def _main(argv: list[str]) -> None:
    # A Ctrl-C at the terminal reaches the whole group: the replay ends the writer.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    path, run_id, site, days_fd, answer_fd = argv
    _write_days(
        Connection(int(days_fd), writable=False),
        Connection(int(answer_fd), readable=False),
        Path(path),
        run_id,
        int(site) if site else None,
    )


if __name__ == "__main__":
    _main(sys.argv[1:])
