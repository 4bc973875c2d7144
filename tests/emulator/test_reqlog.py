"""The request log: what it records and that no raw token ever reaches it."""

from __future__ import annotations

import json

from audiencesync.emulator.reqlog import redact_query

from .conftest import Graph, sha


def test_log_entries(graph: Graph) -> None:
    aud = graph.create()
    graph.add(aud, "EMAIL_SHA256", [sha("a"), sha("b")])
    graph.get("/12345")
    log = graph.emu("GET", "/requests").json()
    assert [e["method"] for e in log] == ["POST", "POST", "GET"]
    create, upload, missing = log
    assert create["path"] == "/v25.0/act_1/customaudiences" and create["status"] == 200
    assert upload["rows"] == 2 and upload["path"] == f"/v25.0/{aud}/users"
    assert (missing["status"], missing["error_code"], missing["error_subcode"]) == (400, 100, 33)
    assert all(isinstance(e["time"], float) and e["fbtrace_id"] for e in log)
    assert graph.emu("DELETE", "/requests").json() == {"success": True}
    assert graph.emu("GET", "/requests").json() == []


def test_no_raw_token_or_proof_in_the_log(graph: Graph) -> None:
    graph.server.config.app_secret = "shh"
    graph.get("/act_1", params={"appsecret_proof": "deadbeef" * 8})
    graph.http.get(f"{graph.base}/act_1", headers={"Authorization": f"Bearer {graph.token}"})
    graph.post("/act_1/customaudiences", json={"access_token": "some-other-token", "name": "x"})
    dump = json.dumps(graph.emu("GET", "/requests").json())
    assert graph.token not in dump and "deadbeef" not in dump and "some-other-token" not in dump
    assert "access_token" not in dump


def test_redact_query() -> None:
    assert redact_query("a=1&access_token=abc&appsecret_proof=def&b=2") == (
        "a=1&access_token=REDACTED&appsecret_proof=REDACTED&b=2"
    )
