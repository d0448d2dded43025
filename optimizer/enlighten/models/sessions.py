"""Session history pages (``data.result[]``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from optimizer.enlighten.errors import ParseError
from optimizer.enlighten.models.base import (
    FrozenModel,
    _as_bool,
    _as_dict,
    _as_float,
    _as_id,
    _as_int,
    _as_str,
    _parse_enlighten_time,
    _reports_as,
    _require_dict,
    _require_list,
)

# --- session history ---------------------------------------------------------------------------


class ChargingSession(FrozenModel):
    id: str
    session_id: int | None
    started_at: datetime
    ended_at: datetime | None
    energy_kwh: float | None
    active_charge_time_s: int | None
    miles_added: float | None
    cost: float | None
    avg_cost_per_kwh: float | None
    cost_state: str | None
    manual_override: bool | None


class SessionHistoryPage(FrozenModel):
    sessions: tuple[ChargingSession, ...]
    has_more: bool
    offset: int
    limit: int


def _parse_charging_session(raw: Any, index: int) -> ChargingSession:
    what = f"session history entry #{index}"
    session = _require_dict(raw, what)
    session_id = _as_int(session.get("sessionId"))
    record_id = _as_id(session.get("id")) or _as_id(session_id)
    started_at = _parse_enlighten_time(session.get("startTime"))
    if record_id is None:
        raise ParseError(f"{what} has neither id nor sessionId")
    if started_at is None:
        raise ParseError(f"{what} has no readable startTime")
    return ChargingSession(
        id=record_id,
        session_id=session_id,
        started_at=started_at,
        ended_at=_parse_enlighten_time(session.get("endTime")),
        energy_kwh=_as_float(session.get("aggEnergyValue")),
        active_charge_time_s=_as_int(session.get("activeChargeTime")),
        miles_added=_as_float(session.get("milesAdded")),
        cost=_as_float(session.get("sessionCost")),
        avg_cost_per_kwh=_as_float(session.get("avgCostPerUnitEnergy")),
        cost_state=_as_str(session.get("sessionCostState")),
        manual_override=_as_bool(session.get("manualOverridden")),
    )


@_reports_as("session history")
def parse_session_history_page(payload: Any) -> SessionHistoryPage:
    data = _as_dict(_require_dict(payload, "session history reply").get("data"))
    result = _require_list(data.get("result"), "session history reply data.result")
    sessions = tuple(_parse_charging_session(raw, index) for index, raw in enumerate(result))
    offset, limit = _as_int(data.get("offset")), _as_int(data.get("limit"))
    return SessionHistoryPage(
        sessions=sessions,
        has_more=_as_bool(data.get("hasMore")) is True,
        offset=offset if offset is not None else 0,
        limit=limit if limit is not None else len(sessions),
    )
