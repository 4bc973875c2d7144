"""Issue 9's bad days, each as a user meets it: the run converges, or refuses with a sentence.

Every check of what Facebook holds reads the emulator over HTTP, never our state file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from tests.support import person, sha

from audiencesync.pipeline import sync
from audiencesync.plan import planner
from audiencesync.state import StateStore

EMAIL_AND_MULTI = {"name": "VIP", "forward": ["email"], "multi_key": True, "external_id": "customer_id"}
DEFAULT_GUARD: dict[str, object] = {}


def fb_ids(cfg, key="vip"):
    with StateStore(cfg.state) as s:
        return {fb.kind: fb.fb_id for fb in s.facebook_audiences(key)}


def emails_on_facebook(ws, fb_id):
    return {m["EMAIL"] for m in ws.members(fb_id)}


def want_emails(rows):
    return {sha(r["email"]) for r in rows}


def clear_faults(ws):
    httpx.delete(f"{ws.emu.url}/_emulator/faults").raise_for_status()


def test_partial_failure_then_members_come_back_unchanged(ws):
    rows = [person(i) for i in range(200)]
    ws.write_rows(rows)
    cfg = ws.config([EMAIL_AND_MULTI])
    assert sync(cfg).ok
    ids = fb_ids(cfg)
    ws.write_rows(rows[40:])  # a bad export drops 20%
    ws.fault(method="DELETE", path=rf"/{ids['multi']}/users$", count=100, error={"code": 200})
    failed = sync(cfg).audiences[0]
    assert failed.status == "failed" and "Permission" in (failed.error or "")
    assert emails_on_facebook(ws, ids["email"]) == want_emails(rows[40:])  # the sibling's removals went through
    clear_faults(ws)
    ws.write_rows(rows)  # the export is fixed: the same customers come back unchanged
    again = sync(cfg)
    assert again.ok, again.audiences[0].error
    assert emails_on_facebook(ws, ids["email"]) == want_emails(rows)
    assert len(ws.members(ids["multi"])) == 200


def test_lost_acknowledgement_of_a_delete_is_resolved_by_the_next_run(ws):
    """Facebook applied the removal but every answer was lost: the state cannot know. The next run
    re-sends it, then plans from facts, so members that came back in the meantime are re-added."""
    rows = [person(i) for i in range(120)]
    ws.write_rows(rows)
    cfg = ws.config([{"name": "VIP", "forward": ["email"]}])
    assert sync(cfg).ok
    ids = fb_ids(cfg)
    ws.write_rows(rows[50:])
    ws.fault(method="DELETE", path=r"/users$", count=100, drop="after")
    assert not sync(cfg).ok
    assert emails_on_facebook(ws, ids["email"]) == want_emails(rows[50:])  # applied, unacknowledged
    clear_faults(ws)
    ws.write_rows(rows)
    report = sync(cfg).audiences[0]
    assert report.status == "ok", report.error
    assert emails_on_facebook(ws, ids["email"]) == want_emails(rows)
    assert report.facebook[0].members == 120  # the state's count agrees with Facebook


def test_crash_after_an_acknowledged_delete_then_rerun(ws, monkeypatch):
    monkeypatch.setattr(planner, "BATCH_ROWS", 10)
    rows = [person(i) for i in range(100)]
    ws.write_rows(rows)
    cfg = ws.config([{"name": "VIP", "forward": ["email"]}], max_in_flight=1)
    assert sync(cfg).ok
    ids = fb_ids(cfg)
    ws.write_rows(rows[40:])

    class Killed(Exception):
        pass

    def die() -> None:
        raise Killed()

    with pytest.raises(Killed):
        sync(cfg, after_batch=die)
    ws.write_rows(rows)  # everyone is back before the next run
    assert sync(cfg).ok
    assert emails_on_facebook(ws, ids["email"]) == want_emails(rows)


@pytest.mark.parametrize("body", ["customer_id,email,phone\n", "customer_id,email\n,a@example.com\n,b@example.com\n"])
def test_an_empty_export_or_all_null_keys_are_refused(ws, body):
    rows = [person(i) for i in range(30)]
    ws.write_rows(rows)
    cfg = ws.config([{"name": "VIP", "forward": ["email"]}], guard=DEFAULT_GUARD)
    assert sync(cfg).ok
    ws.csv.write_text(body)
    a = sync(cfg).audiences[0]
    assert a.status == "refused"
    assert "no members" in a.error and "--force" in a.error and "guard.allow_empty" in a.error
    assert len(ws.members(fb_ids(cfg)["email"])) == 30
    forced = sync(cfg, force=True).audiences[0]
    assert forced.status == "ok"
    assert ws.members(fb_ids(cfg)["email"]) == []


def test_removing_more_than_half_is_refused_until_forced(ws):
    rows = [person(i) for i in range(40)]
    ws.write_rows(rows)
    cfg = ws.config([EMAIL_AND_MULTI], guard=DEFAULT_GUARD)
    assert sync(cfg).ok
    ws.write_rows(rows[:15])
    a = sync(cfg).audiences[0]
    assert a.status == "refused"
    assert "remove 25 of the 40 members" in a.error and "guard.max_remove_share (50%)" in a.error
    assert len(ws.members(fb_ids(cfg)["email"])) == 40
    assert sync(cfg, force=True).ok
    assert emails_on_facebook(ws, fb_ids(cfg)["email"]) == want_emails(rows[:15])


def test_the_share_is_a_setting(ws):
    rows = [person(i) for i in range(40)]
    ws.write_rows(rows)
    cfg = ws.config([{"name": "VIP", "forward": ["email"], "guard": {"max_remove_share": 0.8}}], guard=DEFAULT_GUARD)
    assert sync(cfg).ok
    ws.write_rows(rows[:15])
    assert sync(cfg).ok


def test_lost_state_file_then_members_leave_is_a_full_replace(ws):
    rows = [person(i) for i in range(50)]
    ws.write_rows(rows)
    cfg = ws.config([EMAIL_AND_MULTI])
    assert sync(cfg).ok
    before = fb_ids(cfg)
    os.remove(cfg.state)
    ws.write_rows(rows[10:])
    report = sync(cfg).audiences[0]
    assert report.status == "ok", report.error
    assert report.full_refresh
    assert fb_ids(cfg) == before  # adopted, no twins
    assert emails_on_facebook(ws, before["email"]) == want_emails(rows[10:])
    assert len(ws.members(before["multi"])) == 40
    replaces = [r for r in ws.requests() if r["path"].endswith("/usersreplace")]
    assert replaces


def test_interrupted_full_refresh_resumes_its_session_and_leaves_siblings_alone(ws, monkeypatch):
    monkeypatch.setattr(planner, "BATCH_ROWS", 10)
    rows = [person(i) for i in range(60)]
    ws.write_rows(rows)
    cfg = ws.config([{"name": "VIP", "forward": ["email", "phone"]}])
    assert sync(cfg).ok
    ids = fb_ids(cfg)
    ws.write_rows([*rows[5:], person(500)])
    seen = {"n": 0}

    class Killed(Exception):
        pass

    def die_after_two() -> None:
        seen["n"] += 1
        if seen["n"] == 2:
            raise Killed()

    with pytest.raises(Killed):
        sync(cfg, full_refresh=True, after_batch=die_after_two)
    ws.write_rows([*rows[7:], person(500)])  # the source moves on before the next run
    before = len(ws.requests())
    report = sync(cfg).audiences[0]
    assert report.status == "ok", report.error
    later = ws.requests()[before:]
    replaced = {r["path"].split("/")[-2] for r in later if r["path"].endswith("/usersreplace")}
    assert replaced == {ids["email"]}  # only the interrupted audience is replaced
    # Facebook refuses a second session while the first is open: resuming it is the only way through.
    assert all(r["status"] == 200 for r in later if r["path"].endswith("/usersreplace"))
    expected = want_emails([*rows[7:], person(500)])
    assert emails_on_facebook(ws, ids["email"]) == expected
    assert {m["PHONE"] for m in ws.members(ids["phone"])} == {sha(f"1415555{i:04d}") for i in [*range(7, 60), 500]}


def test_full_refresh_reports_what_facebook_received(ws, monkeypatch):
    monkeypatch.setattr(planner, "BATCH_ROWS", 10)
    ws.write_rows([person(i) for i in range(45)])
    cfg = ws.config([{"name": "VIP", "forward": ["email"]}])
    assert sync(cfg).ok
    full = sync(cfg, full_refresh=True).audiences[0]
    assert full.status == "ok"
    assert full.facebook[0].batches == 5
    assert full.facebook[0].num_received == 45


def test_ctrl_c_prints_one_line_records_the_run_and_exits_130(ws):
    rows = [person(i) for i in range(30_000)]
    ws.write_rows(rows)
    cfg = ws.config([{"name": "VIP", "forward": ["email"]}], max_in_flight=1)
    ws.fault(method="POST", path=r"/users$", count=3, delay_s=0.7)
    env = {**os.environ, "META_ACCESS_TOKEN": ws.emu.token}
    proc = subprocess.Popen(
        [sys.executable, "-m", "audiencesync.cli", "sync", "--config", str(ws.root / "audiencesync.yml")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        if any(r["path"].endswith("/users") and r["method"] == "POST" for r in ws.requests()):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, errs = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, errs)
    lines = [line for line in (out + errs).splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0].lower() and "next run" in lines[0], lines
    assert "Traceback" not in errs
    with StateStore(cfg.state) as s:
        assert [r["status"] for r in s.last_runs()] == ["interrupted"]
    clear_faults(ws)
    assert sync(cfg).ok
    assert emails_on_facebook(ws, fb_ids(cfg)["email"]) == want_emails(rows)
