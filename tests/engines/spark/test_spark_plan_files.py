"""The Spark plan's batches: written as Parquet partitioned by Facebook audience and operation,
streamed batch by batch into the same uploader, removed once acknowledged; a crashed run's files are
replaced, never uploaded (the ledger decides what is re-sent)."""

from __future__ import annotations

import logging
from typing import Any

import pyarrow.parquet as pq
import pytest
from tests.support import person

from audiencesync.pipeline import sync
from audiencesync.plan import planner
from audiencesync.state import spark_mirror

from .test_spark_sync import Killed, emails, fb_ids, spark_config, want, write_source

pytestmark = pytest.mark.spark


def posted_rows(ws: Any, since: int = 0) -> int:
    return sum(r["rows"] or 0 for r in ws.requests()[since:] if r["method"] == "POST" and r["path"].endswith("/users"))


def test_batches_are_parquet_per_audience_and_operation_and_a_crashed_runs_files_are_replaced(
    ws, spark, monkeypatch, caplog
):
    monkeypatch.setattr(planner, "BATCH_ROWS", 10)
    src = ws.root / "members.parquet"
    rows = [person(i) for i in range(200)]
    write_source(src, rows)
    cfg = spark_config(ws, src, {"name": "VIP", "forward": ["email"]})
    cfg = cfg.model_copy(update={"meta": cfg.meta.model_copy(update={"max_in_flight": 1})})
    plan_dir = spark_mirror.plan_directory(spark_mirror.root(cfg.state, cfg.spark), "vip")
    seen: list[dict[str, Any]] = []

    def look() -> None:  # after each acknowledged batch, while the upload runs
        files = sorted(str(p.relative_to(plan_dir)) for p in plan_dir.glob("fb_audience=*/op=*/*.parquet"))
        desired = bool(list(plan_dir.glob("desired/kind=email/*.parquet")))  # written by the executors
        batches = pq.read_table(next(plan_dir.glob("fb_audience=*/op=add/batches.parquet")))
        batch_ids = sorted(set(batches["batch"].to_pylist()))
        seen.append({"files": files, "desired": desired, "batches": batch_ids, "rows": batches.num_rows})

    def look_then_die() -> None:
        look()
        if len(seen) == 3:
            raise Killed()

    with pytest.raises(Killed):
        sync(cfg, after_batch=look_then_die)  # a kill between acknowledged batches of the first sync
    assert seen[0]["files"] == [
        "fb_audience=email/op=add/batches.parquet",  # a first sync: the audience had no id when planned
        "fb_audience=email/op=add/entries.parquet",
        "fb_audience=email/op=remove/batches.parquet",
    ]
    assert seen[0]["rows"] == 200 and len(seen[0]["batches"]) == 20 and seen[0]["desired"]
    assert plan_dir.is_dir()  # the crash left its plan behind
    sent_before_the_crash = posted_rows(ws)
    assert 30 <= sent_before_the_crash < 200

    before = len(ws.requests())
    with caplog.at_level(logging.WARNING):
        report = sync(cfg).audiences[0]
    assert report.status == "ok", report.error
    assert "did not finish" in caplog.text
    assert posted_rows(ws, before) == 200 - sent_before_the_crash  # the old plan's files were not uploaded again
    assert emails(ws, fb_ids(cfg)["email"]) == want(rows)
    assert not plan_dir.exists()  # every batch acknowledged: the plan's files are gone

    write_source(src, rows[5:])
    assert sync(cfg, after_batch=look).ok
    fb = fb_ids(cfg)["email"]
    assert f"fb_audience={fb}/op=remove/batches.parquet" in seen[-1]["files"]
    assert not plan_dir.exists() and emails(ws, fb) == want(rows[5:])
