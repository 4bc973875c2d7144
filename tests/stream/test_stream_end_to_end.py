"""End to end over real HTTP: calls in, the emulator's Facebook audiences out, within seconds."""

from __future__ import annotations

import httpx

from .conftest import KEY, WRITE_KEY, sha, stream_audience

MULTI = "Ordered in the last 30 days"
EMAIL = "Ordered in the last 30 days (email)"
WITH_EMAIL = [stream_audience(forward=["email"])]


def post(srv, path: str, body, **kw) -> httpx.Response:
    return httpx.post(f"{srv.url}{path}", json=body, auth=(WRITE_KEY, ""), timeout=10, **kw)


def identify(user: str, member: bool, email: str | None = None) -> dict:
    traits = {KEY: member, **({"email": email} if email else {})}
    return {
        "type": "identify",
        "userId": user,
        "traits": traits,
        "context": {"personas": {"computation_class": "audience", "computation_key": KEY}},
    }


def test_a_user_enters_and_leaves_within_seconds(server_for, fb):
    srv = server_for(audiences=WITH_EMAIL)
    assert post(srv, "/v1/identify", identify("u1", True, "Ann@Example.com")).status_code == 200
    # One flush writes its Facebook audiences one after another: wait for the last of them.
    took = fb.wait_for(
        lambda: sha("ann@example.com") in fb.column(EMAIL, "EMAIL") and fb.column(MULTI, "EXTERN_ID") == {"u1"},
        timeout=10,
    )
    assert took < 5
    assert post(srv, "/v1/identify", identify("u1", False)).status_code == 200
    fb.wait_for(lambda: not fb.column(EMAIL, "EMAIL") and not fb.column(MULTI, "EXTERN_ID"), timeout=10)


def test_flips_inside_one_flush_are_coalesced(server_for, fb):
    srv = server_for({"flush_after": "1s"}, audiences=WITH_EMAIL)
    batch = [
        identify("stay", True, "stay@example.com"),
        identify("flip", True, "flip@example.com"),
        identify("flip", False),
        identify("back", False),
        identify("back", True, "back@example.com"),
    ]
    assert post(srv, "/v1/batch", {"batch": batch}).status_code == 200
    want = {sha("stay@example.com"), sha("back@example.com")}
    fb.wait_for(lambda: fb.column(EMAIL, "EMAIL") == want)
    assert fb.column(MULTI, "EXTERN_ID") == {"stay", "back"}
    sent = f'audiencesync_stream_sent_total{{audience="{KEY}"}} 5'
    fb.wait_for(lambda: sent in httpx.get(f"{srv.url}/metrics").text)  # counted just after Facebook answered
    text = httpx.get(f"{srv.url}/metrics").text
    assert f'audiencesync_stream_facebook_rows_removed_total{{audience="{KEY}"}} 0' in text


def test_segment_mparticle_and_our_own_call_reach_the_same_audience(server_for, fb):
    srv = server_for()
    assert post(srv, "/v1/track", {
        "userId": "seg", "event": "Audience Entered",
        "properties": {"audience_key": KEY, KEY: True}, "context": {"traits": {"email": "seg@example.com"}},
    }).status_code == 200  # fmt: skip
    assert post(srv, "/v2/events", {
        "user_identities": {"customer_id": "mp", "email": "mp@example.com"}, "user_attributes": {KEY: True},
    }).status_code == 200  # fmt: skip
    assert post(srv, "/v1/membership", {"audience": KEY, "user_id": "own", "in": True}).status_code == 200
    fb.wait_for(lambda: fb.column(MULTI, "EXTERN_ID") == {"seg", "mp", "own"})
    assert fb.column(MULTI, "EMAIL") == {sha("seg@example.com"), sha("mp@example.com")}


def test_a_failed_sync_keeps_the_changes_and_retries(server_for, fb, emu):
    srv = server_for()
    assert post(srv, "/v1/identify", identify("first", True)).status_code == 200
    fb.wait_for(lambda: fb.column(MULTI, "EXTERN_ID") == {"first"})
    fault = {"path": "users", "method": "POST", "count": 1, "error": {"code": 200}}
    httpx.post(f"{emu.url}/_emulator/faults", json=fault).raise_for_status()
    assert post(srv, "/v1/identify", identify("second", True)).status_code == 200
    failed = f'failed_total{{audience="{KEY}"}} 1'
    fb.wait_for(lambda: failed in httpx.get(f"{srv.url}/metrics").text)
    assert fb.column(MULTI, "EXTERN_ID") == {"first"}
    fb.wait_for(lambda: fb.column(MULTI, "EXTERN_ID") == {"first", "second"}, timeout=10)
    fb.wait_for(lambda: httpx.get(f"{srv.url}/health").json()["queue_depth"] == 0)  # marked done after the ack
    health = httpx.get(f"{srv.url}/health").json()
    assert health["queue_depth"] == 0 and "Permissions" in (health["flusher"]["last_error"] or "")


def test_flush_size_flushes_before_flush_after(server_for, fb):
    srv = server_for({"flush_after": "1h", "flush_size": 3})
    assert post(srv, "/v1/batch", {"batch": [identify("a", True), identify("b", True)]}).status_code == 200
    assert post(srv, "/v1/identify", identify("c", True)).status_code == 200
    fb.wait_for(lambda: fb.column(MULTI, "EXTERN_ID") == {"a", "b", "c"}, timeout=10)


def test_a_user_who_leaves_during_a_failing_flush_and_comes_back_is_in_every_audience(server_for, fb, monkeypatch):
    """Issue 9: the email audience's removal succeeded, the multi-key one's failed; the user came
    back with the same traits and stayed missing from the email audience for good."""
    from audiencesync.stream import flusher

    monkeypatch.setattr(flusher, "BACKOFF_START", 0.1)
    monkeypatch.setattr(flusher, "BACKOFF_MAX", 0.3)
    srv = server_for(audiences=WITH_EMAIL)
    for user in ("stay", "flip"):
        assert post(srv, "/v1/identify", identify(user, True, f"{user}@example.com")).status_code == 200
    fb.wait_for(lambda: fb.column(MULTI, "EXTERN_ID") == {"stay", "flip"})
    multi_id = fb.audience(MULTI)["id"]
    fault = {"method": "DELETE", "path": rf"/{multi_id}/users$", "count": 10_000, "error": {"code": 200}}
    httpx.post(f"{fb.url}/_emulator/faults", json=fault)
    assert post(srv, "/v1/identify", identify("flip", False)).status_code == 200
    fb.wait_for(lambda: fb.column(EMAIL, "EMAIL") == {sha("stay@example.com")})  # one sibling went through
    fb.wait_for(lambda: httpx.get(f"{srv.url}/health").json()["flusher"]["last_error"] is not None)
    httpx.delete(f"{fb.url}/_emulator/faults")
    assert post(srv, "/v1/identify", identify("flip", True, "flip@example.com")).status_code == 200
    both = {sha("stay@example.com"), sha("flip@example.com")}
    fb.wait_for(lambda: fb.column(EMAIL, "EMAIL") == both and fb.column(MULTI, "EXTERN_ID") == {"stay", "flip"})
