"""The decision log and the service's persisted state: one SQLite file, readable by any tool.

``store`` writes (the service) and opens read-only (`evopt log`); ``review`` holds the
queries; ``migrations`` the schema, versioned in code.
"""

from optimizer.decisions.store import (
    OUTCOMES,
    RUN_MODES,
    DecisionStore,
    Outcome,
    RunMode,
)

__all__ = ["OUTCOMES", "RUN_MODES", "DecisionStore", "Outcome", "RunMode"]
