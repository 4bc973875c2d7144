"""The HTTP layer: transports, overrides, headers, versions, unknown paths (spec §1; checklist §7.1–3, §7.8)."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlencode

import httpx
import orjson

from audiencesync.emulator import versions

from .conftest import Graph, error_of, sha

CREATE = {"name": "t", "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY"}


def test_every_transport_creates_and_uploads(graph: Graph) -> None:
    url = f"{graph.base}/act_1/customaudiences"
    tok = {"access_token": graph.token}
    responses = [
        graph.http.post(url, params={**CREATE, **tok}),  # query string
        graph.http.post(url, data={**CREATE, **tok}),  # form
        graph.http.post(url, files={k: (None, v) for k, v in {**CREATE, **tok}.items()}),  # multipart
        graph.http.post(url, json={**CREATE, **tok}),  # JSON body, token inside
        graph.http.post(url, json=CREATE, params=tok),  # JSON body, token in query (Rudder)
    ]
    ids = [r.json()["id"] for r in responses]
    assert all(r.status_code == 200 for r in responses) and len(set(ids)) == 5
    payload = {"schema": ["EMAIL", "FN"], "data": [[sha("a"), sha("f")]]}
    session = {"session_id": 1, "batch_seq": 1, "last_batch_flag": True}
    aud = ids[0]
    up = [
        graph.http.post(f"{graph.base}/{aud}/users", params={"payload": json.dumps(payload), **tok}),
        graph.http.post(
            f"{graph.base}/{aud}/users",
            data={"payload": json.dumps(payload), "session": json.dumps(session | {"session_id": 2}), **tok},
        ),
        graph.http.post(
            f"{graph.base}/{aud}/users",
            files={"payload": (None, json.dumps(payload)), **{"access_token": (None, graph.token)}},
        ),
        graph.http.post(
            f"{graph.base}/{aud}/users", json={"payload": payload, "session": session | {"session_id": 3}}, params=tok
        ),
    ]
    assert [r.status_code for r in up] == [200] * 4, [r.text for r in up]
    assert up[1].json()["session_id"] == "2"
    assert len(graph.members(aud)) == 1


def test_json_string_objects_and_string_booleans(graph: Graph) -> None:
    r = graph.post("/act_1/customaudiences", data={**CREATE, "is_value_based": "1"})
    vb = r.json()["id"]
    assert graph.fields(vb, "is_value_based")["is_value_based"] is True
    r = graph.post("/act_1/customaudiences", data={**CREATE, "is_value_based": "false"})
    assert graph.fields(r.json()["id"], "is_value_based")["is_value_based"] is False
    # PYSDK style: sorted, compact JSON strings; last_batch_flag as "true"
    session = json.dumps(
        {"batch_seq": 1, "last_batch_flag": True, "session_id": 77}, separators=(",", ":"), sort_keys=True
    )
    payload = json.dumps({"data": [[sha("a"), 1.5]], "is_raw": True, "schema": ["EMAIL", "LOOKALIKE_VALUE"]})
    r = graph.post(f"/{vb}/users", data={"payload": payload, "session": session})
    assert r.status_code == 200, r.text
    s = graph.get(f"/{vb}/sessions", params={"session_id": 77}).json()["data"][0]
    assert s["stage"] == "finished"
    err = error_of(graph.post(f"/{vb}/users", data={"payload": "{not json"}))
    assert err["code"] == 100


def test_delete_with_params_in_query_string(graph: Graph) -> None:
    aud = graph.create()
    graph.add(aud, "EMAIL_SHA256", [sha("a"), sha("b")])
    payload = json.dumps({"schema": "EMAIL_SHA256", "data": [sha("a")]})
    r = graph.http.delete(f"{graph.base}/{aud}/users", params={"payload": payload, "access_token": graph.token})
    assert r.status_code == 200 and r.json()["num_received"] == 1
    assert graph.members(aud) == [{"EMAIL": sha("b")}]


def test_method_delete_override_on_post_form(graph: Graph) -> None:
    aud = graph.create()
    graph.add(aud, "EMAIL_SHA256", [sha("a")])
    r = graph.post(
        f"/{aud}/users",
        data={"method": "delete", "payload": json.dumps({"schema": "EMAIL_SHA256", "data": [sha("a")]})},
    )
    assert r.status_code == 200
    assert graph.members(aud) == []
    r = graph.post(f"/{aud}", data={"method": "DELETE"})
    assert r.json() == {"success": True}


def test_authorization_header_forms(graph: Graph) -> None:
    url = f"{graph.base}/act_1/customaudiences"
    for scheme in ("Bearer", "OAuth", "bearer"):
        r = graph.http.get(url, headers={"Authorization": f"{scheme} {graph.token}"})
        assert r.status_code == 200, r.text
    err = error_of(graph.http.get(url, headers={"Authorization": "Bearer nope"}))
    assert err["code"] == 190
    err = error_of(graph.http.get(url))
    assert err["code"] == 104


def test_headers_on_every_graph_response(graph: Graph) -> None:
    aud = graph.create()
    for r in (
        graph.get(f"/{aud}"),
        graph.get("/123456"),  # an error
        graph.add(aud, "EMAIL_SHA256", [sha("a")]),
        graph.post("/99/events", json={"data": []}),  # CAPI error
    ):
        assert r.headers["x-fb-trace-id"]
        assert r.headers["facebook-api-version"] == "v25.0"
        assert json.loads(r.headers["x-app-usage"]).keys() == {"call_count", "total_cputime", "total_time"}
        assert "x-business-use-case-usage" in r.headers
        if r.status_code != 200:
            assert r.json()["error"]["fbtrace_id"]
    buc = json.loads(graph.get(f"/{aud}").headers["x-business-use-case-usage"])
    assert buc["1"][0]["type"] == "custom_audience"
    assert json.loads(graph.get(f"/{aud}").headers["x-ad-account-usage"])["ads_api_access_tier"]
    buc = json.loads(graph.get("/act_1").headers["x-business-use-case-usage"])
    assert buc["1"][0]["type"] == "ads_management"


def test_unknown_and_expired_versions_2635(graph: Graph) -> None:
    url = f"{graph.server.url}/v99.0/act_1/customaudiences"
    err = error_of(graph.http.get(url, params={"access_token": graph.token}))
    assert err["code"] == 2635 and "deprecated version" in err["message"]
    err = error_of(
        graph.http.get(f"{graph.server.url}/v16.0/act_1/customaudiences", params={"access_token": graph.token})
    )
    assert err["code"] == 2635
    # v23.0's Marketing API expiry (2026-06-09) decides for audiences; CAPI uses the Graph date
    graph.emu("POST", "/clock", {"now": versions._ts("2026-06-01")})
    assert graph.http.get(f"{graph.server.url}/v23.0/act_1", params={"access_token": graph.token}).status_code == 200
    graph.emu("POST", "/clock", {"now": versions._ts("2026-06-10")})
    assert (
        error_of(graph.http.get(f"{graph.server.url}/v23.0/act_1", params={"access_token": graph.token}))["code"]
        == 2635
    )
    r = graph.http.get(f"{graph.server.url}/v25.0/act_1", params={"access_token": graph.token})
    assert r.status_code == 200
    graph.emu("POST", "/clock", {"now": versions._ts("2028-07-30")})
    assert (
        error_of(graph.http.get(f"{graph.server.url}/v25.0/act_1", params={"access_token": graph.token}))["code"]
        == 2635
    )


def test_unversioned_path_uses_default_version(graph: Graph) -> None:
    r = graph.http.get(f"{graph.server.url}/act_1", params={"access_token": graph.token})
    assert r.status_code == 200 and r.headers["facebook-api-version"] == "v25.0"


def test_unknown_objects_and_edges(graph: Graph) -> None:
    for method in ("GET", "POST", "DELETE"):
        r = graph.http.request(method, f"{graph.base}/123456789", params={"access_token": graph.token})
        err = error_of(r)
        assert (err["code"], err["error_subcode"], err["type"]) == (100, 33, "GraphMethodException")
        assert err["message"] == (
            f"Unsupported {method.lower()} request. Object with ID '123456789' does not exist, cannot be loaded "
            "due to missing permissions, or does not support this operation. Please read the Graph API "
            "documentation at https://developers.facebook.com/docs/graph-api"
        )
    aud = graph.create()
    err = error_of(graph.get(f"/{aud}/xyz"))
    assert err["code"] == 2500 and err["message"] == "(#2500) Unknown path components: /xyz"
    err = error_of(graph.get(f"/{aud}/users/more"))
    assert err["code"] == 2500
    err = error_of(graph.get(f"/{aud}/users"))
    assert (err["code"], err["error_subcode"]) == (100, 33)
    err = error_of(graph.get("/not-an-id"))
    assert (err["code"], err["error_subcode"]) == (100, 33)


def test_suppress_http_code(graph: Graph) -> None:
    r = graph.get("/123", params={"suppress_http_code": "1"})
    assert r.status_code == 200 and r.json()["error"]["code"] == 100


def test_oversized_url_gets_html_414(graph: Graph) -> None:
    aud = graph.create()
    payload = json.dumps({"schema": "EMAIL_SHA256", "data": [sha(str(i)) for i in range(1100)]})
    query = urlencode({"payload": payload, "access_token": graph.token})
    assert len(query) > 65_536
    conn = http.client.HTTPConnection(graph.server.host, graph.server.port, timeout=10)
    conn.request("DELETE", f"/v25.0/{aud}/users?{query}")
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    assert resp.status == 414
    assert resp.getheader("content-type", "").startswith("text/html")
    assert "Facebook | Error" in text
    # the same removal in the body works
    assert graph.remove(aud, "EMAIL_SHA256", [sha(str(i)) for i in range(1100)]).status_code == 200
    # and a 30 KB URL (SDK-style DELETE of ~400 hashes) still reaches the Graph handler
    small = json.dumps({"schema": "EMAIL_SHA256", "data": [sha(str(i)) for i in range(400)]})
    r = graph.http.delete(f"{graph.base}/{aud}/users", params={"payload": small, "access_token": graph.token})
    assert r.status_code == 200, r.text


def test_emulator_paths_are_not_graph_paths(graph: Graph) -> None:
    r = graph.http.get(f"{graph.server.url}/_emulator/nothing")
    assert r.status_code == 404 and "error" in r.json()
    assert graph.emu("GET", "/health").json()["ok"] is True
    # graph-looking paths under /_emulator are not Graph routes
    assert graph.http.get(f"{graph.server.url}/_emulator/v25.0/act_1").status_code == 404


def test_clock_endpoint(graph: Graph) -> None:
    now = graph.emu("GET", "/clock").json()["now"]
    after = graph.emu("POST", "/clock", {"advance_s": 5400}).json()["now"]
    assert 5399 < after - now < 5460
    assert graph.emu("POST", "/clock", {"now": 1_800_000_000}).json()["now"] - 1_800_000_000 < 5
    assert graph.emu("POST", "/clock", {}).status_code == 400


def test_reset_clears_everything(graph: Graph) -> None:
    aud = graph.create()
    graph.emu("POST", "/faults", {"path": "nothing-matches-this", "error": {"code": 1}})
    graph.emu("POST", "/reset").raise_for_status()
    assert graph.emu("GET", "/audiences").json() == []
    assert graph.emu("GET", "/faults").json() == []
    assert graph.emu("GET", "/requests").json() == []
    assert error_of(graph.get(f"/{aud}"))["error_subcode"] == 33


def test_config_endpoint_is_validated(graph: Graph) -> None:
    assert graph.emu("POST", "/config", {"token": "x"}).status_code == 400
    assert graph.emu("POST", "/config", {"max_rows": 5}).json()["max_rows"] == 5
    assert graph.emu("POST", "/config", {"max_rows": "many"}).status_code == 400
    assert graph.emu("POST", "/config", {"strict_hashes": 1}).status_code == 400
    assert graph.emu("POST", "/config", {"calls_per_hour": 10, "processing_delay_s": 1}).status_code == 200
    assert "app_secret" not in graph.emu("GET", "/config").json()


def test_capi_form_encoded_data(graph: Graph) -> None:
    now = int(graph.emu("GET", "/clock").json()["now"])
    event = {
        "event_name": "Lead",
        "event_time": now,
        "action_source": "physical_store",
        "user_data": {"em": [sha("a")]},
    }
    r = graph.post("/555/events", data={"data": orjson.dumps([event]).decode()})
    assert r.status_code == 200, r.text
    assert r.json()["events_received"] == 1
    assert isinstance(httpx.Response, type)


def test_field_expansion_syntax_selects_whole_fields(graph: Graph) -> None:
    aud = graph.create()
    body = graph.get(f"/{aud}", params={"fields": "name,operation_status{code,description},data_source"}).json()
    assert set(body) == {"id", "name", "operation_status", "data_source"}


def test_legacy_offline_events_version_is_gone(graph: Graph) -> None:
    url = f"{graph.server.url}/v16.0/123/events"
    err = error_of(graph.http.post(url, data={"access_token": graph.token, "upload_tag": "t", "data": "[]"}))
    assert err["code"] == 2635
