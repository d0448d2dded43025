"""The long-running service behind `evopt run`: the asyncio loop, signals, reload, systemd.

``Service`` (core) runs the loop; ``clock`` makes its time injectable; ``setup`` loads the
config and rules it works from; ``health`` decides how long to wait after a failure; ``status``
writes the line `systemctl status` shows; ``fleet`` runs one service per site of a ``sites:``
list in one process.
"""

from optimizer.service.clock import Clock, SystemClock
from optimizer.service.core import EXIT_INTERNAL, Acted, Service, TickReport
from optimizer.service.fleet import Fleet

__all__ = ["EXIT_INTERNAL", "Acted", "Clock", "Fleet", "Service", "SystemClock", "TickReport"]
