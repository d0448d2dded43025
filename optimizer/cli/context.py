"""What every command needs: the config, one client, and the site and chargers to act on."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from optimizer.config import Config
from optimizer.enlighten.errors import ConfigError

if TYPE_CHECKING:
    from optimizer.enlighten.client import EnlightenClient
    from optimizer.enlighten.models import SiteStatus

_LOGGER = logging.getLogger(__name__)


def display_zone(config: Config) -> tzinfo:
    """The site's zone, else the machine's: the zone a person thinks in (`evopt log`, the
    service's tick lines). Here, not in cli/log.py: `evopt run` would import the log's review
    and the simulation log only for this (issue 16, the daemon's memory)."""
    if config.site.timezone:
        return ZoneInfo(config.site.timezone)
    return datetime.now().astimezone().tzinfo or UTC


def password_from_env_or_prompt(config: Config | None = None) -> str | None:
    """ENLIGHTEN_PASSWORD, a systemd credential, a prompt at a terminal, else nothing.

    With a site of a ``sites:`` list, its own password sources come first (docs/sites.md)."""
    from optimizer.connect import unattended_password  # noqa: PLC0415 (see Context.client)

    password = unattended_password(config)
    if password:
        return password
    if sys.stdin.isatty():
        return getpass.getpass("Enlighten password: ")
    return None


def pick_site(config: Config, chosen: str | None, *, all_sites: bool) -> Config:
    """The config a command works from: with a ``sites:`` list, the site ``--site`` names
    (by name or id), else every site for a command that shows them all (``all_sites``), else
    the only site; a config without ``sites:`` as it is (``--site`` is then a site id).
    """
    if config.sites is None:
        if chosen is not None and not chosen.isdigit():
            raise ConfigError(
                f"--site {chosen}: not a site id, and the config lists no sites by name",
                hint="pass the numeric site id (`evopt sites` lists them)",
            )
        return config
    views = config.site_configs()
    known = ", ".join(v.label if v.site_name else str(v.enlighten.site_id) for v in views)
    if chosen is None:
        if all_sites:
            return config
        if len(views) == 1:
            return views[0]
        raise ConfigError(
            f"the config lists several sites ({known})",
            hint="pass --site NAME or --site ID to say which one",
        )
    for view in views:
        if chosen in (view.site_name, str(view.enlighten.site_id)):
            return view
    raise ConfigError(
        f"no site '{chosen}' in the config's sites ({known})",
        hint="pass the name or the site id of one of them",
    )


@dataclass
class Context:
    config: Config
    args: argparse.Namespace

    def client(self) -> EnlightenClient:
        """The cloud's client. Imported here: every command has a context, and the ones that
        never reach the cloud (`evopt simulate`, `evopt log`, `evopt rules`) would otherwise
        import aiohttp and the sign-in's libraries for nothing (0.16 s of each start)."""
        from optimizer.connect import client_for  # noqa: PLC0415

        config = self.config
        return client_for(config, password_provider=lambda: password_from_env_or_prompt(config))

    async def site_id(self, client: EnlightenClient) -> int:
        """``--site``, else ``enlighten.site_id``, else the account's only site."""
        from optimizer.connect import resolve_site_id  # noqa: PLC0415 (see client)

        return await resolve_site_id(client, self.chosen_site_id())

    def chosen_site_id(self) -> int | None:
        """The site id ``--site`` names (a site of ``sites:`` was picked already), else the
        config's."""
        chosen: str | None = getattr(self.args, "site", None)
        if chosen is None or self.config.site_index is not None:
            return self.config.enlighten.site_id
        try:
            return int(chosen)
        except ValueError:
            raise ConfigError(
                f"--site {chosen}: not a site id, and the config lists no sites by name",
                hint="pass the numeric site id (`evopt sites` lists them)",
            ) from None

    async def charger_serials(self, client: EnlightenClient, site_id: int) -> list[str]:
        """``--charger SN`` (checked against the site), else every charger of the site."""
        return self.chosen_chargers(await client.status(site_id), site_id)

    def chosen_chargers(self, status: SiteStatus, site_id: int) -> list[str]:
        """:meth:`charger_serials` from a status already read."""
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
