"""The shared async client of the Enlighten cloud API (transport, auth, endpoints, models).

``EnlightenClient`` and ``EnlightenError`` are re-exported lazily: importing a light module of
this package (errors, models) must not import the whole client, which itself imports modules
(such as ``optimizer.limits``) that depend on those light ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optimizer.lazy import names_from

if TYPE_CHECKING:
    from optimizer.enlighten.client import EnlightenClient
    from optimizer.enlighten.errors import EnlightenError

__all__ = ["EnlightenClient", "EnlightenError"]


__getattr__ = names_from(__name__, {"EnlightenClient": "client", "EnlightenError": "errors"})
