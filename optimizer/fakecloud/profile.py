"""Switches that pick which variant of the real cloud the fake imitates.

The real Enlighten backend differs by deployment and region (status shapes, discovery paths,
live-stream replies, how a dead session is reported). The client carries fallbacks for each;
a profile lets a test put the fake into one variant and check the fallback is taken.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

StatusShape = Literal["nested", "legacy", "singular_only"]
LiveStreamShape = Literal["wrapped", "standard", "data"]
ControlErrorShape = Literal["2026", "legacy"]
MfaReply = Literal["plain", "requires_mfa"]
DiscoveryPath = Literal["evse_controller", "api_v1", "sites_json"]
ControlProfile = Literal["any", "put_singular_snake", "put_only", "singular_only", "no_level"]
HistoryBody = Literal["nested", "flat"]
SessionEnergyUnits = Literal["by_shape", "threshold"]

DISCOVERY_PATHS: tuple[str, ...] = get_args(DiscoveryPath)

# Named presets. The defaults of :class:`Profile` are the cloud as it answers in 2026
# (``../shared/reference/enlighten-2026.md``); ``2024`` is the cloud of the first reference, kept
# so the client's fallbacks for older deployments stay tested. Every field that changed between
# the two appears here with its 2024 value; a field not listed answers the same in both.
LEGACY_2024: dict[str, Any] = {
    "require_browser_headers": False,
    "disabled_discovery": [],
    "search_sites": False,
    "singular_status": True,
    "scheduler_2026": False,
    "history_body": "flat",
    "capability_routes": False,
    "control_error_shape": "legacy",
    "live_stream_shape": "standard",
    "scheduled_flip": False,
    "schedule_slot_routes": False,
    "schedule_concurrency": False,
    "session_energy_units": "threshold",
    "charge_level_reported": True,
}
PRESETS: dict[str, dict[str, Any]] = {"2026": {}, "2024": LEGACY_2024}


@dataclass
class Profile:
    """Which variant of each inconsistent behaviour the fake shows.

    - ``status_shape``: ``nested`` (both status paths answer the spec 2.1 shape), ``legacy``
      (both answer the flat ``evChargerData`` shape), ``singular_only`` (the plural
      ``ev_chargers/status`` path is a 404; the singular one answers nested).
    - ``disabled_discovery``: discovery paths that answer 404 (``evse_controller`` for
      ``/service/evse_controller/sites``, ``api_v1`` for ``/api/v1/sites``, ``sites_json`` for
      ``/sites.json``).
    - ``live_stream_shape``: ``wrapped`` (2026: ``{"meta", "data": {"liveStreamTopicList",
      "liveStreamDuration"}, "error": {}}``, and a stop answering ``data: null``), ``standard``
      (``{"status": "accepted", "topics": ...}``) or ``data`` (``{"data":
      {"liveStreamTopicList": ...}}``).
    - ``mfa_reply``: ``plain`` (``{"success": true, "isBlocked": false}``) or ``requires_mfa``
      (the same plus ``"requires_mfa": true``).
    - ``login_failure_status``: 200 (the usual ``success: false`` body) or 401.
    - ``login_wall``: a missing, unknown or expired session gets the HTML login page (200,
      text/html) instead of a 401 JSON reply.
    - ``update_pending``: the value of ``update_pending`` in lifetime energy.
    - ``require_browser_headers`` (2026): 406 to a non-browser User-Agent, and on the routes
      ``browser.py`` lists to an Accept/Referer pair the web app would not send.
    - ``search_sites`` (2026): ``/app-api/search_sites.json`` answers; off, it is a 404.
    - ``singular_status``: the singular ``/ev_charger/status`` path answers (dropped early
      2026; ``status_shape="singular_only"`` keeps it whatever this says).
    - ``login_json_406``: the JSON login answers 406; only the browser form logs in.
    - ``login_empty_body``: a successful login answers ``{}`` and sets only cookies (the
      session cookie and the ``enlighten_manager_token_production`` JWT).
    - ``login_lockout``: every login is refused with "too many active sessions".
    - ``control_profile``: which ``start_charging``/``stop_charging`` request variants the
      deployment accepts (spec 3 lists them; regions differ). ``any`` takes every variant;
      ``put_singular_snake`` only ``PUT`` on the singular ``ev_charger`` path with snake_case
      keys; ``put_only`` only ``PUT`` (either path) with camelCase keys; ``singular_only`` only
      the singular path (POST or PUT, camelCase); ``no_level`` refuses a start that carries a
      level. The table lives in ``variants.CONTROL_RULES``.
    - ``scheduler_2026``: the mode preference in the 2026 shape (``data.config`` + ``data.modes``,
      SMART in GREEN's place under AI optimisation) and its PUT quirks (same mode, 10031, a
      mode the site does not offer: 400); off, the older ``{"data": {"modes"}}`` reply and a
      same-mode PUT that is quietly accepted.
    - ``mode_put_400_applied``: a fault switch; a mode PUT answers 400 although it was applied.
    - ``history_body``: ``nested`` (2026: only ``{"source", "params"}`` with the
      ``requestid``/``username``/``e-auth-token``/bearer headers, else 400 BAD_REQUEST) or
      ``flat`` (the first reference's flat body, a session is enough).
    - ``capability_routes``: the feature-flags and charger-config routes exist (2026); False
      answers them 404, as the first reference's cloud (it documents neither).
    - ``control_error_shape``: ``2026`` (a refused start/stop answers ``{"meta", "data": null,
      "error": {"displayMessage", "code", "errorMessageCode"}}`` with the reference's texts)
      or ``legacy`` (``{"status": "error", "error": {"code", "message"}}``).
    - ``scheduled_flip``: a manual start or stop in SCHEDULED_CHARGING switches the
      preference to MANUAL_CHARGING (observed in 2026).
    - ``schedule_slot_routes``: the single-slot scheduler calls (state-only PATCH, POST/PATCH/
      DELETE of one ``schedule/<id>``) exist; without them they answer 404 (state-only 400).
    - ``schedule_concurrency``: a full-list PATCH must echo a current ``serverTimeStamp``
      (stale or unknown: 409; missing: 400). Our model of the optimistic concurrency the 2026
      reference describes; what the real server does with a stale token is inferred.
    - ``session_energy_units``: ``by_shape`` (2026: the wrapped status sends ``e_c`` in Wh from
      the first watt-hour, the flat ``evChargerData`` shape in kWh) or ``threshold`` (the first
      reference: Wh above 200 Wh, kWh below, in both shapes).
    - ``charge_level_reported``: False (2026: ``session_d.charge_level`` is always null) or
      True (it carries the level the charger runs at).
    - ``account_budget_per_hour``: requests per account per hour (fake clock) before the fake
      answers 429 with ``Retry-After`` (``budget.py``); the reference observes ~600. 0, the
      default, enforces none, so tests that run long simulated days are not throttled.
    """

    status_shape: StatusShape = "nested"
    disabled_discovery: list[str] = field(default_factory=lambda: list(DISCOVERY_PATHS))
    live_stream_shape: LiveStreamShape = "wrapped"
    mfa_reply: MfaReply = "plain"
    login_failure_status: int = 200
    login_wall: bool = False
    update_pending: bool = False
    control_profile: ControlProfile = "any"
    require_browser_headers: bool = True
    search_sites: bool = True
    singular_status: bool = False
    login_json_406: bool = False
    login_empty_body: bool = False
    login_lockout: bool = False
    scheduler_2026: bool = True
    mode_put_400_applied: bool = False
    history_body: HistoryBody = "nested"
    capability_routes: bool = True
    control_error_shape: ControlErrorShape = "2026"
    scheduled_flip: bool = True
    schedule_slot_routes: bool = True
    schedule_concurrency: bool = True
    session_energy_units: SessionEnergyUnits = "by_shape"
    charge_level_reported: bool = False
    account_budget_per_hour: int = 0

    @classmethod
    def preset(cls, name: str) -> Profile:
        """``Profile.preset("2024")``: the fake as the first reference described the cloud."""
        if name not in PRESETS:
            raise ValueError(f"unknown profile preset {name!r}; one of {sorted(PRESETS)}")
        profile = cls()
        profile.update(dict(PRESETS[name]))
        return profile

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update (from a test or ``POST /__fake__/profile``), validating it."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown profile fields: {sorted(unknown)}")
        allowed: dict[str, tuple[Any, ...]] = {
            "status_shape": get_args(StatusShape),
            "live_stream_shape": get_args(LiveStreamShape),
            "mfa_reply": get_args(MfaReply),
            "login_failure_status": (200, 401),
            "control_profile": get_args(ControlProfile),
            "history_body": get_args(HistoryBody),
            "control_error_shape": get_args(ControlErrorShape),
        }
        for name, raw in changes.items():
            value = raw
            if name in allowed and value not in allowed[name]:
                raise ValueError(f"{name} must be one of {allowed[name]}, not {value!r}")
            if name == "disabled_discovery":
                value = list(raw)
                if any(p not in DISCOVERY_PATHS for p in value):
                    raise ValueError(f"disabled_discovery entries must be in {DISCOVERY_PATHS}")
            elif name == "account_budget_per_hour":
                if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
                    raise ValueError(
                        f"account_budget_per_hour must be a whole number >= 0 (0: none), "
                        f"not {raw!r}"
                    )
            elif isinstance(getattr(self, name), bool):
                value = bool(raw)
            setattr(self, name, value)
