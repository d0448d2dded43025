"""The service's recording of one tick: which decisions get a row, and when rows and the
engine memory are written.

Rules (docs/decision-log.md, "What is recorded, and when"):

- a hold that repeats unchanged gets no row (:mod:`optimizer.decisions.dedupe`), except as a
  heartbeat; every other decision gets one;
- the tick's rows and the engine memory (once per tick and site, under ``memory:<site>`` in
  ``state``) are written in one transaction at the end of the tick;
- except after a command: a decision that sent a write is committed as soon as its reply is
  in, with the rows before it and the memory that knows that command and none of the ones not
  yet sent. A crash then never forgets a command that reached the cloud (the restarted service
  would send it again) nor remembers one that did not;
- a tick that records no row and leaves the memory as it was writes nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from optimizer.decisions.dedupe import DEFAULT_HEARTBEAT, Fingerprint, should_record
from optimizer.decisions.store import (
    DecisionStore,
    Outcome,
    RunMode,
    decision_row,
    to_json,
)
from optimizer.engine.decision import Decision

Key = tuple[str, str]  # (charger_sn, target)


@dataclass
class TickLog:
    """What the service has recorded so far: the last fingerprint per charger and target and
    the memory last saved. One per service; :meth:`begin` starts each tick's recording."""

    store: DecisionStore
    last: dict[Key, Fingerprint] = field(default_factory=dict)
    saved_memory: str | None = None

    def begin(
        self,
        *,
        run_id: str,
        mode: RunMode,
        site_id: int | None,
        ts: datetime,
        memory_key: str,
        heartbeat: timedelta = DEFAULT_HEARTBEAT,
    ) -> TickRecording:
        return TickRecording(
            log=self,
            run_id=run_id,
            mode=mode,
            site_id=site_id,
            ts=ts,
            memory_key=memory_key,
            heartbeat=heartbeat,
        )

    def remember_saved(self, memory: Any) -> None:
        """The memory as the file holds it (after a resume): an unchanged one is not rewritten."""
        self.saved_memory = to_json(memory)


@dataclass
class _Pending:
    decision: Decision
    row: dict[str, Any]


@dataclass
class TickRecording:
    """One tick's rows, written as :class:`TickLog` says."""

    log: TickLog
    run_id: str
    mode: RunMode
    site_id: int | None
    ts: datetime
    memory_key: str
    heartbeat: timedelta
    written: list[int] = field(default_factory=list)  # ids of the rows written, in order
    skipped: int = 0
    _pending: list[_Pending] = field(default_factory=list)

    def add(
        self,
        decision: Decision,
        *,
        outcome: Outcome,
        error: str | None,
        commands: int,
        memory: Any,
    ) -> bool:
        """Record ``decision`` (or not: an unchanged hold); whether it gets a row. ``memory`` is
        the engine memory that matches the decisions up to this one, written now if this one
        sent a command."""
        key = (decision.charger_sn, decision.target)
        last = self.log.last.get(key)
        if not should_record(decision, outcome, last=last, now=self.ts, heartbeat=self.heartbeat):
            self.skipped += 1
            return False
        row = decision_row(
            decision,
            run_id=self.run_id,
            mode=self.mode,
            site_id=self.site_id,
            ts=self.ts,
            outcome=outcome,
            error=error,
            commands=commands,
        )
        self._pending.append(_Pending(decision, row))
        if commands:
            self._flush(memory)
        return True

    def finish(self, memory: Any) -> list[int]:
        """Write what is left with the tick's final memory; returns every id written."""
        self._flush(memory)
        return self.written

    def _flush(self, memory: Any) -> None:
        text = to_json(memory)
        if not self._pending and text == self.log.saved_memory:
            return
        ids = self.log.store.write_tick(
            [p.row for p in self._pending],
            state=(self.memory_key, text),
            updated_at=self.ts,
        )
        for pending in self._pending:
            key = (pending.decision.charger_sn, pending.decision.target)
            self.log.last[key] = Fingerprint.of(pending.decision, self.ts)
        self.log.saved_memory = text
        self.written.extend(ids)
        self._pending = []
