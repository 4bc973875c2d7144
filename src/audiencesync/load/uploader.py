"""Send a plan's batches to Facebook and commit each one to the state as soon as it is acknowledged.

Facebook's add and remove are set operations, so sending a batch twice is harmless; the danger is
the opposite, recording a batch Facebook never took. So the state moves only on an acknowledgement,
batch by batch, from the main thread (DuckDB connections are not shared across threads), while up
to `max_in_flight` requests travel in parallel.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from audiencesync.load.graph import GraphClient, GraphError
from audiencesync.plan.planner import Plan, TargetPlan
from audiencesync.plan.targets import VALUE_KEY
from audiencesync.state.store import StateStore

Progress = Callable[[int], None]
COMMIT_EVERY = 8
COMMIT_AFTER_S = 0.5


@dataclass
class Sent:
    batches: int = 0
    rows: int = 0
    num_received: int = 0
    num_invalid_entries: int = 0

    def add(self, rows: int, response: dict[str, Any]) -> None:
        self.batches += 1
        self.rows += rows
        self.num_received += int(response.get("num_received") or 0)
        self.num_invalid_entries += int(response.get("num_invalid_entries") or 0)


class Uploader:
    def __init__(
        self,
        client: GraphClient,
        store: StateStore,
        *,
        max_in_flight: int = 4,
        app_id: str | None = None,
        progress: Progress | None = None,
        after_batch: Callable[[], None] | None = None,
    ):
        self.client = client
        self.store = store
        self.con = store.con
        self.max_in_flight = max_in_flight
        self.app_id = app_id
        self.progress = progress or (lambda n: None)
        self.after_batch = after_batch or (lambda: None)

    # -- incremental --------------------------------------------------------------------------

    def apply(self, plan: Plan, tp: TargetPlan, fb_id: str) -> Sent:
        """Removes first (a multi-key removal may match a row about to be added), then adds."""
        _, add, rem = tp.tables
        self._settle_unsent(plan, tp, fb_id)
        sent = Sent()
        self._send_all(
            "DELETE",
            fb_id,
            rem,
            sent,
            commit=lambda batches: self.con.execute(
                f"DELETE FROM st.fb_rows WHERE fb_id = ? AND pk IN (SELECT pk FROM touched) "
                f"AND row_fp IN (SELECT row_fp FROM {rem} WHERE list_contains(?, batch))",
                [fb_id, batches],
            ),
        )
        self._send_all(
            "POST",
            fb_id,
            add,
            sent,
            commit=lambda batches: self.con.execute(
                f"INSERT INTO st.fb_rows SELECT ?, pk, row_fp, schema, payload FROM {add}_entries "
                f"WHERE list_contains(?, batch)",
                [fb_id, batches],
            ),
        )
        return sent

    def _settle_unsent(self, plan: Plan, tp: TargetPlan, fb_id: str) -> None:
        """State-only moves that need no call: rows that stay on Facebook under another member."""
        n, add, rem = tp.tables
        mode = "mirror" if plan.full else plan.audience.mode
        c = self.con
        c.execute("BEGIN")
        c.execute(
            f"DELETE FROM st.fb_rows WHERE fb_id = ? AND pk IN (SELECT pk FROM touched) "
            f"AND row_fp NOT IN (SELECT row_fp FROM {rem})",
            [fb_id],
        )
        if mode == "delete":
            # Nothing is added in delete mode; a member still needing a row already there holds it.
            c.execute(
                f"""INSERT INTO st.fb_rows SELECT $fb, pk, row_fp, schema, payload FROM {n}
                    WHERE row_fp IN (SELECT row_fp FROM st.fb_rows WHERE fb_id = $fb)
                      AND (pk, row_fp) NOT IN (SELECT (pk, row_fp) FROM st.fb_rows WHERE fb_id = $fb)""",
                {"fb": fb_id},
            )
        else:
            c.execute(
                f"INSERT INTO st.fb_rows SELECT ?, pk, row_fp, schema, payload FROM {n} "
                f"WHERE row_fp NOT IN (SELECT row_fp FROM {add})",
                [fb_id],
            )
        c.execute("COMMIT")

    def _send_all(self, method: str, fb_id: str, table: str, sent: Sent, commit: Callable[[list[int]], object]) -> None:
        """Keep `max_in_flight` requests going; commit acknowledged batches a few at a time (each
        commit is a write to the state file), always before returning or raising."""
        batches = [r[0] for r in self.con.execute(f"SELECT DISTINCT batch FROM {table} ORDER BY batch").fetchall()]
        if not batches:
            return
        pending: dict[Future[dict[str, Any]], tuple[int, int]] = {}
        acked: list[tuple[int, int, dict[str, Any]]] = []
        failure: GraphError | None = None
        last_commit = time.monotonic()

        def flush() -> None:
            nonlocal last_commit
            if acked:
                commit([b for b, _, _ in acked])
                done_now = list(acked)
                acked.clear()
                for _, rows, response in done_now:
                    sent.add(rows, response)
                    self.progress(rows)
                    self.after_batch()
            last_commit = time.monotonic()

        with ThreadPoolExecutor(max_workers=self.max_in_flight) as pool:
            todo = iter(batches)
            try:
                while True:
                    while failure is None and len(pending) < self.max_in_flight:
                        b = next(todo, None)
                        if b is None:
                            break
                        schema, data = self._batch(table, b)
                        pending[pool.submit(self._send_one, method, fb_id, schema, data)] = (b, len(data))
                    if not pending:
                        break
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        b, rows = pending.pop(fut)
                        try:
                            acked.append((b, rows, fut.result()))
                        except GraphError as e:
                            failure = failure or e
                    if len(acked) >= COMMIT_EVERY or time.monotonic() - last_commit > COMMIT_AFTER_S:
                        flush()
            finally:
                for fut in list(pending):
                    b, rows = pending.pop(fut)
                    with contextlib.suppress(GraphError):
                        acked.append((b, rows, fut.result()))
                flush()
        if failure:
            raise failure

    def _send_one(self, method: str, fb_id: str, schema: str | list[str], data: list[Any]) -> dict[str, Any]:
        return self.client.users(method, fb_id, schema, data, app_ids=self._app_ids(schema))

    def _app_ids(self, schema: str | list[str]) -> list[str] | None:
        uses_uid = schema == "UID" or (isinstance(schema, list) and "UID" in schema)
        return [self.app_id] if uses_uid and self.app_id else None

    def _batch(self, table: str, batch: int) -> tuple[str | list[str], list[Any]]:
        rows = self.con.execute(f"SELECT schema, payload FROM {table} WHERE batch = ?", [batch]).fetchall()
        schema_text = rows[0][0]
        return to_wire(schema_text, [r[1] for r in rows])

    # -- full refresh -------------------------------------------------------------------------

    def replace(self, plan: Plan, tp: TargetPlan, fb_id: str) -> Sent:
        """A `usersreplace` session: batch_seq from 1, the last batch flagged, then the state swapped."""
        n, add, _ = tp.tables
        sent = Sent()
        batches = [r[0] for r in self.con.execute(f"SELECT DISTINCT batch FROM {add} ORDER BY batch").fetchall()]
        schemas = {r[0] for r in self.con.execute(f"SELECT DISTINCT schema FROM {add}").fetchall()}
        if len(schemas) > 1:
            raise GraphError("a replace session needs one schema for every batch")
        if not batches:
            batches = [-1]
        self.store.set_replace_pending(plan.audience.key, tp.target.kind, True)
        session_id = random.SystemRandom().randrange(1, 2**62)
        for seq, b in enumerate(batches, start=1):
            if b == -1:
                schema, data = tp.target.schema, []
            else:
                schema, data = self._batch(add, b)
            session = {
                "session_id": session_id,
                "batch_seq": seq,
                "last_batch_flag": seq == len(batches),
                "estimated_num_total": tp.adds,
            }
            response = self.client.users(
                "POST", fb_id, schema, data, session=session, edge="usersreplace", app_ids=self._app_ids(schema)
            )
            sent.add(len(data), response)
            self.progress(len(data))
            self.after_batch()
        c = self.con
        c.execute("BEGIN")
        c.execute("DELETE FROM st.fb_rows WHERE fb_id = ?", [fb_id])
        c.execute(f"INSERT INTO st.fb_rows SELECT ?, pk, row_fp, schema, payload FROM {n}", [fb_id])  # all desired
        c.execute("COMMIT")
        self.store.set_replace_pending(plan.audience.key, tp.target.kind, False)
        return sent


def to_wire(schema_text: str, payloads: list[list[str]]) -> tuple[str | list[str], list[Any]]:
    """Stored rows back into Facebook's shape: a flat list for single-key, rows for multi-key."""
    if not schema_text.startswith("["):
        return schema_text, [p[0] for p in payloads]
    schema: list[str] = json.loads(schema_text)
    typed = {i: _WIRE_TYPES[k] for i, k in enumerate(schema) if k in _WIRE_TYPES}
    if typed:
        payloads = [[typed[i](v) if i in typed else v for i, v in enumerate(p)] for p in payloads]
    return schema, payloads


_WIRE_TYPES: dict[str, Callable[[str], Any]] = {
    VALUE_KEY: float,
    "DATA_PROCESSING_OPTIONS": lambda v: [v] if v else [],
    "DATA_PROCESSING_OPTIONS_COUNTRY": int,
    "DATA_PROCESSING_OPTIONS_STATE": int,
}
