"""The event mapping without any network: names, time, custom_data, event ids, local validation."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from audiencesync.conversions.mapping import EventMapper, Reject, Skip, custom_data, event_id, event_time
from audiencesync.conversions.settings import ConversionsSettings
from audiencesync.conversions.validate import FUTURE_TOLERANCE_S, WINDOW_MARGIN_S, check

NOW = 1_760_000_000


def mapper(**kw: object) -> EventMapper:
    return EventMapper(ConversionsSettings(dataset_id="1", **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("action", "name"),
    [
        ("add_to_cart", "AddToCart"),
        ("add_to_wishlist", "AddToWishlist"),
        ("checkout", "InitiateCheckout"),
        ("purchase", "Purchase"),
        ("view_detail", "ViewContent"),
        ("Add to Cart", "AddToCart"),
        ("VIEW-DETAIL", "ViewContent"),
    ],
)
def test_product_actions_map_to_standard_events(action: str, name: str) -> None:
    assert mapper().event_name({"product_action": action}) == name


@pytest.mark.parametrize("action", ["remove_from_cart", "refund", "click", "checkout_option", "remove_from_wish_list"])
def test_actions_without_a_facebook_event_are_skipped_with_their_name(action: str) -> None:
    with pytest.raises(Skip) as e:
        mapper().event_name({"product_action": action})
    expected = "remove_from_wishlist" if action == "remove_from_wish_list" else action
    assert e.value.reason == f"action:{expected}"


def test_missing_action_and_non_commerce_events_are_skipped() -> None:
    with pytest.raises(Skip, match="no_product_action"):
        mapper().event_name({"product_action": " "})
    with pytest.raises(Skip, match="not_a_commerce_event"):
        mapper().event_name({"event_type": "custom_event"})


def test_the_mapping_is_configurable() -> None:
    m = mapper(events={"refund": "Refund", "view_detail": None, "Add To Cart": "AddedToBag"})
    assert m.event_name({"product_action": "refund"}) == "Refund"
    assert m.event_name({"product_action": "add_to_cart"}) == "AddedToBag"
    with pytest.raises(Skip, match="action:view_detail"):
        m.event_name({"product_action": "view_detail"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1760000000", 1_760_000_000),
        (1_760_000_000, 1_760_000_000),
        (1_760_000_000.9, 1_760_000_000),
        ("1760000000000", 1_760_000_000),
        ("2025-10-09T08:53:20Z", 1_760_000_000),
        ("2025-10-09T10:53:20+02:00", 1_760_000_000),
        ("2025-10-09 08:53:20", 1_760_000_000),
        (dt.datetime(2025, 10, 9, 8, 53, 20), 1_760_000_000),
        (dt.datetime(2025, 10, 9, 8, 53, 20, tzinfo=dt.UTC), 1_760_000_000),
    ],
)
def test_event_time_accepts_iso_8601_and_unix_seconds(value: object, expected: int) -> None:
    assert event_time(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "no_event_time"),
        ("", "no_event_time"),
        ("yesterday", "bad_event_time"),
        ("-5", "bad_event_time"),
        (True, "bad_event_time"),
    ],
)
def test_bad_event_times_are_rejected(value: object, reason: str) -> None:
    with pytest.raises(Reject, match=reason):
        event_time(value)


def test_value_is_the_events_value_when_set() -> None:
    cd = custom_data({"value": "42.50", "products": json.dumps([{"id": "A", "price": 10, "quantity": 3}])})
    assert cd["value"] == 42.5


def test_value_is_the_sum_of_price_times_quantity_otherwise() -> None:
    products = [
        {"id": "A", "price": 19.99, "quantity": 3},
        {"id": "B", "price": "0.10", "quantity": "2"},
        {"id": "C", "price": 5},
        {"id": "D"},
    ]
    assert custom_data({"products": json.dumps(products)})["value"] == 65.17


def test_no_value_and_no_priced_product_gives_no_value() -> None:
    assert "value" not in custom_data({"products": json.dumps([{"id": "A", "quantity": 1}])})


def test_contents_come_from_the_products() -> None:
    products = [
        {
            "id": "A",
            "name": "Shirt",
            "price": 19.99,
            "quantity": 2,
            "brand": "Acme",
            "category": "Tops",
            "variant": "L",
        },
        {"sku": 77, "price": 1},
        {"name": "no id", "price": 3},
    ]
    cd = custom_data({"products": json.dumps(products), "currency": "eur"})
    assert cd["contents"] == [
        {"id": "A", "quantity": 2, "item_price": 19.99, "brand": "Acme", "category": "Tops"},
        {"id": "77", "quantity": 1, "item_price": 1.0},
    ]
    assert cd["content_type"] == "product"
    assert cd["currency"] == "EUR"
    assert cd["value"] == 43.98  # a product without an id still has a price


def test_products_may_arrive_as_a_list_already() -> None:
    cd = custom_data({"products": [{"id": "A", "price": 2.5, "quantity": 2}]})
    assert cd["value"] == 5.0 and cd["contents"][0]["id"] == "A"


def test_order_id_and_custom_attributes_go_to_custom_data_and_standard_fields_win() -> None:
    cd = custom_data(
        {
            "order_id": "ORD-1",
            "value": "10",
            "custom_attributes": json.dumps({"store": "SF-01", "value": 999, "loyalty": True, "empty": None}),
        }
    )
    assert cd == {"store": "SF-01", "loyalty": True, "value": 10.0, "order_id": "ORD-1"}


def test_an_order_id_read_as_a_float_keeps_its_integer_form() -> None:
    assert custom_data({"order_id": 12345.0})["order_id"] == "12345"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"products": "not json"}, "bad_products"),
        ({"products": json.dumps([1, 2])}, "bad_products"),
        ({"products": json.dumps([{"id": "A", "price": "abc"}])}, "bad_products"),
        ({"custom_attributes": "[1]"}, "bad_custom_attributes"),
        ({"custom_attributes": "{"}, "bad_custom_attributes"),
        ({"value": "ten"}, "bad_value"),
        ({"value": "-3"}, "negative_value"),
        ({"value": "NaN"}, "bad_value"),
        ({"currency": "dollars"}, "bad_currency"),
        ({"currency": "XYZ"}, "bad_currency"),
    ],
)
def test_malformed_fields_reject_the_row(row: dict[str, object], reason: str) -> None:
    with pytest.raises(Reject, match=reason):
        custom_data(row)


def test_event_has_the_physical_store_source_and_settings_can_change_it() -> None:
    row = {"product_action": "purchase", "event_time": str(NOW), "value": "1", "currency": "USD"}
    assert mapper().event(row)["action_source"] == "physical_store"
    assert mapper(action_source="phone_call").event(row)["action_source"] == "phone_call"


def ev(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "event_name": "Purchase",
        "event_time": NOW - 3600,
        "action_source": "physical_store",
        "user_data": {"em": "x" * 64},
        "custom_data": {"value": 1.0, "currency": "USD", "order_id": "O1"},
    }
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (ev(), None),
        (ev(event_time=NOW - 62 * 86400 + WINDOW_MARGIN_S + 60), None),
        (ev(event_time=NOW - 62 * 86400), "too_old"),
        (ev(event_time=NOW + FUTURE_TOLERANCE_S + 1), "in_future"),
        (ev(custom_data={"currency": "USD"}), "purchase_without_value"),
        (ev(custom_data={"value": 1.0}), "purchase_without_currency"),
        (ev(event_name="AddToCart", custom_data={}), None),
        (ev(user_data=None), "no_user_key"),
        (ev(user_data={}), "no_user_key"),
    ],
)
def test_local_validation_mirrors_metas_rules(event: dict[str, object], reason: str | None) -> None:
    assert check(event, now=NOW, window_days=62) == reason


def test_seven_day_window_for_other_sources() -> None:
    assert check(ev(event_time=NOW - 8 * 86400), now=NOW, window_days=7) == "too_old"


def test_event_id_is_deterministic_and_keyed_like_metas_offline_dedup() -> None:
    a = ev()
    assert event_id(a) == event_id(ev())
    assert event_id(a) == event_id(ev(user_data={"em": "y" * 64}))  # same order: same event
    assert event_id(a) != event_id(ev(event_time=NOW - 3599))
    assert event_id(a) != event_id(ev(event_name="AddToCart"))
    no_order = ev(custom_data={"value": 1.0, "currency": "USD"})
    assert event_id(no_order) != event_id(ev(custom_data={"value": 1.0, "currency": "USD"}, user_data={"em": "z" * 64}))
    assert len(event_id(a)) == 32 and all(c in "0123456789abcdef" for c in event_id(a))
