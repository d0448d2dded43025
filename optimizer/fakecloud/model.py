"""Site, charger and account state of the fake cloud, and the energy it accumulates.

Time never flows on its own here: every method that depends on time takes ``now`` (epoch
seconds) and first calls :meth:`SiteModel.sync`, which integrates each charger's draw from the
last accounted instant up to ``now``. A test can therefore jump the clock a day ahead and the
session energy, the ``evse`` buckets and the session history all catch up consistently.

The charger keeps the fields the control endpoints need (plugged_in, charging, mode, level),
and the transitions (plug in, start, stop, set level, set mode) live here as methods so that the
HTTP layer stays a thin translation of requests into these calls.

Two kinds of transition exist on purpose. The *command* transitions (``start_charging``,
``stop_charging``, ``write_scheduler_mode``, ...) are what the cloud does for a client request
and enforce the charger's rules from the field notes (not plugged in, already charging, settle
time after a stop, offline, GREEN override). ``update_charger`` is the test's hand on the
hardware: it sets state directly and never refuses for those reasons, so a test can build any
starting point in one call.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from optimizer.fakecloud.curves import BUCKET_S, SiteCurves
from optimizer.fakecloud.history import PastSession, generate_history

MANUAL = 0
GREEN = 1
SCHEDULER_MODES = ("MANUAL_CHARGING", "SCHEDULED_CHARGING", "GREEN_CHARGING", "SMART_CHARGING")
# The charger's own automation: SMART ("AI optimisation") charges from solar like GREEN.
SOLAR_MODES = ("GREEN_CHARGING", "SMART_CHARGING")
GREEN_STEP_S = 60.0  # green mode re-reads the surplus once a minute, like the charger does


TRIGGER_MESSAGES = (
    "BootNotification",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
)


class ChargerStateError(ValueError):
    """A command the cloud or the charger refuses, with the HTTP status it answers.

    ``code`` is set for the refusals the cloud reports with an ``iqevc_ms-*`` code inside an
    ``error`` object (field notes); without it the reply is the plain ``message`` envelope.
    """

    def __init__(self, message: str, *, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass
class ModeWrites:
    """How often a client set the scheduler mode: to a new value, or to the one it had.

    The real cloud ignores a write of the current mode, so the client should not send one;
    ``unchanged`` lets a test see that it did anyway.
    """

    changed: int = 0
    unchanged: int = 0


@dataclass
class LevelViolation:
    """A start request carried a level the charger cannot take (``at``: fake epoch seconds)."""

    at: float
    sn: str
    level: Any
    reason: str


@dataclass
class Account:
    """The one Enlighten account the fake knows."""

    email: str = "owner@example.com"
    password: str = "correct-horse-battery"
    mfa: bool = False
    blocked: bool = False
    otp_code: str = "123456"
    user_id: int = 1000001  # the JWT ``user_id`` claim (a placeholder)


@dataclass
class Battery:
    """A static home battery, reported by ``battery_status.json`` only."""

    capacity_kwh: float = 10.08
    soc_percent: float = 48.0
    max_power_w: float = 3840.0


@dataclass
class DrawSegment:
    """The charger drew ``watts`` from ``start`` to ``end`` (epoch s)."""

    start: float
    end: float
    watts: float


@dataclass
class Charger:
    """One IQ EV Charger 2. ``charging`` is the intent; :meth:`SiteModel.draw_w` the reality."""

    sn: str = "EV9876543210"
    name: str = "IQ EV Charger"
    min_amps: int = 6
    max_amps: int = 32
    granularity: int = 1
    voltage: int = 230
    supports_use_battery: bool = True
    mode: int = MANUAL
    scheduler_mode: str = "MANUAL_CHARGING"
    green_use_battery: bool = True
    schedule_slots: list[dict[str, Any]] = field(default_factory=list)
    connected: bool = True
    faulted: bool = False
    dlb_enabled: bool = True
    dlb_active: bool = False
    safe_limit_state: int = 0
    plugged_in: bool = False
    charging: bool = False
    level: int = 32
    session_energy_wh: float = 0.0
    session_active_s: float = 0.0
    plugged_in_at: float | None = None
    plugged_out_at: float | None = None
    charge_started_at: float | None = None
    ev_energy_limit_wh: float | None = None
    status_override: str | None = None
    ev_manufacturer: str = "Example OEM"
    model_name: str = "IQ-EVSE-EU-3032"
    firmware_version: str = "25.37.1.14"
    # Some chargers take a new level live: a start with a level while charging changes amps at
    # once instead of the usual "Already charging" refusal.
    live_level: bool = False
    # Seconds after a stop command before the charger accepts a start ("wait about 30 s").
    settle_s: float = 0.0
    stopped_at: float | None = None
    # An older IQ 40 backend: a start that carries a level answers 500 "Invalid charge level".
    iq40_backend: bool = False
    # The scheduler's version of the slot list (epoch ms of the last write, strictly rising),
    # which its serverTimeStamp echoes; and when it last changed (for scheduleSyncStatus).
    schedules_version_ms: int = 0
    schedules_changed_at: float | None = None
    mode_writes: ModeWrites = field(default_factory=ModeWrites)
    triggered_messages: list[str] = field(default_factory=list)
    # Capabilities (2026 reference section 8). With app or RFID session authentication on, a
    # cloud start is accepted but nothing flows until someone authenticates the session.
    session_auth_app: bool = False
    session_auth_rfid: bool = False
    session_authenticated: bool = False
    phase_count: int = 1
    phase_switch_config: str | None = None
    # Charger-config writes still pending: key -> (the value before the write, settles at).
    config_pending: dict[str, tuple[str | None, float]] = field(default_factory=dict)
    draw: list[DrawSegment] = field(default_factory=list, repr=False)
    # Bad e_c readings to put into the next status replies, one per reply, in order (see
    # ``E_C_GLITCHES``): how a test shows the client ignores one bad reading.
    e_c_glitches: list[str] = field(default_factory=list)

    @property
    def serial_digits(self) -> str:
        digits = "".join(ch for ch in self.sn if ch.isdigit())
        return digits or "0"


def awaits_authentication(charger: Charger) -> bool:
    """Session authentication is on and nobody has authenticated this session yet."""
    return (charger.session_auth_app or charger.session_auth_rfid) and not (
        charger.session_authenticated
    )


# Fields a test (or the admin route) may set directly through ``SiteModel.update_charger``.
SETTABLE_FIELDS = frozenset(
    {
        "plugged_in",
        "charging",
        "level",
        "mode",
        "scheduler_mode",
        "green_use_battery",
        "name",
        "connected",
        "faulted",
        "dlb_enabled",
        "dlb_active",
        "safe_limit_state",
        "ev_energy_limit_wh",
        "status_override",
        "session_energy_wh",
        "schedule_slots",
        "live_level",
        "settle_s",
        "supports_use_battery",
        "session_auth_app",
        "session_auth_rfid",
        "session_authenticated",
        "phase_count",
        "phase_switch_config",
        "iq40_backend",
        "e_c_glitches",
    }
)
# unit_flip: the value in the other unit; spike: hundreds of kWh more; decrease: half of it;
# garbage: a string that is no number.
E_C_GLITCHES = ("unit_flip", "spike", "decrease", "garbage")
# The charger reports to the cloud about every 5 minutes, and at once on a state change.
REPORT_INTERVAL_S = 300


def default_slots(site_id: int, charger: Charger) -> list[dict[str, Any]]:
    """The two slots a fresh charger shows (spec 4.4): a custom 23:00-06:00 and off-peak."""

    def slot_id(kind: str) -> str:
        return f"{site_id}:{charger.sn}:{uuid.uuid5(uuid.NAMESPACE_URL, charger.sn + kind)}"

    common: dict[str, Any] = {
        "days": [1, 2, 3, 4, 5, 6, 7],
        "remindTime": 10,
        "remindFlag": False,
        "sourceType": "SYSTEM",
        "reminderTimeUtc": None,
        "serializedDays": None,
    }
    return [
        {
            "id": slot_id("custom"),
            "startTime": "23:00",
            "endTime": "06:00",
            "chargingLevel": charger.max_amps,
            "chargingLevelAmp": charger.max_amps,
            "scheduleType": "CUSTOM",
            **common,
            "enabled": True,
            "recurringKind": "Recurring",
            "chargeLevelType": "Weekly",
        },
        {
            "id": slot_id("offpeak"),
            "startTime": None,
            "endTime": None,
            "chargingLevel": None,
            "chargingLevelAmp": None,
            "scheduleType": "OFF_PEAK",
            **common,
            "enabled": False,
            "recurringKind": None,
            "chargeLevelType": None,
        },
    ]


class SiteModel:
    """One site with its chargers, curves, energy history and session history."""

    def __init__(
        self,
        *,
        now: float,
        site_id: int = 1234567,
        name: str = "Example Home",
        timezone: str = "Australia/Melbourne",
        latitude: float = -37.81,
        longitude: float = 144.96,
        chargers: list[Charger] | None = None,
        battery: Battery | None = None,
        seed: int = 0,
        history_days: int = 28,
        pv_peak_w: float = 6000.0,
        base_load_w: float = 350.0,
    ) -> None:
        self.site_id = site_id
        self.name = name
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)
        self.latitude = latitude
        self.longitude = longitude
        self.seed = seed
        self.battery = battery if battery is not None else Battery()
        self.curves = SiteCurves(
            latitude=latitude,
            longitude=longitude,
            timezone=timezone,
            pv_peak_w=pv_peak_w,
            base_load_w=base_load_w,
            seed=seed,
        )
        self.chargers: list[Charger] = chargers if chargers is not None else [Charger()]
        for charger in self.chargers:
            if not charger.schedule_slots:
                charger.schedule_slots = default_slots(site_id, charger)
        local_today = datetime.fromtimestamp(now, self.tz).date()
        first_day = local_today - timedelta(days=history_days)
        self.energy_start = datetime(
            first_day.year, first_day.month, first_day.day, tzinfo=self.tz
        ).timestamp()
        self.accounted_at = now
        self.missing_buckets: set[int] = set()
        self.live_stream_until: float | None = None
        # Start requests whose level the charger cannot take; a correct client never adds one.
        self.violations: list[LevelViolation] = []
        self.triggers_sent = 0
        # The site battery profile: ``ai_optimisation`` puts SMART in GREEN's place; a storm
        # alert suppresses the automated modes (2026 reference section 3).
        self.battery_profile = "self-consumption"
        self.storm_active = False
        self.sessions: dict[str, list[PastSession]] = {}
        for index, charger in enumerate(self.chargers):
            past = generate_history(
                charger.sn,
                watts=float(charger.max_amps * charger.voltage),
                tz=self.tz,
                history_start=self.energy_start,
                before=now,
                seed=seed + 1000 * index,
            )
            self.sessions[charger.sn] = past
            for session in past:
                watts = session.energy_kwh * 1000.0 * 3600.0 / session.active_s
                charger.draw.append(
                    DrawSegment(session.start, session.start + session.active_s, watts)
                )

    # --- lookup --------------------------------------------------------------------------------

    def charger(self, sn: str | None = None) -> Charger:
        """The charger with serial ``sn`` (the first one when None); KeyError when unknown."""
        if sn is None:
            return self.chargers[0]
        for charger in self.chargers:
            if charger.sn == sn:
                return charger
        raise KeyError(sn)

    def has_charger(self, sn: str) -> bool:
        return any(c.sn == sn for c in self.chargers)

    # --- power ---------------------------------------------------------------------------------

    def green_amps(self, charger: Charger, t: float) -> int:
        """Amps the solar surplus would allow at ``t`` (may be below the charger's minimum)."""
        surplus = self.curves.pv_w(t) - self.curves.load_w(t)
        if surplus <= 0:
            return 0
        step = max(1, charger.granularity)
        amps = int(surplus // charger.voltage) // step * step
        return min(amps, charger.max_amps)

    def draw_w(self, charger: Charger, t: float) -> float:
        """What the charger actually pulls at ``t`` given its state, mode and the car."""
        if not (charger.plugged_in and charger.charging and charger.connected):
            return 0.0
        if charger.faulted or awaits_authentication(charger):
            return 0.0
        limit = charger.ev_energy_limit_wh
        if limit is not None and charger.session_energy_wh >= limit - 1e-6:
            return 0.0
        if charger.mode == GREEN:
            amps = self.green_amps(charger, t)
            if amps < charger.min_amps:
                return 0.0
        else:
            amps = charger.min_amps if charger.safe_limit_state else charger.level
            amps = max(charger.min_amps, min(charger.max_amps, amps))
        return float(amps * charger.voltage)

    def connector_status(self, charger: Charger, t: float) -> tuple[str, str]:
        """(connectorStatusType, connectorStatusReason) the status endpoint reports."""
        if charger.faulted:
            return "FAULTED", ""
        if not charger.plugged_in:
            return "AVAILABLE", ""
        if charger.status_override is not None:
            return charger.status_override, ""
        if not charger.charging:
            return "SUSPENDED_EVSE", ""
        limit = charger.ev_energy_limit_wh
        if limit is not None and charger.session_energy_wh >= limit - 1e-6:
            return "SUSPENDED_EV", ""
        if awaits_authentication(charger):
            return "SUSPENDED_EVSE", ""  # accepted, waiting for the app or a card
        if self.draw_w(charger, t) <= 0:
            return "SUSPENDED_EVSE", "INSUFFICIENT_SOLAR"
        return "CHARGING", ""

    # --- time ----------------------------------------------------------------------------------

    def sync(self, now: float) -> None:
        """Integrate every charger's draw from the last accounted instant up to ``now``."""
        if now <= self.accounted_at:
            return
        for charger in self.chargers:
            self._integrate(charger, self.accounted_at, now)
        self.accounted_at = now

    def _integrate(self, charger: Charger, start: float, end: float) -> None:
        t = start
        while t < end:
            watts = self.draw_w(charger, t)
            step_end = end
            if charger.mode == GREEN and charger.plugged_in and charger.charging:
                step_end = min(end, (math.floor(t / GREEN_STEP_S) + 1) * GREEN_STEP_S)
            limit = charger.ev_energy_limit_wh
            if watts > 0 and limit is not None:
                t_full = t + (limit - charger.session_energy_wh) * 3600.0 / watts
                if t_full < step_end:
                    step_end = max(t_full, t + 1e-3)
            if watts > 0:
                charger.session_energy_wh += watts * (step_end - t) / 3600.0
                if limit is not None:
                    charger.session_energy_wh = min(charger.session_energy_wh, limit)
                charger.session_active_s += step_end - t
                self._add_segment(charger, t, step_end, watts)
            t = step_end

    @staticmethod
    def _add_segment(charger: Charger, start: float, end: float, watts: float) -> None:
        last = charger.draw[-1] if charger.draw else None
        if last is not None and abs(last.end - start) < 1e-9 and last.watts == watts:
            last.end = end
        else:
            charger.draw.append(DrawSegment(start, end, watts))

    def reported_at(self, charger: Charger, now: float) -> float:
        """When the charger last reported: on its last state change (plug in or out, start,
        stop), then every ``REPORT_INTERVAL_S``; a status shows the figures of that report."""
        events = (charger.plugged_in_at, charger.plugged_out_at, charger.charge_started_at)
        last = max(
            (t for t in (*events, charger.stopped_at) if t is not None and t <= now), default=None
        )
        if last is None:
            return now // REPORT_INTERVAL_S * REPORT_INTERVAL_S
        return last + (now - last) // REPORT_INTERVAL_S * REPORT_INTERVAL_S

    def energy_at(self, charger: Charger, when: float, now: float) -> float:
        """The session energy (Wh) as it stood at ``when`` (<= ``now``): what was drawn since
        is taken off again, so a report's energy matches its time."""
        self.sync(now)
        later = sum(
            seg.watts * (min(seg.end, now) - max(seg.start, when)) / 3600.0
            for seg in charger.draw
            if seg.end > when and seg.start < now
        )
        return max(0.0, charger.session_energy_wh - later)

    def take_glitch(self, charger: Charger) -> str | None:
        """The next bad reading queued for this charger's status, if any (used up)."""
        return charger.e_c_glitches.pop(0) if charger.e_c_glitches else None

    # --- transitions ---------------------------------------------------------------------------

    def plug_in(self, sn: str, now: float) -> bool:
        """Start a new session; the mode returns to the scheduler's (ends any manual override)."""
        self.sync(now)
        charger = self.charger(sn)
        if charger.plugged_in:
            return False
        charger.plugged_in = True
        charger.plugged_in_at = now
        charger.plugged_out_at = None
        charger.charge_started_at = None
        charger.session_energy_wh = 0.0
        charger.session_active_s = 0.0
        charger.session_authenticated = False
        charger.mode = GREEN if charger.scheduler_mode in SOLAR_MODES else MANUAL
        return True

    def unplug(self, sn: str, now: float) -> bool:
        """End the session; it joins the session history. ``session_d`` keeps its figures."""
        self.sync(now)
        charger = self.charger(sn)
        if not charger.plugged_in:
            return False
        charger.plugged_in = False
        charger.charging = False
        charger.plugged_out_at = now
        if charger.plugged_in_at is not None and charger.session_energy_wh > 0:
            self.sessions.setdefault(sn, []).append(
                PastSession(
                    sn=sn,
                    start=charger.plugged_in_at,
                    end=now,
                    energy_kwh=round(charger.session_energy_wh / 1000.0, 2),
                    active_s=round(charger.session_active_s),
                )
            )
        return True

    def level_problem(self, charger: Charger, level: Any) -> str | None:
        """Why ``level`` is not a level this charger takes, or None when it is fine."""
        message = f"Charging level should be in the range [{charger.min_amps}-{charger.max_amps}]"
        if isinstance(level, bool) or not isinstance(level, int):
            return message
        if not charger.min_amps <= level <= charger.max_amps:
            return message
        if (level - charger.min_amps) % max(1, charger.granularity):
            return message
        return None

    def audit_level(self, sn: str, now: float, level: Any) -> str | None:
        """Record a bad requested level in ``violations``; returns the refusal message."""
        problem = self.level_problem(self.charger(sn), level)
        if problem is not None:
            self.violations.append(LevelViolation(at=now, sn=sn, level=level, reason=problem))
        return problem

    def start_charging(self, sn: str, now: float, level: Any = None) -> int | None:
        """A start command; returns the level it took from the request (None: stored level).

        Checks in the order the cloud applies them: the requested level (recorded as a
        violation when bad), the charger reachable, plugged in, not already charging (unless
        ``live_level`` lets a level through), settled since the last stop. In GREEN mode the
        level is ignored and the start becomes a manual override (status mode 0, scheduler
        preference untouched) until the next plug-in; the session then runs at the stored
        level. In MANUAL mode a level given here is stored and used by the new session: a
        (re)start is the only way to change amps.
        """
        self.sync(now)
        charger = self.charger(sn)
        if level is not None:
            problem = self.audit_level(sn, now, level)
            if problem is not None:
                raise ChargerStateError(problem, status=400)
        self._require_reachable(charger)
        if not charger.plugged_in:
            raise ChargerStateError("EV not plugged in", code="iqevc_ms-10008")
        green = charger.mode == GREEN
        if charger.charging:
            if level is not None and charger.live_level and not green:
                charger.level = int(level)
                return charger.level
            raise ChargerStateError("Already charging", code="iqevc_ms-10012")
        if charger.stopped_at is not None and now - charger.stopped_at < charger.settle_s:
            raise ChargerStateError("Charger not ready", status=409)
        taken: int | None = None
        if green:
            charger.mode = MANUAL  # the manual override
        elif level is not None:
            charger.level = taken = int(level)
        self._begin(charger, now)
        return taken

    def stop_charging(self, sn: str, now: float) -> None:
        """A stop command; in GREEN mode it also becomes a manual override until re-plug."""
        self.sync(now)
        charger = self.charger(sn)
        self._require_reachable(charger)
        if not charger.charging:
            raise ChargerStateError("No active charging session", status=409)
        charger.charging = False
        charger.stopped_at = now
        if charger.mode == GREEN:
            charger.mode = MANUAL

    def trigger_message(self, sn: str, now: float, message: str) -> str:
        """Ask the charger for an OCPP message; returns the tracking id of the request."""
        self.sync(now)
        if message not in TRIGGER_MESSAGES:
            raise ChargerStateError("Invalid requestedMessage", status=400)
        charger = self.charger(sn)
        self._require_reachable(charger)
        charger.triggered_messages.append(message)
        self.triggers_sent += 1
        ticket = uuid.uuid5(uuid.NAMESPACE_URL, f"{sn}:{self.triggers_sent}").hex[:6].upper()
        return f"TICKET-{ticket}"

    @staticmethod
    def _require_reachable(charger: Charger) -> None:
        if not charger.connected:
            # The command is queued but the cloud cannot reach the charger (spec 7.1).
            raise ChargerStateError("CONNECTION_NOT_ESTABLISHED", status=552)

    @staticmethod
    def _begin(charger: Charger, now: float) -> None:
        charger.charging = True
        charger.charge_started_at = now

    def set_level(self, sn: str, now: float, level: int) -> None:
        """Set the stored level directly (tests); a client changes it only through a start."""
        self.sync(now)
        charger = self.charger(sn)
        problem = self.level_problem(charger, level)
        if problem is not None:
            raise ChargerStateError(problem, status=400)
        charger.level = level

    def set_scheduler_mode(self, sn: str, now: float, mode: str) -> None:
        """Set the scheduler preference; the status ``mode`` integer follows it."""
        self.sync(now)
        if mode not in SCHEDULER_MODES:
            raise ValueError(f"mode must be one of {SCHEDULER_MODES}")
        charger = self.charger(sn)
        charger.scheduler_mode = mode
        charger.mode = GREEN if mode in SOLAR_MODES else MANUAL

    def write_scheduler_mode(self, sn: str, now: float, mode: str) -> bool:
        """A client's mode write; writing the current mode does nothing (not even end an
        override) but is counted. Returns whether the mode changed."""
        self.sync(now)
        if mode not in SCHEDULER_MODES:
            raise ChargerStateError(f"mode must be one of {', '.join(SCHEDULER_MODES)}")
        charger = self.charger(sn)
        if charger.scheduler_mode == mode:
            charger.mode_writes.unchanged += 1
            return False
        charger.mode_writes.changed += 1
        self.set_scheduler_mode(sn, now, mode)
        return True

    def set_green_use_battery(self, sn: str, now: float, enabled: bool) -> None:
        """The GREEN-mode "use battery" toggle; only chargers that support it accept it."""
        self.sync(now)
        charger = self.charger(sn)
        if not charger.supports_use_battery:
            raise ChargerStateError("Setting not supported", status=400)
        charger.green_use_battery = enabled

    def replace_schedules(self, sn: str, now: float, slots: list[dict[str, Any]]) -> None:
        """The schedule PATCH: the slot list becomes exactly ``slots`` (omitted ones are gone)."""
        self.sync(now)
        self.charger(sn).schedule_slots = [dict(slot) for slot in slots]

    def update_charger(self, sn: str, now: float, changes: dict[str, Any]) -> Charger:
        """Apply test-driven changes, going through the real transitions where there is one.

        Order: plug state first, then mode and level, then charging, so that one call can say
        ``plugged_in=True, charging=True``.
        """
        unknown = set(changes) - SETTABLE_FIELDS
        if unknown:
            raise ValueError(f"unknown charger fields: {sorted(unknown)}")
        self.sync(now)
        charger = self.charger(sn)
        rest = dict(changes)
        if "plugged_in" in rest:
            if rest.pop("plugged_in"):
                self.plug_in(sn, now)
            else:
                self.unplug(sn, now)
        if "scheduler_mode" in rest:
            self.set_scheduler_mode(sn, now, str(rest.pop("scheduler_mode")))
        if "mode" in rest:
            mode = int(rest.pop("mode"))
            if mode not in (MANUAL, GREEN):
                raise ValueError("mode must be 0 (manual) or 1 (green)")
            charger.mode = mode
        if "level" in rest:
            self.set_level(sn, now, int(rest.pop("level")))
        if "charging" in rest:
            if rest.pop("charging"):
                if not charger.plugged_in:
                    self.plug_in(sn, now)
                if not charger.charging:
                    self._begin(charger, now)
            else:
                charger.charging = False  # no settle time: as if it stopped long ago
        glitches = rest.pop("e_c_glitches", None)
        if glitches is not None:
            queued = [glitches] if isinstance(glitches, str) else list(glitches)
            bad = [g for g in queued if g not in E_C_GLITCHES]
            if bad:
                raise ValueError(f"e_c_glitches must be among {E_C_GLITCHES}, not {bad}")
            charger.e_c_glitches.extend(queued)
        for name, value in rest.items():
            setattr(charger, name, value)
        return charger

    # --- energy --------------------------------------------------------------------------------

    def mark_missing(self, start: float, end: float | None = None) -> int:
        """Make the buckets overlapping [start, end) null in every series; returns how many."""
        bucket = BUCKET_S
        first = self.energy_start + math.floor((start - self.energy_start) / bucket) * bucket
        last = first + bucket if end is None else end
        count = 0
        t = first
        while t < last:
            self.missing_buckets.add(int(t))
            count += 1
            t += bucket
        return count
