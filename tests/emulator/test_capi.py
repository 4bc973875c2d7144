"""Conversions API: POST /{dataset_id}/events (spec §5.2; checklist §7.6)."""

from __future__ import annotations

from typing import Any

from .conftest import Graph, error_of, sha

DAY = 86400


def now(graph: Graph) -> int:
    return int(graph.emu("GET", "/clock").json()["now"])


def ev(t: int, name: str = "Purchase", source: str = "physical_store", **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_name": name,
        "event_time": t,
        "action_source": source,
        "user_data": {"em": [sha("a@x.com")], "ph": [sha("15551234567")]},
        "custom_data": {"value": 10.0, "currency": "USD"},
    }
    event.update(extra)
    return event


def send(graph: Graph, data: Any, **params: Any):  # type: ignore[no-untyped-def]
    return graph.post("/777/events", json={"data": data, **params})


def test_accepts_events_and_reports_count(graph: Graph) -> None:
    t = now(graph)
    r = send(graph, [ev(t, custom_data={"value": 1, "currency": "USD", "order_id": str(i)}) for i in range(3)])
    assert r.status_code == 200
    body = r.json()
    assert body["events_received"] == 3 and body["messages"] == [] and body["fbtrace_id"]
    assert len(graph.emu("GET", "/datasets/777/events").json()["events"]) == 3
    assert graph.get("/777", params={"fields": "is_consolidated_container"}).json() == {
        "id": "777",
        "is_consolidated_container": True,
    }


def test_at_most_1000_events(graph: Graph) -> None:
    t = now(graph)
    err = error_of(send(graph, [ev(t, name="Lead") for _ in range(1001)]))
    assert err["code"] == 100 and "1000" in err["error_user_msg"]
    r = send(graph, [ev(t, name="Lead", custom_data={"order_id": str(i)}) for i in range(1000)])
    assert r.json()["events_received"] == 1000


def test_all_or_nothing(graph: Graph) -> None:
    t = now(graph)
    err = error_of(send(graph, [ev(t, name="Lead"), ev(t, name="Lead", action_source="carrier_pigeon")]))
    assert err["code"] == 100 and err["error_user_msg"].startswith("data[1]")
    assert graph.emu("GET", "/datasets/777/events").json()["events"] == []


def test_event_time_windows(graph: Graph) -> None:
    t = now(graph)
    ok = send(graph, [ev(t - 61 * DAY, order_id="x")])
    assert ok.status_code == 200, ok.text
    err = error_of(send(graph, [ev(t - 63 * DAY)]))
    assert (err["code"], err["error_subcode"]) == (100, 2804003)
    assert err["error_user_title"] == "Event Timestamp Too Old" and err["message"] == "Invalid parameter"
    assert err["type"] == "OAuthException" and err["is_transient"] is False
    web = {"event_source_url": "https://shop.example/x"}
    assert send(graph, [ev(t - 6 * DAY, source="website", **web)]).status_code == 200
    err = error_of(send(graph, [ev(t - 8 * DAY, source="website", **web)]))
    assert (err["code"], err["error_subcode"]) == (100, 2804003)
    assert "within 7 days" in err["error_user_msg"]
    # moving the clock ages an event out
    graph.advance(2 * DAY)
    assert error_of(send(graph, [ev(t - 61 * DAY)]))["error_subcode"] == 2804003
    # the future is rejected too
    assert error_of(send(graph, [ev(t + 5 * DAY)]))["code"] == 100


def test_purchase_needs_value_and_currency(graph: Graph) -> None:
    t = now(graph)
    err = error_of(send(graph, [ev(t, custom_data={"currency": "USD"})]))
    assert (err["code"], err["error_subcode"]) == (100, 2804009)
    err = error_of(send(graph, [ev(t, custom_data={"value": 3})]))
    assert (err["code"], err["error_subcode"]) == (100, 2804009)
    assert send(graph, [ev(t, name="Lead", custom_data={})]).status_code == 200


def test_required_fields_and_hashes(graph: Graph) -> None:
    t = now(graph)
    for broken in (
        {k: v for k, v in ev(t).items() if k != "event_name"},
        {k: v for k, v in ev(t).items() if k != "event_time"},
        {k: v for k, v in ev(t).items() if k != "user_data"},
        ev(t, user_data={"em": ["mary@example.com"]}),
        ev(t, source="website"),  # needs event_source_url
        "not an event",
    ):
        assert error_of(send(graph, [broken]))["code"] == 100
    assert error_of(graph.post("/777/events", json={}))["message"] == "(#100) Missing parameter(s): data"


def test_test_event_code_is_kept_apart(graph: Graph) -> None:
    t = now(graph)
    r = send(graph, [ev(t)], test_event_code="TEST123")
    assert r.json()["events_received"] == 1
    stored = graph.emu("GET", "/datasets/777/events").json()
    assert stored["events"] == [] and len(stored["test_events"]["TEST123"]) == 1


def test_offline_dedup_by_order_id(graph: Graph) -> None:
    t = now(graph)
    e = ev(t, custom_data={"value": 5, "currency": "EUR", "order_id": "o-1", "item_number": "1"})
    assert send(graph, [e, e]).json()["events_received"] == 2
    assert send(graph, [e]).status_code == 200
    other_item = ev(t, custom_data={"value": 5, "currency": "EUR", "order_id": "o-1", "item_number": "2"})
    send(graph, [other_item])
    stored = graph.emu("GET", "/datasets/777/events").json()
    assert len(stored["events"]) == 2 and stored["duplicates_dropped"] == 2
    graph.advance(8 * DAY)  # outside the 7-day window the same key is new again (event still within 62 days)
    send(graph, [e])
    assert len(graph.emu("GET", "/datasets/777/events").json()["events"]) == 3


def test_offline_dedup_user_based_without_order_id(graph: Graph) -> None:
    t = now(graph)
    send(graph, [ev(t), ev(t)])
    send(graph, [ev(t, user_data={"em": [sha("b@x.com")]})])
    assert len(graph.emu("GET", "/datasets/777/events").json()["events"]) == 2


def test_web_dedup_by_event_id(graph: Graph) -> None:
    t = now(graph)
    web = {"event_source_url": "https://shop.example/x", "event_id": "e1"}
    send(graph, [ev(t, source="website", **web), ev(t, source="website", **web)])
    assert len(graph.emu("GET", "/datasets/777/events").json()["events"]) == 1


def test_capi_requests_count_against_the_dataset(graph: Graph) -> None:
    graph.server.config.calls_per_hour = 1
    t = now(graph)
    assert send(graph, [ev(t, name="Lead")]).status_code == 200
    err = error_of(send(graph, [ev(t, name="Lead")]))
    assert err["code"] == 80003
    # audiences have their own budget
    graph.create()
