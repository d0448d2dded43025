"""Which sites the fake knows and which account owns each (issue 13: many accounts and sites).

Every site is its own ``SiteModel``: its own serials, and one PV/house model that all of its
chargers draw from (``energy.series`` adds every charger's draw to the site's consumption).
An account sees only its own sites; a site id of another account answers as the reference
says an unmapped site does (468 ``INVALID_SYSTEM_ID``, ``app.invalid_site``).

The first site (``FakeCloud.model``) belongs to the first account, so the single-site fake
answers exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from optimizer.fakecloud.model import Charger, SiteModel


def charger_serial(site_id: int, index: int) -> str:
    """``EV`` + ten digits, unique per (site, index): the shape of the reference's serials."""
    return f"EV{site_id % 10**7:07d}{index:03d}"


def new_chargers(site_id: int, count: int, *, first: int = 0) -> list[Charger]:
    """``count`` default chargers with the site's own serials, numbered from ``first``."""
    return [
        Charger(sn=charger_serial(site_id, first + i), name=f"IQ EV Charger {first + i + 1}")
        for i in range(count)
    ]


@dataclass
class SiteRegistry:
    """Site id -> model, and site id -> owner e-mail (lower case)."""

    models: dict[int, SiteModel] = field(default_factory=dict)
    owners: dict[int, str] = field(default_factory=dict)

    def add(self, model: SiteModel, owner: str) -> None:
        if model.site_id in self.models:
            raise ValueError(f"site {model.site_id} exists already")
        taken = {c.sn for m in self.models.values() for c in m.chargers}
        clash = taken & {c.sn for c in model.chargers}
        if clash:
            raise ValueError(f"charger serials already used by another site: {sorted(clash)}")
        self.models[model.site_id] = model
        self.owners[model.site_id] = owner.lower()

    def of(self, owner: str) -> list[SiteModel]:
        """The account's sites, oldest first (the order discovery lists them in)."""
        wanted = owner.lower()
        return [m for sid, m in self.models.items() if self.owners[sid] == wanted]

    def owned(self, site_id: str, owner: str) -> SiteModel | None:
        """The model of ``site_id`` (a path segment) when ``owner`` owns it, else None."""
        try:
            model = self.models.get(int(site_id))
        except ValueError:
            return None
        if model is None or self.owners[model.site_id] != owner.lower():
            return None
        return model

    def known(self, site_id: str) -> bool:
        return site_id.isdigit() and int(site_id) in self.models

    def next_id(self) -> int:
        return max(self.models) + 1 if self.models else 1234567

    def with_charger(self, sn: str) -> SiteModel | None:
        for model in self.models.values():
            if model.has_charger(sn):
                return model
        return None
