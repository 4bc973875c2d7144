"""Delivery: what Facebook has acknowledged (state), and sending one batch so that a bad event is isolated.

Exactly-once effect from at-least-once delivery. Each event carries a deterministic `event_id`;
an id is written to `st.conversion_events` only after Facebook acknowledges the batch holding it,
and a run sends only ids not written there. A crash between Facebook's acknowledgement and the
write means that batch is sent again on the next run, and Facebook drops the copies with its own
offline de-duplication (same event name, time and order id, or the same customer information).

The state holds event ids (hashes), event times and run ids: nothing personal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from audiencesync.conversions.settings import ConversionsSettings
from audiencesync.load.graph import GraphClient, GraphError
from audiencesync.state import StateStore
from audiencesync.state.store import KEEP_RUNS

log = logging.getLogger(__name__)


INVALID_EVENT_CODE = 100
"""Facebook's code for an invalid parameter: with CAPI, one event failed validation (subcodes 2804xxx)."""


class ConversionState:
    """The acknowledged event ids of one dataset (test events live under their own key)."""

    def __init__(self, store: StateStore, dataset: str):
        self.con = store.con
        self.dataset = dataset
        self.con.execute("CREATE OR REPLACE TEMP TABLE conv_seen (event_id VARCHAR)")

    def forget_before(self, event_time: int) -> int:
        """Ids of events too old for Facebook to take again can never be re-sent; they need no memory."""
        n = self.con.execute(
            "SELECT count(*) FROM st.conversion_events WHERE dataset = ? AND event_time < ?",
            [self.dataset, event_time],
        ).fetchall()[0][0]
        if n:
            self.con.execute(
                "DELETE FROM st.conversion_events WHERE dataset = ? AND event_time < ?", [self.dataset, event_time]
            )
        return int(n)

    def known(self, ids: list[str]) -> tuple[set[str], set[str]]:
        """Of these ids: those Facebook acknowledged before, and those this run has already taken."""
        if not ids:
            return set(), set()
        self.con.register("conv_ids", pa.table({"event_id": pa.array(ids, pa.string())}))
        try:
            acked = self.con.execute(
                """SELECT DISTINCT i.event_id FROM conv_ids i
                   JOIN st.conversion_events c ON c.event_id = i.event_id AND c.dataset = ?""",
                [self.dataset],
            ).fetchall()
            seen = self.con.execute(
                "SELECT DISTINCT i.event_id FROM conv_ids i JOIN conv_seen s ON s.event_id = i.event_id"
            ).fetchall()
        finally:
            self.con.unregister("conv_ids")
        return {r[0] for r in acked}, {r[0] for r in seen}

    def take(self, ids: list[str]) -> None:
        """Mark ids as sent by this run, so a later copy in the input is not sent twice."""
        if not ids:
            return
        self.con.register("conv_take", pa.table({"event_id": pa.array(ids, pa.string())}))
        try:
            self.con.execute("INSERT INTO conv_seen SELECT event_id FROM conv_take")
        finally:
            self.con.unregister("conv_take")

    def record(self, events: Iterable[dict[str, Any]], run_id: str) -> None:
        """Called only with events Facebook acknowledged."""
        ids, times = [], []
        for ev in events:
            ids.append(ev["event_id"])
            times.append(int(ev["event_time"]))
        if not ids:
            return
        now = datetime.now(UTC).replace(tzinfo=None)
        table = pa.table(
            {
                "event_id": pa.array(ids, pa.string()),
                "event_time": pa.array(times, pa.int64()),
            }
        )
        self.con.register("conv_ack", table)
        try:
            self.con.execute(
                "INSERT INTO st.conversion_events SELECT ?, event_id, event_time, ?, ? FROM conv_ack",
                [self.dataset, run_id, now],
            )
        finally:
            self.con.unregister("conv_ack")

    def start_run(self, run_id: str) -> None:
        self.con.execute(
            "INSERT INTO st.conversion_runs VALUES (?, ?, ?, NULL, 'running', NULL)",
            [run_id, self.dataset, datetime.now(UTC).replace(tzinfo=None)],
        )

    def finish_run(self, run_id: str, status: str, report: dict[str, Any]) -> None:
        """Record the run, and keep the last `KEEP_RUNS` finished runs of the dataset: `serve` delivers
        commerce events every few seconds, each delivery a run. Events acknowledged stay in
        `st.conversion_events` whatever happens to their run's row."""
        self.con.execute(
            "UPDATE st.conversion_runs SET finished_at = ?, status = ?, report = ? WHERE run_id = ?",
            [datetime.now(UTC).replace(tzinfo=None), status, orjson.dumps(report, default=str).decode(), run_id],
        )
        self.con.execute(
            """DELETE FROM st.conversion_runs WHERE dataset = $dataset AND finished_at < (
                   SELECT min(finished_at) FROM (
                       SELECT finished_at FROM st.conversion_runs WHERE dataset = $dataset
                       AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT $keep))""",
            {"dataset": self.dataset, "keep": KEEP_RUNS},
        )


STALE_RUN_ERROR = "the process stopped before the run finished (killed or crashed); the next run sends the rest"


def interrupt_stale_runs(store: StateStore) -> int:
    """Mark `interrupted` every run still `running`; call it right after opening the state file.

    A run records its end even on an exception or Ctrl-C, so a `running` row means its process died
    (kill -9, a crash, a power cut). Only one process can open the state file, so at open time no live
    process holds such a run. Its acknowledged events stay recorded and are not sent again; its report
    says how many there were. `finished_at` stays empty: nobody saw it end. Returns how many were marked.
    """
    con = store.con
    stale = con.execute(
        """SELECT r.run_id, count(e.event_id) FROM st.conversion_runs r
           LEFT JOIN st.conversion_events e ON e.run_id = r.run_id
           WHERE r.status = 'running' GROUP BY r.run_id ORDER BY r.run_id"""
    ).fetchall()
    for run_id, sent in stale:
        report = {"run_id": run_id, "status": "interrupted", "sent": int(sent), "error": STALE_RUN_ERROR}
        con.execute(
            "UPDATE st.conversion_runs SET status = 'interrupted', report = ? WHERE run_id = ? AND status = 'running'",
            [orjson.dumps(report).decode(), run_id],
        )
        log.warning("conversions run %s stopped without finishing; %d acknowledged events kept", run_id, sent)
    return len(stale)


def recent_runs(store: StateStore, limit: int = 10) -> list[dict[str, Any]]:
    """The latest conversion runs, newest first, for a status reader. Stale `running` rows are marked
    `interrupted` first: the reader holds the state file, so no run can be live."""
    interrupt_stale_runs(store)
    rows = store.con.execute(
        """SELECT run_id, dataset, started_at, finished_at, status, report FROM st.conversion_runs
           ORDER BY started_at DESC, run_id DESC LIMIT ?""",
        [limit],
    ).fetchall()
    names = ("run_id", "dataset", "started_at", "finished_at", "status", "report")
    return [{**dict(zip(names, row, strict=True)), "report": orjson.loads(row[5]) if row[5] else None} for row in rows]


@dataclass
class BatchOutcome:
    """What became of one batch: acknowledged events, events Facebook refused alone, and a fatal error."""

    acked: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    events_received: int = 0
    requests: int = 0
    error: GraphError | None = None


class Sender:
    """Sends batches with the shared Graph client (its retry policy and error texts)."""

    def __init__(self, client: GraphClient, settings: ConversionsSettings):
        self.client = client
        self.settings = settings

    def send(self, events: list[dict[str, Any]]) -> BatchOutcome:
        out = BatchOutcome()
        self._send(events, out)
        return out

    def _send(self, events: list[dict[str, Any]], out: BatchOutcome) -> None:
        """Facebook refuses a whole batch for one invalid event; halving isolates it in log2(n) calls.

        Local validation catches the known rules, so this runs only for rules Facebook adds or
        enforces differently. Any other error is fatal for the run (the acknowledged part is kept).
        """
        if out.error is not None or not events:
            return
        out.requests += 1
        try:
            body = self.client.send_events(
                self.settings.dataset_id,
                events,
                test_event_code=self.settings.test_event_code,
                upload_tag=self.settings.upload_tag,
            )
        except GraphError as err:
            if err.code != INVALID_EVENT_CODE or err.transient:
                out.error = err
                return
            if len(events) == 1:
                reason = f"facebook:{err.code}/{err.subcode}" if err.subcode else f"facebook:{err.code}"
                log.warning("Facebook refused one event (%s): %s", reason, err.user_title or "invalid event")
                out.refused.append((events[0], reason))
                return
            half = len(events) // 2
            self._send(events[:half], out)
            self._send(events[half:], out)
            return
        out.acked.extend(events)
        out.events_received += int((body or {}).get("events_received") or 0)


def batches(events: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [events[i : i + size] for i in range(0, len(events), size)]
