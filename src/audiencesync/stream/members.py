"""A person as a stream call describes them, turned into the hashed row the pipeline reads.

Hashing happens here, at accept time, before anything is written: the queue, the members table,
logs and metrics only ever see what `matchkeys.match_value` returns (SHA-256 hex, or the plain
MADID / external id Meta takes unhashed). Which trait feeds which key is `matchkeys.resolve_columns`,
the same alias resolution a CSV column goes through (`firstName`, `first_name`, `FirstName` alike).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from audiencesync import matchkeys

KEY_COLUMNS: dict[str, str] = {
    "EXTERN_ID": "external_id",
    "EMAIL": "email",
    "PHONE": "phone",
    "FN": "first_name",
    "LN": "last_name",
    "FI": "first_initial",
    "GEN": "gender",
    "DOBY": "birth_year",
    "DOBM": "birth_month",
    "DOBD": "birth_day",
    "CT": "city",
    "ST": "state",
    "ZIP": "zip",
    "COUNTRY": "country",
    "MADID": "madid",
}
"""Meta key → column of `st.stream_members` (names the pipeline's alias table maps back to the key)."""

COLUMNS: tuple[str, ...] = tuple(KEY_COLUMNS.values())
IDENTITY_COLUMNS = ("email", "phone", "madid")


class CallError(ValueError):
    """A call that cannot become a membership change; the message says why, never with a value."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Change:
    """One person entering (`member`) or leaving an audience, with their hashed keys."""

    audience_key: str
    pk: str
    member: bool
    values: Mapping[str, str]


@dataclass
class Person:
    """What one call says about someone: ids and raw traits (raw values live only in this object)."""

    user_id: str | None = None
    anonymous_id: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)

    def add(self, traits: Mapping[str, Any] | None) -> None:
        """Earlier sources win: callers add the most specific traits first."""
        for name, value in (traits or {}).items():
            if isinstance(name, str) and not _empty(value):
                self.traits.setdefault(name, value)


@lru_cache(maxsize=4096)
def keys_of_trait(name: str) -> tuple[str, ...]:
    """The keys a trait name feeds (a whole birth date feeds three), by the match-key aliases."""
    return tuple(k for k in matchkeys.resolve_columns([name]) if k in KEY_COLUMNS)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


@dataclass
class Hashed:
    """A person's sent values by members-table column, and the invalid ones by (key, reason)."""

    values: dict[str, str]
    invalid: Counter[tuple[str, str]]


@lru_cache(maxsize=4096)
def _keys_of_traits(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(key, trait name) pairs for one call's trait names: calls repeat a few shapes, and resolving
    the aliases was most of the cost of accepting a call."""
    return tuple((key, name) for key, name in matchkeys.resolve_columns(list(names)).items() if key in KEY_COLUMNS)


def hash_traits(traits: Mapping[str, Any], *, default_country: str | None = None) -> Hashed:
    """Normalize and hash every trait that names a key; invalid values are dropped and counted."""
    raw = {key: traits[name] for key, name in _keys_of_traits(tuple(traits))}
    country = raw.get("COUNTRY") or default_country
    values: dict[str, str] = {}
    invalid: Counter[tuple[str, str]] = Counter()
    for key, value in raw.items():
        sent = matchkeys.match_value(key, value, country=country)
        if sent is not None:
            values[KEY_COLUMNS[key]] = str(sent)
            continue
        reason = matchkeys.explain(key, value, country=country)
        if reason:
            invalid[(key, reason)] += 1
    return Hashed(values, invalid)


def person_key(person: Person, values: Mapping[str, str]) -> str:
    """The member's primary key: a SHA-256 of its strongest id, so even a pk never holds a raw id."""
    if person.user_id:
        basis = f"user:{person.user_id}"
    elif person.anonymous_id:
        basis = f"anon:{person.anonymous_id}"
    else:
        column = next((c for c in IDENTITY_COLUMNS if values.get(c)), None)
        if column is None:
            raise CallError("no userId, anonymousId, email, phone or mobile ad id to know the person by")
        basis = f"{column}:{values[column]}"
    return hashlib.sha256(basis.encode()).hexdigest()


def changes_for(
    person: Person, memberships: Mapping[str, bool], default_countries: Mapping[str, str | None]
) -> tuple[list[Change], Counter[tuple[str, str]]]:
    """The changes one call makes: one per audience it names, hashed with that audience's country.

    `default_countries` gives each audience's `default_country`, the country phone numbers, states
    and ZIP codes are read in when the person's own traits do not say.
    """
    by_country: dict[str | None, Hashed] = {}
    changes: list[Change] = []
    invalid: Counter[tuple[str, str]] = Counter()
    for key, member in memberships.items():
        country = default_countries.get(key)
        if country not in by_country:
            hashed = hash_traits(person.traits, default_country=country)
            if person.user_id:
                extern = matchkeys.match_value("EXTERN_ID", person.user_id)
                if extern is not None:
                    hashed.values["external_id"] = str(extern)
            by_country[country] = hashed
            invalid.update(hashed.invalid)
        values = by_country[country].values
        changes.append(Change(key, person_key(person, values), member, values))
    return changes, invalid
