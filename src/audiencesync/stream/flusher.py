"""The flusher: queued changes → the members table → `pipeline.sync` → done.

It flushes when the oldest waiting change has waited `flush_after`, or when `flush_size` changes
wait. A flush takes every waiting change of the due audiences, coalesces each person's flips
(the last one wins; traits given later replace earlier ones, traits not given are kept), applies
the result to `st.stream_members`, and runs the same sync as `audiencesync sync` for those
audiences. That sync plans only the people the flush touched (`plan/targeted.py`), so a flush
costs what its changes cost, whatever the audience's size. It holds the state file only for the
flush (`state/lease.py`), so `sync`, `status` and the scheduler get their turn in between; the
queue itself is the ingest log, never locked by a sync. Queue entries are deleted only after
their audience's sync succeeded: a crash or a failed sync leaves them to be flushed again, which
is harmless because applying the same changes twice gives the same members table, and the sync
diffs that table against what Facebook holds.

An audience whose sync failed is retried with exponential backoff while the others go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from audiencesync import alerts, pipeline
from audiencesync.config import Config
from audiencesync.load.graph import GraphClient
from audiencesync.report import AudienceReport, RunReport
from audiencesync.state import stream_members
from audiencesync.state.ingest import IngestLog
from audiencesync.state.lease import lease
from audiencesync.state.store import StateStore
from audiencesync.stream.metrics import Metrics
from audiencesync.stream.queue import QueueStats
from audiencesync.stream.settings import ServeSettings, stream_audiences

log = logging.getLogger(__name__)

BACKOFF_START = 1.0
BACKOFF_MAX = 60.0
IDLE_WAIT = 3600.0
FLUSH_WAIT_S = 3600.0
"""How long a flush waits for the state file (a long `sync --full-refresh` may hold it)."""
DEGRADED_AFTER = 3
"""Failed flushes in a row after which `/health` says degraded."""

SyncFn = Callable[..., RunReport]


@dataclass
class Waiting:
    """One audience's share of the queue."""

    count: int
    oldest: float
    max_seq: int


@dataclass
class FlushOutcome:
    """What one flush did, per audience: synced (done) or kept for a retry."""

    done: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def backlog_ages(due: dict[str, Waiting], outcome: FlushOutcome) -> dict[str, float]:
    """Per flushed audience, how old its oldest unsynced change is now (0 once synced)."""
    now = time.time()
    return {k: (now - w.oldest if k in outcome.kept else 0.0) for k, w in due.items()}


class Flusher:
    """A background thread with its own queue connection and Graph client; it leases the state file
    for each flush."""

    def __init__(
        self,
        config: Config,
        settings: ServeSettings,
        log: IngestLog,
        stats: QueueStats,
        metrics: Metrics,
        *,
        client: GraphClient | None = None,
        sync: SyncFn = pipeline.sync,
    ):
        self.config = config
        self.settings = settings
        self.log = log
        self.stats = stats
        self.metrics = metrics
        self.client = client or GraphClient(config.meta)
        self._own_client = client is None
        self._sync = sync
        self._audiences = stream_audiences(config)
        self._backoff: dict[str, tuple[float, float]] = {}
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="stream-flusher", daemon=True)
        self.last_error: str | None = None
        self.failed_in_a_row = 0
        self.flushing = False
        self.depth_by_audience: dict[str, int] = {}

    def start(self) -> Flusher:
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to finish (after the flush it is in, if any) and release the client."""
        with self.stats.cond:
            self._stop = True
            self.stats.cond.notify_all()
        self._thread.join(timeout)
        if self._own_client and not self._thread.is_alive():
            self.client.close()

    # -- the loop ------------------------------------------------------------------------------

    def _run(self) -> None:
        next_check = 0.0
        while True:
            with self.stats.cond:
                while not self._stop and not self.stats.wake and time.time() < next_check:
                    self.stats.cond.wait(max(0.0, next_check - time.time()))
                if self._stop:
                    return
                self.stats.wake = False
            try:
                next_check = self.step()
            except Exception as exc:
                self.last_error = f"flusher error: {type(exc).__name__}"
                log.exception("the stream flusher failed a step; it retries in %.0fs", BACKOFF_START)
                next_check = time.time() + BACKOFF_START

    def step(self) -> float:
        """Flush the due audiences, if any; return when to look again (a Unix time)."""
        waiting = self.waiting()
        now = time.time()
        due = self.due(waiting, now)
        if due:
            self.flush({k: waiting[k] for k in due})
            return time.time()
        return self._next_check(waiting, now)

    def waiting(self) -> dict[str, Waiting]:
        rows = self.log.waiting()
        found = {k: Waiting(int(n), float(oldest), int(seq)) for k, n, oldest, seq in rows}
        self.depth_by_audience = {k: w.count for k, w in found.items()}
        return found

    def due(self, waiting: dict[str, Waiting], now: float) -> list[str]:
        ready = {k: w for k, w in waiting.items() if self._backoff.get(k, (0.0, 0.0))[0] <= now}
        if sum(w.count for w in ready.values()) >= self.settings.flush_size:
            return sorted(ready)
        return sorted(k for k, w in ready.items() if now - w.oldest >= self.settings.flush_after)

    def _next_check(self, waiting: dict[str, Waiting], now: float) -> float:
        times = [
            max(w.oldest + self.settings.flush_after, self._backoff.get(k, (0.0, 0.0))[0]) for k, w in waiting.items()
        ]
        return min(times) if times else now + IDLE_WAIT

    # -- one flush -----------------------------------------------------------------------------

    def flush(self, due: dict[str, Waiting]) -> FlushOutcome:
        """Apply and sync the due audiences' waiting changes; delete those that were synced."""
        t0 = time.perf_counter()
        self.flushing = True
        outcome = FlushOutcome()
        try:
            with lease(self.config.state, door="serve (stream flush)", wait_s=FLUSH_WAIT_S, on_wait=log.info) as store:
                changes = self.log.read_upto({k: w.max_seq for k, w in due.items()})
                apply_changes(store, changes)
                configured = [k for k in due if k in self._audiences]
                for k in set(due) - set(configured):
                    log.warning("queued changes for %r, which is no longer a stream audience, were dropped", k)
                    outcome.done[k] = self._done(k, due[k])
                if configured:
                    self._sync_audiences(store, configured, due, outcome)
                alerts.backlog(self.config.alerts, store.con, backlog_ages(due, outcome))
        except Exception as exc:
            log.exception("a stream flush failed before its sync; its changes stay queued")
            for k, w in due.items():
                if k not in outcome.done:
                    outcome.kept[k] = w.count
                    outcome.errors.setdefault(k, f"flush failed: {type(exc).__name__}")
                    self._back_off(k, outcome.errors[k])
        finally:
            self.flushing = False
            took = time.perf_counter() - t0
            self.metrics.flushed(took, not outcome.kept)
            self.failed_in_a_row = self.failed_in_a_row + 1 if outcome.kept else 0
            self._refresh_stats()
            self._log_outcome(outcome, took)
        return outcome

    @staticmethod
    def _log_outcome(outcome: FlushOutcome, took: float) -> None:
        if outcome.done:
            synced = ", ".join(f"{k} {n:,}" for k, n in sorted(outcome.done.items()))
            log.info("flushed in %.2fs: synced %s", took, synced)
        if outcome.kept:
            kept = ", ".join(f"{k} {n:,} ({outcome.errors.get(k, 'failed')})" for k, n in sorted(outcome.kept.items()))
            log.warning("flush after %.2fs kept changes queued for a retry: %s", took, kept)

    def _sync_audiences(
        self, store: StateStore, keys: list[str], due: dict[str, Waiting], outcome: FlushOutcome
    ) -> None:
        try:
            report = self._sync(self.config, audiences=keys, include_stream=True, store=store, client=self.client)
            by_key: dict[str, AudienceReport] = {a.key: a for a in report.audiences}
        except Exception as exc:
            log.exception("the stream sync raised; its changes stay queued")
            by_key = {}
            reason = f"sync raised {type(exc).__name__}"
            outcome.errors.update({k: reason for k in keys})
        for k in keys:
            rep = by_key.get(k)
            ok = rep is not None and rep.status in ("ok", "waiting")
            self.metrics.audience_synced(k, rep.duration_s if rep is not None else 0.0, ok)
            if ok:
                outcome.done[k] = self._done(k, due[k])
                self.metrics.add("sent", k, due[k].count)
                for fb in rep.facebook:  # type: ignore[union-attr]
                    self.metrics.add("rows_added", k, fb.adds if fb.status == "ok" else 0)
                    self.metrics.add("rows_removed", k, fb.removes if fb.status == "ok" else 0)
                self._backoff.pop(k, None)
                continue
            reason = outcome.errors.get(k) or (rep.error if rep is not None and rep.error else "sync did not finish")
            outcome.errors[k] = reason
            outcome.kept[k] = due[k].count
            self.metrics.add("failed", k, due[k].count)
            self._back_off(k, reason)

    def _done(self, key: str, w: Waiting) -> int:
        self.stats.removed(self.log.delete_upto(key, w.max_seq))
        return w.count

    def _back_off(self, key: str, reason: str) -> None:
        _, last = self._backoff.get(key, (0.0, 0.0))
        delay = min(BACKOFF_MAX, last * 2 if last else BACKOFF_START)
        self._backoff[key] = (time.time() + delay, delay)
        self.last_error = f"{key}: {reason}"
        log.error("stream audience %s: %s; retrying in %.0fs", key, reason, delay)

    def _refresh_stats(self) -> None:
        """The oldest change is read under the stats lock: a commit cannot slip between read and set."""
        with self.stats.cond:
            self.stats.oldest = self.log.depth()[1]
            self.stats.retry_at = max((t for t, _ in self._backoff.values()), default=0.0)

    def status(self) -> dict[str, Any]:
        return {
            "alive": self.alive(),
            "flushing": self.flushing,
            "backing_off": sorted(k for k, (t, _) in self._backoff.items() if t > time.time()),
            "failed_flushes_in_a_row": self.failed_in_a_row,
            "last_error": self.last_error,
        }


def apply_changes(store: StateStore, changes: pa.Table) -> int:
    """Coalesce queued changes into `st.stream_members` and list their people as dirty, so the
    sync plans only them (`state/stream_members.py`); returns how many people were touched."""
    return stream_members.apply_changes(store.con, changes)
