"""Normalizers for keys that are plain text rules: email, names, gender, advertising and external IDs."""

from __future__ import annotations

import re
import unicodedata

from audiencesync.matchkeys.context import Context
from audiencesync.matchkeys.errors import NO_LETTERS, NOT_A_UUID, NOT_AN_EMAIL, UNKNOWN_GENDER, ZERO_MADID, Invalid

# One `@`, no whitespace, a non-empty local part and a domain of at least two non-empty labels.
EMAIL_PATTERN = r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+"
_EMAIL = re.compile(EMAIL_PATTERN)

GENDERS: dict[str, str] = {
    "m": "m", "male": "m", "man": "m", "boy": "m",
    "f": "f", "female": "f", "woman": "f", "girl": "f",
}  # fmt: skip

ZERO_MADID_PATTERN = r"[0-]*0[0-]*"
_ZERO_MADID = re.compile(ZERO_MADID_PATTERN)
# An IDFA or GAID as lowercase text: a UUID's 8-4-4-4-12 hex digits (ASCII only, so fast paths agree).
MADID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_MADID = re.compile(MADID_PATTERN)


def _nfc_lower(text: str) -> str:
    """Lowercasing can leave a decomposed sequence; NFC again keeps the output a fixed point."""
    return unicodedata.normalize("NFC", text.lower())


def email(text: str, ctx: Context) -> str:
    lowered = _nfc_lower(text)
    if _EMAIL.fullmatch(lowered) is None:
        raise Invalid(NOT_AN_EMAIL)
    return lowered


def name(text: str, ctx: Context) -> str:
    """Letters of any script survive, with their combining marks (Devanagari vowel signs are marks).

    Meta hashes the UTF-8 bytes of `valéry`; dropping non-ASCII letters, as Meta's own SDK does,
    turns such names into different people.
    """
    lowered = _nfc_lower(text)
    if not any(unicodedata.category(ch).startswith("L") for ch in lowered):
        raise Invalid(NO_LETTERS)
    kept = "".join(ch for ch in lowered if unicodedata.category(ch)[0] in "LM")
    return unicodedata.normalize("NFC", kept)


def first_initial(text: str, ctx: Context) -> str:
    normalized = name(text, ctx)
    return next(ch for ch in normalized if unicodedata.category(ch).startswith("L"))


def gender(text: str, ctx: Context) -> str:
    code = GENDERS.get(text.lower())
    if code is None:
        raise Invalid(UNKNOWN_GENDER)
    return code


def madid(text: str, ctx: Context) -> str:
    """The all-zero ID is what iOS and Android report when the user denied tracking: nobody.

    MADID is sent plain, so anything else that is not an IDFA/GAID's UUID shape (an ID still in its
    CSV quotes, a truncated one, free text) would reach Meta as is and match no one: it is invalid,
    and counted, instead.
    """
    lowered = text.lower()
    if _ZERO_MADID.fullmatch(lowered):
        raise Invalid(ZERO_MADID)
    if _MADID.fullmatch(lowered) is None:
        raise Invalid(NOT_A_UUID)
    return lowered


def extern_id(text: str, ctx: Context) -> str:
    """Case is part of the ID: lowercasing it, as Meta's SDK does, merges different customers."""
    return text
