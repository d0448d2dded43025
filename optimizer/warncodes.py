"""The warnings `evopt validate` (and the service at start) can give, each with a stable code.

A warning is something that may be meant: two policies that compete on purpose, a level that
one of two chargers cannot reach. Someone who has read it and decided it is fine must be able
to silence that one warning where it arises (``ignore_warnings:`` on a policy) or for the whole
setup (``warnings: {ignore: [...]}`` in the config), without silencing the others, so that a
new warning still shows. The codes are part of the files people write: never rename one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from optimizer.explain import did_you_mean
from optimizer.yamlpos import Problem

__all__ = [
    "LATEST_POWER_SIGN",
    "LEVEL_ABOVE_CHARGER_MAX",
    "LEVEL_BELOW_6A",
    "LEVEL_BELOW_CHARGER_MIN",
    "POLICY_OVERLAP",
    "TARIFF_OVERLAP",
    "UNKNOWN_WARNING_CODE",
    "WARNING_CODES",
    "unknown_code_message",
    "without_ignored",
]

LATEST_POWER_SIGN = "latest-power-sign"
TARIFF_OVERLAP = "tariff-overlap"
POLICY_OVERLAP = "policy-overlap"
LEVEL_ABOVE_CHARGER_MAX = "level-above-charger-max"
LEVEL_BELOW_CHARGER_MIN = "level-below-charger-min"
LEVEL_BELOW_6A = "level-below-6a"
UNKNOWN_WARNING_CODE = "unknown-warning-code"

# Code -> what it warns about (docs/rules.md lists the same).
WARNING_CODES: dict[str, str] = {
    LATEST_POWER_SIGN: "the obsolete surplus.latest_power_sign key is set (it is ignored)",
    TARIFF_OVERLAP: "two tariff windows overlap; the first listed wins",
    POLICY_OVERLAP: "two policies set the same thing at the same priority and can coincide",
    LEVEL_ABOVE_CHARGER_MAX: "a level is above the maximum of some of the chargers it applies to",
    LEVEL_BELOW_CHARGER_MIN: "a level is below the minimum of some of the chargers it applies to",
    LEVEL_BELOW_6A: "a level is below 6 A and no charger's own minimum is known",
    UNKNOWN_WARNING_CODE: "an ignore list names a code that does not exist",
}


def unknown_code_message(code: object, where: str) -> str:
    """``warnings.ignore: unknown warning code 'polcy-overlap' (did you mean ...)``."""
    shown = f"'{code}'" if isinstance(code, str) else repr(code)
    hint = did_you_mean(code, WARNING_CODES) if isinstance(code, str) else ""
    return f"{where}: unknown warning code {shown}{hint}; codes: {', '.join(WARNING_CODES)}"


def without_ignored(warnings: Iterable[Problem], ignored: Sequence[str]) -> list[Problem]:
    """The warnings whose code is not in ``ignored``."""
    silenced = set(ignored)
    return [w for w in warnings if w.code not in silenced]
