"""Site discovery replies (the 2026 search API and the older paths)."""

from __future__ import annotations

from typing import Any

from optimizer.enlighten.errors import ParseError
from optimizer.enlighten.models.base import (
    FrozenModel,
    _as_dict,
    _as_int,
    _as_str,
    _pick,
    _reports_as,
)

# --- sites -------------------------------------------------------------------------------------


class Site(FrozenModel):
    site_id: int
    name: str | None


_SITE_ID_KEYS = ("site_id", "siteId", "system_id", "id")
_SITE_NAME_KEYS = ("name", "title", "site_name", "siteName", "system_name", "displayName")
# The search API (2026 reference section 5) has been seen with each of these wrappers.
_SITE_WRAPPERS = ("sites", "items", "systems")


def _find_site_list(payload: Any) -> list[Any] | None:
    """Discovery endpoints nest the list differently; take the first place one is found."""
    if isinstance(payload, list):
        return payload
    data = payload.get("data") if isinstance(payload, dict) else None
    candidates = [data]
    for holder in (_as_dict(payload), _as_dict(data)):
        candidates.extend(holder.get(key) for key in _SITE_WRAPPERS)
    for candidate in candidates:
        if isinstance(candidate, list):
            return candidate
    return None


@_reports_as("sites")
def parse_sites(payload: Any) -> list[Site]:
    entries = _find_site_list(payload)
    if entries is None:
        raise ParseError(
            "sites reply has no list of sites (data, sites, items or systems, or under data)"
        )
    sites = []
    for index, entry in enumerate(entries):
        raw = entry if isinstance(entry, dict) else {"id": entry}
        site_id = _pick(raw, _SITE_ID_KEYS, _as_int)
        if site_id is None:
            raise ParseError(f"sites reply entry #{index} has no numeric site id")
        sites.append(Site(site_id=site_id, name=_pick(raw, _SITE_NAME_KEYS, _as_str)))
    return sites
