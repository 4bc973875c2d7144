"""The Spark door end to end: Spark plans, the same uploader sends to the emulator over HTTP, the
same ledger records; what Facebook holds is read back from the emulator, never from our state."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.support import person, sha

from audiencesync.pipeline import sync
from audiencesync.plan import planner
from audiencesync.state import StateStore, spark_mirror

pytestmark = pytest.mark.spark

MULTI_AND_EMAIL = {"name": "VIP", "forward": ["email"], "multi_key": True, "external_id": "customer_id"}


def write_source(path: Path, rows: list[dict[str, Any]]) -> None:
    """The lake table both engines read: one Parquet file, every column text."""
    fields = sorted({k for r in rows for k in r})
    pq.write_table(pa.table({f: pa.array([r.get(f) for r in rows], pa.string()) for f in fields}), path)


def spark_config(ws: Any, source: Path, *audiences: dict[str, Any], sources: dict[str, Any] | None = None) -> Any:
    spark_source = {"source": "lake", "query": f"SELECT * FROM parquet.`{source}`"}
    return ws.config(
        [{**spark_source, **a} for a in audiences],
        sources={"lake": {"engine": "spark"}, **(sources or {})},
    )


def fb_ids(cfg: Any, key: str = "vip") -> dict[str, str]:
    with StateStore(cfg.state) as s:
        return {fb.kind: fb.fb_id for fb in s.facebook_audiences(key)}


def emails(ws: Any, fb_id: str) -> set[str]:
    return {m["EMAIL"] for m in ws.members(fb_id)}


def want(rows: list[dict[str, Any]]) -> set[str]:
    return {sha(r["email"]) for r in rows}


class Killed(Exception):
    pass


def test_first_sync_then_join_leave_change_converge(ws, spark):
    src = ws.root / "members.parquet"
    rows = [person(i) for i in range(150)]
    write_source(src, rows)
    cfg = spark_config(ws, src, MULTI_AND_EMAIL)
    first = sync(cfg).audiences[0]
    assert first.status == "ok", first.error
    assert first.members == first.changed == 150
    ids = fb_ids(cfg)
    assert emails(ws, ids["email"]) == want(rows)
    assert len(ws.members(ids["multi"])) == 150

    changed = [*rows[20:140], person(3, email="new3@example.com"), person(900), person(901)]  # leave, change, join
    changed = [r for r in changed if r["customer_id"] != "C00050"] + [person(50, email="moved50@example.com")]
    write_source(src, changed)
    second = sync(cfg).audiences[0]
    assert second.status == "ok", second.error
    assert second.changed == 4 and second.removed_from_source == 30 - 1  # C00003 came back changed
    assert emails(ws, ids["email"]) == want(changed)
    multi = ws.members(ids["multi"])
    assert {m["EMAIL"] for m in multi} == want(changed) and len(multi) == len(changed)

    before = len(ws.requests())
    again = sync(cfg).audiences[0]
    assert again.status == "ok" and again.changed == 0
    assert all(fr.adds == fr.removes == 0 for fr in again.facebook)
    assert not [r for r in ws.requests()[before:] if r["path"].endswith("/users")]  # nothing sent


def test_spark_and_embedded_paths_send_the_same_rows(ws, spark):
    """The same source planned by both engines: identical payloads and row fingerprints in the
    ledger, identical members on Facebook, also after a change."""
    src = ws.root / "members.parquet"
    rows = [person(i) for i in range(120)] + [person(500, email="not an email", phone="12")]
    write_source(src, rows)
    embedded = {"source": "local", "query": f"SELECT * FROM read_parquet('{src}')"}
    both = [
        {**MULTI_AND_EMAIL, "name": "Lake", "match_on_attributes": True, "forward": ["email", "phone"]},
        {**MULTI_AND_EMAIL, "name": "Local", "match_on_attributes": True, "forward": ["email", "phone"], **embedded},
    ]
    cfg = spark_config(ws, src, *both, sources={"local": {"type": "duckdb"}})
    for step in (rows, [*rows[10:], person(600)]):
        write_source(src, step)
        report = sync(cfg)
        assert report.ok, [a.error for a in report.audiences]
        lake, local = report.audiences
        assert (lake.members, lake.changed, lake.invalid, lake.keys_found) == (
            local.members,
            local.changed,
            local.invalid,
            local.keys_found,
        )
        assert [(f.adds, f.removes) for f in lake.facebook] == [(f.adds, f.removes) for f in local.facebook]
        a, b = fb_ids(cfg, "lake"), fb_ids(cfg, "local")
        for kind in ("email", "phone", "multi"):
            on_a = sorted(map(sorted_items, ws.members(a[kind])))
            assert on_a and on_a == sorted(map(sorted_items, ws.members(b[kind])))
        with duckdb.connect(cfg.state, read_only=True) as con:
            held = """SELECT f.kind, r.pk, r.row_fp, r.schema, r.payload FROM fb_rows r
                      JOIN fb_audiences f USING (fb_id) WHERE f.audience_key = ? ORDER BY ALL"""
            assert con.execute(held, ["lake"]).fetchall() == con.execute(held, ["local"]).fetchall()


def sorted_items(member: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(member.items()))


def test_kill_between_batches_and_a_failing_sibling_converge(ws, spark, monkeypatch):
    monkeypatch.setattr(planner, "BATCH_ROWS", 10)
    src = ws.root / "members.parquet"
    rows = [person(i) for i in range(80)]
    write_source(src, rows)
    cfg = spark_config(ws, src, MULTI_AND_EMAIL)
    cfg = cfg.model_copy(update={"meta": cfg.meta.model_copy(update={"max_in_flight": 1})})
    seen = {"n": 0}

    def die_mid_multi() -> None:
        seen["n"] += 1
        if seen["n"] == 10:  # the email audience's 8 batches, then 2 of the multi-key one's
            raise Killed()

    with pytest.raises(Killed):
        sync(cfg, after_batch=die_mid_multi)  # a kill between acknowledged batches of the first sync
    ids = fb_ids(cfg)
    rows = [*rows[25:], person(700)]
    write_source(src, rows)
    ws.fault(method="DELETE", path=rf"/{ids['multi']}/users$", count=100, error={"code": 200})
    failed = sync(cfg).audiences[0]
    assert failed.status == "failed" and "Permission" in (failed.error or "")
    assert emails(ws, ids["email"]) == want(rows)  # the sibling's changes went through
    httpx.delete(f"{ws.emu.url}/_emulator/faults").raise_for_status()
    rows = [*rows, person(3)]  # and one who left comes back unchanged
    write_source(src, rows)
    final = sync(cfg).audiences[0]
    assert final.status == "ok", final.error
    assert emails(ws, ids["email"]) == want(rows)
    assert {m["EMAIL"] for m in ws.members(ids["multi"])} == want(rows)
    assert len(ws.members(ids["multi"])) == len(rows)


def test_a_lost_or_stale_mirror_is_rebuilt_from_the_ledger(ws, spark):
    src = ws.root / "members.parquet"
    rows = [person(i) for i in range(60)]
    write_source(src, rows)
    cfg = spark_config(ws, src, {"name": "VIP", "forward": ["email"]})
    assert sync(cfg).ok
    root = spark_mirror.root(cfg.state, cfg.spark)
    with StateStore(cfg.state) as s:
        assert not spark_mirror.ensure(s.con, "vip", root).rebuilt  # refreshed after the commit
    shutil.rmtree(root)
    write_source(src, rows[:50])
    report = sync(cfg).audiences[0]
    assert report.status == "ok" and report.facebook[0].removes == 10
    assert emails(ws, fb_ids(cfg)["email"]) == want(rows[:50])
    with StateStore(cfg.state) as s:
        s.con.execute("DELETE FROM st.source_rows WHERE audience_key = 'vip' AND pk = 'C00001'")
        assert spark_mirror.ensure(s.con, "vip", root).rebuilt  # the ledger moved: the mirror follows


def test_bad_spark_sql_is_a_clear_failure_before_any_call(ws, spark):
    cfg = ws.config(
        [{"name": "VIP", "forward": ["email"], "source": "lake", "query": "SELECT * FROM no_such_table"}],
        sources={"lake": {"engine": "spark"}},
    )
    report = sync(cfg).audiences[0]
    assert report.status == "failed" and "Spark query failed" in (report.error or "")
    assert not ws.requests()
