"""The sync's bookkeeping: what each Facebook audience holds, what is in flight, the change cache.

Three facts, three tables, and the rules that keep them honest:

* `st.fb_rows`: rows Facebook acknowledged (added and not acknowledged removed since). A row enters
  only after Facebook acknowledged its add and leaves only after it acknowledged its removal.
* `st.fb_pending`: the intent. A batch's rows are written here *before* it is sent and leave in
  the same transaction that records its acknowledgement. Whatever is left after a run (a kill, a
  lost answer, an error past the retries) has an unknown outcome; the next run re-sends it before
  planning (adds and removes are set operations, so re-sending is harmless) and only then trusts
  `fb_rows`.
* `st.source_rows`: a cache of one raw fingerprint per member, used to skip members that did not
  change. It may only skip work when it cannot hide a difference, so a member's entry is made
  stale (fingerprint 0, which no row has) *before* any of its rows is sent, and written again only
  when every Facebook audience of the configured audience took the run's changes.

The planner reads these tables; every write to them is here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb


@dataclass(frozen=True)
class ReplaceSession:
    """An open `usersreplace` session: resumed with `last_seq + 1` while Facebook keeps it open."""

    session_id: int
    last_seq: int
    started_at: datetime


class Ledger:
    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction that is rolled back on any exception, Ctrl-C included: a half-written
        acknowledgement is never kept, and its intent still tells the next run to re-send."""
        self.con.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    # -- the change cache ---------------------------------------------------------------------

    def begin_changes(self, audience_key: str, config_fp: str, touched: str) -> None:
        """Before the first send: the members whose rows may change are no longer trusted as cached."""
        c = self.con
        with self.transaction():
            c.execute(
                f"UPDATE st.source_rows SET raw_fp = 0 WHERE audience_key = ? AND raw_fp <> 0 "
                f"AND pk IN (SELECT pk FROM {touched})",
                [audience_key],
            )
            c.execute(
                """INSERT INTO st.audience_state VALUES (?, ?, NULL, true)
                   ON CONFLICT (audience_key) DO UPDATE SET in_flight = true""",
                [audience_key, config_fp],
            )

    def commit_source(self, audience_key: str, *, current: str, changed: str, deleted: str, touched: str) -> None:
        """Every Facebook audience took its changes: the changed members' fingerprints are facts again."""
        c = self.con
        with self.transaction():
            c.execute(
                f"""DELETE FROM st.source_rows WHERE audience_key = ? AND (pk IN (SELECT pk FROM {changed})
                    OR pk IN (SELECT pk FROM {deleted} WHERE pk IN (SELECT pk FROM {touched})))""",
                [audience_key],
            )
            c.execute(
                f"INSERT INTO st.source_rows SELECT ?, pk, raw_fp FROM {current} "
                f"WHERE pk IN (SELECT pk FROM {changed})",
                [audience_key],
            )
            c.execute(
                "UPDATE st.audience_state SET last_success = now(), in_flight = false WHERE audience_key = ?",
                [audience_key],
            )

    def _mark_stale(self, audience_key: str, pks: str, params: list[object] | dict[str, object]) -> None:
        """These members' rows on Facebook changed outside a complete run: plan them again next time."""
        c = self.con
        c.execute(
            f"CREATE OR REPLACE TEMP TABLE ledger_stale AS SELECT DISTINCT pk FROM ({pks}) WHERE pk IS NOT NULL", params
        )
        c.execute(
            "DELETE FROM st.source_rows WHERE audience_key = ? AND pk IN (SELECT pk FROM ledger_stale)", [audience_key]
        )
        c.execute("INSERT INTO st.source_rows SELECT ?, pk, 0 FROM ledger_stale", [audience_key])
        c.execute("DROP TABLE ledger_stale")

    # -- intents and acknowledgements ---------------------------------------------------------

    def record_intent(self, fb_id: str, op: str, rows: str, batches: list[int]) -> None:
        """The rows of these batches are about to be sent; `rows` has pk (or not), row_fp, schema, payload, batch."""
        cols = {r[0] for r in self.con.execute(f"DESCRIBE {rows}").fetchall()}
        pk = "pk" if "pk" in cols else "NULL"
        self.con.execute(
            f"INSERT INTO st.fb_pending SELECT ?, ?, {pk}, row_fp, schema, payload FROM {rows} "
            "WHERE list_contains(?, batch)",
            [fb_id, op, batches],
        )

    def commit_adds(self, fb_id: str, entries: str, batches: list[int]) -> None:
        """Facebook acknowledged these add batches: their rows (with every member that needs them) are held."""
        c = self.con
        with self.transaction():
            c.execute(
                f"INSERT INTO st.fb_rows SELECT ?, pk, row_fp, schema, payload FROM {entries} "
                "WHERE list_contains(?, batch)",
                [fb_id, batches],
            )
            self._clear_pending(
                fb_id, "add", f"SELECT row_fp FROM {entries} WHERE list_contains($batches, batch)", batches
            )

    def commit_removes(self, audience_key: str, fb_id: str, removes: str, batches: list[int]) -> None:
        """Facebook acknowledged these removals: the rows are gone, whoever held them."""
        rows = f"SELECT row_fp FROM {removes} WHERE list_contains($batches, batch)"
        with self.transaction():
            self._drop_rows(audience_key, fb_id, rows, batches)
            self._clear_pending(fb_id, "remove", rows, batches)

    def _drop_rows(self, audience_key: str, fb_id: str, rows: str, batches: list[int]) -> None:
        holders = (
            f"SELECT pk FROM st.fb_rows WHERE fb_id = $fb AND row_fp IN ({rows}) "
            "AND pk IN (SELECT pk FROM st.source_rows WHERE audience_key = $key AND raw_fp <> 0)"
        )
        self._mark_stale(audience_key, holders, {"fb": fb_id, "key": audience_key, "batches": batches})
        self.con.execute(
            f"DELETE FROM st.fb_rows WHERE fb_id = $fb AND row_fp IN ({rows})", {"fb": fb_id, "batches": batches}
        )

    def _clear_pending(self, fb_id: str, op: str, rows: str, batches: list[int]) -> None:
        self.con.execute(
            f"DELETE FROM st.fb_pending WHERE fb_id = $fb AND op = $op AND row_fp IN ({rows})",
            {"fb": fb_id, "op": op, "batches": batches},
        )

    def settle_unsent(self, fb_id: str, *, mode: str, desired: str, adds: str, removes: str, touched: str) -> None:
        """State-only moves that need no call: a row that stays on Facebook changes owner."""
        c = self.con
        with self.transaction():
            c.execute(
                f"DELETE FROM st.fb_rows WHERE fb_id = ? AND pk IN (SELECT pk FROM {touched}) "
                f"AND row_fp NOT IN (SELECT row_fp FROM {removes})",
                [fb_id],
            )
            if mode == "delete":
                # Nothing is added in delete mode; a member still needing a row already there holds it.
                c.execute(
                    f"""INSERT INTO st.fb_rows SELECT $fb, pk, row_fp, schema, payload FROM {desired}
                        WHERE row_fp IN (SELECT row_fp FROM st.fb_rows WHERE fb_id = $fb)
                          AND (pk, row_fp) NOT IN (SELECT (pk, row_fp) FROM st.fb_rows WHERE fb_id = $fb)""",
                    {"fb": fb_id},
                )
            else:
                c.execute(
                    f"INSERT INTO st.fb_rows SELECT ?, pk, row_fp, schema, payload FROM {desired} "
                    f"WHERE row_fp NOT IN (SELECT row_fp FROM {adds})",
                    [fb_id],
                )

    # -- batches whose outcome is unknown -----------------------------------------------------

    def pending_count(self, fb_id: str, op: str) -> int:
        return self.con.execute(
            "SELECT count(DISTINCT row_fp) FROM st.fb_pending WHERE fb_id = ? AND op = ?", [fb_id, op]
        ).fetchone()[0]

    def stage_pending(self, fb_id: str, op: str, table: str, batch_rows: int) -> None:
        """The unknown-outcome rows of one kind as sendable batches (one schema per batch)."""
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {table} AS
                SELECT row_fp, schema, any_value(payload) AS payload,
                       dense_rank() OVER (ORDER BY schema) * 100000000
                       + (row_number() OVER (PARTITION BY schema ORDER BY row_fp) - 1) // {batch_rows} AS batch
                FROM st.fb_pending WHERE fb_id = ? AND op = ? GROUP BY row_fp, schema""",
            [fb_id, op],
        )

    def commit_recovered(self, audience_key: str, fb_id: str, op: str, table: str, batches: list[int]) -> None:
        """A re-sent unknown batch was acknowledged: record its outcome and re-plan its members."""
        rows = f"SELECT row_fp FROM {table} WHERE list_contains($batches, batch)"
        params = {"fb": fb_id, "op": op, "batches": batches}
        c = self.con
        with self.transaction():
            if op == "add":
                c.execute(
                    f"""INSERT INTO st.fb_rows SELECT DISTINCT fb_id, pk, row_fp, schema, payload FROM st.fb_pending
                        WHERE fb_id = $fb AND op = $op AND pk IS NOT NULL AND row_fp IN ({rows})
                          AND (pk, row_fp) NOT IN (SELECT (pk, row_fp) FROM st.fb_rows WHERE fb_id = $fb)""",
                    params,
                )
                self._mark_stale(
                    audience_key,
                    f"SELECT pk FROM st.fb_pending WHERE fb_id = $fb AND op = $op AND row_fp IN ({rows})",
                    params,
                )
            else:
                self._drop_rows(audience_key, fb_id, rows, batches)
            self._clear_pending(fb_id, op, rows, batches)

    # -- replace sessions ---------------------------------------------------------------------

    def replace_session(self, fb_id: str) -> ReplaceSession | None:
        row = self.con.execute(
            "SELECT session_id, last_seq, started_at FROM st.replace_sessions WHERE fb_id = ?", [fb_id]
        ).fetchone()
        return ReplaceSession(*row) if row else None

    def start_replace(self, fb_id: str, session_id: int) -> None:
        c = self.con
        with self.transaction():
            c.execute("DELETE FROM st.fb_pending WHERE fb_id = ? AND op = 'replace'", [fb_id])
            c.execute("INSERT OR REPLACE INTO st.replace_sessions VALUES (?, ?, 0, ?)", [fb_id, session_id, _now()])

    def advance_replace(self, fb_id: str, seq: int) -> None:
        self.con.execute("UPDATE st.replace_sessions SET last_seq = ? WHERE fb_id = ?", [seq, fb_id])

    def adopt_ended_replace(self, audience_key: str, kind: str, fb_id: str) -> int:
        """A session we thought open had ended: Facebook holds what of it arrived, some part of the
        rows recorded as sent (a batch may have been refused). So nothing is known to be held, and
        every row sent becomes an add of unknown outcome: the next recovery sends them again (set
        operations) and records them, then the plan removes those no longer wanted. Returns how many."""
        sent = "SELECT DISTINCT pk, row_fp, schema, payload FROM st.fb_pending WHERE fb_id = $fb AND op = 'replace'"
        c = self.con
        with self.transaction():
            c.execute("DELETE FROM st.fb_rows WHERE fb_id = $fb", {"fb": fb_id})
            c.execute(
                f"INSERT INTO st.fb_pending SELECT $fb, 'add', pk, row_fp, schema, payload FROM ({sent})", {"fb": fb_id}
            )
            n = c.execute(f"SELECT count(DISTINCT row_fp) FROM ({sent})", {"fb": fb_id}).fetchall()[0][0]
            self._mark_stale(audience_key, f"SELECT pk FROM ({sent})", {"fb": fb_id})
            self._close_replace(audience_key, kind, fb_id)
        return int(n)

    def _close_replace(self, audience_key: str, kind: str, fb_id: str) -> None:
        c = self.con
        c.execute("DELETE FROM st.fb_pending WHERE fb_id = ? AND op = 'replace'", [fb_id])
        c.execute("DELETE FROM st.replace_sessions WHERE fb_id = ?", [fb_id])
        c.execute(
            "UPDATE st.fb_audiences SET replace_pending = false WHERE audience_key = ? AND kind = ?",
            [audience_key, kind],
        )

    def finish_replace(self, audience_key: str, kind: str, fb_id: str, desired: str) -> int:
        """Facebook took the last batch: it holds this run's rows, and maybe rows an earlier part of
        a resumed session sent (a batch of it may have been refused). Those not wanted now become
        removals of unknown outcome, re-sent by the next recovery; they are never recorded as held,
        so a member who wants them back later is added again. Returns how many there are."""
        c = self.con
        with self.transaction():
            c.execute("DELETE FROM st.fb_rows WHERE fb_id = ?", [fb_id])
            c.execute(f"INSERT INTO st.fb_rows SELECT ?, pk, row_fp, schema, payload FROM {desired}", [fb_id])
            extra = f"""SELECT DISTINCT pk, row_fp, schema, payload FROM st.fb_pending
                        WHERE fb_id = $fb AND op = 'replace' AND pk IS NOT NULL
                          AND row_fp NOT IN (SELECT row_fp FROM {desired})"""
            n = c.execute(f"SELECT count(DISTINCT row_fp) FROM ({extra})", {"fb": fb_id}).fetchall()[0][0]
            c.execute(
                f"INSERT INTO st.fb_pending SELECT $fb, 'remove', NULL, row_fp, any_value(schema), any_value(payload) "
                f"FROM ({extra}) GROUP BY row_fp",
                {"fb": fb_id},
            )
            self._mark_stale(audience_key, f"SELECT pk FROM ({extra})", {"fb": fb_id})
            self._close_replace(audience_key, kind, fb_id)
        return int(n)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
