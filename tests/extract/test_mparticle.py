"""The one mParticle reader: every identity spelling, reserved attribute, device id and environment
placement the mParticle SDKs use, as both doors (stream and conversions) see it."""

from __future__ import annotations

from typing import Any

import pytest

from audiencesync.conversions.read import flatten_mparticle_batch
from audiencesync.extract import mparticle as mp

IDFA = "AEBE52E7-03EE-455A-B3C4-E57283966239"
GAID = "38400000-8cf0-11bd-b23e-10b96e40000d"


@pytest.mark.parametrize("spelling", ["customerid", "customer_id", "customerId", "CustomerId", "customer"])
def test_every_customer_id_spelling_is_the_customer_id(spelling: str) -> None:
    person = mp.read_person({"user_identities": {spelling: "C-1"}})
    assert (person.customer_id, person.customer_field) == ("C-1", spelling)
    assert person.columns()["customer_id"] == "C-1"


@pytest.mark.parametrize(
    ("field", "column"),
    [
        ("email", "email"),
        ("Email", "email"),
        ("mobile_number", "phone"),
        ("mobileNumber", "phone"),
        ("MobileNumber", "phone"),
        ("phone_number_2", "phone"),
        ("phoneNumber2", "phone"),
        ("phone_number_3", "phone"),
        ("PhoneNumber3", "phone"),
    ],
)
def test_identity_spellings_feed_their_match_key(field: str, column: str) -> None:
    assert mp.read_person({"user_identities": {field: "x@y.io"}}).keys == {column: "x@y.io"}


def test_the_first_phone_given_wins_and_the_others_are_fallbacks() -> None:
    both = mp.read_person({"user_identities": {"mobile_number": "+1 415 555 0100", "phone_number_2": "+1 212"}})
    assert both.keys["phone"] == "+1 415 555 0100"
    only_third = mp.read_person({"user_identities": {"phone_number_3": "+44 20 7946 0000", "email": ""}})
    assert only_third.keys == {"phone": "+44 20 7946 0000"}


def test_other_identity_types_keep_their_names_for_email_identity() -> None:
    person = mp.read_person({"user_identities": {"other": "f" * 64, "other_id_2": "o2", "Other_ID_3": "o3"}})
    assert person.keys == {}
    assert person.columns() == {"other": "f" * 64, "other_id_2": "o2", "other_id_3": "o3"}


@pytest.mark.parametrize("case", [str.lower, str.upper, lambda s: s])
def test_reserved_attributes_in_any_case(case: Any) -> None:
    attrs = {
        case("$FirstName"): "Ann", case("$LastName"): "Lee", case("$Gender"): "f", case("$City"): "Austin",
        case("$State"): "TX", case("$Zip"): "78701", case("$Country"): "US", case("$Mobile"): "+15125550100",
        "tier": "gold",
    }  # fmt: skip
    assert mp.reserved_attributes(attrs) == {
        "first_name": "Ann", "last_name": "Lee", "gender": "f", "city": "Austin", "state": "TX", "zip": "78701",
        "country": "US", "phone": "+15125550100",
    }  # fmt: skip


def test_identity_phone_wins_over_the_mobile_attribute() -> None:
    person = mp.read_person(
        {"user_identities": {"mobile_number": "+14155550100"}, "user_attributes": {"$Mobile": "+15125550100"}}
    )
    assert person.keys["phone"] == "+14155550100"


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        ({"ios_advertising_id": IDFA}, {"idfa": IDFA}),
        ({"android_advertising_id": GAID}, {"gaid": GAID}),
        ({"google_advertising_id": GAID}, {"gaid": GAID}),
        ({"ios_advertising_id": IDFA, "android_advertising_id": GAID}, {"idfa": IDFA, "gaid": GAID}),
        ({"ios_advertising_id": IDFA, "limit_ad_tracking": True}, {}),
        ({"android_advertising_id": GAID, "limit_ad_tracking": True}, {}),
        ({"ios_advertising_id": IDFA, "limit_ad_tracking": False}, {"idfa": IDFA}),
        ({"ios_advertising_id": IDFA, "att_authorization_status": "denied"}, {}),
        ({"ios_advertising_id": IDFA, "att_authorization_status": "authorized"}, {"idfa": IDFA}),
        ({"ios_advertising_id": "", "google_advertising_id": GAID}, {"gaid": GAID}),
    ],
)
def test_advertising_ids_honour_limit_ad_tracking(device: dict[str, Any], expected: dict[str, str]) -> None:
    assert mp.advertising_ids(device) == expected


def test_madid_is_the_idfa_first_then_the_gaid() -> None:
    assert mp.read_person({"device_info": {"android_advertising_id": GAID, "ios_advertising_id": IDFA}}).madid == IDFA
    assert mp.read_person({"device_info": {"google_advertising_id": GAID}}).madid == GAID


@pytest.mark.parametrize(
    ("batch", "env"),
    [
        ({}, "production"),
        ({"environment": "development"}, "development"),
        ({"environment": " Production "}, "production"),
    ],
)
def test_environment_defaults_to_production(batch: dict[str, Any], env: str) -> None:
    assert mp.environment(batch) == env


def test_fields_of_the_wrong_type_are_read_as_empty() -> None:
    person = mp.read_person({"user_identities": ["x"], "user_attributes": "y", "device_info": 3})
    assert person.columns() == {}


COMMERCE = {
    "event_type": "commerce_event",
    "data": {
        "timestamp_unixtime_ms": 1760000000123,
        "currency_code": "USD",
        "custom_attributes": {"store": "SF-01"},
        "product_action": {
            "action": "purchase", "transaction_id": "T-1", "total_amount": 42.0,
            "products": [{"id": "P1", "price": 21.0, "quantity": 2}],
        },
    },
}  # fmt: skip


def test_flatten_gives_one_row_per_event_with_the_person_on_each() -> None:
    batch = {
        "user_identities": {"customerid": "C-9", "phone_number_2": "+14155550100"},
        "device_info": {"google_advertising_id": GAID, "ios_advertising_id": IDFA, "limit_ad_tracking": False},
        "events": [COMMERCE, {"event_type": "custom_event", "data": {"event_name": "x"}}],
    }
    rows = mp.flatten_batch(batch)
    assert len(rows) == 2
    assert rows[0]["customer_id"] == "C-9" and rows[0]["phone"] == "+14155550100"
    assert (rows[0]["idfa"], rows[0]["gaid"]) == (IDFA, GAID)
    assert rows[0]["product_action"] == "purchase" and rows[0]["order_id"] == "T-1"
    assert rows[0]["event_time"] == 1760000000.123
    assert "product_action" not in rows[1]
    assert mp.flatten_batch(batch, commerce_only=True) == rows[:1]


def test_the_conversions_reader_is_this_reader() -> None:
    """Issue 11: the conversions door used to drop phone_number_2/3 and google_advertising_id and send
    the IDFA under limit_ad_tracking; it now reads batches through this module."""
    batch = {
        "user_identities": {"customerid": "C-9", "phone_number_3": "+14155550100"},
        "device_info": {"google_advertising_id": GAID},
        "events": [COMMERCE],
    }
    (row,) = flatten_mparticle_batch(batch)
    assert row == mp.flatten_batch(batch)[0]
    assert (row["customer_id"], row["phone"], row["gaid"]) == ("C-9", "+14155550100", GAID)
    limited = {**batch, "device_info": {"ios_advertising_id": IDFA, "limit_ad_tracking": True}}
    (row,) = flatten_mparticle_batch(limited)
    assert "idfa" not in row and "gaid" not in row
