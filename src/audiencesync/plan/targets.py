"""Which Facebook audiences a configured audience becomes, and what a row of each looks like.

mParticle forwards one audience per identity (`<name> (email)`, …); Segment sends one multi-key
audience with every key of a person in one row. Both are declared here as data, so the planner
builds rows for any of them the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from audiencesync.config import AudienceSettings

IDENTITY_KEYS = ("EXTERN_ID", "EMAIL", "PHONE", "MADID")
ATTRIBUTE_KEYS = ("FN", "LN", "FI", "GEN", "DOBY", "DOBM", "DOBD", "CT", "ST", "ZIP", "COUNTRY")
VALUE_KEY = "LOOKALIKE_VALUE"
LDU_KEYS = ("DATA_PROCESSING_OPTIONS", "DATA_PROCESSING_OPTIONS_COUNTRY", "DATA_PROCESSING_OPTIONS_STATE")
LDU_CELLS = {
    "DATA_PROCESSING_OPTIONS": "LDU",
    "DATA_PROCESSING_OPTIONS_COUNTRY": "0",
    "DATA_PROCESSING_OPTIONS_STATE": "0",
}
"""Limited Data Use with country and state 0: Facebook geolocates the person (spec §2.6)."""


@dataclass(frozen=True)
class Identity:
    """A forwarded identity: the key it carries, Facebook's single-key schema, the name suffix."""

    key: str
    schema: str
    suffix: str


IDENTITIES: dict[str, Identity] = {
    "email": Identity("EMAIL", "EMAIL_SHA256", "(email)"),
    "phone": Identity("PHONE", "PHONE_SHA256", "(phone)"),
    "mobile_ad_id": Identity("MADID", "MOBILE_ADVERTISER_ID", "(IDFA/GAID)"),
    "facebook_id": Identity("UID", "UID", "(fb id)"),
}


@dataclass(frozen=True)
class Target:
    """One Facebook audience: `keys` are the row's columns in order; `schema` is what is sent."""

    kind: str
    name: str
    keys: tuple[str, ...]
    required_any: tuple[str, ...]
    value_based: bool
    ldu: bool = False

    @property
    def multi(self) -> bool:
        """Extra columns (a value, LDU options) need the multi-key row format."""
        return self.kind == "multi" or self.value_based or self.ldu

    @property
    def schema(self) -> str | list[str]:
        if not self.multi:
            return IDENTITIES[self.kind].schema
        return list(self.keys)

    @property
    def schema_text(self) -> str:
        """How the schema is stored beside each row: a JSON list for multi-key, else the name."""
        s = self.schema
        return s if isinstance(s, str) else json.dumps(s, separators=(",", ":"))


def targets(audience: AudienceSettings, available: set[str]) -> list[Target]:
    """The Facebook audiences of a configured one, given the keys its source provides."""
    extra = ((VALUE_KEY,) if audience.value else ()) + (LDU_KEYS if audience.ldu else ())
    out = []
    for kind in audience.forward:
        ident = IDENTITIES[kind]
        out.append(
            Target(
                kind,
                f"{audience.name} {ident.suffix}",
                (ident.key, *extra),
                (ident.key,),
                bool(audience.value),
                audience.ldu,
            )
        )
    if audience.multi_key:
        keys = [k for k in IDENTITY_KEYS if k in available]
        if audience.match_on_attributes:
            keys += [k for k in ATTRIBUTE_KEYS if k in available]
        out.append(
            Target(
                "multi",
                audience.name,
                (*keys, *extra),
                tuple(k for k in IDENTITY_KEYS if k in keys),
                bool(audience.value),
                audience.ldu,
            )
        )
    return out
