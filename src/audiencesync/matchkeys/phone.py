"""Phone numbers to E.164 digits, with phonenumbers doing the country-specific work.

Rules: a leading `+` or `00` makes the number international (`00` everywhere, even where the local
international prefix is `011`); otherwise the member's country supplies the country code and its
trunk prefix is dropped; with no country at all the digits are sent as they are, minus leading
zeros. Possible-ness (length for the country) is checked, validity of the range is not: Meta matches
numbers, it does not dial them.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import phonenumbers
from phonenumbers import NumberParseException, ValidationResult

from audiencesync.matchkeys.context import Context
from audiencesync.matchkeys.errors import (
    INVALID_LENGTH_FOR_COUNTRY,
    NO_DIGITS,
    NOT_A_PHONE,
    TOO_LONG_FOR_COUNTRY,
    TOO_SHORT_FOR_COUNTRY,
    UNKNOWN_COUNTRY_CODE,
    Invalid,
)
from audiencesync.matchkeys.values import drop_float_suffix

_DIGIT = re.compile(r"\d")
_PLUS_OR_DIGIT = re.compile(r"[+＋\d]")
_EXTENSION = re.compile(r"\s*[,;]?\s*(?:extension|extn?|ext=|x|#)\s*[.:]?\s*\d{1,7}\s*#?$", re.IGNORECASE)

PARSE_ERRORS: dict[int, str] = {
    NumberParseException.INVALID_COUNTRY_CODE: UNKNOWN_COUNTRY_CODE,
    NumberParseException.NOT_A_NUMBER: NOT_A_PHONE,
    NumberParseException.TOO_SHORT_AFTER_IDD: TOO_SHORT_FOR_COUNTRY,
    NumberParseException.TOO_SHORT_NSN: TOO_SHORT_FOR_COUNTRY,
    NumberParseException.TOO_LONG: TOO_LONG_FOR_COUNTRY,
}

LENGTH_REASONS: dict[int, str | None] = {
    ValidationResult.IS_POSSIBLE: None,
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: TOO_SHORT_FOR_COUNTRY,
    ValidationResult.TOO_SHORT: TOO_SHORT_FOR_COUNTRY,
    ValidationResult.TOO_LONG: TOO_LONG_FOR_COUNTRY,
    ValidationResult.INVALID_LENGTH: INVALID_LENGTH_FOR_COUNTRY,
    ValidationResult.INVALID_COUNTRY_CODE: UNKNOWN_COUNTRY_CODE,
}


@cache
def phone_region(country: str | None) -> str | None:
    """The phonenumbers region for a country; a territory it has no plan for counts as no country."""
    if country is None:
        return None
    region = country.upper()
    return region if region in phonenumbers.SUPPORTED_REGIONS else None


def _digits(text: str) -> str:
    return "".join(str(unicodedata.decimal(ch)) for ch in _DIGIT.findall(text))


def _international_text(text: str, digits: str) -> str | None:
    """The number rewritten to start with `+` when the member wrote it internationally, else None."""
    first = _PLUS_OR_DIGIT.search(text)
    if first is None:
        return None
    if first.group() in "+＋":
        return text[first.start() :]
    if not digits.startswith("00"):
        return None
    second_zero = _DIGIT.search(text, first.end())
    assert second_zero is not None
    return "+" + text[second_zero.end() :]


def _e164(text: str, region: str | None) -> str:
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as error:
        raise Invalid(PARSE_ERRORS.get(error.error_type, NOT_A_PHONE)) from None
    reason = LENGTH_REASONS.get(phonenumbers.is_possible_number_with_reason(number), NOT_A_PHONE)
    if reason is not None:
        raise Invalid(reason)
    return f"{number.country_code}{phonenumbers.national_significant_number(number)}"


def phone(text: str, ctx: Context) -> str:
    text = drop_float_suffix(text)
    body = _EXTENSION.sub("", text)
    digits = _digits(body)
    if not digits:
        raise Invalid(NO_DIGITS)
    international = _international_text(body, digits)
    if international is not None:
        return _e164(international, None)
    region = phone_region(ctx.country)
    if region is not None:
        return _e164(body, region)
    national = digits.lstrip("0")
    if not national:
        raise Invalid(NO_DIGITS)
    return national
