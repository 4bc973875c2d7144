"""Any input type goes in without an exception; pre-hashed values pass through; reasons are codes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from audiencesync.matchkeys import KEYS, REASONS, explain, key_spec, match_value, normalize

ODD_VALUES = [
    None, float("nan"), float("inf"), -0.0, 0, 1, 10**30, 1.5, 1e300, True, False, b"abc", b"\xff\xfe",
    bytearray(b"x"), dt.date(2020, 1, 1), dt.datetime(2020, 1, 1, 5), dt.time(5), Decimal("NaN"),
    Decimal("Infinity"), Decimal("1.50"), [], [[["a@b.com"]]], ["a", ["b"]], (1, 2), {"a": 1}, {1, 2}, object(),
    "\x00", "\ud800", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ｆｕｌｌ", "a" * 10_000,
]  # fmt: skip


@pytest.mark.parametrize("value", ODD_VALUES, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("key", [spec.name for spec in KEYS])
def test_any_value_goes_in_without_exception(key: str, value: object) -> None:
    normalize(key, value, country="US")
    match_value(key, value, country="US")
    reason = explain(key, value, country="US")
    assert reason is None or reason in REASONS


@pytest.mark.parametrize("key", [spec.name for spec in KEYS if spec.hashed])
def test_prehashed_values_pass_through_lowercased(key: str) -> None:
    digest = "F1904CF1A9D73A55FA5DE0AC823C4403DED71AFD4C3248D00BDCD0866552BB79"
    assert match_value(key, f"  {digest} ", country="US") == digest.lower()
    assert explain(key, digest) is None


def test_keys_are_case_insensitive() -> None:
    assert match_value("email", "A@B.CO") == match_value("EMAIL", "a@b.co")
    assert key_spec(" Phone ").name == "PHONE"


def test_unknown_key_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        normalize("SHOE_SIZE", "44")


def test_reason_codes_never_carry_the_value() -> None:
    secret = "secret.person@example"
    for spec in KEYS:
        reason = explain(spec.name, secret)
        assert reason is None or (secret not in reason and reason in REASONS)


def test_bytes_are_utf8_text() -> None:
    assert normalize("FN", "Zoë".encode()) == "zoë"
    assert explain("FN", b"\xff") == "not_utf8"


def test_list_with_several_values_is_invalid_for_a_single_value() -> None:
    assert explain("EMAIL", ["a@b.com", "c@d.com"]) == "multiple_values"
    assert normalize("EMAIL", [["A@B.com"], "  "]) == "a@b.com"


def test_country_context_accepts_any_form() -> None:
    expected = normalize("PHONE", "415 555 0199", country="US")
    for form in ("us", "USA", "United States", "U.S.", "usa "):
        assert normalize("PHONE", "415 555 0199", country=form) == expected
    assert normalize("ST", "Bavaria", country="UK") == "bavaria"
