"""`evopt pause [--for 1h]`, `evopt resume`, `evopt rules use NAME`, `evopt rules list`.

Local only, like `evopt plan set`: each writes the state database (optimizer/steer.py) and the
running service honours it at its next tick, recording it in the decision log as the user's
command. Home Assistant's buttons and select (optimizer/mqtt/) call the same functions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from optimizer.cli.context import Context
from optimizer.cli.output import print_json, print_table
from optimizer.decisions.store import DecisionStore
from optimizer.enlighten.errors import EnlightenError
from optimizer.steer import (
    CommandError,
    UserAction,
    known_rule_set,
    pause,
    pause_until,
    read_steering,
    resume,
    rule_set_names,
    use_rule_set,
)

__all__ = ["SteerUsageError", "pause_cmd", "resume_cmd", "rules_list", "rules_use"]


class SteerUsageError(EnlightenError):
    """A value the command cannot use (an unknown rule set, a pause of 0s): exit 2."""

    exit_code = 2


def _now() -> datetime:
    return datetime.now(UTC)


def _done(ctx: Context, action: UserAction) -> int:
    if ctx.args.json:
        print_json(action.to_json() | {"site": ctx.config.label})
    else:
        print(
            f"{action.reason[0].upper()}{action.reason[1:]}; the service acts on it from its "
            "next poll."
        )
    return 0


async def pause_cmd(ctx: Context) -> int:
    now = _now()
    try:  # before the database is opened: a refused value leaves nothing behind
        until = pause_until(ctx.args.duration, now=now)
    except CommandError as err:
        raise SteerUsageError(str(err)) from err
    with DecisionStore(ctx.config.database_path) as store:
        action = pause(store, ctx.config, until=until, now=now, source="cli")
    return _done(ctx, action)


async def resume_cmd(ctx: Context) -> int:
    with DecisionStore(ctx.config.database_path) as store:
        action = resume(store, ctx.config, now=_now(), source="cli")
    return _done(ctx, action)


async def rules_use(ctx: Context) -> int:
    try:  # before the database is opened: a refused value leaves nothing behind
        name = known_rule_set(ctx.config, ctx.args.name)
    except CommandError as err:
        raise SteerUsageError(str(err)) from err
    with DecisionStore(ctx.config.database_path) as store:
        action = use_rule_set(store, ctx.config, name, now=_now(), source="cli")
    return _done(ctx, action)


async def rules_list(ctx: Context) -> int:
    config = ctx.config
    path = config.database_path
    current = None
    paused_until = None
    if path.is_file():
        with DecisionStore(path) as store:
            steering = read_steering(store, config)
        current, paused_until = steering.rule_set, steering.paused_until
    in_use = current or "default"
    rows: list[dict[str, Any]] = []
    for name in rule_set_names(config):
        files = config.rules if name == "default" else config.rule_sets.get(name, [])
        rows.append({"name": name, "files": files, "in_use": name == in_use})
    if ctx.args.json:
        until = paused_until.isoformat() if paused_until and paused_until > _now() else None
        print_json({"site": config.label, "rule_sets": rows, "paused_until": until})
        return 0
    print_table(
        ("name", "files", "in_use"),
        [(r["name"], ", ".join(r["files"]) or "-", "yes" if r["in_use"] else "") for r in rows],
    )
    return 0
