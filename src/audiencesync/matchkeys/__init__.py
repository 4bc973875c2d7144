"""Meta match keys: normalize and hash customer data exactly as Meta's matching expects.

`normalize`, `match_value` and `explain` take one value; `match_table` takes a whole pyarrow table
and is what the sync pipeline calls. Both follow `shared/spec/match-keys.md` and agree exactly.
"""

from audiencesync.matchkeys import _allocator  # noqa: F401  (before polars loads: see the module)
from audiencesync.matchkeys.columns import resolve_columns
from audiencesync.matchkeys.errors import REASONS
from audiencesync.matchkeys.keys import KEYS, KeySpec, key_spec
from audiencesync.matchkeys.report import CoverageReport, KeyCoverage, coverage_report, describe_match
from audiencesync.matchkeys.scalar import explain, match_value, normalize, sha256_hex
from audiencesync.matchkeys.vectorized import MatchResult, match_table

__all__ = [
    "KEYS",
    "REASONS",
    "CoverageReport",
    "KeyCoverage",
    "KeySpec",
    "MatchResult",
    "coverage_report",
    "describe_match",
    "explain",
    "key_spec",
    "match_table",
    "match_value",
    "normalize",
    "resolve_columns",
    "sha256_hex",
]
