"""What one run of the service works from: the config, its rules, and fingerprints of both.

Loaded at start and again on SIGHUP. Loading either succeeds completely or raises
``YamlFileError`` with every problem at its ``file:line:col``, so a reload with a broken file
keeps the previous setup whole. The hashes go into the decision log's run row: a decision can
be traced to the exact files it was made under.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from optimizer.config import Config, load_config
from optimizer.engine.decision import EngineSettings
from optimizer.engine.loader import (
    LoadedRules,
    config_warnings,
    ignored_warnings,
    load_config_rules,
)
from optimizer.yamlpos import Problem

__all__ = ["Setup", "file_hash", "files_hash", "load_setup"]


@dataclass(frozen=True)
class Setup:
    config: Config
    rules: LoadedRules
    config_hash: str
    rules_hash: str
    # What `evopt validate` would warn about (less what the config and policies silence),
    # logged at start so that a service started without validate still says it.
    warnings: tuple[Problem, ...] = ()

    @property
    def settings(self) -> EngineSettings:
        config = self.config
        return EngineSettings(
            site_max_amps=config.site.max_current,
            override_hold=config.engine.override_hold,
            tariffs=config.tariffs,
            charger_priority=config.site.charger_priority,
        )

    def describe(self) -> str:
        """``5 of 7 policies from 7 rule files``."""
        rules = self.rules
        return (
            f"{len(rules.enabled)} of {len(rules.policies)} policies "
            f"from {len(rules.files)} rule file{'s' if len(rules.files) != 1 else ''}"
        )


def load_setup(config: Config, config_path: Path | None, *, reread: bool = False) -> Setup:
    """The rules of ``config`` (and with ``reread``, the config file read again first)."""
    if reread and config_path is not None:
        config = load_config(config_path)
    rules = load_config_rules(config)
    warnings = ignored_warnings(config, [*config_warnings(config), *rules.warnings])
    return Setup(
        config=config,
        rules=rules,
        config_hash=file_hash(config_path),
        rules_hash=files_hash(Path(name) for name in rules.files),
        warnings=tuple(warnings),
    )


def file_hash(path: Path | None) -> str:
    """sha256 of the file's bytes (of nothing, for the built-in defaults)."""
    return hashlib.sha256(path.read_bytes() if path is not None else b"").hexdigest()


def files_hash(paths: Iterable[Path]) -> str:
    """sha256 over each file's name and bytes, in order: a renamed file changes it too."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
