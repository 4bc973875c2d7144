"""Commerce calls as the parser and the conversions builder see them (no server): which calls are
commerce, how a Segment e-commerce track maps to the conversions layout, and that the events a
call queues hold hashes only."""

from __future__ import annotations

import time

import orjson

from audiencesync.config import parse_config
from audiencesync.conversions.build import build_events
from audiencesync.settings.conversions import ConversionsSettings
from audiencesync.stream.commerce import segment_commerce_row
from audiencesync.stream.payloads import Parser
from audiencesync.stream.settings import ServeSettings, stream_audiences

from .conftest import KEY, sha, stream_audience
from .test_stream_payloads import commerce_event, mparticle_batch

SETTINGS = ConversionsSettings(dataset_id="1", stream=True, default_country="US")


def forwarding() -> Parser:
    cfg = parse_config({"meta": {"access_token": "t", "ad_account_id": "act_1"}, "audiences": [stream_audience()]})
    return Parser(stream_audiences(cfg), ServeSettings(write_key="k"), commerce=True)


def test_a_commerce_only_mparticle_batch_is_used_not_skipped():
    parsed = forwarding().mparticle(mparticle_batch(None, events=[commerce_event(), commerce_event()]))
    assert parsed.changes == [] and parsed.calls == 1 and not parsed.skipped
    assert parsed.commerce_events == 2 and len(parsed.commerce) == 2
    row = parsed.commerce[0]
    assert (row["customer_id"], row["product_action"], row["order_id"]) == ("cust-42", "purchase", "T-1001")
    assert row["idfa"] == "607258D9-C28B-43AD-95ED-E9593025D5A1" and row["phone"] == "+14155550123"


def test_a_batch_with_a_membership_and_a_commerce_event_gives_both():
    parsed = forwarding().mparticle(mparticle_batch(True, events=[commerce_event()]))
    assert [(c.audience_key, c.member) for c in parsed.changes] == [(KEY, True)]
    assert len(parsed.commerce) == 1 and parsed.calls == 1


def test_development_commerce_events_are_skipped_with_the_batch():
    parsed = forwarding().mparticle(mparticle_batch(None, environment="development", events=[commerce_event()]))
    assert parsed.commerce == [] and parsed.skipped == {"environment": 1}


def test_segment_order_completed_maps_to_the_conversions_layout():
    call = {
        "type": "track", "userId": "u-1", "event": "Order Completed", "timestamp": "2026-11-20T14:03:00Z",
        "properties": {
            "order_id": "O-9", "revenue": 30, "total": 33, "currency": "usd", "coupon": "C", "gift": True,
            "email": "Prop@Example.com",
            "products": [{"product_id": "P1", "sku": "S1", "price": 10, "quantity": 3, "brand": "B", "url": "u"}],
        },
        "context": {"traits": {"email": "Ann@Example.com", "firstName": "Ann", "address": {"postalCode": "94103"}},
                    "device": {"type": "android", "advertisingId": "38400000-8cf0-11bd-b23e-10b96e40000d"}},
    }  # fmt: skip
    row = segment_commerce_row(call, call["context"])
    assert row is not None
    assert (row["product_action"], row["order_id"], row["value"], row["currency"]) == ("purchase", "O-9", 30, "usd")
    assert row["event_time"] == "2026-11-20T14:03:00Z"
    assert row["products"] == [{"id": "P1", "name": None, "price": 10, "quantity": 3, "brand": "B"}]
    assert row["custom_attributes"] == {"gift": True}  # order fields and identities are not custom data
    assert row["email"] == "Ann@Example.com"  # context.traits before properties
    assert (row["customer_id"], row["firstName"], row["postalCode"]) == ("u-1", "Ann", "94103")
    assert row["gaid"] == "38400000-8cf0-11bd-b23e-10b96e40000d"


def test_segment_single_product_events_and_ad_tracking_off():
    call = {"userId": "u", "event": "Product Added", "properties": {"product_id": "P", "price": 4.5, "quantity": 2}}
    call["context"] = {"device": {"type": "ios", "advertisingId": "A-B", "adTrackingEnabled": False}}
    row = segment_commerce_row(call, call["context"])
    assert row is not None and row["product_action"] == "add_to_cart"
    assert row["products"] == [{"id": "P", "name": None, "price": 4.5, "quantity": 2}]
    assert "idfa" not in row and "gaid" not in row
    assert segment_commerce_row({"event": "Signed Up"}, {}) is None


def test_built_events_hold_hashes_only_and_keep_the_seeds_mapping():
    now = time.time()
    parsed = forwarding().mparticle(mparticle_batch(None, events=[commerce_event()]))
    for row in parsed.commerce:
        row["event_time"] = now - 60
    events, report = build_events(parsed.commerce, SETTINGS, time.time)
    assert report.rejected == {} and len(events) == 1
    ev = events[0]
    assert ev["event_name"] == "Purchase" and ev["custom_data"]["value"] == 19.99
    assert ev["user_data"]["em"] == sha("milton@initech.com") and ev["user_data"]["external_id"] == "cust-42"
    blob = orjson.dumps(events).decode()
    for raw in ("milton@initech.com", "Milton", "4155550123", "Austin"):
        assert raw not in blob


def test_rows_that_cannot_be_events_are_counted_by_reason():
    rows = [
        {"product_action": "refund", "event_time": time.time(), "email": "a@b.io"},
        {"product_action": "purchase", "event_time": "yesterday", "email": "a@b.io"},
        {"product_action": "purchase", "event_time": time.time(), "currency": "USD", "email": "a@b.io"},
    ]
    events, report = build_events(rows, SETTINGS, time.time)
    assert events == []
    assert report.skipped == {"action:refund": 1}
    assert report.rejected == {"bad_event_time": 1, "purchase_without_value": 1}
