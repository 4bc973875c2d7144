"""The state file: runs are pruned, a DuckDB upgrade re-fingerprints, audiences are forgotten whole."""

from datetime import datetime

from audiencesync.state import store as store_mod
from audiencesync.state.store import StateStore


def test_runs_are_pruned_per_audience(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "KEEP_RUNS", 3)
    with StateStore(tmp_path / "s.duckdb") as s:
        for i in range(6):
            s.record_run(f"r{i}", "a", datetime(2026, 1, 1), "ok", {"i": i})
        s.record_run("x", "b", datetime(2026, 1, 1), "ok", {})
        kept = s.con.execute("SELECT audience_key, count(*) FROM st.runs GROUP BY ALL ORDER BY 1").fetchall()
    assert kept == [("a", 3), ("b", 1)]


def test_changed_hash_scheme_refingerprints_rows_and_marks_the_cache_stale(tmp_path):
    path = tmp_path / "s.duckdb"
    with StateStore(path) as s:
        s.con.execute("INSERT INTO st.fb_rows VALUES ('1', 'p', 42, 'EMAIL_SHA256', ['" + "a" * 64 + "'])")
        s.con.execute("INSERT INTO st.source_rows VALUES ('k', 'p', 7)")
        s.set_meta("fp_scheme", "duckdb-hash:0.0.1")
    with StateStore(path) as s:
        fp = s.con.execute("SELECT row_fp FROM st.fb_rows").fetchone()[0]
        assert fp == s.con.execute("SELECT hash('EMAIL_SHA256', ['" + "a" * 64 + "'])").fetchone()[0]
        # Members stay listed (so leavers are still found), with a fingerprint no row has.
        assert s.con.execute("SELECT pk, raw_fp FROM st.source_rows").fetchall() == [("p", 0)]


def test_forget_audience_leaves_nothing(tmp_path):
    with StateStore(tmp_path / "s.duckdb") as s:
        s.record_facebook_audience("a", "email", "11", "A (email)", "single", False)
        s.con.execute("INSERT INTO st.fb_rows VALUES ('11', 'p', 1, 'EMAIL_SHA256', ['x'])")
        s.reset_source_cache("a", "fp")
        s.forget_audience("a")
        for table in ("fb_audiences", "fb_rows", "audience_state", "source_rows"):
            assert s.con.execute(f"SELECT count(*) FROM st.{table}").fetchone()[0] == 0
