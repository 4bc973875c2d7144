"""The Parquet mirror the Spark engine reads: a copy of the ledger's rows, rebuilt whenever they differ."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from audiencesync.settings.spark import SparkSettings
from audiencesync.state import StateStore, spark_mirror


@pytest.mark.parametrize("fp", [0, 1, 2**63 - 1, 2**63, 2**64 - 1, 12345678901234567890])
def test_fingerprints_keep_their_64_bits_through_spark_longs(fp):
    con = duckdb.connect()
    signed = con.execute(f"SELECT {spark_mirror.signed('x')} FROM (SELECT ?::UBIGINT AS x)", [fp]).fetchall()[0][0]
    assert -(2**63) <= signed < 2**63 and signed % 2**64 == fp
    back = con.execute(f"SELECT {spark_mirror.unsigned('x')} FROM (SELECT ?::BIGINT AS x)", [signed]).fetchall()[0][0]
    assert back == fp


def ledger(store: StateStore) -> None:
    store.record_facebook_audience("vip", "email", "111", "VIP (email)", "single", False)
    store.record_facebook_audience("other", "email", "222", "Other (email)", "single", False)
    store.con.execute(
        """INSERT INTO st.fb_rows VALUES ('111', 'C1', 9223372036854775813, 'EMAIL_SHA256', ['a']),
                                        ('111', 'C2', 7, 'EMAIL_SHA256', ['b']),
                                        ('222', 'C9', 9, 'EMAIL_SHA256', ['z'])"""
    )
    store.con.execute("INSERT INTO st.source_rows VALUES ('vip', 'C1', 18446744073709551615), ('vip', 'C2', 0)")


def read(store: StateStore, directory: str, what: str) -> list[tuple]:
    return store.con.execute(f"SELECT {what} FROM read_parquet('{directory}/*.parquet') ORDER BY ALL").fetchall()


def test_the_mirror_holds_one_audiences_rows_and_is_rebuilt_when_the_ledger_moves(tmp_path):
    state = tmp_path / "state.duckdb"
    root = spark_mirror.root(str(state), None)
    with StateStore(state) as store:
        ledger(store)
        first = spark_mirror.ensure(store.con, "vip", root)
        assert first.rebuilt
        held = read(store, first.base("fb_rows"), "*")
        assert held == [("111", "C1", -(2**63) + 5), ("111", "C2", 7)]  # no payloads, no other audience
        cache = read(store, first.base("source_rows"), "*")
        assert cache == [("C1", -1), ("C2", 0)]
        assert not spark_mirror.ensure(store.con, "vip", root).rebuilt
        assert not spark_mirror.refresh(store.con, "vip", root)
        store.con.execute("DELETE FROM st.fb_rows WHERE pk = 'C2'")  # an acknowledged removal
        assert spark_mirror.refresh(store.con, "vip", root)
        store.con.execute("UPDATE st.source_rows SET raw_fp = 0 WHERE pk = 'C1'")  # marked stale
        assert spark_mirror.ensure(store.con, "vip", root).rebuilt
        shutil.rmtree(root)  # lost
        assert spark_mirror.ensure(store.con, "vip", root).rebuilt
        (spark_mirror.directory(root, "vip") / spark_mirror.MANIFEST).unlink()  # a crash mid-rebuild
        again = spark_mirror.ensure(store.con, "vip", root)
        assert again.rebuilt
        assert read(store, again.base("fb_rows"), "count(*)") == [(1,)]


def test_the_mirror_lives_where_the_spark_section_says(tmp_path):
    state = str(tmp_path / "state.duckdb")
    assert spark_mirror.root(state, None) == tmp_path / "state.duckdb.spark"
    assert spark_mirror.root(state, SparkSettings(state_dir="mirror")) == tmp_path / "mirror"
    assert spark_mirror.root(state, SparkSettings(state_dir="/data/m")).as_posix() == "/data/m"
