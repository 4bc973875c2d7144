"""Audience health (issue 12 parts 1, 2, 6): read back after writes, the checks before the first
write (flagged, deleted behind our back, terms), and `status`/`history` — against the emulator."""

from __future__ import annotations

import json

import httpx
from tests.support import person
from typer.testing import CliRunner

from audiencesync.cli import app
from audiencesync.pipeline import sync
from audiencesync.state import StateStore
from audiencesync.state import health as health_state

runner = CliRunner()
EMAIL_ONLY = {"name": "VIP customers", "forward": ["email"]}


def invoke(ws, *args):
    return runner.invoke(
        app, [*args, "--config", str(ws.root / "audiencesync.yml")], env={"META_ACCESS_TOKEN": ws.emu.token}
    )


def fb_id(cfg, kind="email", key="vip_customers"):
    with StateStore(cfg.state) as s:
        return {fb.kind: fb.fb_id for fb in s.facebook_audiences(key)}.get(kind)


def admin(ws, path, body):
    r = httpx.post(f"{ws.emu.url}/_emulator/{path}", json=body)
    r.raise_for_status()
    return r.json()


def writes(ws, before):
    return [r for r in ws.requests()[before:] if r["method"] in ("POST", "DELETE")]


def test_read_back_gives_bounds_statuses_and_match_rate_and_keeps_history(ws):
    admin(ws, "config", {"match_shares": {"EMAIL": 0.5}, "count_floor": 0, "count_significant_digits": None})
    ws.write_rows([person(i) for i in range(400)])
    cfg = ws.config([EMAIL_ONLY])
    a = sync(cfg).audiences[0]
    assert a.status == "ok", a.error
    fr = a.facebook[0]
    emu = next(x for x in ws.emulator_audiences() if x["id"] == fr.fb_id)
    matched = emu["matched_count"]
    assert 120 < matched < 280  # a 0.5 share of 400, deterministic
    assert (fr.matched_lower, fr.matched_upper) == (matched, matched)  # exact counts configured
    assert fr.match_rate_low == fr.match_rate_high == round(matched / 400, 4)
    assert fr.operation_status == 200 and fr.delivery_status == 200 and fr.health_warning is None

    # Rounded counts give a range; the history keeps both reads.
    admin(ws, "config", {"count_significant_digits": 1})
    ws.write_rows([person(i) for i in range(410)])
    b = sync(cfg).audiences[0].facebook[0]
    assert b.matched_lower < b.matched_upper and b.match_rate_low < b.match_rate_high
    assert b.match_rate_low <= emu["matched_count"] / 400 <= b.match_rate_high + 0.05
    with StateStore(cfg.state) as s:
        rows = health_state.history(s.con, fr.fb_id)
    assert [h.members_held for _, h in rows] == [400, 410]

    status = invoke(ws, "status", "--json")
    assert status.exit_code == 0, status.output
    h = json.loads(status.output)["facebook_audiences"][0]["health"]
    assert (h["matched_lower"], h["matched_upper"]) == (b.matched_lower, b.matched_upper)
    assert (h["match_rate_low"], h["match_rate_high"]) == (b.match_rate_low, b.match_rate_high)
    assert h["operation_status"] == 200 and h["delivery_status"] == 200 and h["warning"] is None

    text = invoke(ws, "status")
    assert "match rate" in text.output and "200" in text.output
    hist = invoke(ws, "history", "vip_customers")
    assert hist.exit_code == 0, hist.output
    assert "400" in hist.output and "410" in hist.output
    hist_json = json.loads(invoke(ws, "history", "VIP customers", "--json").output)
    assert [r["members_held"] for r in hist_json] == [400, 410]

    sync_json = json.loads(invoke(ws, "sync", "--json").output)  # nothing changed: no read, fields absent
    assert sync_json["audiences"][0]["facebook"][0]["matched_lower"] is None


def test_low_match_is_warned(ws):
    admin(ws, "config", {"match_shares": {"EMAIL": 0.05}, "count_floor": 0, "count_significant_digits": None})
    ws.write_rows([person(i) for i in range(200)])
    cfg = ws.config([EMAIL_ONLY])
    fr = sync(cfg).audiences[0].facebook[0]
    assert fr.health_warning == "low match" and fr.operation_status == 411
    doc = json.loads(invoke(ws, "status", "--json").output)
    assert doc["facebook_audiences"][0]["health"]["warning"] == "low match"


def test_a_read_failure_never_fails_the_run(ws):
    ws.write_rows([person(i) for i in range(3)])
    cfg = ws.config([EMAIL_ONLY])
    assert sync(cfg).ok
    ws.write_rows([person(i) for i in range(4)])
    ws.fault(method="GET", path=r"^/\d+$", count=20, error={"code": 100, "message": "nope"})
    a = sync(cfg).audiences[0]
    assert a.status == "ok", a.error
    assert a.facebook[0].adds == 1
    assert a.facebook[0].matched_lower is None


def test_flagged_before_the_run_stops_with_the_fields_and_sends_nothing(ws):
    ws.write_rows([person(i) for i in range(3)])
    cfg = ws.config([EMAIL_ONLY])
    assert sync(cfg).ok
    fid = fb_id(cfg)
    admin(ws, f"audiences/{fid}", {"flagged": True, "fields_violating_integrity_policy": ["name", "description"]})
    ws.write_rows([person(i) for i in range(5)])
    before = len(ws.requests())
    a = sync(cfg).audiences[0]
    assert a.status == "failed"
    assert "flagged" in a.error and "name, description" in a.error and "Ads Manager" in a.error
    assert writes(ws, before) == []  # stopped before the first write, never retried
    doc = json.loads(invoke(ws, "status", "--json").output)
    h = doc["facebook_audiences"][0]["health"]
    assert h["warning"] == "flagged" and h["flagged_fields"] == ["name", "description"]


def test_flag_at_write_time_reads_the_same_sentence(ws):
    from audiencesync.load.graph import GraphError

    text = GraphError("Invalid parameter", code=100, subcode=1713230).explain()
    assert "flagged" in text and "Ads Manager" in text and "operation_status 471" in text


def test_deleted_behind_our_back_is_reported_and_not_recreated_without_the_flag(ws):
    ws.write_rows([person(i) for i in range(3)])
    cfg = ws.config([EMAIL_ONLY])
    assert sync(cfg).ok
    old = fb_id(cfg)
    admin(ws, f"audiences/{old}", {"deleted": True})
    ws.write_rows([person(i) for i in range(4)])
    before = len(ws.requests())
    a = sync(cfg).audiences[0]
    assert a.status == "failed" and "no longer exists on Facebook" in a.error and "--recreate" in a.error
    assert writes(ws, before) == []  # no silent twin
    assert fb_id(cfg) == old
    assert [x["id"] for x in ws.emulator_audiences() if not x["deleted"]] == []
    doc = json.loads(invoke(ws, "status", "--json").output)
    assert doc["facebook_audiences"][0]["health"]["warning"] == "deleted"

    result = invoke(ws, "sync", "--recreate", "--json")
    assert result.exit_code == 0, result.output
    fr = json.loads(result.output)["audiences"][0]["facebook"][0]
    new = fb_id(cfg)
    assert new != old and fr["fb_id"] == new and fr["adds"] == 4 and "--recreate" in fr["message"]
    assert len(ws.members(new)) == 4
    live = [x["id"] for x in ws.emulator_audiences() if not x["deleted"]]
    assert live == [new]  # exactly one, the new one


def test_expired_audience_is_reported_like_a_deleted_one(ws):
    ws.write_rows([person(i) for i in range(3)])
    cfg = ws.config([EMAIL_ONLY])
    assert sync(cfg).ok
    admin(ws, f"audiences/{fb_id(cfg)}", {"expired": True})
    ws.write_rows([person(i) for i in range(4)])
    a = sync(cfg).audiences[0]
    assert a.status == "failed" and "expired" in a.error


def test_unshared_audience_is_explained(ws):
    ws.write_rows([person(i) for i in range(3)])
    cfg = ws.config([EMAIL_ONLY])
    assert sync(cfg).ok
    admin(ws, f"audiences/{fb_id(cfg)}", {"unshared": True})
    ws.write_rows([person(i) for i in range(4)])
    before = len(ws.requests())
    a = sync(cfg).audiences[0]
    assert a.status == "failed" and "1487301" in a.error and "share" in a.error
    assert writes(ws, before) == []


def test_missing_terms_stop_before_any_write_with_the_link(ws):
    admin(ws, "accounts/act_1234567890", {"tos_accepted": False})
    ws.write_rows([person(i) for i in range(3)])
    cfg = ws.config([EMAIL_ONLY])
    a = sync(cfg).audiences[0]
    assert a.status == "failed"
    assert "https://business.facebook.com/ads/manage/customaudiences/tos/?act=1234567890" in a.error
    assert writes(ws, 0) == []  # not even the audience was created


def test_value_based_terms_only_matter_for_value_based_audiences(ws):
    admin(ws, "accounts/act_1234567890", {"value_based_tos_accepted": False})
    ws.write_rows([person(i) for i in range(3)])
    cfg = ws.config([EMAIL_ONLY])
    assert sync(cfg).ok
    cfg2 = ws.config([{"name": "LTV", "key": "ltv", "multi_key": True, "value": {"column": "ltv"}}])
    a = sync(cfg2).audiences[0]
    assert a.status == "failed" and "value-based" in a.error and "tos/?act=1234567890" in a.error


def test_usage_restriction_and_sac_eligibility_are_read_kept_and_shown(ws):
    """Reported as Facebook gives them (spec §2.2: `usage_restriction` is reported, never acted on)."""
    ws.write_rows([person(i) for i in range(200)])
    cfg = ws.config([EMAIL_ONLY])
    assert sync(cfg).audiences[0].status == "ok"
    fid = fb_id(cfg)
    admin(ws, f"audiences/{fid}", {"usage_restriction": "EXCLUSION_ONLY", "is_eligible_for_sac_campaigns": False})
    ws.write_rows([person(i) for i in range(201)])
    assert sync(cfg).audiences[0].status == "ok"
    with StateStore(cfg.state) as s:
        reads = [h for _, h in health_state.history(s.con, fid)]
    assert (reads[0].usage_restriction, reads[0].sac_eligible) == (None, True)
    assert (reads[-1].usage_restriction, reads[-1].sac_eligible) == ("EXCLUSION_ONLY", False)
    h = json.loads(invoke(ws, "status", "--json").output)["facebook_audiences"][0]["health"]
    assert h["usage_restriction"] == "EXCLUSION_ONLY" and h["eligible_for_sac_campaigns"] is False
