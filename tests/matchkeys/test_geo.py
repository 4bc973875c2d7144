"""COUNTRY, ST, CT and ZIP, including how the member's country changes ST and ZIP."""

from __future__ import annotations

import pytest

from audiencesync.matchkeys import explain, normalize


@pytest.mark.parametrize(
    ("value", "expected"),
    [("US", "us"), ("us", "us"), ("USA", "us"), ("U.S.", "us"), ("U.S.A.", "us"), ("United States", "us"),
     ("united states of america", "us"), ("UK", "gb"), ("U.K.", "gb"), ("GBR", "gb"), ("United Kingdom", "gb"),
     ("Great Britain", "gb"), ("Deu", "de"), ("Germany", "de"), ("Côte d'Ivoire", "ci"), ("Cote d'Ivoire", "ci"),
     ("South Korea", "kr"), ("Viet Nam", "vn"), ("Vietnam", "vn"), ("Iran", "ir"), ("the Netherlands", "nl"),
     ("  canada ", "ca")],
)  # fmt: skip
def test_country_forms(value: str, expected: str) -> None:
    assert normalize("COUNTRY", value) == expected


@pytest.mark.parametrize("value", ["Narnia", "XX", "Korea", "Europe", "123", "U"])
def test_not_a_country(value: str) -> None:
    assert normalize("COUNTRY", value) is None
    assert explain("COUNTRY", value) == "not_a_country"


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [("New York", "US", "ny"), ("N.Y.", "US", "ny"), ("ny", None, "ny"), (" CA ", "USA", "ca"),
     ("District of Columbia", "US", "dc"), ("Puerto Rico", "US", "pr"), ("georgia", None, "ga"),
     ("Georgia", "GE", "georgia"), ("Île-de-France", "FR", "iledefrance"), ("Bayern", "DE", "bayern"),
     ("Calif.", "US", "calif"), ("NSW", "AU", "nsw"), ("Washington", "US", "wa")],
)  # fmt: skip
def test_state(value: str, country: str | None, expected: str) -> None:
    assert normalize("ST", value, country=country) == expected


@pytest.mark.parametrize("value", ["--", "123", "?"])
def test_state_with_no_letters_is_invalid(value: str) -> None:
    assert explain("ST", value, country="US") == "no_letters"
    assert explain("ST", value, country="DE") == "no_letters"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("New York", "newyork"), ("São Paulo", "saopaulo"), ("Zürich", "zurich"), ("St. Louis", "stlouis"),
     ("Winston-Salem", "winstonsalem"), ("Москва", "moskva"), ("Kraków", "krakow"), ("Düsseldorf", "dusseldorf")],
)  # fmt: skip
def test_city_is_transliterated_ascii_letters(value: str, expected: str) -> None:
    assert normalize("CT", value) == expected


@pytest.mark.parametrize("value", ["12345", "--", "☺"])
def test_city_with_no_letters_is_invalid(value: str) -> None:
    assert explain("CT", value) == "no_letters"


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [("10001", "US", "10001"), ("10001-0001", "US", "10001"), ("100010001", "US", "10001"),
     ("2134", "US", "02134"), (2134, "US", "02134"), (2134.0, "US", "02134"), ("501", "US", "00501"),
     (" 02134 ", "US", "02134"), ("10001-0001", None, "10001"), ("2134", None, "2134"),
     ("EC1A 1BB", "GB", "ec1a1bb"), ("M1 1AE", "UK", "m11ae"), ("K1A 0B6", "CA", "k1a0b6"),
     ("1010", "AT", "1010"), ("100-0001", "JP", "1000001"), ("75008", "FR", "75008"), ("k1a-0b6", "CA", "k1a0b6"),
     ("10001-0001", "DE", "100010001")],
)  # fmt: skip
def test_zip(value: object, country: str | None, expected: str) -> None:
    assert normalize("ZIP", value, country=country) == expected


@pytest.mark.parametrize("value", ["-", " - - "])
def test_zip_with_nothing_left_is_invalid(value: str) -> None:
    assert normalize("ZIP", value, country="GB") is None
    assert explain("ZIP", value, country="GB") == "nothing_left"
