"""The stream's durable queue: accepted membership changes, in a SQLite file of their own.

Why not the DuckDB state file: DuckDB lets one process hold that file, and a sync of a million
members holds it for seconds. Accepting a Segment call must never wait for that, so accepted
changes go to `<state>.queue.sqlite` in WAL mode (one writer, readers never blocked, any process),
fsynced before the caller hears 200. The flusher copies them into the state file when it has
its turn and deletes them from here only after their audience's sync succeeded.

Hashed values only, as everywhere in the state. A change's key values are kept packed, one JSON
object of the columns it gives (`vals`), not one column each: a change names two or three of the
fifteen keys, and writing fifteen mostly empty columns was most of the cost of accepting a call
(bench/README.md, stream). A file an older version wrote (`stream_queue`, one column per key) is
moved into this layout when it is opened.

The same file holds `commerce_queue`: commerce events `serve` accepted for the Conversions API,
already built (hashed `user_data`, `custom_data`, `event_id`) by the conversions door's own code.
An event is deleted from it only after the conversions ledger recorded it as acknowledged (or as
refused for good), so a crash anywhere re-delivers it with the same `event_id`.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import orjson
import pyarrow as pa

BUSY_TIMEOUT_MS = 30_000
CHANGES = "stream_changes"
WIDE = "stream_queue"
"""The layout before the key values were packed: one TEXT column per key."""


def pack(values: Mapping[str, str]) -> bytes:
    """A change's key values as the log keeps them."""
    return orjson.dumps(values if isinstance(values, dict) else dict(values))


def queue_path(state: str | Path) -> Path:
    return Path(f"{state}.queue.sqlite")


class IngestLog:
    """One SQLite connection per thread on the queue file (sqlite3 connections are per thread)."""

    def __init__(self, path: str | Path, columns: Sequence[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.columns = tuple(columns)
        self._local = threading.local()
        con = self._con()
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {CHANGES} (seq INTEGER PRIMARY KEY, accepted_at REAL NOT NULL, "
            "audience_key TEXT NOT NULL, pk TEXT NOT NULL, member INTEGER NOT NULL, vals BLOB NOT NULL)"
        )
        con.execute(f"CREATE INDEX IF NOT EXISTS {CHANGES}_audience ON {CHANGES} (audience_key, seq)")
        self._move_wide_queue(con)
        con.execute(
            "CREATE TABLE IF NOT EXISTS commerce_queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "accepted_at REAL NOT NULL, event_id TEXT NOT NULL UNIQUE, event BLOB NOT NULL)"
        )

    def _con(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            self._local.con = con
        return con

    def _move_wide_queue(self, con: sqlite3.Connection) -> None:
        """Changes an older version queued one column per key move to the packed table, in one transaction
        (the write lock is taken only when there is such a table)."""
        exists = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
        if not con.execute(exists, [WIDE]).fetchone()[0]:
            return
        con.execute("BEGIN IMMEDIATE")
        try:
            if con.execute(exists, [WIDE]).fetchone()[0]:
                packed = ", ".join(f"'{c}', {c}" for c in self.columns)
                con.execute(
                    f"INSERT INTO {CHANGES} SELECT seq, accepted_at, audience_key, pk, member, json_object({packed}) "
                    f"FROM {WIDE} ORDER BY seq"
                )
                con.execute(f"DROP TABLE {WIDE}")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # -- writing ------------------------------------------------------------------------------

    def append(self, rows: Iterable[tuple[object, ...]]) -> None:
        """(seq, accepted_at, audience_key, pk, member, vals) rows, in one durable transaction; `vals` is
        `pack(values)`, the change's key values by column."""
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            con.executemany(f"INSERT INTO {CHANGES} VALUES (?, ?, ?, ?, ?, ?)", rows)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def delete_upto(self, audience_key: str, max_seq: int) -> int:
        cur = self._con().execute(f"DELETE FROM {CHANGES} WHERE audience_key = ? AND seq <= ?", [audience_key, max_seq])
        return cur.rowcount

    # -- reading ------------------------------------------------------------------------------

    def max_seq(self) -> int:
        return int(self._con().execute(f"SELECT coalesce(max(seq), 0) FROM {CHANGES}").fetchone()[0])

    def depth(self) -> tuple[int, float | None]:
        """How many changes wait, and when the oldest was accepted."""
        n, oldest = self._con().execute(f"SELECT count(*), min(accepted_at) FROM {CHANGES}").fetchone()
        return int(n), oldest

    def waiting(self) -> list[tuple[str, int, float, int]]:
        """Per audience: (key, count, oldest accepted_at, max seq)."""
        return (
            self._con()
            .execute(
                f"SELECT audience_key, count(*), min(accepted_at), max(seq) FROM {CHANGES} GROUP BY audience_key"
            )
            .fetchall()
        )

    def read_upto(self, upto: dict[str, int]) -> pa.Table:
        """The waiting changes of these audiences, each up to its seq, as an Arrow table."""
        rows: list[tuple[object, ...]] = []
        con = self._con()
        for key, seq in upto.items():
            rows += con.execute(
                f"SELECT seq, accepted_at, audience_key, pk, member, vals FROM {CHANGES} "
                "WHERE audience_key = ? AND seq <= ? ORDER BY seq",
                [key, seq],
            ).fetchall()
        packed = [orjson.loads(r[5]) for r in rows]
        table = {
            "seq": pa.array([r[0] for r in rows], pa.int64()),
            "accepted_at": pa.array([r[1] for r in rows], pa.float64()),
            "audience_key": pa.array([r[2] for r in rows], pa.string()),
            "pk": pa.array([r[3] for r in rows], pa.string()),
            "member": pa.array([bool(r[4]) for r in rows], pa.bool_()),
        }
        for c in self.columns:
            table[c] = pa.array([v.get(c) for v in packed], pa.string())
        return pa.table(table)

    # -- commerce events for the Conversions API ----------------------------------------------

    def append_commerce(self, events: Sequence[dict[str, object]]) -> int:
        """Built events (each with its `event_id`), in one durable transaction; an id already
        waiting is not queued twice (a client's retry). Returns how many were new."""
        if not events:
            return 0
        at = time.time()
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            before = con.total_changes
            con.executemany(
                "INSERT OR IGNORE INTO commerce_queue (accepted_at, event_id, event) VALUES (?, ?, ?)",
                [(at, e["event_id"], orjson.dumps(e)) for e in events],
            )
            added = con.total_changes - before
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        return added

    def commerce_depth(self) -> tuple[int, float | None, int]:
        """How many commerce events wait, when the oldest was accepted, and the highest seq."""
        sql = "SELECT count(*), min(accepted_at), coalesce(max(seq), 0) FROM commerce_queue"
        n, oldest, top = self._con().execute(sql).fetchone()
        return int(n), oldest, int(top)

    def read_commerce(self, after_seq: int, limit: int) -> list[tuple[int, dict[str, object]]]:
        rows = (
            self._con()
            .execute("SELECT seq, event FROM commerce_queue WHERE seq > ? ORDER BY seq LIMIT ?", [after_seq, limit])
            .fetchall()
        )
        return [(int(seq), orjson.loads(event)) for seq, event in rows]

    def delete_commerce(self, event_ids: Iterable[str]) -> int:
        """Remove delivered (or for-good refused) events; call only after the ledger recorded them."""
        ids = list(event_ids)
        if not ids:
            return 0
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            n = 0
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                marks = ", ".join("?" for _ in part)
                n += con.execute(f"DELETE FROM commerce_queue WHERE event_id IN ({marks})", part).rowcount
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        return n
