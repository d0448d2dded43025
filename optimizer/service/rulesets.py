"""The policies of the rule set the user chose (`evopt rules use NAME`, Home Assistant's select).

A rule set is a named list of rule files in the config's ``rule_sets:``; ``default`` is the
config's own ``rules:`` (the service's setup, loaded at start and on SIGHUP) and ``off`` writes
nothing (the service does not evaluate at all, :meth:`optimizer.steer.Steering.holds_writes`).
A set's files are loaded the first time it is chosen and again when the setup changes (a
reload may have changed them). A set that cannot be loaded (a file broken since `evopt
validate` passed, a set removed from the config) leaves the default rules in control, with one
error in the log: a typo must never leave the chargers without policies or stop the loop.
"""

from __future__ import annotations

import logging

from optimizer.config import RULE_SET_DEFAULT, RULE_SET_OFF
from optimizer.engine.loader import load_config_rules
from optimizer.engine.rules import Policy
from optimizer.service.setup import Setup
from optimizer.yamlpos import YamlFileError

__all__ = ["RuleSets"]

_LOGGER = logging.getLogger(__name__)


class RuleSets:
    """The loaded rule sets of one site's setup, by name."""

    def __init__(self) -> None:
        self._setup: Setup | None = None
        self._loaded: dict[str, tuple[Policy, ...] | None] = {}

    def policies(self, name: str | None, setup: Setup) -> tuple[Policy, ...]:
        """The enabled policies of ``name`` (None or ``default``: the setup's own)."""
        if name in (None, RULE_SET_DEFAULT):
            return setup.rules.enabled
        if name == RULE_SET_OFF:
            return ()
        if setup is not self._setup:  # a reload: load the sets again when next chosen
            self._setup, self._loaded = setup, {}
        if name not in self._loaded:
            self._loaded[name] = self._load(name, setup)
        chosen = self._loaded[name]
        return setup.rules.enabled if chosen is None else chosen

    @staticmethod
    def _load(name: str, setup: Setup) -> tuple[Policy, ...] | None:
        config = setup.config
        files = config.rule_sets.get(name)
        if files is None:
            _LOGGER.error(
                "rule set %r is not in the config's rule_sets (%s); the default rules apply",
                name,
                ", ".join(config.rule_sets) or "none",
            )
            return None
        try:
            rules = load_config_rules(config.model_copy(update={"rules": files}))
        except YamlFileError as err:
            for problem in err.problems:
                _LOGGER.error("rule set %r: %s; the default rules apply", name, problem)  # noqa: TRY400
            return None
        _LOGGER.info("rule set %r: %d policies from %s", name, len(rules.enabled), files)
        return rules.enabled
