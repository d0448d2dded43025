"""What every command needs: the config, one client, and the site and chargers to act on."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from optimizer.config import ENV_PASSWORD, Config
from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.errors import ConfigError, UnknownSiteError
from optimizer.enlighten.transport import RetryPolicy

_LOGGER = logging.getLogger(__name__)


CREDENTIAL_NAME = "enlighten-password"


def _systemd_credential() -> str | None:
    """The password systemd hands over with ``LoadCredential=enlighten-password:...``.

    Credentials live in a private, read-only directory only this service can see, which keeps
    the password out of the environment (readable in /proc by the same user).
    """
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    try:
        return (Path(directory) / CREDENTIAL_NAME).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def password_from_env_or_prompt() -> str | None:
    """ENLIGHTEN_PASSWORD, a systemd credential, a prompt at a terminal, else nothing."""
    password = os.environ.get(ENV_PASSWORD) or _systemd_credential()
    if password:
        return password
    if sys.stdin.isatty():
        return getpass.getpass("Enlighten password: ")
    return None


def client_for(
    config: Config,
    *,
    password_provider: Callable[[], str | None] | None = password_from_env_or_prompt,
) -> EnlightenClient:
    """The one client a process uses, as the config sets it up (the CLI and the service).

    ``password_provider=None`` makes a client that only uses the stored session and never
    logs in by itself (the service waiting for someone to run `evopt login`).
    """
    enlighten = config.enlighten
    return EnlightenClient(
        base_url=enlighten.base_url,
        email=config.account_email(),
        password_provider=password_provider,
        state_dir=config.state_dir,
        timeout_s=enlighten.timeout.total_seconds(),
        retry=RetryPolicy(attempts=enlighten.retries),
        site_max_amps=config.site.max_current,
        settle_s=config.charger.settle_delay.total_seconds(),
        direct_amps=config.charger.direct_amps,
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
            "this account has no sites with an EV charger", status=468, url="discovery"
        )
    ids = ", ".join(str(s.site_id) for s in sites)
    raise ConfigError(
        f"this account has several sites ({ids})",
        hint="set `enlighten.site_id` in the config or pass --site ID",
    )


@dataclass
class Context:
    config: Config
    args: argparse.Namespace

    def client(self) -> EnlightenClient:
        return client_for(self.config)

    async def site_id(self, client: EnlightenClient) -> int:
        """``--site``, else ``enlighten.site_id``, else the account's only site."""
        chosen: int | None = getattr(self.args, "site", None) or self.config.enlighten.site_id
        return await resolve_site_id(client, chosen)

    async def charger_serials(self, client: EnlightenClient, site_id: int) -> list[str]:
        """``--charger SN`` (checked against the site), else every charger of the site."""
        status = await client.status(site_id)
        serials = [c.sn for c in status.chargers]
        wanted: str | None = getattr(self.args, "charger", None)
        if wanted is None:
            return serials
        if wanted not in serials:
            known = ", ".join(serials) or "none"
            raise ConfigError(
                f"site {site_id} has no charger {wanted} (chargers: {known})",
                hint="pass one of the serial numbers listed, or leave --charger out",
            )
        return [wanted]

    async def one_charger(self, client: EnlightenClient, site_id: int) -> str:
        """The charger a write goes to: ``--charger``, or the site's only one."""
        serials = await self.charger_serials(client, site_id)
        if len(serials) == 1:
            return serials[0]
        if not serials:
            raise ConfigError(f"site {site_id} has no charger")
        raise ConfigError(
            f"site {site_id} has several chargers ({', '.join(serials)})",
            hint="pass --charger SN to say which one",
        )
