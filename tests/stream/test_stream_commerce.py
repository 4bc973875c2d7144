"""Commerce events from `serve` to the Conversions API, exactly once (issue 11, part 3).

The official SDKs (mParticle's Events API client, Segment's) send commerce events to `serve` over
real HTTP; they reach the emulator's CAPI dataset once, mapped as mParticle's Offline Conversions
integration maps them (seed 001), through the same conversions pipeline as `conversions send`.
Crashes between Facebook's answer and the commit (a kill -9 of the server process, a failed
ledger write, a failed queue delete) never make an event count twice.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from audiencesync.conversions.deliver import ConversionState
from audiencesync.state.ingest import IngestLog
from audiencesync.stream.members import COLUMNS
from audiencesync.stream.server import free_port

from .conftest import KEY, WRITE_KEY, StreamProject, sha
from .test_stream_kill9 import Server
from .test_stream_sdks import GIVE_UP_WITHIN, SECRET, mparticle_api, within

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore::SyntaxWarning")]

DATASET = "987654321"
IDFA = "AEBE52E7-03EE-455A-B3C4-E57283966239"
CONVERSIONS = {"dataset_id": DATASET, "stream": True, "default_country": "US"}
FAST = {"mparticle_api_secret": SECRET, "flush_after": "100ms"}


def received(url: str) -> dict[str, Any]:
    r = httpx.get(f"{url}/_emulator/datasets/{DATASET}/events")
    r.raise_for_status()
    return r.json()


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def queued(root: Path) -> int:
    """Commerce events waiting in the server's ingest log (the project's state is `state.duckdb`)."""
    return IngestLog(root / "state.duckdb.queue.sqlite", COLUMNS).commerce_depth()[0]


def metric(text: str, name: str) -> float:
    """The value of one sample (`name` with its labels) of the server's /metrics, 0 when absent."""
    for line in text.splitlines():
        if line.startswith(f"audiencesync_stream_{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def commerce_batch(order: str, action: str = "purchase", *, total: float | None = None, limit_ad: bool = False) -> Any:
    """An mParticle batch with one commerce event, built with the SDK's own models."""
    import mparticle

    batch = mparticle.Batch()
    batch.environment = "production"
    ids = mparticle.UserIdentities()
    ids.customerid = f"cust-{order}"
    ids.email = f"Buyer.{order}@Example.com"
    batch.user_identities = ids
    batch.user_attributes = {"$FirstName": "Milton", "$City": "Austin", "$State": "TX", "loyalty": "gold"}
    batch.device_info = mparticle.DeviceInformation(ios_advertising_id=IDFA)
    if limit_ad:  # not a field of the Python SDK's model; the Events API takes it in device_info
        batch.device_info = {"ios_advertising_id": IDFA, "limit_ad_tracking": True}
    products = [
        mparticle.Product(id="SKU-1", name="Stapler", brand="Swingline", category="Office", price=19.99, quantity=3),
        mparticle.Product(id="SKU-2", name="Cake", price=5.0),
    ]
    pa = mparticle.ProductAction(action)
    pa.transaction_id = order
    pa.products = products
    if total is not None:
        pa.total_amount = total
    event = mparticle.CommerceEvent(pa)
    event.currency_code = "USD"
    event.timestamp_unixtime_ms = int((time.time() - 3600) * 1000)
    event.custom_attributes = {"store": "ATX-01", "channel": "till"}
    batch.events = [event, mparticle.AppEvent(event_name="Viewed", custom_event_type="navigation")]
    return batch


def by_order(url: str) -> dict[str, dict[str, Any]]:
    return {e["custom_data"]["order_id"]: e for e in received(url)["events"]}


def test_mparticle_sdk_commerce_events_reach_capi_once_with_the_seeds_mapping(project, server_for, emu):
    srv = server_for(FAST, conversions=CONVERSIONS)
    api = mparticle_api(srv.url)
    first = commerce_batch("T-1", total=42.0)
    within(GIVE_UP_WITHIN, lambda: api.upload_events(first))
    bulk = [commerce_batch(f"T-{a}", a) for a in ("add_to_cart", "checkout", "view_detail", "add_to_wishlist")]
    bulk.append(commerce_batch("T-refund", "refund"))  # no Facebook event: skipped, counted
    within(GIVE_UP_WITHIN, lambda: api.bulk_upload_events(bulk))
    within(GIVE_UP_WITHIN, lambda: api.upload_events(first))  # the same batch again, as a retry sends it
    wait_for(lambda: len(by_order(emu.url)) == 5 and queued(project.root) == 0)

    events = by_order(emu.url)
    assert {o: e["event_name"] for o, e in events.items()} == {
        "T-1": "Purchase", "T-add_to_cart": "AddToCart", "T-checkout": "InitiateCheckout",
        "T-view_detail": "ViewContent", "T-add_to_wishlist": "AddToWishlist",
    }  # fmt: skip
    purchase = events["T-1"]
    assert purchase["action_source"] == "physical_store"
    cd = purchase["custom_data"]
    assert cd["value"] == 42.0 and cd["currency"] == "USD"  # the event's value when set
    assert cd["store"] == "ATX-01" and cd["channel"] == "till"  # custom attributes
    assert cd["contents"][0] == {"id": "SKU-1", "quantity": 3, "item_price": 19.99, "brand": "Swingline",
                                 "category": "Office"}  # fmt: skip
    assert events["T-add_to_cart"]["custom_data"]["value"] == pytest.approx(64.97)  # else the sum of the products
    ud = purchase["user_data"]
    assert ud["em"] == sha("buyer.t-1@example.com") and ud["external_id"] == "cust-T-1"
    assert ud["fn"] == sha("milton") and ud["ct"] == sha("austin") and ud["st"] == sha("tx")
    assert ud["madid"] == IDFA.lower()
    assert received(emu.url)["events_received"] == 5  # the retried batch was not sent again

    metrics = httpx.get(f"{srv.url}/metrics").text
    assert metric(metrics, "commerce_events_received_total") == 7
    assert metric(metrics, "commerce_events_forwarded_total") == 5
    assert metric(metrics, 'commerce_events_skipped_total{reason="action:refund"}') == 1
    # the retried batch: still queued (not queued twice), or delivered already (the ledger skips it)
    again = [f'commerce_events_skipped_total{{reason="{r}"}}' for r in ("already_queued", "already_sent")]
    assert sum(metric(metrics, m) for m in again) == 1
    assert metric(metrics, 'skipped_calls_total{reason="no_membership"}') == 0


def test_limit_ad_tracking_keeps_the_idfa_out_of_the_event(server_for, emu):
    srv = server_for(FAST, conversions=CONVERSIONS)
    r = httpx.post(f"{srv.url}/v2/events", json=_json(commerce_batch("T-lat", limit_ad=True)), auth=(WRITE_KEY, SECRET))
    assert r.status_code == 200 and r.json()["commerce_events"]["queued"] == 1
    wait_for(lambda: "T-lat" in by_order(emu.url))
    assert "madid" not in by_order(emu.url)["T-lat"]["user_data"]


def _json(batch: Any) -> Any:
    from mparticle.api_client import ApiClient

    return ApiClient.sanitize_for_serialization(batch)


def test_segment_sdk_order_completed_reaches_capi_once(project, server_for, emu):
    from segment.analytics import Client

    srv = server_for({"flush_after": "100ms"}, conversions=CONVERSIONS)
    seg = Client(write_key=WRITE_KEY, host=srv.url, gzip=True, upload_interval=0.05)
    try:
        when = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        order = {
            "order_id": "S-1", "revenue": 25.0, "currency": "eur", "coupon": "X",
            "products": [{"product_id": "P-1", "sku": "SKU-P1", "price": 10.0, "quantity": 2, "brand": "Acme"},
                         {"product_id": "P-2", "price": 5.0}],
            "store": "web-outlet",
        }  # fmt: skip
        context = {"traits": {"email": "Seg@Example.com", "address": {"city": "Paris", "country": "FR"}}}
        seg.track("seg-buyer", "Order Completed", order, context=context, timestamp=when)
        seg.track("seg-buyer", "Order Completed", order, context=context, timestamp=when)  # a duplicate
        seg.track("seg-viewer", "Product Viewed", {"product_id": "P-3", "price": 7.5}, context=context, timestamp=when)
        seg.identify("seg-member", {KEY: True})
        within(GIVE_UP_WITHIN, seg.flush)
        wait_for(lambda: len(received(emu.url)["events"]) == 2 and queued(project.root) == 0)
    finally:
        within(GIVE_UP_WITHIN, seg.shutdown)
    events = {e["event_name"]: e for e in received(emu.url)["events"]}
    purchase = events["Purchase"]
    assert purchase["custom_data"]["order_id"] == "S-1"
    assert purchase["custom_data"]["value"] == 25.0 and purchase["custom_data"]["currency"] == "EUR"
    assert [c["id"] for c in purchase["custom_data"]["contents"]] == ["P-1", "P-2"]
    assert purchase["custom_data"]["store"] == "web-outlet"
    assert purchase["event_time"] == int(when.timestamp())
    assert purchase["user_data"]["em"] == sha("seg@example.com")
    assert purchase["user_data"]["external_id"] == "seg-buyer"
    assert purchase["user_data"]["ct"] == sha("paris") and purchase["user_data"]["country"] == sha("fr")
    assert events["ViewContent"]["custom_data"]["value"] == 7.5
    assert received(emu.url)["events_received"] == 2


def test_commerce_is_counted_not_forwarded_without_the_setting(server_for, emu):
    srv = server_for(FAST, conversions={"dataset_id": DATASET})
    r = httpx.post(f"{srv.url}/v2/events", json=_json(commerce_batch("T-off")), auth=(WRITE_KEY, SECRET))
    assert r.status_code == 200
    assert r.json()["commerce_events"]["skipped_by_reason"] == {"commerce_not_forwarded": 1}
    metrics = httpx.get(f"{srv.url}/metrics").text
    assert 'audiencesync_stream_skipped_calls_total{reason="commerce_not_forwarded"} 1' in metrics
    assert 'audiencesync_stream_commerce_events_skipped_total{reason="commerce_not_forwarded"} 1' in metrics
    time.sleep(0.5)
    assert received(emu.url)["events"] == []


def test_a_failed_ledger_write_resends_with_the_same_event_id(project, server_for, emu, monkeypatch):
    """Facebook answered, the record failed (as a crash right after the answer would): the event stays
    queued, the next delivery sends it again with the same event_id, and Facebook drops the copy."""
    real = ConversionState.record
    calls = {"n": 0}

    def fail_first(self: ConversionState, events: Any, run_id: str) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated crash before the commit")
        real(self, events, run_id)

    monkeypatch.setattr(ConversionState, "record", fail_first)
    srv = server_for(FAST, conversions=CONVERSIONS)
    r = httpx.post(f"{srv.url}/v2/events", json=_json(commerce_batch("T-crash")), auth=(WRITE_KEY, SECRET))
    assert r.status_code == 200
    wait_for(lambda: received(emu.url)["events_received"] >= 2 and queued(project.root) == 0)
    seen = received(emu.url)
    assert [e["custom_data"]["order_id"] for e in seen["events"]] == ["T-crash"]
    assert seen["duplicates_dropped"] == 1
    time.sleep(0.5)
    assert received(emu.url)["events_received"] == 2  # recorded now: never sent a third time


def test_a_failed_queue_delete_does_not_send_again(project, server_for, emu, monkeypatch):
    """The ledger recorded the event, the queue delete failed: after a restart the ledger skips it."""
    monkeypatch.setattr(IngestLog, "delete_commerce", lambda self, ids: (_ for _ in ()).throw(OSError("disk")))
    srv = server_for(FAST, conversions=CONVERSIONS)
    r = httpx.post(f"{srv.url}/v2/events", json=_json(commerce_batch("T-del")), auth=(WRITE_KEY, SECRET))
    assert r.status_code == 200
    wait_for(lambda: received(emu.url)["events_received"] == 1)
    srv.stop()
    assert queued(project.root) == 1
    monkeypatch.undo()
    srv = server_for(FAST, conversions=CONVERSIONS)
    wait_for(lambda: queued(project.root) == 0)
    assert received(emu.url)["events_received"] == 1


@pytest.mark.timeout(120)
def test_kill_9_between_facebook_answer_and_commit_does_not_double_count(project: StreamProject, emu, tmp_path):
    """`serve` as a process: Facebook applies each CAPI request and the answer is lost (the emulator
    drops the connection after applying), so the delivery keeps retrying; the process is killed -9
    in that window. After a restart the events go out again with the same ids: each order once."""
    port = free_port()
    project.write({**FAST, "port": port}, conversions=CONVERSIONS)
    url = f"http://127.0.0.1:{port}"
    httpx.post(f"{emu.url}/_emulator/faults", json={"method": "POST", "path": f"{DATASET}/events", "count": 1000,
                                                      "drop": "after"}).raise_for_status()  # fmt: skip
    server = Server(project, tmp_path / "server.log")
    try:
        server.start(url)
        batches = [_json(commerce_batch(f"K-{i}")) for i in range(20)]
        r = httpx.post(f"{url}/v2/bulkevents", json=batches, auth=(WRITE_KEY, SECRET), timeout=10)
        assert r.status_code == 200 and r.json()["commerce_events"]["queued"] == 20
        wait_for(lambda: received(emu.url)["events_received"] >= 20)
        server.kill9()
        assert len(received(emu.url)["events"]) == 20
        httpx.delete(f"{emu.url}/_emulator/faults").raise_for_status()
        assert queued(project.root) == 20  # nothing was recorded, so nothing left the queue

        server.start(url)
        wait_for(lambda: queued(project.root) == 0, timeout=30)
        seen = received(emu.url)
        assert sorted(e["custom_data"]["order_id"] for e in seen["events"]) == sorted(f"K-{i}" for i in range(20))
        assert seen["duplicates_dropped"] >= 20  # sent again with the same ids, dropped by Facebook
    finally:
        server.stop()
