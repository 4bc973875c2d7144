"""Countries, states, cities and postal codes.

Country data comes from pycountry and transliteration from anyascii; the only hand-written data is
the handful of aliases people type that ISO does not list (USA, U.K., England, ...).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import pycountry
from anyascii import anyascii

from audiencesync.matchkeys.context import Context
from audiencesync.matchkeys.errors import NO_LETTERS, NOT_A_COUNTRY, NOTHING_LEFT, Invalid
from audiencesync.matchkeys.values import drop_float_suffix

_COUNTRY_ALIASES: dict[str, str] = {
    "america": "US", "united states of america": "US", "usa": "US", "us": "US",
    "uk": "GB", "great britain": "GB", "britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "northern ireland": "GB",
    "russia": "RU", "syria": "SY", "laos": "LA", "north korea": "KP", "vatican": "VA",
    "ivory coast": "CI", "holland": "NL", "macedonia": "MK", "swaziland": "SZ", "burma": "MM",
}  # fmt: skip

_NOT_LETTER_OR_DIGIT = re.compile(r"[^a-z0-9 ]+")
_SPACES = re.compile(r" +")
_NOT_A_TO_Z = re.compile(r"[^a-z]+")
_WHITESPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"[0-9]+")
_ZIP_PLUS_4 = re.compile(r"[0-9]{5}-[0-9]{4}")


def _fold(text: str) -> str:
    """Fold a country name so `Côte d'Ivoire`, `cote divoire` and `U.S.` find their entries."""
    folded = _NOT_LETTER_OR_DIGIT.sub("", anyascii(text.replace(",", " ")).lower())
    folded = _SPACES.sub(" ", folded).strip()
    if folded.startswith("the "):
        folded = folded[4:]
    if folded.startswith("st "):
        folded = "saint " + folded[3:]
    return folded


@cache
def _country_index() -> dict[str, str]:
    """Folded spelling → alpha-2. Codes win over names; a "Name, Qualifier" entry also answers to
    `Name` when no other country claims it."""
    index: dict[str, str] = {}
    short_names: dict[str, set[str]] = {}
    for country in pycountry.countries:
        for attr in ("official_name", "common_name", "name"):
            value = getattr(country, attr, None)
            if value:
                index[_fold(value)] = country.alpha_2
                if "," in value:
                    short_names.setdefault(_fold(value.split(",")[0]), set()).add(country.alpha_2)
    for short, codes in short_names.items():
        if len(codes) == 1 and short not in index:
            index[short] = next(iter(codes))
    for alias, code in _COUNTRY_ALIASES.items():
        index[_fold(alias)] = code
    for country in pycountry.countries:
        index[country.alpha_3.lower()] = country.alpha_2
    for country in pycountry.countries:
        index[country.alpha_2.lower()] = country.alpha_2
    return index


def resolve_country(text: str) -> str | None:
    """Upper-case alpha-2 for any accepted spelling, or None."""
    return _country_index().get(_fold(unicodedata.normalize("NFC", text)))


def country(text: str, ctx: Context) -> str:
    code = resolve_country(text)
    if code is None:
        raise Invalid(NOT_A_COUNTRY)
    return code.lower()


def _ascii_letters(text: str) -> str:
    """Transliterate letters only: anyascii spells symbols out (`☺` → `:relaxed:`, `€` → `EUR`)."""
    letters = "".join(ch for ch in text if unicodedata.category(ch)[0] in "LM")
    return _NOT_A_TO_Z.sub("", anyascii(letters).lower())


def city(text: str, ctx: Context) -> str:
    letters = _ascii_letters(text)
    if not letters:
        raise Invalid(NO_LETTERS)
    return letters


@cache
def us_states() -> tuple[frozenset[str], dict[str, str]]:
    """USPS codes and folded names, from pycountry's `US-XX` subdivisions (states, DC, territories)."""
    codes: set[str] = set()
    names: dict[str, str] = {}
    for sub in pycountry.subdivisions.get(country_code="US") or ():
        code = sub.code.split("-", 1)[1].lower()
        codes.add(code)
        names[_ascii_letters(sub.name)] = code
        if "," in sub.name:
            names[_ascii_letters(sub.name.split(",")[0])] = code
    return frozenset(codes), names


def state(text: str, ctx: Context) -> str:
    """In the US (or with no country) Meta wants the USPS code; `New York`, `N.Y.` and `ny` all give it."""
    letters = _ascii_letters(text)
    if not letters:
        raise Invalid(NO_LETTERS)
    if ctx.country in (None, "US"):
        codes, names = us_states()
        if letters in codes:
            return letters
        return names.get(letters, letters)
    return letters


def _drop_dashes(text: str) -> str:
    return "".join(ch for ch in text if unicodedata.category(ch) != "Pd")


def postal_code(text: str, ctx: Context) -> str:
    """US: the five-digit ZIP (ZIP+4 cut, lost leading zeros restored). Elsewhere the whole code.

    With no country at all only the unmistakable ZIP+4 shape is cut: a 4-digit code could as well be
    Swiss or Australian, so it is not padded.
    """
    compact = _WHITESPACE.sub("", drop_float_suffix(text))
    digits = _drop_dashes(compact)  # any dash (a full-width one too), or a second pass would read it anew
    if ctx.country == "US" and _DIGITS.fullmatch(digits):
        if len(digits) >= 5:
            return digits[:5]
        if len(digits) >= 3:
            return digits.zfill(5)
    elif ctx.country is None and _ZIP_PLUS_4.fullmatch(compact):
        return compact[:5]
    kept = _drop_dashes(compact.lower())
    generic = unicodedata.normalize("NFC", kept)  # taking out spaces and dashes can bring marks to new letters
    if not generic:
        raise Invalid(NOTHING_LEFT)
    return generic
