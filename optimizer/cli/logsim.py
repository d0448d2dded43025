"""`evopt log --simulation [NAME]`: review simulated decisions with the live log's commands.

Simulations log to their own file (optimizer.simulate.logdb); the review commands stay the
same and only the file changes, with ``NAME`` narrowing to that simulation's run. Kept apart
from `cli/log.py` so the log's own options and printing can change without this.
"""

from __future__ import annotations

from optimizer.cli.args.log import ALL_SIMULATIONS
from optimizer.cli.context import Context
from optimizer.decisions.store import DecisionStore
from optimizer.enlighten.errors import ConfigError
from optimizer.simulate.logdb import open_simulations, resolve_runs

__all__ = ["ALL_SIMULATIONS", "open_log"]


def open_log(ctx: Context, *, actions: tuple[str, ...] = ()) -> DecisionStore:
    """The live log, or with ``--simulation`` the simulation log, opened read-only.

    With a NAME the run filter is set to that simulation's run. ``actions``: the log's
    sub-commands, which ``--simulation stats`` would otherwise take for a NAME.
    """
    name: str | None = getattr(ctx.args, "simulation", None)
    if name is None:
        return DecisionStore.open_readonly(ctx.config.database_path)
    if name in actions:
        raise ConfigError(
            f"'--simulation {name}' reads '{name}' as a simulation's name",
            hint=f"write `evopt log {name} --simulation`",
        )
    store = open_simulations(ctx.config, readonly=True)
    if name != ALL_SIMULATIONS:
        try:
            runs = resolve_runs(store, name)
        except ConfigError:
            store.close()
            raise
        given: str | None = getattr(ctx.args, "run", None)
        if given is not None and not any(run.startswith(given) for run in runs):
            store.close()
            raise ConfigError(
                f"--run {ctx.args.run} is not the run of the simulation '{name}'",
                hint="give one of --run and --simulation NAME",
            )
        ctx.args.run = runs[0]
    return store
