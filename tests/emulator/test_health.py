"""Audience health as Facebook shows it (issue 12 item 7): counts, statuses, integrity flags, terms,
audiences deleted or unshared behind the client's back, and the readable fields per API version.

All over real HTTP (Graph routes and ``/_emulator/`` knobs).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from audiencesync.emulator import EmulatorConfig
from audiencesync.emulator.model import Backend

from .conftest import Graph, error_of, rand_hash, sha

S = "EMAIL_SHA256"


def summary(graph: Graph, aud: str) -> dict[str, Any]:
    r = graph.emu("GET", f"/audiences/{aud}")
    assert r.status_code == 200, r.text
    return r.json()


def op(graph: Graph, aud: str) -> int:
    return graph.fields(aud, "operation_status")["operation_status"]["code"]


def emu_post(graph: Graph, aud: str, body: dict[str, Any]) -> dict[str, Any]:
    r = graph.emu("POST", f"/audiences/{aud}", body)
    assert r.status_code == 200, r.text
    return r.json()


def get_version(graph: Graph, version: str, path: str, fields: str) -> httpx.Response:
    return graph.http.get(f"{graph.server.url}/{version}{path}", params={"access_token": graph.token, "fields": fields})


# ---------------------------------------------------------------- approximate counts


def test_bounds_rounding_rule() -> None:
    from audiencesync.emulator.clock import Clock

    b = Backend(EmulatorConfig(), Clock())
    assert b.approximate_bounds(0) == (0, 0)
    assert b.approximate_bounds(1) == (1000, 1000) == b.approximate_bounds(999)
    assert b.approximate_bounds(1000) == (1000, 1000)
    assert b.approximate_bounds(1234) == (1200, 1300)
    assert b.approximate_bounds(12_345) == (12_000, 13_000)
    assert b.approximate_bounds(4_900) == (4_900, 4_900)
    assert b.approximate_bounds(1_234_567) == (1_200_000, 1_300_000)
    b.config.count_floor = 0
    b.config.count_significant_digits = None
    assert b.approximate_bounds(7) == (7, 7) and b.approximate_bounds(12_345) == (12_345, 12_345)
    b.config.count_significant_digits = 3
    assert b.approximate_bounds(12_345) == (12_300, 12_400)


def test_counts_report_the_matched_people_rounded(graph: Graph) -> None:
    aud = graph.create()
    f = graph.fields(aud, "approximate_count_lower_bound", "approximate_count_upper_bound", "delivery_status")
    assert (f["approximate_count_lower_bound"], f["approximate_count_upper_bound"]) == (0, 0)
    hashes = [rand_hash() for _ in range(5000)]
    for i in range(0, 5000, 2500):
        graph.add(aud, S, hashes[i : i + 2500])
    matched = summary(graph, aud)["matched_count"]
    assert 2500 < matched < 3500  # ~60% of 5,000
    f = graph.fields(aud, "approximate_count_lower_bound", "approximate_count_upper_bound", "delivery_status")
    lower, upper = f["approximate_count_lower_bound"], f["approximate_count_upper_bound"]
    assert lower <= matched <= upper and lower % 100 == 0 and upper % 100 == 0 and upper - lower <= 100
    assert f["delivery_status"] == {"code": 200, "description": "This audience is ready for use."}
    # small audiences: the floor, and delivery_status 300 below min_delivery_size MATCHED people
    small = graph.create(name="small")
    graph.emu("POST", f"/audiences/{small}", {"match_shares": {"EMAIL": 1.0}}).raise_for_status()
    graph.add(small, S, [rand_hash() for _ in range(150)])
    f = graph.fields(small, "approximate_count_lower_bound", "approximate_count_upper_bound", "delivery_status")
    assert (f["approximate_count_lower_bound"], f["approximate_count_upper_bound"]) == (1000, 1000)
    assert f["delivery_status"]["code"] == 200  # 150 matched
    graph.emu("POST", f"/audiences/{small}", {"match_shares": {"EMAIL": 0.3}}).raise_for_status()
    assert summary(graph, small)["matched_count"] < 100
    assert graph.fields(small, "delivery_status")["delivery_status"]["code"] == 300


def test_counts_wait_for_the_processing_delay(graph: Graph) -> None:
    graph.emu("POST", "/config", {"processing_delay_s": 600, "count_floor": 0}).raise_for_status()
    aud = graph.create()
    graph.emu("POST", f"/audiences/{aud}", {"match_shares": {"EMAIL": 1.0}}).raise_for_status()
    graph.add(aud, S, [rand_hash() for _ in range(120)])
    f = graph.fields(aud, "operation_status", "approximate_count_lower_bound", "delivery_status")
    assert f["operation_status"]["code"] == 410 and f["approximate_count_lower_bound"] == 0
    assert f["delivery_status"]["code"] == 300
    graph.advance(601)
    f = graph.fields(aud, "operation_status", "approximate_count_lower_bound", "delivery_status")
    assert f["operation_status"]["code"] == 200 and f["approximate_count_lower_bound"] == 120
    assert f["delivery_status"]["code"] == 200


# ---------------------------------------------------------------- operation_status


def test_operation_status_codes_after_uploads(graph: Graph) -> None:
    aud = graph.create()
    assert op(graph, aud) == 410  # no upload yet
    graph.add(aud, S, [rand_hash() for _ in range(500)])
    assert op(graph, aud) == 200
    # 412: more than 20% invalid entries in the last session
    body = graph.add(aud, S, [rand_hash() for _ in range(70)] + [f"not-a-hash-{i}" for i in range(30)]).json()
    assert body["num_invalid_entries"] == 30
    f = graph.fields(aud, "operation_status")
    assert f["operation_status"]["code"] == 412 and "invalid entries" in f["operation_status"]["description"]
    assert summary(graph, aud)["last_session"]["num_invalid_entries"] == 30
    graph.add(aud, S, [rand_hash() for _ in range(10)])  # a clean session
    assert op(graph, aud) == 200
    # 411: the matched share falls below low_match_threshold
    emu_post(graph, aud, {"match_shares": {"EMAIL": 0.05}})
    f = graph.fields(aud, "operation_status")
    assert f["operation_status"]["code"] == 411 and "match" in f["operation_status"]["description"].lower()
    # a replace is allowed from 411 (fixing the data is what one does), 414 while it runs
    sess = {"session_id": 5, "batch_seq": 1}
    assert graph.replace(aud, S, [rand_hash() for _ in range(10)], sess).status_code == 200
    assert op(graph, aud) == 414
    graph.advance(90 * 60 + 1)  # the replace times out: 415
    assert op(graph, aud) == 415
    emu_post(graph, aud, {"match_shares": {"EMAIL": 1.0}})
    assert op(graph, aud) == 415  # stays until a replace completes
    last = {"session_id": 6, "batch_seq": 1, "last_batch_flag": True}
    assert graph.replace(aud, S, [rand_hash() for _ in range(10)], last).status_code == 200
    assert op(graph, aud) == 200


def test_extern_id_only_audience_is_low_match(graph: Graph) -> None:
    aud = graph.create()
    graph.add(aud, "EXTERN_ID", [f"crm-{i}" for i in range(300)])
    f = graph.fields(aud, "operation_status", "delivery_status", "approximate_count_lower_bound")
    assert f["operation_status"]["code"] == 411
    assert f["delivery_status"]["code"] == 300 and f["approximate_count_lower_bound"] == 0
    tiny = graph.create(name="tiny")
    graph.add(tiny, "EXTERN_ID", [f"crm-{i}" for i in range(50)])
    assert op(graph, tiny) == 200  # below low_match_min_members the match rate says nothing
    graph.emu("POST", "/config", {"low_match_min_members": 10}).raise_for_status()
    assert op(graph, tiny) == 411
    graph.emu("POST", "/config", {"low_match_threshold": 0}).raise_for_status()
    assert op(graph, aud) == 200
    # 412 can start a replace as well
    graph.emu("POST", "/config", {"high_invalid_threshold": 0.0}).raise_for_status()
    graph.add(aud, "EXTERN_ID", ["x", ""])
    assert op(graph, aud) == 412
    ok = graph.replace(aud, "EXTERN_ID", ["y"], {"session_id": 1, "batch_seq": 1, "last_batch_flag": True})
    assert ok.status_code == 200, ok.text


def test_expiring_audience_status_100(graph: Graph) -> None:
    aud = graph.create()
    graph.add(aud, S, [rand_hash() for _ in range(50)])
    assert emu_post(graph, aud, {"expiring": True})["operation_status"] == 100
    f = graph.fields(aud, "operation_status")["operation_status"]
    assert f["code"] == 100 and "expiring" in f["description"]
    assert graph.add(aud, S, [rand_hash()]).status_code == 200  # still usable
    emu_post(graph, aud, {"expiring": False})
    assert op(graph, aud) == 200


# ---------------------------------------------------------------- integrity


def test_flag_per_audience_with_fields(graph: Graph) -> None:
    aud = graph.create(name="Buyers")
    graph.add(aud, S, [sha("a")])
    s = emu_post(graph, aud, {"flagged": True, "fields_violating_integrity_policy": ["name", "description"]})
    assert s["operation_status"] == 471 and s["flagged"] is True
    f = graph.fields(
        aud, "operation_status", "delivery_status", "fields_violating_integrity_policy", "is_eligible_for_sac_campaigns"
    )
    assert f["operation_status"]["code"] == 471
    assert "restricted from running ads" in f["operation_status"]["description"]
    assert f["delivery_status"]["code"] == 400
    assert f["fields_violating_integrity_policy"] == ["name", "description"]
    assert f["is_eligible_for_sac_campaigns"] is False
    for resp in (
        graph.add(aud, S, [sha("b")]),
        graph.remove(aud, S, [sha("a")]),
        graph.replace(aud, S, [sha("b")], {"session_id": 1, "batch_seq": 1}),
    ):
        err = error_of(resp)
        assert (err["code"], err["error_subcode"], err["message"]) == (100, 1713230, "Invalid parameter")
    err = error_of(graph.post(f"/{aud}", json={"name": "Renamed", "description": "clean"}))
    assert (err["code"], err["error_subcode"]) == (100, 1713228)
    assert err["error_user_title"] == "Custom Audience Cannot Be Edited"
    assert graph.delete(f"/{aud}").json() == {"success": True}  # deleting is allowed


def test_name_terms_flag_audiences(graph: Graph) -> None:
    flagged = graph.create(name="Diabetes care buyers")
    fine = graph.create(name="Newsletter")
    f = graph.fields(flagged, "operation_status", "fields_violating_integrity_policy")
    assert f["operation_status"]["code"] == 471 and f["fields_violating_integrity_policy"] == ["name"]
    assert "fields_violating_integrity_policy" not in graph.fields(fine, "fields_violating_integrity_policy")
    err = error_of(graph.add(flagged, S, [sha("a")]))
    assert (err["code"], err["error_subcode"]) == (100, 1713230)
    assert err["error_user_title"] == "Audience Upload Blocked"
    # the terms are configurable; an edit that brings a term in flags the audience
    graph.emu("POST", "/config", {"integrity_terms": ["vip"]}).raise_for_status()
    assert graph.post(f"/{fine}", json={"description": "VIP members"}).json() == {"success": True}
    assert graph.fields(fine, "fields_violating_integrity_policy")["fields_violating_integrity_policy"] == [
        "description"
    ]
    assert op(graph, graph.create(name="Diabetes again")) == 410  # no longer a term
    # clearing through the emulator endpoint
    emu_post(graph, flagged, {"operation_status": 200})
    assert graph.add(flagged, S, [sha("a")]).status_code == 200


def test_rule_based_flagged_audience_must_change_its_fields_and_rule(graph: Graph) -> None:
    r = graph.post(
        "/act_1/customaudiences",
        json={"name": "High income visitors", "subtype": "WEBSITE", "rule": {"url": {"i_contains": "pricing"}}},
    )
    assert r.status_code == 200, r.text
    web = r.json()["id"]
    assert op(graph, web) == 471
    err = error_of(graph.post(f"/{web}", json={"description": "x"}))
    assert (err["code"], err["error_subcode"]) == (100, 1713231)
    assert err["error_user_title"] == "Update Restricted Fields and Rule"
    err = error_of(graph.post(f"/{web}", json={"name": "Pricing visitors"}))  # the rule as well
    assert err["error_subcode"] == 1713231
    ok = graph.post(f"/{web}", json={"name": "Pricing visitors", "rule": {"url": {"i_contains": "plans"}}})
    assert ok.json() == {"success": True}
    assert op(graph, web) == 200
    assert "fields_violating_integrity_policy" not in graph.fields(web, "fields_violating_integrity_policy")


def test_lookalikes_and_flagged_seeds(graph: Graph) -> None:
    seed = graph.create(name="Seed")
    graph.emu("POST", f"/audiences/{seed}", {"match_shares": {"EMAIL": 1.0}}).raise_for_status()
    graph.add(seed, S, [rand_hash() for _ in range(150)])
    r = graph.post("/act_1/customaudiences", json={"name": "LAL", "subtype": "LOOKALIKE", "origin_audience_id": seed})
    lal = r.json()["id"]
    emu_post(graph, seed, {"operation_status": 471})
    f = graph.fields(lal, "operation_status", "delivery_status", "fields_violating_integrity_policy")
    assert f["operation_status"]["code"] == 471 and f["delivery_status"]["code"] == 400
    assert f["fields_violating_integrity_policy"] == ["name"]
    err = error_of(graph.post(f"/{lal}", json={"name": "x"}))
    assert (err["code"], err["error_subcode"]) == (100, 1713228)
    err = error_of(
        graph.post("/act_1/customaudiences", json={"name": "L2", "subtype": "LOOKALIKE", "origin_audience_id": seed})
    )
    assert (err["code"], err["error_subcode"]) == (100, 1713232)


# ---------------------------------------------------------------- terms of service


def test_tos_map_on_the_ad_account_and_errors(graph: Graph) -> None:
    r = graph.get("/act_9", params={"fields": "tos_accepted"})
    assert r.json() == {"id": "act_9", "tos_accepted": {"custom_audience_tos": 1, "value_based_custom_audience_tos": 1}}
    aud = graph.create("act_9")
    vb = graph.create("act_9", is_value_based=True)
    s = graph.emu("POST", "/accounts/act_9", {"value_based_tos_accepted": False}).json()
    assert s["tos_map"] == {"custom_audience_tos": 1} and s["value_based_tos_accepted"] is False
    assert graph.get("/act_9", params={"fields": "tos_accepted"}).json()["tos_accepted"] == {"custom_audience_tos": 1}
    err = error_of(
        graph.post(
            "/act_9/customaudiences",
            json={"name": "v", "customer_file_source": "USER_PROVIDED_ONLY", "is_value_based": True},
        )
    )
    assert err["code"] == 2663 and "Value-Based" in err["error_user_title"]
    err = error_of(graph.add(vb, ["EMAIL", "LOOKALIKE_VALUE"], [[sha("a"), 1]]))
    assert (err["code"], err["error_subcode"]) == (200, 1870090)
    assert graph.add(aud, S, [sha("a")]).status_code == 200  # other audiences unaffected
    graph.emu("POST", "/accounts/9", {"tos_accepted": False}).raise_for_status()
    assert graph.get("/act_9", params={"fields": "tos_accepted"}).json()["tos_accepted"] == {}
    for resp in (
        graph.add(aud, S, [sha("b")]),
        graph.replace(aud, S, [sha("b")], {"session_id": 3, "batch_seq": 1}),
        graph.delete("/act_9/usersofanyaudience", json={"payload": {"schema": S, "data": [sha("a")]}}),
    ):
        err = error_of(resp)
        assert (err["code"], err["error_subcode"]) == (200, 1870090)
    assert error_of(graph.post(f"/{aud}", json={"name": "x"}))["code"] == 2663
    assert graph.emu("POST", "/accounts/act_9", {"tos": True}).status_code == 400


# ---------------------------------------------------------------- deleted, expired, unshared


def test_deleted_behind_our_back(graph: Graph) -> None:
    aud = graph.create(name="gone")
    kept = graph.create(name="kept")
    graph.add(aud, S, [sha("a")])
    s = emu_post(graph, aud, {"deleted": True})
    assert s["deleted"] is True and s["removed"] == "deleted"
    for resp, method in (
        (graph.get(f"/{aud}", params={"fields": "name"}), "GET"),
        (graph.post(f"/{aud}", json={"name": "x"}), "POST"),
        (graph.add(aud, S, [sha("b")]), "POST"),
        (graph.remove(aud, S, [sha("a")]), "DELETE"),
        (graph.replace(aud, S, [sha("b")], {"session_id": 1, "batch_seq": 1}), "POST"),
        (graph.get(f"/{aud}/sessions"), "GET"),
        (graph.delete(f"/{aud}"), "DELETE"),
    ):
        err = error_of(resp)
        assert (err["code"], err["error_subcode"]) == (100, 1487366), method
        assert err["error_user_title"] == "Custom Audience Has Been Deleted"
    listed = [d["id"] for d in graph.get("/act_1/customaudiences").json()["data"]]
    assert listed == [kept]
    # restoring (for tests that need it)
    emu_post(graph, aud, {"deleted": False})
    assert graph.fields(aud, "name")["name"] == "gone"
    # deleted through the API stays 100/33
    graph.delete(f"/{kept}")
    assert error_of(graph.get(f"/{kept}"))["error_subcode"] == 33


def test_expired_audience(graph: Graph) -> None:
    aud = graph.create()
    emu_post(graph, aud, {"expiring": True})
    assert op(graph, aud) == 100
    s = emu_post(graph, aud, {"expired": True})
    assert s["removed"] == "expired"
    err = error_of(graph.get(f"/{aud}", params={"fields": "operation_status"}))
    assert (err["code"], err["error_subcode"]) == (100, 1487366)
    assert "expired" in err["error_user_msg"]
    assert graph.get("/act_1/customaudiences").json()["data"] == []


def test_shared_audience_we_can_no_longer_write(graph: Graph) -> None:
    aud = graph.create(name="shared")
    graph.add(aud, S, [sha("a"), sha("b")])
    emu_post(graph, aud, {"unshared": True})
    f = graph.fields(aud, "name", "permission_for_actions", "operation_status")
    assert f["name"] == "shared" and f["permission_for_actions"]["can_edit"] is False  # still readable
    for resp in (
        graph.add(aud, S, [sha("c")]),
        graph.remove(aud, S, [sha("a")]),
        graph.replace(aud, S, [sha("c")], {"session_id": 2, "batch_seq": 1}),
        graph.post(f"/{aud}", json={"name": "x"}),
        graph.delete(f"/{aud}"),
    ):
        err = error_of(resp)
        assert (err["code"], err["error_subcode"]) == (100, 1487301)
        assert err["error_user_title"] == "Custom Audience Unavailable"
    assert [d["id"] for d in graph.get("/act_1/customaudiences").json()["data"]] == [aud]
    # removing people from every audience of the account skips it
    r = graph.delete("/act_1/usersofanyaudience", json={"payload": {"schema": S, "data": [sha("a")]}})
    assert r.status_code == 200
    assert len(graph.members(aud)) == 2
    emu_post(graph, aud, {"unshared": False})
    assert graph.add(aud, S, [sha("c")]).status_code == 200


def test_admin_endpoint_validation(graph: Graph) -> None:
    aud = graph.create()
    for bad in (
        {},
        {"nope": 1},
        {"flagged": "yes"},
        {"operation_status": "471"},
        {"fields_violating_integrity_policy": ["subtype"]},
        {"usage_restriction": "SOMETIMES"},
        {"is_eligible_for_sac_campaigns": 1},
    ):
        r = graph.emu("POST", f"/audiences/{aud}", bad)
        assert r.status_code == 400, bad
    assert graph.emu("POST", "/audiences/123", {"flagged": True}).status_code == 404


# ---------------------------------------------------------------- readable fields per version

NEW_FIELDS = (
    "approximate_count_lower_bound",
    "approximate_count_upper_bound",
    "operation_status",
    "delivery_status",
    "data_source",
    "time_updated",
    "fields_violating_integrity_policy",
    "is_eligible_for_sac_campaigns",
    "usage_restriction",
)


def test_fields_on_the_current_version(graph: Graph) -> None:
    aud = graph.create(name="Readers")
    graph.add(aud, ["EMAIL", "PHONE"], [[rand_hash(), rand_hash()] for _ in range(10)])
    f = graph.fields(aud, *NEW_FIELDS)
    assert set(f) == {"id", *NEW_FIELDS} - {"fields_violating_integrity_policy", "usage_restriction"}
    assert isinstance(f["approximate_count_lower_bound"], int)
    assert set(f["operation_status"]) == {"code", "description"} == set(f["delivery_status"])
    assert f["data_source"]["type"] == "FILE_IMPORTED" and f["data_source"]["sub_type"] == "MULTI_HASHES"
    assert isinstance(f["time_updated"], int) and f["is_eligible_for_sac_campaigns"] is True
    emu_post(graph, aud, {"usage_restriction": "EXCLUSION_ONLY"})
    assert graph.fields(aud, "usage_restriction")["usage_restriction"] == "EXCLUSION_ONLY"
    created = graph.create(name="restricted", usage_restriction="exclusion_only")
    assert graph.fields(created, "usage_restriction")["usage_restriction"] == "EXCLUSION_ONLY"
    assert error_of(graph.post("/act_1/customaudiences", json={"name": "x", "usage_restriction": "ALL"}))["code"] == 100
    # the listing edge takes the same fields
    body = graph.get("/act_1/customaudiences", params={"fields": ",".join(NEW_FIELDS)}).json()
    assert {d["id"] for d in body["data"]} == {aud, created}


@pytest.mark.parametrize(
    ("version", "field", "exists"),
    [
        ("v24.0", "usage_restriction", False),
        ("v25.0", "usage_restriction", True),
        ("v26.0", "usage_restriction", True),
        ("v21.0", "is_eligible_for_sac_campaigns", False),
        ("v22.0", "is_eligible_for_sac_campaigns", True),
        ("v21.0", "fields_violating_integrity_policy", True),
    ],
)
def test_fields_exist_only_from_their_version(graph: Graph, version: str, field: str, exists: bool) -> None:
    graph.emu("POST", "/clock", {"now": 1_740_000_000}).raise_for_status()  # 2025-02-19: v21–v26 served
    aud = graph.create(name="Diabetes", usage_restriction="EXCLUSION_ONLY")
    for path in (f"/{aud}", "/act_1/customaudiences"):
        r = get_version(graph, version, path, f"name,{field}")
        if exists:
            assert r.status_code == 200, r.text
        else:
            err = error_of(r)
            assert err["code"] == 100
            assert err["message"].startswith(f"(#100) Tried accessing nonexisting field ({field})")


def test_new_state_survives_a_restart(tmp_path: Any) -> None:
    from audiencesync.emulator import EmulatorServer

    path = tmp_path / "state.json"
    with EmulatorServer(EmulatorConfig(state_path=str(path))) as first:
        g = Graph(first)
        flagged = g.create(name="flag me")
        g.emu("POST", f"/audiences/{flagged}", {"flagged": True, "match_shares": {"EMAIL": 1.0}})
        g.add(g.create(name="plain"), S, [rand_hash() for _ in range(10)])
        gone = g.create(name="gone")
        g.emu("POST", f"/audiences/{gone}", {"expired": True})
        g.emu("POST", "/accounts/act_1", {"value_based_tos_accepted": False})
        g.http.close()
    with EmulatorServer(EmulatorConfig(state_path=str(path))) as second:
        g = Graph(second)
        s = summary(g, flagged)
        assert s["flagged"] is True and s["match_share_overrides"] == {"EMAIL": 1.0}
        assert error_of(g.get(f"/{gone}"))["error_subcode"] == 1487366
        assert g.get("/act_1", params={"fields": "tos_accepted"}).json()["tos_accepted"] == {"custom_audience_tos": 1}
        plain = next(a for a in g.emu("GET", "/audiences").json() if a["name"] == "plain")
        assert plain["matched_count"] == plain["approximate_count"] <= 10  # recounted after loading
        g.http.close()
