"""`evopt validate` and `evopt schema` (implemented in optimizer/cli/rules.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add `validate` and `schema` through build_parser's ``command(name, help, handler)``."""
    validate_parser = command(
        "validate",
        "check the config and rule files; errors as file:line:col: message",
        "cli.rules:validate",
    )
    validate_parser.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="config or rule files (default: the config and every rule file it lists)",
    )
    validate_parser.add_argument("--json", action="store_true", help="print the result as JSON")
    schema_parser = command(
        "schema", "print the JSON Schema of rule files (for editors)", "cli.rules:schema"
    )
    # Both read the config themselves (or not at all): a broken one is reported, not fatal.
    for parser in (validate_parser, schema_parser):
        parser.set_defaults(loads_config=False)
