"""The one-minute power history: what the site's power was, minute by minute, as the service
saw it, so `evopt simulate` can replay a user's own days at the resolution a local gateway
gives (docs/surplus.md, "One-minute history").

One row per site and UTC minute in the decision log's file (table ``power_minutes``, migration
6), integers in W. A value is stored only when the tick had a *fresh* reading of it (at most
:data:`FRESH_S` old): a 15-minute cloud bucket, 7.5 to 30 minutes old, describes another time
and would repeat one value fifteen times, so a minute without a fresh reading keeps NULL, a
gap the replay skips, never an invented or repeated value. Several ticks in one minute (a 30 s
poll) fill the row in: a fresh value replaces an older one of the same minute, a missing one
never erases it. Every write is one transaction (crash-safe as the decision log).

Retention is the decision log's, with its own keys: rows older than
``service.history_retention_days`` go, and the oldest days go first while the table and its
key use more than ``service.max_history_mb``.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from optimizer.decisions.store import DecisionStore, utc_text
from optimizer.engine.snapshot import Snapshot

__all__ = [
    "COLUMNS",
    "FRESH_S",
    "MinuteRow",
    "PowerHistory",
    "minute_of",
    "minute_row",
    "minute_text",
]

FRESH_S = 90.0
"""A reading this old or newer describes the minute it was read in (a poll of 30 s plus the
gateway's own few seconds); an older one (a cloud bucket) describes another time."""

COLUMNS = (
    "site_id",
    "minute",
    "pv_w",
    "house_w",
    "evse_w",
    "battery_charge_w",
    "battery_discharge_w",
    "plugged",
    "chargers",
    "source",
    "age_s",
)
"""The table's columns, in the order `evopt history export` writes them (docs/surplus.md)."""

BUCKET_SOURCES = frozenset({"lifetime_energy"})
"""Sources whose figures are 15-minute averages (the cloud's energy buckets)."""

_POWER = ("pv_w", "house_w", "evse_w", "battery_charge_w", "battery_discharge_w")
_MINUTE_FORMAT = "%Y-%m-%dT%H:%M:00Z"

_UPSERT = (
    f"INSERT INTO power_minutes ({', '.join(COLUMNS)})"  # noqa: S608 - fixed column names
    f" VALUES ({', '.join('?' for _ in COLUMNS)})"
    " ON CONFLICT (site_id, minute) DO UPDATE SET "
    + ", ".join(f"{c} = coalesce(excluded.{c}, {c})" for c in (*_POWER, "plugged", "chargers"))
    # The source and age are those of the newest fresh reading in the minute.
    + ", source = CASE WHEN excluded.pv_w IS NULL AND excluded.house_w IS NULL"
    " THEN source ELSE excluded.source END"
    + ", age_s = CASE WHEN excluded.pv_w IS NULL AND excluded.house_w IS NULL"
    " THEN age_s ELSE excluded.age_s END"
)


def minute_of(when: datetime) -> datetime:
    """The UTC minute ``when`` falls in (its start)."""
    if when.tzinfo is None:
        raise ValueError("the power history needs timezone-aware datetimes")
    return when.astimezone(UTC).replace(second=0, microsecond=0)


def minute_text(when: datetime) -> str:
    return minute_of(when).strftime(_MINUTE_FORMAT)


@dataclass(frozen=True)
class MinuteRow:
    """One site's power in one minute; None is "no fresh reading", never zero."""

    site_id: int
    minute: datetime
    pv_w: int | None
    house_w: int | None
    evse_w: int | None
    battery_charge_w: int | None
    battery_discharge_w: int | None
    plugged: int | None  # how many chargers had a car plugged in
    chargers: dict[str, int] | None  # each charger's draw (W) by serial
    source: str
    age_s: int | None

    def values(self) -> tuple[Any, ...]:
        chargers = None if self.chargers is None else json.dumps(self.chargers, sort_keys=True)
        return (
            self.site_id,
            minute_text(self.minute),
            self.pv_w,
            self.house_w,
            self.evse_w,
            self.battery_charge_w,
            self.battery_discharge_w,
            self.plugged,
            chargers,
            self.source,
            self.age_s,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "minute": minute_text(self.minute),
            "pv_w": self.pv_w,
            "house_w": self.house_w,
            "evse_w": self.evse_w,
            "battery_charge_w": self.battery_charge_w,
            "battery_discharge_w": self.battery_discharge_w,
            "plugged": self.plugged,
            "chargers": self.chargers,
            "source": self.source,
            "age_s": self.age_s,
        }


def _watts(value: float | None) -> int | None:
    """A power reading as stored: whole W, never negative; NaN or infinite is no reading."""
    if value is None or not math.isfinite(value):
        return None
    return max(0, round(value))


def _fresh(age_s: float | None) -> bool:
    return age_s is not None and math.isfinite(age_s) and 0 <= age_s <= FRESH_S


def minute_row(snapshot: Snapshot, *, site_id: int) -> MinuteRow:
    """What the tick's snapshot says about its minute: fresh values only (pure).

    PV and house load have their own ages when they come from different readings (the cloud's
    power sample and a bucket); the chargers' draw and plug state come from their status, which
    every tick reads, unless the status itself is an old one served during an outage.
    """
    surplus = snapshot.surplus
    age = surplus.age_s
    # A bucket is an average over 15 minutes, whatever its age: never one minute's reading.
    # A power sample's PV is (its own age); its house load and battery come from a bucket.
    whole = surplus.source not in BUCKET_SOURCES and surplus.pv_age_s is None and _fresh(age)
    pv_fresh = whole or (surplus.pv_age_s is not None and _fresh(surplus.pv_age_s))
    status_fresh = snapshot.stale_status_s is None
    draws = {c.sn: round(c.draw_w) for c in snapshot.chargers} if status_fresh else None
    evse = surplus.evse_w if whole and surplus.evse_w is not None else None
    if evse is None and draws is not None:
        evse = float(sum(draws.values()))
    return MinuteRow(
        site_id=site_id,
        minute=minute_of(snapshot.now),
        pv_w=_watts(surplus.pv_w) if pv_fresh else None,
        house_w=_watts(surplus.house_w) if whole else None,
        evse_w=_watts(evse),
        battery_charge_w=_watts(surplus.battery_charge_w) if whole else None,
        battery_discharge_w=_watts(surplus.battery_discharge_w) if whole else None,
        plugged=sum(c.plugged_in for c in snapshot.chargers) if status_fresh else None,
        chargers=draws,
        source=surplus.source,
        age_s=None if age is None or not math.isfinite(age) else round(age),
    )


class PowerHistory:
    """The ``power_minutes`` table of a decision log: record, read, and keep it bounded."""

    def __init__(self, store: DecisionStore) -> None:
        self.store = store

    def record(self, row: MinuteRow) -> None:
        """Write (or fill in) the row of its minute, in one transaction."""
        with self.store._write() as db:
            db.execute(_UPSERT, list(row.values()))

    def rows(
        self,
        *,
        site_id: int | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Iterator[MinuteRow]:
        """Rows in (site, minute) order, ``start`` inclusive and ``end`` exclusive."""
        sql = f"SELECT {', '.join(COLUMNS)} FROM power_minutes WHERE 1 = 1"  # noqa: S608
        params: list[Any] = []
        if site_id is not None:
            sql += " AND site_id = ?"
            params.append(site_id)
        if start is not None:
            sql += " AND minute >= ?"
            params.append(minute_text(start))
        if end is not None:
            sql += " AND minute < ?"
            params.append(minute_text(end))
        with self.store._lock:
            fetched = self.store.db.execute(sql + " ORDER BY site_id, minute", params).fetchall()
        for values in fetched:
            yield _from_values(values)

    def sites(self, *, with_readings: bool = False) -> list[int]:
        """The sites with recorded minutes; ``with_readings``: only those with at least one
        minute of PV and house load (a cloud-only service records the chargers alone)."""
        where = " WHERE pv_w IS NOT NULL AND house_w IS NOT NULL" if with_readings else ""
        with self.store._lock:
            found = self.store.db.execute(
                f"SELECT DISTINCT site_id FROM power_minutes{where} ORDER BY site_id"  # noqa: S608
            ).fetchall()
        return [int(row[0]) for row in found]

    def count(self, *, site_id: int | None = None) -> int:
        sql = "SELECT count(*) FROM power_minutes"
        params: list[Any] = []
        if site_id is not None:
            sql += " WHERE site_id = ?"
            params.append(site_id)
        with self.store._lock:
            return int(self.store.db.execute(sql, params).fetchone()[0])

    # --- retention -------------------------------------------------------------------------

    def apply_retention(self, *, days: int, now: datetime) -> int:
        """Delete minutes older than ``days``; returns the rows deleted."""
        if days < 1:
            raise ValueError("retention must keep at least 1 day")
        cutoff = minute_text(now - timedelta(days=days))
        with self.store._write() as db:
            return int(db.execute("DELETE FROM power_minutes WHERE minute < ?", [cutoff]).rowcount)

    def apply_size_limit(self, *, max_bytes: int) -> int:
        """Delete the oldest UTC days while the table uses more than ``max_bytes``.

        The newest day is always kept; the file does not shrink (SQLite reuses the pages).
        """
        if max_bytes < 1:
            raise ValueError("the size limit must be at least 1 byte")
        deleted = 0
        while self.used_bytes() > max_bytes:
            with self.store._write() as db:
                oldest, newest = db.execute(
                    "SELECT min(minute), max(minute) FROM power_minutes"
                ).fetchone()
                if oldest is None or oldest[:10] == newest[:10]:
                    break
                cutoff = datetime.fromisoformat(oldest[:10]).replace(tzinfo=UTC) + timedelta(days=1)
                deleted += db.execute(
                    "DELETE FROM power_minutes WHERE minute < ?", [utc_text(cutoff)]
                ).rowcount
        return deleted

    def used_bytes(self) -> int:
        """The bytes the table's pages take (SQLite's ``dbstat``; else an estimate per row)."""
        with self.store._lock:
            try:
                found = self.store.db.execute(
                    "SELECT sum(pgsize - unused) FROM dbstat WHERE name = 'power_minutes'"
                ).fetchone()[0]
            except sqlite3.OperationalError:  # a SQLite built without dbstat
                found = None
            if found is not None:
                return int(found)
            rows = self.store.db.execute("SELECT count(*) FROM power_minutes").fetchone()[0]
        return int(rows) * ESTIMATED_ROW_BYTES


ESTIMATED_ROW_BYTES = 64


def _from_values(values: tuple[Any, ...]) -> MinuteRow:
    (site_id, minute, pv, house, evse, charge, discharge, plugged, chargers, source, age) = values
    return MinuteRow(
        site_id=int(site_id),
        minute=datetime.strptime(minute, _MINUTE_FORMAT).replace(tzinfo=UTC),
        pv_w=pv,
        house_w=house,
        evse_w=evse,
        battery_charge_w=charge,
        battery_discharge_w=discharge,
        plugged=plugged,
        chargers=None if chargers is None else json.loads(chargers),
        source=source,
        age_s=age,
    )
