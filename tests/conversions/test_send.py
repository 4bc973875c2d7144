"""End to end against the emulator over HTTP: mapping rules, LDU, rejects, batching, errors, test events."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
from tests.conversions.helpers import DATASET, Shop, sale, sha

from audiencesync.conversions import Source, send
from audiencesync.conversions.report import ConversionReport

H_US = sha("us")
IDFA = "AEBE52E7-03EE-455A-B3C4-E57283966239"


def run(
    shop: Shop, rows: list[dict[str, Any]] | None = None, path: Path | None = None, **conv: Any
) -> ConversionReport:
    if rows is not None:
        path = shop.write(rows, path)
    return send(shop.config(**conv), Source(path or shop.events))


def by_order(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["custom_data"]["order_id"]: e for e in events}


def test_every_mapping_rule_reaches_facebook(shop: Shop) -> None:
    rows = [
        sale(
            1,
            product_action="purchase",
            email=" Ann.Lee@Example.COM ",
            phone="(415) 555-0100",
            first_name="Zoë",
            last_name="St. John",
            gender="Female",
            city="Los Angeles",
            state="California",
            zip="90001-1234",
            country="",
            idfa=IDFA,
            customer_id="Cust-0042",
            birthday="1990-04-07",
            value="",
        ),
        sale(2, product_action="add_to_cart", value="12.5", currency="", products="", custom_attributes=""),
        sale(3, product_action="add_to_wishlist"),
        sale(4, product_action="checkout"),
        sale(5, product_action="view_detail"),
        sale(6, product_action="remove_from_cart"),
        sale(7, product_action="refund"),
        sale(8, product_action=""),
    ]
    report = run(shop, rows)
    assert report.status == "ok", report.error
    assert (report.read, report.sent, report.events_received) == (8, 5, 5)
    assert report.skipped == {"action:remove_from_cart": 1, "action:refund": 1, "no_product_action": 1}
    events = by_order(shop.accepted())
    assert {o: e["event_name"] for o, e in events.items()} == {
        "ORD-000001": "Purchase",
        "ORD-000002": "AddToCart",
        "ORD-000003": "AddToWishlist",
        "ORD-000004": "InitiateCheckout",
        "ORD-000005": "ViewContent",
    }
    purchase = events["ORD-000001"]
    assert purchase["action_source"] == "physical_store"
    assert purchase["event_time"] == int(rows[0]["event_time"])
    assert purchase["user_data"] == {
        "em": sha("ann.lee@example.com"),
        "ph": sha("14155550100"),
        "fn": sha("zoë"),
        "ln": sha("stjohn"),
        "ge": sha("f"),
        "ct": sha("losangeles"),
        "st": sha("ca"),
        "zp": sha("90001"),
        "madid": IDFA.lower(),
        "external_id": "Cust-0042",
        "db": sha("19900407"),
    }
    cd = purchase["custom_data"]
    assert cd["value"] == 44.98  # 19.99 × 2 + 5.00 × 1
    assert cd["currency"] == "USD"
    assert cd["order_id"] == "ORD-000001"
    assert cd["contents"] == [
        {"id": "SKU-1", "quantity": 2, "item_price": 19.99, "brand": "Acme", "category": "Tops"},
        {"id": "SKU-X", "quantity": 1, "item_price": 5.0},
    ]
    assert (cd["store"], cd["channel"]) == ("SF-01", "till")
    assert "data_processing_options" not in purchase
    assert len(purchase["event_id"]) == 32
    cart = events["ORD-000002"]["custom_data"]
    assert cart == {"value": 12.5, "order_id": "ORD-000002"}


def test_gaid_is_used_when_there_is_no_idfa_and_the_country_column_is_sent(shop: Shop) -> None:
    gaid = "38400000-8CF0-11BD-B23E-10B96E40000D"
    run(shop, [sale(1, gaid=gaid, country="United States"), sale(2, idfa=IDFA, gaid=gaid)])
    events = by_order(shop.accepted())
    assert events["ORD-000001"]["user_data"]["madid"] == gaid.lower()
    assert events["ORD-000001"]["user_data"]["country"] == H_US
    assert events["ORD-000002"]["user_data"]["madid"] == IDFA.lower()


def test_email_identity_other_forwards_an_upstream_hash_as_given(shop: Shop) -> None:
    upstream = sha("ann@example.com").upper()
    rows = [
        sale(1, other=upstream, email="someone.else@example.com"),
        sale(2, other="raw.email@example.com", email="x@example.com", idfa=IDFA),
        sale(3, other="", email="y@example.com"),
    ]
    report = run(shop, rows, email_identity="other")
    events = by_order(shop.accepted())
    assert events["ORD-000001"]["user_data"] == {"em": upstream.lower()}
    assert events["ORD-000002"]["user_data"] == {"madid": IDFA.lower()}  # a raw value is never forwarded
    assert report.invalid_keys == {"EMAIL": {"not_a_sha256_hash": 1}}
    assert report.rejected == {"no_user_key": 1}


def test_email_identity_email_hashes_a_real_email_and_passes_a_prehashed_one(shop: Shop) -> None:
    run(shop, [sale(1), sale(2, email=sha("pre@example.com").upper())])
    events = by_order(shop.accepted())
    assert events["ORD-000001"]["user_data"]["em"] == sha("buyer1@example.com")
    assert events["ORD-000002"]["user_data"]["em"] == sha("pre@example.com")


LOCATIONS = [
    sale(1, country="US", state="CA"),
    sale(2, country="US", state="NY"),
    sale(3, country="", state="California"),
    sale(4, country="DE", state="Bavaria"),
    sale(5, country="US", state=""),
    sale(6, country="", state=""),
]


def ldu_of(shop: Shop) -> dict[str, tuple[Any, ...] | None]:
    out: dict[str, tuple[Any, ...] | None] = {}
    for order, e in by_order(shop.accepted()).items():
        if "data_processing_options" in e:
            out[order] = (
                tuple(e["data_processing_options"]),
                e["data_processing_options_country"],
                e["data_processing_options_state"],
            )
        else:
            out[order] = None
    return out


def test_ldu_never_sends_no_processing_options(shop: Shop) -> None:
    report = run(shop, LOCATIONS, ldu="never")
    assert set(ldu_of(shop).values()) == {None}
    assert report.ldu == 0


def test_ldu_always_flags_every_event_with_metas_codes(shop: Shop) -> None:
    report = run(shop, LOCATIONS, ldu="always", default_country=None)
    assert ldu_of(shop) == {
        "ORD-000001": (("LDU",), 1, 1000),
        "ORD-000002": (("LDU",), 1, 0),
        "ORD-000003": (("LDU",), 0, 0),  # no country known: Meta geolocates
        "ORD-000004": (("LDU",), 0, 0),
        "ORD-000005": (("LDU",), 1, 0),
        "ORD-000006": (("LDU",), 0, 0),
    }
    assert report.ldu == 6


def test_ldu_when_located_flags_only_members_with_country_and_state(shop: Shop) -> None:
    run(shop, LOCATIONS, ldu="when_located", default_country="US")
    assert ldu_of(shop) == {
        "ORD-000001": (("LDU",), 1, 1000),
        "ORD-000002": (("LDU",), 1, 0),
        "ORD-000003": (("LDU",), 1, 1000),  # the default country makes the state readable
        "ORD-000004": (("LDU",), 0, 0),
        "ORD-000005": None,
        "ORD-000006": None,
    }


def test_ldu_when_located_without_a_default_country_needs_the_members_own(shop: Shop) -> None:
    run(shop, LOCATIONS, ldu="when_located", default_country=None)
    flagged = {o for o, v in ldu_of(shop).items() if v}
    assert flagged == {"ORD-000001", "ORD-000002", "ORD-000004"}


def test_bad_events_are_set_aside_with_their_reason_and_never_sink_the_batch(shop: Shop) -> None:
    good = [sale(i) for i in range(10)]
    bad = [
        sale(100, age_s=63 * 86400),
        sale(101, age_s=-3600),
        sale(102, value="", products="", currency="USD"),
        sale(103, currency=""),
        sale(104, email="not-an-email", phone="12"),
        sale(105, event_time="last tuesday"),
        sale(106, products="[{broken"),
        sale(107, currency="dollars"),
    ]
    report = run(shop, good[:5] + bad + good[5:])
    assert report.status == "ok"
    assert report.sent == 10 and report.events_received == 10 and report.requests == 1
    assert report.rejected == {
        "too_old": 1,
        "in_future": 1,
        "purchase_without_value": 1,
        "purchase_without_currency": 1,
        "no_user_key": 1,
        "bad_event_time": 1,
        "bad_products": 1,
        "bad_currency": 1,
    }
    assert report.invalid_keys["EMAIL"] == {"not_an_email": 1}
    with open(report.rejects_file or "") as f:
        rejects = list(csv.DictReader(f))
    assert {r["order_id"]: r["reason"] for r in rejects} == {
        "ORD-000105": "bad_event_time",
        "ORD-000106": "bad_products",
        "ORD-000100": "too_old",
        "ORD-000101": "in_future",
        "ORD-000102": "purchase_without_value",
        "ORD-000103": "purchase_without_currency",
        "ORD-000104": "no_user_key",
        "ORD-000107": "bad_currency",
    }
    assert sorted(int(r["row"]) for r in rejects) == list(range(6, 14))
    text = Path(report.rejects_file or "").read_text()
    assert "@" not in text and "buyer" not in text.lower()
    assert set(by_order(shop.accepted())) == {f"ORD-{i:06d}" for i in range(10)}


def test_an_event_facebook_refuses_is_isolated_and_the_rest_delivered(shop: Shop) -> None:
    httpx.post(f"{shop.server.url}/_emulator/config", json={"physical_store_window_days": 30}).raise_for_status()
    try:
        rows = [sale(i) for i in range(40)]
        rows[17] = sale(17, age_s=40 * 86400)  # passes the local 62-day rule, not this stricter Facebook
        report = run(shop, rows, batch_size=20)
    finally:
        httpx.post(f"{shop.server.url}/_emulator/config", json={"physical_store_window_days": 62})
    assert report.status == "ok"
    assert report.sent == 39 and report.rejected == {"facebook:100/2804003": 1}
    assert report.requests > 2
    assert "ORD-000017" not in by_order(shop.accepted()) and len(shop.accepted()) == 39
    with open(report.rejects_file or "") as f:
        (reject,) = list(csv.DictReader(f))
    assert (reject["row"], reject["order_id"]) == ("18", "ORD-000017")


def test_batches_hold_at_most_the_batch_size(shop: Shop) -> None:
    report = run(shop, [sale(i) for i in range(2500)])
    assert report.sent == 2500 and report.events_received == 2500
    sizes = sorted(
        r["rows"] for r in httpx.get(f"{shop.server.url}/_emulator/requests").json() if r["path"].endswith("/events")
    )
    assert sizes == [500, 1000, 1000]
    assert len(shop.accepted()) == 2500


def test_transient_errors_are_retried(shop: Shop) -> None:
    shop.fault(method="POST", path=f"{DATASET}/events", count=2, error={"code": 2})
    report = run(shop, [sale(i) for i in range(5)])
    assert report.status == "ok" and report.sent == 5 and report.retries == 2
    assert len(shop.accepted()) == 5


def test_a_lost_acknowledgement_is_resent_and_deduplicated_by_facebook(shop: Shop) -> None:
    shop.fault(method="POST", path=f"{DATASET}/events", count=1, drop="after")
    report = run(shop, [sale(i) for i in range(5)])
    assert report.status == "ok" and report.sent == 5
    view = shop.received()
    assert len(view["events"]) == 5 and view["duplicates_dropped"] == 5


def test_an_expired_token_stops_the_run_with_a_clear_error(shop: Shop) -> None:
    shop.fault(method="POST", path=f"{DATASET}/events", count=1, error={"code": 190, "error_subcode": 463})
    report = run(shop, [sale(i) for i in range(5)])
    assert report.status == "failed" and report.sent == 0
    assert "access token has expired" in (report.error or "")
    assert shop.server.token not in (report.error or "")
    again = run(shop)
    assert again.status == "ok" and again.sent == 5


def test_test_events_go_to_the_test_store_and_do_not_mask_real_ones(shop: Shop) -> None:
    rows = [sale(i) for i in range(3)]
    report = run(shop, rows, test_event_code="TEST123", upload_tag="store-sales")
    assert report.sent == 3
    view = shop.received()
    assert view["events"] == [] and len(view["test_events"]["TEST123"]) == 3
    log = [r for r in httpx.get(f"{shop.server.url}/_emulator/requests").json() if r["path"].endswith("/events")]
    assert {"test_event_code", "upload_tag", "data"} <= set(log[0]["params"])
    again = run(shop, test_event_code="TEST123")
    assert again.sent == 0 and again.skipped == {"already_sent": 3}
    real = run(shop)
    assert real.sent == 3 and len(shop.accepted()) == 3


def test_mparticle_batches_end_to_end(shop: Shop) -> None:
    import time

    now_ms = int(time.time() * 1000) - 3_600_000
    batch = {
        "user_identities": {"email": "Ann@Example.com", "customer_id": "C-1"},
        "user_attributes": {"$FirstName": "Ann", "$Gender": "female", "$City": "San Francisco", "$Country": "US"},
        "device_info": {"android_advertising_id": "38400000-8cf0-11bd-b23e-10b96e40000d"},
        "events": [
            {
                "event_type": "commerce_event",
                "data": {
                    "timestamp_unixtime_ms": now_ms,
                    "currency_code": "EUR",
                    "custom_attributes": {"store": "Berlin"},
                    "product_action": {
                        "action": "purchase",
                        "transaction_id": "T-1",
                        "products": [{"id": "P1", "price": 21.0, "quantity": 2, "brand": "Acme"}],
                    },
                },
            },
            {
                "event_type": "commerce_event",
                "data": {"timestamp_unixtime_ms": now_ms, "product_action": {"action": "remove_from_cart"}},
            },
            {"event_type": "custom_event", "data": {"event_name": "x", "custom_event_type": "other"}},
        ],
    }
    path = shop.root / "batches.jsonl"
    path.write_bytes(orjson.dumps(batch) + b"\n")
    report = send(shop.config(), Source(path))
    assert report.sent == 1
    assert report.skipped == {"action:remove_from_cart": 1, "not_a_commerce_event": 1}
    (event,) = shop.accepted()
    assert event["event_time"] == now_ms // 1000
    assert event["user_data"] == {
        "em": sha("ann@example.com"),
        "fn": sha("ann"),
        "ge": sha("f"),
        "ct": sha("sanfrancisco"),
        "country": H_US,
        "madid": "38400000-8cf0-11bd-b23e-10b96e40000d",
        "external_id": "C-1",
    }
    assert event["custom_data"] == {
        "store": "Berlin",
        "value": 42.0,
        "currency": "EUR",
        "contents": [{"id": "P1", "quantity": 2, "item_price": 21.0, "brand": "Acme"}],
        "content_type": "product",
        "order_id": "T-1",
    }


def test_a_duckdb_query_is_a_source(shop: Shop) -> None:
    shop.write([sale(i) for i in range(4)])
    cfg = shop.config()
    report = send(cfg, Source(shop.events, query="select * from events where order_id <> 'ORD-000002'"))
    assert report.sent == 3
    assert set(by_order(shop.accepted())) == {"ORD-000000", "ORD-000001", "ORD-000003"}


def test_state_holds_hashes_and_counts_never_personal_data(shop: Shop) -> None:
    run(shop, [sale(i, phone="+1 415 555 0100", first_name="Annabel") for i in range(5)])
    con = duckdb.connect(str(shop.root / "state.duckdb"), read_only=True)
    try:
        cells = [
            str(v)
            for t in ("conversion_events", "conversion_runs")
            for r in con.execute(f"select * from {t}").fetchall()
            for v in r
        ]
    finally:
        con.close()
    text = " ".join(cells).lower()
    assert cells
    for raw in ("@", "buyer", "example.com", "annabel", "4155550100", "sf-01"):
        assert raw not in text
    report = json.loads(next(c for c in cells if c.startswith("{")))
    assert report["sent"] == 5
