"""Where evopt keeps what it can make again (the optimum's answers, the online forecast's last
reply): one rule for every cache, so one variable moves them all."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root"]


def cache_root() -> Path:
    """``$EVOPT_CACHE_DIR``, else systemd's ``$CACHE_DIRECTORY`` (the unit's
    ``CacheDirectory=evopt``: the service's home is not writable, docs/evopt.service), else
    ``$XDG_CACHE_HOME/evopt``, else ``~/.cache/evopt``; created by whoever writes there first.
    Deleting it costs only the work of making it again."""
    explicit = os.environ.get("EVOPT_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    systemd = os.environ.get("CACHE_DIRECTORY", "").split(":")[0]
    if systemd:
        return Path(systemd)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "evopt"
