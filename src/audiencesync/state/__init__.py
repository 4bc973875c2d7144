"""Where the pipeline remembers what Facebook has: one DuckDB file of hashes, ids and counts."""

from audiencesync.state.store import StateStore

__all__ = ["StateStore"]
