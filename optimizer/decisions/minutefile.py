"""The export format of the one-minute history: CSV (default) or JSON, one row per site-minute.

`evopt history export` writes it and `evopt simulate --minutes FILE` reads it back, so a day
can be replayed on another machine, edited, or made by another tool. The columns are
:data:`optimizer.decisions.minutes.COLUMNS` in that order (docs/surplus.md lists them): an
empty CSV field or a JSON ``null`` is no reading (a gap), never zero; ``chargers`` is a JSON
object in both. A file that does not fit is refused with the file, line and column.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from optimizer.decisions.minutes import COLUMNS, MinuteRow, minute_of
from optimizer.enlighten.errors import ConfigError

__all__ = ["MinuteFileError", "read_minutes", "write_csv", "write_json"]

_INTEGERS = tuple(c for c in COLUMNS if c not in ("site_id", "minute", "chargers", "source"))


class MinuteFileError(ConfigError):
    """A one-minute history file that cannot be read (exit 1, naming the file and place)."""

    hint = "pass a file `evopt history export` wrote (CSV, or JSON with --json)"


def write_csv(rows: Iterable[MinuteRow], out: TextIO) -> int:
    """Write the header and the rows; returns how many rows were written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        data = row.to_json()
        chargers = data["chargers"]
        data["chargers"] = None if chargers is None else json.dumps(chargers, sort_keys=True)
        writer.writerow(["" if data[c] is None else data[c] for c in COLUMNS])
        count += 1
    return count


def write_json(rows: Iterable[MinuteRow], out: TextIO) -> int:
    """A JSON array of row objects, one per line (greppable, and still one JSON document)."""
    count = 0
    out.write("[")
    for row in rows:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(row.to_json(), sort_keys=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def read_minutes(path: Path) -> list[MinuteRow]:
    """Rows from an exported file, CSV or JSON (told apart by the first character)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise MinuteFileError(f"{path}: cannot read ({err.strerror or err})") from err
    except UnicodeDecodeError as err:
        raise MinuteFileError(f"{path}: not UTF-8 text ({err.reason})") from err
    if text.lstrip().startswith("["):
        return list(_from_json(path, text))
    return list(_from_csv(path, text))


def _from_json(path: Path, text: str) -> Iterator[MinuteRow]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise MinuteFileError(f"{path}:{err.lineno}:{err.colno}: not JSON ({err.msg})") from err
    if not isinstance(data, list):
        raise MinuteFileError(f"{path}:1:1: expected a JSON array of rows")
    for number, item in enumerate(data, start=1):
        where = f"{path}: row {number}"
        if not isinstance(item, dict):
            raise MinuteFileError(f"{where}: expected an object with {', '.join(COLUMNS)}")
        yield _row(where, item)


def _from_csv(path: Path, text: str) -> Iterator[MinuteRow]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise MinuteFileError(f"{path}:1:1: empty file; expected the header {','.join(COLUMNS)}")
    missing = [c for c in ("site_id", "minute", "pv_w", "house_w") if c not in header]
    if missing:
        raise MinuteFileError(
            f"{path}:1:1: the header lacks {', '.join(missing)}; expected {','.join(COLUMNS)}"
        )
    for values in reader:
        line = reader.line_num
        if not values:
            continue
        if len(values) != len(header):
            raise MinuteFileError(
                f"{path}:{line}:1: {len(values)} fields where the header has {len(header)}"
            )
        item: dict[str, Any] = {
            name: (None if value == "" else value)
            for name, value in zip(header, values, strict=True)
        }
        if isinstance(item.get("chargers"), str):
            try:
                item["chargers"] = json.loads(item["chargers"])
            except json.JSONDecodeError:
                col = header.index("chargers") + 1
                raise MinuteFileError(
                    f"{path}:{line}:{col}: chargers: expected a JSON object like "
                    '{"202301000001": 3680}'
                ) from None
        yield _row(f"{path}:{line}", item, header=header)


def _row(where: str, item: dict[str, Any], *, header: list[str] | None = None) -> MinuteRow:
    def place(name: str) -> str:
        if header is not None and name in header:
            return f"{where}:{header.index(name) + 1}: {name}"
        return f"{where}: {name}"

    values: dict[str, Any] = {}
    for name in ("site_id", *_INTEGERS):
        raw = item.get(name)
        if raw is None:
            if name == "site_id":
                raise MinuteFileError(f"{place(name)}: missing; expected the site's id")
            values[name] = None
            continue
        try:
            number = int(raw) if not isinstance(raw, float) else _whole(raw)
        except (TypeError, ValueError):
            raise MinuteFileError(
                f"{place(name)}: {raw!r} is not a whole number"
                + (" of W" if name.endswith("_w") else "")
            ) from None
        if number < 0:
            raise MinuteFileError(f"{place(name)}: {number} is negative; expected 0 or more")
        values[name] = number
    raw_minute = item.get("minute")
    minute = _utc(str(raw_minute))
    if minute is None:
        raise MinuteFileError(
            f"{place('minute')}: {raw_minute!r} is not a UTC time like 2025-01-15T02:07:00Z"
        )
    chargers = item.get("chargers")
    if chargers is not None and not (
        isinstance(chargers, dict) and all(isinstance(v, int) for v in chargers.values())
    ):
        raise MinuteFileError(f"{place('chargers')}: expected an object of serial: W")
    return MinuteRow(
        site_id=values["site_id"],
        minute=minute_of(minute.astimezone(UTC)),
        pv_w=values["pv_w"],
        house_w=values["house_w"],
        evse_w=values["evse_w"],
        battery_charge_w=values["battery_charge_w"],
        battery_discharge_w=values["battery_discharge_w"],
        plugged=values["plugged"],
        chargers=chargers,
        source=str(item.get("source") or "unknown"),
        age_s=values["age_s"],
    )


def _utc(text: str) -> datetime | None:
    try:
        minute = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return minute if minute.tzinfo is not None else None


def _whole(value: float) -> int:
    if not value.is_integer():
        raise ValueError(value)
    return int(value)
