"""LOOKALIKE_VALUE: a non-negative number sent as a number."""

from __future__ import annotations

from decimal import Decimal

import pytest

from audiencesync.matchkeys import explain, match_value, normalize


@pytest.mark.parametrize(
    ("value", "expected"), [("44.5", 44.5), (140, 140.0), (0.9, 0.9), (Decimal("12.50"), 12.5), (" 1e3 ", 1000.0)]
)
def test_lookalike_value_is_a_float(value: object, expected: float) -> None:
    sent = match_value("LOOKALIKE_VALUE", value)
    assert isinstance(sent, float)
    assert sent == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [(-1, "negative"), ("-0.5", "negative"), ("abc", "not_a_number"), ("inf", "not_a_number"),
     (float("inf"), "not_a_number"), ("nan", "not_a_number"), (0, "zero_value"), ("0.0", "zero_value"),
     (True, "unsupported_type")],
)  # fmt: skip
def test_invalid_lookalike_values(value: object, reason: str) -> None:
    assert match_value("LOOKALIKE_VALUE", value) is None
    assert explain("LOOKALIKE_VALUE", value) == reason


def test_zero_is_sent_when_allowed() -> None:
    assert match_value("LOOKALIKE_VALUE", 0, allow_zero_value=True) == 0.0
    assert normalize("LOOKALIKE_VALUE", "-0", allow_zero_value=True) == "0.0"
