"""Meta match keys: normalize and hash customer data exactly as Meta's matching expects."""

from audiencesync.matchkeys.errors import REASONS
from audiencesync.matchkeys.keys import KEYS, KeySpec, key_spec
from audiencesync.matchkeys.scalar import explain, match_value, normalize

__all__ = ["KEYS", "REASONS", "KeySpec", "explain", "key_spec", "match_value", "normalize"]
