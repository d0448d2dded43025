"""The write side of the cloud: control commands (spec 3) and scheduler writes (spec 4).

Each handler is the same thin translation as the read routes: check the request variant
against the region profile (``variants``), find the charger, call one model command, and turn
its refusal (``ChargerStateError``) into the cloud's reply. The model owns the charger's
rules; this module owns only what the HTTP request looks like. Registered by ``app.Routes``
with the same wrapper (lock, fake clock, auth), so faults and the request log apply here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from optimizer.fakecloud import payloads, slot_routes
from optimizer.fakecloud.cloud import FakeCloud
from optimizer.fakecloud.model import Charger, ChargerStateError
from optimizer.fakecloud.preference import put_mode
from optimizer.fakecloud.profile import Profile
from optimizer.fakecloud.responses import error_reply, json_reply
from optimizer.fakecloud.variants import (
    CONTROL_RULES,
    NO_BODY,
    Rejection,
    check_start,
    check_stop,
    path_kind,
    requested_level,
)

if TYPE_CHECKING:  # app imports this module to register the routes
    from optimizer.fakecloud.app import AuthLevel, Ctx

USE_BATTERY = "USE_BATTERY_FOR_SELF_CONSUMPTION"
JSON = dict[str, Any]


class AddRoute(Protocol):
    """``Routes.add``: wraps a synchronous handler with lock, clock and auth."""

    def __call__(
        self,
        method: str,
        path: str,
        fn: Callable[[Ctx], web.StreamResponse],
        *,
        auth: AuthLevel,
    ) -> None: ...


def state_error_reply(exc: ChargerStateError) -> web.Response:
    """``{"status":"error","error":{"code","message"}}`` for coded refusals, else the plain
    ``{"status":"error","message"}`` envelope."""
    if exc.code is not None:
        body = {"status": "error", "error": {"code": exc.code, "message": str(exc)}}
        return json_reply(body, status=exc.status)
    return error_reply(exc.status, str(exc))


# The 2026 reference's texts (section 2) for the coded refusals; the model's own words else.
DISPLAY_2026 = {
    "iqevc_ms-10008": "Charger is not plugged to EV",
    "iqevc_ms-10012": "Charger is already in charging state",
}
INVALID_LEVEL = "Invalid charge level"


def control_error_2026(status: int, message: str, now: float, code: str | None = None) -> JSON:
    """``{"meta", "data": null, "error": {"displayMessage", "code", "errorMessageCode"}}``:
    ``code`` echoes the HTTP status; ``errorMessageCode`` is there only for coded refusals."""
    error: JSON = {"displayMessage": message, "code": str(status)}
    if code is not None:
        error["errorMessageCode"] = code
    return {"meta": {"serverTimeStamp": int(now * 1000)}, "data": None, "error": error}


def control_error_reply(exc: ChargerStateError, profile: Profile, now: float) -> web.Response:
    """A refused start or stop, in the envelope of the profile's era."""
    if profile.control_error_shape == "legacy":
        return state_error_reply(exc)
    message = DISPLAY_2026.get(exc.code or "", str(exc))
    return json_reply(control_error_2026(exc.status, message, now, exc.code), status=exc.status)


def rejection_reply(rejection: Rejection) -> web.Response:
    response = error_reply(rejection.status, rejection.message)
    if rejection.allow is not None:
        response.headers["Allow"] = rejection.allow
    return response


def body_value(ctx: Ctx) -> Any:
    """The JSON body, ``NO_BODY`` when there was none, the raw text/form when not JSON."""
    body = ctx.body
    if body.json is not None:
        return body.json
    if body.form is not None:
        return body.form
    if body.text is not None:
        return body.text
    return NO_BODY


class WriteRoutes:
    """Handlers for the write endpoints; ``find_charger`` is ``Routes.find_charger``."""

    def __init__(
        self, cloud: FakeCloud, find_charger: Callable[[Ctx], Charger | web.Response]
    ) -> None:
        self.cloud = cloud
        self.find_charger = find_charger

    def register(self, add: AddRoute) -> None:
        """Control routes need the session; the scheduler service also the bearer token."""
        session: AuthLevel = "session"
        bearer: AuthLevel = "bearer"
        evse = "/service/evse_controller/{site}"
        sched = "/service/evse_scheduler/api/v1/iqevc/charging-mode"
        for kind in ("ev_chargers", "ev_charger"):
            base = f"{evse}/{kind}/{{sn}}"
            for method in ("POST", "PUT"):
                add(method, f"{base}/start_charging", self.start, auth=session)
                add(method, f"{base}/stop_charging", self.stop, auth=session)
            add("POST", f"{base}/trigger_message", self.trigger, auth=session)
        add("PUT", f"{sched}/{{site}}/{{sn}}/preference", self.preference, auth=bearer)
        add(
            "PUT",
            f"{sched}/GREEN_CHARGING/{{site}}/{{sn}}/settings",
            self.green_settings,
            auth=bearer,
        )
        slots = f"{sched}/SCHEDULED_CHARGING/{{site}}/{{sn}}"
        add("PATCH", f"{slots}/schedules", self.schedules, auth=bearer)
        add("POST", f"{slots}/schedule", self.slot_create, auth=bearer)
        add("PATCH", f"{slots}/schedule/{{slot}}", self.slot_update, auth=bearer)
        add("DELETE", f"{slots}/schedule/{{slot}}", self.slot_delete, auth=bearer)

    # --- control (spec 3) ----------------------------------------------------------------------

    def start(self, ctx: Ctx) -> web.StreamResponse:
        rule = CONTROL_RULES[self.cloud.profile.control_profile]
        body = body_value(ctx)
        command = check_start(rule, ctx.request.method, path_kind(ctx.request.path), body)
        if isinstance(command, Rejection):
            self._audit(ctx, requested_level(body))
            return rejection_reply(command)
        charger = self.find_charger(ctx)
        if isinstance(charger, web.Response):
            return charger
        if charger.iq40_backend and command.level is not None:
            refusal = control_error_2026(500, INVALID_LEVEL, ctx.now)
            return json_reply(refusal, status=500)
        try:
            taken = self.cloud.model.start_charging(charger.sn, ctx.now, command.level)
        except ChargerStateError as exc:
            return control_error_reply(exc, self.cloud.profile, ctx.now)
        self._flip_scheduled(charger, ctx.now)
        return json_reply(payloads.start_accepted(taken))

    def _flip_scheduled(self, charger: Charger, now: float) -> None:
        """Observed in 2026: a manual start or stop takes the charger out of SCHEDULED."""
        if self.cloud.profile.scheduled_flip and charger.scheduler_mode == "SCHEDULED_CHARGING":
            self.cloud.model.set_scheduler_mode(charger.sn, now, "MANUAL_CHARGING")

    def _audit(self, ctx: Ctx, level: Any) -> None:
        """A refused variant still must not carry a bad level: record it as a violation."""
        model = self.cloud.model
        sn = ctx.match("sn")
        if level is not None and model.has_charger(sn):
            model.audit_level(sn, ctx.now, level)

    def stop(self, ctx: Ctx) -> web.StreamResponse:
        rule = CONTROL_RULES[self.cloud.profile.control_profile]
        refused = check_stop(rule, ctx.request.method, path_kind(ctx.request.path))
        if refused is not None:
            return rejection_reply(refused)
        charger = self.find_charger(ctx)
        if isinstance(charger, web.Response):
            return charger
        try:
            self.cloud.model.stop_charging(charger.sn, ctx.now)
        except ChargerStateError as exc:
            return control_error_reply(exc, self.cloud.profile, ctx.now)
        self._flip_scheduled(charger, ctx.now)
        return json_reply({"status": "accepted"})

    def trigger(self, ctx: Ctx) -> web.StreamResponse:
        charger = self.find_charger(ctx)
        if isinstance(charger, web.Response):
            return charger
        body = body_value(ctx)
        message = body.get("requestedMessage") if isinstance(body, dict) else None
        try:
            ticket = self.cloud.model.trigger_message(charger.sn, ctx.now, str(message))
        except ChargerStateError as exc:
            return state_error_reply(exc)
        return json_reply(payloads.trigger_accepted(str(message), ctx.now, ticket))

    # --- scheduler (spec 4) --------------------------------------------------------------------

    def preference(self, ctx: Ctx) -> web.StreamResponse:
        charger = self.find_charger(ctx)
        if isinstance(charger, web.Response):
            return charger
        body = body_value(ctx)
        mode = body.get("mode") if isinstance(body, dict) else None
        if self.cloud.profile.scheduler_2026:
            return put_mode(self.cloud.model, charger, ctx.now, str(mode), self.cloud.profile)
        try:
            self.cloud.model.write_scheduler_mode(charger.sn, ctx.now, str(mode))
        except ChargerStateError as exc:
            return state_error_reply(exc)
        return json_reply(payloads.preference(charger))

    def green_settings(self, ctx: Ctx) -> web.StreamResponse:
        charger = self.find_charger(ctx)
        if isinstance(charger, web.Response):
            return charger
        body = body_value(ctx)
        settings = body.get("chargerSettingList") if isinstance(body, dict) else None
        if not isinstance(settings, list) or not settings:
            return error_reply(400, "chargerSettingList is required")
        enabled: bool | None = None
        for item in settings:
            if not isinstance(item, dict) or item.get("chargerSettingName") != USE_BATTERY:
                name = item.get("chargerSettingName") if isinstance(item, dict) else None
                return error_reply(400, f"Unknown chargerSettingName: {name}")
            if not isinstance(item.get("enabled"), bool):
                return error_reply(400, "enabled must be a boolean")
            if not isinstance(item.get("loader", False), bool):
                return error_reply(400, "loader must be a boolean")
            enabled = item["enabled"]
        assert enabled is not None  # noqa: S101 (the list is non-empty and each item checked)
        try:
            self.cloud.model.set_green_use_battery(charger.sn, ctx.now, enabled)
        except ChargerStateError as exc:
            return state_error_reply(exc)
        return json_reply(payloads.green_settings_written(ctx.now))

    def _slot_write(
        self, ctx: Ctx, write: Callable[[Charger, Profile, float], web.Response]
    ) -> web.StreamResponse:
        """A scheduler slot write on the charger the path names (slot_routes does the rest)."""
        charger = self.find_charger(ctx)
        if isinstance(charger, web.Response):
            return charger
        self.cloud.model.sync(ctx.now)
        return write(charger, self.cloud.profile, ctx.now)

    def schedules(self, ctx: Ctx) -> web.StreamResponse:
        body = body_value(ctx)
        return self._slot_write(ctx, lambda c, p, now: slot_routes.patch_list(c, p, now, body))

    def slot_create(self, ctx: Ctx) -> web.StreamResponse:
        body, site_id = body_value(ctx), self.cloud.model.site_id
        return self._slot_write(
            ctx, lambda c, p, now: slot_routes.create(c, p, now, body, site_id=site_id)
        )

    def slot_update(self, ctx: Ctx) -> web.StreamResponse:
        body, slot_id = body_value(ctx), ctx.match("slot")
        return self._slot_write(
            ctx, lambda c, p, now: slot_routes.update(c, p, now, body, slot_id=slot_id)
        )

    def slot_delete(self, ctx: Ctx) -> web.StreamResponse:
        slot_id = ctx.match("slot")
        return self._slot_write(
            ctx, lambda c, p, now: slot_routes.delete(c, p, now, slot_id=slot_id)
        )
