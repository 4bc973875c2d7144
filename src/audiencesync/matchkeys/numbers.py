"""LOOKALIKE_VALUE: the customer value a value-based audience ranks people by."""

from __future__ import annotations

import math
import numbers
from decimal import Decimal

from audiencesync.matchkeys.context import Context
from audiencesync.matchkeys.errors import NEGATIVE, NOT_A_NUMBER, UNSUPPORTED_TYPE, ZERO_VALUE, Invalid


def as_number(value: object) -> float:
    """Numbers as they are; text through `float()`, which already reads `1e3` and ` 44.5 `."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise Invalid(UNSUPPORTED_TYPE)
    if isinstance(value, numbers.Real | Decimal):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise Invalid(NOT_A_NUMBER) from None
    else:
        raise Invalid(UNSUPPORTED_TYPE)
    if not math.isfinite(number):
        raise Invalid(NOT_A_NUMBER)
    return number + 0.0


def checked_value(number: float, ctx: Context) -> float:
    """Zero is a real value only when the audience says so: otherwise it is a missing value in disguise."""
    if number < 0:
        raise Invalid(NEGATIVE)
    if number == 0 and not ctx.allow_zero_value:
        raise Invalid(ZERO_VALUE)
    return number


def lookalike_value(value: object, ctx: Context) -> str:
    return repr(checked_value(as_number(value), ctx))
