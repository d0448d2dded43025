"""The site's IQ Gateway as a live surplus source: one pyenphase ``Envoy``, read each tick.

No pyenphase type leaves this module: :func:`reading_from` turns ``EnvoyData`` into our
:class:`~optimizer.gateway.reading.GatewayReading`, and every pyenphase or network failure
becomes a state of :class:`GatewaySource` (``down_since``, ``problem``), never an exception
into the tick: when the gateway does not answer, the caller takes the cloud's buckets instead.

The gateway is set up and probed once (firmware, token, which meters it has), then only read;
a 401 (the token expired, or the firmware changed) gets one new setup with the token file as it
is now, and if that is refused too the status says what to do. pyenphase's own retries are set
to one attempt and the whole read is bounded by ``gateway.timeout``: a tick never waits for a
gateway that went away, and after a failure the gateway is asked again after a doubling pause.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import aiohttp

from optimizer.backoff import doubled
from optimizer.config import Config
from optimizer.enlighten.errors import CloudUnreachableError, EnlightenError
from optimizer.gateway.reading import Checked, GatewayReading, PhysicsLimits, check_reading
from optimizer.gateway.token import FETCH_STEP, GatewayTokenError, load_token

# pyenphase (and its TLS, JWT and version libraries, about 19 MB resident) is imported at the
# first read: the service and `evopt` import this module whatever the surplus source, and only
# `surplus.source: gateway` ever reads a gateway (issue 16: the daemon within 60 MB).
if TYPE_CHECKING:
    from pyenphase import Envoy
    from pyenphase.const import SupportedFeatures
    from pyenphase.models.envoy import EnvoyData

__all__ = ["GatewaySource", "GatewayUnreachableError", "gateway_source", "reading_from"]

_LOGGER = logging.getLogger(__name__)

RETRY_FIRST = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=5)
# A meter timestamp this far from the service's clock is a gateway clock problem, not an age.
CLOCK_SLACK = timedelta(minutes=5)
NOMINAL_VOLTAGE = 230.0  # without site.voltage, for the breaker's limit in watts


class GatewayUnreachableError(CloudUnreachableError):
    """The gateway does not answer on the LAN (exit 4, like an unreachable cloud)."""

    hint = "check gateway.host (the gateway's IP or envoy.local) and that it is on this LAN"


class GatewaySource:
    """One gateway, its last trusted reading and whether it answers.

    Keyword-only. ``session`` may be injected (closed by its owner); without it the source
    makes one with pyenphase's no-verify TLS context (gateways sign their own certificates).
    """

    def __init__(
        self,
        *,
        host: str,
        token_path: Path,
        timeout: timedelta,
        limits: PhysicsLimits,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.host = host
        self.token_path = token_path
        self.timeout = timeout
        self.limits = limits  # for one phase until the probe tells the gateway's phases
        self._limits_per_phase = limits
        self._session = session
        self._owns_session = session is None
        self._envoy: Envoy | None = None
        self.features: tuple[str, ...] = ()  # what the probe found, in our words
        self.consumption_metered: bool | None = None
        self.down_since: datetime | None = None
        self.problem: str | None = None  # why it does not answer, for status and the log
        self.failures = 0
        self.next_try: datetime | None = None
        self.reads = 0  # answered reads (a test counts them against the cloud's requests)
        self._trusted: GatewayReading | None = None
        self._trusted_draw_w = 0.0
        self._pending: GatewayReading | None = None
        self._doubted = False  # the last reading failed a check (logged once while it lasts)

    # --- the tick's one call -----------------------------------------------------------------

    async def read(self, now: datetime) -> GatewayReading | None:
        """This tick's reading, or None when the gateway did not answer (or is being left
        alone after a failure). Never raises: the caller falls back to the buckets."""
        if self.next_try is not None and now < self.next_try:
            return None
        from pyenphase.exceptions import EnvoyError  # noqa: PLC0415 - see the imports

        try:
            async with asyncio.timeout(self.timeout.total_seconds()):
                reading = await self._read(now)
        except GatewayTokenError as err:
            self._failed(now, f"{GatewayTokenError.__name__}: {err.message}; {FETCH_STEP}")
            return None
        except (EnvoyError, aiohttp.ClientError, TimeoutError, OSError, RuntimeError) as err:
            self._failed(now, _describe(err, self.timeout))
            return None
        except EnlightenError as err:  # the token file cannot be read (ConfigError)
            self._failed(now, err.user_message())
            return None
        self._answered(now)
        return reading

    def check(self, reading: GatewayReading, *, charger_draw_w: float) -> Checked:
        """``reading`` against physics and the last trusted one (``check_reading``);
        ``charger_draw_w`` is what the chargers draw now by their status."""
        checked = check_reading(
            reading,
            limits=self.limits,
            trusted=self._trusted,
            pending=self._pending,
            charger_change_w=charger_draw_w - self._trusted_draw_w,
        )
        if checked.problems and not self._doubted:
            _LOGGER.warning("gateway reading not trusted: %s", "; ".join(checked.problems))
        elif checked.problems:
            _LOGGER.debug("gateway reading not trusted: %s", "; ".join(checked.problems))
        elif self._doubted:
            _LOGGER.info("gateway readings pass the physics checks again")
        self._doubted = bool(checked.problems)
        self._pending = checked.pending
        if checked.pending is None:
            self._trusted, self._trusted_draw_w = checked.reading, charger_draw_w
        return checked

    def label(self, timezone: str) -> str:
        """What `evopt status` shows as the surplus source."""
        if self.down_since is None:
            return "gateway"
        since = self.down_since.astimezone(ZoneInfo(timezone)).strftime("%H:%M")
        what = "refused the token" if self.token_refused else "unreachable"
        return f"lifetime_energy (gateway {what} since {since})"

    @property
    def token_refused(self) -> bool:
        """The gateway answers but refuses the stored token: a person must fetch a new one."""
        return self.down_since is not None and GatewayTokenError.__name__ in (self.problem or "")

    def token_renewed(self) -> None:
        """A new token is in the file: a gateway that refused the old one is set up again at
        the next read, not after its back-off."""
        if self.down_since is not None:
            self._envoy, self.next_try = None, None

    async def serial(self) -> str:
        """The gateway's serial from its ``/info`` (no token needed): what Entrez issues a
        token for. Unreachable or unreadable: ``GatewayUnreachableError`` (exit 4)."""
        from pyenphase import Envoy  # noqa: PLC0415 - see the imports
        from pyenphase.exceptions import EnvoyError  # noqa: PLC0415

        try:
            async with asyncio.timeout(self.timeout.total_seconds()):
                envoy = Envoy(self.host, client=self._client_session())
                envoy.set_retry_policy(max_attempts=1, max_delay=0, wait_multiplier=0)
                await envoy.setup()
        except (EnvoyError, aiohttp.ClientError, TimeoutError, OSError) as err:
            why = _describe(err, self.timeout)
            raise GatewayUnreachableError(
                f"the gateway at {self.host} does not tell its serial ({why})"
            ) from err
        if not envoy.serial_number:
            raise GatewayUnreachableError(f"the gateway at {self.host} reports no serial")
        return str(envoy.serial_number)

    def _client_session(self) -> aiohttp.ClientSession:
        """The injected session, else our own with pyenphase's no-verify TLS context."""
        from pyenphase.ssl import NO_VERIFY_SSL_CONTEXT  # noqa: PLC0415 - see the imports

        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=NO_VERIFY_SSL_CONTEXT)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        self._envoy = None
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    # --- reading -------------------------------------------------------------------------------

    async def _read(self, now: datetime) -> GatewayReading:
        from pyenphase.exceptions import (  # noqa: PLC0415 - see the imports
            EnvoyAuthenticationError,
            EnvoyAuthenticationRequired,
        )

        envoy = self._envoy or await self._connect()
        try:
            data = await envoy.update()
        except (EnvoyAuthenticationRequired, EnvoyAuthenticationError):
            # Expired token or new firmware: set up once more with the token as stored now.
            _LOGGER.info("the gateway answered 401; setting it up again with the stored token")
            self._envoy = None
            envoy = await self._connect()
            try:
                data = await envoy.update()
            except (EnvoyAuthenticationRequired, EnvoyAuthenticationError) as err:
                self._envoy = None
                raise GatewayTokenError("401 after a new setup") from err
        self.reads += 1
        return reading_from(
            data,
            now=now,
            consumption_metered=bool(self.consumption_metered),
            phases=envoy.phase_count or 1,
        )

    async def _connect(self) -> Envoy:
        """Firmware (``/info``), the token check, the probe: once, not per read. Firmware
        below 7 takes no token (pyenphase derives the installer's password from the serial)."""
        # See the imports: pyenphase only once a gateway is read.
        from pyenphase import Envoy  # noqa: PLC0415
        from pyenphase.const import AUTH_TOKEN_MIN_VERSION, SupportedFeatures  # noqa: PLC0415
        from pyenphase.exceptions import (  # noqa: PLC0415
            EnvoyAuthenticationError,
            EnvoyAuthenticationRequired,
        )

        envoy = Envoy(
            self.host,
            client=self._client_session(),
            timeout=aiohttp.ClientTimeout(total=self.timeout.total_seconds()),
        )
        envoy.set_retry_policy(max_attempts=1, max_delay=0, wait_multiplier=0)
        await envoy.setup()
        token = load_token(self.token_path) if envoy.firmware >= AUTH_TOKEN_MIN_VERSION else None
        try:
            await envoy.authenticate(token=token)
        except (EnvoyAuthenticationRequired, EnvoyAuthenticationError) as err:
            raise GatewayTokenError("the token check (/auth/check_jwt) failed") from err
        await envoy.probe()
        features = envoy.supported_features
        metered = bool(
            features & (SupportedFeatures.NET_CONSUMPTION | SupportedFeatures.TOTAL_CONSUMPTION)
        )
        found = _feature_words(features)
        if found != self.features or metered != self.consumption_metered:
            _LOGGER.info(
                "gateway %s, firmware %s: %s%s",
                envoy.serial_number,
                envoy.firmware,
                ", ".join(found),
                ""
                if metered
                else "; no consumption meter: the house's load comes from the cloud's buckets",
            )
        self.features, self.consumption_metered = found, metered
        # The breaker bounds each phase: a three-phase site takes three times the power.
        per_phase = self._limits_per_phase
        self.limits = replace(
            per_phase, max_site_w=per_phase.max_site_w * max(1, envoy.phase_count)
        )
        self._envoy = envoy
        return envoy

    # --- state ---------------------------------------------------------------------------------

    def _failed(self, now: datetime, problem: str) -> None:
        self.failures += 1
        pause = doubled(RETRY_FIRST, self.failures - 1, RETRY_MAX)
        self.next_try = now + pause
        if self.down_since is None:
            self.down_since = now
            _LOGGER.warning(
                "the gateway at %s does not answer (%s); the surplus comes from the cloud's "
                "15-minute buckets until it does",
                self.host,
                problem,
            )
        elif problem != self.problem:
            _LOGGER.warning("the gateway still does not answer: %s", problem)
        self.problem = problem

    def _answered(self, now: datetime) -> None:
        if self.down_since is not None:
            _LOGGER.info(
                "the gateway answers again after %d failed reads (%.0f s); surplus from it again",
                self.failures,
                (now - self.down_since).total_seconds(),
            )
        self.down_since, self.problem, self.failures, self.next_try = None, None, 0, None


def gateway_source(config: Config) -> GatewaySource | None:
    """The source a config's ``gateway:`` block describes (None without one): the service's
    and `evopt gateway check`'s, so both read the gateway the same way."""
    gateway, site = config.gateway, config.site
    if gateway is None:
        return None
    return GatewaySource(
        host=gateway.host,
        token_path=config.gateway_token_path,
        timeout=gateway.timeout,
        limits=PhysicsLimits.for_site(
            max_current_a=site.max_current,
            voltage_v=float(site.voltage or NOMINAL_VOLTAGE),
            phases=1,
        ),
    )


def _describe(err: BaseException, timeout: timedelta) -> str:
    if isinstance(err, TimeoutError):
        return f"no answer within {timeout.total_seconds():g} s"
    text = str(err) or type(err).__name__
    return f"{type(err).__name__}: {text}"


def _feature_words(features: SupportedFeatures) -> tuple[str, ...]:
    from pyenphase.const import SupportedFeatures  # noqa: PLC0415 - see the imports

    words = {
        SupportedFeatures.PRODUCTION: "production",
        SupportedFeatures.METERING: "production meter",
        SupportedFeatures.TOTAL_CONSUMPTION: "total consumption",
        SupportedFeatures.NET_CONSUMPTION: "net consumption",
        SupportedFeatures.ENCHARGE: "battery",
        SupportedFeatures.ACB: "AC battery",
    }
    return tuple(word for flag, word in words.items() if features & flag)


def reading_from(
    data: EnvoyData, *, now: datetime, consumption_metered: bool, phases: int = 1
) -> GatewayReading:
    """``EnvoyData`` in our terms: production, consumption, grid, battery (W) and charge.

    A gateway that reports only the grid gives consumption as production + grid, as the
    gateway itself computes total consumption. The reading's time is the meters' own
    timestamp when it is close to ``now``.
    """
    production: float | None = None
    consumption: float | None = None
    net: float | None = None
    if data.system_production is not None:
        production = data.system_production.watts_now
    if data.system_consumption is not None:
        consumption = data.system_consumption.watts_now
    if data.system_net_consumption is not None:
        net = data.system_net_consumption.watts_now
    meters = data.ctmeters
    production_ct = meters.get("production")
    net_ct = meters.get("net-consumption")
    if production is None and production_ct is not None:
        production = production_ct.active_power
    if net is None and net_ct is not None and consumption_metered:
        net = net_ct.active_power
    battery: float | None = None
    if data.encharge_power:
        battery = sum(p.real_power_mw for p in data.encharge_power.values()) / 1000.0
    elif (storage := meters.get("storage")) is not None:
        battery = float(storage.active_power)
    elif data.acb_power is not None:
        battery = float(data.acb_power.power)
    if consumption is None and consumption_metered and production is not None and net is not None:
        consumption = production + net
    soc: float | None = None
    if data.encharge_aggregate is not None:
        soc = float(data.encharge_aggregate.state_of_charge)
    elif data.battery_aggregate is not None:
        soc = float(data.battery_aggregate.state_of_charge)
    return GatewayReading(
        at=_reading_time(data, now),
        production_w=_float(production),
        consumption_w=_float(consumption) if consumption_metered else None,
        net_w=_float(net) if consumption_metered else None,
        battery_w=battery,
        battery_soc_pct=soc,
        consumption_metered=consumption_metered,
        phases=phases,
    )


def _reading_time(data: EnvoyData, now: datetime) -> datetime:
    stamps = [m.timestamp for m in data.ctmeters.values() if m is not None and m.timestamp]
    if stamps:
        at = datetime.fromtimestamp(max(stamps), UTC)
        if now - CLOCK_SLACK <= at <= now + timedelta(minutes=1):
            return min(at, now)
    return now


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)
