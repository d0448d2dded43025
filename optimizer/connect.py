"""The client a process uses, built from the config, and the site it works on.

Shared by the CLI (one client per command) and the service (one client for months, rebuilt
after a login problem), so both talk to Enlighten with the same settings.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from optimizer.config import ENV_PASSWORD, Config
from optimizer.enlighten.auth import AccountSession
from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.errors import ConfigError, UnknownSiteError
from optimizer.enlighten.ratelimit import account_limiter
from optimizer.enlighten.transport import RetryPolicy

__all__ = [
    "CREDENTIAL_NAME",
    "client_for",
    "mqtt_password",
    "password_provider",
    "resolve_site_id",
    "site_password",
    "unattended_password",
]

CREDENTIAL_NAME = "enlighten-password"
MQTT_CREDENTIAL = "mqtt-password"


def unattended_password(config: Config | None = None) -> str | None:
    """The password without asking anyone: ``ENLIGHTEN_PASSWORD``, else a systemd credential.

    The service uses only this (it has no terminal, and a prompt would stall its loop); the
    CLI falls back to a prompt. A site of a ``sites:`` list looks first at its own sources
    (:func:`site_password`), so two accounts never share one password by accident.
    """
    if config is not None and config.site_index is not None:
        own = site_password(config)
        if own is not None:
            return own
    return os.environ.get(ENV_PASSWORD) or _systemd_credential(CREDENTIAL_NAME)


def password_provider(config: Config) -> Callable[[], str | None]:
    """:func:`unattended_password` for this config's account, asked only at a login."""
    return lambda: unattended_password(config)


def site_password(config: Config) -> str | None:
    """A site's own password: the variable ``enlighten.password_env`` names, else the
    systemd credential ``enlighten-password-<name>`` of a named site (docs/sites.md)."""
    variable = config.enlighten.password_env
    if variable and os.environ.get(variable):
        return os.environ[variable]
    if config.site_name:
        return _systemd_credential(f"{CREDENTIAL_NAME}-{config.site_name}")
    return None


def mqtt_password(config: Config) -> str | None:
    """The MQTT broker's password: the variable ``mqtt.password_env`` names, else the
    systemd credential ``mqtt-password`` (``LoadCredential=mqtt-password:...``), else none
    (a broker that allows anonymous clients, or a username alone)."""
    if config.mqtt is None:
        return None
    variable = config.mqtt.password_env
    if variable and os.environ.get(variable):
        return os.environ[variable]
    return _systemd_credential(MQTT_CREDENTIAL)


def _systemd_credential(name: str) -> str | None:
    """The password systemd hands over with ``LoadCredential=enlighten-password:...``.

    Credentials live in a private, read-only directory only this service can see, which keeps
    the password out of the environment (readable in /proc by the same user).
    """
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    try:
        return (Path(directory) / name).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def client_for(
    config: Config,
    *,
    password_provider: Callable[[], str | None] | None,
    shared: AccountSession | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_wait_s: float = math.inf,
    meter: object = None,
    wall_clock: Callable[[], float] | None = None,
    fetch_entrez: bool = True,
) -> EnlightenClient:
    """A client as the config sets it up.

    ``password_provider`` is asked only when a login is needed; None makes a client that uses
    the stored session and never logs in by itself (the service waiting for `evopt login`).
    ``shared``: the session of this account that other sites' clients use too (the fleet).
    Every client of one account in the process shares the account's request budget
    (``enlighten.budget_per_hour``); ``clock`` and ``sleep`` are the time it is metered in
    (the service passes its own, so a simulated day is metered in simulated time), and a
    request that would wait longer than ``max_wait_s`` is refused unsent (the service: 0, its
    ticks never wait; see ``optimizer/enlighten/ratelimit.py``). ``meter`` names that time
    (the service's clock object), so only clients metered in it share a limiter.
    ``wall_clock`` (epoch seconds) is the time tokens expire in (default: the wall clock): the
    service passes its own, so a simulated day renews its token before expiry as a real one
    does, not after a 401. ``fetch_entrez=False``: no Entrez token after a login (the
    service: its reads, writes and scheduler calls take the login's tokens; history, which
    prefers Entrez, falls back to them too, and `evopt history fetch` logs in with its own).
    """
    enlighten = config.enlighten
    email = config.account_email()
    limiter = account_limiter(
        enlighten.base_url,
        email,
        budget_per_hour=enlighten.budget_per_hour,
        clock=clock,
        sleep=sleep,
        max_wait_s=max_wait_s,
        meter=meter,
    )
    return EnlightenClient(
        base_url=enlighten.base_url,
        email=email,
        password_provider=password_provider,
        state_dir=config.state_dir,
        timeout_s=enlighten.timeout.total_seconds(),
        retry=RetryPolicy(attempts=enlighten.retries),
        site_max_amps=config.site.max_current,
        settle_s=config.charger.settle_delay.total_seconds(),
        direct_amps=config.charger.direct_amps,
        entrez_url=enlighten.entrez_url,
        start_amps=config.charger.start_amps,
        account=config.account_key(),
        shared=shared,
        limiter=limiter,
        clock=wall_clock,
        fetch_entrez=fetch_entrez,
    )


async def resolve_site_id(client: EnlightenClient, chosen: int | None) -> int:
    """``chosen`` when given, else the account's only site."""
    if chosen is not None:
        return chosen
    sites = await client.sites()
    if len(sites) == 1:
        return sites[0].site_id
    if not sites:
        raise UnknownSiteError(
            "Enlighten's site search found no sites for this account",
            status=468,
            url="discovery",
            hint="set `enlighten.site_id` to the site's numeric id (the number after /web/ in "
            "the Enlighten web address) or pass --site ID",
        )
    ids = ", ".join(str(s.site_id) for s in sites)
    raise ConfigError(
        f"this account has several sites ({ids})",
        hint="set `enlighten.site_id` in the config or pass --site ID",
    )
