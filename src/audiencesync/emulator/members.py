"""Audience membership: the set algebra behind ``/users``, ``/usersreplace`` and removals.

Why a module of its own: membership is the hot path (a 10,000-row, 5-key
upload must be answered in well under 200 ms), and its semantics are the part
other engineers' tests read back through ``/_emulator/audiences/{id}/members``:

* a member is one uploaded row reduced to its NON-EMPTY identity keys, stored
  as ``(keys, values)``: a tuple of key names sorted alphabetically (so column
  order in the schema does not matter) and the tuple of their values. Two
  tuples per member keep allocation (and garbage-collector work) low;
* attributes (``LOOKALIKE_VALUE``, data-processing options) ride along but are
  not identity: re-adding the identity updates them;
* adding is a set operation (idempotent);
* a removal row removes every member whose values equal the removal row's on
  all of the removal row's non-empty identity keys (so an ``EXTERN_ID``-only
  removal removes every member with that extern id).

With a ``matcher`` (``matching.Matcher``) the set also keeps ``matched``, the
number of members the simulated user base recognises, up to date: only new
identities are checked on add, only removed ones on removal.

The fast removal path is an exact dict lookup; a ``(key, value) -> members``
index is built lazily only when a removal row is narrower than some stored
member, so plain uploads never pay for it.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

Identity = tuple[tuple[str, ...], tuple[str, ...]]  # (sorted key names, their values)
Attrs = dict[str, Any] | None


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector during a bulk upload.

    Building 10,000 members allocates tens of thousands of tuples, which would
    trigger collections that scan every stored member; none of these objects can
    form cycles, so pausing is safe and keeps large uploads fast.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Counts(Protocol):
    signature: Any

    def count(self, idents: Iterable[Identity]) -> int: ...

    def count_values(self, shape: tuple[str, ...], rows: list[tuple[str, ...]]) -> int: ...


class MemberSet:
    __slots__ = ("_index", "matched", "matcher", "members", "shapes")

    def __init__(self, matcher: Counts | None = None) -> None:
        self.members: dict[Identity, Attrs] = {}
        self.shapes: Counter[tuple[str, ...]] = Counter()
        self._index: dict[tuple[str, str], set[Identity]] | None = None
        self.matcher = matcher
        self.matched = 0

    def set_matcher(self, matcher: Counts | None) -> None:
        """Use ``matcher`` from now on and recount every member with it."""
        self.matcher = matcher
        self.matched = matcher.count(self.members) if matcher is not None else 0

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[tuple[Identity, Attrs]]:
        return iter(self.members.items())

    def clear(self) -> None:
        self.members.clear()
        self.shapes.clear()
        self._index = None
        self.matched = 0

    def add(self, rows: Iterable[tuple[Identity, Attrs]], shape: tuple[str, ...] | None = None) -> int:
        """Add rows; returns how many identities were new.

        ``shape`` (the identity keys shared by every row, when known) skips per-row bookkeeping.
        """
        members = self.members
        matcher = self.matcher
        if shape is not None and self._index is None:
            before = len(members)
            if matcher is None:
                for ident, attrs in rows:
                    if attrs is not None or ident not in members:
                        members[ident] = attrs
            else:
                fresh: list[tuple[str, ...]] = []
                for ident, attrs in rows:
                    if ident not in members:
                        members[ident] = attrs
                        fresh.append(ident[1])
                    elif attrs is not None:
                        members[ident] = attrs
                if fresh:
                    self.matched += matcher.count_values(shape, fresh)
            new = len(members) - before
            if new:
                self.shapes[shape] += new
            return new
        added: list[Identity] | None = [] if matcher is not None else None
        shapes = self.shapes
        index = self._index
        new = 0
        for ident, attrs in rows:
            if ident in members:
                if attrs is not None:
                    members[ident] = attrs
                continue
            members[ident] = attrs
            new += 1
            shapes[ident[0]] += 1
            if added is not None:
                added.append(ident)
            if index is not None:
                for pair in zip(*ident, strict=True):
                    bucket = index.get(pair)
                    if bucket is None:
                        index[pair] = {ident}
                    else:
                        bucket.add(ident)
        if added and matcher is not None:
            self.matched += matcher.count(added)
        return new

    def _build_index(self) -> dict[tuple[str, str], set[Identity]]:
        index: dict[tuple[str, str], set[Identity]] = {}
        for ident in self.members:
            for pair in zip(*ident, strict=True):
                bucket = index.get(pair)
                if bucket is None:
                    index[pair] = {ident}
                else:
                    bucket.add(ident)
        self._index = index
        return index

    def _discard(self, ident: Identity) -> None:
        del self.members[ident]
        shape = ident[0]
        left = self.shapes[shape] - 1
        if left:
            self.shapes[shape] = left
        else:
            del self.shapes[shape]
        if self._index is not None:
            for pair in zip(*ident, strict=True):
                bucket = self._index.get(pair)
                if bucket is not None:
                    bucket.discard(ident)
                    if not bucket:
                        del self._index[pair]

    def remove(self, idents: Iterable[Identity]) -> int:
        """Remove every member matching each removal identity on all its keys; returns how many left."""
        gone: list[Identity] | None = [] if self.matcher is not None else None
        removed = self._remove(idents, gone)
        if gone and self.matcher is not None:
            self.matched -= self.matcher.count(gone)
        return removed

    def _remove(self, idents: Iterable[Identity], gone: list[Identity] | None) -> int:
        removed = 0
        exact_ok: dict[tuple[str, ...], bool] = {}
        for ident in idents:
            if not ident or not ident[0]:
                continue
            shape = ident[0]
            fast = exact_ok.get(shape)
            if fast is None:
                wanted = set(shape)
                fast = not any(wanted < set(s) for s in self.shapes)
                exact_ok[shape] = fast
            if fast:
                if ident in self.members:
                    self._discard(ident)
                    removed += 1
                    if gone is not None:
                        gone.append(ident)
                continue
            index = self._index if self._index is not None else self._build_index()
            buckets = [index.get(pair) for pair in zip(*ident, strict=True)]
            if any(b is None for b in buckets):
                continue
            buckets.sort(key=len)  # type: ignore[arg-type]
            hits = set(buckets[0])  # type: ignore[arg-type]
            for b in buckets[1:]:
                hits &= b  # type: ignore[operator]
                if not hits:
                    break
            for hit in hits:
                self._discard(hit)
                removed += 1
                if gone is not None:
                    gone.append(hit)
            # a narrower shape may have disappeared; recompute lazily next time
            exact_ok.clear()
        return removed

    def replace_with(self, other: MemberSet) -> None:
        self.members = other.members
        self.shapes = other.shapes
        self._index = None
        if self.matcher is None:
            self.matched = 0
        elif other.matcher is not None and other.matcher.signature == self.matcher.signature:
            self.matched = other.matched
        else:
            self.matched = self.matcher.count(self.members)

    # ----------------------------------------------------------- views
    def as_dicts(self) -> list[dict[str, Any]]:
        out = []
        for ident, attrs in self.members.items():
            row: dict[str, Any] = dict(zip(*ident, strict=True))
            if attrs:
                row.update(attrs)
            out.append(row)
        return out

    def dump(self) -> list[list[Any]]:
        return [[list(ident[0]), list(ident[1]), attrs] for ident, attrs in self.members.items()]

    @classmethod
    def load(cls, rows: list[list[Any]]) -> MemberSet:
        ms = cls()
        ms.add(((tuple(keys), tuple(values)), attrs) for keys, values, attrs in rows)
        return ms
