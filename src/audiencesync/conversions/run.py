"""One conversions run: read → map → match keys → validate → skip what was sent → send → record → report.

The stages live in their own modules; this one wires them per chunk, so memory stays bounded by the
chunk size whatever the file size, and batches of a chunk are in flight (up to `meta.max_in_flight`)
while the next chunk is being mapped.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from audiencesync.config import Config
from audiencesync.conversions.build import EventBuilder, Head
from audiencesync.conversions.deliver import BatchOutcome, ConversionState, Sender, batches, interrupt_stale_runs
from audiencesync.conversions.queued import PreparedSource
from audiencesync.conversions.read import Chunk, Source
from audiencesync.conversions.report import ConversionReport, RejectsFile
from audiencesync.conversions.settings import ConversionsSettings, conversions_settings
from audiencesync.conversions.validate import check
from audiencesync.load.graph import GraphClient
from audiencesync.state.lease import DEFAULT_WAIT_S, lease

log = logging.getLogger(__name__)

Progress = Callable[[int], None]

INTERRUPTED = "stopped by Ctrl-C; what Facebook acknowledged is recorded, and the next run sends the rest"


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run after it recorded what Facebook had acknowledged.

    Still a KeyboardInterrupt, so a caller that stops on Ctrl-C still stops; it carries the run's
    report so the CLI can say what was sent without guessing.
    """

    def __init__(self, report: ConversionReport):
        super().__init__(f"interrupted after {report.sent} events were sent")
        self.report = report


def send(
    config: Config,
    source: Source | PreparedSource,
    *,
    settings: ConversionsSettings | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    client: GraphClient | None = None,
    clock: Callable[[], float] = time.time,
    on_ack: Callable[[int], None] | None = None,
    wait_s: float = DEFAULT_WAIT_S,
    on_wait: Callable[[str], None] | None = None,
    door: str = "conversions send",
) -> ConversionReport:
    """Forward the source's commerce events to the configured dataset; return what happened.

    The source is a file or query (`Source`: rows, built into events here) or events built earlier
    by the same code (`PreparedSource`: the commerce events `serve` queued); both go through the
    same ledger, validation, batching and delivery.

    The state file is leased for the run (`state/lease.py`): while `serve` or a sync holds it, the
    run waits up to `wait_s`, then raises `StateBusy`.

    `on_ack(n)` is called after each acknowledged batch is recorded, with the running total: the
    hook tests use to stop a run at an exact point. Ctrl-C raises `Interrupted` (a KeyboardInterrupt)
    once the acknowledged batches are recorded and the run is stored as `interrupted`.
    """
    settings = settings or conversions_settings(config)
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    report = ConversionReport(
        run_id=run_id,
        dataset_id=settings.dataset_id,
        source=source.name,
        dry_run=dry_run,
        test_event_code=settings.test_event_code,
    )
    started = time.monotonic()
    rejects = RejectsFile(settings.rejects_path(config.state, run_id))
    own_client = client is None and not dry_run
    if own_client:
        client = GraphClient(config.meta)
    stop = _Stop()
    try:
        with (
            _ctrl_c_stops(stop),
            lease(config.state, door=door, wait_s=wait_s, on_wait=on_wait) as store,
            _fewer_collections(),
        ):
            state = ConversionState(store, settings.dataset_key())
            interrupt_stale_runs(store)
            forgotten = state.forget_before(int(clock()) - (settings.window_days + 1) * 86400)
            if forgotten:
                log.info("forgot %d acknowledged events older than Facebook's window", forgotten)
            if not dry_run:
                state.start_run(run_id)
            run = _Run(settings, state, report, rejects, clock, progress, on_ack, run_id, stop)
            sender = None if dry_run or client is None else Sender(client, settings)
            try:
                run.all(source, sender, config.meta.max_in_flight)
            except BaseException as e:
                _stopped(report, e, stop)
                raise
            finally:
                report.duration_s = round(time.monotonic() - started, 3)
                report.rejects_file = rejects.written
                if client is not None:
                    report.retries = client.retries
                if not dry_run:
                    state.finish_run(run_id, report.status, report.to_dict())
    except BaseException as e:
        if not (stop.requested or isinstance(e, KeyboardInterrupt)):
            raise
        if report.status == "pending":  # stopped before the run began: nothing was sent
            _stopped(report, e, stop)
        raise Interrupted(report) from e
    finally:
        rejects.close()
        if own_client and client is not None:
            client.close()
    return report


def _stopped(report: ConversionReport, error: BaseException, stop: _Stop) -> None:
    """Ctrl-C is an interruption, not a failure, unless the run had already failed on its own. After a
    Ctrl-C, whatever error ends the run (DuckDB's "Query interrupted") is that interruption."""
    if (stop.requested or isinstance(error, KeyboardInterrupt)) and report.error is None:
        report.status = "interrupted"
        report.error = INTERRUPTED
        return
    report.status = "failed"
    report.error = report.error or f"interrupted: {type(error).__name__}"


@dataclass
class _Stop:
    """Set by the first Ctrl-C: the run takes no new batch, records the batches in flight, and ends
    `interrupted`.

    Why a flag and not the KeyboardInterrupt itself: it surfaces wherever the main thread is, and
    that is mostly inside DuckDB (reading the source, recording acknowledgements), which turns it
    into RuntimeError("Query interrupted"); or between recording a batch and counting it.
    """

    requested: bool = False


@contextmanager
def _ctrl_c_stops(stop: _Stop) -> Iterator[None]:
    """Make Ctrl-C request a stop for the block; a second Ctrl-C raises KeyboardInterrupt at once.

    Only Python's default handler in the main thread is replaced, so an application's own Ctrl-C
    handling is left alone.
    """
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return

    def request(signum: int, frame: object) -> None:
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = True

    signal.signal(signal.SIGINT, request)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """A chunk allocates ~10 small dicts per event, none in a cycle; with the default thresholds the
    cyclic collector rescans them all many times per chunk (about a third of the mapping time)."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], 100_000), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


class _Run:
    def __init__(
        self,
        settings: ConversionsSettings,
        state: ConversionState,
        report: ConversionReport,
        rejects: RejectsFile,
        clock: Callable[[], float],
        progress: Progress | None,
        on_ack: Callable[[int], None] | None,
        run_id: str,
        stop: _Stop,
    ):
        self.settings = settings
        self.state = state
        self.report = report
        self.rejects = rejects
        self.clock = clock
        self.progress = progress
        self.on_ack = on_ack
        self.run_id = run_id
        self.stop = stop
        self.builder = EventBuilder(settings, report, rejects, clock)
        self.window_days = settings.window_days
        self.rows_of: dict[str, int] = {}
        self.sending = False
        self.pending: set[Future[BatchOutcome]] = set()
        self.settled: set[str] | None = None
        """For a `PreparedSource`: the ids that need no more sending (acknowledged, known, refused)."""

    def _ready(self, source: Source | PreparedSource) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """(input size, events to send) per chunk of the source, whichever door it comes from."""
        if isinstance(source, PreparedSource):
            self.settled = source.settled
            for items in source.batches():
                yield len(items), self.prepare_built(items)
            return
        for chunk in source.chunks():
            yield len(chunk), self.prepare(chunk)

    def all(self, source: Source | PreparedSource, sender: Sender | None, max_in_flight: int) -> None:
        """Raises KeyboardInterrupt when a Ctrl-C stopped it, after recording what was acknowledged."""
        if sender is None:
            self._dry(source)
        else:
            self._send(source, sender, max_in_flight)
        if self.stop.requested:
            raise KeyboardInterrupt

    def _dry(self, source: Source | PreparedSource) -> None:
        for size, events in self._ready(source):
            if self.stop.requested:
                return
            self.report.sent += len(events)
            self._advance(size)
        self.report.status = "dry-run"

    def _send(self, source: Source | PreparedSource, sender: Sender, max_in_flight: int) -> None:
        report = self.report
        self.sending = True
        pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="capi")
        try:
            for size, events in self._ready(source):
                if self._stopping():
                    break
                for batch in batches(events, self.settings.batch_size):
                    while len(self.pending) >= max_in_flight * 2:
                        self._collect()
                    if self._stopping():
                        break
                    self.pending.add(pool.submit(sender.send, batch))
                if self._stopping():
                    break
                self._advance(size)
            while self.pending and not self.stop.requested:  # after Ctrl-C: cancel what has not started
                self._collect()
        finally:
            for f in self.pending:
                f.cancel()
            pool.shutdown(wait=True)
            self._salvage()
        report.status = "failed" if report.error else "ok"

    def _stopping(self) -> bool:
        """A fatal error or a Ctrl-C: send nothing more; batches in flight are still recorded."""
        return self.report.error is not None or self.stop.requested

    def _advance(self, n: int) -> None:
        if self.progress is not None:
            self.progress(n)

    def _collect(self) -> None:
        done, _ = wait(self.pending, return_when=FIRST_COMPLETED)
        for f in done:
            self.pending.discard(f)
            self._settle(f.result())

    def _salvage(self) -> None:
        """After an interruption, record the batches Facebook acknowledged while the run was stopping,
        so the next run does not send them again."""
        for f in list(self.pending):
            self.pending.discard(f)
            if f.cancelled() or f.exception() is not None:
                continue
            try:
                self._settle(f.result(), notify=False)
            except Exception as e:  # the run is already failing; the next run re-sends, Meta de-duplicates
                log.warning("could not record an acknowledged batch (%s)", type(e).__name__)

    def _settle(self, out: BatchOutcome, notify: bool = True) -> None:
        """Record the acknowledged part first: whatever happens next, it is never sent again."""
        report = self.report
        if out.acked:
            self.state.record(out.acked, self.run_id)
            report.sent += len(out.acked)
            report.batches += 1
        report.events_received += out.events_received
        report.requests += out.requests
        for event, reason in out.refused:
            report.reject(reason)
            self.rejects.write(self.rows_of.get(event["event_id"], ""), reason, event)
        for ev in out.acked:
            self.rows_of.pop(ev["event_id"], None)
        if self.settled is not None:
            self.settled.update(ev["event_id"] for ev in out.acked)
            self.settled.update(ev["event_id"] for ev, _ in out.refused)
        if out.error is not None and report.error is None:
            report.error = out.error.explain()
        if notify and out.acked and self.on_ack is not None:
            self.on_ack(report.sent)

    # -- one chunk: map, hash, validate, drop what was sent ------------------------------------

    def prepare(self, chunk: Chunk) -> list[dict[str, Any]]:
        """The chunk's events to send: mapped, hashed, valid, and neither sent before nor repeated."""
        self.report.read += len(chunk)
        heads = self._drop_known(self.builder.heads(chunk))
        if not heads:
            return []
        candidates = self.builder.build(chunk, heads)
        late = [eid for eid, (_, ev) in candidates.items() if "order_id" not in ev["custom_data"]]
        return self._unsent(candidates, late)

    def prepare_built(self, items: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Events built when they were accepted: checked again (time has passed since), then the ledger."""
        report = self.report
        report.read += len(items)
        now = self.clock()
        candidates: dict[str, tuple[int, dict[str, Any]]] = {}
        for row_no, event in items:
            eid = event["event_id"]
            reason = check(event, now=now, window_days=self.window_days)
            if reason is not None:
                report.reject(reason)
                self.rejects.write(row_no, reason, event)
                self._settled([eid])
            elif eid in candidates:
                report.skip("duplicate_in_input")
            else:
                candidates[eid] = (row_no, event)
        return self._unsent(candidates, list(candidates))

    def _settled(self, ids: list[str]) -> None:
        if self.settled is not None:
            self.settled.update(ids)

    def _drop_known(self, heads: list[Head]) -> list[Head]:
        """An event with an order id has its id before any hashing: a re-run skips it right here."""
        acked, seen = self.state.known([h.early_id for h in heads if h.early_id])
        if not acked and not seen:
            return heads
        kept = []
        for h in heads:
            if h.early_id in acked:
                self.report.skip("already_sent")
            elif h.early_id in seen:
                self.report.skip("duplicate_in_input")
            else:
                kept.append(h)
        return kept

    def _unsent(self, candidates: dict[str, tuple[int, dict[str, Any]]], lookup: list[str]) -> list[dict[str, Any]]:
        """Drop the candidates the ledger knows (of the ids in `lookup`) and mark the rest as taken."""
        report = self.report
        acked, seen = self.state.known(lookup)
        out = []
        for eid, (row_no, event) in candidates.items():
            if eid in acked:
                report.skip("already_sent")
                self._settled([eid])
            elif eid in seen:
                report.skip("duplicate_in_input")
            else:
                if self.sending:
                    self.rows_of[eid] = row_no
                out.append(event)
        self.state.take([e["event_id"] for e in out])
        return out
