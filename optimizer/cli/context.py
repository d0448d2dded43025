"""What every command needs: the config, one client, and the site and chargers to act on."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from dataclasses import dataclass

from optimizer.config import ENV_PASSWORD, Config
from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.errors import ConfigError, UnknownSiteError
from optimizer.enlighten.transport import RetryPolicy

_LOGGER = logging.getLogger(__name__)


def password_from_env_or_prompt() -> str | None:
    """ENLIGHTEN_PASSWORD, else a prompt when a person is at the terminal, else nothing."""
    password = os.environ.get(ENV_PASSWORD)
    if password:
        return password
    if sys.stdin.isatty():
        return getpass.getpass("Enlighten password: ")
    return None


@dataclass
class Context:
    config: Config
    args: argparse.Namespace

    def client(self) -> EnlightenClient:
        enlighten = self.config.enlighten
        return EnlightenClient(
            base_url=enlighten.base_url,
            email=self.config.account_email(),
            password_provider=password_from_env_or_prompt,
            state_dir=self.config.state_dir,
            timeout_s=enlighten.timeout.total_seconds(),
            retry=RetryPolicy(attempts=enlighten.retries),
            site_max_amps=self.config.site.max_current,
            settle_s=self.config.charger.settle_delay.total_seconds(),
            direct_amps=self.config.charger.direct_amps,
        )

    async def site_id(self, client: EnlightenClient) -> int:
        """``--site``, else ``enlighten.site_id``, else the account's only site."""
        chosen: int | None = getattr(self.args, "site", None) or self.config.enlighten.site_id
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
