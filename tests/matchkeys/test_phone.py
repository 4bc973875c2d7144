"""PHONE: international forms, completion from the member's country, and impossible numbers."""

from __future__ import annotations

import pytest

from audiencesync.matchkeys import explain, normalize


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [
        ("+1 (415) 555-0199", None, "14155550199"),
        ("+1 415 555 0199", "GB", "14155550199"),
        ("(415) 555-0199", "US", "14155550199"),
        ("1-415-555-0199", "US", "14155550199"),
        ("415.555.0199", "USA", "14155550199"),
        ("4155550199", "United States", "14155550199"),
        ("(613) 555-0123", "CA", "16135550123"),
        ("07700 900123", "GB", "447700900123"),
        ("+44 7700 900123", None, "447700900123"),
        ("0044 7700 900123", "US", "447700900123"),
        ("00 44 (0)161 496 0000", "US", "441614960000"),
        ("011 44 161 496 0000", "US", "441614960000"),
        ("030 1234567", "DE", "49301234567"),
        ("+49 (0)30 1234567", None, "49301234567"),
        ("01 23 45 67 89", "FR", "33123456789"),
        ("06 12345678", "IT", "390612345678"),
        ("+39 06 1234 5678", None, "390612345678"),
        ("+1 415-555-0199 ext. 12", None, "14155550199"),
        ("415-555-0199 x12", "US", "14155550199"),
        ("415-555-0199 ext 12", None, "4155550199"),
        ("0161 496 0000", None, "1614960000"),
        ("14155550199", None, "14155550199"),
    ],
)
def test_phone_normalizes_to_e164_digits(value: str, country: str | None, expected: str) -> None:
    assert normalize("PHONE", value, country=country) == expected


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [(4155550199, "US", "14155550199"), (4155550199.0, "US", "14155550199"), ("4155550199.0", "US", "14155550199"),
     (14155550199, None, "14155550199")],
)  # fmt: skip
def test_phone_stored_as_number(value: object, country: str | None, expected: str) -> None:
    assert normalize("PHONE", value, country=country) == expected


@pytest.mark.parametrize(
    ("value", "country", "reason"),
    [
        ("496-0000", "US", "too_short_for_country"),
        ("+1 496 0000", None, "too_short_for_country"),
        ("415 555 01999", "US", "too_long_for_country"),
        ("12", "GB", "too_short_for_country"),
        ("+999 1234 5678", None, "unknown_country_code"),
        ("call me", "US", "no_digits"),
        ("+", None, "no_digits"),
        ("0", None, "no_digits"),
        ("00", "US", "not_a_phone"),
    ],
)
def test_impossible_phones_are_invalid(value: str, country: str | None, reason: str) -> None:
    assert normalize("PHONE", value, country=country) is None
    assert explain("PHONE", value, country=country) == reason


def test_leading_00_is_international_even_where_idd_is_011() -> None:
    assert normalize("PHONE", "00 33 1 23 45 67 89", country="US") == "33123456789"


def test_unknown_country_context_falls_back_to_digits() -> None:
    assert normalize("PHONE", "0161 496 0000", country="Narnia") == "1614960000"
