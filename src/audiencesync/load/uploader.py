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
from datetime import UTC, datetime, timedelta
from typing import Any

from audiencesync.load.graph import GraphClient, GraphError
from audiencesync.plan.planner import Plan, TargetPlan
from audiencesync.plan.targets import VALUE_KEY
from audiencesync.state.ledger import ReplaceSession
from audiencesync.state.store import StateStore

Progress = Callable[[int], None]
COMMIT_EVERY = 8
COMMIT_AFTER_S = 0.5
INTENT_AHEAD = 16
"""Batches whose intent is recorded in one write; a crash leaves at most these to re-send."""


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
        key = plan.audience.key
        ledger = self.store.ledger
        ledger.settle_unsent(
            fb_id,
            mode=plan.mode,
            desired=tp.desired,
            adds=tp.add_batches,
            removes=tp.remove_batches,
            touched=plan.relations.touched,
        )
        sent = Sent()
        self._send_all(
            "DELETE",
            fb_id,
            tp.remove_batches,
            sent,
            intent=lambda batches: ledger.record_intent(fb_id, "remove", tp.remove_batches, batches),
            commit=lambda batches: ledger.commit_removes(key, fb_id, tp.remove_batches, batches),
        )
        self._send_all(
            "POST",
            fb_id,
            tp.add_batches,
            sent,
            intent=lambda batches: ledger.record_intent(fb_id, "add", tp.add_entries, batches),
            commit=lambda batches: ledger.commit_adds(fb_id, tp.add_entries, batches),
        )
        return sent

    def recover(self, audience_key: str, fb_id: str, batch_rows: int) -> Sent:
        """Re-send the batches an earlier run sent without recording Facebook's answer, and record
        it now, so the plan that follows starts from facts (removals first, as in `apply`)."""
        ledger = self.store.ledger
        sent = Sent()
        for op, method in (("remove", "DELETE"), ("add", "POST")):
            if not ledger.pending_count(fb_id, op):
                continue
            table = f"recover_{op}"
            ledger.stage_pending(fb_id, op, table, batch_rows)
            self._send_all(
                method,
                fb_id,
                table,
                sent,
                intent=lambda batches: None,
                commit=lambda batches, op=op, table=table: ledger.commit_recovered(
                    audience_key, fb_id, op, table, batches
                ),
            )
        return sent

    def _send_all(
        self,
        method: str,
        fb_id: str,
        table: str,
        sent: Sent,
        *,
        intent: Callable[[list[int]], object],
        commit: Callable[[list[int]], object],
    ) -> None:
        """Keep `max_in_flight` requests going; commit acknowledged batches a few at a time (each
        commit is a write to the state file), always before returning or raising. Before a batch
        is sent, its intent is recorded, for the next few batches at once (also one write)."""
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
            todo = iter(enumerate(batches))
            declared = 0
            try:
                while True:
                    while failure is None and len(pending) < self.max_in_flight:
                        item = next(todo, None)
                        if item is None:
                            break
                        pos, b = item
                        if pos >= declared:
                            intent(batches[declared : declared + INTENT_AHEAD])
                            declared += INTENT_AHEAD
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

    def replace(self, plan: Plan, tp: TargetPlan, fb_id: str) -> Replaced:
        """A `usersreplace` session: batch_seq from 1, the last batch flagged, then the state swapped.

        Facebook refuses a second replace while one is open (for up to 90 minutes), so an
        interrupted session is resumed with the next `batch_seq` while it is young enough, and a
        new one is started only after it has surely expired. Every batch's rows are recorded
        before sending, so whatever an earlier part of the session added is known afterwards.
        """
        ledger = self.store.ledger
        schemas = {r[0] for r in self.con.execute(f"SELECT DISTINCT schema FROM {tp.add_batches}").fetchall()}
        if len(schemas) > 1:
            raise GraphError("a replace session needs one schema for every batch")
        batches = [
            r[0] for r in self.con.execute(f"SELECT DISTINCT batch FROM {tp.add_batches} ORDER BY batch").fetchall()
        ]
        self.store.set_replace_pending(plan.audience.key, tp.target.kind, True)
        session = ledger.replace_session(fb_id)
        resuming = session is not None and _now() - session.started_at <= RESUME_REPLACE_WITHIN
        try:
            return self._replace_session(plan, tp, fb_id, batches, session if resuming else None)
        except GraphError as e:
            if not resuming or e.code != 2650 or e.subcode not in (SESSION_FINISHED, SESSION_TIMED_OUT):
                raise
        # The interrupted session had in fact ended: Facebook took its last batch (the answer was
        # lost) or closed it after 90 minutes. Either way it holds what the session sent.
        out = Replaced(leftover=ledger.adopt_ended_replace(plan.audience.key, tp.target.kind, fb_id))
        out.leftover = max(out.leftover, 1)  # re-plan against what it now holds
        return out

    def _replace_session(
        self, plan: Plan, tp: TargetPlan, fb_id: str, batches: list[int], resume: ReplaceSession | None
    ) -> Replaced:
        ledger = self.store.ledger
        if resume is None:
            session_id, seq = random.SystemRandom().randrange(1, 2**62), 0
            ledger.start_replace(fb_id, session_id)
        else:
            session_id, seq = resume.session_id, resume.last_seq
        out = Replaced()
        last = max(len(batches), 1)
        for i, b in enumerate(batches or [-1], start=1):
            seq += 1
            if b == -1:
                schema, data = tp.target.schema, []
            else:
                ledger.record_intent(fb_id, "replace", tp.add_entries, [b])
                schema, data = self._batch(tp.add_batches, b)
            spec = {
                "session_id": session_id,
                "batch_seq": seq,
                "last_batch_flag": i == last,
                "estimated_num_total": tp.adds,
            }
            response = self.client.users(
                "POST", fb_id, schema, data, session=spec, edge="usersreplace", app_ids=self._app_ids(schema)
            )
            out.add(len(data), response)
            out.num_received = int(response.get("num_received") or 0)  # Facebook counts the whole session
            if i == last:
                out.leftover = ledger.finish_replace(plan.audience.key, tp.target.kind, fb_id, tp.desired)
            else:
                ledger.advance_replace(fb_id, seq)
            self.progress(len(data))
            self.after_batch()
        return out


SESSION_FINISHED, SESSION_TIMED_OUT = 1870159, 1870158
RESUME_REPLACE_WITHIN = timedelta(minutes=75)
"""Facebook keeps a replace session open 90 minutes from its first batch; leave a margin."""


@dataclass
class Replaced(Sent):
    leftover: int = 0
    """Rows an earlier part of a resumed session added that the source no longer wants."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


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
