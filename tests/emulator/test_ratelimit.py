"""Per-ad-account budgets, usage headers and 80003 (spec §3.4; checklist §7.7, §7.8)."""

from __future__ import annotations

import json

from audiencesync.emulator.clock import Clock
from audiencesync.emulator.config import EmulatorConfig
from audiencesync.emulator.errors import GraphError
from audiencesync.emulator.ratelimit import RateLimiter

from .conftest import Graph, error_of


def test_limiter_unit_budget_window_and_regain() -> None:
    clock = Clock(1_000_000)
    limiter = RateLimiter(EmulatorConfig(calls_per_hour=4, rate_window_s=3600), clock)
    for _ in range(4):
        use = limiter.hit("1", "custom_audience")
    assert use.pct == 100
    try:
        limiter.hit("1", "custom_audience")
        raise AssertionError("expected a throttle")
    except GraphError as err:
        assert err.code == 80003 and err.is_transient
        buc = json.loads(err.headers["x-business-use-case-usage"])
        assert buc["1"][0]["estimated_time_to_regain_access"] == 60
    assert limiter.hit("2", "custom_audience").pct == 25  # another account is unaffected
    clock.advance(3601)
    assert limiter.hit("1", "custom_audience").pct == 25


def test_usage_headers_grow_and_throttle_over_http(graph: Graph) -> None:
    graph.server.config.calls_per_hour = 4
    aud = graph.create()  # call 1
    r = graph.get(f"/{aud}")  # call 2
    assert json.loads(r.headers["x-app-usage"])["call_count"] == 50
    acct = json.loads(r.headers["x-ad-account-usage"])
    assert acct["acc_id_util_pct"] == 50.0 and 0 < acct["reset_time_duration"] <= 3600
    graph.get(f"/{aud}")
    graph.get(f"/{aud}")
    r = graph.get(f"/{aud}")
    err = error_of(r)
    assert err["code"] == 80003 and err["is_transient"] is True
    assert "too many calls to this ad-account" in err["message"]
    buc = json.loads(r.headers["x-business-use-case-usage"])
    assert buc["1"][0]["type"] == "custom_audience"
    assert buc["1"][0]["call_count"] == 100
    assert buc["1"][0]["estimated_time_to_regain_access"] >= 1
    # other ad accounts keep their own budget
    assert graph.get("/act_2/customaudiences").status_code == 200
    graph.advance(3601)
    assert graph.get(f"/{aud}").status_code == 200


def test_unlimited_by_default(graph: Graph) -> None:
    aud = graph.create()
    for _ in range(30):
        r = graph.get(f"/{aud}")
    assert r.status_code == 200
    assert json.loads(r.headers["x-app-usage"])["call_count"] == 0
