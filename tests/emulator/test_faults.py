"""The fault plan (checklist §7.7): errors, HTML 5xx, delays, drops before/after, throttling."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from audiencesync.emulator.faults import FaultPlan

from .conftest import Graph, error_of, sha


def add_fault(graph: Graph, **rule: object) -> dict:
    r = graph.emu("POST", "/faults", rule)
    assert r.status_code == 200, r.text
    return r.json()


def test_error_fault_for_next_n_calls(graph: Graph) -> None:
    aud = graph.create()
    add_fault(graph, method="POST", path=r"^/\d+/users$", count=2, error={"code": 2, "is_transient": True})
    for _ in range(2):
        err = error_of(graph.add(aud, "EMAIL_SHA256", [sha("a")]))
        assert err["code"] == 2 and err["is_transient"] is True and err["fbtrace_id"]
    assert graph.members(aud) == []
    assert graph.add(aud, "EMAIL_SHA256", [sha("a")]).status_code == 200
    assert graph.emu("GET", "/faults").json() == []


def test_error_fault_defaults_and_fields(graph: Graph) -> None:
    add_fault(graph, path="customaudiences", error={"code": 613, "error_subcode": 1487742})
    err = error_of(graph.get("/act_1/customaudiences"))
    assert (err["code"], err["error_subcode"], err["is_transient"]) == (613, 1487742, True)
    assert err["message"].startswith("(#613)")
    add_fault(graph, path="customaudiences", error={"code": 190, "error_subcode": 463})
    err = error_of(graph.get("/act_1/customaudiences"))
    assert (err["code"], err["error_subcode"]) == (190, 463)
    add_fault(graph, path="customaudiences", error={"code": 17, "message": "(#17) User request limit reached"})
    err = error_of(graph.get("/act_1/customaudiences"))
    assert err["code"] == 17 and err["is_transient"] is True
    add_fault(graph, path="customaudiences", error={"code": 4})
    err = error_of(graph.get("/act_1/customaudiences"))
    assert (err["code"], err["is_transient"]) == (4, True)
    add_fault(graph, path="customaudiences", error={"code": 1, "error_subcode": 99})
    assert error_of(graph.get("/act_1/customaudiences"))["code"] == 1


def test_method_must_match(graph: Graph) -> None:
    add_fault(graph, method="DELETE", path="users", error={"code": 1})
    aud = graph.create()
    assert graph.add(aud, "EMAIL_SHA256", [sha("a")]).status_code == 200
    assert error_of(graph.remove(aud, "EMAIL_SHA256", [sha("a")]))["code"] == 1
    # POST with method=DELETE counts as a DELETE
    add_fault(graph, method="DELETE", path="users", error={"code": 1})
    body = {"method": "DELETE", "payload": {"schema": "EMAIL_SHA256", "data": [sha("a")]}}
    assert error_of(graph.post(f"/{aud}/users", json=body))["code"] == 1


def test_html_5xx(graph: Graph) -> None:
    add_fault(graph, path="act_1", http_status=502)
    r = graph.get("/act_1/customaudiences")
    assert r.status_code == 502 and r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text
    assert graph.get("/act_1/customaudiences").status_code == 200


def test_delay(graph: Graph) -> None:
    add_fault(graph, path="act_1", delay_s=0.3)
    started = time.monotonic()
    assert graph.get("/act_1/customaudiences").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_drop_before_is_not_applied(graph: Graph) -> None:
    aud = graph.create()
    add_fault(graph, method="POST", path="users", drop="before")
    with pytest.raises(httpx.TransportError):
        graph.add(aud, "EMAIL_SHA256", [sha("a")])
    assert graph.members(aud) == []
    assert graph.emu("GET", "/requests").json()[-1]["status"] == "dropped-before"


def test_drop_after_is_applied_but_unacknowledged(graph: Graph) -> None:
    aud = graph.create()
    add_fault(graph, method="POST", path="users", drop="after")
    with pytest.raises(httpx.TransportError):
        graph.add(aud, "EMAIL_SHA256", [sha("a")], {"session_id": 5, "batch_seq": 1})
    assert graph.members(aud) == [{"EMAIL": sha("a")}]
    # the retry is idempotent (same batch_seq is not double-counted)
    r = graph.add(aud, "EMAIL_SHA256", [sha("a")], {"session_id": 5, "batch_seq": 1})
    assert r.json()["num_received"] == 1
    assert graph.emu("GET", "/requests").json()[-2]["status"] == "dropped-after"


def test_throttle_fault(graph: Graph) -> None:
    aud = graph.create()
    add_fault(graph, path="users", throttle=True, regain_minutes=3)
    r = graph.add(aud, "EMAIL_SHA256", [sha("a")])
    err = error_of(r)
    assert err["code"] == 80003
    buc = json.loads(r.headers["x-business-use-case-usage"])
    assert buc["1"][0]["estimated_time_to_regain_access"] == 3 and buc["1"][0]["type"] == "custom_audience"
    assert json.loads(r.headers["x-app-usage"])["call_count"] == 100


def test_faults_never_touch_emulator_endpoints(graph: Graph) -> None:
    add_fault(graph, path=".*", error={"code": 1}, count=5)
    assert graph.emu("GET", "/audiences").status_code == 200
    assert len(graph.emu("GET", "/faults").json()) == 1
    assert graph.emu("DELETE", "/faults").json() == {"success": True}
    assert graph.emu("GET", "/faults").json() == []


def test_rule_validation() -> None:
    plan = FaultPlan()
    for bad in (
        {},
        {"error": {"code": 1}, "drop": "before"},
        {"drop": "sideways"},
        {"path": "(", "delay_s": 1},
        {"count": 0, "delay_s": 1},
        {"nope": 1},
    ):
        with pytest.raises(ValueError):
            plan.add(bad)


def test_bad_rules_rejected_over_http(graph: Graph) -> None:
    assert graph.emu("POST", "/faults", {"drop": "sideways"}).status_code == 400
    r = graph.emu("POST", "/faults", [{"path": "a", "delay_s": 0.1}, {"path": "b", "error": {"code": 2}}])
    assert r.status_code == 200 and len(r.json()) == 2
