"""Live-stream start/stop replies, current and legacy."""

from __future__ import annotations

from typing import Any

from optimizer.enlighten.errors import ParseError
from optimizer.enlighten.models.base import (
    FrozenModel,
    _as_dict,
    _as_int,
    _as_list,
    _as_str,
    _pick,
    _reports_as,
    _require_dict,
)

# --- live stream -------------------------------------------------------------------------------


class LiveStream(FrozenModel):
    accepted: bool
    topics: tuple[str, ...]
    duration_s: int | None


@_reports_as("live stream")
def parse_live_stream(payload: Any) -> LiveStream:
    """The spec's flat reply, the ``data.liveStreamTopicList`` reply, and the web app's 2026
    envelope, whose stop answers ``data: null``: a 2xx whose ``error`` is an empty object is a
    success even without a ``status`` (2026 reference, section 9)."""
    body = _require_dict(payload, "live stream reply")
    merged = {**_as_dict(body.get("data")), **body}
    status = _as_str(merged.get("status"))
    topics = _pick(merged, ("topics", "liveStreamTopicList"), _as_list)
    error = body.get("error")
    enveloped = "error" in body and (error is None or isinstance(error, dict))
    if status is None and topics is None and not enveloped:
        raise ParseError("live stream reply has neither status nor a topic list")
    return LiveStream(
        accepted=status.strip().lower() == "accepted" if status is not None else not error,
        topics=tuple(topic for topic in topics or () if isinstance(topic, str)),
        duration_s=_pick(merged, ("duration_s", "liveStreamDuration"), _as_int),
    )
