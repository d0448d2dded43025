"""`evopt pause`, `evopt resume`, `evopt rules use|list` (implemented in optimizer/cli/steer.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def register(
    command: Callable[..., argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add `pause`, `resume` and `rules use|list` through build_parser's ``command`` helper."""
    paused = command(
        "pause",
        "pause the automation: the service writes nothing until then",
        "cli.steer:pause_cmd",
    )
    paused.add_argument(
        "--for",
        dest="duration",
        metavar="DURATION",
        default="1h",
        help="how long: 30m, 1h, 2d (default 1h, at most 7d)",
    )
    resumed = command("resume", "resume the automation now (ends a pause)", "cli.steer:resume_cmd")
    rules = command("rules", "switch between the config's rule sets (rule_sets:)")
    actions = rules.add_subparsers(dest="action", metavar="ACTION", required=True)
    use = actions.add_parser(
        "use",
        help="use the rule set NAME from the service's next tick",
        description="use the rule set NAME from the service's next tick: default (the "
        "config's rules:), a name of rule_sets:, or off (no writes)",
        parents=[common],
    )
    use.add_argument("name", metavar="NAME", help="default, a name of rule_sets:, or off")
    use.set_defaults(handler="cli.steer:rules_use")
    listed = actions.add_parser(
        "list",
        help="list the rule sets and the one in use",
        description="list the rule sets and the one in use",
        parents=[common],
    )
    listed.set_defaults(handler="cli.steer:rules_list")
    for parser in (paused, resumed, use, listed):
        parser.add_argument("--site", metavar="NAME|ID", help="a site of the config's sites:")
        parser.add_argument("--json", action="store_true", help="print JSON")
