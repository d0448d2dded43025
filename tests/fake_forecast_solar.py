"""A fake Forecast.Solar (https://forecast.solar): a real aiohttp server on 127.0.0.1.

Shaped after the provider's replies as its client library's tests record them (the
``estimate`` JSON: ``result.watts``, ``watt_hours_period``, ``watt_hours``,
``watt_hours_day``, ``message.info`` and ``message.ratelimit``; the X-Ratelimit-* headers; the
429 body): tests/fixtures/forecast_solar/ holds one of each. The estimate covers today and
tomorrow (the site's days, times in UTC as ``time=utc`` asks) from sunrise to sunset, hourly,
with the first and last point at the sun's own second and 0 there, as the real one sends
them. Its production is a sine over the day scaled by the plane's kWp and a cloud factor per
day the test sets.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from astral import Observer
from astral.sun import sunrise, sunset

FIXTURES = Path(__file__).parent / "fixtures" / "forecast_solar"


def day_points(
    day: date, lat: float, lon: float, *, zone: str, kwp: float, cloud: float
) -> list[tuple[datetime, float, float]]:
    """(time, W, Wh of the period ending then) from the site's sunrise to its sunset on its
    local ``day`` (astral), hourly between: a sine over the day, 0.65 of the kWp at noon
    times ``cloud``."""
    where = Observer(latitude=lat, longitude=lon)
    rise = sunrise(where, day, tzinfo=ZoneInfo(zone)).astimezone(UTC).replace(microsecond=0)
    dusk = sunset(where, day, tzinfo=ZoneInfo(zone)).astimezone(UTC).replace(microsecond=0)
    length = (dusk - rise).total_seconds()

    def watts(at: datetime) -> float:
        share = (at - rise).total_seconds() / length
        return max(0.0, math.sin(math.pi * share)) * kwp * 1000 * 0.65 * cloud

    times = [rise]
    hour = rise.replace(minute=0, second=0) + timedelta(hours=1)
    while hour < dusk:
        times.append(hour)
        hour += timedelta(hours=1)
    times.append(dusk)
    points = [(rise, 0.0, 0.0)]
    for before, at in itertools.pairwise(times):
        hours = (at - before).total_seconds() / 3600
        points.append((at, round(watts(at)), round((watts(before) + watts(at)) / 2 * hours)))
    return points


def estimate_reply(
    lat: float, lon: float, kwp: float, *, today: date, clouds: dict[date, float], zone: str
) -> dict[str, Any]:
    """The ``estimate`` reply for the site's today and tomorrow, in the provider's shape."""
    watts: dict[str, int] = {}
    period: dict[str, int] = {}
    total: dict[str, int] = {}
    days: dict[str, int] = {}
    for day in (today, today + timedelta(days=1)):
        running = 0
        for at, w, wh in day_points(day, lat, lon, zone=zone, kwp=kwp, cloud=clouds.get(day, 1.0)):
            key = at.isoformat(timespec="seconds")
            running += int(wh)
            watts[key], period[key], total[key] = int(w), int(wh), running
        days[day.isoformat()] = running
    now = datetime.combine(today, time(9), tzinfo=UTC)
    return {
        "result": {
            "watts": watts,
            "watt_hours_period": period,
            "watt_hours": total,
            "watt_hours_day": days,
        },
        "message": {
            "code": 0,
            "type": "success",
            "text": "",
            "pid": "fake0001",
            "info": {
                "latitude": lat,
                "longitude": lon,
                "distance": 0,
                "place": "the fake's place",
                "timezone": zone,
                "time": now.isoformat(),
                "time_utc": now.isoformat(),
            },
            "ratelimit": {"zone": "IP ADDRESS", "period": 3600, "limit": 12, "remaining": 11},
        },
    }


@dataclass
class FakeForecastSolar:
    """``mode``: "ok", "ratelimit" (429), "down" (502), "html" (200, not JSON) or "hang"
    (no answer). ``today`` is the site's date at the fake, ``zone`` its time zone (the real
    service knows it from the place); ``requests`` the paths asked."""

    today: date
    zone: str = "America/New_York"
    mode: str = "ok"
    clouds: dict[date, float] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    base_url: str = ""
    _runner: web.AppRunner | None = None
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    async def _estimate(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        headers = {"X-Ratelimit-Limit": "12", "X-Ratelimit-Period": "3600"}
        if self.mode == "ratelimit":
            body = (FIXTURES / "ratelimit.json").read_text(encoding="utf-8")
            return web.Response(status=429, text=body, content_type="application/json")
        if self.mode == "down":
            html = "<html>Bad Gateway</html>"
            return web.Response(status=502, text=html, content_type="text/html")
        if self.mode == "html":
            return web.Response(text="<html>maintenance</html>", content_type="text/html")
        if self.mode == "hang":
            await self._closing.wait()  # until the fake stops: no answer before
        m = request.match_info
        reply = estimate_reply(
            float(m["lat"]),
            float(m["lon"]),
            float(m["kwp"]),
            today=self.today,
            clouds=self.clouds,
            zone=self.zone,
        )
        headers["X-Ratelimit-Remaining"] = "11"
        return web.Response(
            text=json.dumps(reply), content_type="application/json", headers=headers
        )

    async def __aenter__(self) -> FakeForecastSolar:
        app = web.Application()
        app.router.add_get("/estimate/{lat}/{lon}/{dec}/{az}/{kwp}", self._estimate)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()


@contextlib.contextmanager
def in_thread(fake: FakeForecastSolar) -> Iterator[FakeForecastSolar]:
    """``fake`` serving from a loop of its own, for a caller without one (the CLI's main)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-forecast-solar", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(fake.__aenter__(), loop).result(10)
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.__aexit__(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
