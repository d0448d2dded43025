"""Where simulations log their decisions: ``simulations.db``, apart from the live log.

A simulation is a what-if: mixed into the live ``decisions.db`` it doubled every day in
`evopt log stats` and grew the file by ~100 MB a year replayed. It gets its own file, beside
the live one and with the same schema (so `evopt log --simulation` reads it with the same
queries), and each run has a name: a rerun of the same name replaces the previous one.
"""

from __future__ import annotations

from pathlib import Path

from optimizer.config import Config
from optimizer.decisions.store import DecisionStore, OlderSchemaError
from optimizer.enlighten.errors import ConfigError
from optimizer.explain import did_you_mean

__all__ = ["DEFAULT_NAME", "FILE_NAME", "open_simulations", "resolve_runs", "simulations_path"]

FILE_NAME = "simulations.db"
DEFAULT_NAME = "default"


def simulations_path(config: Config) -> Path:
    """``<state_dir>/simulations.db``; beside ``service.database`` when that names the log.

    Beside the live log rather than always in the state dir, so a config that moves the log
    (tests, a second instance) moves its simulations too.
    """
    live = config.database_path
    path = live.with_name(FILE_NAME) if config.service.database is not None else None
    path = path or config.state_dir / FILE_NAME
    if path.resolve() == live.resolve():
        raise ConfigError(
            f"service.database is {live}, the file simulations use",
            hint="name the decision log differently (decisions.db is the default)",
        )
    return path


def open_simulations(config: Config, *, readonly: bool = False) -> DecisionStore:
    """The simulation log, created (0600) and migrated unless ``readonly``."""
    path = simulations_path(config)
    if not readonly:
        return DecisionStore(path)
    if not path.is_file():
        raise ConfigError(
            f"no simulation log at {path}",
            hint="`evopt simulate` writes it (unless --no-log)",
        )
    try:
        return DecisionStore(path, readonly=True)
    except OlderSchemaError:
        # No service owns the simulation log to upgrade it after an update of evopt (the
        # live log's readers wait for the service): its reader does, in one transaction.
        DecisionStore(path).close()
    return DecisionStore(path, readonly=True)


def resolve_runs(store: DecisionStore, name: str) -> list[str]:
    """The run ids of the simulation called ``name``; an unknown name names the known ones."""
    runs = store.runs_named(name)
    if runs:
        return runs
    names = store.run_names()
    known = ", ".join(names) if names else "none yet"
    raise ConfigError(
        f"no simulation named '{name}' in {store.path}{did_you_mean(name, names)}",
        hint=f"simulations there: {known}",
    )
