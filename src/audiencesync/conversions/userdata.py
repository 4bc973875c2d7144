"""`user_data` and Limited Data Use for a chunk of events, through the shared match keys.

Every key is normalized and hashed by `audiencesync.matchkeys` in one vectorized pass per chunk (the
same code the audience sync uses, so an email matches the same way in both). This module only
decides which column feeds which key, renames keys to the Conversions API's field names, applies
the `email_identity` rule, builds `db` from the birth-date parts, and sets the LDU fields.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pyarrow as pa

from audiencesync import matchkeys
from audiencesync.conversions.mapping import NOT_IDENTITY
from audiencesync.conversions.settings import ConversionsSettings
from audiencesync.matchkeys.columns import resolve_columns

CAPI_FIELDS = {
    "EMAIL": "em",
    "PHONE": "ph",
    "FN": "fn",
    "LN": "ln",
    "GEN": "ge",
    "CT": "ct",
    "ST": "st",
    "ZIP": "zp",
    "COUNTRY": "country",
    "MADID": "madid",
    "EXTERN_ID": "external_id",
}
"""Match keys to Conversions API `user_data` fields (spec §5.2); `db` is built from DOBY/DOBM/DOBD."""

DOB_KEYS = ("DOBY", "DOBM", "DOBD")
DOB_PARTS = {"DOBY": "doby", "DOBM": "dobm", "DOBD": "dobd"}
"""Sent only when the date is incomplete (no `db`); Meta's SDK sends these hashed parts."""

LDU_COUNTRY_US = 1
LDU_STATE_CALIFORNIA = 1000
"""Meta's codes for `data_processing_options_country` / `_state`: the US, California, or geolocate."""

_HEX64 = re.compile(r"[0-9A-Fa-f]{64}")
NOT_A_HASH = "not_a_sha256_hash"
"""Reason for an `email_identity` value that is not an email and not already a SHA-256 hash."""


WANTED = frozenset({*CAPI_FIELDS, *DOB_KEYS})


def is_email_alias(column: str) -> bool:
    return resolve_columns([column]).get("EMAIL") == column


@dataclass
class KeyPlan:
    """Which input column(s) feed each key, decided once per set of columns."""

    sources: dict[str, list[str]] = field(default_factory=dict)
    email_passthrough: str | None = None

    @property
    def empty(self) -> bool:
        return not self.sources and self.email_passthrough is None


def plan_keys(columns: list[str], email_identity: str) -> KeyPlan:
    """Columns named as match-key aliases feed their key; several columns for one key are coalesced
    in alias order (`idfa` before `gaid`, `birth_year` before a whole `birthday`).

    `email_identity` names the email column. When it is an email alias (`email`, `email_address`), it
    is the only source of `em`, normalized and hashed; any other column is forwarded as given (a hash
    made upstream), and the ordinary email columns are then not used, as in mParticle's setting.
    """
    names = [c for c in columns if c not in NOT_IDENTITY]
    identity = next((c for c in names if c.lower() == email_identity.lower()), None)
    plan = KeyPlan()
    explicit: dict[str, str | None] = {}
    if is_email_alias(email_identity):
        if identity is not None:
            explicit["EMAIL"] = identity
    else:
        explicit["EMAIL"] = None
        if identity is not None:
            plan.email_passthrough = identity
            names.remove(identity)
    for key, column in resolve_columns(names, explicit).items():
        if key not in WANTED:
            continue
        plan.sources[key] = [column]
        if key == "EMAIL":
            continue
        while True:
            rest = [c for c in names if c not in plan.sources[key]]
            more = resolve_columns(rest, {"EMAIL": None}).get(key)
            if more is None:
                break
            plan.sources[key].append(more)
    return plan


@dataclass
class UserData:
    """The chunk's `user_data` per row (None where no key survived), LDU fields, and key counts."""

    rows: list[dict[str, Any] | None]
    ldu: list[dict[str, Any] | None]
    found: Counter[str] = field(default_factory=Counter)
    invalid: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))


def build_user_data(columns: dict[str, list[Any]], n: int, settings: ConversionsSettings) -> UserData:
    """Normalize and hash every key of the chunk at once; assemble each row's `user_data`."""
    plan = plan_keys(list(columns), settings.email_identity)
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    invalid: dict[str, Counter[str]] = defaultdict(Counter)
    country_hash: list[str | None] = [None] * n
    state_hash: list[str | None] = [None] * n
    if plan.sources:
        table, mapping = _key_table(columns, plan, n)
        result = matchkeys.match_table(table, columns=mapping, default_country=settings.default_country)
        for key, reasons in result.invalid.items():
            if key in WANTED and reasons:
                invalid[key].update(reasons)
        positions = result.table.column("_row").to_pylist()
        hashed = {k: result.table.column(k).to_pylist() for k in result.table.column_names if k in WANTED}
        for key, values in hashed.items():
            name = CAPI_FIELDS.get(key)
            if name is None:
                continue
            for pos, v in zip(positions, values, strict=True):
                if v is not None:
                    rows[pos][name] = v
        for key, target in (("COUNTRY", country_hash), ("ST", state_hash)):
            for pos, v in zip(positions, hashed.get(key, ()), strict=False):
                target[pos] = v
        dob = {k: hashed[k] for k in DOB_KEYS if k in hashed}
        if dob:
            _add_birth_date(rows, positions, dob, table, mapping)
    if plan.email_passthrough is not None:
        _pass_email_through(rows, columns[plan.email_passthrough], invalid)
    found: Counter[str] = Counter()
    for ud in rows:
        found.update(ud.keys())
    return UserData(
        rows=[ud or None for ud in rows],
        ldu=ldu_fields(settings, country_hash, state_hash),
        found=found,
        invalid=invalid,
    )


def _key_table(columns: dict[str, list[Any]], plan: KeyPlan, n: int) -> tuple[pa.Table, dict[str, str]]:
    """One text column per key (first non-blank of its sources); date parts may share one column."""
    arrays: dict[str, pa.Array] = {}
    mapping: dict[str, str] = {}
    for key, sources in plan.sources.items():
        name = sources[0] if len(sources) == 1 else f"__{key}"
        if name not in arrays:
            values = columns[sources[0]] if len(sources) == 1 else _coalesce([columns[s] for s in sources], n)
            arrays[name] = _text_array(values)
        mapping[key] = name
    return pa.table(arrays), mapping


def _text_array(values: list[Any]) -> pa.Array:
    """CSV columns are text already (blank is empty to matchkeys); other types are converted one by one."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([_as_text(v) for v in values], pa.string())


def _coalesce(sources: list[list[Any]], n: int) -> list[Any]:
    out: list[Any] = [None] * n
    for values in reversed(sources):
        for i, v in enumerate(values):
            if _as_text(v) is not None:
                out[i] = v
    return out


def _as_text(value: Any) -> str | None:
    """Keys arrive as text from CSV and as numbers or dates from JSON and Parquet; matchkeys takes text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, float) and value == value and value == int(value):
        return str(int(value))
    if isinstance(value, list | tuple):
        first = next((t for t in (_as_text(v) for v in value) if t is not None), None)
        return first
    text = str(value)
    return text if text.strip() else None


def _add_birth_date(
    rows: list[dict[str, Any]],
    positions: list[int],
    dob: dict[str, list[Any]],
    table: pa.Table,
    mapping: dict[str, str],
) -> None:
    """`db` is the hash of YYYYMMDD; it needs the normalized parts, which the hashes no longer give."""
    complete = all(k in dob for k in DOB_KEYS)
    raw = {k: table.column(mapping[k]).to_pylist() for k in DOB_KEYS} if complete else {}
    for i, pos in enumerate(positions):
        if complete and all(dob[k][i] is not None for k in DOB_KEYS):
            parts = [matchkeys.normalize(k, raw[k][pos]) for k in DOB_KEYS]
            if all(parts):
                rows[pos]["db"] = _hash_date("".join(parts))  # type: ignore[arg-type]
                continue
        for key, values in dob.items():
            if values[i] is not None:
                rows[pos][DOB_PARTS[key]] = values[i]


@lru_cache(maxsize=65_536)
def _hash_date(yyyymmdd: str) -> str:
    from audiencesync.matchkeys import sha256_hex

    return sha256_hex(yyyymmdd)


def _pass_email_through(rows: list[dict[str, Any]], values: list[Any], invalid: dict[str, Counter[str]]) -> None:
    """Forward an upstream hash as given (lowercase hex, as Meta wants); never forward anything else.

    mParticle forwarded a non-email identity unhashed. A value that is not a SHA-256 hash could be a
    raw email or phone, and sending it would put personal data on the wire, so it is counted instead.
    """
    for pos, v in enumerate(values):
        text = _as_text(v)
        if text is None:
            continue
        text = text.strip()
        if _HEX64.fullmatch(text):
            rows[pos]["em"] = text.lower()
        else:
            invalid["EMAIL"][NOT_A_HASH] += 1


@lru_cache(maxsize=1)
def _located_hashes() -> tuple[str, str]:
    us = matchkeys.match_value("COUNTRY", "US")
    california = matchkeys.match_value("ST", "CA", country="US")
    return str(us), str(california)


def ldu_fields(
    settings: ConversionsSettings, country_hash: list[str | None], state_hash: list[str | None]
) -> list[dict[str, Any] | None]:
    """Limited Data Use per event: `never` sends nothing; `always` flags every event; `when_located`
    flags only events whose member's country (its own, else `default_country`) and state are known.

    The codes are Meta's: country 1 for the US, state 1000 for California, 0 to let Meta geolocate.
    """
    if settings.ldu == "never":
        return [None] * len(country_hash)
    us_hash, ca_hash = _located_hashes()
    default_us = settings.default_country == "US"
    california, us, elsewhere = _ldu(LDU_COUNTRY_US, LDU_STATE_CALIFORNIA), _ldu(LDU_COUNTRY_US, 0), _ldu(0, 0)
    out: list[dict[str, Any] | None] = []
    for c, s in zip(country_hash, state_hash, strict=True):
        country_known = c is not None or settings.default_country is not None
        if settings.ldu == "when_located" and not (country_known and s is not None):
            out.append(None)
        elif not (c == us_hash if c is not None else default_us):
            out.append(elsewhere)
        else:
            out.append(california if s == ca_hash else us)
    return out


def _ldu(country: int, state: int) -> dict[str, Any]:
    """One shared (never mutated) mapping per code pair; events copy its items."""
    return {
        "data_processing_options": ["LDU"],
        "data_processing_options_country": country,
        "data_processing_options_state": state,
    }
