"""The shared async client of the Enlighten cloud API (transport, auth, endpoints, models)."""

from optimizer.enlighten.client import EnlightenClient
from optimizer.enlighten.errors import EnlightenError

__all__ = ["EnlightenClient", "EnlightenError"]
