"""Who is in each stream audience now (`st.stream_members`), and whom a flush touched (`st.stream_dirty`).

The stream flusher coalesces queued changes into the members table; the pipeline reads it as the
stream audience's source. So that a flush costs what its changes cost, not what the audience
weighs, every person a flush writes is also listed as dirty, in the same transaction: the targeted
plan (`plan/targeted.py`) plans only the dirty members (plus any the change cache marks stale),
and they leave the dirty list only after the run that planned them committed its change cache.
A crash in between leaves them dirty, so the next flush plans them again (harmless: the diff then
finds nothing to send). Hashed values only, as everywhere in the state. All SQL on these tables is here.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

MEMBERS = "st.stream_members"
DIRTY = "st.stream_dirty"
COLUMNS: tuple[str, ...] = (
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "first_initial",
    "gender",
    "birth_year",
    "birth_month",
    "birth_day",
    "city",
    "state",
    "zip",
    "country",
    "madid",
)
"""The members table's key columns, in the order of `schema.DDL` (the stream door's `KEY_COLUMNS`)."""

OLD_QUEUE = "st.stream_queue"
"""Where versions before the ingest log kept the queue; moved out at start-up."""

_LAST = ", ".join(
    f"arg_max({c}, seq) FILTER (WHERE {c} IS NOT NULL AND seq > coalesce(last_out, -1)) AS {c}" for c in COLUMNS
)
_MERGED = ", ".join(f"coalesce(f.{c}, CASE WHEN NOT f.fresh THEN m.{c} END) AS {c}" for c in COLUMNS)
_COLS = ", ".join(COLUMNS)


def source_query(audience_key: str) -> str:
    """The query the pipeline reads a stream audience's members with (hashed values only)."""
    key = audience_key.replace("'", "''")
    return f"SELECT * EXCLUDE (audience_key) FROM {MEMBERS} WHERE audience_key = '{key}'"


def take_old_queue(con: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    """The rows of a queue an older version kept in the state file, dropped from it; [] if none.
    The caller appends them to the ingest log first (the drop commits only after they are read)."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'st' AND table_name = 'stream_queue'"
    ).fetchall()[0][0]
    if not found:
        return []
    cols = ", ".join(("seq", "accepted_at", "audience_key", "pk", "member", *COLUMNS))
    return con.execute(f"SELECT {cols} FROM {OLD_QUEUE} ORDER BY seq").fetchall()


def drop_old_queue(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"DROP TABLE IF EXISTS {OLD_QUEUE}")


def apply_changes(con: duckdb.DuckDBPyConnection, changes: pa.Table) -> int:
    """Coalesce queued changes (read from the ingest log) into the members table; list them as dirty.

    Per person the last change decides membership; each key takes its last value given since
    the person's last exit, and falls back to what the members table held when they did not leave.
    Returns how many people were touched. Idempotent: the same changes give the same table.
    The old rows of the touched people are found by rowid (one narrow scan of `pk`), so a flush
    never drags every column of a large audience through a join.
    """
    con.register("flush_queue", changes)
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE flush_final AS
                WITH q AS (
                    SELECT s.*,
                        max(CASE WHEN NOT s.member THEN s.seq END) OVER (PARTITION BY s.audience_key, s.pk) AS last_out,
                        max(s.seq) OVER (PARTITION BY s.audience_key, s.pk) AS last_seq
                    FROM flush_queue s
                )
                SELECT audience_key, pk, bool_or(member AND seq = last_seq) AS member,
                       bool_or(last_out IS NOT NULL) AS fresh, {_LAST}
                FROM q GROUP BY audience_key, pk"""
        )
    finally:
        con.unregister("flush_queue")
    con.execute("BEGIN")
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE flush_old AS
                SELECT m.rowid AS rid FROM {MEMBERS} m SEMI JOIN flush_final f
                  ON m.audience_key = f.audience_key AND m.pk = f.pk"""
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE flush_rows AS
                SELECT f.audience_key, f.pk, {_MERGED}
                FROM flush_final f LEFT JOIN (
                    SELECT * FROM {MEMBERS} WHERE rowid IN (SELECT rid FROM flush_old)
                ) m ON m.audience_key = f.audience_key AND m.pk = f.pk
                WHERE f.member"""
        )
        con.execute(f"DELETE FROM {MEMBERS} WHERE rowid IN (SELECT rid FROM flush_old)")
        con.execute(
            f"INSERT INTO {MEMBERS} (audience_key, pk, {_COLS}) SELECT audience_key, pk, {_COLS} FROM flush_rows"
        )
        con.execute(
            f"""INSERT INTO {DIRTY} SELECT audience_key, pk FROM flush_final
                WHERE (audience_key, pk) NOT IN (SELECT (audience_key, pk) FROM {DIRTY})"""
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return con.execute("SELECT count(*) FROM flush_final").fetchall()[0][0]


def member_count(con: duckdb.DuckDBPyConnection, audience_key: str) -> int:
    return con.execute(f"SELECT count(*) FROM {MEMBERS} WHERE audience_key = ?", [audience_key]).fetchall()[0][0]


def stage_scope(con: duckdb.DuckDBPyConnection, audience_key: str, scope: str, rows: str) -> int:
    """The members a targeted plan must look at, into temp table `scope` (pk), and their current
    rows into `rows` (the members table's columns without `audience_key`). Returns how many.

    The scope is every dirty member and every member the change cache lists as stale (fingerprint
    0: an acknowledged removal of a row they shared, a recovered batch), whose rows on Facebook
    may differ from what the cache says. The rows of the people this connection's flush just wrote
    are taken from that flush (`apply_changes` keeps them); only the others, dirty since an earlier
    flush that did not finish or stale, are looked up in the members table, whose scan is the one
    step here that grows with the audience.
    """
    params = {"key": audience_key}
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {scope} AS
            SELECT pk FROM {DIRTY} WHERE audience_key = $key
            UNION SELECT pk FROM st.source_rows WHERE audience_key = $key AND raw_fp = 0""",
        params,
    )
    flushed = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name IN ('flush_final', 'flush_rows')"
    ).fetchall()[0][0] == 2
    if flushed:
        fresh = "SELECT pk FROM flush_final WHERE audience_key = $key"
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {rows} AS SELECT pk, {_COLS} FROM flush_rows
                WHERE audience_key = $key AND pk IN (SELECT pk FROM {scope})""",
            params,
        )
    else:
        fresh = "SELECT NULL::VARCHAR AS pk WHERE false"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {rows} AS SELECT * EXCLUDE (audience_key) FROM {MEMBERS} LIMIT 0")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE plan_scope_rest AS SELECT pk FROM {scope} EXCEPT {fresh}",
        params if flushed else None,
    )
    if con.execute("SELECT count(*) FROM plan_scope_rest").fetchall()[0][0]:
        con.execute(
            f"""INSERT INTO {rows} SELECT * EXCLUDE (audience_key) FROM {MEMBERS} WHERE rowid IN (
                    SELECT m.rowid FROM {MEMBERS} m SEMI JOIN plan_scope_rest s ON m.pk = s.pk
                    WHERE m.audience_key = $key)""",
            params,
        )
    return con.execute(f"SELECT count(*) FROM {scope}").fetchall()[0][0]


def planned(con: duckdb.DuckDBPyConnection, audience_key: str, scope: str | None) -> None:
    """A run's change cache was committed: the members it planned (`scope`; None: all) are clean."""
    if scope is None:
        con.execute(f"DELETE FROM {DIRTY} WHERE audience_key = ?", [audience_key])
        return
    con.execute(f"DELETE FROM {DIRTY} WHERE audience_key = ? AND pk IN (SELECT pk FROM {scope})", [audience_key])
