"""Typed views of the Enlighten EV replies, and the parsers that build them.

This is the one place where decoded JSON becomes data the rest of the optimizer can trust. The
cloud is inconsistent across regions and firmware (see ``enlighten-ev-cloud-api.md`` and the
field notes), so the parsers are deliberately two-faced: a reply whose *outer shape* or an
*essential field* is wrong raises :class:`ParseError` (the caller must not act on it), while an
optional field of an unexpected type quietly becomes ``None`` so that one odd value never
hides the rest of a useful reply. Nothing here raises anything but ``ParseError`` for bad input.
"""

from __future__ import annotations

from optimizer.enlighten.models.base import USE_BATTERY_SETTING, ChargeMode, FrozenModel
from optimizer.enlighten.models.energy import LifetimeEnergy, parse_lifetime_energy
from optimizer.enlighten.models.live_stream import LiveStream, parse_live_stream
from optimizer.enlighten.models.login import LoginReply, parse_login_reply, parse_otp_reply
from optimizer.enlighten.models.scheduler import (
    GreenSetting,
    ScheduleConfig,
    Schedules,
    ScheduleSlot,
    battery_for_self_consumption,
    parse_charge_mode,
    parse_green_settings,
    parse_schedules,
)
from optimizer.enlighten.models.sessions import (
    ChargingSession,
    SessionHistoryPage,
    parse_session_history_page,
)
from optimizer.enlighten.models.site_data import (
    BatteryStatus,
    LatestPower,
    parse_battery_status,
    parse_latest_power,
)
from optimizer.enlighten.models.sites import Site, parse_sites
from optimizer.enlighten.models.status import (
    ChargerSession,
    ChargerStatus,
    Connector,
    EnergyUnit,
    SiteStatus,
    parse_status,
    session_energy_kwh,
    status_energy_unit,
)
from optimizer.enlighten.models.summary import (
    ChargerSummary,
    NetworkInterface,
    parse_network_config,
    parse_summary,
    parse_summary_list,
)

__all__ = [
    "USE_BATTERY_SETTING",
    "BatteryStatus",
    "ChargeMode",
    "ChargerSession",
    "ChargerStatus",
    "ChargerSummary",
    "ChargingSession",
    "Connector",
    "EnergyUnit",
    "FrozenModel",
    "GreenSetting",
    "LatestPower",
    "LifetimeEnergy",
    "LiveStream",
    "LoginReply",
    "NetworkInterface",
    "ScheduleConfig",
    "ScheduleSlot",
    "Schedules",
    "SessionHistoryPage",
    "Site",
    "SiteStatus",
    "battery_for_self_consumption",
    "parse_battery_status",
    "parse_charge_mode",
    "parse_green_settings",
    "parse_latest_power",
    "parse_lifetime_energy",
    "parse_live_stream",
    "parse_login_reply",
    "parse_network_config",
    "parse_otp_reply",
    "parse_schedules",
    "parse_session_history_page",
    "parse_sites",
    "parse_status",
    "parse_summary",
    "parse_summary_list",
    "session_energy_kwh",
    "status_energy_unit",
]
