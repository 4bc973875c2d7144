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

    @property
    def multi(self) -> bool:
        return self.kind == "multi" or self.value_based

    @property
    def schema(self) -> str | list[str]:
        if self.kind != "multi" and not self.value_based:
            return IDENTITIES[self.kind].schema
        return list(self.keys)

    @property
    def schema_text(self) -> str:
        """How the schema is stored beside each row: a JSON list for multi-key, else the name."""
        s = self.schema
        return s if isinstance(s, str) else json.dumps(s, separators=(",", ":"))


def targets(audience: AudienceSettings, available: set[str]) -> list[Target]:
    """The Facebook audiences of a configured one, given the keys its source provides."""
    value = (VALUE_KEY,) if audience.value else ()
    out = []
    for kind in audience.forward:
        ident = IDENTITIES[kind]
        out.append(
            Target(kind, f"{audience.name} {ident.suffix}", (ident.key, *value), (ident.key,), bool(audience.value))
        )
    if audience.multi_key:
        keys = [k for k in IDENTITY_KEYS if k in available]
        if audience.match_on_attributes:
            keys += [k for k in ATTRIBUTE_KEYS if k in available]
        out.append(
            Target(
                "multi",
                audience.name,
                (*keys, *value),
                tuple(k for k in IDENTITY_KEYS if k in keys),
                bool(audience.value),
            )
        )
    return out
