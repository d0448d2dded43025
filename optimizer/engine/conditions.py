"""Whether a policy's ``when:`` holds at a snapshot, and why, in words.

Every condition is a small function returning ``None`` when the rule leaves it out, or
``(held, text)``. :func:`check` needs all of them to hold; its text names the first failing
one (so a log says *why* a policy sat out) or lists the met ones ("sun 23.4° up, 10:12 in
09:00-15:00"). :func:`holds` asks the verdict alone: each condition then leaves its text
empty (``words=False``), since the engine throws a failing policy's text away. Unknown
data never satisfies a condition: no sun data means neither up nor down, an unknown surplus
is neither above nor below anything.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache

from optimizer.engine.kinds.common import finite
from optimizer.engine.rules import When
from optimizer.engine.snapshot import ChargerView, Snapshot
from optimizer.sun import elevation_beside
from optimizer.timespec import MONTH_NAMES, TimeRange, format_days

Result = tuple[bool, str] | None


# A rule's days, times and months in words: the same few per policy, asked for every tick.
@lru_cache(maxsize=256)
def _days_text(days: tuple[int, ...]) -> str:
    return format_days(days)


@lru_cache(maxsize=256)
def _ranges_text(ranges: tuple[TimeRange, ...]) -> str:
    return ", ".join(str(r) for r in ranges)


@lru_cache(maxsize=256)
def _months_text(months: tuple[int, ...]) -> str:
    return ",".join(MONTH_NAMES[m - 1] for m in months)


DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
Condition = Callable[[When, Snapshot, ChargerView, datetime, bool], Result]


def _days(
    when: When, _snap: Snapshot, _charger: ChargerView, local: datetime, words: bool
) -> Result:
    if when.days is None:
        return None
    held = local.isoweekday() in when.days
    if not words:
        return held, ""
    day = DAY_NAMES[local.weekday()]  # strftime("%a") in the C locale, without its cost
    return held, f"{day} {'in' if held else 'not in'} {_days_text(when.days)}"


def _time(
    when: When, _snap: Snapshot, _charger: ChargerView, local: datetime, words: bool
) -> Result:
    if when.time is None:
        return None
    held = any(r.contains_time(local) for r in when.time)
    if not words:
        return held, ""
    ranges = _ranges_text(when.time)
    at = f"{local.hour:02d}:{local.minute:02d}"
    return held, f"{at} {'in' if held else 'not in'} {ranges}"


def _months(
    when: When, _snap: Snapshot, _charger: ChargerView, local: datetime, words: bool
) -> Result:
    if when.months is None:
        return None
    held = local.month in when.months
    if not words:
        return held, ""
    names = _months_text(when.months)
    return held, f"{MONTH_NAMES[local.month - 1]} {'in' if held else 'not in'} {names}"


def _sun(
    when: When, snap: Snapshot, _charger: ChargerView, _local: datetime, words: bool
) -> Result:
    if when.sun is None and when.sun_above is None and when.sun_below is None:
        return None
    sun = snap.sun
    if sun is None:
        return False, "no sun data"
    if words:
        elevation = finite(sun.elevation_deg)
    else:  # the verdict alone compares the elevation with these lines only (a replay's sun
        # is then worked out only near one of them: optimizer/sun.py, SunTrack)
        lines = (0.0, when.sun_above or 0.0, when.sun_below or 0.0)
        elevation = finite(elevation_beside(sun, lines))
    if elevation is None:
        return False, "no sun data"
    up = elevation > 0
    side = when.sun is None or up == (when.sun == "up")
    high = when.sun_above is None or elevation > when.sun_above
    low = when.sun_below is None or elevation < when.sun_below
    if not words:
        return side and high and low, ""
    checks: list[tuple[bool, str, str]] = []  # (held, text when met, text when not)
    if when.sun is not None:
        checks.append((side, "up" if up else "down", "up" if up else "down"))
    if when.sun_above is not None:
        above = when.sun_above
        checks.append((high, f"> {above:g}°", f"not above {above:g}°"))
    if when.sun_below is not None:
        below = when.sun_below
        checks.append((low, f"< {below:g}°", f"not below {below:g}°"))
    failing = [text for held, _, text in checks if not held]
    if failing:
        return False, f"sun {elevation:.1f}° {failing[0]}"
    return True, f"sun {elevation:.1f}° " + " ".join(text for _, text, _ in checks)


def _tariff(
    when: When, snap: Snapshot, _charger: ChargerView, _local: datetime, words: bool
) -> Result:
    if when.tariff is None:
        return None
    current = snap.tariff.window
    held = current is not None and current in when.tariff
    if not words:
        return held, ""
    names = ",".join(when.tariff)
    return held, f"tariff {current or 'none'} {'in' if held else 'not in'} {names}"


def _plugged(
    when: When, _snap: Snapshot, charger: ChargerView, _local: datetime, words: bool
) -> Result:
    if when.plugged_in is None:
        return None
    held = charger.plugged_in == when.plugged_in
    if not words:
        return held, ""
    return held, "vehicle plugged in" if charger.plugged_in else "no vehicle plugged in"


def _bounded(
    value: float | None,
    above: float | None,
    below: float | None,
    what: str,
    unit: str,
    *,
    words: bool,
) -> Result:
    """Shared by surplus and battery SoC: ``above < value < below``, False when unknown."""
    if above is None and below is None:
        return None
    value = finite(value)
    if value is None:
        return False, f"{what} unknown"
    high = above is None or value > above
    low = below is None or value < below
    if not words:
        return high and low, ""
    if not high:
        return False, f"{what} {value:.0f}{unit} not above {above:g}{unit}"
    if not low:
        return False, f"{what} {value:.0f}{unit} not below {below:g}{unit}"
    bounds = [f"> {above:g}{unit}"] if above is not None else []
    bounds += [f"< {below:g}{unit}"] if below is not None else []
    return True, f"{what} {value:.0f}{unit} " + " ".join(bounds)


def _surplus(
    when: When, snap: Snapshot, _charger: ChargerView, _local: datetime, words: bool
) -> Result:
    watts = snap.surplus.pv_minus_house_w
    return _bounded(watts, when.surplus_above, when.surplus_below, "surplus", " W", words=words)


def _battery(
    when: When, snap: Snapshot, _charger: ChargerView, _local: datetime, words: bool
) -> Result:
    soc = snap.battery_soc_pct
    return _bounded(
        soc, when.battery_soc_above, when.battery_soc_below, "battery SoC", "%", words=words
    )


def _mode(
    when: When, _snap: Snapshot, charger: ChargerView, _local: datetime, words: bool
) -> Result:
    if when.mode is None:
        return None
    held = charger.mode is not None and charger.mode in when.mode
    if not words:
        return held, ""
    names = ",".join(m.value.removesuffix("_CHARGING") for m in when.mode)
    if charger.mode is None:
        return False, f"mode unknown, not {names}"
    now = charger.mode.value.removesuffix("_CHARGING")
    return held, f"mode {now} {'in' if held else 'not in'} {names}"


CONDITIONS: tuple[tuple[Condition, tuple[str, ...]], ...] = (  # each with the fields it reads
    (_sun, ("sun", "sun_above", "sun_below")),
    (_time, ("time",)),
    (_days, ("days",)),
    (_months, ("months",)),
    (_tariff, ("tariff",)),
    (_plugged, ("plugged_in",)),
    (_surplus, ("surplus_above", "surplus_below")),
    (_battery, ("battery_soc_above", "battery_soc_below")),
    (_mode, ("mode",)),
)

_APPLICABLE: dict[int, tuple[When, tuple[Condition, ...]]] = {}


def _applicable(when: When) -> tuple[Condition, ...]:
    """The conditions a rule sets, in :data:`CONDITIONS`' order: most rules set two or three
    of the nine, and calling the others every tick to hear ``None`` was most of the checks'
    cost. Kept by the (frozen) rule's id, and served only for that very rule."""
    found = _APPLICABLE.get(id(when))
    if found is not None and found[0] is when:
        return found[1]
    applicable = tuple(
        condition
        for condition, fields in CONDITIONS
        if any(getattr(when, name) is not None for name in fields)
    )
    if len(_APPLICABLE) >= 1024:  # rules reloaded many times: start again
        _APPLICABLE.clear()
    _APPLICABLE[id(when)] = (when, applicable)
    return applicable


def holds(when: When, snapshot: Snapshot, charger: ChargerView) -> bool:
    """Whether all conditions hold, without their words (what :func:`check` says first)."""
    local = snapshot.local
    for condition in _applicable(when):
        result = condition(when, snapshot, charger, local, False)
        if result is not None and not result[0]:
            return False
    return True


def check(when: When, snapshot: Snapshot, charger: ChargerView) -> tuple[bool, str]:
    """(all conditions hold, the first failing one or the met ones in words)."""
    local = snapshot.local
    met: list[str] = []
    for condition in _applicable(when):
        result = condition(when, snapshot, charger, local, True)
        if result is None:
            continue
        held, text = result
        if not held:
            return False, text
        met.append(text)
    return True, ", ".join(met) or "always"
