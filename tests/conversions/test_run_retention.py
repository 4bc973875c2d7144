"""Conversion runs are kept per dataset up to `KEEP_RUNS`; acknowledged events stay whatever happens."""

from __future__ import annotations

import pytest

from audiencesync.conversions.deliver import ConversionState
from audiencesync.state.store import StateStore


def test_only_the_last_runs_of_a_dataset_are_kept(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("audiencesync.conversions.deliver.KEEP_RUNS", 3)
    store = StateStore(tmp_path / "state.duckdb")
    try:
        mine, other = ConversionState(store, "ds1"), ConversionState(store, "ds2")
        other.start_run("o1")
        other.finish_run("o1", "ok", {})
        for i in range(5):
            mine.start_run(f"r{i}")
            mine.finish_run(f"r{i}", "ok", {"sent": i})
        mine.start_run("running")
        rows = store.con.execute("SELECT run_id FROM st.conversion_runs ORDER BY run_id").fetchall()
    finally:
        store.close()
    assert [r[0] for r in rows] == ["o1", "r2", "r3", "r4", "running"]
