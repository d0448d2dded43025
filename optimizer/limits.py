"""The charging levels a charger may be given: one definition for the engine and the client.

The engine proposes levels and the client refuses any it would not send; both reading the same
class means the engine can never propose a level the client then rejects. Levels run from the
charger's minimum up to the lower of its maximum and the site limit, in granularity steps
counted from the minimum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from optimizer.enlighten.errors import InvalidLevelError
from optimizer.enlighten.models import ChargerSummary


class _HasLimits(Protocol):
    @property
    def min_amps(self) -> int: ...
    @property
    def max_amps(self) -> int: ...
    @property
    def granularity(self) -> int: ...


@dataclass(frozen=True)
class Limits:
    """``min_amps`` to ``max_amps`` (already within the site limit) in ``granularity`` steps."""

    min_amps: int
    max_amps: int
    granularity: int = 1
    # Only for messages: which limit made max_amps what it is.
    site_max_amps: int | None = field(default=None, compare=False)

    @classmethod
    def for_charger(cls, summary: ChargerSummary, *, site_max_amps: int | None) -> Limits:
        """From a charger summary's chargeLevelDetails (sane defaults where it is silent)."""
        min_amps = summary.min_amps if summary.min_amps is not None else 6
        max_amps = summary.max_amps or summary.max_current or 32
        return cls.within(min_amps, max_amps, summary.granularity_amps, site_max_amps)

    @classmethod
    def of(cls, charger: _HasLimits, site_max_amps: int | None) -> Limits:
        """From anything with min_amps, max_amps and granularity (the engine's ChargerView)."""
        key = (charger.min_amps, charger.max_amps, charger.granularity, site_max_amps)
        found = _OF.get(key)
        if found is None:  # the engine asks every tick for the same few chargers
            if len(_OF) >= _OF_MAX:
                _OF.clear()
            found = _OF[key] = cls.within(*key)
        return found

    @classmethod
    def within(
        cls, min_amps: int, max_amps: int, granularity: int, site_max_amps: int | None
    ) -> Limits:
        top = max_amps if site_max_amps is None else min(max_amps, site_max_amps)
        return cls(min_amps, top, max(1, granularity), site_max_amps)

    # --- the engine's view: snapped levels ------------------------------------------------------

    @property
    def low(self) -> int:
        return self.min_amps

    @property
    def step(self) -> int:
        return self.granularity

    @property
    def high(self) -> int:
        """The highest level on the steps (below ``low`` when none is allowed)."""
        if self.max_amps < self.min_amps:
            return self.max_amps
        return self.max_amps - (self.max_amps - self.min_amps) % self.granularity

    @property
    def feasible(self) -> bool:
        return self.high >= self.low

    def down(self, amps: float) -> int:
        """The highest allowed level not above ``amps`` (``low`` if none is)."""
        if amps <= self.low or not self.feasible:
            return self.low
        level = self.low + int((min(amps, self.high) - self.low) // self.step) * self.step
        return min(level, self.high)

    def up(self, amps: float) -> int:
        """The lowest allowed level not below ``amps`` (``high`` if none is)."""
        level = self.down(amps)
        return level if level >= amps or level >= self.high else level + self.step

    def snap(self, amps: float) -> int:
        """The allowed level nearest ``amps`` (``min + k x granularity``, clamped to the range;
        a tie goes down): a request is never turned into a level the charger cannot take."""
        low, high = self.down(amps), self.up(amps)
        return high if high - amps < amps - low else low

    def allows(self, amps: int) -> bool:
        in_range = self.feasible and self.low <= amps <= self.high
        return in_range and (amps - self.low) % self.step == 0

    def describe(self) -> str:
        site = "" if self.site_max_amps is None else f", site limit {self.site_max_amps} A"
        return f"{self.low}-{self.high} A in {self.step} A steps{site}"

    # --- the client's view: refuse before sending ------------------------------------------------

    def allowed(self) -> str:
        step = f" in steps of {self.granularity} A" if self.granularity > 1 else ""
        return f"{self.min_amps}-{self.max_amps} A{step}"

    def highest(self) -> int:
        """The highest level :meth:`validate` accepts (on the granularity steps), else an error."""
        return self.validate(self.high)

    def validate(self, level: int) -> int:
        """``level`` if the charger accepts it; otherwise an error, and nothing is sent."""
        if isinstance(level, bool) or not isinstance(level, int):
            raise InvalidLevelError(f"charging level must be a whole number of amps, not {level!r}")
        if self.max_amps < self.min_amps:
            raise InvalidLevelError(
                f"the site limit ({self.max_amps} A) is below the charger's minimum "
                f"({self.min_amps} A): no level can be sent"
            )
        if not self.min_amps <= level <= self.max_amps:
            raise InvalidLevelError(f"{level} A is outside the allowed {self.allowed()}")
        if (level - self.min_amps) % self.granularity:
            raise InvalidLevelError(f"{level} A is not on the allowed {self.allowed()}")
        return level


_OF: dict[tuple[int, int, int, int | None], Limits] = {}
_OF_MAX = 256
