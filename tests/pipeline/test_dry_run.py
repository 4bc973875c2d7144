"""`sync --dry-run` (issue 12 part 5) reports the plan as Census's dry run does, per Facebook
audience: members before and after, adds, removes and invalid, without sending; and the numbers
match what the real run then does."""

from __future__ import annotations

import json

from tests.support import person
from typer.testing import CliRunner

from audiencesync.cli import app
from audiencesync.pipeline import sync

runner = CliRunner()
MULTI = {"name": "VIP customers", "forward": ["email", "phone"]}


def writes(ws, before: int) -> list[dict]:
    return [r for r in ws.requests()[before:] if r["method"] in ("POST", "DELETE")]


def test_dry_run_reports_before_after_adds_removes_invalid_and_sends_nothing(ws):
    rows = [person(i) for i in range(30)]
    ws.write_rows(rows)
    cfg = ws.config([MULTI])

    first = sync(cfg, dry_run=True)
    lines = {line.facebook_audience: line for line in first.dry_run()}
    assert set(lines) == {"VIP customers (email)", "VIP customers (phone)"}
    assert all(line.fb_id is None and line.members_before == 0 and line.status == "dry-run" for line in lines.values())
    assert lines["VIP customers (email)"].adds == lines["VIP customers (email)"].members_after == 30
    assert writes(ws, 0) == []
    assert sync(cfg).ok

    changed = rows[3:] + [person(100 + i) for i in range(5)]
    changed[0]["email"] = "broken"  # person 3: no valid email any more, phone still fine
    ws.write_rows(changed)
    before = len(ws.requests())
    dry = sync(cfg, dry_run=True)
    assert writes(ws, before) == []
    a = dry.audiences[0]
    assert a.status == "dry-run" and dry.ok
    lines = {line.facebook_audience: line for line in dry.dry_run()}
    email, phone = lines["VIP customers (email)"], lines["VIP customers (phone)"]
    assert (email.members_before, email.adds, email.removes, email.invalid) == (30, 5, 4, 1)
    assert email.members_after == 31
    assert (phone.members_before, phone.adds, phone.removes, phone.invalid) == (30, 5, 3, 0)
    assert phone.members_after == 32
    assert email.invalid_values == 1 and email.fb_id

    real = sync(cfg).audiences[0]
    assert real.status == "ok", real.error
    done = {f.name: f for f in real.facebook}
    for name, line in lines.items():
        f = done[name]
        assert (f.adds, f.removes, f.members) == (line.adds, line.removes, line.members_after)


def test_the_cli_prints_the_plan_per_facebook_audience(ws):
    ws.write_rows([person(i) for i in range(10)])
    cfg = ws.config([MULTI])
    assert sync(cfg).ok
    ws.write_rows([person(i) for i in range(12)])
    args = ["sync", "--dry-run", "--config", str(ws.root / "audiencesync.yml")]
    out = runner.invoke(app, args, env={"META_ACCESS_TOKEN": ws.emu.token})
    assert out.exit_code == 0, out.output
    assert "members before" in out.output and "members after" in out.output and "nothing was sent" in out.output
    doc = json.loads(runner.invoke(app, [*args, "--json"], env={"META_ACCESS_TOKEN": ws.emu.token}).output)
    email = doc["audiences"][0]["facebook"][0]
    assert (email["members_before"], email["adds"], email["removes"], email["members"]) == (10, 2, 0, 12)


def test_a_refused_dry_run_still_shows_the_plan(ws):
    ws.write_rows([person(i) for i in range(20)])
    cfg = ws.config([MULTI], guard={"max_remove_share": 0.5})
    assert sync(cfg).ok
    ws.write_rows([person(i) for i in range(5)])
    dry = sync(cfg, dry_run=True)
    assert dry.audiences[0].status == "refused"
    line = dry.dry_run()[0]
    assert (line.members_before, line.removes, line.members_after) == (20, 15, 5)
