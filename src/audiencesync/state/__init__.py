"""Where the pipeline remembers what Facebook has: one DuckDB file of hashes, ids and counts.

`schema.py` declares the tables and their version, `ledger.py` every write the sync makes to them,
`store.py` the connection and the small reads and writes of the other doors.
"""

from audiencesync.state.schema import SCHEMA_VERSION
from audiencesync.state.store import StateStore

__all__ = ["SCHEMA_VERSION", "StateStore"]
