"""DOBY, DOBM, DOBD from separate fields and from whole dates."""

from __future__ import annotations

import datetime as dt

import pytest

from audiencesync.matchkeys import explain, normalize


@pytest.mark.parametrize(("value", "expected"), [("2001", "2001"), (1990, "1990"), (1990.0, "1990"), ("1900", "1900")])
def test_birth_year(value: object, expected: str) -> None:
    assert normalize("DOBY", value) == expected


def test_birth_year_this_year_is_valid_next_year_is_not() -> None:
    this_year = dt.date.today().year
    assert normalize("DOBY", str(this_year)) == str(this_year)
    assert explain("DOBY", str(this_year + 1)) == "out_of_range"


@pytest.mark.parametrize(
    ("value", "reason"),
    [("90", "two_digit_year"), (90, "two_digit_year"), ("1899", "out_of_range"), ("3000", "out_of_range"),
     ("19900", "out_of_range"), ("nineteen", "not_a_year"), ("04/07/90", "two_digit_year")],
)  # fmt: skip
def test_invalid_birth_years(value: object, reason: str) -> None:
    assert normalize("DOBY", value) is None
    assert explain("DOBY", value) == reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Feb", "02"), ("february", "02"), ("SEPT", "09"), ("Sep.", "09"), ("9", "09"), ("09", "09"), (12, "12")],
)
def test_birth_month(value: object, expected: str) -> None:
    assert normalize("DOBM", value) == expected


@pytest.mark.parametrize(("value", "reason"), [("13", "out_of_range"), ("0", "out_of_range"), ("Febr", "not_a_month")])
def test_invalid_birth_months(value: str, reason: str) -> None:
    assert explain("DOBM", value) == reason


@pytest.mark.parametrize(("value", "expected"), [("1", "01"), ("31", "31"), (7, "07"), ("7th", "07")])
def test_birth_day(value: object, expected: str) -> None:
    assert normalize("DOBD", value) == expected


@pytest.mark.parametrize(("value", "reason"), [("32", "out_of_range"), ("0", "out_of_range"), ("first", "not_a_day")])
def test_invalid_birth_days(value: str, reason: str) -> None:
    assert explain("DOBD", value) == reason


@pytest.mark.parametrize(
    "value",
    [dt.date(1990, 4, 7), dt.datetime(1990, 4, 7, 13, 5), "1990-04-07", "1990-4-7", "04/07/1990", "4/7/1990",
     "19900407", "1990-04-07T00:00:00", "1990-04-07 00:00:00", "7 April 1990", "April 7, 1990", "Apr 7th 1990"],
)  # fmt: skip
def test_whole_dates_fill_all_three_keys(value: object) -> None:
    assert normalize("DOBY", value) == "1990"
    assert normalize("DOBM", value) == "04"
    assert normalize("DOBD", value) == "07"


def test_date_order_reads_day_first_when_configured() -> None:
    assert normalize("DOBM", "04/07/1990", date_order="DMY") == "07"
    assert normalize("DOBD", "04/07/1990", date_order="DMY") == "04"


@pytest.mark.parametrize("value", ["1990-02-30", "02/30/1990", "13/01/1990"])
def test_impossible_whole_dates_are_invalid_for_all_three_keys(value: str) -> None:
    for key in ("DOBY", "DOBM", "DOBD"):
        assert explain(key, value) == "not_a_date"


def test_two_digit_year_date_still_gives_month_and_day() -> None:
    assert explain("DOBY", "04/07/90") == "two_digit_year"
    assert normalize("DOBM", "04/07/90") == "04"
    assert normalize("DOBD", "04/07/90") == "07"
