"""Rejected rows (issue 12 part 5): per run, each member whose match-key value was rejected, by
primary key, key and reason (never the value), kept `rejects.retention_days`, and listed by
`audiencesync rejects AUDIENCE [--run ID] [--csv]`."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import yaml
from tests.support import person, sha
from typer.testing import CliRunner

from audiencesync.cli import app
from audiencesync.config import load_config
from audiencesync.pipeline import sync
from audiencesync.state import StateStore
from audiencesync.state import rejects as rejects_state

runner = CliRunner()
MULTI = {"name": "VIP customers", "forward": ["email", "phone"]}
BAD_EMAIL, BAD_PHONE = "not-an-email", "12"


def rows() -> list[dict[str, str]]:
    found = [person(i) for i in range(20)]
    found[3]["email"] = BAD_EMAIL
    found[7]["phone"] = BAD_PHONE
    found[9]["email"], found[9]["phone"] = BAD_EMAIL, BAD_PHONE
    return found


def invoke(ws, *args):
    return runner.invoke(
        app, [*args, "--config", str(ws.root / "audiencesync.yml")], env={"META_ACCESS_TOKEN": ws.emu.token}
    )


def with_retention(ws, days: int):
    path = ws.root / "audiencesync.yml"
    doc = yaml.safe_load(path.read_text())
    doc["rejects"] = {"retention_days": days}
    path.write_text(yaml.safe_dump(doc))
    return load_config(path, env={"META_ACCESS_TOKEN": ws.emu.token})


def test_rejected_members_are_kept_by_key_and_reason_and_listed(ws):
    ws.write_rows(rows())
    cfg = ws.config([MULTI])
    report = sync(cfg)
    a = report.audiences[0]
    assert a.status == "ok", a.error
    assert sum(a.invalid["EMAIL"].values()) == 2 and sum(a.invalid["PHONE"].values()) == 2
    assert a.rejected_rows == 4
    with StateStore(cfg.state) as s:
        kept = rejects_state.listing(s.con, "vip_customers")
    assert {(r.pk, r.key) for r in kept} == {("C00003", "EMAIL"), ("C00007", "PHONE"), ("C00009", "EMAIL"),
                                             ("C00009", "PHONE")}  # fmt: skip
    assert {r.run_id for r in kept} == {report.run_id}
    by_key = {(r.pk, r.key): r.reason for r in kept}
    assert by_key[("C00003", "EMAIL")] in a.invalid["EMAIL"]  # the same reason the counts give
    assert by_key[("C00007", "PHONE")] in a.invalid["PHONE"]

    out = invoke(ws, "rejects", "VIP customers")
    assert out.exit_code == 0, out.output
    assert "C00003" in out.output and "C00009" in out.output and by_key[("C00003", "EMAIL")] in out.output
    table = list(csv.reader(io.StringIO(invoke(ws, "rejects", "vip_customers", "--csv").output)))
    assert table[0] == ["run_id", "rejected_at", "primary_key", "key", "reason"]
    assert sorted((r[2], r[3], r[4]) for r in table[1:]) == sorted((r.pk, r.key, r.reason) for r in kept)
    every = invoke(ws, "rejects", "vip_customers", "--csv").output + out.output
    assert BAD_EMAIL not in every and BAD_PHONE + "\n" not in every and sha(BAD_EMAIL) not in every
    assert "user3@example.com" not in every

    # A second run normalizes only what changed: its own rejects, the first run's still there.
    fixed = rows()
    fixed[3]["email"] = "user3@example.com"
    fixed[11]["email"] = "also bad"
    ws.write_rows(fixed)
    second = sync(cfg)
    assert second.audiences[0].rejected_rows == 1
    latest = list(csv.reader(io.StringIO(invoke(ws, "rejects", "vip_customers", "--csv").output)))[1:]
    assert [(r[0], r[2], r[3]) for r in latest] == [(second.run_id, "C00011", "EMAIL")]
    first = invoke(ws, "rejects", "vip_customers", "--run", report.run_id, "--csv").output
    assert len(list(csv.reader(io.StringIO(first)))) == 5
    missing = invoke(ws, "rejects", "vip_customers", "--run", "nope")
    assert missing.exit_code == 1 and "no rejected rows kept for run 'nope'" in missing.output


def test_rejects_older_than_the_retention_are_pruned_at_each_run(ws):
    ws.write_rows(rows())
    cfg = ws.config([MULTI])
    first = sync(cfg)
    with StateStore(cfg.state) as s:
        assert [r[0] for r in rejects_state.runs(s.con, "vip_customers")] == [first.run_id]
        rejects_state.prune(s.con, 14, now=datetime.now(UTC).replace(tzinfo=None) + timedelta(days=13))
        assert len(rejects_state.listing(s.con, "vip_customers")) == 4  # 13 days on: kept
    cfg = with_retention(ws, 0)
    fixed = rows()
    fixed[12]["phone"] = "0"
    ws.write_rows(fixed)
    second = sync(cfg)
    with StateStore(cfg.state) as s:
        assert [r[0] for r in rejects_state.runs(s.con, "vip_customers")] == [second.run_id]


def test_a_dry_run_keeps_no_rejects(ws):
    ws.write_rows(rows())
    cfg = ws.config([MULTI])
    assert sync(cfg, dry_run=True).audiences[0].invalid
    with StateStore(cfg.state) as s:
        assert rejects_state.runs(s.con, "vip_customers") == []
    out = invoke(ws, "rejects", "vip_customers")
    assert out.exit_code == 0 and "no rejected rows kept" in out.output
