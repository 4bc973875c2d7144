"""Alerts (issue 12 part 4): webhooks receive each alert once when its condition starts and once
when it ends, across several runs against the emulator over HTTP, and never a raw value."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import httpx
import pytest
import yaml
from tests.support import person, sha

from audiencesync import alerts
from audiencesync.config import ConfigError, load_config
from audiencesync.pipeline import sync
from audiencesync.state import StateStore
from audiencesync.state import alerts as alert_state
from audiencesync.stream.flusher import FlushOutcome, Waiting, backlog_ages

EMAIL_ONLY = {"name": "VIP customers", "forward": ["email"]}


def configure(ws, receiver, audiences=(EMAIL_ONLY,), guard=None, **sections: Any):
    ws.config(list(audiences), guard=guard)
    path = ws.root / "audiencesync.yml"
    doc = yaml.safe_load(path.read_text())
    doc["alerts"] = {
        "webhooks": [
            {"url": f"{receiver.url}/slack/T000/B000/secret", "format": "slack"},
            {"url": f"{receiver.url}/json", "format": "json", "events": ["integrity_flag", "matched_drop"]},
        ],
        "matched_drop_share": 0.3,
    }
    doc["health"] = {"read_every": "1ms"}  # every run reads back, so a shrink nobody caused is seen
    doc.update(sections)
    path.write_text(yaml.safe_dump(doc))
    return load_config(path, env={"META_ACCESS_TOKEN": ws.emu.token})


def admin(ws, path: str, body: dict[str, Any]) -> None:
    httpx.post(f"{ws.emu.url}/_emulator/{path}", json=body).raise_for_status()


def no_raw_value(body: dict[str, Any]) -> None:
    """Names, counts and codes only: no member's value nor its hash (the sample's are all like these)."""
    text = json.dumps(body)
    assert "@example.com" not in text and "555" not in text and not re.search(r"[0-9a-f]{64}", text), text


def slack(receiver) -> list[tuple[str, str]]:
    found = []
    for body in receiver.take("/slack/T000/B000/secret"):
        no_raw_value(body)
        assert body["blocks"][0]["text"]["text"] == body["text"]
        m = re.search(r"audiencesync (.+?) (started|resolved): ", body["text"])
        assert m, body
        found.append((m.group(1).replace(" ", "_"), m.group(2)))
    return found


def plain(receiver) -> list[tuple[str, str]]:
    bodies = receiver.take("/json")
    for body in bodies:
        no_raw_value(body)
    assert all(b["source"] == "audiencesync" and b["summary"] and b["at"] for b in bodies)
    return [(b["event"], b["state"]) for b in bodies]


def fb_id(cfg) -> str:
    with StateStore(cfg.state) as s:
        return s.facebook_audiences("vip_customers")[0].fb_id


def test_each_alert_arrives_once_per_state_change_across_runs(ws, receiver, caplog):
    caplog.set_level(logging.INFO)  # httpx logs each request's URL at INFO: the webhook's must not show
    admin(ws, "config", {"count_floor": 0, "count_significant_digits": None, "match_shares": {"EMAIL": 0.6}})
    rows = [person(i) for i in range(400)]
    ws.write_rows(rows)
    cfg = configure(ws, receiver)
    assert sync(cfg).ok
    assert slack(receiver) == [] and plain(receiver) == []  # all well: nothing to say
    fid = fb_id(cfg)

    # Facebook's matched size falls with nobody touching the audience: one alert, however many runs.
    admin(ws, f"audiences/{fid}", {"match_shares": {"EMAIL": 0.1}})
    assert sync(cfg).ok
    assert slack(receiver) == [("matched_drop", "started")] and plain(receiver) == [("matched_drop", "started")]
    assert sync(cfg).ok
    assert slack(receiver) == [] and plain(receiver) == []
    admin(ws, f"audiences/{fid}", {"match_shares": None})
    assert sync(cfg).ok
    assert slack(receiver) == [("matched_drop", "resolved")] and plain(receiver) == [("matched_drop", "resolved")]

    # Flagged: the run stops before its first write; failed run and integrity flag, once each.
    admin(ws, f"audiences/{fid}", {"flagged": True, "fields_violating_integrity_policy": ["name"]})
    ws.write_rows([*rows, person(400)])
    assert sync(cfg).audiences[0].status == "failed"
    assert sorted(slack(receiver)) == [("integrity_flag", "started"), ("run_failed", "started")]
    assert plain(receiver) == [("integrity_flag", "started")]  # this webhook hears of two events only
    ws.write_rows([*rows, person(400), person(401)])
    assert sync(cfg).audiences[0].status == "failed"
    assert slack(receiver) == [] and plain(receiver) == []

    # The flag lifted: the run goes through and both end, once.
    admin(ws, f"audiences/{fid}", {"operation_status": 200})
    assert sync(cfg).ok
    assert sorted(slack(receiver)) == [("integrity_flag", "resolved"), ("run_failed", "resolved")]
    assert plain(receiver) == [("integrity_flag", "resolved")]
    assert sync(cfg).ok
    assert slack(receiver) == [] and plain(receiver) == []

    # The guard refuses an export that lost most of the audience; the next good export ends it.
    cfg = configure(ws, receiver, guard={"max_remove_share": 0.5})
    ws.write_rows(rows[:10])
    assert sync(cfg).audiences[0].status == "refused"
    assert slack(receiver) == [("guard_refused", "started")] and plain(receiver) == []
    assert sync(cfg).audiences[0].status == "refused"
    assert slack(receiver) == []
    ws.write_rows([*rows, person(400), person(401)])
    assert sync(cfg).ok
    assert slack(receiver) == [("guard_refused", "resolved")]

    with StateStore(cfg.state) as s:
        assert alert_state.active(s.con) == []
    # Never a raw value, a hash of one, or the webhook's secret path, in a body or a log line.
    text = caplog.text
    assert "HTTP Request: POST" in text and "[redacted]" in text
    assert "user1@example.com" not in text and sha("user1@example.com") not in text and "B000/secret" not in text


def test_a_failing_webhook_never_fails_the_run_and_is_told_at_the_next_check(ws, receiver, caplog):
    admin(ws, "config", {"count_floor": 0, "count_significant_digits": None, "match_shares": {"EMAIL": 0.6}})
    rows = [person(i) for i in range(300)]
    ws.write_rows(rows)
    cfg = configure(ws, receiver)
    assert sync(cfg).ok
    fid = fb_id(cfg)
    admin(ws, f"audiences/{fid}", {"flagged": True})
    ws.write_rows([*rows, person(300)])
    receiver.fail["/json"] = 1
    caplog.set_level(logging.WARNING)
    assert sync(cfg).audiences[0].status == "failed"  # failed for the flag, not for the webhook
    assert plain(receiver) == []
    lines = [r.getMessage() for r in caplog.records if "not delivered" in r.getMessage()]
    assert len(lines) == 1 and "HTTP 500" in lines[0] and receiver.url not in lines[0]
    assert sorted(slack(receiver)) == [("integrity_flag", "started"), ("run_failed", "started")]
    assert sync(cfg).audiences[0].status == "failed"
    assert plain(receiver) == [("integrity_flag", "started")]  # the missed change, once
    assert slack(receiver) == []  # the other webhook was told already


def test_stream_backlog_alerts_from_the_flusher_ages(ws, receiver):
    cfg = configure(ws, receiver)
    cfg = cfg.model_copy(update={"alerts": cfg.alerts.model_copy(update={"stream_backlog_age": 30.0})})
    now = time.time()
    due = {"club": Waiting(count=5, oldest=now - 120, max_seq=5), "vip": Waiting(count=1, oldest=now - 5, max_seq=9)}
    ages = backlog_ages(due, FlushOutcome(kept={"club": 5, "vip": 1}))
    assert 119 < ages["club"] < 130 and ages["vip"] < 30
    with StateStore(cfg.state) as s:
        alerts.backlog(cfg.alerts, s.con, ages)
        alerts.backlog(cfg.alerts, s.con, ages)
        assert slack(receiver) == [("stream_backlog", "started")]
        alerts.backlog(cfg.alerts, s.con, backlog_ages(due, FlushOutcome(done={"club": 5, "vip": 1})))
        assert slack(receiver) == [("stream_backlog", "resolved")]
        assert plain(receiver) == []  # not one of its events


def test_alert_settings_are_checked_before_any_call(ws, receiver):
    with pytest.raises(ConfigError) as e:
        configure(
            ws,
            receiver,
            alerts={
                "webhooks": [{"url": "hooks.slack.com/x", "format": "teams", "events": []}],
                "stream_backlog_age": 0,
            },
        )
    text = str(e.value)
    assert "alerts.webhooks[0].url: must be an http:// or https:// URL" in text
    assert "alerts.webhooks[0].format: must be one of slack or json" in text
    assert "alerts.webhooks[0].events: name at least one of run_failed" in text
    assert "alerts.stream_backlog_age: must be more than zero" in text
    assert ws.requests() == []


def test_a_flag_met_mid_run_on_a_write_alerts_too(ws, receiver):
    """A new audience whose name Facebook flags: no read before its first write, which gets
    100/1713230; the run fails and the flag is alerted, with the flagged audience's id."""
    ws.write_rows([person(i) for i in range(5)])
    cfg = configure(ws, receiver, audiences=[{"name": "Diabetes care buyers", "forward": ["email"]}])
    a = sync(cfg).audiences[0]
    assert a.status == "failed" and a.facebook[0].health_warning == "flagged"
    assert sorted(slack(receiver)) == [("integrity_flag", "started"), ("run_failed", "started")]
    with StateStore(cfg.state) as s:
        assert {(k, subj) for k, subj, _ in alert_state.active(s.con)} == {
            ("integrity_flag", a.facebook[0].fb_id),
            ("run_failed", "diabetes_care_buyers"),
        }
