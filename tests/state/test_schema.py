"""The state file upgrades in place from older versions and refuses a newer one."""

from __future__ import annotations

import duckdb
import pytest

from audiencesync.state.schema import SCHEMA_VERSION, SchemaError
from audiencesync.state.store import StateStore

ADDED_IN_3 = ("stream_members", "stream_dirty", "rejects", "alert_conditions", "alert_deliveries")
COLUMNS_ADDED_IN_3 = ("usage_restriction", "sac_eligible")


def _downgrade(path: str, version: str) -> None:
    """What a version-2 file looks like: the tables version 3 added are missing."""
    con = duckdb.connect(path)
    for table in ADDED_IN_3:
        con.execute(f"DROP TABLE {table}")
    for column in COLUMNS_ADDED_IN_3:
        con.execute(f"ALTER TABLE audience_health DROP COLUMN {column}")
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [version])
    con.close()


def _tables(path: str) -> set[str]:
    con = duckdb.connect(path, read_only=True)
    try:
        return {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    finally:
        con.close()


def test_a_version_2_file_gains_the_new_tables_and_keeps_its_rows(tmp_path):
    path = str(tmp_path / "state.duckdb")
    store = StateStore(path)
    store.con.execute("INSERT INTO st.source_rows VALUES ('vip', 'pk1', 42)")
    store.close()
    _downgrade(path, "2")
    assert not set(ADDED_IN_3) & _tables(path)

    store = StateStore(path)
    try:
        assert store.con.execute("SELECT value FROM st.meta WHERE key = 'schema_version'").fetchall() == [
            (SCHEMA_VERSION,)
        ]
        assert store.con.execute("SELECT pk, raw_fp FROM st.source_rows").fetchall() == [("pk1", 42)]
        columns = {r[0] for r in store.con.execute("DESCRIBE st.audience_health").fetchall()}
        assert set(COLUMNS_ADDED_IN_3) <= columns
    finally:
        store.close()
    assert set(ADDED_IN_3) <= _tables(path)


def test_a_file_from_a_newer_version_is_refused_not_guessed(tmp_path):
    path = str(tmp_path / "state.duckdb")
    StateStore(path).close()
    con = duckdb.connect(path)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(SchemaError, match="schema 99"):
        StateStore(path)
