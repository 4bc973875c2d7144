"""Which source column feeds which key.

Column names arrive as other systems spell them (`Email`, `first_name`, `countryCode`). Matching is
case-insensitive, and `_`, `-`, `.` and spaces are ignored, except where that would confuse two
names the alias table keeps apart: a column spelled exactly like one alias (`birth_day`) is never
taken for another one that differs only by underscores (`birthday`, a whole date).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from audiencesync.matchkeys.keys import KEYS, key_spec

_SEPARATORS = re.compile(r"[\s_\-.]+")


def _squash(name: str) -> str:
    return _SEPARATORS.sub("", name).lower()


def resolve_columns(column_names: Iterable[str], explicit: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """Key → column. An explicit mapping wins (None switches a key off) and its columns are not
    reused by the alias table. FI falls back to the FN column when no FI column exists."""
    names = list(column_names)
    chosen: dict[str, str | None] = {}
    for key, column in (explicit or {}).items():
        spec = key_spec(key)
        if column is not None and column not in names:
            raise KeyError(f"column {column!r} mapped to {spec.name} is not in the source")
        chosen[spec.name] = column
    taken = {column for column in chosen.values() if column is not None}
    free = [name for name in names if name not in taken]

    all_aliases = {alias.lower() for spec in KEYS for alias in spec.aliases}
    exact: dict[str, str] = {}
    squashed: dict[str, str] = {}
    for name in free:
        exact.setdefault(name.lower(), name)
        if name.lower() not in all_aliases:
            squashed.setdefault(_squash(name), name)

    for spec in KEYS:
        if spec.name in chosen:
            continue
        for alias in spec.aliases:
            column = exact.get(alias.lower()) or squashed.get(_squash(alias))
            if column is not None:
                chosen[spec.name] = column
                break
    for spec in KEYS:
        if spec.derived_from and chosen.get(spec.name) is None and spec.name not in (explicit or {}):
            source = chosen.get(spec.derived_from)
            if source is not None:
                chosen[spec.name] = source
    return {spec.name: column for spec in KEYS if (column := chosen.get(spec.name)) is not None}
