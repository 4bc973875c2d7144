"""Field names people already use map to keys; an explicit mapping wins."""

from __future__ import annotations

import pytest

from audiencesync.matchkeys import resolve_columns


@pytest.mark.parametrize(
    ("column", "key"),
    [("email", "EMAIL"), ("Email_Address", "EMAIL"), ("E-Mail", "EMAIL"), ("emails", "EMAIL"),
     ("phone_number", "PHONE"), ("PhoneNumber", "PHONE"), ("MOBILE", "PHONE"), ("given_name", "FN"),
     ("FirstName", "FN"), ("First Name", "FN"), ("surname", "LN"), ("family_name", "LN"), ("first_initial", "FI"),
     ("sex", "GEN"), ("Gender", "GEN"), ("birth_year", "DOBY"), ("BirthYear", "DOBY"), ("birth_month", "DOBM"),
     ("birth_day", "DOBD"), ("address_city", "CT"), ("region", "ST"), ("postcode", "ZIP"), ("Zip_Code", "ZIP"),
     ("countryCode", "COUNTRY"), ("country_code", "COUNTRY"), ("idfa", "MADID"), ("android_advertising_id", "MADID"),
     ("customer_id", "EXTERN_ID"), ("user_id", "EXTERN_ID"), ("lookalike_value", "LOOKALIKE_VALUE")],
)  # fmt: skip
def test_alias(column: str, key: str) -> None:
    assert resolve_columns([column, "unrelated"]).get(key) == column


@pytest.mark.parametrize("column", ["birthday", "date_of_birth", "dob", "dateOfBirth", "DOB", "Date Of Birth"])
def test_whole_date_column_fills_all_three_keys(column: str) -> None:
    mapping = resolve_columns([column])
    assert mapping == {"DOBY": column, "DOBM": column, "DOBD": column}


def test_specific_date_columns_beat_the_whole_date() -> None:
    mapping = resolve_columns(["birthday", "birth_year", "birth_day"])
    assert mapping == {"DOBY": "birth_year", "DOBM": "birthday", "DOBD": "birth_day"}


def test_first_initial_derives_from_first_name_unless_given() -> None:
    assert resolve_columns(["first_name"])["FI"] == "first_name"
    assert resolve_columns(["first_name", "first_initial"])["FI"] == "first_initial"
    assert "FI" not in resolve_columns(["first_name"], {"FI": None})


def test_explicit_mapping_wins_and_takes_its_column() -> None:
    mapping = resolve_columns(["email", "work_email", "customer_id"], {"email": "work_email", "EXTERN_ID": "email"})
    assert mapping["EMAIL"] == "work_email"
    assert mapping["EXTERN_ID"] == "email"


def test_explicit_none_switches_a_key_off() -> None:
    assert "PHONE" not in resolve_columns(["phone", "email"], {"PHONE": None})


def test_explicit_mapping_to_a_missing_column_is_an_error() -> None:
    with pytest.raises(KeyError):
        resolve_columns(["email"], {"PHONE": "tel"})


def test_first_column_of_the_same_alias_wins() -> None:
    assert resolve_columns(["Email", "EMAIL"])["EMAIL"] == "Email"


def test_unknown_columns_map_to_nothing() -> None:
    assert resolve_columns(["ltv", "notes", "created_at"]) == {}
