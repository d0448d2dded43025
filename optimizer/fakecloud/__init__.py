"""A fake Enlighten cloud for end-to-end tests and the demo.

An aiohttp server on 127.0.0.1 that answers the EV endpoints the way the real cloud does
(including its variants and failures), backed by a small site model driven by a controllable
clock. Typical use::

    cloud = FakeCloud(mfa=True)
    cloud.add_fault("status", path="/ev_chargers/status", status=503)
    async with FakeCloudServer(cloud) as server:
        ...  # point the client at server.base_url

It imports nothing from the client: it is the other side of the wire.
"""

from __future__ import annotations

from optimizer.fakecloud.clock import DEFAULT_START, FakeClock
from optimizer.fakecloud.cloud import FakeCloud
from optimizer.fakecloud.faults import FaultPlan, FaultRule
from optimizer.fakecloud.model import (
    Account,
    Battery,
    Charger,
    ChargerStateError,
    LevelViolation,
    ModeWrites,
    SiteModel,
)
from optimizer.fakecloud.profile import ControlProfile, Profile
from optimizer.fakecloud.requestlog import LoggedRequest, RequestLog
from optimizer.fakecloud.server import FakeCloudServer, run_in_thread

__all__ = [
    "DEFAULT_START",
    "Account",
    "Battery",
    "Charger",
    "ChargerStateError",
    "ControlProfile",
    "FakeClock",
    "FakeCloud",
    "FakeCloudServer",
    "FaultPlan",
    "FaultRule",
    "LevelViolation",
    "LoggedRequest",
    "ModeWrites",
    "Profile",
    "RequestLog",
    "SiteModel",
    "run_in_thread",
]
