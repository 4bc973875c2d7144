"""Interrupted runs are told apart from running and failed ones: a run whose process died is marked
`interrupted` by whoever opens the state next, and Ctrl-C records what was acknowledged, stores the run
as `interrupted`, says in one line what was sent, and exits with 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conversions.helpers import DATASET, Shop, sale
from typer.testing import CliRunner

from audiencesync.conversions import Source, send
from audiencesync.conversions import run as conversions_run
from audiencesync.conversions.cli import app
from audiencesync.conversions.deliver import STALE_RUN_ERROR, ConversionState, recent_runs
from audiencesync.conversions.run import INTERRUPTED, Interrupted
from audiencesync.state import StateStore

NEXT_RUN = "the next run skips them and sends the rest"


def runs(shop: Shop) -> list[dict[str, Any]]:
    """Oldest first."""
    with StateStore(shop.root / "state.duckdb") as store:
        return list(reversed(recent_runs(store)))


def order_counts(shop: Shop) -> Counter[str]:
    return Counter(e["custom_data"]["order_id"] for e in shop.accepted())


def leave_a_dead_run(shop: Shop, acknowledged: int, run_id: str = "dead-run") -> None:
    """What `kill -9` leaves in the state file: a `running` row, and the events it had recorded."""
    with StateStore(shop.root / "state.duckdb") as store:
        state = ConversionState(store, DATASET)
        state.start_run(run_id)
        events = [{"event_id": f"{run_id}-{i}", "event_time": int(time.time())} for i in range(acknowledged)]
        state.record(events, run_id)


def stop_at(total: int):
    def on_ack(sent: int) -> None:
        if sent >= total:
            raise KeyboardInterrupt

    return on_ack


# -- a run whose process died ----------------------------------------------------------------------


def test_the_next_run_marks_a_dead_run_interrupted_with_what_it_had_sent(shop: Shop) -> None:
    shop.write([sale(i) for i in range(5)])
    leave_a_dead_run(shop, acknowledged=3)
    report = send(shop.config(), Source(shop.events))
    assert report.status == "ok"
    dead, new = runs(shop)
    assert dead["run_id"] == "dead-run" and dead["status"] == "interrupted" and dead["finished_at"] is None
    assert dead["report"] == {"run_id": "dead-run", "status": "interrupted", "sent": 3, "error": STALE_RUN_ERROR}
    assert new["run_id"] == report.run_id and new["status"] == "ok"


def test_a_dry_run_and_the_status_reader_mark_it_too(shop: Shop) -> None:
    leave_a_dead_run(shop, acknowledged=0)
    assert [r["status"] for r in runs(shop)] == ["interrupted"]
    leave_a_dead_run(shop, acknowledged=0, run_id="another-dead-run")  # for the dry run
    shop.write([sale(1)])
    send(shop.config(), Source(shop.events), dry_run=True)
    assert [r["status"] for r in runs(shop)] == ["interrupted", "interrupted"]


def test_a_finished_run_is_never_touched(shop: Shop) -> None:
    shop.write([sale(i) for i in range(3)])
    first = send(shop.config(), Source(shop.events))
    before = runs(shop)
    send(shop.config(), Source(shop.events))
    assert runs(shop)[0] == before[0] and before[0]["run_id"] == first.run_id and before[0]["status"] == "ok"


# -- Ctrl-C ------------------------------------------------------------------------------------------


def test_ctrl_c_records_what_was_acknowledged_and_the_run_as_interrupted(shop: Shop) -> None:
    shop.write([sale(i) for i in range(1000)])
    cfg = shop.config(batch_size=50)
    with pytest.raises(Interrupted) as stop:
        send(cfg, Source(shop.events, chunk_rows=200), on_ack=stop_at(150))
    assert isinstance(stop.value, KeyboardInterrupt)
    report = stop.value.report
    assert report.status == "interrupted" and report.error == INTERRUPTED
    partial = len(shop.accepted())
    assert report.sent == partial and 150 <= partial < 1000  # batches acknowledged while stopping included
    (only,) = runs(shop)
    assert only["status"] == "interrupted" and only["report"]["sent"] == partial and only["finished_at"]
    again = send(cfg, Source(shop.events, chunk_rows=200))
    assert again.status == "ok" and again.skipped == {"already_sent": partial} and again.sent == 1000 - partial
    assert shop.received()["duplicates_dropped"] == 0
    assert order_counts(shop) == Counter({f"ORD-{i:06d}": 1 for i in range(1000)})


def press_ctrl_c_at(total: int, times: int = 1):
    def on_ack(sent: int) -> None:
        if sent >= total and not pressed:
            pressed.append(sent)
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.01)  # the handler runs in this thread between two steps

    pressed: list[int] = []
    return on_ack


needs_default_sigint = pytest.mark.skipif(
    signal.getsignal(signal.SIGINT) is not signal.default_int_handler, reason="SIGINT is handled by someone else"
)


@needs_default_sigint
def test_a_real_ctrl_c_lets_the_batches_in_flight_finish_and_records_them(shop: Shop) -> None:
    shop.write([sale(i) for i in range(1000)])
    cfg = shop.config(batch_size=50)
    with pytest.raises(Interrupted) as stop:
        send(cfg, Source(shop.events, chunk_rows=200), on_ack=press_ctrl_c_at(150))
    report = stop.value.report
    partial = len(shop.accepted())
    assert report.status == "interrupted" and report.sent == partial and 150 <= partial < 1000
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C is ordinary again
    again = send(cfg, Source(shop.events, chunk_rows=200))
    assert again.skipped == {"already_sent": partial} and shop.received()["duplicates_dropped"] == 0


@needs_default_sigint
def test_a_second_ctrl_c_stops_at_once_and_still_stores_the_run_interrupted(shop: Shop) -> None:
    shop.write([sale(i) for i in range(1000)])
    with pytest.raises(Interrupted) as stop:
        send(shop.config(batch_size=50), Source(shop.events, chunk_rows=200), on_ack=press_ctrl_c_at(150, times=2))
    assert stop.value.report.status == "interrupted"
    assert [r["status"] for r in runs(shop)] == ["interrupted"]


def test_a_failed_run_stays_failed(shop: Shop) -> None:
    shop.write([sale(i) for i in range(200)])
    shop.fault(method="POST", path=f"{DATASET}/events", count=1, error={"code": 190})
    report = send(shop.config(batch_size=50), Source(shop.events))
    assert report.status == "failed" and [r["status"] for r in runs(shop)] == ["failed"]


def test_the_cli_says_what_was_sent_in_one_line_and_exits_130(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    shop.write([sale(i) for i in range(400)])
    config = shop.config_path(batch_size=50)
    real = conversions_run.send
    monkeypatch.setattr(conversions_run, "send", lambda *a, **kw: real(*a, **kw, on_ack=stop_at(100)))
    result = CliRunner().invoke(app, ["send", str(shop.events), "--config", str(config), "--json"])
    assert result.exit_code == 130, result.output
    sent = len(shop.accepted())
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"interrupted: {sent:,} events sent and recorded; {NEXT_RUN}"]
    assert [r["status"] for r in runs(shop)] == ["interrupted"]


def test_ctrl_c_on_a_real_process_exits_130_and_the_rerun_sends_the_rest_once(shop: Shop) -> None:
    total = 4000
    shop.write([sale(i) for i in range(total)])
    config = shop.config_path(batch_size=40)
    shop.fault(method="POST", path=f"{DATASET}/events", count=10_000, delay_s=0.03)
    proc = start_send(shop, config)
    try:
        wait_for_requests(shop, proc, 25)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    httpx.delete(f"{shop.server.url}/_emulator/faults").raise_for_status()
    sent = len(shop.accepted())
    assert proc.returncode == 130, stderr
    assert 0 < sent < total
    assert f"interrupted: {sent:,} events sent and recorded; {NEXT_RUN}" in stderr.splitlines()
    assert [r["status"] for r in runs(shop)] == ["interrupted"]
    again = send(shop.config(batch_size=40), Source(shop.events))
    assert again.skipped == {"already_sent": sent} and again.sent == total - sent
    assert shop.received()["duplicates_dropped"] == 0  # every acknowledged batch had been recorded
    assert set(order_counts(shop).values()) == {1} and len(order_counts(shop)) == total


def start_send(shop: Shop, config: Path) -> subprocess.Popen[str]:
    """The CLI in its own process, with Ctrl-C's default behaviour even if this one ignores SIGINT."""
    return subprocess.Popen(
        [sys.executable, "-m", "audiencesync.conversions.cli", "send", str(shop.events), "--config", str(config)],
        cwd=shop.root,
        env={**os.environ, "META_ACCESS_TOKEN": shop.server.token, "COLUMNS": "200"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_requests(shop: Shop, proc: subprocess.Popen[str], n: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if len(httpx.get(f"{shop.server.url}/_emulator/requests").json()) >= n:
            return
        time.sleep(0.05)
    assert proc.poll() is None, "the send finished before it could be interrupted"
