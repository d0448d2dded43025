"""Topic names of the MQTT bridge (pure): one place that says where everything goes.

``<base>/status``                         the bridge's availability (``online``; Will ``offline``)
``<base>/<site>/state``                   the site's retained JSON state
``<base>/<site>/<charger>/state``         a charger's retained JSON state
``<base>/<site>/<charger>/decision``      its last decision in full (the attributes of a sensor)
``<base>/<site>/result``                  each command's outcome: ``{command, ok, error}``
``<base>/<site>/set/<command>``           site commands: rule_set, pause, resume, plan
``<base>/<site>/<charger>/set/<command>`` charger commands: plan_energy, plan_ready_by, plan,
                                          plan_clear
``<prefix>/<component>/evopt_<site>/<object>/config``   Home Assistant discovery

``<site>`` is the site's alias (``sites: - name:``), else its id; ``<charger>`` is
``charger1``, ``charger2``... in the order of their serials: never the serial, an e-mail or a
token. Home Assistant accepts only ``[A-Za-z0-9_-]`` in node and object ids
(``components/mqtt/discovery.py``), so every part is reduced to those.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Names", "charger_aliases", "slug"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def slug(text: str) -> str:
    """``home.farm`` -> ``home_farm``: a topic level and id part Home Assistant accepts."""
    return _UNSAFE.sub("_", text).strip("_") or "site"


def charger_aliases(serials: Iterable[str]) -> dict[str, str]:
    """serial -> ``chargerN``, numbered in serial order so a restart gives the same names."""
    return {sn: f"charger{index}" for index, sn in enumerate(sorted(set(serials)), start=1)}


@dataclass(frozen=True)
class Names:
    """The topics of one bridge: its base topic and Home Assistant's discovery prefix."""

    base: str
    prefix: str

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def birth(self) -> str:
        """Home Assistant's own status: ``online`` when it (re)starts and wants discovery."""
        return f"{self.prefix}/status"

    def site_state(self, site: str) -> str:
        return f"{self.base}/{site}/state"

    def result(self, site: str) -> str:
        return f"{self.base}/{site}/result"

    def charger_state(self, site: str, charger: str) -> str:
        return f"{self.base}/{site}/{charger}/state"

    def decision(self, site: str, charger: str) -> str:
        return f"{self.base}/{site}/{charger}/decision"

    def command(self, site: str, name: str, charger: str | None = None) -> str:
        where = site if charger is None else f"{site}/{charger}"
        return f"{self.base}/{where}/set/{name}"

    @property
    def command_filters(self) -> tuple[str, str]:
        """What the bridge subscribes to for commands (site and charger level)."""
        return f"{self.base}/+/set/+", f"{self.base}/+/+/set/+"

    def node(self, site: str) -> str:
        return f"evopt_{site}"

    def discovery(self, component: str, site: str, object_id: str) -> str:
        return f"{self.prefix}/{component}/{self.node(site)}/{object_id}/config"

    def parse_command(self, topic: str) -> tuple[str, str | None, str] | None:
        """``(site, charger or None, command)`` of a command topic, else None."""
        if not topic.startswith(self.base + "/"):
            return None
        parts = topic[len(self.base) + 1 :].split("/")
        if len(parts) == 3 and parts[1] == "set":
            return parts[0], None, parts[2]
        if len(parts) == 4 and parts[2] == "set":
            return parts[0], parts[1], parts[3]
        return None
