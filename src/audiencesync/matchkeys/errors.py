"""Reason codes for values that cannot be made valid.

A reason is a short, stable code: it goes into counts, reports and logs, so it must never carry the
raw value (which is personal data). Raising `Invalid` with anything but a code from `REASONS` is a bug.
"""

from __future__ import annotations

UNSUPPORTED_TYPE = "unsupported_type"
NOT_UTF8 = "not_utf8"
NOT_FINITE = "not_finite"
MULTIPLE_VALUES = "multiple_values"
NOT_AN_EMAIL = "not_an_email"
NO_DIGITS = "no_digits"
NOT_A_PHONE = "not_a_phone"
UNKNOWN_COUNTRY_CODE = "unknown_country_code"
TOO_SHORT_FOR_COUNTRY = "too_short_for_country"
TOO_LONG_FOR_COUNTRY = "too_long_for_country"
INVALID_LENGTH_FOR_COUNTRY = "invalid_length_for_country"
NO_LETTERS = "no_letters"
NOTHING_LEFT = "nothing_left"
UNKNOWN_GENDER = "unknown_gender"
NOT_A_DATE = "not_a_date"
NOT_A_YEAR = "not_a_year"
TWO_DIGIT_YEAR = "two_digit_year"
NOT_A_MONTH = "not_a_month"
NOT_A_DAY = "not_a_day"
OUT_OF_RANGE = "out_of_range"
NOT_A_COUNTRY = "not_a_country"
ZERO_MADID = "zero_madid"
NOT_A_UUID = "not_a_uuid"
NOT_A_NUMBER = "not_a_number"
NEGATIVE = "negative"
ZERO_VALUE = "zero_value"

REASONS: frozenset[str] = frozenset(
    value for name, value in dict(globals()).items() if name.isupper() and isinstance(value, str)
)


class Invalid(ValueError):
    """A value that cannot be made valid; carries only a reason code, never the value."""

    def __init__(self, reason: str) -> None:
        if reason not in REASONS:
            raise AssertionError("unknown reason code")
        super().__init__(reason)
        self.reason = reason
