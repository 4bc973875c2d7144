"""`st.rejects`: per run, the members whose match-key values were rejected, by primary key, key and
reason. Never the value: a data engineer fixes the source row from its key and the reason.

Only the members a run normalized are checked (new or changed ones; every member on a full
refresh), so a run lists what it found, and the rows of older runs are kept for
`rejects.retention_days`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb


@dataclass(frozen=True)
class Reject:
    run_id: str
    rejected_at: datetime
    pk: str
    key: str
    reason: str


def record(con: duckdb.DuckDBPyConnection, run_id: str, audience_key: str, relation: str) -> int:
    """Copy a plan's rejects (`relation`: pk, key, reason) under this run; how many were kept.
    A planner that gives no such relation (another engine) keeps none."""
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        con.execute(
            f"""INSERT INTO st.rejects SELECT DISTINCT ?, ?, ?::TIMESTAMP, pk, key, reason FROM {relation}""",
            [run_id, audience_key, now],
        )
    except duckdb.CatalogException:
        return 0
    return con.execute(
        "SELECT count(*) FROM st.rejects WHERE run_id = ? AND audience_key = ?", [run_id, audience_key]
    ).fetchone()[0]


def prune(con: duckdb.DuckDBPyConnection, retention_days: int, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC).replace(tzinfo=None)
    con.execute("DELETE FROM st.rejects WHERE rejected_at < ?", [now - timedelta(days=retention_days)])


def runs(con: duckdb.DuckDBPyConnection, audience_key: str) -> list[tuple[str, datetime, int]]:
    """The runs that kept rejects for an audience, newest first: (run id, when, how many)."""
    return con.execute(
        """SELECT run_id, max(rejected_at), count(*) FROM st.rejects WHERE audience_key = ?
           GROUP BY run_id ORDER BY max(rejected_at) DESC""",
        [audience_key],
    ).fetchall()


def listing(con: duckdb.DuckDBPyConnection, audience_key: str, run_id: str | None = None) -> list[Reject]:
    """The rejects of one run (the latest run that had any, when `run_id` is None)."""
    if run_id is None:
        found = runs(con, audience_key)
        if not found:
            return []
        run_id = found[0][0]
    rows = con.execute(
        """SELECT run_id, rejected_at, pk, key, reason FROM st.rejects
           WHERE audience_key = ? AND run_id = ? ORDER BY pk, key, reason""",
        [audience_key, run_id],
    ).fetchall()
    return [Reject(*r) for r in rows]
