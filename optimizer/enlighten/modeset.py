"""Changing the charge mode as the 2026 scheduler answers it (reference section 3, "Errors").

The PUT is the least trustworthy write the cloud has: the current mode always answers 400, a
PUT can answer 400 and still be applied, 400 ``iqevc_sch_10031`` means SCHEDULED was chosen
with no slot enabled (never applied), and 5xx means the scheduler service is down, which in
2026 happens for hours. So: read first and skip a same-mode PUT, read back after a plain 400,
and give the two cloud-side reasons their own typed errors with the cloud's words.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from optimizer.enlighten.control import CommandResult, Outcome
from optimizer.enlighten.errors import (
    BadRequestError,
    CloudUnreachableError,
    EnlightenError,
    EnlightenHTTPStatusError,
    ServiceUnavailableError,
)
from optimizer.enlighten.models import ChargeMode

__all__ = [
    "NO_SCHEDULES_CODE",
    "READ_BACK_ATTEMPTS",
    "READ_BACK_INTERVAL_S",
    "ModeNotAppliedError",
    "NoSchedulesEnabledError",
    "SchedulerOutageError",
    "change_mode",
    "is_scheduler_outage",
]

_LOGGER = logging.getLogger(__name__)

NO_SCHEDULES_CODE = "10031"  # iqevc_sch_10031 "No Schedules enabled for Scheduled Charging"
READ_BACK_ATTEMPTS = 6
READ_BACK_INTERVAL_S = 2.0


class NoSchedulesEnabledError(BadRequestError):
    """400 ``iqevc_sch_10031``: SCHEDULED_CHARGING needs an enabled slot; nothing changed."""

    hint = (
        "enable a schedule slot first (`evopt schedule list`, then `evopt schedule enable N`), "
        "then set SCHEDULED_CHARGING again"
    )


class ModeNotAppliedError(BadRequestError):
    """A mode PUT answered 400 and reading the mode back never showed the new one."""

    hint = "check `evopt mode get`; the cloud may apply it late, or refuse it for this charger"


class SchedulerOutageError(ServiceUnavailableError):
    """The scheduler service (modes, schedules, green settings) is down: an outage of hours."""

    hint = (
        "the Enlighten scheduler service is down (outages of 2-3 h are common, up to 12 h); "
        "nothing was changed, try again later"
    )


def is_no_schedules(err: EnlightenHTTPStatusError) -> bool:
    """``errorMessageCode`` (the error's code) first, the cloud's words as the fallback."""
    text = f"{err.code or ''} {err.message}".lower()
    return NO_SCHEDULES_CODE in text or "no schedules enabled" in text


def is_scheduler_outage(err: BaseException) -> bool:
    """A scheduler read or write that failed because the service is down, not because of us.

    5xx (but not 552, the charger's link) and the status 503 whose message names the scheduler
    service both count (reference section 10).
    """
    if isinstance(err, SchedulerOutageError):
        return True
    if not isinstance(err, ServiceUnavailableError) or err.status == 552:
        return False
    return "/evse_scheduler/" in err.url or "scheduler" in err.message.lower()


ReadMode = Callable[[], Awaitable[ChargeMode | None]]
Sleep = Callable[[float], Awaitable[None]]


async def change_mode(
    mode: ChargeMode,
    *,
    read: ReadMode,
    put: Callable[[], Awaitable[object]],
    sleep: Sleep,
    attempts: int = READ_BACK_ATTEMPTS,
    interval_s: float = READ_BACK_INTERVAL_S,
) -> CommandResult:
    """Read, PUT only when different, and read back a 400 before calling it failed."""
    current = await read()
    if current is mode:
        return CommandResult("set_mode", Outcome.UNCHANGED, f"already in {mode.value}")
    was = current.value if current else "unknown"
    try:
        await put()
    except BadRequestError as err:
        if is_no_schedules(err):
            refused = f"{mode.value} refused: {_cloud_words(err)}"
            raise _as(NoSchedulesEnabledError, err, refused) from err
        seen = await _read_back(mode, read=read, sleep=sleep, attempts=attempts, wait=interval_s)
        if seen is not mode:
            raise _as(
                ModeNotAppliedError,
                err,
                f"charge mode change to {mode.value} answered {err.status} ({_cloud_words(err)}) "
                f"and read back as {seen.value if seen else 'unknown'} "
                f"{attempts} times over {attempts * interval_s:g} s",
            ) from err
        return CommandResult(
            "set_mode",
            Outcome.ACCEPTED,
            f"charge mode {was} -> {mode.value} (the cloud answered {err.status}, "
            "the read-back shows it applied)",
        )
    except ServiceUnavailableError as err:
        if err.status == 552:
            raise
        raise _as(
            SchedulerOutageError,
            err,
            f"charge mode not changed to {mode.value}: the scheduler service is down "
            f"({err.message})",
        ) from err
    return CommandResult("set_mode", Outcome.ACCEPTED, f"charge mode {was} -> {mode.value}")


async def _read_back(
    mode: ChargeMode, *, read: ReadMode, sleep: Sleep, attempts: int, wait: float
) -> ChargeMode | None:
    """Up to ``attempts`` reads ``wait`` s apart; a failing read is one more try, not a verdict."""
    seen: ChargeMode | None = None
    for _ in range(attempts):
        await sleep(wait)
        try:
            seen = await read()
        except (ServiceUnavailableError, CloudUnreachableError) as err:
            _LOGGER.debug("mode read-back failed: %s", err)
            continue
        if seen is mode:
            return seen
    return seen


def _as(
    kind: type[EnlightenHTTPStatusError], err: EnlightenHTTPStatusError, message: str
) -> EnlightenHTTPStatusError:
    """``err`` retold as ``kind``, keeping its status, url and code."""
    return kind(message, status=err.status, url=err.url, code=err.code)


def _cloud_words(err: EnlightenError) -> str:
    """The cloud's own message as the transport quoted it (after ``from <url>: ``)."""
    _, _, said = err.message.partition(": ")
    return said.rstrip(")") or err.message
