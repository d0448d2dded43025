"""One exception root for everything the Enlighten client can raise.

Each error carries what the user should do next (``hint``) and the process exit code the CLI
maps it to, so that the CLI never has to guess from the class name and a traceback never
reaches a user. Exit codes follow DESIGN.md: 1 invalid config or input, 3 authentication
needed or refused, 4 cloud unreachable or failing after retries.
"""

from __future__ import annotations

EXIT_INVALID = 1
EXIT_AUTH = 3
EXIT_CLOUD = 4


class EnlightenError(Exception):
    """Root of every error the client raises."""

    exit_code: int = EXIT_CLOUD
    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def user_message(self) -> str:
        """The one line (plus hint) the CLI prints."""
        return f"{self.message}; {self.hint}" if self.hint else self.message


# --- authentication ------------------------------------------------------------------------


class AuthError(EnlightenError):
    """Authentication is needed or was refused."""

    exit_code = EXIT_AUTH
    hint = "run `evopt login`"


class AuthRequiredError(AuthError):
    """No usable session and no way to log in unattended."""


class LoginWallError(AuthRequiredError):
    """The cloud answered with its HTML login page instead of JSON: the session is gone."""


class InvalidCredentialsError(AuthError):
    """The e-mail or password was refused."""

    hint = "check ENLIGHTEN_EMAIL / ENLIGHTEN_PASSWORD and run `evopt login` again"


class AccountBlockedError(AuthError):
    """Enlighten blocked the account (too many attempts); only time or support unblocks it."""

    hint = "sign in at enlighten.enphaseenergy.com to unblock the account, then retry later"


class MfaRequiredError(AuthError):
    """The password was accepted and a one-time code was sent; the login is pending."""

    hint = "run `evopt login --otp CODE` with the code Enphase sent you"


class InvalidOtpError(AuthError):
    """The one-time code was wrong or expired."""

    hint = "run `evopt login --otp CODE` with the newest code, or `evopt login --resend-otp`"


class OtpThrottledError(AuthError):
    """The cloud refuses to send another code yet."""

    hint = "wait at least 30 s before asking for a new code"


class SessionLockoutError(AuthError):
    """Enlighten refused a login because the account has too many active sessions, or logins
    are held back after one. Each new attempt would add a session and lengthen the lock-out,
    so every automatic login stops until ``until`` (epoch seconds)."""

    hint = (
        "sign out of Enlighten on other browsers, phones and apps (or wait), then run "
        "`evopt login`; automatic logins resume by themselves when the block ends"
    )

    def __init__(self, message: str, *, until: float | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.until = until


class LoginSuspendedError(AuthError):
    """Automatic logins are paused: the password was refused (cooldown), or refused several
    times in a row (24 h suspension) and only a person can tell whether it changed."""

    hint = "check ENLIGHTEN_EMAIL / ENLIGHTEN_PASSWORD and run `evopt login` yourself"

    def __init__(self, message: str, *, until: float | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.until = until


# --- HTTP status -----------------------------------------------------------------------------


class EnlightenHTTPStatusError(EnlightenError):
    """The cloud answered with an error status. Carries the status, url and any error code."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        url: str,
        code: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.url = url
        self.code = code


class UnauthorizedError(EnlightenHTTPStatusError, AuthRequiredError):
    """401 that survived one re-login (or no re-login was possible)."""

    exit_code = EXIT_AUTH


class ForbiddenError(EnlightenHTTPStatusError):
    """403: the account has no access to this site or charger."""

    exit_code = EXIT_AUTH
    hint = "check `enlighten.site_id` with `evopt sites`; this account cannot access it"


class BadRequestError(EnlightenHTTPStatusError):
    """400: the request was rejected as invalid (or, on control calls, the charger not ready)."""

    exit_code = EXIT_INVALID


class NotFoundError(EnlightenHTTPStatusError):
    """404: no such path, site or charger."""

    exit_code = EXIT_INVALID
    hint = "check `enlighten.site_id` and the charger serial number"


class NotAcceptableError(EnlightenHTTPStatusError):
    """406: the cloud refused the request's headers (User-Agent, or the Accept/Referer pair).

    Exit 4 like other cloud refusals: nothing the user configured is wrong."""

    hint = (
        "the cloud wants the headers its web app sends; if this persists, the route's header "
        "profile in optimizer/enlighten/headers.py needs updating (please report it)"
    )


class MethodNotAllowedError(EnlightenHTTPStatusError):
    """405: this deployment does not accept this verb on this path (try another variant)."""


class ConflictError(EnlightenHTTPStatusError):
    """409/422: the charger is not in a state to do this (unplugged, not ready)."""

    exit_code = EXIT_INVALID


class RateLimitedError(EnlightenHTTPStatusError):
    """429: too many requests. ``retry_after`` is in seconds when the cloud said so."""

    hint = "the cloud is rate limiting this account; poll less often and retry later"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        url: str,
        retry_after: float | None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, status=status, url=url, code=code)
        self.retry_after = retry_after


class BudgetHeldError(RateLimitedError):
    """Not sent: the account's request budget (or a ``Retry-After`` it is held by) says wait.

    Raised before anything goes out, by a limiter that may not wait where it is asked (a
    service tick: see ``optimizer/enlighten/ratelimit.py``). It reads as a 429 that carried
    ``retry_after``, so every caller that already honours one (the service's delay, the
    actuator's "nothing was sent") honours this too; the transport never retries it.
    """

    hint = "the request waits for the account's budget; the next tick sends it"

    def __init__(self, message: str, *, url: str, retry_after: float) -> None:
        super().__init__(message, status=429, url=url, retry_after=retry_after)


class UnsupportedEnvoyError(EnlightenHTTPStatusError):
    """466: the site's IQ Gateway is offline or too old for live actions."""

    hint = "the IQ Gateway must be online and on firmware 6.0.0 or newer"


class UnknownSiteError(EnlightenHTTPStatusError):
    """468 (or a site missing from discovery): the site id is not on this account."""

    exit_code = EXIT_INVALID
    hint = "run `evopt sites` and set `enlighten.site_id` to one of the ids listed"


class LiveStreamNotSupportedError(EnlightenHTTPStatusError):
    """472: this site's hardware cannot take part in the live stream."""


class GatewayNotReportingError(EnlightenHTTPStatusError):
    """473: the cloud cannot reach the site's gateway; commands and live data are refused."""

    hint = "check that the IQ Gateway is online and reporting"


class ServiceUnavailableError(EnlightenHTTPStatusError):
    """5xx including 550/551: a transient fault on the cloud side."""

    hint = "the Enlighten cloud is failing; retry later"


class AuthServiceDownError(ServiceUnavailableError):
    """5xx from the login service: the cloud is failing, the credentials were not judged."""

    hint = "Enlighten's login service is down; retry later (the password was not refused)"


class ConnectionNotEstablishedError(ServiceUnavailableError):
    """552: the command was queued but the cloud could not reach the charger."""

    hint = "the cloud could not reach the charger; check its Wi-Fi or Ethernet link"


# --- transport and payload -------------------------------------------------------------------


class CloudUnreachableError(EnlightenError):
    """No HTTP answer at all: DNS, refused connection, TLS, or a timeout.

    ``request_sent`` is False only when the connection never opened, so the cloud cannot have
    seen the request; that is what makes resending a write safe.
    """

    hint = "check the network and `enlighten.base_url`"

    def __init__(self, message: str, *, request_sent: bool = True, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.request_sent = request_sent


class CloudTimeoutError(CloudUnreachableError):
    """The cloud did not answer within the per-call timeout."""


class ParseError(EnlightenError):
    """The reply was not the JSON shape we know: truncated, not JSON, or missing fields."""

    hint = "the Enlighten reply was malformed; retry later, and report it if it persists"

    def __init__(self, message: str, *, url: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.url = url


# --- commands ----------------------------------------------------------------------------------


class InvalidLevelError(EnlightenError):
    """A charging level outside the charger's limits (or the site's); nothing was sent."""

    exit_code = EXIT_INVALID
    hint = "nothing was sent to the charger"


class NotSupportedError(EnlightenError):
    """The charger or its mode does not support this command; nothing was sent."""

    exit_code = EXIT_INVALID


class NoWorkingVariantError(EnlightenError):
    """None of the known request variants of a command was accepted by this deployment."""

    hint = "this Enlighten deployment accepts none of the known variants; please report it"


class WriteUncertainError(EnlightenError):
    """A write failed in a way that leaves open whether it took effect; it is not resent."""

    hint = "check `evopt status` before trying again"


class IncompleteCommandError(EnlightenError):
    """A multi-step command (stop, settle, start) stopped part way; says where it stopped."""


class ConfigError(EnlightenError):
    """Configuration the client needs is missing or invalid (no site id, bad base URL)."""

    exit_code = EXIT_INVALID
    hint = "fix the configuration file"
