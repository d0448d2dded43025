"""The policy engine: rule models, loading, and the pure evaluation of snapshots."""
