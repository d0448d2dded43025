"""The fake cloud as one object: model, clock, auth, profile, faults and request log.

Tests hold a ``FakeCloud`` and mutate it from their own thread while the server runs on
another; every method here takes ``lock`` (re-entrant), and so does every request handler, so
a change is never seen half-made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from optimizer.fakecloud.auth import AuthStore
from optimizer.fakecloud.browser import ReadGauge
from optimizer.fakecloud.budget import RequestBudget
from optimizer.fakecloud.clock import FakeClock
from optimizer.fakecloud.faults import FaultKind, FaultPlan, FaultRule
from optimizer.fakecloud.history_api import OUTAGE_MESSAGES, ServiceOutage
from optimizer.fakecloud.model import (
    Account,
    Battery,
    Charger,
    LevelViolation,
    SiteModel,
    default_slots,
)
from optimizer.fakecloud.outage import SchedulerOutage
from optimizer.fakecloud.profile import Profile
from optimizer.fakecloud.requestlog import LoggedRequest, RequestLog
from optimizer.fakecloud.sites import SiteRegistry, new_chargers


@dataclass(frozen=True)
class GatewayIssuer:
    """A fake gateway as Entrez knows it: the site it belongs to and its token issuer."""

    site_id: int
    issue_token: Callable[[], str]


class FakeCloud:
    """Everything one fake Enlighten cloud knows. Keyword-only; every argument has a default."""

    def __init__(
        self,
        *,
        clock: FakeClock | None = None,
        seed: int = 0,
        email: str = "owner@example.com",
        password: str = "correct-horse-battery",  # noqa: S107 (a fake account's password)
        mfa: bool = False,
        otp_code: str = "123456",
        site_id: int = 1234567,
        site_name: str = "Example Home",
        timezone: str = "Australia/Melbourne",
        latitude: float = -37.81,
        longitude: float = 144.96,
        chargers: Sequence[Charger] | None = None,
        battery: Battery | None = None,
        history_days: int = 28,
        pv_peak_w: float = 6000.0,
        base_load_w: float = 350.0,
        profile: Profile | None = None,
        session_lifetime_s: float = 24 * 3600.0,
        token_lifetime_s: float = 3600.0,
    ) -> None:
        self.lock = threading.RLock()
        # Gateways on this cloud's sites (their serial -> the site and how to issue an owner
        # token), so Entrez can hand out a token the fake gateway accepts (gateway/fake.py).
        self.gateways: dict[str, GatewayIssuer] = {}
        self.clock = clock if clock is not None else FakeClock()
        self.account = Account(email=email, password=password, mfa=mfa, otp_code=otp_code)
        self.model = SiteModel(
            now=self.clock.timestamp(),
            site_id=site_id,
            name=site_name,
            timezone=timezone,
            latitude=latitude,
            longitude=longitude,
            chargers=list(chargers) if chargers is not None else None,
            battery=battery,
            seed=seed,
            history_days=history_days,
            pv_peak_w=pv_peak_w,
            base_load_w=base_load_w,
        )
        self.auth = AuthStore(
            self.account,
            system_id=site_id,
            seed=seed,
            session_lifetime_s=session_lifetime_s,
            token_lifetime_s=token_lifetime_s,
        )
        self.sites = SiteRegistry()
        self.sites.add(self.model, email)
        self._seed = seed
        self._history_days = history_days
        self.profile = profile if profile is not None else Profile()
        self.faults = FaultPlan()
        self.log = RequestLog()
        self.budget = RequestBudget()  # per-account requests of the last hour
        self.reads = ReadGauge()  # GETs in flight now and at most (the client keeps to 2)
        self.outage = SchedulerOutage()
        self.history_outage = ServiceOutage()

    # --- time ----------------------------------------------------------------------------------

    def _sync(self, now: float) -> None:
        for model in self.sites.models.values():
            model.sync(now)

    def now(self) -> float:
        """Fake-clock epoch seconds, with every site brought up to date."""
        with self.lock:
            now = self.clock.timestamp()
            self._sync(now)
            return now

    def advance(self, seconds: float) -> datetime:
        """Move the clock on; energy accrues at the chargers' current state over the gap."""
        with self.lock:
            self._sync(self.clock.timestamp())
            when = self.clock.advance(seconds)
            self._sync(when.timestamp())
            return when

    def set_time(self, when: datetime) -> datetime:
        with self.lock:
            self._sync(self.clock.timestamp())
            new = self.clock.set(when)
            self._sync(new.timestamp())
            return new

    # --- accounts and sites (issue 13) ---------------------------------------------------------

    def add_account(
        self,
        email: str,
        password: str,
        *,
        mfa: bool = False,
        otp_code: str = "123456",
        sites: int = 1,
        chargers_per_site: int = 1,
    ) -> Account:
        """Another account with its own credentials, sessions and ``sites`` new sites."""
        if not email.strip() or "@" not in email:
            raise ValueError(f"an account e-mail must look like name@host, not {email!r}")
        if sites < 1:
            raise ValueError(f"sites must be at least 1 (an account needs a site), not {sites}")
        with self.lock:
            account = Account(
                email=email.strip(),
                password=password,
                mfa=mfa,
                otp_code=otp_code,
                user_id=self.account.user_id + 1 + len(self.auth.extra_accounts),
            )
            self.auth.add_account(account, system_id=self.sites.next_id())
            for _ in range(sites):
                self.add_site(account.email, chargers=chargers_per_site)
            return account

    def add_site(
        self, owner: str, *, chargers: int = 1, site_id: int | None = None, name: str = ""
    ) -> SiteModel:
        """A new site of account ``owner`` with ``chargers`` chargers of its own serials and
        its own PV/house model (seeded by the site id, so sites differ)."""
        if chargers < 1:
            raise ValueError(f"chargers must be at least 1, not {chargers}")
        with self.lock:
            if self.auth.find(owner) is None:
                raise ValueError(f"no account {owner!r}; add it first")
            sid = site_id if site_id is not None else self.sites.next_id()
            model = SiteModel(
                now=self.clock.timestamp(),
                site_id=sid,
                name=name or f"Site {sid}",
                chargers=new_chargers(sid, chargers),
                seed=self._seed + sid,
                history_days=self._history_days,
            )
            self.sites.add(model, owner)
            return model

    def add_charger(self, site_id: int) -> Charger:
        """One more charger on an existing site, drawing from the same site PV/house model."""
        with self.lock:
            model = self.sites.models.get(site_id)
            if model is None:
                raise ValueError(f"no site {site_id}; known: {sorted(self.sites.models)}")
            model.sync(self.clock.timestamp())
            (charger,) = new_chargers(site_id, 1, first=len(model.chargers))
            if self.sites.with_charger(charger.sn) is not None:
                raise ValueError(f"serial {charger.sn} is taken")
            charger.schedule_slots = default_slots(site_id, charger)
            model.chargers.append(charger)
            model.sessions.setdefault(charger.sn, [])
            return charger

    def account_of(self, *session_ids: str | None) -> str | None:
        """The e-mail of the first live session among ``session_ids`` (header, cookie)."""
        now = self.clock.timestamp()
        for sid in session_ids:
            session = self.auth.sessions.get(sid or "")
            if session is not None and session.valid(now):
                return session.email
        return None

    @contextmanager
    def site_scope(self, model: SiteModel) -> Iterator[None]:
        """Route handlers are written against ``self.model``; a request for another site runs
        with that site in its place. Callers hold ``lock``, so no other request sees it."""
        with self.lock:
            primary, self.model = self.model, model
            try:
                yield
            finally:
                self.model = primary

    # --- state ---------------------------------------------------------------------------------

    @contextmanager
    def mutate(self) -> Iterator[SiteModel]:
        """``with cloud.mutate() as model:`` for changes the helpers below do not cover."""
        with self.lock:
            self.model.sync(self.clock.timestamp())
            yield self.model

    def charger(self, sn: str | None = None) -> Charger:
        with self.lock:
            self.model.sync(self.clock.timestamp())
            return self.model.charger(sn)

    def update_charger(self, sn: str | None = None, **changes: Any) -> Charger:
        """``cloud.update_charger(plugged_in=True, charging=True, level=16)`` and the like."""
        with self.lock:
            now = self.clock.timestamp()
            model = self.model if sn is None else self.sites.with_charger(sn) or self.model
            target = model.charger(sn).sn
            return model.update_charger(target, now, changes)

    def scheduler_outage(self, duration_s: float, *, status: bool = False) -> SchedulerOutage:
        """The scheduler family (and with ``status`` the status read) answers 503 for
        ``duration_s`` of fake time from now; ``duration_s`` 0 ends an outage."""
        with self.lock:
            if duration_s == 0:
                self.outage.clear()
            else:
                self.outage.start(self.clock.timestamp(), duration_s, status=status)
            return self.outage

    def set_site(self, **changes: Any) -> dict[str, Any]:
        """``cloud.set_site(battery_profile="ai_optimisation", storm_active=True)``: the site
        settings the 2026 mode preference reflects (SMART in GREEN's place, storm guard)."""
        unknown = set(changes) - {"battery_profile", "storm_active"}
        if unknown:
            raise ValueError(
                f"unknown site fields: {sorted(unknown)}; battery_profile, storm_active"
            )
        with self.lock:
            model = self.model
            model.battery_profile = str(changes.get("battery_profile", model.battery_profile))
            model.storm_active = bool(changes.get("storm_active", model.storm_active))
            return {"battery_profile": model.battery_profile, "storm_active": model.storm_active}

    def set_profile(self, **changes: Any) -> Profile:
        """``cloud.set_profile(status_shape="legacy", login_wall=True)``; see ``Profile``."""
        with self.lock:
            self.profile.update(changes)
            return self.profile

    def set_account(self, **changes: Any) -> Account:
        """Change ``mfa``, ``blocked``, ``otp_code``, ``password`` or ``email`` of the account."""
        with self.lock:
            for name, value in changes.items():
                if not hasattr(self.account, name):
                    raise ValueError(f"unknown account field: {name}")
                setattr(self.account, name, value)
            return self.account

    def degrade_history(self, seconds: float, *, status: int = 550) -> None:
        """The historical-events service answers ``status`` (550 or 503) for ``seconds`` of
        fake time; 0 ends an outage."""
        if status not in OUTAGE_MESSAGES:
            raise ValueError(f"a history outage answers one of {sorted(OUTAGE_MESSAGES)}")
        with self.lock:
            until = self.clock.timestamp() + seconds if seconds > 0 else None
            self.history_outage = ServiceOutage(until=until, status=status)

    def violations(self) -> list[LevelViolation]:
        """Start requests that carried a level the charger cannot take (should stay empty)."""
        with self.lock:
            return list(self.model.violations)

    def expire_sessions(self) -> int:
        """Revoke every session: the next authenticated call gets 401 (or the login wall)."""
        with self.lock:
            return self.auth.expire_all()

    def mark_missing(self, start: datetime, end: datetime | None = None) -> int:
        """Null every series for the buckets overlapping [start, end) (one bucket without end)."""
        with self.lock:
            return self.model.mark_missing(
                start.timestamp(), None if end is None else end.timestamp()
            )

    # --- faults and log ------------------------------------------------------------------------

    def add_fault(self, kind: FaultKind | FaultRule, **options: Any) -> FaultRule:
        """Shortcut for ``cloud.faults.add``: ``cloud.add_fault("status", status=503)``."""
        return self.faults.add(kind, **options)

    def requests(
        self, path_contains: str | None = None, method: str | None = None
    ) -> list[LoggedRequest]:
        return self.log.requests(path_contains=path_contains, method=method)

    def snapshot(self) -> dict[str, Any]:
        """The state tests and the demo look at, as JSON-ready data."""
        with self.lock:
            now = self.clock.timestamp()
            self.model.sync(now)
            chargers = []
            for c in self.model.chargers:
                status, reason = self.model.connector_status(c, now)
                chargers.append(
                    {
                        "sn": c.sn,
                        "name": c.name,
                        "plugged_in": c.plugged_in,
                        "charging": c.charging,
                        "drawing_w": self.model.draw_w(c, now),
                        "level": c.level,
                        "mode": c.mode,
                        "scheduler_mode": c.scheduler_mode,
                        "green_use_battery": c.green_use_battery,
                        "session_energy_wh": round(c.session_energy_wh, 3),
                        "connector_status": status,
                        "connector_reason": reason,
                        "dlb_active": c.dlb_active,
                        "safe_limit_state": c.safe_limit_state,
                        "schedule_slots": c.schedule_slots,
                        "sessions": len(self.model.sessions.get(c.sn, [])),
                        "connected": c.connected,
                        "live_level": c.live_level,
                        "settle_s": c.settle_s,
                        "stopped_at": c.stopped_at,
                        "mode_writes": asdict(c.mode_writes),
                        "triggered_messages": list(c.triggered_messages),
                    }
                )
            return {
                "now": self.clock.now().isoformat(),
                "site_id": self.model.site_id,
                "pv_w": round(self.model.curves.pv_w(now), 1),
                "house_load_w": round(self.model.curves.load_w(now), 1),
                "chargers": chargers,
                "profile": self.profile.to_dict(),
                "scheduler_outage": self.outage.to_dict(),
                "account": {
                    "email": self.account.email,
                    "mfa": self.account.mfa,
                    "blocked": self.account.blocked,
                },
                "sessions": sum(1 for s in self.auth.sessions.values() if s.valid(now)),
                "violations": [asdict(v) for v in self.model.violations],
                "sites": [self._site_summary(m, now) for m in self.sites.models.values()],
            }

    def _site_summary(self, model: SiteModel, now: float) -> dict[str, Any]:
        """One site in ``snapshot()["sites"]``: owner, serials and the shared PV/house draw."""
        model.sync(now)
        drawing = {c.sn: model.draw_w(c, now) for c in model.chargers}
        return {
            "site_id": model.site_id,
            "name": model.name,
            "owner": self.sites.owners[model.site_id],
            "pv_w": round(model.curves.pv_w(now), 1),
            "house_load_w": round(model.curves.load_w(now), 1),
            "chargers_w": drawing,
            "consumption_w": round(model.curves.load_w(now) + sum(drawing.values()), 1),
        }
