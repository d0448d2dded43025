"""What a charger can be asked to do, before anything is sent (2026 reference section 8).

Three sources, merged by pure functions: the feature flags (site-wide booleans and one object
per serial; the serial's own flag wins), the charger config (``sessionAuthentication``,
``rfidSessionAuthentication``, ``phase_switch_config``, ...; a pending write counts as its
requested value) and the summary (``chargeLevelDetails``, ``phaseCount``). Data seen at run
time outranks the flags.

Two facts matter most to a controller. A charger with app or RFID session authentication on
accepts a cloud start and then delivers nothing until someone authenticates, so such a start
must not be sent as if it could charge. And ``phaseCount`` describes the installation, not the
phases in use: with automatic phase switching a three-phase unit may run on one phase, so
three times the single-phase power is only ever an upper bound, never an estimate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from optimizer.enlighten.errors import NotSupportedError
from optimizer.enlighten.models.base import FrozenModel, _as_bool, _as_int, _as_str, _reports_as
from optimizer.enlighten.models.summary import ChargerSummary

__all__ = [
    "CONFIG_KEYS",
    "NO_FLAGS",
    "SESSION_AUTH_NOTE",
    "Capabilities",
    "ChargerConfig",
    "ConfigSetting",
    "FeatureFlags",
    "SessionAuthRequiredError",
    "merge_capabilities",
    "parse_charger_config",
    "parse_feature_flags",
]

SESSION_AUTH_APP = "sessionAuthentication"
SESSION_AUTH_RFID = "rfidSessionAuthentication"
PHASE_SWITCH = "phase_switch_config"
DEFAULT_LEVEL = "DefaultChargeLevel"
# The keys the web app reads, in its order (the body of the charger-config POST).
CONFIG_KEYS = (SESSION_AUTH_APP, SESSION_AUTH_RFID, DEFAULT_LEVEL, PHASE_SWITCH)
SETTLED, PENDING = 1, 2
SESSION_AUTH_NOTE = (
    "session authentication is on: the cloud accepts a start, but no energy flows until "
    "someone authenticates in the Enphase app or with an RFID card"
)
_OFF_WORDS = frozenset({"disabled", "disable", "off", "false", "0", "none", "null", ""})


class SessionAuthRequiredError(NotSupportedError):
    """A start was asked of a charger that waits for someone to authenticate; not sent."""

    hint = (
        "authenticate in the Enphase app or with an RFID card (or turn session authentication "
        "off), or pass --force to send the start anyway"
    )


# --- feature flags -----------------------------------------------------------------------------


class FeatureFlags(FrozenModel):
    """Site-wide flags and each serial's own; ``known`` is False when the cloud had none."""

    site: dict[str, bool] = Field(default_factory=dict)
    chargers: dict[str, dict[str, bool]] = Field(default_factory=dict)
    known: bool = True

    def flag(self, sn: str, name: str) -> bool | None:
        """The charger's own flag first, then the site's; None when neither says."""
        own = self.chargers.get(sn, {}).get(name)
        return own if own is not None else self.site.get(name)


NO_FLAGS = FeatureFlags(known=False)


@_reports_as("feature flags")
def parse_feature_flags(payload: Any) -> FeatureFlags:
    """``data`` holds plain booleans (site) and objects keyed by serial (per charger)."""
    body: dict[str, Any] = payload if isinstance(payload, dict) else {}
    inner = body.get("data")
    data: dict[str, Any] = inner if isinstance(inner, dict) else body
    site: dict[str, bool] = {}
    chargers: dict[str, dict[str, bool]] = {}
    for key, value in data.items():
        if key in ("meta", "error"):
            continue
        if isinstance(value, dict):
            own = {name: flag for name, raw in value.items() if (flag := _as_bool(raw)) is not None}
            chargers[str(key)] = own
        elif (flag := _as_bool(value)) is not None:
            site[str(key)] = flag
    return FeatureFlags(site=site, chargers=chargers, known=bool(site or chargers))


# --- charger config ----------------------------------------------------------------------------


class ConfigSetting(FrozenModel):
    """One key of the charger config. ``status`` 1 settled, 2 a write pending."""

    key: str
    value: str | None
    requested: str | None
    status: int | None

    @property
    def pending(self) -> bool:
        return self.status == PENDING

    @property
    def effective(self) -> str | None:
        """What the charger will do: the requested value while a write is pending, the value
        once settled; a null value falls back to ``reqValue`` (null means off or unset)."""
        if self.pending and self.requested is not None:
            return self.requested
        return self.value if self.value is not None else self.requested


class ChargerConfig(FrozenModel):
    settings: dict[str, ConfigSetting] = Field(default_factory=dict)

    def value(self, key: str) -> str | None:
        setting = self.settings.get(key)
        return setting.effective if setting is not None else None

    def enabled(self, key: str) -> bool | None:
        """On/off of a setting; None when the key was not reported at all."""
        if key not in self.settings:
            return None
        value = self.value(key)
        return value is not None and value.strip().lower() not in _OFF_WORDS

    def pending(self, key: str) -> bool:
        setting = self.settings.get(key)
        return setting is not None and setting.pending


@_reports_as("charger config")
def parse_charger_config(payload: Any) -> ChargerConfig:
    body: dict[str, Any] = payload if isinstance(payload, dict) else {}
    inner = body.get("data")
    rows: list[Any] = inner if isinstance(inner, list) else []
    settings: dict[str, ConfigSetting] = {}
    for row in rows:
        if not isinstance(row, dict) or _as_str(row.get("key")) is None:
            continue
        key = str(row["key"])
        settings[key] = ConfigSetting(
            key=key,
            value=_scalar(row.get("value")),
            requested=_scalar(row.get("reqValue")),
            status=_as_int(row.get("status")),
        )
    return ChargerConfig(settings=settings)


def _scalar(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "enabled" if value else "disabled"
    return str(value)


# --- the merged picture -------------------------------------------------------------------------


class Capabilities(FrozenModel):
    """One charger's capabilities, each None where no source says."""

    sn: str
    amps_control: bool | None = None
    modes: bool | None = None
    session_auth_app: bool | None = None
    session_auth_rfid: bool | None = None
    session_auth_pending: bool = False
    min_amps: int | None = None
    max_amps: int | None = None
    granularity: int = 1
    phase_count: int | None = None  # the installation
    phase_switching: str | None = None  # ``phase_switch_config``: "auto" observed
    phases_in_use: int | None = None  # known only where nothing can switch phases

    @property
    def session_auth(self) -> bool | None:
        """Whether a cloud start waits for someone to authenticate (app or RFID)."""
        kinds = (self.session_auth_app, self.session_auth_rfid)
        if any(kinds):
            return True
        return False if any(kind is False for kind in kinds) else None

    @property
    def session_auth_kinds(self) -> tuple[str, ...]:
        return tuple(
            name
            for name, on in (("app", self.session_auth_app), ("RFID", self.session_auth_rfid))
            if on
        )

    @property
    def estimate_phases(self) -> int:
        """Phases for a power estimate: one unless more are known to be in use."""
        return self.phases_in_use or 1

    @property
    def bound_phases(self) -> int:
        """Phases for an upper bound: the installation's."""
        return max(self.phase_count or 1, self.estimate_phases)

    def describe(self) -> str:
        """One line for `evopt status` and the log."""
        parts = []
        if self.session_auth:
            pending = " (change pending)" if self.session_auth_pending else ""
            kinds = " and ".join(self.session_auth_kinds)
            parts.append(f"session authentication on ({kinds}){pending}")
        if self.amps_control is False:
            parts.append("no amps control")
        if self.min_amps is not None and self.max_amps is not None:
            parts.append(f"{self.min_amps}-{self.max_amps} A in {self.granularity} A steps")
        if self.phase_count:
            in_use = (
                f"{self.phases_in_use} in use"
                if self.phases_in_use
                else "phases in use unknown, 1 assumed"
            )
            switch = f", phase switching {self.phase_switching}" if self.phase_switching else ""
            parts.append(f"{self.phase_count}-phase installation ({in_use}{switch})")
        return "; ".join(parts) or "nothing reported"

    def to_json(self) -> dict[str, Any]:
        return {
            "amps_control": self.amps_control,
            "modes": self.modes,
            "session_auth": self.session_auth,
            "session_auth_kinds": list(self.session_auth_kinds),
            "session_auth_pending": self.session_auth_pending,
            "min_amps": self.min_amps,
            "max_amps": self.max_amps,
            "granularity": self.granularity,
            "phase_count": self.phase_count,
            "phase_switching": self.phase_switching,
            "phases_in_use": self.phases_in_use,
        }


def merge_capabilities(
    sn: str,
    *,
    summary: ChargerSummary | None = None,
    flags: FeatureFlags = NO_FLAGS,
    config: ChargerConfig | None = None,
    runtime: Mapping[str, bool] | None = None,
) -> Capabilities:
    """Everything known about ``sn``; ``runtime`` (e.g. ``{"amps_control": True}`` once a
    level was seen to take effect) outranks the flags."""
    seen = runtime or {}
    amps = flags.flag(sn, "max_current_config_support")
    if amps is None:
        amps = flags.flag(sn, "evse_charge_level_control")
    settings = config or ChargerConfig()
    phase_count = summary.phase_count if summary is not None else None
    switching = settings.value(PHASE_SWITCH)
    return Capabilities(
        sn=sn,
        amps_control=seen.get("amps_control", amps),
        modes=seen.get("modes", flags.flag(sn, "evse_charging_mode")),
        session_auth_app=_auth(settings, SESSION_AUTH_APP, flags.flag(sn, "evse_authentication")),
        session_auth_rfid=_auth(settings, SESSION_AUTH_RFID, flags.flag(sn, "iqevse_rfid")),
        session_auth_pending=settings.pending(SESSION_AUTH_APP)
        or settings.pending(SESSION_AUTH_RFID),
        min_amps=summary.min_amps if summary is not None else None,
        max_amps=(summary.max_amps or summary.max_current) if summary is not None else None,
        granularity=summary.granularity_amps if summary is not None else 1,
        phase_count=phase_count,
        phase_switching=switching,
        phases_in_use=_phases_in_use(sn, phase_count, switching, flags),
    )


def _auth(config: ChargerConfig, key: str, supported: bool | None) -> bool | None:
    """The setting decides; a charger whose flags say it has no such feature has it off."""
    enabled = config.enabled(key)
    if enabled is not None:
        return enabled
    return False if supported is False else None


def _phases_in_use(
    sn: str, phase_count: int | None, switching: str | None, flags: FeatureFlags
) -> int | None:
    """One phase installed is one in use. Three are known in use only when nothing can
    switch: no automatic switching configured and the flags deny phase switching."""
    if phase_count == 1:
        return 1
    if phase_count != 3:
        return None
    auto = switching is not None and switching.strip().lower() == "auto"
    can_switch = (
        flags.flag(sn, "phase_config_support") is not False
        and flags.flag(sn, "evse_phase_switching") is not False
    )
    return None if auto or can_switch else 3
