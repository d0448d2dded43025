"""What every command needs: the config, one client, and the site and chargers to act on."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from dataclasses import dataclass

from optimizer.config import Config
from optimizer.connect import client_for, resolve_site_id, unattended_password
from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.errors import ConfigError

_LOGGER = logging.getLogger(__name__)


def password_from_env_or_prompt() -> str | None:
    """ENLIGHTEN_PASSWORD, a systemd credential, a prompt at a terminal, else nothing."""
    password = unattended_password()
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
        return client_for(self.config, password_provider=password_from_env_or_prompt)

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
