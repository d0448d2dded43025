"""The long-running service behind `evopt run`: the asyncio loop, signals, reload, systemd.

``Service`` (core) runs the loop; ``clock`` makes its time injectable; ``setup`` loads the
config and rules it works from; ``health`` decides how long to wait after a failure; ``status``
writes the line `systemctl status` shows; ``fleet`` runs one service per site of a ``sites:``
list in one process.

The names below are loaded on first use: `evopt simulate` reads ``setup``'s file hashes, and
importing the package eagerly would bring the whole loop, the cloud's client and aiohttp
(0.17 s of its start) into a command that never ticks.
"""

from typing import TYPE_CHECKING

from optimizer.lazy import names_from

if TYPE_CHECKING:
    from optimizer.service.clock import Clock, SystemClock
    from optimizer.service.core import EXIT_INTERNAL, Acted, Service, TickReport
    from optimizer.service.fleet import Fleet

__getattr__ = names_from(
    __name__,
    {
        "Clock": "clock",
        "SystemClock": "clock",
        "EXIT_INTERNAL": "core",
        "Acted": "core",
        "Service": "core",
        "TickReport": "core",
        "Fleet": "fleet",
    },
)


__all__ = ["EXIT_INTERNAL", "Acted", "Clock", "Fleet", "Service", "SystemClock", "TickReport"]
