"""Shared fixtures. Retries sleep for real nowhere in the suite."""

from __future__ import annotations

import inspect
from typing import Any
from unittest.mock import Mock

import aioresponses.core
from aiohttp import ClientResponse

# aioresponses 0.7.9 predates aiohttp 3.14's required ``stream_writer`` argument
# (pnuckowski/aioresponses#289). Until a release carries the fix, hand it a writer stub.
if "stream_writer" in inspect.signature(ClientResponse.__init__).parameters:

    class _CompatClientResponse(ClientResponse):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("stream_writer", Mock(output_size=0))
            super().__init__(*args, **kwargs)

    aioresponses.core.ClientResponse = _CompatClientResponse  # type: ignore[misc]
