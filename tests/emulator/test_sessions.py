"""Upload sessions on /users and the replace rules of /usersreplace (spec §2.4, §2.5; checklist §7.5)."""

from __future__ import annotations

from .conftest import Graph, error_of, rand_hash, sha

S = "EMAIL_SHA256"


def test_users_response_shape_without_session(graph: Graph) -> None:
    aud = graph.create()
    body = graph.add(aud, S, [sha("a"), sha("b")]).json()
    assert set(body) == {"audience_id", "session_id", "num_received", "num_invalid_entries", "invalid_entry_samples"}
    assert body["audience_id"] == aud and body["session_id"].isdigit()
    assert body["num_received"] == 2 and body["num_invalid_entries"] == 0 and body["invalid_entry_samples"] == {}
    other = graph.add(aud, S, [sha("c")]).json()
    assert other["session_id"] != body["session_id"] and other["num_received"] == 1


def test_session_num_received_is_cumulative(graph: Graph) -> None:
    aud = graph.create()
    sess = {"session_id": 9001, "batch_seq": 1, "last_batch_flag": False, "estimated_num_total": 5}
    assert graph.add(aud, S, [sha("a"), sha("b")], sess).json()["num_received"] == 2
    sess |= {"batch_seq": 2}
    body = graph.add(aud, S, [sha("c"), "nothex"], sess).json()
    assert body["session_id"] == "9001"
    assert body["num_received"] == 4 and body["num_invalid_entries"] == 1
    # re-sending batch 2 (a retry after a lost acknowledgement) is not double-counted
    assert graph.add(aud, S, [sha("c"), "nothex"], sess).json()["num_received"] == 4
    sessions = graph.get(f"/{aud}/sessions", params={"session_id": "9001"}).json()["data"]
    assert len(sessions) == 1
    s = sessions[0]
    assert s["session_id"] == "9001" and s["num_received"] == "4" and s["num_invalid_entries"] == "1"
    assert s["stage"] == "uploading" and s["end_time"] == "0" and s["progress"] == 80
    sess |= {"batch_seq": 3, "last_batch_flag": True}
    assert graph.add(aud, S, [sha("d")], sess).json()["num_received"] == 5
    s = graph.get(f"/{aud}/sessions", params={"session_id": "9001"}).json()["data"][0]
    assert s["stage"] == "finished" and s["progress"] == 100 and s["num_matched"] == "4"
    assert int(s["end_time"]) >= int(s["start_time"]) > 0


def test_session_finished_rejects_more_batches(graph: Graph) -> None:
    aud = graph.create()
    graph.add(aud, S, [sha("a")], {"session_id": 7, "batch_seq": 1, "last_batch_flag": "true"})
    err = error_of(graph.add(aud, S, [sha("b")], {"session_id": 7, "batch_seq": 2}))
    assert (err["code"], err["error_subcode"]) == (2650, 1870159)
    assert len(graph.members(aud)) == 1


def test_session_expires_after_90_minutes(graph: Graph) -> None:
    aud = graph.create()
    graph.add(aud, S, [sha("a")], {"session_id": 8, "batch_seq": 1})
    graph.advance(89 * 60)
    assert graph.add(aud, S, [sha("b")], {"session_id": 8, "batch_seq": 2}).status_code == 200
    graph.advance(2 * 60)
    err = error_of(graph.add(aud, S, [sha("c")], {"session_id": 8, "batch_seq": 3}))
    assert (err["code"], err["error_subcode"]) == (2650, 1870158)
    s = graph.get(f"/{aud}/sessions").json()["data"][0]
    assert s["stage"] == "timed_out"
    assert {m["EMAIL"] for m in graph.members(aud)} == {sha("a"), sha("b")}


def test_sessions_listing_newest_first(graph: Graph) -> None:
    aud = graph.create()
    graph.add(aud, S, [sha("a")], {"session_id": 1, "batch_seq": 1, "last_batch_flag": True})
    graph.advance(5)
    graph.add(aud, S, [sha("b")], {"session_id": 2, "batch_seq": 1, "last_batch_flag": True})
    data = graph.get(f"/{aud}/sessions").json()["data"]
    assert [s["session_id"] for s in data] == ["2", "1"]


# ------------------------------------------------------------------ replace


def _replace(graph: Graph, aud: str, data: list[str], sid: int, seq: int, last: bool = False):
    return graph.replace(aud, S, data, {"session_id": sid, "batch_seq": seq, "last_batch_flag": last})


def test_replace_swaps_members_at_last_batch(graph: Graph) -> None:
    graph.exact_counts()
    aud = graph.create()
    graph.add(aud, S, [sha("old1"), sha("old2")])
    r = _replace(graph, aud, [sha("new1")], 100, 1)
    assert r.status_code == 200, r.text
    assert r.json()["audience_id"] == aud and r.json()["session_id"] == "100"
    f = graph.fields(aud, "operation_status", "approximate_count_lower_bound")
    assert f["operation_status"]["code"] == 414
    assert f["approximate_count_lower_bound"] == 2  # old members until the replace completes
    body = _replace(graph, aud, [sha("new2"), sha("new3")], 100, 2, last=True).json()
    assert body["num_received"] == 3
    assert {m["EMAIL"] for m in graph.members(aud)} == {sha("new1"), sha("new2"), sha("new3")}
    assert graph.fields(aud, "operation_status")["operation_status"]["code"] == 200


def test_replace_on_fresh_audience(graph: Graph) -> None:
    aud = graph.create()
    assert _replace(graph, aud, [sha("a")], 1, 1, last=True).status_code == 200
    assert len(graph.members(aud)) == 1


def test_replace_must_start_with_batch_1(graph: Graph) -> None:
    aud = graph.create()
    err = error_of(_replace(graph, aud, [sha("a")], 5, 2))
    assert (err["code"], err["error_subcode"]) == (2650, 1870147)


def test_replace_in_progress_blocks_other_sessions_and_users(graph: Graph) -> None:
    aud = graph.create()
    _replace(graph, aud, [sha("a")], 1, 1)
    err = error_of(_replace(graph, aud, [sha("b")], 2, 1))
    assert (err["code"], err["error_subcode"]) == (2650, 1870145)
    assert err["is_transient"] is True
    for resp in (graph.add(aud, S, [sha("x")]), graph.remove(aud, S, [sha("x")])):
        err = error_of(resp)
        assert (err["code"], err["error_subcode"]) == (2650, 1870145)


def test_replace_finished_session(graph: Graph) -> None:
    aud = graph.create()
    _replace(graph, aud, [sha("a")], 1, 1, last=True)
    err = error_of(_replace(graph, aud, [sha("b")], 1, 2))
    assert (err["code"], err["error_subcode"]) == (2650, 1870159)
    err = error_of(_replace(graph, aud, [sha("b")], 1, 1))  # a reused session id
    assert (err["code"], err["error_subcode"]) == (2650, 1870159)


def test_replace_times_out_keeps_what_arrived(graph: Graph) -> None:
    aud = graph.create()
    graph.add(aud, S, [sha("old")])
    _replace(graph, aud, [sha("a")], 1, 1)
    graph.advance(90 * 60 + 1)
    err = error_of(_replace(graph, aud, [sha("b")], 1, 2))
    assert (err["code"], err["error_subcode"]) == (2650, 1870158)
    assert {m["EMAIL"] for m in graph.members(aud)} == {sha("a")}
    assert graph.fields(aud, "operation_status")["operation_status"]["code"] == 415
    # a new replace may start after a failed one
    assert _replace(graph, aud, [sha("c")], 2, 1, last=True).status_code == 200
    assert graph.fields(aud, "operation_status")["operation_status"]["code"] == 200


def test_replace_batch_1_again_restarts_the_session(graph: Graph) -> None:
    aud = graph.create()
    _replace(graph, aud, [sha("a")], 1, 1)
    _replace(graph, aud, [sha("b")], 1, 2)
    _replace(graph, aud, [sha("c")], 1, 1)  # "do not send batch_seq 1 twice": it starts over
    _replace(graph, aud, [sha("d")], 1, 2, last=True)
    assert {m["EMAIL"] for m in graph.members(aud)} == {sha("c"), sha("d")}


def test_replace_requires_session_and_same_schema(graph: Graph) -> None:
    aud = graph.create()
    err = error_of(graph.post(f"/{aud}/usersreplace", json={"payload": {"schema": S, "data": [sha("a")]}}))
    assert err["message"] == "(#100) Missing parameter(s): session"
    err = error_of(graph.replace(aud, S, [sha("a")], {"batch_seq": 1}))
    assert err["code"] == 100
    graph.replace(aud, ["EMAIL", "FN"], [[sha("a"), sha("f")]], {"session_id": 3, "batch_seq": 1})
    err = error_of(graph.replace(aud, ["EMAIL", "LN"], [[sha("b"), sha("l")]], {"session_id": 3, "batch_seq": 2}))
    assert err["code"] == 100 and "schema" in err["message"]


def test_replace_size_limit_1870144(graph: Graph) -> None:
    graph.server.config.replace_max_size = 3
    aud = graph.create()
    graph.add(aud, S, [rand_hash() for _ in range(3)])
    err = error_of(_replace(graph, aud, [sha("a")], 1, 1))
    assert (err["code"], err["error_subcode"]) == (2650, 1870144)


def test_replace_needs_normal_status(graph: Graph) -> None:
    aud = graph.create()
    graph.add(aud, S, [sha("a")])
    graph.emu("POST", f"/audiences/{aud}", {"operation_status": 441})
    err = error_of(_replace(graph, aud, [sha("a")], 1, 1))
    assert (err["code"], err["error_subcode"]) == (2650, 1870145)


def test_replace_keeps_value_based_rule(graph: Graph) -> None:
    vb = graph.create(is_value_based=True)
    err = error_of(graph.replace(vb, ["EMAIL"], [[sha("a")]], {"session_id": 1, "batch_seq": 1}))
    assert err["code"] == 100
    ok = graph.replace(vb, ["EMAIL", "LOOKALIKE_VALUE"], [[sha("a"), 3]], {"session_id": 1, "batch_seq": 1})
    assert ok.status_code == 200
