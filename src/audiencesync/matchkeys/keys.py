"""The one table that declares every Meta match key.

Each row says what the key is called in Meta's schema, which source columns feed it, how it is sent,
its scalar normalizer and its vectorized fast path. Adding a key is adding a row here; nothing else
in the package lists keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from audiencesync.matchkeys import dates, fastpaths, geo, numbers, text
from audiencesync.matchkeys.context import Context
from audiencesync.matchkeys.fastpaths import FastPath
from audiencesync.matchkeys.phone import phone
from audiencesync.matchkeys.phone_fast import phone_fast

Sent = Literal["sha256", "plain", "number"]
Normalizer = Callable[[Any, Context], str]

WHOLE_DATE_ALIASES = ("birthday", "date_of_birth", "dob", "dateOfBirth")


@dataclass(frozen=True, slots=True)
class KeySpec:
    """How one key is found, normalized and sent.

    `aliases` are tried in order (first match wins), so specific columns beat whole-date ones.
    `uses_country` keys are normalized per (value, member country). `distinct` says the key's values
    repeat enough that normalizing each distinct value once beats a row-wise fast path.
    """

    name: str
    aliases: tuple[str, ...]
    sent: Sent
    normalize: Normalizer
    fast: FastPath | None = None
    uses_country: bool = False
    accepts_dates: bool = False
    distinct: bool = True
    derived_from: str | None = None
    few_normalized: bool = False
    """Its normalized values come from a small set (years, months, days, genders), so each is hashed once."""

    @property
    def hashed(self) -> bool:
        return self.sent == "sha256"


KEYS: tuple[KeySpec, ...] = (
    KeySpec("EMAIL", ("email", "email_address", "emails"), "sha256", text.email,
            fast=fastpaths.email_fast, distinct=False),
    KeySpec("PHONE", ("phone", "phone_number", "phonenumber", "mobile"), "sha256", phone,
            fast=phone_fast, uses_country=True, distinct=False),
    KeySpec("FN", ("fn", "first_name", "firstname", "first", "given_name"), "sha256", text.name,
            fast=fastpaths.name_fast),
    KeySpec("LN", ("ln", "last_name", "lastname", "last", "family_name", "surname"), "sha256", text.name,
            fast=fastpaths.name_fast),
    KeySpec("FI", ("fi", "first_initial"), "sha256", text.first_initial,
            fast=fastpaths.first_initial_fast, derived_from="FN"),
    KeySpec("GEN", ("gen", "gender", "sex"), "sha256", text.gender, few_normalized=True),
    KeySpec("DOBY", ("doby", "birth_year", *WHOLE_DATE_ALIASES), "sha256", dates.birth_year,
            fast=fastpaths.birth_year_fast, accepts_dates=True, few_normalized=True),
    KeySpec("DOBM", ("dobm", "birth_month", *WHOLE_DATE_ALIASES), "sha256", dates.birth_month,
            accepts_dates=True, few_normalized=True),
    KeySpec("DOBD", ("dobd", "birth_day", *WHOLE_DATE_ALIASES), "sha256", dates.birth_day,
            accepts_dates=True, few_normalized=True),
    KeySpec("CT", ("ct", "city", "address_city"), "sha256", geo.city, fast=fastpaths.city_fast),
    KeySpec("ST", ("st", "state", "address_state", "region"), "sha256", geo.state,
            fast=fastpaths.state_fast, uses_country=True),
    KeySpec("ZIP", ("zip", "zip_code", "zipcode", "postal_code", "postcode"), "sha256", geo.postal_code,
            fast=fastpaths.zip_fast, uses_country=True),
    KeySpec("COUNTRY", ("country", "country_code", "countryCode"), "sha256", geo.country, few_normalized=True),
    KeySpec("MADID", ("madid", "idfa", "gaid", "advertising_id", "mobile_ad_id", "ios_idfa",
                      "android_advertising_id"), "plain", text.madid, fast=fastpaths.madid_fast,
            distinct=False),
    KeySpec("EXTERN_ID", ("extern_id", "external_id", "user_id", "customer_id"), "plain", text.extern_id,
            fast=fastpaths.extern_id_fast, distinct=False),
    KeySpec("LOOKALIKE_VALUE", ("lookalike_value",), "number", numbers.lookalike_value, distinct=False),
)  # fmt: skip

_BY_NAME: dict[str, KeySpec] = {spec.name: spec for spec in KEYS}


def key_spec(key: str) -> KeySpec:
    """Look a key up by Meta's schema name, in any case."""
    try:
        return _BY_NAME[key.strip().upper()]
    except (KeyError, AttributeError):
        raise KeyError(f"unknown match key {key!r}; known: {', '.join(_BY_NAME)}") from None
