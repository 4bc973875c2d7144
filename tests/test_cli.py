"""The CLI door: the commands a user types, on a config file, against the emulator."""

from __future__ import annotations

import json

from tests.support import person
from typer.testing import CliRunner

from audiencesync.cli import app

runner = CliRunner()


def invoke(ws, *args):
    return runner.invoke(
        app, [*args, "--config", str(ws.root / "audiencesync.yml")], env={"META_ACCESS_TOKEN": ws.emu.token}
    )


def test_sync_status_list_delete(ws):
    ws.write_rows([person(i) for i in range(8)])
    ws.config([{"name": "VIP customers", "forward": ["email"], "multi_key": True}])

    dry = invoke(ws, "sync", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.output)["audiences"][0]
    assert planned["status"] == "dry-run" and planned["facebook"][0]["adds"] == 8
    assert ws.requests() == []  # a dry run calls nothing

    first = invoke(ws, "sync", "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)["audiences"][0]
    assert {f["name"] for f in report["facebook"]} == {"VIP customers", "VIP customers (email)"}

    status = invoke(ws, "status")
    assert status.exit_code == 0 and "VIP customers (email)" in status.output and "ok" in status.output

    listed = invoke(ws, "audiences", "list")
    assert listed.exit_code == 0 and "vip_customers/email" in listed.output

    ws.config([])
    gone = invoke(ws, "status")
    assert "no longer in the config" in gone.output

    deleted = invoke(ws, "audiences", "delete", "VIP customers", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert deleted.output.count("deleted") == 2
    audiences = ws.emulator_audiences()
    assert audiences and all(a["deleted"] for a in audiences)


def test_bad_config_stops_before_any_call(ws):
    ws.write_rows([person(1)])
    ws.config([{"name": "VIP customers", "forward": ["email"]}])
    path = ws.root / "audiencesync.yml"
    assert "min_size: 1" in path.read_text()
    path.write_text(path.read_text().replace("min_size: 1", "min_size: -5"))
    result = invoke(ws, "sync")
    assert result.exit_code == 2
    assert "audiences[0] (VIP customers).min_size" in result.output
    assert ws.requests() == []


def test_missing_column_is_named_and_nothing_is_sent(ws):
    ws.write_rows([person(1)])
    ws.config([{"name": "VIP customers", "forward": ["email"], "primary_key": "cust_no"}])
    result = invoke(ws, "sync", "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)["audiences"][0]
    assert report["status"] == "failed" and "primary_key" in report["error"] and "cust_no" in report["error"]
    assert ws.requests() == []


def test_status_shows_unsettled_batches_and_the_guard_refusal_exits_non_zero(ws):
    rows = [person(i) for i in range(40)]
    ws.write_rows(rows)
    ws.config([{"name": "VIP customers", "forward": ["email"]}], guard={})
    assert invoke(ws, "sync").exit_code == 0

    ws.write_rows(rows[30:])
    refused = invoke(ws, "sync")
    assert refused.exit_code != 0
    assert "remove 30 of the 40 members" in refused.output and "--force" in refused.output

    ws.fault(method="DELETE", path=r"/users$", count=100, drop="after")
    failed = invoke(ws, "sync", "--force")
    assert failed.exit_code != 0
    status = invoke(ws, "status")
    assert "30 rows sent without a recorded answer" in " ".join(status.output.split())
