"""`evopt gateway token` and `evopt gateway check`: set up the IQ Gateway as the surplus source.

``token`` stores the owner's token (pasted at a prompt that does not echo, or piped in) in the
state dir with mode 0600 and says whose it is and until when, never printing it back. ``check``
reads the gateway once, as the service will, and shows what it found: the meters, the power
now, and what the physics checks thought of it (docs/gateway.md).
"""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path

from optimizer.cli.context import Context
from optimizer.cli.output import print_json
from optimizer.config import Config
from optimizer.enlighten.errors import (
    EXIT_AUTH,
    EXIT_CLOUD,
    ConfigError,
)
from optimizer.gateway.fetch import fetch_and_store
from optimizer.gateway.reading import check_reading
from optimizer.gateway.renew import RENEW_AHEAD
from optimizer.gateway.source import GatewaySource, gateway_source
from optimizer.gateway.token import GatewayTokenError, TokenFacts, store_token, token_facts
from optimizer.logsafe import register_secret

__all__ = ["gateway_check", "gateway_token"]


def _read_token(source: str | None) -> str:
    if source == "-" or (source is None and not sys.stdin.isatty()):
        return sys.stdin.read()
    if source is not None:
        try:
            return Path(source).expanduser().read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"--from-file {source}: {err.strerror}") from err
    return getpass.getpass("Gateway token (from entrez.enphaseenergy.com; not shown): ")


async def _fetch(ctx: Context, path: Path) -> TokenFacts:
    """Through the Enlighten login (the stored session when it works): docs/gateway.md."""
    source = _source(ctx.config)
    try:
        async with ctx.client() as client:
            return await fetch_and_store(client, source, path)
    finally:
        await source.close()


def _store_given(text: str, path: Path) -> TokenFacts:
    if not text.strip():
        raise GatewayTokenError("no token was given")
    register_secret(text.strip())
    facts = token_facts(text.strip())
    if facts.expires_at is not None and facts.expires_at <= datetime.now(UTC):
        raise GatewayTokenError(f"the token expired on {facts.expires_at:%Y-%m-%d}; not stored")
    return store_token(path, text)


async def gateway_token(ctx: Context) -> int:
    """Fetch (``--fetch``) or store a given token. Without ``--from-file`` and without a
    terminal, a token piped in is stored, and nothing piped in means fetch: what a script or
    a systemd unit running `evopt gateway token` expects, with the login already given."""
    path = ctx.config.gateway_token_path
    fetch = bool(ctx.args.fetch)
    text = "" if fetch else _read_token(ctx.args.from_file)
    if not fetch and not text.strip() and ctx.args.from_file is None and not sys.stdin.isatty():
        fetch = True
    facts = await _fetch(ctx, path) if fetch else _store_given(text, path)
    left = facts.expires_at - datetime.now(UTC) if facts.expires_at is not None else None
    if ctx.args.json:
        print_json(
            {
                "stored_at": str(path),
                "source": "entrez" if fetch else "given",
                "user_type": facts.user_type,
                "gateway_serial": facts.serial,
                "expires_at": facts.expires_at.isoformat() if facts.expires_at else None,
            }
        )
    else:
        whose = f"an {facts.user_type} token" if facts.user_type else "a token"
        serial = f" for gateway {facts.serial}" if facts.serial else ""
        until = (
            f", valid until {facts.expires_at:%Y-%m-%d} ({left.days} days)"
            if facts.expires_at is not None and left is not None
            else ""
        )
        got = "Fetched and stored" if fetch else "Stored"
        print(f"{got} {whose}{serial}{until} in {path} (mode 0600).")
        if left is not None and left < RENEW_AHEAD and not fetch:
            print(
                "It expires soon: the service fetches a new one with the Enlighten login "
                "(or run `evopt gateway token --fetch`)."
            )
    return 0


def _source(config: Config) -> GatewaySource:
    source = gateway_source(config)
    if source is None:
        raise ConfigError(
            "the config has no 'gateway:' block",
            hint="add gateway.host (the gateway's IP or envoy.local); see docs/gateway.md",
        )
    return source


async def gateway_check(ctx: Context) -> int:
    source = _source(ctx.config)
    now = datetime.now(UTC)
    try:
        reading = await source.read(now)
    finally:
        await source.close()
    problems = check_reading(reading, limits=source.limits).problems if reading else ()
    if ctx.args.json:
        print_json(
            {
                "host": source.host,
                "answers": reading is not None,
                "problem": source.problem,
                "features": list(source.features),
                "consumption_metered": source.consumption_metered,
                "production_w": reading.production_w if reading else None,
                "consumption_w": reading.consumption_w if reading else None,
                "net_w": reading.net_w if reading else None,
                "battery_w": reading.battery_w if reading else None,
                "battery_soc_pct": reading.battery_soc_pct if reading else None,
                "checks": list(problems),
            }
        )
    elif reading is None:
        print(f"The gateway at {source.host} does not answer: {source.problem}")
    else:
        print(f"Gateway at {source.host}: {', '.join(source.features)}")
        print(f"  production   {_w(reading.production_w)}")
        print(f"  consumption  {_w(reading.consumption_w)}")
        print(f"  grid         {_w(reading.net_w)} (positive: import)")
        if reading.battery_w is not None or reading.battery_soc_pct is not None:
            soc = f"{reading.battery_soc_pct:.0f} %" if reading.battery_soc_pct is not None else "?"
            print(f"  battery      {_w(reading.battery_w)} (positive: discharging), {soc}")
        if not reading.consumption_metered:
            print("  no consumption meter: the house's load will come from the cloud's buckets")
        for problem in problems:
            print(f"  not trusted: {problem}")
    if reading is not None:
        return 0
    return EXIT_AUTH if source.token_refused else EXIT_CLOUD


def _w(watts: float | None) -> str:
    return "not metered" if watts is None else f"{watts:.0f} W"
