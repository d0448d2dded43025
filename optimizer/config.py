"""The configuration file: models, loading, and where it is looked for.

Unknown keys are errors (a typo must not silently fall back to a default), and every error
names the file, line and column. Relative paths in the file are taken relative to the file, so
the service finds its rules wherever systemd starts it.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from optimizer.enlighten.headers import DEFAULT_BASE_URL
from optimizer.enlighten.ratelimit import DEFAULT_BUDGET_PER_HOUR
from optimizer.explain import show, validation_problems
from optimizer.forecast.habits import HabitSettings
from optimizer.tariffs import Tariffs
from optimizer.yamlpos import Document, Problem, YamlFileError, load_file

ENV_CONFIG = "EVOPT_CONFIG"
ENV_EMAIL = "ENLIGHTEN_EMAIL"
ENV_PASSWORD = "ENLIGHTEN_PASSWORD"  # noqa: S105 - the variable's name, not a password
DEFAULT_CONFIG = Path("config.yaml")
DEFAULT_STATE_DIR = "~/.local/state/evopt"
# The field notes: never poll one endpoint faster than every 30 s.
MIN_POLL_INTERVAL = timedelta(seconds=30)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

_GATEWAY_HOST = re.compile(r"^[A-Za-z0-9_.:\[\]-]+$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, None: 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> timedelta:
    """``30``, ``"30s"``, ``"5m"``, ``"1.5h"``, ``"2d"`` -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool | list | dict) or value is None:
        # pydantic turns only ValueError into a validation error, so not TypeError here.
        raise ValueError(f"must be a duration like 30s, 5m or 1h, got {show(value)}")
    if isinstance(value, int | float):
        return _timedelta(value, value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"'{value}' is not a duration; use a number of seconds or 30s, 5m, 1h, 2d")
    return _timedelta(float(match.group(1)) * _UNIT_SECONDS[match.group(2)], value)


def _timedelta(seconds: float, value: Any) -> timedelta:
    try:
        return timedelta(seconds=seconds)
    except (OverflowError, ValueError) as err:  # inf, nan, or past timedelta's ~2.7 million years
        raise ValueError(f"'{value}' is not a usable duration; use 30s, 5m, 1h, 2d") from err


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class EnlightenConfig(_Section):
    base_url: str = DEFAULT_BASE_URL
    email: str | None = None
    site_id: int | None = None
    timeout: Duration = timedelta(seconds=20)
    retries: int = Field(default=4, ge=1, le=10)
    # Requests per hour for the whole account, every charger and site of it together
    # (2026 reference section 10: ~600/h observed safe). See docs/operations.md.
    budget_per_hour: int = Field(default=DEFAULT_BUDGET_PER_HOUR, ge=30, le=3600)
    # Where the Entrez token comes from (2026 reference section 6). Unset: Entrez's own host
    # (https://entrez.enphaseenergy.com) for the real Enlighten, else base_url (the fake cloud).
    entrez_url: str | None = None
    # The environment variable holding this account's password, for a ``sites:`` list with
    # several accounts (one ``ENLIGHTEN_PASSWORD`` cannot serve two); docs/sites.md.
    password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @field_validator("base_url", "entrez_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class BatteryConfig(_Section):
    """The home battery, for the simulator (live, its state comes from Enlighten)."""

    capacity_kwh: float = Field(gt=0, le=500)
    max_power_kw: float = Field(default=5.0, gt=0, le=100)
    round_trip_efficiency: float = Field(default=0.9, gt=0.5, le=1.0)
    reserve_pct: float = Field(default=10, ge=0, le=100)
    initial_soc_pct: float = Field(default=50, ge=0, le=100)


class SiteConfig(_Section):
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    timezone: str | None = None
    voltage: int | None = Field(default=None, ge=100, le=480)
    # The site's current limit in amps (breaker or supply): no level above it is ever sent.
    max_current: int | None = Field(default=None, ge=6, le=80)
    battery: BatteryConfig | None = None
    # Per charger serial, 0-1000: who is served first when the site's chargers share the
    # surplus and max_current (before the rules' priorities; unnamed chargers rank 0).
    charger_priority: dict[str, Annotated[int, Field(ge=0, le=1000)]] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(
                f"unknown time zone '{value}'; use an IANA name like Australia/Melbourne"
            ) from err
        return value


class ServiceConfig(_Section):
    poll_interval: Duration = timedelta(seconds=30)
    dry_run: bool = False
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    database: Path | None = None
    # Decisions (and request counts) older than this many days are deleted by the service.
    retention_days: int = Field(default=90, ge=1)
    # A hold that repeats unchanged is recorded at least this often (0s: every tick), so a
    # gap in the decision log means the service was not running (docs/decision-log.md).
    heartbeat: Duration = timedelta(minutes=15)
    # The decision log's size limit in MB: beyond it, the oldest days are deleted first.
    max_log_mb: int = Field(default=500, ge=1)
    # The one-minute power history (docs/surplus.md): minutes older than this many days are
    # deleted, and the oldest days first while the history uses more than max_history_mb.
    history_retention_days: int = Field(default=365, ge=1)
    max_history_mb: int = Field(default=100, ge=1)
    # Record the site's power once a minute into the decision log's file (power_minutes).
    record_minutes: bool = True

    @field_validator("poll_interval")
    @classmethod
    def _within_budget(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        """Never poll Enlighten faster than every 30 s (field notes); a local fake has no budget.

        The base URL arrives as validation context (see :func:`load_config`), so the error
        points at this key rather than at the file.
        """
        if value <= timedelta(0):
            raise ValueError("must be a positive duration like 30s")
        base_url = (info.context or {}).get("base_url") or DEFAULT_BASE_URL
        host = urlsplit(str(base_url)).hostname or ""
        if value < MIN_POLL_INTERVAL and host not in LOOPBACK_HOSTS:
            raise ValueError(
                "must be at least 30s (Enlighten throttles faster polling; shorter intervals "
                "are allowed only against a local fake cloud)"
            )
        return value


class ChargerConfig(_Section):
    # MANUAL mode takes a new level only on restart: stop, wait this long, start again.
    settle_delay: Duration = timedelta(seconds=30)
    # For chargers that take a new level live: send the start at once, without the restart.
    direct_amps: bool = False
    # The level a start without --amps (or a policy's start without amps) carries in MANUAL or
    # SCHEDULED; none: the start carries no level and the charger uses its stored one. A
    # default, not an explicit request: a backend that refuses levels gets a level-less start.
    start_amps: int | None = Field(default=None, ge=6, le=80)


class EngineConfig(_Section):
    # How long a change the user makes in the Enphase app (or at the charger) is respected
    # before the policies take over again.
    override_hold: Duration = timedelta(hours=1)


class SurplusConfig(_Section):
    """How the solar surplus is estimated (docs/surplus.md explains the trade-offs)."""

    # auto: PV from the latest power sample while it is fresh (house load from the last
    # complete energy bucket), else the last complete energy bucket alone. latest_power: always
    # the sample's PV with the bucket's house load. get_latest_power is PV production.
    # gateway: production, consumption and the grid from the site's IQ Gateway at each tick
    # (the ``gateway:`` block says where), the cloud's buckets while it does not answer.
    source: Literal["auto", "lifetime_energy", "latest_power", "gateway"] = "lifetime_energy"
    # Obsolete: the sample was once taken for net grid power and this said its sign. It is PV
    # production (enlighten-2026.md section 9), so the value is ignored; `evopt validate`
    # warns about it, and configs that still have it keep loading.
    latest_power_sign: Literal["import_positive", "export_positive"] | None = None
    # Scale the last bucket's PV by the clear-sky factor now against the bucket's midpoint.
    scale_by_sun: bool = False
    # Surplus data older than this is unknown (a missing bucket or a silent gateway).
    max_age: Duration = timedelta(minutes=45)

    @field_validator("max_age")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value


class GatewayConfig(_Section):
    """The site's IQ Gateway (Envoy), read on the LAN with pyenphase (docs/gateway.md)."""

    # Its address on the LAN: an IP (see the router's device list), envoy.local, or host:port.
    host: str
    # The owner's token (firmware 7+), stored by `evopt gateway token`; mode 0600, never logged.
    # Unset: <state_dir>/gateway.token (gateway-<site>.token for an item of ``sites:``).
    token_file: Path | None = None
    # One read (all endpoints of a tick) may take this long before the buckets stand in.
    timeout: Duration = timedelta(seconds=10)

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        if not _GATEWAY_HOST.match(value):
            raise ValueError(
                f"'{value}' is not a gateway address; use its IP (192.168.1.50), envoy.local or "
                "host:port, without http:// (pyenphase picks the scheme by firmware)"
            )
        return value

    @field_validator("timeout")
    @classmethod
    def _short(cls, value: timedelta) -> timedelta:
        if not timedelta(0) < value <= timedelta(seconds=60):
            raise ValueError("must be between 1s and 60s (a tick waits for it)")
        return value


class OnlineForecastConfig(_Section):
    """An online PV forecast in place of the learned clear-sky index where it reaches
    (docs/forecast.md, "An online forecast"): Forecast.Solar's public tier, asked at most
    once per ``refresh`` (it allows 12 requests an hour per address), its last reply kept on
    disk and used while at most ``max_age`` old. Never required: without a reply the learned
    index forecasts as before."""

    provider: Literal["forecast_solar"] = "forecast_solar"
    refresh: Duration = timedelta(hours=1)
    max_age: Duration = timedelta(hours=6)
    timeout: Duration = timedelta(seconds=15)
    # Another address for the same API (a caching proxy; the tests' fake).
    base_url: str | None = Field(default=None, pattern=r"^https?://")

    @model_validator(mode="after")
    def _sane(self) -> OnlineForecastConfig:
        if self.refresh < timedelta(minutes=15):
            raise ValueError(
                "forecast.online.refresh must be at least 15m: the public tier allows 12 "
                "requests an hour per address, and the weather model itself updates hourly"
            )
        if not self.refresh <= self.max_age <= timedelta(hours=48):
            raise ValueError(
                "forecast.online.max_age must be between forecast.online.refresh and 48h: a "
                "reply older than that forecasts yesterday's weather"
            )
        if not timedelta(seconds=1) <= self.timeout <= timedelta(minutes=2):
            raise ValueError("forecast.online.timeout must be between 1s and 2m")
        return self


class ForecastConfig(_Section):
    """The solar forecast (docs/forecast.md): the panels' plane, or nothing to learn it.

    ``tilt`` and ``azimuth`` go together (a plane needs both); ``peak_w`` alone is not enough
    to skip learning, and without it the size is fitted to the history on the given plane.
    """

    tilt: float | None = Field(default=None, ge=0, le=90)  # degrees from horizontal
    azimuth: float | None = Field(default=None, ge=0, lt=360)  # 180 faces south, 90 east
    peak_w: float | None = Field(default=None, gt=0, le=1_000_000)  # W at 1000 W/m2
    horizon_h: float = Field(default=48, gt=0, le=48)
    history_days: int = Field(default=60, ge=7, le=365)  # to learn the plane from
    index_days: int = Field(default=30, ge=3, le=365)  # to learn the clear-sky index from
    load_days: int = Field(default=28, ge=3, le=365)  # to learn the house load from
    online: OnlineForecastConfig | None = None  # unset: the learned index only, no request

    @field_validator("online", mode="before")
    @classmethod
    def _online_switch(cls, value: Any) -> Any:
        """``online: true`` is the defaults, ``online: false`` none: a switch reads as one."""
        if value is True:
            return {}
        return None if value is False else value

    @model_validator(mode="after")
    def _plane_whole(self) -> ForecastConfig:
        if (self.tilt is None) != (self.azimuth is None):
            given, missing = ("tilt", "azimuth") if self.tilt is not None else ("azimuth", "tilt")
            raise ValueError(
                f"forecast.{given} is set but forecast.{missing} is not: give both (the "
                "panels' plane), or neither to learn it from the production history"
            )
        if self.peak_w is not None and self.tilt is None:
            raise ValueError(
                "forecast.peak_w needs forecast.tilt and forecast.azimuth: the size is "
                "only meaningful on a known plane"
            )
        return self


class HabitsConfig(_Section):
    """How departure habits are learned from session history (docs/forecast.md)."""

    # An early quantile of the stays: ready before the car usually leaves (0.1/0.9 measured
    # against 0.2/0.8 and 0.05/0.95 on the bundled histories, docs/forecast.md).
    leave_quantile: float = Field(default=0.1, ge=0, le=0.5)
    # A high quantile of the energy taken: enough on most days.
    energy_quantile: float = Field(default=0.9, ge=0.5, le=1)
    # Fewer sessions of a day type than this: no habit is claimed for it.
    min_sessions: int = Field(default=5, ge=2, le=1000)
    # A weekday with at least this many sessions gets its own habit.
    per_day_min: int = Field(default=8, ge=2, le=1000)
    days: int = Field(default=90, ge=7, le=730)  # sessions older than this are forgotten

    def settings(self) -> HabitSettings:
        return HabitSettings(
            leave_quantile=self.leave_quantile,
            energy_quantile=self.energy_quantile,
            min_sessions=self.min_sessions,
            per_day_min=self.per_day_min,
            days=self.days,
        )


class WarningsConfig(_Section):
    """What `evopt validate` and the service at start keep quiet about."""

    # Warning codes (the ``warning[code]`` shown with each) silenced for the whole setup; a
    # policy's own ``ignore_warnings`` silences one for that policy only.
    ignore: list[str] = Field(default_factory=list)


_TOPIC = re.compile(r"^[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*$")
_MQTT_HOST = re.compile(r"^[A-Za-z0-9_.:-]+$")
# The rule-set name that means "no writes at all" (docs/home-assistant.md), always offered.
RULE_SET_OFF = "off"
# The rule-set name that means the config's own ``rules:`` list, always offered.
RULE_SET_DEFAULT = "default"
_RULE_SET_NAME = r"^[A-Za-z0-9][A-Za-z0-9 +_.-]{0,39}$"


class MqttConfig(_Section):
    """Home Assistant through an MQTT broker (docs/home-assistant.md): one connection per process.

    The password is never in the file: the variable ``password_env`` names, else the systemd
    credential ``mqtt-password`` (as the Enlighten password), so the config stays shareable.
    """

    host: str
    # Unset: 1883, or 8883 with tls.
    port: int | None = Field(default=None, ge=1, le=65535)
    # true: TLS with the system's certificate authorities; a path: TLS with that CA file.
    tls: bool | Path = False
    username: str | None = None
    # The contract's default (DESIGN.md section 3): $EVOPT_MQTT_PASSWORD.
    password_env: str = Field(default="EVOPT_MQTT_PASSWORD", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    base_topic: str = "evopt"
    discovery_prefix: str = "homeassistant"
    # Unset: evopt-<base_topic>; a broker drops an older connection with the same id.
    client_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        if not _MQTT_HOST.match(value):
            raise ValueError(
                f"'{value}' is not a broker address; use a host name or IP like "
                "192.168.1.10 or mqtt.local, without mqtt:// (the port goes in mqtt.port)"
            )
        return value

    @field_validator("base_topic", "discovery_prefix")
    @classmethod
    def _topic(cls, value: str) -> str:
        if not _TOPIC.match(value):
            raise ValueError(
                f"'{value}' is not a usable topic; use letters, digits, _ and -, levels "
                "separated by / (no +, #, spaces or a leading or trailing /)"
            )
        return value

    @model_validator(mode="after")
    def _apart(self) -> MqttConfig:
        if self.base_topic == self.discovery_prefix:
            raise ValueError(
                "mqtt.base_topic and mqtt.discovery_prefix must differ: Home Assistant would "
                "read every state message as a discovery message"
            )
        return self

    @property
    def broker_port(self) -> int:
        if self.port is not None:
            return self.port
        return 8883 if self.tls is not False else 1883

    @property
    def identifier(self) -> str:
        return self.client_id or "evopt-" + self.base_topic.replace("/", "-")


RuleSets = dict[Annotated[str, Field(pattern=_RULE_SET_NAME)], list[str]]


def _rule_sets_named(value: dict[str, list[str]]) -> dict[str, list[str]]:
    """``default`` is the config's own ``rules:`` and cannot be redefined; ``off`` means no
    writes whatever it lists, so listing files under it would mislead."""
    if RULE_SET_DEFAULT in value:
        raise ValueError(
            f"'{RULE_SET_DEFAULT}' is reserved (it means the config's own rules:); "
            "give the rule set another name"
        )
    if value.get(RULE_SET_OFF):
        raise ValueError(
            f"'{RULE_SET_OFF}' is reserved for no writes at all; leave it out or give it []"
        )
    return value


# The keys a ``sites:`` item holds instead of the top level (DESIGN section 3).
PER_SITE_KEYS = ("enlighten", "site", "tariffs", "rules", "gateway", "forecast", "rule_sets")
_SITE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$"


class SiteEntry(_Section):
    """One item of ``sites:``: a site with its account, location, tariffs and rules.

    Only what differs between sites is here: how often to poll, the charger's settle delay,
    the engine's override hold and the surplus source describe the installation's software,
    not a site, and stay global (docs/sites.md says why).
    """

    # An alias shown in status, the log and `--site NAME`; also names the systemd credential
    # ``enlighten-password-<name>``, so it is kept to characters a file name takes.
    name: str | None = Field(default=None, pattern=_SITE_NAME)
    enlighten: EnlightenConfig = EnlightenConfig()
    site: SiteConfig = SiteConfig()
    tariffs: Tariffs = Tariffs()
    rules: list[str] = Field(default_factory=lambda: ["rules/*.yaml"])
    gateway: GatewayConfig | None = None
    forecast: ForecastConfig = ForecastConfig()  # each site's panels are its own
    rule_sets: Annotated[RuleSets, AfterValidator(_rule_sets_named)] = Field(default_factory=dict)


class Config(_Section):
    enlighten: EnlightenConfig = EnlightenConfig()
    site: SiteConfig = SiteConfig()
    charger: ChargerConfig = ChargerConfig()
    engine: EngineConfig = EngineConfig()
    service: ServiceConfig = ServiceConfig()
    tariffs: Tariffs = Tariffs()
    surplus: SurplusConfig = SurplusConfig()
    rules: list[str] = Field(default_factory=lambda: ["rules/*.yaml"])
    # Named alternatives to ``rules:`` that `evopt rules use NAME` (or Home Assistant's
    # select) switches between at run time; ``default`` (rules:) and ``off`` always exist.
    rule_sets: Annotated[RuleSets, AfterValidator(_rule_sets_named)] = Field(default_factory=dict)
    warnings: WarningsConfig = WarningsConfig()
    gateway: GatewayConfig | None = None
    forecast: ForecastConfig = ForecastConfig()
    # manual: only plans set with `evopt plan set`; auto: a plug-in without one gets the plan
    # learned from session history (docs/forecast.md); a manual plan always wins.
    plans: Literal["manual", "auto"] = "manual"
    habits: HabitsConfig = HabitsConfig()
    mqtt: MqttConfig | None = None  # Home Assistant through MQTT (docs/home-assistant.md)
    # Several sites in one process (docs/sites.md): None is the single-site form.
    sites: list[SiteEntry] | None = Field(default=None, min_length=1)
    source: Path | None = Field(default=None, exclude=True)
    # Set on the views :meth:`site_configs` makes: the item's index in ``sites:`` and its name.
    site_index: int | None = Field(default=None, exclude=True)
    site_name: str | None = Field(default=None, exclude=True)

    def site_configs(self) -> list[Config]:
        """One complete single-site config per site, so the rest of the code knows one form.

        The single-site form is its own only view. A view of a ``sites:`` item holds that
        item's per-site keys (PER_SITE_KEYS) at the top level and every global section as it is.
        """
        if self.sites is None:
            return [self]
        return [
            self.model_copy(
                update={
                    "enlighten": entry.enlighten,
                    "site": entry.site,
                    "tariffs": entry.tariffs,
                    "rules": entry.rules,
                    "gateway": entry.gateway,
                    "forecast": entry.forecast,
                    "rule_sets": entry.rule_sets,
                    "sites": None,
                    "site_index": index,
                    "site_name": entry.name,
                }
            )
            for index, entry in enumerate(self.sites)
        ]

    @property
    def label(self) -> str:
        """How logs and status name this site: its alias, else its id, else ``site``."""
        if self.site_name:
            return self.site_name
        return str(self.enlighten.site_id) if self.enlighten.site_id is not None else "site"

    def config_loc(self, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
        """``loc`` of a view's key in the file: a per-site key is inside its ``sites:`` item."""
        if self.site_index is None or not loc or loc[0] not in PER_SITE_KEYS:
            return loc
        return ("sites", self.site_index, *loc)

    @property
    def state_dir(self) -> Path:
        return self._resolve(self.service.state_dir)

    @property
    def database_path(self) -> Path:
        db = self.service.database
        return self._resolve(db) if db is not None else self.state_dir / "decisions.db"

    @property
    def mqtt_ca_file(self) -> Path | None:
        """``mqtt.tls`` as a CA file (relative to the config file), else None."""
        tls = self.mqtt.tls if self.mqtt is not None else False
        if isinstance(tls, bool):
            return None
        return self._resolve(tls)

    @property
    def gateway_token_path(self) -> Path:
        """Where the gateway's token is kept: ``gateway.token_file``, else in the state dir
        (one file per site of a ``sites:`` list)."""
        named = self.gateway.token_file if self.gateway is not None else None
        if named is not None:
            return self._resolve(named)
        if self.site_index is None:
            return self.state_dir / "gateway.token"
        return self.state_dir / f"gateway-{self.site_name or self.enlighten.site_id}.token"

    def _resolve(self, path: Path) -> Path:
        path = path.expanduser()
        if path.is_absolute() or self.source is None:
            return path
        return self.source.parent / path

    def account_email(self) -> str | None:
        """The environment wins over the file, so a shared config can serve several users.

        A site of a ``sites:`` list names its own account: there ``ENLIGHTEN_EMAIL`` only
        fills in an item without ``email`` (one variable cannot name two accounts).
        """
        if self.site_index is not None:
            return self.enlighten.email or os.environ.get(ENV_EMAIL)
        return os.environ.get(ENV_EMAIL) or self.enlighten.email

    def account_key(self) -> str | None:
        """A short name for this site's account (host and e-mail) in state file names.

        None for the single-site form, whose files keep their names (no one is logged out).
        A hash, so the e-mail is not written in clear in a directory listing.
        """
        if self.site_index is None:
            return None
        email = (self.account_email() or "").strip().lower()
        digest = hashlib.sha256(f"{self.enlighten.base_url}\n{email}".encode())
        return digest.hexdigest()[:12]


def load_config(path: Path) -> Config:
    """Load and validate one config file; every problem is reported with its position."""
    doc = load_file(path)
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise YamlFileError([doc.problem((), "the config file must be a mapping of sections")])
    try:
        config = Config.model_validate(data, context={"base_url": _poll_base_url(data)})
    except ValidationError as err:
        raise YamlFileError(validation_problems(doc, err, model=Config)) from err
    problems = [
        *sites_problems(doc, data, config),
        *gateway_problems(doc, config),
        *mqtt_problems(doc, config.model_copy(update={"source": path.resolve()})),
    ]
    if problems:
        raise YamlFileError(problems)
    return config.model_copy(update={"source": path.resolve()})


def _poll_base_url(data: dict[Any, Any]) -> Any:
    """The host the poll interval is judged against: the 30 s floor protects Enlighten, so
    with several sites any item on a real host counts (a fake cloud on all of them is free)."""
    enlightens = [data.get("enlighten")]
    sites = data.get("sites")
    if isinstance(sites, list):
        enlightens = [item.get("enlighten") for item in sites if isinstance(item, dict)]
    urls = [e.get("base_url") if isinstance(e, dict) else None for e in enlightens]
    remote = [
        u for u in urls if urlsplit(str(u or DEFAULT_BASE_URL)).hostname not in LOOPBACK_HOSTS
    ]
    return (remote or urls or [None])[0]


def sites_problems(doc: Document, data: dict[Any, Any], config: Config) -> list[Problem]:
    """What pydantic cannot see about ``sites:``: the two forms mixed, a site listed twice.

    A top-level ``rules:`` beside ``sites:`` would be silently ignored (each item has its
    own), so it is an error naming the key. Every item needs its ``site_id``: two sites of one
    account cannot be discovered, and the memory and heartbeat of a site are keyed by it.
    """
    if config.sites is None:
        return []
    problems = [
        doc.problem(
            (key,),
            f"'{key}' cannot be at the top level together with 'sites:'; "
            f"move it into each item of 'sites' (or drop 'sites' for a single site)",
        )
        for key in PER_SITE_KEYS
        if key in data
    ]
    first_id: dict[int, int] = {}
    first_name: dict[str, int] = {}
    for index, entry in enumerate(config.sites):
        site_id = entry.enlighten.site_id
        if site_id is None:
            message = (
                f"sites[{index}]: 'enlighten.site_id' is required when several sites are "
                "listed (the number after /web/ in the Enlighten web address)"
            )
            problems.append(doc.problem(("sites", index, "enlighten"), message))
        elif site_id in first_id:
            problems.append(_repeated(doc, "site_id", site_id, first_id[site_id], index))
        else:
            first_id[site_id] = index
        if entry.name is not None:
            if entry.name in first_name:
                problems.append(_repeated(doc, "name", entry.name, first_name[entry.name], index))
            else:
                first_name[entry.name] = index
    return sorted(problems, key=lambda p: (p.line, p.column))


def gateway_problems(doc: Document, config: Config) -> list[Problem]:
    """``surplus.source: gateway`` needs to know where the gateway is, for every site."""
    if config.surplus.source != "gateway":
        return []
    missing = [view for view in config.site_configs() if view.gateway is None]
    if not missing:
        return []
    if config.sites is None:
        message = (
            "surplus.source is 'gateway' but there is no 'gateway:' block; add gateway.host "
            "(the gateway's IP or envoy.local), or use source lifetime_energy, latest_power "
            "or auto"
        )
        return [doc.problem(("surplus", "source"), message)]
    return [
        doc.problem(
            ("sites", view.site_index or 0),
            f"sites[{view.site_index}]: surplus.source is 'gateway' but this site has no "
            "'gateway:' block; add gateway.host to it",
        )
        for view in missing
    ]


def mqtt_problems(doc: Document, config: Config) -> list[Problem]:
    """Files the ``mqtt:`` block and ``rule_sets:`` name must exist: a CA file for TLS, and
    a file for every pattern of every rule set (one chosen at run time must not be empty)."""
    problems = _topic_clashes(doc, config)
    ca = config.mqtt_ca_file
    if ca is not None and not ca.is_file():
        problems.append(
            doc.problem(("mqtt", "tls"), f"mqtt.tls: no CA file at {ca}; give its path, or true")
        )
    for view in config.site_configs():
        base = config.source.parent if config.source is not None else Path.cwd()
        for name, patterns in view.rule_sets.items():
            for index, pattern in enumerate(patterns):
                full = Path(pattern).expanduser()
                full = full if full.is_absolute() else base / full
                if not any(Path(m).is_file() for m in glob.glob(str(full), recursive=True)):
                    loc = view.config_loc(("rule_sets", name, index))
                    message = f"rule_sets.{name}: {pattern!r} matches no file"
                    problems.append(doc.problem(loc, message))
    return problems


def _topic_clashes(doc: Document, config: Config) -> list[Problem]:
    """Two sites whose names make the same MQTT topic level (``home.a`` and ``home_a`` both
    ``home_a``) would publish over each other and share Home Assistant devices."""
    if config.mqtt is None or config.sites is None:
        return []
    from optimizer.mqtt.topics import slug  # noqa: PLC0415 - only for a config with mqtt:

    problems = []
    first: dict[str, Config] = {}
    for view in config.site_configs():
        level = slug(view.label)
        if level not in first:
            first[level] = view
            continue
        message = (
            f"sites[{view.site_index}]: name {view.label!r} makes the MQTT topic level "
            f"{level!r}, as {first[level].label!r} (sites[{first[level].site_index}]) does; "
            "give the sites names that differ in letters or digits"
        )
        problems.append(doc.problem(("sites", view.site_index or 0, "name"), message))
    return problems


def _repeated(doc: Document, key: str, value: object, first: int, index: int) -> Problem:
    loc: tuple[str | int, ...] = ("sites", index, key)
    first_loc: tuple[str | int, ...] = ("sites", first, key)
    if key == "site_id":
        loc, first_loc = ("sites", index, "enlighten", key), ("sites", first, "enlighten", key)
    line, column = doc.position(first_loc)
    return doc.problem(
        loc,
        f"sites[{index}]: {key} {value} is listed twice: sites[{first}] at "
        f"{doc.file}:{line}:{column} already has it; each site may be listed once",
    )


def find_config(explicit: str | None) -> Config:
    """The config named by ``--config``, else ``$EVOPT_CONFIG``, else ``./config.yaml``.

    A file that was named and is missing is an error; with no file named and no
    ``./config.yaml`` the defaults apply (credentials can come from the environment alone).
    """
    named = explicit or os.environ.get(ENV_CONFIG)
    if named:
        path = Path(named).expanduser()
        if not path.exists():
            origin = "--config" if explicit else f"${ENV_CONFIG}"
            raise YamlFileError([Problem(str(path), 1, 1, f"config file not found ({origin})")])
        return load_config(path)
    if DEFAULT_CONFIG.exists():
        return load_config(DEFAULT_CONFIG)
    return Config()
