"""The state store: what each Facebook audience holds, as acknowledged by Facebook.

Holds hashes, Facebook ids, 64-bit fingerprints, run history and counts; never a raw identifier
or a token. The pipeline opens an in-memory DuckDB connection and attaches this file as `st`, so
the planner can join a source query against the committed state in one engine.

Invariant the whole sync relies on: every row in `st.fb_rows` is on Facebook (it was acknowledged,
or was already there); rows are inserted only after Facebook acknowledges their batch and deleted
only after it acknowledges their removal. A crash anywhere leaves the invariant true, so a re-run
converges.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from audiencesync.state.ledger import Ledger
from audiencesync.state.schema import migrate

KEEP_RUNS = 500
"""Run reports kept per audience; the stream flusher runs every few seconds, so older ones go."""


@dataclass(frozen=True)
class FacebookAudience:
    audience_key: str
    kind: str
    fb_id: str
    name: str
    schema_kind: str
    is_value_based: bool
    replace_pending: bool


class StateStore:
    """Owns the connection; the planner and uploader borrow `con` for their SQL."""

    def __init__(self, path: str | os.PathLike[str], *, memory_limit: str = "768MB", threads: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(config={"memory_limit": memory_limit, **({"threads": threads} if threads else {})})
        self.con.execute(f"ATTACH '{_sql_str(str(self.path))}' AS st")
        # Each acknowledged batch is a small commit; checkpointing the file after every few of them
        # would rewrite it again and again. The WAL keeps every commit durable in the meantime.
        self.con.execute("SET checkpoint_threshold = '512MB'")
        migrate(self.con, str(self.path))
        self.ledger = Ledger(self.con)

    @classmethod
    def sharing(cls, other: StateStore) -> StateStore:
        """Another handle on the same state for another thread (DuckDB cursors are per thread)."""
        store = cls.__new__(cls)
        store.path = other.path
        store.con = other.con.cursor()
        store.ledger = Ledger(store.con)
        return store

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_meta(self, key: str) -> str | None:
        row = self.con.execute("SELECT value FROM st.meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO st.meta VALUES (?, ?)", [key, value])

    # -- Facebook audiences -------------------------------------------------------------------

    def facebook_audiences(self, audience_key: str | None = None) -> list[FacebookAudience]:
        sql = (
            "SELECT audience_key, kind, fb_id, name, schema_kind, is_value_based, replace_pending FROM st.fb_audiences"
        )
        rows = (
            self.con.execute(sql + " WHERE audience_key = ? ORDER BY kind", [audience_key]).fetchall()
            if audience_key
            else self.con.execute(sql + " ORDER BY audience_key, kind").fetchall()
        )
        return [FacebookAudience(*r) for r in rows]

    def facebook_audience(self, audience_key: str, kind: str) -> FacebookAudience | None:
        found = [a for a in self.facebook_audiences(audience_key) if a.kind == kind]
        return found[0] if found else None

    def record_facebook_audience(
        self,
        audience_key: str,
        kind: str,
        fb_id: str,
        name: str,
        schema_kind: str,
        is_value_based: bool,
        *,
        contents_unknown: bool = False,
    ) -> None:
        """`contents_unknown`: found on Facebook, not created by us with this state (a lost state file,
        another machine); Facebook may hold members we know nothing of, so it is to be replaced."""
        self.con.execute(
            "INSERT OR REPLACE INTO st.fb_audiences VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [audience_key, kind, fb_id, name, schema_kind, is_value_based, _now(), contents_unknown],
        )

    def set_replace_pending(self, audience_key: str, kind: str, pending: bool) -> None:
        self.con.execute(
            "UPDATE st.fb_audiences SET replace_pending = ? WHERE audience_key = ? AND kind = ?",
            [pending, audience_key, kind],
        )

    def forget_audience(self, audience_key: str) -> None:
        """After its Facebook audiences are deleted: nothing of it stays behind."""
        with self.ledger.transaction():
            for table in ("fb_rows", "fb_pending", "replace_sessions", "audience_health"):
                self.con.execute(
                    f"DELETE FROM st.{table} WHERE fb_id IN (SELECT fb_id FROM st.fb_audiences WHERE audience_key = ?)",
                    [audience_key],
                )
            for table in ("fb_audiences", "audience_state", "source_rows"):
                self.con.execute(f"DELETE FROM st.{table} WHERE audience_key = ?", [audience_key])

    def forget_facebook_audience(self, audience_key: str, kind: str) -> None:
        fb = self.facebook_audience(audience_key, kind)
        if fb:
            for table in ("fb_rows", "fb_pending", "replace_sessions"):
                self.con.execute(f"DELETE FROM st.{table} WHERE fb_id = ?", [fb.fb_id])
            self.con.execute("DELETE FROM st.fb_audiences WHERE audience_key = ? AND kind = ?", [audience_key, kind])

    def member_count(self, fb_id: str) -> int:
        return self.con.execute("SELECT count(DISTINCT row_fp) FROM st.fb_rows WHERE fb_id = ?", [fb_id]).fetchone()[0]

    # -- change detection cache ---------------------------------------------------------------

    def config_fp(self, audience_key: str) -> str | None:
        row = self.con.execute(
            "SELECT config_fp FROM st.audience_state WHERE audience_key = ?", [audience_key]
        ).fetchone()
        return row[0] if row else None

    def reset_source_cache(self, audience_key: str, config_fp: str) -> None:
        """A changed config (or a full refresh) means every member is recomputed from its row.

        The members stay listed (with a fingerprint no row has), so the ones that left are still
        found and removed."""
        self.con.execute("UPDATE st.source_rows SET raw_fp = 0 WHERE audience_key = ?", [audience_key])
        self.con.execute(
            """INSERT INTO st.audience_state VALUES (?, ?, NULL, false)
               ON CONFLICT (audience_key) DO UPDATE SET config_fp = excluded.config_fp""",
            [audience_key, config_fp],
        )

    def in_flight(self, audience_key: str) -> bool:
        """Whether a run sent changes for this audience and did not finish: rows may be on
        Facebook that the change cache does not know about."""
        row = self.con.execute(
            "SELECT in_flight FROM st.audience_state WHERE audience_key = ?", [audience_key]
        ).fetchall()
        return bool(row and row[0][0])

    # -- runs ---------------------------------------------------------------------------------

    def record_run(
        self, run_id: str, audience_key: str, started: datetime, status: str, report: dict[str, Any]
    ) -> None:
        self.con.execute(
            "INSERT INTO st.runs VALUES (?, ?, ?, ?, ?, ?)",
            [run_id, audience_key, started, _now(), status, json.dumps(report, default=str)],
        )
        self.con.execute(
            """DELETE FROM st.runs WHERE audience_key = $key AND finished_at < (
                   SELECT min(finished_at) FROM (
                       SELECT finished_at FROM st.runs WHERE audience_key = $key
                       ORDER BY finished_at DESC LIMIT $keep))""",
            {"key": audience_key, "keep": KEEP_RUNS},
        )

    def last_runs(self) -> list[dict[str, Any]]:
        rows = self.con.execute(
            """SELECT audience_key, arg_max(status, finished_at), max(finished_at), arg_max(report, finished_at)
               FROM st.runs GROUP BY audience_key ORDER BY audience_key"""
        ).fetchall()
        return [
            {"audience_key": k, "status": s, "finished_at": f, "report": json.loads(r) if r else None}
            for k, s, f, r in rows
        ]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _sql_str(s: str) -> str:
    return s.replace("'", "''")
