"""Turning any incoming value into the text a key normalizer works on.

Sources hand us whatever their drivers produce: str, bytes, ints, floats (a phone number or ZIP that
went through a spreadsheet), Decimals, dates, NaN, nested lists. Every one of them has to come out
as text, as *empty* or as a reason code, and never as an exception the pipeline has to catch.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import re
import unicodedata
from collections.abc import Iterator
from decimal import Decimal

from audiencesync.matchkeys.errors import MULTIPLE_VALUES, NOT_FINITE, NOT_UTF8, UNSUPPORTED_TYPE, Invalid

_PREHASHED = re.compile(r"[0-9A-Fa-f]{64}")
_FLOAT_RENDERED_INT = re.compile(r"(\+?[0-9]+)\.0+")


def is_missing(value: object) -> bool:
    """None and NaN are how dataframes and drivers spell "no value"."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, Decimal):
        return value.is_nan()
    return False


def _flatten(value: object) -> Iterator[object]:
    if isinstance(value, list | tuple):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


def _is_empty_item(value: object) -> bool:
    if is_missing(value):
        return True
    if isinstance(value, str | bytes):
        try:
            return clean_text(value) == ""
        except Invalid:
            return False
    return False


def unwrap(value: object) -> object:
    """Reduce a list to the one value it holds.

    A single-key normalizer returns one value, so a list with several non-empty values cannot be
    represented and is invalid; the vectorized path explodes list-valued email columns instead.
    """
    if not isinstance(value, list | tuple):
        return None if is_missing(value) else value
    items = [item for item in _flatten(value) if not _is_empty_item(item)]
    if not items:
        return None
    if len(items) > 1:
        raise Invalid(MULTIPLE_VALUES)
    return items[0]


def _number_text(value: float | Decimal) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise Invalid(NOT_FINITE)
        return str(int(value)) if value == value.to_integral_value() else format(value, "f")
    if not math.isfinite(value):
        raise Invalid(NOT_FINITE)
    return str(int(value)) if value.is_integer() else repr(value)


def to_text(value: object) -> str:
    """The raw text of a scalar; integral floats lose their `.0` so numeric IDs survive spreadsheets."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid(NOT_UTF8) from None
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise Invalid(UNSUPPORTED_TYPE)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, Decimal):
        return _number_text(value)
    if isinstance(value, numbers.Real):
        return _number_text(float(value))
    raise Invalid(UNSUPPORTED_TYPE)


def clean_text(value: object) -> str:
    """NFC first, then trim: the order the contract fixes, so composed and decomposed input agree.

    Text that cannot be UTF-8 (lone surrogates) cannot be hashed the way Meta hashes, so it is invalid.
    """
    text = to_text(value)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise Invalid(NOT_UTF8) from None
    return unicodedata.normalize("NFC", text).strip()


def is_prehashed(text: str) -> bool:
    return len(text) == 64 and _PREHASHED.fullmatch(text) is not None


def drop_float_suffix(text: str) -> str:
    """`4155550199.0` is a number that went through a float column, not a phone with a decimal point."""
    match = _FLOAT_RENDERED_INT.fullmatch(text)
    return match.group(1) if match else text


def is_date(value: object) -> bool:
    return isinstance(value, dt.date)
