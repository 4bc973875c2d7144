"""Audience lifecycle and rules (spec §2.1–2.3, §2.7; checklist §7.1 and §7.4), over real HTTP."""

from __future__ import annotations

from .conftest import Graph, error_of, rand_hash, sha


def test_create_returns_numeric_string_id(graph: Graph) -> None:
    r = graph.post("/act_42/customaudiences", data={"name": "a", "customer_file_source": "USER_PROVIDED_ONLY"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"id"} and body["id"].isdigit()


def test_customer_file_source_required_for_custom(graph: Graph) -> None:
    err = error_of(graph.post("/act_1/customaudiences", json={"name": "a", "subtype": "CUSTOM"}))
    assert err["code"] == 100
    assert err["message"] == "(#100) Missing parameter(s): customer_file_source"


def test_enums_are_checked(graph: Graph) -> None:
    err = error_of(graph.post("/act_1/customaudiences", json={"name": "a", "subtype": "NOPE"}))
    assert err["code"] == 100 and "subtype" in err["message"]
    err = error_of(graph.post("/act_1/customaudiences", json={"name": "a", "customer_file_source": "MINE"}))
    assert err["code"] == 100 and "customer_file_source" in err["message"]
    err = error_of(
        graph.post(
            "/act_1/customaudiences",
            json={"name": "a", "customer_file_source": "USER_PROVIDED_ONLY", "retention_days": 181},
        )
    )
    assert err["code"] == 100 and "retention_days" in err["message"]


def test_read_default_and_requested_fields(graph: Graph) -> None:
    aud = graph.create(name="Buyers", description="d", retention_days=30)
    assert graph.get(f"/{aud}").json() == {"id": aud}
    f = graph.fields(aud, "name", "description", "subtype", "customer_file_source", "account_id", "retention_days")
    assert f == {
        "id": aud,
        "name": "Buyers",
        "description": "d",
        "subtype": "CUSTOM",
        "customer_file_source": "USER_PROVIDED_ONLY",
        "account_id": "1",
        "retention_days": 30,
    }


def test_nonexisting_field(graph: Graph) -> None:
    aud = graph.create()
    err = error_of(graph.get(f"/{aud}", params={"fields": "name,approximate_count"}))
    assert err["code"] == 100
    assert err["message"].startswith("(#100) Tried accessing nonexisting field (approximate_count)")


def test_fresh_audience_status_counts_and_data_source(graph: Graph) -> None:
    aud = graph.create()
    f = graph.fields(
        aud,
        "operation_status",
        "delivery_status",
        "approximate_count_lower_bound",
        "approximate_count_upper_bound",
        "data_source",
    )
    assert f["operation_status"]["code"] == 410
    assert f["delivery_status"]["code"] == 300
    assert f["approximate_count_lower_bound"] == 0 == f["approximate_count_upper_bound"]
    assert f["data_source"]["type"] == "UNKNOWN"


def test_status_transitions_and_counts_after_upload(graph: Graph) -> None:
    graph.exact_counts()
    graph.server.config.min_delivery_size = 3
    aud = graph.create()
    r = graph.add(aud, "EMAIL_SHA256", [sha("a@x.com"), sha("b@x.com")])
    assert r.status_code == 200
    f = graph.fields(aud, "operation_status", "delivery_status", "approximate_count_lower_bound", "data_source")
    assert f["operation_status"]["code"] == 200
    assert f["delivery_status"]["code"] == 300  # below min_delivery_size
    assert f["approximate_count_lower_bound"] == 2
    assert f["data_source"] == {"type": "FILE_IMPORTED", "sub_type": "HASHES_OR_USER_IDS", "creation_params": "[]"}
    graph.add(aud, "EMAIL_SHA256", [sha("c@x.com")])
    f = graph.fields(aud, "delivery_status", "approximate_count_upper_bound", "time_content_updated")
    assert f["delivery_status"] == {"code": 200, "description": "This audience is ready for use."}
    assert f["approximate_count_upper_bound"] == 3
    assert isinstance(f["time_content_updated"], int)


def test_processing_delay_holds_counts_and_status(graph: Graph) -> None:
    graph.exact_counts()
    graph.server.config.processing_delay_s = 600
    aud = graph.create()
    graph.add(aud, "EMAIL_SHA256", [sha("a@x.com")])
    f = graph.fields(aud, "operation_status", "approximate_count_lower_bound")
    assert f["operation_status"]["code"] == 410 and f["approximate_count_lower_bound"] == 0
    graph.advance(601)
    f = graph.fields(aud, "operation_status", "approximate_count_lower_bound")
    assert f["operation_status"]["code"] == 200 and f["approximate_count_lower_bound"] == 1


def test_update_and_delete(graph: Graph) -> None:
    aud = graph.create()
    r = graph.post(f"/{aud}", data={"name": "Renamed", "description": "new", "retention_days": "90"})
    assert r.json() == {"success": True}
    assert graph.fields(aud, "name", "retention_days") == {"id": aud, "name": "Renamed", "retention_days": 90}
    err = error_of(graph.post(f"/{aud}", json={"is_value_based": True}))
    assert err["code"] == 100
    assert graph.delete(f"/{aud}").json() == {"success": True}
    for resp, verb in (
        (graph.get(f"/{aud}"), "get"),
        (graph.post(f"/{aud}", json={"name": "x"}), "post"),
        (graph.delete(f"/{aud}"), "delete"),
        (graph.add(aud, "EMAIL_SHA256", [sha("a")]), "post"),
    ):
        err = error_of(resp)
        assert (err["code"], err["error_subcode"]) == (100, 33)
        assert err["message"].startswith(f"Unsupported {verb} request. Object with ID '{aud}' does not exist")


def test_list_paging_with_cursors(graph: Graph) -> None:
    ids = [graph.create(name=f"a{i}") for i in range(5)]
    graph.create("act_2", name="other")
    seen: list[str] = []
    r = graph.get("/act_1/customaudiences", params={"fields": "name", "limit": 2})
    pages = 0
    while True:
        body = r.json()
        pages += 1
        seen += [d["id"] for d in body["data"]]
        assert all(set(d) == {"id", "name"} for d in body["data"])
        nxt = body["paging"].get("next")
        if not nxt:
            break
        assert "after=" in nxt
        r = graph.http.get(nxt)
    assert pages == 3
    assert sorted(seen) == sorted(ids)
    assert seen == sorted(ids, key=int, reverse=True)  # newest first
    # default: only ids
    body = graph.get("/act_1/customaudiences").json()
    assert all(set(d) == {"id"} for d in body["data"])
    # before cursor walks back
    second = graph.get("/act_1/customaudiences", params={"limit": 2, "after": body["paging"]["cursors"]["before"]})
    prev = graph.get(
        "/act_1/customaudiences", params={"limit": 2, "before": second.json()["paging"]["cursors"]["before"]}
    )
    assert [d["id"] for d in prev.json()["data"]] == [seen[0]]


def test_list_filtering(graph: Graph) -> None:
    graph.create(name="alpha")
    b = graph.create(name="beta")
    r = graph.get(
        "/act_1/customaudiences",
        params={"fields": "name", "filtering": '[{"field":"name","operator":"CONTAIN","value":"bet"}]'},
    )
    assert [d["id"] for d in r.json()["data"]] == [b]


def test_enable_fetch_or_create_returns_existing(graph: Graph) -> None:
    a = graph.create(name="same")
    b = graph.create(name="same", enable_fetch_or_create=True)
    c = graph.create(name="same")
    assert a == b != c


def test_audience_cap_2654(graph: Graph) -> None:
    graph.server.config.max_audiences = 3
    for i in range(3):
        graph.create(name=f"a{i}")
    err = error_of(
        graph.post("/act_1/customaudiences", json={"name": "x", "customer_file_source": "USER_PROVIDED_ONLY"})
    )
    assert err["code"] == 2654
    assert "maximum number of custom audiences (3)" in err["error_user_msg"]
    graph.create("act_2")  # per account
    # deleting frees a slot
    first = graph.get("/act_1/customaudiences").json()["data"][0]["id"]
    graph.delete(f"/{first}")
    graph.create(name="again")


def test_terms_of_service(graph: Graph) -> None:
    aud = graph.create()
    graph.emu("POST", "/accounts/act_1", {"tos_accepted": False}).raise_for_status()
    err = error_of(
        graph.post("/act_1/customaudiences", json={"name": "x", "customer_file_source": "USER_PROVIDED_ONLY"})
    )
    assert err["code"] == 2663
    err = error_of(graph.add(aud, "EMAIL_SHA256", [sha("a")]))
    assert (err["code"], err["error_subcode"]) == (200, 1870090)
    assert graph.get("/act_1", params={"fields": "tos_accepted"}).json()["tos_accepted"] == {
        "value_based_custom_audience_tos": 1
    }
    graph.emu("POST", "/accounts/1", {"tos_accepted": True}).raise_for_status()
    assert graph.add(aud, "EMAIL_SHA256", [sha("a")]).status_code == 200


def test_terms_off_by_config(graph: Graph) -> None:
    graph.server.config.tos_accepted = False
    err = error_of(
        graph.post("/act_77/customaudiences", json={"name": "x", "customer_file_source": "USER_PROVIDED_ONLY"})
    )
    assert err["code"] == 2663


def test_lookalike_blocks_seed_delete_2656(graph: Graph) -> None:
    graph.exact_counts()
    seed = graph.create()
    graph.add(seed, "EMAIL_SHA256", [rand_hash() for _ in range(120)])
    r = graph.post(
        "/act_1/customaudiences",
        data={
            "name": "lal",
            "subtype": "LOOKALIKE",
            "origin_audience_id": seed,
            "lookalike_spec": '{"type":"similarity","country":"US"}',
        },
    )
    assert r.status_code == 200, r.text
    lal = r.json()["id"]
    f = graph.fields(lal, "subtype", "lookalike_spec", "approximate_count_lower_bound", "delivery_status")
    assert f["subtype"] == "LOOKALIKE" and f["lookalike_spec"]["type"] == "similarity"
    assert f["approximate_count_lower_bound"] == -1 and f["delivery_status"]["code"] == 200
    assert graph.fields(seed, "lookalike_audience_ids")["lookalike_audience_ids"] == [lal]
    err = error_of(graph.delete(f"/{seed}"))
    assert err["code"] == 2656
    err = error_of(graph.add(lal, "EMAIL_SHA256", [sha("a")]))
    assert err["code"] == 100
    assert graph.delete(f"/{lal}").json() == {"success": True}
    assert graph.delete(f"/{seed}").json() == {"success": True}


def test_lookalike_needs_live_seed(graph: Graph) -> None:
    err = error_of(graph.post("/act_1/customaudiences", json={"name": "l", "subtype": "LOOKALIKE"}))
    assert err["message"] == "(#100) Missing parameter(s): origin_audience_id"
    err = error_of(
        graph.post("/act_1/customaudiences", json={"name": "l", "subtype": "LOOKALIKE", "origin_audience_id": "999"})
    )
    assert err["code"] == 100


def test_flagged_audience_471(graph: Graph) -> None:
    aud = graph.create()
    graph.add(aud, "EMAIL_SHA256", [sha("a")])
    r = graph.emu("POST", f"/audiences/{aud}", {"operation_status": 471})
    assert r.json()["operation_status"] == 471
    assert graph.fields(aud, "operation_status")["operation_status"]["code"] == 471
    for resp in (
        graph.add(aud, "EMAIL_SHA256", [sha("b")]),
        graph.remove(aud, "EMAIL_SHA256", [sha("a")]),
        graph.replace(aud, "EMAIL_SHA256", [sha("b")], {"session_id": 1, "batch_seq": 1}),
    ):
        err = error_of(resp)
        assert (err["code"], err["error_subcode"]) == (100, 1713230)
        assert err["error_user_title"] == "Audience Upload Blocked"
        assert err["message"] == "Invalid parameter"
    err = error_of(graph.post(f"/{aud}", json={"name": "x"}))
    assert (err["code"], err["error_subcode"]) == (100, 1713228)  # a customer-file audience
    err = error_of(
        graph.post("/act_1/customaudiences", json={"name": "l", "subtype": "LOOKALIKE", "origin_audience_id": aud})
    )
    assert (err["code"], err["error_subcode"]) == (100, 1713232)
    graph.emu("POST", f"/audiences/{aud}", {"operation_status": 200})
    assert graph.add(aud, "EMAIL_SHA256", [sha("b")]).status_code == 200


def test_value_based_needs_lookalike_value(graph: Graph) -> None:
    vb = graph.create(is_value_based="1")
    assert graph.fields(vb, "is_value_based")["is_value_based"] is True
    err = error_of(graph.add(vb, ["EMAIL"], [[sha("a")]]))
    assert err["code"] == 100 and "LOOKALIKE_VALUE" in err["message"]
    r = graph.add(vb, ["EMAIL", "LOOKALIKE_VALUE"], [[sha("a"), "44.5"], [sha("b"), 0], [sha("c"), -1]])
    body = r.json()
    assert body["num_received"] == 3 and body["num_invalid_entries"] == 1
    members = {m["EMAIL"]: m["LOOKALIKE_VALUE"] for m in graph.members(vb)}
    assert members == {sha("a"): 44.5, sha("b"): 0}
    plain = graph.create()
    err = error_of(graph.add(plain, ["EMAIL", "LOOKALIKE_VALUE"], [[sha("a"), 1]]))
    assert err["code"] == 100


def test_account_node_and_unknown_account_edge(graph: Graph) -> None:
    r = graph.get("/act_5", params={"fields": "name,account_id"})
    assert r.json()["account_id"] == "5" and r.json()["id"] == "act_5"
    err = error_of(graph.get("/act_5/nonsense"))
    assert err["code"] == 2500 and err["message"] == "(#2500) Unknown path components: /nonsense"
