"""One conversions run: read → map → match keys → validate → skip what was sent → send → record → report.

The stages live in their own modules; this one wires them per chunk, so memory stays bounded by the
chunk size whatever the file size, and batches of a chunk are in flight (up to `meta.max_in_flight`)
while the next chunk is being mapped.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from audiencesync.config import Config
from audiencesync.conversions.deliver import BatchOutcome, ConversionState, Sender, batches
from audiencesync.conversions.mapping import EventMapper, Reject, Skip, event_id
from audiencesync.conversions.read import Chunk, Source
from audiencesync.conversions.report import ConversionReport, RejectsFile
from audiencesync.conversions.settings import ConversionsSettings, action_key, conversions_settings
from audiencesync.conversions.userdata import build_user_data
from audiencesync.conversions.validate import check
from audiencesync.load.graph import GraphClient
from audiencesync.state import StateStore

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


def send(
    config: Config,
    source: Source,
    *,
    settings: ConversionsSettings | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    client: GraphClient | None = None,
    clock: Callable[[], float] = time.time,
    on_ack: Callable[[int], None] | None = None,
) -> ConversionReport:
    """Forward the source's commerce events to the configured dataset; return what happened.

    `on_ack(n)` is called after each acknowledged batch is recorded, with the running total: the
    hook tests use to stop a run at an exact point.
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
    try:
        with StateStore(config.state) as store:
            state = ConversionState(store, settings.dataset_key())
            forgotten = state.forget_before(int(clock()) - (settings.window_days + 1) * 86400)
            if forgotten:
                log.info("forgot %d acknowledged events older than Facebook's window", forgotten)
            if not dry_run:
                state.start_run(run_id)
            run = _Run(settings, state, report, rejects, clock, progress, on_ack, run_id)
            try:
                run.all(source, None if dry_run else Sender(client, settings), config.meta.max_in_flight)  # type: ignore[arg-type]
            except BaseException as e:
                report.status = "failed"
                report.error = report.error or f"interrupted: {type(e).__name__}"
                raise
            finally:
                report.duration_s = round(time.monotonic() - started, 3)
                report.rejects_file = rejects.written
                if client is not None:
                    report.retries = client.retries
                if not dry_run:
                    state.finish_run(run_id, report.status, report.to_dict())
    finally:
        rejects.close()
        if own_client and client is not None:
            client.close()
    return report


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
    ):
        self.settings = settings
        self.state = state
        self.report = report
        self.rejects = rejects
        self.clock = clock
        self.progress = progress
        self.on_ack = on_ack
        self.run_id = run_id
        self.mapper = EventMapper(settings)
        self.window_days = settings.window_days
        self.rows_of: dict[str, int] = {}
        self.sending = False
        self.pending: set[Future[BatchOutcome]] = set()

    def all(self, source: Source, sender: Sender | None, max_in_flight: int) -> None:
        report = self.report
        if sender is None:
            for chunk in source.chunks():
                report.sent += len(self.prepare(chunk))
                self._advance(len(chunk))
            report.status = "dry-run"
            return
        self.sending = True
        pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="capi")
        try:
            for chunk in source.chunks():
                events = self.prepare(chunk)
                for batch in batches(events, self.settings.batch_size):
                    while len(self.pending) >= max_in_flight * 2:
                        self._collect()
                    if report.error:
                        break
                    self.pending.add(pool.submit(sender.send, batch))
                if report.error:
                    break
                self._advance(len(chunk))
            while self.pending:
                self._collect()
        finally:
            for f in self.pending:
                f.cancel()
            pool.shutdown(wait=True)
            self._salvage()
        report.status = "failed" if report.error else "ok"

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
        if out.error is not None and report.error is None:
            report.error = out.error.explain()
        if notify and out.acked and self.on_ack is not None:
            self.on_ack(report.sent)

    # -- one chunk: map, hash, validate, drop what was sent ------------------------------------

    def prepare(self, chunk: Chunk) -> list[dict[str, Any]]:
        report = self.report
        report.read += len(chunk)
        now = self.clock()
        cols = chunk.columns
        names = list(cols)
        actions = cols.get("product_action") or [None] * len(chunk)
        built: list[tuple[int, int, dict[str, Any]]] = []
        for i, (row_no, values) in enumerate(zip(chunk.rows, zip(*cols.values(), strict=True), strict=True)):
            row = dict(zip(names, values, strict=True))
            try:
                built.append((i, row_no, self.mapper.event(row)))
            except Skip as s:
                report.skip(s.reason)
            except Reject as r:
                report.reject(r.reason)
                self.rejects.write(row_no, r.reason, None, _action(row), row.get("order_id"))
        if not built:
            return []
        user = build_user_data(cols, len(chunk), self.settings)
        report.count_keys(user.found, user.invalid)
        candidates: dict[str, tuple[int, dict[str, Any]]] = {}
        for i, row_no, event in built:
            ud = user.rows[i]
            if ud:
                event["user_data"] = ud
            ldu = user.ldu[i]
            reason = check(event, now=now, window_days=self.window_days)
            if reason is not None:
                report.reject(reason)
                self.rejects.write(row_no, reason, event, _action({"product_action": actions[i]}))
                continue
            if ldu:
                event.update(ldu)
                report.ldu += 1
            eid = event_id(event)
            event["event_id"] = eid
            if eid in candidates:
                report.skip("duplicate_in_input")
                continue
            candidates[eid] = (row_no, event)
        fresh, acked, repeated = self.state.fresh(list(candidates))
        if acked:
            report.skip("already_sent", acked)
        if repeated:
            report.skip("duplicate_in_input", repeated)
        out = []
        for eid, (row_no, event) in candidates.items():
            if eid in fresh:
                if self.sending:
                    self.rows_of[eid] = row_no
                out.append(event)
        return out


def _action(row: dict[str, Any]) -> str | None:
    action = row.get("product_action")
    return None if action is None else action_key(action)[:40]
