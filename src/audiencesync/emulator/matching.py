"""The simulated user base: which uploaded members "match" a Facebook user.

Why a module of its own: the audience-health numbers (``approximate_count_*``,
``delivery_status`` 300, ``operation_status`` 411) depend on how many uploaded
people Facebook recognises, and tests need that to be realistic (not every
email is on Facebook), settable, and deterministic.

The rule:

* a *match group* is one key (``EMAIL``) or a combination of keys joined by
  ``+`` (``FN+LN+ZIP``); each group has a *share* in [0, 1];
* a group applies to a member when the member has a non-empty value for every
  key of the group; the group's value is decided by a keyed hash of
  (seed, group, value): it matches when the hash, read as a fraction of
  2**64, is below the share. So one value always gets the same answer,
  whatever the upload order, in every audience that uses the same shares;
  raising a share only adds matches;
* a member matches when ANY applicable group matches (a row with EMAIL and
  PHONE matches more often than an email alone).

The keyed hash is BLAKE2b (keyed with the seed, personalised with the group).
Values that are already 64 hex digits (SHA-256 digests, i.e. every hashed key
when ``strict_hashes`` is on) are uniformly distributed, so for them the
emulator takes their first 64 bits instead (XORed together for a key group)
and XORs a secret derived from the seed and the group: same properties, and
whole columns are decoded at C speed on the upload hot path. Either way one
value (one tuple of values, for a group) always gets the same answer.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from collections.abc import Iterable, Mapping
from itertools import compress
from operator import itemgetter, xor
from typing import Any

from .members import Identity

# Realistic defaults (an emulator choice, see docs/emulator.md): roughly what customer-file
# uploads achieve. EXTERN_ID alone never matches (it only refers back to people matched by
# other keys in earlier uploads); a row with EXTERN_ID and an email matches through the email.
DEFAULT_MATCH_SHARES: dict[str, float] = {
    "EMAIL": 0.6,
    "PHONE": 0.5,
    "MADID": 0.7,
    "EXTERN_ID": 0.0,
    "UID": 0.95,
    "APPUID": 0.9,
    "PAGEUID": 0.95,
    "FN+LN+ZIP": 0.4,
    "FN+LN+CT+ST": 0.35,
    "FN+LN+DOBY+DOBM+DOBD": 0.3,
}
DEFAULT_MATCH_SEED = "audiencesync-emulator"

_SCALE = 1 << 64


def parse_group(spec: str, known_keys: Iterable[str]) -> tuple[str, ...]:
    """``"fn + ln+ZIP"`` → ``("FN", "LN", "ZIP")``; raises ``ValueError`` on unknown keys."""
    known = set(known_keys)
    keys = tuple(dict.fromkeys(k.strip().upper() for k in str(spec).split("+")))
    if not keys or any(not k for k in keys):
        raise ValueError(f"bad match group {spec!r}")
    bad = [k for k in keys if k not in known]
    if bad:
        raise ValueError(f"unknown key(s) {bad} in match group {spec!r}")
    return keys


def check_shares(shares: Any, known_keys: Iterable[str], *, allow_null: bool) -> dict[str, float | None]:
    """Validate a ``{"GROUP": share}`` mapping from an admin request; keys normalised."""
    if not isinstance(shares, dict):
        raise ValueError("match_shares must be an object of {GROUP: share}")
    out: dict[str, float | None] = {}
    for spec, share in shares.items():
        name = "+".join(parse_group(spec, known_keys))
        if share is None:
            if not allow_null:
                raise ValueError(f"match share of {name} must be a number in [0, 1]")
            out[name] = None
            continue
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ValueError(f"match share of {name} must be a number in [0, 1]")
        out[name] = float(share)
    return out


class Matcher:
    """Decides whether a member identity matches; built for one (shares, seed) pair."""

    def __init__(self, shares: Mapping[str, float], seed: str) -> None:
        self.shares = dict(shares)
        self.seed = seed
        self.signature = (seed, tuple(sorted(self.shares.items())))
        key = hashlib.blake2b(seed.encode()).digest()[:32]
        self._groups: list[tuple[tuple[str, ...], int, Any, int]] = []
        for spec, share in sorted(self.shares.items()):
            if share <= 0:
                continue
            keys = tuple(spec.split("+"))
            threshold = _SCALE if share >= 1 else int(share * _SCALE)
            hasher = hashlib.blake2b(digest_size=8, key=key, person=hashlib.md5(spec.encode()).digest()[:16])
            salt = int.from_bytes(hashlib.blake2b(spec.encode(), digest_size=8, key=key).digest(), "big")
            self._groups.append((keys, threshold, hasher, salt))
        # per member shape (sorted key names): [(value indexes of the group, threshold, hasher, salt)]
        self._plans: dict[tuple[str, ...], list[tuple[tuple[int, ...], int, Any, int]]] = {}

    def _plan(self, shape: tuple[str, ...]) -> list[tuple[tuple[int, ...], int, Any, int]]:
        pos = {k: i for i, k in enumerate(shape)}
        plan = []
        for keys, threshold, hasher, salt in self._groups:
            if all(k in pos for k in keys):
                plan.append((tuple(pos[k] for k in keys), threshold, hasher, salt))
        # single keys first (cheapest), then the higher shares (earliest exit)
        plan.sort(key=lambda p: (len(p[0]) > 1, -p[1]))
        self._plans[shape] = plan
        return plan

    def matches(self, ident: Identity) -> bool:
        return self.count_values(ident[0], [ident[1]]) == 1

    def count(self, idents: Iterable[Identity]) -> int:
        """How many of ``idents`` match."""
        by_shape: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for shape, values in idents:
            rows = by_shape.get(shape)
            if rows is None:
                by_shape[shape] = [values]
            else:
                rows.append(values)
        return sum(self.count_values(shape, rows) for shape, rows in by_shape.items())

    def count_values(self, shape: tuple[str, ...], rows: list[tuple[str, ...]]) -> int:
        """How many value tuples of one shape match: group by group, column by column (the upload hot path)."""
        plan = self._plans.get(shape)
        if plan is None:
            plan = self._plan(shape)
        total = 0
        pending = rows
        for idx, threshold, hasher, salt in plan:
            if not pending:
                break
            if threshold >= _SCALE:
                return total + len(pending)
            if len(idx) == 1:
                col = list(map(itemgetter(idx[0]), pending))
                prefixes = _hex_prefixes(col)
                if prefixes is not None:
                    miss = [(x ^ salt) >= threshold for x in prefixes]
                else:
                    miss = [_single(hasher, salt, v) >= threshold for v in col]
            else:
                columns = [_hex_prefixes(list(map(itemgetter(i), pending))) for i in idx]
                if all(c is not None for c in columns):
                    combined = columns[0]
                    for column in columns[1:]:
                        combined = list(map(xor, combined, column))  # type: ignore[arg-type]
                    miss = [(x ^ salt) >= threshold for x in combined]  # type: ignore[union-attr]
                else:
                    getter = itemgetter(*idx)
                    miss = [_group(hasher, salt, getter(row)) >= threshold for row in pending]
            n = miss.count(False)
            if n:
                total += n
                pending = list(compress(pending, miss))
        return total


def _keyed(hasher: Any, value: str) -> int:
    h = hasher.copy()
    h.update(value.encode())
    return int.from_bytes(h.digest(), "big")


def _hex_prefixes(col: list[str]) -> list[int] | None:
    """The first 8 bytes (little-endian) of each value when EVERY value is 64 hex digits, else ``None``.

    One ``bytes.fromhex`` over the joined column: C speed for the common case (SHA-256 digests).
    """
    if not col or set(map(len, col)) != {64}:
        return None
    try:
        blob = bytes.fromhex("".join(col))
    except (ValueError, TypeError):
        return None
    if len(blob) != 32 * len(col):  # fromhex skips whitespace: not all plain hex
        return None
    words = array("Q")
    words.frombytes(blob)
    if sys.byteorder != "little":
        words.byteswap()
    return words[::4].tolist()


def _prefix(value: str) -> int | None:
    """What ``_hex_prefixes`` gives for one value (``None`` when it is not 64 hex digits)."""
    if len(value) == 64:
        try:
            return int.from_bytes(bytes.fromhex(value[:16]), "little")
        except ValueError:
            pass
    return None


def _single(hasher: Any, salt: int, value: str) -> int:
    """One value of a single-key group: its prefix XOR the salt when it is 64 hex, else keyed BLAKE2b."""
    prefix = _prefix(value)
    return prefix ^ salt if prefix is not None else _keyed(hasher, value)


def _group(hasher: Any, salt: int, values: tuple[str, ...]) -> int:
    """A key group's values: the XOR of their prefixes and the salt when all are 64 hex, else keyed BLAKE2b."""
    out = salt
    for value in values:
        prefix = _prefix(value)
        if prefix is None:
            return _keyed(hasher, "\x1f".join(values))
        out ^= prefix
    return out
