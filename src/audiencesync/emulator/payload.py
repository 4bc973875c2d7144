"""Validation of a ``/users``-style ``payload``: schema, rows, hashes, invalid entries.

Why a module of its own: these are the rules a client most often gets wrong
(spec §2.4, §2.6), and they are pure functions of the payload, shared by
``/users`` (add and remove), ``/usersreplace`` and ``/usersofanyaudience``.
The output is ready-to-store identities (see ``members.py``).

Rules implemented:

* ``schema`` is a string (single-key, data source ``HASHES_OR_USER_IDS``) or a
  list of keys (multi-key, ``MULTI_HASHES``). Single-key aliases are
  normalised: ``EMAIL_SHA256``→``EMAIL``, ``PHONE_SHA256``→``PHONE``,
  ``MOBILE_ADVERTISER_ID``→``MADID``; ``UID`` stays.
* single-key ``data`` is a flat list or a list of one-element lists; multi-key
  rows must have exactly as many values as the schema has keys, else the whole
  request fails with ``(#100) Data is missing or does not match schema``.
* hashed keys must be 64 lowercase hex when ``strict_hashes`` is on; a row with
  a bad value is an *invalid entry* (counted, up to N samples, not stored) and
  the rest of the request still applies. ``LOOKALIKE_VALUE`` must be a
  non-negative number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Any

from . import errors
from .members import Attrs, Identity

SINGLE_ALIASES = {"EMAIL_SHA256": "EMAIL", "PHONE_SHA256": "PHONE", "MOBILE_ADVERTISER_ID": "MADID"}
HASHED_KEYS = frozenset(
    {"EMAIL", "PHONE", "GEN", "DOBY", "DOBM", "DOBD", "LN", "FN", "FI", "CT", "ST", "ZIP", "COUNTRY"}
)
PLAIN_KEYS = frozenset({"EXTERN_ID", "MADID", "APPUID", "PAGEUID", "UID"})
ATTRIBUTE_KEYS = frozenset(
    {
        "LOOKALIKE_VALUE",
        "DATA_PROCESSING_OPTIONS",
        "DATA_PROCESSING_OPTIONS_COUNTRY",
        "DATA_PROCESSING_OPTIONS_STATE",
    }
)
IDENTITY_KEYS = HASHED_KEYS | PLAIN_KEYS
ALL_KEYS = IDENTITY_KEYS | ATTRIBUTE_KEYS

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX_CHARS = b"0123456789abcdef"

DATA_SOURCE_SUBTYPE = {"single": "HASHES_OR_USER_IDS", "multi": "MULTI_HASHES"}


@dataclass(frozen=True)
class Schema:
    kind: str  # "single" | "multi"
    keys: tuple[str, ...]  # normalised key names, in the column order of the request

    @property
    def data_source(self) -> str:
        return DATA_SOURCE_SUBTYPE[self.kind]

    @property
    def has_value(self) -> bool:
        return "LOOKALIKE_VALUE" in self.keys


@dataclass
class PreparedRows:
    schema: Schema
    rows: list[tuple[Identity, Attrs]]
    num_received: int
    num_invalid: int
    samples: dict[str, str]
    shape: tuple[str, ...] | None = None  # set when every row has exactly these identity keys


def schema_mismatch(detail: str) -> errors.GraphError:
    return errors.invalid_param(
        f"Data is missing or does not match schema: {detail}",
        title="Data does not match schema",
        msg=detail,
    )


def parse_schema(value: Any) -> Schema:
    if value is None or value == "" or value == []:
        raise errors.invalid_param("Missing schema", msg="payload.schema is required.")
    if isinstance(value, str):
        key = value.strip().upper()
        key = SINGLE_ALIASES.get(key, key)
        if key not in IDENTITY_KEYS:
            raise errors.invalid_param(f"Invalid schema: {value}", msg=f"Unsupported schema key {value!r}.")
        return Schema("single", (key,))
    if isinstance(value, list):
        keys: list[str] = []
        for item in value:
            if not isinstance(item, str):
                raise errors.invalid_param("Invalid schema", msg="payload.schema must list key names.")
            key = item.strip().upper()
            key = SINGLE_ALIASES.get(key, key)
            if key not in ALL_KEYS:
                raise errors.invalid_param(f"Invalid schema: {item}", msg=f"Unsupported schema key {item!r}.")
            if key in keys:
                raise errors.invalid_param(f"Invalid schema: duplicate key {key}")
            keys.append(key)
        if not any(k in IDENTITY_KEYS for k in keys):
            raise errors.invalid_param("Invalid schema", msg="The schema has no identifying key.")
        return Schema("multi", tuple(keys))
    raise errors.invalid_param("Invalid schema", msg="payload.schema must be a string or a list.")


def _as_str(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _lookalike_value(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        num = float(v)
    elif isinstance(v, str) and v.strip():
        try:
            num = float(v)
        except ValueError:
            return None
    else:
        return None
    if num != num or num < 0 or num in (float("inf"),):
        return None
    return num


def prepare(
    payload: Any,
    *,
    strict_hashes: bool,
    max_rows: int,
    max_samples: int,
    removal: bool,
) -> PreparedRows:
    """Validate ``payload`` and turn its rows into identities. Raises ``GraphError``."""
    if not isinstance(payload, dict):
        raise errors.missing_params("payload")
    schema = parse_schema(payload.get("schema"))
    data = payload.get("data")
    if data is None:
        raise errors.invalid_param("Missing data", msg="payload.data is required.")
    if not isinstance(data, list):
        raise schema_mismatch("payload.data must be a list of rows")
    if not data:
        raise errors.invalid_param("Empty data", msg="payload.data must contain at least one row.")
    if len(data) > max_rows:
        raise errors.invalid_param(
            f"Too many users in a single request: {len(data)} (maximum {max_rows})",
            title="Too Many Users",
            msg=f"A single request can add or remove at most {max_rows} records; split the upload into "
            "several requests of the same session.",
        )
    if schema.keys == ("UID",) and not payload.get("app_ids"):
        raise errors.invalid_param("app_ids is required for the UID schema")
    if "APPUID" in schema.keys and not payload.get("app_ids"):
        raise errors.invalid_param("app_ids is required for the APPUID schema")
    if "PAGEUID" in schema.keys and not payload.get("page_ids"):
        raise errors.invalid_param("page_ids is required for the PAGEUID schema")

    if schema.kind == "single":
        return _prepare_single(schema, data, strict_hashes, max_samples)
    return _prepare_multi(schema, data, strict_hashes, max_samples, removal)


def _all_valid(values: list[Any], hashed: bool) -> bool:
    """C-speed check that every value is a non-empty str (and 64 lowercase hex when ``hashed``)."""
    try:
        blob = "".join(values)  # TypeError if any value is not a str
        lens = set(map(len, values))
        if hashed:
            return lens == {64} and not blob.encode("ascii").translate(None, _HEX_CHARS)
        return 0 not in lens
    except (TypeError, UnicodeEncodeError):
        return False


def _prepare_single(schema: Schema, data: list[Any], strict: bool, max_samples: int) -> PreparedRows:
    key = schema.keys[0]
    check = strict and key in HASHED_KEYS
    key_t = (key,)
    if _all_valid(data, check):
        rows_fast = list(zip(zip(repeat(key_t), zip(data)), repeat(None)))
        return PreparedRows(schema, rows_fast, len(data), 0, {}, shape=key_t)
    values: list[str] = []
    for i, row in enumerate(data):
        if isinstance(row, list):
            if len(row) != 1:
                raise schema_mismatch(f"row {i} has {len(row)} values, the schema has 1 key")
            row = row[0]
        if isinstance(row, dict | list):
            raise schema_mismatch(f"row {i} is not a value")
        values.append(_as_str(row))
    rows: list[tuple[Identity, Attrs]] = []
    invalid = 0
    samples: dict[str, str] = {}
    for v in values:
        if not v or (check and _HEX64.fullmatch(v) is None):
            invalid += 1
            if v and len(samples) < max_samples:
                samples[v] = key
            continue
        rows.append(((key_t, (v,)), None))
    return PreparedRows(schema, rows, len(data), invalid, samples, shape=key_t)


def _prepare_multi(schema: Schema, data: list[Any], strict: bool, max_samples: int, removal: bool) -> PreparedRows:
    keys = schema.keys
    n = len(keys)
    id_cols = sorted((i for i, k in enumerate(keys) if k in IDENTITY_KEYS), key=lambda i: keys[i])
    id_pairs = [(keys[i], i) for i in id_cols]
    hashed_cols = [i for i in id_cols if keys[i] in HASHED_KEYS] if strict else []
    plain_cols = [i for i in id_cols if i not in hashed_cols]
    attr_cols = [(keys[i], i) for i, k in enumerate(keys) if k in ATTRIBUTE_KEYS]

    for i, row in enumerate(data):
        if type(row) is not list or len(row) != n:
            got = len(row) if isinstance(row, list) else "no"
            raise schema_mismatch(f"row {i} has {got} values, the schema has {n} keys")

    # Fast path (the common case): no attributes, every identity value present and valid.
    if not attr_cols:
        hashed_ok = not hashed_cols or _all_valid([row[i] for row in data for i in hashed_cols], True)
        plain_ok = not plain_cols or _all_valid([row[i] for row in data for i in plain_cols], False)
        if hashed_ok and plain_ok:
            id_keys = tuple(keys[i] for i in id_cols)
            if len(id_cols) == 1:
                values: Any = zip(map(itemgetter(id_cols[0]), data))
            else:
                values = map(itemgetter(*id_cols), data)
            rows_fast = list(zip(zip(repeat(id_keys), values), repeat(None)))
            return PreparedRows(schema, rows_fast, len(data), 0, {}, shape=id_keys)

    rows: list[tuple[Identity, Attrs]] = []
    invalid = 0
    samples: dict[str, str] = {}
    id_set = set(id_cols)
    shapes: dict[tuple[str, ...], tuple[str, ...]] = {}
    for row in data:
        row = [_as_str(v) if j in id_set else v for j, v in enumerate(row)]
        present = [(k, i) for k, i in id_pairs if row[i]]
        row_keys = tuple(k for k, _ in present)
        ident = (shapes.setdefault(row_keys, row_keys), tuple(row[i] for _, i in present))
        bad: str | None = None
        if not present:
            bad = ""
        else:
            for i in hashed_cols:
                v = row[i]
                if v and _HEX64.fullmatch(v) is None:
                    bad = v
                    if len(samples) < max_samples:
                        samples[v] = keys[i]
                    break
        attrs: Attrs = None
        if bad is None and attr_cols:
            attrs = {}
            for k, i in attr_cols:
                v = row[i]
                if k == "LOOKALIKE_VALUE":
                    if v is None or v == "":
                        if not removal:
                            bad = ""
                        continue
                    num = _lookalike_value(v)
                    if num is None:
                        if removal:
                            continue
                        bad = _as_str(v)
                        if bad and len(samples) < max_samples:
                            samples[bad] = k
                        break
                    attrs[k] = int(num) if num.is_integer() else num
                elif v not in (None, ""):
                    attrs[k] = v
            if removal or not attrs:
                attrs = None
        if bad is not None:
            invalid += 1
            continue
        rows.append((ident, attrs))
    return PreparedRows(schema, rows, len(data), invalid, samples)
