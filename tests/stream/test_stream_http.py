"""The HTTP surface: authentication, limits, status codes, health and metrics.

The flusher is held back (flush_after 1h) so the queue depth shows exactly what was accepted.
"""

from __future__ import annotations

import gzip
import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from audiencesync.state.ingest import queue_path

from .conftest import BEARER, KEY, WRITE_KEY, sha

HELD = {"flush_after": "1h"}


def identify(user: str = "u1", member: bool = True, **traits) -> dict:
    return {"type": "identify", "userId": user, "traits": {KEY: member, **traits}}


class Client(httpx.Client):
    """An HTTP client on a running server, that knows the server (to read its queue depth)."""

    server: Any


@pytest.fixture
def make_client(server_for) -> Iterator:
    clients: list[Client] = []

    def make(**serve) -> Client:
        srv = server_for({**HELD, **serve})
        client = Client(base_url=srv.url, auth=(WRITE_KEY, ""), timeout=10)
        client.server = srv
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def client(make_client) -> Client:
    return make_client()


def depth(client: Client) -> int:
    return client.server.runtime.stats.pending


def test_write_key_as_basic_auth_user_is_accepted(client):
    r = client.post("/v1/identify", json=identify())
    assert r.status_code == 200
    assert r.json() == {"success": True, "accepted": 1, "received": 1, "used": 1, "skipped": 0, "refused": 0}
    assert depth(client) == 1


def test_bearer_token_is_accepted(client):
    r = client.post("/v1/identify", json=identify(), auth=None, headers={"Authorization": f"Bearer {BEARER}"})
    assert r.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic d3Jvbmc6"},  # wrong:
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": f"Bearer {WRITE_KEY}"},  # the write key is not a bearer token
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Token {BEARER}"},
    ],
)
def test_anything_else_is_401_and_nothing_is_queued(client, headers):
    r = client.post("/v1/identify", json=identify(), auth=None, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic")
    assert depth(client) == 0
    assert 'rejected_total{reason="unauthorized"} 1' in client.get("/metrics").text


def test_auth_comes_before_the_body_is_judged(client):
    r = client.post("/v1/identify", content=b"not json", auth=("nope", ""))
    assert r.status_code == 401


def test_not_json_is_400(client):
    r = client.post("/v1/identify", content=b"{nope")
    assert r.status_code == 400 and r.json()["error"] == "the body is not valid JSON"


def test_call_without_a_membership_is_skipped_not_refused(client):
    r = client.post("/v1/identify", json={"userId": "u", "traits": {"vip": True}})
    assert r.status_code == 200
    assert r.json()["skipped"] == 1 and r.json()["skipped_by_reason"] == {"no_membership": 1}
    assert depth(client) == 0


def test_malformed_single_call_is_400_with_code_and_message(client):
    r = client.post("/v1/identify", json={"userId": "u", "traits": {KEY: "perhaps"}})
    assert r.status_code == 400
    body = r.json()
    assert body["success"] is False and body["code"] == "invalid_call"
    assert f"traits.{KEY}: must be true or false" in body["message"]
    assert depth(client) == 0


def test_single_call_over_32kb_is_413(client):
    r = client.post("/v1/identify", json=identify(notes="x" * 40_000))
    assert r.status_code == 413 and depth(client) == 0


def test_batch_body_over_the_limit_is_413_before_reading(make_client):
    c = make_client(max_body_bytes=4096, max_call_bytes=1024)
    body = {"batch": [identify(f"u{i}") for i in range(200)]}
    r = c.post("/v1/batch", json=body)
    assert r.status_code == 413 and "larger than 4096 bytes" in r.json()["error"]
    assert depth(c) == 0


def test_a_malformed_call_in_a_batch_is_refused_alone(client):
    body = {"batch": [identify("a"), {"type": "identify", "userId": "b", "traits": {KEY: "perhaps"}}]}
    r = client.post("/v1/batch", json=body)
    assert r.status_code == 200 and r.json()["refused"] == 1 and r.json()["used"] == 1
    assert "batch[1]: traits." in r.json()["refused_calls"][0]
    assert depth(client) == 1
    r = client.post("/v1/batch", json={"batch": [body["batch"][1]]})
    assert r.status_code == 400 and "batch[0]: traits." in r.json()["message"]
    assert depth(client) == 1
    assert client.post("/v1/batch", json={"batch": [identify("a"), identify("b", False)]}).status_code == 200
    assert depth(client) == 3


def test_queue_over_its_bound_is_429_with_retry_after(make_client):
    c = make_client(max_queue=3)
    assert c.post("/v1/batch", json={"batch": [identify("a"), identify("b")]}).status_code == 200
    r = c.post("/v1/batch", json={"batch": [identify("c"), identify("d")]})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert depth(c) == 2
    assert c.post("/v1/identify", json=identify("c")).status_code == 200


def test_gzip_body_is_read(client):
    raw = orjson.dumps({"batch": [identify("g1"), identify("g2")]})
    r = client.post("/v1/batch", content=gzip.compress(raw), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200 and depth(client) == 2


def test_gzip_bomb_is_413(make_client):
    c = make_client(max_body_bytes=4096, max_call_bytes=1024)
    bomb = gzip.compress(b'{"batch": [' + b" " * 1_000_000 + b"]}")
    assert c.post("/v1/batch", content=bomb, headers={"Content-Encoding": "gzip"}).status_code == 413


def test_mparticle_endpoints_and_commerce_report(client):
    batch = {
        "user_identities": {"customer_id": "c1", "email": "a@b.io"},
        "user_attributes": {KEY: True},
        "events": [{"event_type": "commerce_event", "data": {"product_action": {"action": "purchase"}}}],
    }
    r = client.post("/v2/events", json=batch)
    assert r.status_code == 200
    assert r.json()["accepted"] == 1 and r.json()["commerce_events"]["queued"] == 0
    assert r.json()["commerce_events"]["skipped_by_reason"] == {"commerce_not_forwarded": 1}
    assert client.post("/v2/bulkevents", json=[batch, batch]).status_code == 200
    assert depth(client) == 3
    metrics = client.get("/metrics").text
    assert "commerce_events_received_total 3" in metrics
    assert 'commerce_events_skipped_total{reason="commerce_not_forwarded"} 3' in metrics


def test_firehose_answers_with_a_membership_change_response(client):
    r = client.post("/v1/mparticle", json={"type": "audience_membership_change_request", "id": "x"})
    assert r.status_code == 200 and r.json()["type"] == "audience_membership_change_response"


def test_own_membership_endpoint(client):
    r = client.post("/v1/membership", json={"audience": KEY, "user_id": "u", "in": True, "traits": {"email": "a@b.io"}})
    assert r.status_code == 200 and depth(client) == 1
    r = client.post("/v1/membership", json={"audience": "nope", "user_id": "u", "in": True})
    assert r.status_code == 200 and r.json()["skipped_by_reason"] == {"unconfigured_audience": 1}
    assert depth(client) == 1


def test_health_and_metrics(client):
    client.post("/v1/identify", json=identify("m1", email="secret.person@example.com", phone="+1 415 555 0100"))
    client.post("/v1/identify", json={"userId": "m2", "traits": {KEY: True, "email": "bad"}})
    h = client.get("/health", auth=None)
    assert h.status_code == 200 and h.json()["status"] == "ok" and h.json()["queue_depth"] == 2
    m = client.get("/metrics", auth=None)
    assert m.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = m.text
    assert "# TYPE audiencesync_stream_queue_depth gauge" in text
    assert "audiencesync_stream_queue_depth 2" in text
    assert f'audiencesync_stream_accepted_total{{audience="{KEY}"}} 2' in text
    assert 'audiencesync_stream_invalid_values_total{key="EMAIL",reason="not_an_email"} 1' in text
    assert "audiencesync_stream_oldest_change_age_seconds" in text
    for family in ("sent_total", "failed_total", "rejected_total"):
        assert f"# TYPE audiencesync_stream_{family} counter" in text
    assert "secret" not in text and "4155550100" not in text


def test_raw_pii_never_reaches_the_state_file(project, client):
    r = client.post("/v1/identify", json=identify("p1", email="Private.Person@Example.com", firstName="Privatus"))
    assert r.status_code == 200
    client.server.stop()
    files = [p for p in project.root.iterdir() if p.name.startswith("state.duckdb")]
    assert any(p.name.endswith(".queue.sqlite") for p in files)
    data = b"".join(p.read_bytes() for p in files).lower()
    assert b"private.person" not in data and b"rivatus" not in data
    with sqlite3.connect(queue_path(project.root / "state.duckdb")) as con:
        rows = con.execute("SELECT * FROM stream_changes").fetchall()
    assert len(rows) == 1
    text = repr(rows).lower()
    assert "private" not in text and "rivatus" not in text and sha("private.person@example.com") in text
