"""Birth year, month and day, from separate fields or from one whole date.

A whole date (a `date`, `1990-04-07`, `04/07/1990` read with the audience's date order, `7 April
1990`) fills all three keys, so each key's normalizer reads whole dates too and picks its part.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import NamedTuple

from audiencesync.matchkeys.context import Context, DateOrder
from audiencesync.matchkeys.errors import (
    NOT_A_DATE,
    NOT_A_DAY,
    NOT_A_MONTH,
    NOT_A_YEAR,
    OUT_OF_RANGE,
    TWO_DIGIT_YEAR,
    Invalid,
)
from audiencesync.matchkeys.values import drop_float_suffix

FIRST_YEAR = 1900

MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
MONTHS: dict[str, int] = {
    **{name: number for number, name in enumerate(MONTH_NAMES, 1)},
    **{name[:3]: number for number, name in enumerate(MONTH_NAMES, 1)},
    "sept": 9,
}

_TIME = r"(?:[T ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?\s*(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
_YEAR_FIRST = re.compile(r"([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})" + _TIME)
_COMPACT = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
_YEAR_LAST = re.compile(r"([0-9]{1,2})([-/.])([0-9]{1,2})\2([0-9]{4}|[0-9]{2})" + _TIME)
_DAY_MONTH_NAME = re.compile(r"([0-9]{1,2})(?:st|nd|rd|th)?[-\s]+([a-z]+)\.?[-\s,]+([0-9]{4})")
_MONTH_NAME_DAY = re.compile(r"([a-z]+)\.?[-\s]+([0-9]{1,2})(?:st|nd|rd|th)?,?[-\s]+([0-9]{4})")
_DIGITS = re.compile(r"[0-9]+")
_DAY = re.compile(r"([0-9]+)(?:st|nd|rd|th)?")


class WholeDate(NamedTuple):
    year: int
    year_digits: int
    month: int
    day: int


def current_year() -> int:
    return dt.date.today().year


def _checked(year: int, year_digits: int, month: int, day: int) -> WholeDate:
    """A two-digit year is checked as a leap year: its century is unknown, 29 Feb may be real."""
    try:
        dt.date(2000 if year_digits == 2 else max(year, 1), month, day)
    except ValueError:
        raise Invalid(NOT_A_DATE) from None
    return WholeDate(year, year_digits, month, day)


def parse_whole_date(text: str, order: DateOrder) -> WholeDate | None:
    """The date a text spells, None if it is not shaped like a date, Invalid if it names no real day."""
    if match := _YEAR_FIRST.fullmatch(text) or _COMPACT.fullmatch(text):
        year, month, day = match.group(1), match.groups()[-2], match.groups()[-1]
        return _checked(int(year), 4, int(month), int(day))
    if match := _YEAR_LAST.fullmatch(text):
        first, second, year = int(match.group(1)), int(match.group(3)), match.group(4)
        month, day = (first, second) if order == "MDY" else (second, first)
        return _checked(int(year), len(year), month, day)
    lowered = text.lower()
    if (match := _DAY_MONTH_NAME.fullmatch(lowered)) and match.group(2) in MONTHS:
        return _checked(int(match.group(3)), 4, MONTHS[match.group(2)], int(match.group(1)))
    if (match := _MONTH_NAME_DAY.fullmatch(lowered)) and match.group(1) in MONTHS:
        return _checked(int(match.group(3)), 4, MONTHS[match.group(1)], int(match.group(2)))
    return None


def _whole(value: str | dt.date, order: DateOrder) -> WholeDate | None:
    if isinstance(value, dt.date):
        return WholeDate(value.year, 4, value.month, value.day)
    return parse_whole_date(value, order)


def _checked_year(year: int, digits: int) -> str:
    if digits == 2:
        raise Invalid(TWO_DIGIT_YEAR)
    if not FIRST_YEAR <= year <= current_year() or digits != 4:
        raise Invalid(OUT_OF_RANGE)
    return f"{year:04d}"


def birth_year(value: str | dt.date, ctx: Context) -> str:
    if whole := _whole(value, ctx.date_order):
        return _checked_year(whole.year, whole.year_digits)
    text = drop_float_suffix(value)
    if not _DIGITS.fullmatch(text):
        raise Invalid(NOT_A_YEAR)
    return _checked_year(int(text), len(text))


def birth_month(value: str | dt.date, ctx: Context) -> str:
    if whole := _whole(value, ctx.date_order):
        return f"{whole.month:02d}"
    text = drop_float_suffix(value)
    if _DIGITS.fullmatch(text):
        month = int(text)
    else:
        month = MONTHS.get(text.lower().rstrip("."), 0)
        if not month:
            raise Invalid(NOT_A_MONTH)
    if not 1 <= month <= 12:
        raise Invalid(OUT_OF_RANGE)
    return f"{month:02d}"


def birth_day(value: str | dt.date, ctx: Context) -> str:
    if whole := _whole(value, ctx.date_order):
        return f"{whole.day:02d}"
    match = _DAY.fullmatch(drop_float_suffix(value).lower())
    if match is None:
        raise Invalid(NOT_A_DAY)
    day = int(match.group(1))
    if not 1 <= day <= 31:
        raise Invalid(OUT_OF_RANGE)
    return f"{day:02d}"
