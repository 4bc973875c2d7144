"""The mirror patched, not rewritten: each run's changes as a small delta, compacted past a share,
and the DuckDB ledger always the truth (a mirror that is not the ledger's is rebuilt from it)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from audiencesync.settings.spark import SparkSettings
from audiencesync.state import StateStore, spark_mirror

FB = "111"


def seed(store: StateStore, members: int) -> None:
    """A ledger as a previous run leaves it: each member one cache row and two rows on Facebook."""
    store.record_facebook_audience("vip", "email", FB, "VIP (email)", "single", False)
    store.record_facebook_audience("other", "email", "222", "Other (email)", "single", False)
    store.con.execute("INSERT INTO st.source_rows SELECT 'vip', 'C' || i, hash(i) FROM range(?) t(i)", [members])
    store.con.execute(
        f"""INSERT INTO st.fb_rows SELECT '{FB}', 'C' || i, hash(i, k), 'EMAIL_SHA256', ['h' || i]
            FROM range(?) t(i), range(2) s(k)""",
        [members],
    )
    store.con.execute("INSERT INTO st.fb_rows VALUES ('222', 'C1', 1, 'EMAIL_SHA256', ['x'])")


def run(store: StateStore, edited: range, gone: range, new: range, *, note: bool = True) -> None:
    """What a run's commits do to the ledger for the members it touched; `touched` lists them. With
    `note`, the planner's note of those members' sums is taken first, as a Spark plan does."""
    c = store.con
    touched = [f"C{i}" for i in (*edited, *gone, *new)]
    c.execute("CREATE OR REPLACE TEMP TABLE touched (pk VARCHAR)")
    c.executemany("INSERT INTO touched VALUES (?)", [[p] for p in touched])
    if note:
        spark_mirror.note_before(c, "vip", "touched")
    c.execute("DELETE FROM st.source_rows WHERE audience_key = 'vip' AND pk IN (SELECT pk FROM touched)")
    c.execute(f"DELETE FROM st.fb_rows WHERE fb_id = '{FB}' AND pk IN (SELECT pk FROM touched)")
    for i in (*edited, *new):
        c.execute("INSERT INTO st.source_rows VALUES ('vip', ?, hash(?, 'v2'))", [f"C{i}", i])
        c.execute(f"INSERT INTO st.fb_rows VALUES ('{FB}', ?, hash(?, 'v2'), 'EMAIL_SHA256', ['n'])", [f"C{i}", i])


def mirrored(con: duckdb.DuckDBPyConnection, m: spark_mirror.Mirror, table: str) -> list[tuple]:
    return con.execute(f"SELECT * FROM ({spark_mirror.current_sql(m, table)}) ORDER BY ALL").fetchall()


def ledger(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    sql = {
        "source_rows": f"SELECT pk, {spark_mirror.signed('raw_fp')} FROM st.source_rows WHERE audience_key = 'vip'",
        "fb_rows": f"SELECT fb_id, pk, {spark_mirror.signed('row_fp')} FROM st.fb_rows WHERE fb_id = '{FB}'",
    }[table]
    return con.execute(f"{sql} ORDER BY ALL").fetchall()


def same_as_ledger(con: duckdb.DuckDBPyConnection, m: spark_mirror.Mirror) -> bool:
    return all(mirrored(con, m, t) == ledger(con, t) for t in spark_mirror.TABLES)


def base_files(m: spark_mirror.Mirror) -> dict[str, tuple[int, int]]:
    """Each base file's inode and modification time: a rewrite changes them."""
    out = {}
    for t in spark_mirror.TABLES:
        for f in Path(m.base(t)).glob("*.parquet"):
            st = f.stat()
            out[str(f)] = (st.st_ino, st.st_mtime_ns)
    return out


@pytest.mark.parametrize("note", [True, False], ids=["by arithmetic", "read back"])
def test_each_run_adds_a_small_delta_and_the_base_is_not_rewritten(tmp_path, note):
    root = tmp_path / "mirror"
    with StateStore(tmp_path / "state.duckdb") as store:
        seed(store, 2_000)
        first = spark_mirror.ensure(store.con, "vip", root)
        assert first.rebuilt and not first.deltas and same_as_ledger(store.con, first)
        before = base_files(first)
        for n, (edited, gone, new) in enumerate(
            [(range(0, 10), range(10, 15), range(5000, 5005)), (range(3, 8), range(100, 101), range(10, 12))], 1
        ):
            run(store, edited, gone, new, note=note)
            assert not spark_mirror.refresh(store.con, "vip", root, touched="touched")  # a delta, not a rebuild
            m = spark_mirror.ensure(store.con, "vip", root)
            assert not m.rebuilt and m.seq == n and len(m.deltas) == n
            assert same_as_ledger(store.con, m)  # the ledger is the truth, and the mirror says the same
            assert base_files(m) == before
        delta = Path(m.deltas[-1])
        rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{delta}/fb_rows.parquet')").fetchall()[0][0]
        assert rows == 5 + 2  # only the touched members' rows now: 5 edited, C100 gone, C10 and C11 back


def test_past_the_share_the_deltas_are_compacted_into_a_new_base(tmp_path):
    root = tmp_path / "mirror"
    with StateStore(tmp_path / "state.duckdb") as store:
        seed(store, 1_000)
        spark_mirror.ensure(store.con, "vip", root)
        settings = SparkSettings(mirror_compact_share=0.02)  # 3,000 mirrored rows: compact past 60 delta rows
        run(store, range(0, 10), range(0), range(0))  # 20 delta rows (10 cached, 10 held)
        assert not spark_mirror.refresh(store.con, "vip", root, touched="touched", settings=settings)
        run(store, range(20, 40), range(0), range(0))  # 60 in deltas: not past the share yet
        assert not spark_mirror.refresh(store.con, "vip", root, touched="touched", settings=settings)
        run(store, range(40, 45), range(0), range(0))  # 70
        assert spark_mirror.refresh(store.con, "vip", root, touched="touched", settings=settings)
        m = spark_mirror.ensure(store.con, "vip", root)
        assert not m.rebuilt and not m.deltas and m.seq == 0
        assert not (spark_mirror.directory(root, "vip") / "deltas").exists()
        assert same_as_ledger(store.con, m)


@pytest.mark.parametrize("note", [True, False], ids=["by arithmetic", "read back"])
def test_a_delta_that_does_not_make_the_ledgers_rows_is_never_kept(tmp_path, note):
    """A run that moved rows of members it did not list (or an embedded-engine run between): the
    delta's check against the ledger fails and the mirror is rebuilt from the ledger."""
    root = tmp_path / "mirror"
    with StateStore(tmp_path / "state.duckdb") as store:
        seed(store, 500)
        spark_mirror.ensure(store.con, "vip", root)
        run(store, range(0, 5), range(0), range(0), note=note)
        assert not spark_mirror.refresh(store.con, "vip", root, touched="touched")  # a good delta is kept
        run(store, range(5, 10), range(0), range(0), note=note)
        store.con.execute("DELETE FROM st.fb_rows WHERE pk = 'C400'")  # not in touched
        assert spark_mirror.refresh(store.con, "vip", root, touched="touched")
        assert same_as_ledger(store.con, spark_mirror.ensure(store.con, "vip", root))


@pytest.mark.parametrize("how", ["files lost", "ledger moved", "delta lost", "manifest gone"])
def test_a_lost_or_stale_mirror_is_rebuilt_from_the_ledger(tmp_path, how):
    root = tmp_path / "mirror"
    where = spark_mirror.directory(root, "vip")
    with StateStore(tmp_path / "state.duckdb") as store:
        seed(store, 300)
        spark_mirror.ensure(store.con, "vip", root)
        run(store, range(0, 5), range(5, 6), range(0))
        assert not spark_mirror.refresh(store.con, "vip", root, touched="touched")
        if how == "files lost":
            (where / "base" / "fb_rows").rename(where / "elsewhere")
        elif how == "ledger moved":  # without the mirror: a crash before the refresh, an embedded run
            run(store, range(50, 60), range(0), range(0))
        elif how == "delta lost":
            (where / "deltas" / "seq=00000001" / "fb_rows.parquet").unlink()
        else:  # a crash in the middle of a rebuild
            (where / spark_mirror.MANIFEST).unlink()
        m = spark_mirror.ensure(store.con, "vip", root)
        assert m.rebuilt and not m.deltas
        assert same_as_ledger(store.con, m)


def test_a_delta_past_the_manifests_sequence_is_never_read(tmp_path):
    root = tmp_path / "mirror"
    where = spark_mirror.directory(root, "vip")
    with StateStore(tmp_path / "state.duckdb") as store:
        seed(store, 300)
        spark_mirror.ensure(store.con, "vip", root)
        run(store, range(0, 5), range(0), range(0))
        spark_mirror.refresh(store.con, "vip", root, touched="touched")
        stray = where / "deltas" / "seq=00000009"
        stray.mkdir()
        (stray / "touched.parquet").write_bytes(b"not parquet")
        m = spark_mirror.ensure(store.con, "vip", root)
        assert not m.rebuilt and len(m.deltas) == 1 and not stray.exists()
        assert same_as_ledger(store.con, m)
