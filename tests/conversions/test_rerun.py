"""Re-run safety: events already acknowledged are not sent again; a crash or a kill -9 mid-file, then a
re-run, leaves Facebook holding each event exactly once. Also the CLI door (dry run, JSON, exit codes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from tests.conversions.helpers import DATASET, Shop, sale
from typer.testing import CliRunner

from audiencesync.conversions import Source, send
from audiencesync.conversions.cli import app
from audiencesync.conversions.deliver import recent_runs
from audiencesync.state import StateStore


class Crash(Exception):
    pass


def order_counts(shop: Shop) -> Counter[str]:
    return Counter(e["custom_data"]["order_id"] for e in shop.accepted())


def test_a_rerun_sends_nothing_and_new_rows_only_after_that(shop: Shop) -> None:
    rows = [sale(i) for i in range(50)]
    shop.write(rows)
    first = send(shop.config(), Source(shop.events))
    assert first.sent == 50
    second = send(shop.config(), Source(shop.events))
    assert second.sent == 0 and second.requests == 0
    assert second.skipped == {"already_sent": 50}
    shop.write([*rows, *(sale(i) for i in range(50, 60))])
    third = send(shop.config(), Source(shop.events))
    assert third.sent == 10 and third.skipped == {"already_sent": 50}
    assert shop.received()["duplicates_dropped"] == 0
    assert order_counts(shop) == Counter({f"ORD-{i:06d}": 1 for i in range(60)})


def test_duplicates_within_one_file_are_sent_once(shop: Shop) -> None:
    rows = [sale(i) for i in range(30)]
    shop.write(rows + rows[:5])
    report = send(shop.config(), Source(shop.events, chunk_rows=7))
    assert report.sent == 30 and report.skipped == {"duplicate_in_input": 5}


def test_a_corrected_copy_after_a_rejected_row_is_still_sent(shop: Shop) -> None:
    broken = sale(1, currency="")
    fixed = {**broken, "currency": "USD"}
    shop.write([broken, sale(2), fixed])
    report = send(shop.config(), Source(shop.events, chunk_rows=2))
    assert report.sent == 2 and report.rejected == {"purchase_without_currency": 1}
    assert set(order_counts(shop)) == {"ORD-000001", "ORD-000002"}


def test_events_without_an_order_id_are_recognised_on_a_rerun(shop: Shop) -> None:
    rows = [sale(i, order_id="") for i in range(20)]
    shop.write(rows + rows[:3])
    first = send(shop.config(), Source(shop.events, chunk_rows=8))
    assert first.sent == 20 and first.skipped == {"duplicate_in_input": 3}
    second = send(shop.config(), Source(shop.events, chunk_rows=8))
    assert second.sent == 0 and second.skipped == {"already_sent": 23}  # a copy of a sent event is sent too
    assert len(shop.accepted()) == 20


def test_a_crash_after_some_batches_then_a_rerun_sends_the_rest_once(shop: Shop) -> None:
    shop.write([sale(i) for i in range(1000)])
    cfg = shop.config(batch_size=50)

    def crash_after_three_batches(sent: int) -> None:
        if sent >= 150:
            raise Crash

    with pytest.raises(Crash):
        send(cfg, Source(shop.events, chunk_rows=200), on_ack=crash_after_three_batches)
    partial = len(shop.accepted())
    assert 150 <= partial < 1000
    again = send(cfg, Source(shop.events, chunk_rows=200))
    assert again.status == "ok"
    assert again.skipped == {"already_sent": partial}
    assert again.sent == 1000 - partial
    view = shop.received()
    assert view["duplicates_dropped"] == 0  # acknowledged batches were recorded, so none was re-sent
    assert order_counts(shop) == Counter({f"ORD-{i:06d}": 1 for i in range(1000)})


def test_kill_9_mid_file_then_rerun_holds_each_event_exactly_once(shop: Shop) -> None:
    total = 4000
    shop.write([sale(i) for i in range(total)])
    config = shop.config_path(batch_size=40)
    shop.fault(method="POST", path=f"{DATASET}/events", count=10_000, delay_s=0.03)
    env = {**os.environ, "META_ACCESS_TOKEN": shop.server.token}
    proc = subprocess.Popen(
        [sys.executable, "-m", "audiencesync.conversions.cli", "send", str(shop.events), "--config", str(config)],
        cwd=shop.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if httpx.get(f"{shop.server.url}/_emulator/requests").json().__len__() >= 25:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the send finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    httpx.delete(f"{shop.server.url}/_emulator/faults").raise_for_status()
    before = len(shop.accepted())
    assert 0 < before < total
    again = send(shop.config(batch_size=40), Source(shop.events))
    assert again.status == "ok"
    assert again.skipped.get("already_sent", 0) <= before
    assert again.sent + again.skipped.get("already_sent", 0) == total
    counts = order_counts(shop)
    assert len(counts) == total and set(counts.values()) == {1}
    with StateStore(shop.root / "state.duckdb") as store:  # the killed run is no longer `running`
        assert [r["status"] for r in recent_runs(store)] == ["ok", "interrupted"]


# -- the CLI ---------------------------------------------------------------------------------------


def cli(shop: Shop, *args: str, **conv: Any) -> Any:
    config = shop.config_path(**conv)
    return CliRunner().invoke(app, ["send", str(shop.events), "--config", str(config), *args])


def test_cli_dry_run_reports_and_sends_nothing(shop: Shop) -> None:
    shop.write([sale(i) for i in range(5)] + [sale(9, product_action="refund")])
    result = cli(shop, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "dry-run" and report["sent"] == 5 and report["skipped"] == {"action:refund": 1}
    assert shop.accepted() == []
    real = cli(shop, "--json")
    assert real.exit_code == 0 and json.loads(real.stdout)["sent"] == 5


def test_cli_prints_a_readable_report(shop: Shop) -> None:
    shop.write([sale(i) for i in range(3)] + [sale(7, currency="")])
    result = cli(shop)
    assert result.exit_code == 0, result.output
    for text in ("events read", "sent", "Facebook events_received", "purchase_without_currency", "rejects file"):
        assert text in result.stdout


def test_cli_exit_codes_and_no_token_in_output(shop: Shop) -> None:
    shop.write([sale(i) for i in range(3)])
    bad = cli(shop, ldu="sometimes")
    assert bad.exit_code == 2 and "conversions.ldu" in bad.output
    shop.fault(method="POST", path=f"{DATASET}/events", count=1, error={"code": 190})
    failed = cli(shop, "--json")
    assert failed.exit_code == 1
    assert json.loads(failed.stdout)["status"] == "failed"
    assert shop.server.token not in failed.output
    missing = CliRunner().invoke(app, ["send", str(shop.root / "nope.csv"), "--config", str(shop.config_path())])
    assert missing.exit_code == 2 and "no such file" in " ".join(missing.output.split())
