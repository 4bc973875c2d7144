"""Scalar evaluation of one value for one key: the reference every faster path must agree with."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from audiencesync.matchkeys.context import Context, DateOrder
from audiencesync.matchkeys.errors import Invalid
from audiencesync.matchkeys.geo import resolve_country
from audiencesync.matchkeys.keys import KeySpec, key_spec
from audiencesync.matchkeys.values import clean_text, is_date, is_prehashed, unwrap

Sent = str | float | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """Normalized text, or the reason it could not be made, or neither (empty)."""

    text: str | None = None
    reason: str | None = None
    prehashed: bool = False


EMPTY = Outcome()


def _normalized(spec: KeySpec, value: object, ctx: Context) -> Outcome:
    item = unwrap(value)
    if item is None:
        return EMPTY
    if spec.sent == "number" and not isinstance(item, str | bytes | bytearray | memoryview):
        return Outcome(spec.normalize(item, ctx))
    if spec.accepts_dates and is_date(item):
        return Outcome(spec.normalize(item, ctx))
    text = clean_text(item)
    if not text:
        return EMPTY
    if spec.hashed and is_prehashed(text):
        return Outcome(text.lower(), prehashed=True)
    return Outcome(spec.normalize(text, ctx))


def evaluate(spec: KeySpec, value: object, ctx: Context) -> Outcome:
    try:
        return _normalized(spec, value, ctx)
    except Invalid as invalid:
        return Outcome(reason=invalid.reason)


def sha256_hex(text: str) -> str:
    """Lowercase hex SHA-256 of the UTF-8 bytes, as Meta compares them (also CAPI's `db`)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sent_value(spec: KeySpec, outcome: Outcome) -> Sent:
    """What goes on the wire: a hash for hashed keys (never a second one), text or a number otherwise."""
    if outcome.text is None:
        return None
    if spec.sent == "number":
        return float(outcome.text)
    if spec.hashed and not outcome.prehashed:
        return sha256_hex(outcome.text)
    return outcome.text


def country_context(country: object) -> str | None:
    """Any accepted spelling of a country, or None when it is missing or not a country."""
    try:
        text = clean_text(unwrap(country)) if country is not None else ""
    except Invalid:
        return None
    return resolve_country(text) if text else None


def _context(country: object, date_order: DateOrder, allow_zero_value: bool) -> Context:
    return Context(country_context(country), date_order, allow_zero_value)


def normalize(
    key: str,
    value: object,
    *,
    country: object = None,
    date_order: DateOrder = "MDY",
    allow_zero_value: bool = False,
) -> str | None:
    """The normalized text Meta's rules produce before hashing; None when empty or invalid.

    A pre-hashed value (64 hex characters) comes back lowercased, as it would be sent.
    """
    spec = key_spec(key)
    return evaluate(spec, value, _context(country, date_order, allow_zero_value)).text


def match_value(
    key: str,
    value: object,
    *,
    country: object = None,
    date_order: DateOrder = "MDY",
    allow_zero_value: bool = False,
) -> Sent:
    """What is sent to Meta: lowercase SHA-256 hex, plain text (MADID, EXTERN_ID) or a float."""
    spec = key_spec(key)
    return sent_value(spec, evaluate(spec, value, _context(country, date_order, allow_zero_value)))


def explain(
    key: str,
    value: object,
    *,
    country: object = None,
    date_order: DateOrder = "MDY",
    allow_zero_value: bool = False,
) -> str | None:
    """Why a value is invalid, as a stable reason code (never the value); None if valid or empty."""
    spec = key_spec(key)
    return evaluate(spec, value, _context(country, date_order, allow_zero_value)).reason
