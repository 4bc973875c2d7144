"""mParticle's Events API batches, read once for every door that takes them.

The stream door (`serve`: memberships, and commerce events on to the Conversions API) and the
conversions door (`conversions send` over files of batches) both read mParticle batches through
this module, so they cannot drift apart again: one list of identity spellings, one table of
reserved attributes, one rule for advertising ids and limit-ad-tracking, one environment rule.

What it returns are raw values under the column names of the match-keys alias table (`email`,
`phone`, `customer_id`, `first_name`, `idfa`, `gaid`, ...): hashing is the caller's next step, so
raw values live only in memory, as everywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RESERVED_ATTRIBUTES = {
    "$firstname": "first_name",
    "$lastname": "last_name",
    "$gender": "gender",
    "$city": "city",
    "$state": "state",
    "$zip": "zip",
    "$country": "country",
    "$mobile": "phone",
}
"""mParticle's reserved user attributes that are match keys (any case), to the alias-table names."""

IDENTITY_KEYS = {
    "email": "email",
    "mobilenumber": "phone",
    "phonenumber2": "phone",
    "phonenumber3": "phone",
}
"""Identity types that are match keys, by folded spelling (see `fold`). The three phone numbers
feed one `phone` column, first given wins: a person row holds one phone."""

CUSTOMER_IDS = frozenset({"customerid", "customer"})
"""The customer id's spellings once folded: `customerid` (the Python, Java, Node and iOS SDKs'
Events API key), `customer_id` (the JSON reference), `customerId`/`CustomerId` (the web and
Android SDKs), and the Firehose `type` `customer`."""

ADVERTISING_IDS = (
    ("ios_advertising_id", "idfa"),
    ("android_advertising_id", "gaid"),
    ("google_advertising_id", "gaid"),
)
"""`device_info` fields that are mobile advertiser ids, in precedence order, to their column."""

ATT_DENIED = frozenset({"denied", "restricted"})
"""iOS App Tracking Transparency states in which the IDFA must not be used."""

DEFAULT_ENVIRONMENT = "production"
COMMERCE_EVENT = "commerce_event"


def fold(name: str) -> str:
    """An identity name folded so every SDK's spelling is one string (`mobile_number`, `MobileNumber`)."""
    return name.replace("_", "").replace("-", "").lower()


@dataclass
class MParticlePerson:
    """Who a batch is about, as raw values under alias-table column names.

    `customer_id` keeps the field it came from (`customer_field`) so a door can name it in an error.
    `others` are the identity types that are not match keys (`other`, `other_id_2`, ...), under their
    lower-case names: the conversions `email_identity` setting may name one of them.
    """

    customer_id: Any = None
    customer_field: str | None = None
    keys: dict[str, Any] = field(default_factory=dict)
    others: dict[str, Any] = field(default_factory=dict)
    mpid: Any = None

    @property
    def madid(self) -> Any:
        """The one mobile advertiser id a multi-key row holds: the IDFA first, else the GAID."""
        return self.keys.get("idfa") or self.keys.get("gaid")

    def columns(self) -> dict[str, Any]:
        """The row the conversions door maps: identities, reserved attributes and ad ids."""
        out: dict[str, Any] = dict(self.others)
        if not _blank(self.customer_id):
            out["customer_id"] = self.customer_id
        out.update(self.keys)
        return out


def read_identities(identities: Mapping[str, Any], person: MParticlePerson) -> None:
    """`user_identities` into the person: match keys, the customer id, and the other identity types."""
    for name, value in identities.items():
        if not isinstance(name, str) or _blank(value):
            continue
        folded = fold(name)
        if folded in CUSTOMER_IDS:
            if person.customer_field is None:
                person.customer_id, person.customer_field = value, name
        elif folded in IDENTITY_KEYS:
            person.keys.setdefault(IDENTITY_KEYS[folded], value)
        else:
            person.others.setdefault(name.lower(), value)


def reserved_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The reserved attributes that are match keys (`$FirstName`, `$firstname` alike), by column."""
    out: dict[str, Any] = {}
    for name, value in attributes.items():
        column = RESERVED_ATTRIBUTES.get(name.lower()) if isinstance(name, str) else None
        if column is not None and not _blank(value):
            out.setdefault(column, value)
    return out


def advertising_ids(device: Mapping[str, Any]) -> dict[str, Any]:
    """`idfa` and `gaid` from `device_info`; none at all when `limit_ad_tracking` is on, and no IDFA
    when App Tracking Transparency was denied or restricted (the user said no to tracking)."""
    if device.get("limit_ad_tracking") is True or str(device.get("limit_ad_tracking")).lower() == "true":
        return {}
    att_denied = str(device.get("att_authorization_status") or "").lower() in ATT_DENIED
    out: dict[str, Any] = {}
    for name, column in ADVERTISING_IDS:
        value = device.get(name)
        if _blank(value) or (column == "idfa" and att_denied):
            continue
        out.setdefault(column, value)
    return out


def environment(batch: Mapping[str, Any]) -> str:
    """The batch's `environment`, lower-case; mParticle's default is production."""
    value = batch.get("environment")
    return value.strip().lower() if isinstance(value, str) and value.strip() else DEFAULT_ENVIRONMENT


def read_person(batch: Mapping[str, Any]) -> MParticlePerson:
    """Identities, reserved attributes and device ids of a batch. Fields of the wrong type are read
    as empty here; a door that refuses them (the stream) checks the types first."""
    person = MParticlePerson(mpid=batch.get("mpid"))
    identities = batch.get("user_identities")
    if isinstance(identities, Mapping):
        read_identities(identities, person)
    attributes = batch.get("user_attributes")
    if isinstance(attributes, Mapping):
        for column, value in reserved_attributes(attributes).items():
            person.keys.setdefault(column, value)
    device = batch.get("device_info")
    if isinstance(device, Mapping):
        for column, value in advertising_ids(device).items():
            person.keys.setdefault(column, value)
    return person


def is_batch(record: Any) -> bool:
    return isinstance(record, dict) and isinstance(record.get("events"), list)


def is_commerce(event: Any) -> bool:
    return isinstance(event, dict) and event.get("event_type") == COMMERCE_EVENT


def event_row(event: Any) -> dict[str, Any]:
    """One event's fields in the conversions layout (`event_time`, `product_action`, `order_id`,
    `currency`, `value`, `products`, `custom_attributes`); a non-commerce event has no action."""
    if not isinstance(event, dict):
        return {"event_type": "invalid"}
    data = event.get("data") or {}
    if not isinstance(data, dict):
        data = {}
    row: dict[str, Any] = {"event_type": event.get("event_type")}
    ms = data.get("timestamp_unixtime_ms")
    row["event_time"] = ms / 1000 if isinstance(ms, int | float) and not isinstance(ms, bool) else ms
    row["currency"] = data.get("currency_code")
    row["custom_attributes"] = data.get("custom_attributes")
    action = data.get("product_action")
    if isinstance(action, dict):
        row["product_action"] = action.get("action")
        row["order_id"] = action.get("transaction_id")
        row["value"] = action.get("total_amount")
        row["products"] = action.get("products")
    return row


def flatten_batch(batch: Mapping[str, Any], *, commerce_only: bool = False) -> list[dict[str, Any]]:
    """One row per event (or per commerce event) with the batch's person on each."""
    person = read_person(batch).columns()
    events = batch.get("events") or []
    return [{**person, **event_row(e)} for e in events if not commerce_only or is_commerce(e)]


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
