"""Levels in the config and the rules against the site limit and the chargers' own limits.

The engine clamps every level before it is sent, so a rule asking for 48 A on a 32 A site
does no harm; it does mislead: its author believes the car charges at 48 A. `evopt validate`
says so before it runs. Pure: the limits come in (the config's ``site.max_current`` with
where it is written, the chargers' ranges from their last summary), findings go out.

Error or warning: what is certain is an error (above the site limit; above the maximum, or
below the minimum, of every known charger the level applies to); what depends on the charger
is a warning with a code that can be silenced (above or below the range of only some of them;
below 6 A while no charger's minimum is known).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from optimizer.enlighten.chargerlimits import ChargerLimit
from optimizer.warncodes import LEVEL_ABOVE_CHARGER_MAX, LEVEL_BELOW_6A, LEVEL_BELOW_CHARGER_MIN

__all__ = ["STANDARD_MIN_AMPS", "Finding", "LevelBounds", "check_level", "level_fields"]

# IEC 61851 / SAE J1772: no charger is offered less than 6 A.
STANDARD_MIN_AMPS = 6
# Fields named like a level that are not one (a step size, not a level).
_NOT_LEVELS = frozenset({"deadband_amps"})


@dataclass(frozen=True)
class LevelBounds:
    """What levels are checked against: the site limit (and where it is written) and the
    chargers whose limits are known."""

    site_max: int | None = None
    site_max_at: str = "the config"
    chargers: tuple[ChargerLimit, ...] = ()

    def applying_to(self, serials: Sequence[str] | None) -> tuple[ChargerLimit, ...]:
        """The known chargers a policy with ``chargers: serials`` (None: all) applies to."""
        if serials is None:
            return self.chargers
        wanted = set(serials)
        return tuple(c for c in self.chargers if c.sn in wanted)


@dataclass(frozen=True)
class Finding:
    """One problem with one level: an error, or a warning with its code."""

    message: str
    code: str | None = None

    @property
    def is_error(self) -> bool:
        return self.code is None


def level_fields(model: BaseModel) -> Iterator[tuple[str, int]]:
    """(key, amps) of every level set on a policy or a config section."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        is_level = name == "amps" or (name.endswith("_amps") and name not in _NOT_LEVELS)
        if is_level and isinstance(value, int) and not isinstance(value, bool):
            yield name, value


def check_level(
    key: str, amps: int, bounds: LevelBounds, serials: Sequence[str] | None = None
) -> list[Finding]:
    """Every finding for ``key: amps`` on chargers ``serials`` (None: every charger)."""
    findings = []
    if bounds.site_max is not None and amps > bounds.site_max:
        findings.append(
            Finding(
                f"{key} {amps} is above site.max_current {bounds.site_max} "
                f"({bounds.site_max_at}); the engine would never send more than "
                f"{bounds.site_max} A"
            )
        )
    chargers = bounds.applying_to(serials)
    findings.extend(_above_max(key, amps, chargers))
    findings.extend(_below_min(key, amps, chargers))
    if amps < STANDARD_MIN_AMPS and not any(c.min_amps is not None for c in chargers):
        findings.append(
            Finding(
                f"{key} {amps} is below {STANDARD_MIN_AMPS} A, the lowest level a charger is "
                "offered (IEC 61851, J1772); the engine would send the charger's minimum",
                LEVEL_BELOW_6A,
            )
        )
    return findings


def _above_max(key: str, amps: int, chargers: Sequence[ChargerLimit]) -> Iterator[Finding]:
    known = [c for c in chargers if c.max_amps is not None]
    over = [c for c in known if c.max_amps is not None and amps > c.max_amps]
    if not over:
        return
    listed = _listed(over, "max_amps")
    if len(over) == len(known):
        top = max(c.max_amps or 0 for c in over)
        yield Finding(
            f"{key} {amps} is above the maximum of {_every(over)} ({listed}, from the last "
            f"summary read); no charger would be sent more than {top} A"
        )
    else:
        yield Finding(
            f"{key} {amps} is above the maximum of {listed} (from the last summary read); "
            "that charger would get its maximum",
            LEVEL_ABOVE_CHARGER_MAX,
        )


def _below_min(key: str, amps: int, chargers: Sequence[ChargerLimit]) -> Iterator[Finding]:
    known = [c for c in chargers if c.min_amps is not None]
    under = [c for c in known if c.min_amps is not None and amps < c.min_amps]
    if not under:
        return
    listed = _listed(under, "min_amps")
    if len(under) == len(known):
        yield Finding(
            f"{key} {amps} is below the minimum of {_every(under)} ({listed}, from the last "
            "summary read); the charger would be sent its minimum instead"
        )
    else:
        yield Finding(
            f"{key} {amps} is below the minimum of {listed} (from the last summary read); "
            "that charger would get its minimum",
            LEVEL_BELOW_CHARGER_MIN,
        )


def _listed(chargers: Sequence[ChargerLimit], attr: str) -> str:
    return ", ".join(f"{c.label}: {getattr(c, attr)} A" for c in chargers)


def _every(chargers: Sequence[ChargerLimit]) -> str:
    return "the charger" if len(chargers) == 1 else f"every one of its {len(chargers)} chargers"
