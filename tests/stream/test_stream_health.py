"""`/health` tells the truth: degraded while every flush fails, ok again once they succeed."""

from __future__ import annotations

import httpx

from .conftest import WRITE_KEY


def identify(user: str) -> dict:
    return {"type": "identify", "userId": user, "traits": {"order_completed_last_30days": True}}


def test_health_turns_degraded_when_flushes_keep_failing_and_back(server_for, fb, monkeypatch):
    from audiencesync.stream import flusher

    monkeypatch.setattr(flusher, "BACKOFF_START", 0.1)
    monkeypatch.setattr(flusher, "BACKOFF_MAX", 0.2)
    srv = server_for({"flush_after": "100ms"})
    ok = httpx.post(f"{srv.url}/v1/identify", json=identify("first"), auth=(WRITE_KEY, ""))
    assert ok.status_code == 200
    fb.wait_for(
        lambda: httpx.get(f"{srv.url}/health").json()["status"] == "ok" and fb.audience("Ordered in the last 30 days")
    )

    httpx.post(f"{fb.url}/_emulator/faults", json={"path": "/users$", "count": 10_000, "error": {"code": 190}})
    assert httpx.post(f"{srv.url}/v1/identify", json=identify("second"), auth=(WRITE_KEY, "")).status_code == 200
    fb.wait_for(lambda: httpx.get(f"{srv.url}/health").json()["status"] == "degraded", timeout=20)
    health = httpx.get(f"{srv.url}/health")
    assert health.status_code == 200  # calls are still accepted and queued
    body = health.json()
    assert any("stream flushes" in d for d in body["degraded"]) and body["queue_depth"] >= 1
    metrics = httpx.get(f"{srv.url}/metrics").text
    assert 'audiencesync_stream_audience_sync_failures_total{audience="order_completed_last_30days"}' in metrics

    httpx.delete(f"{fb.url}/_emulator/faults")
    fb.wait_for(lambda: httpx.get(f"{srv.url}/health").json()["status"] == "ok", timeout=20)
    assert httpx.get(f"{srv.url}/health").json()["queue_depth"] == 0
    assert "audiencesync_stream_audience_last_success_timestamp_seconds" in httpx.get(f"{srv.url}/metrics").text
