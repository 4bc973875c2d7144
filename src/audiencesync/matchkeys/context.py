"""What a normalizer may know besides the value itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DateOrder = Literal["MDY", "DMY"]


@dataclass(frozen=True, slots=True)
class Context:
    """Per-member context.

    `country` is an upper-case ISO alpha-2 code already resolved from whatever form the source used,
    or None when neither the member nor the audience says. `date_order` reads `04/07/1990`;
    `allow_zero_value` is the value-based audience's choice about LOOKALIKE_VALUE 0.
    """

    country: str | None = None
    date_order: DateOrder = "MDY"
    allow_zero_value: bool = False
