"""`evopt gateway token` and `evopt gateway check` (implemented in optimizer/cli/gateway.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def register(
    command: Callable[..., argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add `gateway token` and `gateway check` through build_parser's ``command`` helper."""
    gateway = command("gateway", "the site's IQ Gateway as the surplus source (docs/gateway.md)")
    actions = gateway.add_subparsers(dest="action", metavar="ACTION", required=True)
    token = actions.add_parser(
        "token",
        help="store the gateway owner's token (mode 0600; never shown again)",
        description="store the gateway owner's token from entrez.enphaseenergy.com: pasted "
        "at the prompt (not echoed), piped in, or fetched with the Enlighten login (--fetch)",
        parents=[common],
    )
    given = token.add_mutually_exclusive_group()
    given.add_argument(
        "--from-file",
        metavar="PATH",
        help="read the token from this file ('-': standard input) instead of a prompt",
    )
    given.add_argument(
        "--fetch",
        action="store_true",
        help="fetch the owner's token from Entrez with the Enlighten login (the stored "
        "session, else ENLIGHTEN_PASSWORD or a prompt) for the gateway's serial; also what "
        "happens without a terminal when nothing is piped in",
    )
    check = actions.add_parser(
        "check",
        help="read the gateway once and show what the service would take from it",
        description="read the gateway once and show what the service would take from it",
        parents=[common],
    )
    for parser in (token, check):
        parser.add_argument(
            "--site", metavar="NAME|ID", help="a site of the config's sites: list (by name or id)"
        )
        parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    token.set_defaults(handler="cli.gateway:gateway_token")
    check.set_defaults(handler="cli.gateway:gateway_check")
