"""What the cloud's refusal of a control command means, read as the cloud sends it in 2026.

A refused start or stop answers ``{"meta": ..., "data": null, "error": {"displayMessage": ...,
"code": "400", "errorMessageCode": "iqevc_ms-10012"}}`` (2026 reference, section 2). The code
is the reliable part; the wording varies by backend ("Charger is already in charging state",
"Charger already in charging state"), so the text is only the fallback when no code came.
Telling these refusals apart matters because one of them ("already charging") is success, and
because an IQ 40 backend's 500 "Invalid charge level" is a refusal, not an uncertain write.
Pure functions of the typed error; nothing here sends a request.
"""

from __future__ import annotations

import re
from enum import StrEnum

from optimizer.enlighten.errors import EXIT_INVALID, EnlightenError, EnlightenHTTPStatusError

NOT_PLUGGED_CODE = "iqevc_ms-10008"
ALREADY_CHARGING_CODE = "iqevc_ms-10012"
# Case-insensitive fragments of the wordings seen for each state (reference section 2).
_ALREADY_CHARGING_TEXT = re.compile(r"already\s+(?:in\s+)?charging(?:\s+state)?", re.IGNORECASE)
_NOT_PLUGGED_TEXT = re.compile(r"not\s+plugged", re.IGNORECASE)
_INVALID_LEVEL_TEXT = re.compile(r"invalid\s+charg(?:e|ing)\s+level", re.IGNORECASE)


class ChargerState(StrEnum):
    """The charger-state refusals a start can get: the route and body were understood."""

    ALREADY_CHARGING = "already_charging"
    NOT_PLUGGED = "not_plugged"


def cloud_said(err: EnlightenHTTPStatusError) -> str | None:
    """The cloud's own words (``displayMessage`` or ``message``), already redacted.

    The transport puts them at the end of the error's message, after ``from <url>: ``.
    """
    marker = f"from {err.url}: "
    if marker not in err.message:
        return None
    said = err.message.split(marker, 1)[1]
    said = said.removesuffix(")").strip()
    return said or None


def charger_state(err: EnlightenHTTPStatusError) -> ChargerState | None:
    """Which charger state a refusal reports: by ``errorMessageCode`` first, else by text."""
    if err.code == ALREADY_CHARGING_CODE:
        return ChargerState.ALREADY_CHARGING
    if err.code == NOT_PLUGGED_CODE:
        return ChargerState.NOT_PLUGGED
    if err.code is not None and not err.code.isdigit():
        return None  # another documented code: its text does not overrule it
    said = cloud_said(err) or ""
    if _ALREADY_CHARGING_TEXT.search(said):
        return ChargerState.ALREADY_CHARGING
    if _NOT_PLUGGED_TEXT.search(said):
        return ChargerState.NOT_PLUGGED
    return None


def is_invalid_charge_level(err: EnlightenHTTPStatusError) -> bool:
    """An older IQ 40 backend's 500 "Invalid charge level": it refuses a start with a level.

    Only that text counts; any other 500 ("Backend unavailable") may have taken effect.
    """
    return err.status == 500 and bool(_INVALID_LEVEL_TEXT.search(cloud_said(err) or ""))


def quoted(err: EnlightenHTTPStatusError) -> str:
    """`` (the cloud said: "...")`` for a CLI line and the decision log, or nothing."""
    said = cloud_said(err)
    return f' (the cloud said: "{said}")' if said else ""


class LevelRefusedError(EnlightenError):
    """The charger's backend refused a start because it carried a level (IQ 40, HTTP 500).

    Nothing changed. Raised to the caller only when the user asked for specific amps: a start
    without a level would run at the charger's stored level, which is not what was asked.
    """

    exit_code = EXIT_INVALID
    hint = (
        "this charger's backend takes no level with a start; run `evopt charge start` without "
        "--amps to start at the level stored in the charger (set it in the Enphase app)"
    )

    def __init__(self, message: str, *, said: str | None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.said = said
