"""Everything a running server holds, built from the config and started/stopped as one.

HTTP handlers never touch the state file; they talk to the queue writer, which appends to the
ingest log. The flusher and the scheduler (audiences with a `schedule`, so one process is all a
deployment needs) lease the state file for each flush or sync, so CLI commands get their turn.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from audiencesync.config import Config
from audiencesync.load.graph import GraphClient
from audiencesync.report import RunReport
from audiencesync.schedule import Scheduler
from audiencesync.state.ingest import IngestLog, queue_path
from audiencesync.state.lease import lease
from audiencesync.stream.commerce import CommerceDoor
from audiencesync.stream.flusher import DEGRADED_AFTER, Flusher, SyncFn
from audiencesync.stream.members import COLUMNS
from audiencesync.stream.metrics import Metrics
from audiencesync.stream.payloads import Parser
from audiencesync.stream.queue import QueueStats, QueueWriter, create_tables
from audiencesync.stream.settings import ServeSettings, serve_settings, stream_audiences

log = logging.getLogger(__name__)


class StreamRuntime:
    """The queue writer, the flusher, the parser and the metrics of one server."""

    def __init__(
        self,
        config: Config,
        settings: ServeSettings | None = None,
        *,
        client: GraphClient | None = None,
        sync: SyncFn | None = None,
    ):
        self.config = config
        self.settings = settings or serve_settings(config)
        self.audiences = stream_audiences(config)
        self.metrics = Metrics()
        self.log = IngestLog(queue_path(config.state), COLUMNS)
        forward = config.conversions if config.conversions is not None and config.conversions.stream else None
        if not self.audiences:
            log.warning(
                "no audience has `source: stream`: no membership call will change an audience%s",
                "" if forward else ", and commerce events are not forwarded (`conversions.stream` is off)",
            )
        self.commerce = (
            CommerceDoor(config, forward, self.log, self.metrics, every=self.settings.flush_after, client=client)
            if forward is not None
            else None
        )
        self.parser = Parser(self.audiences, self.settings, commerce=self.commerce is not None)
        with lease(config.state, door="serve (start-up)", on_wait=log.warning) as store:
            create_tables(store, self.log)
        self.stats = QueueStats(flush_size=self.settings.flush_size)
        self.stats.load(self.log)
        self.writer = QueueWriter(
            self.log,
            self.stats,
            max_queue=self.settings.max_queue,
            flush_after=self.settings.flush_after,
            retry_max=self.settings.retry_after_max,
        )
        extra: dict[str, Any] = {"sync": sync} if sync is not None else {}
        self.flusher = Flusher(config, self.settings, self.log, self.stats, self.metrics, client=client, **extra)
        self.scheduler = Scheduler(config, on_report=self._scheduled)
        self._scheduling = threading.Thread(target=self.scheduler.run_forever, name="scheduler", daemon=True)
        self.started = False

    def _scheduled(self, report: RunReport) -> None:
        for a in report.audiences:
            self.metrics.audience_synced(a.key, a.duration_s, a.status in ("ok", "waiting"))

    def start(self) -> StreamRuntime:
        if not self.started:
            self.writer.start()
            self.flusher.start()
            if self.commerce is not None:
                self.commerce.start()
            self._scheduling.start()  # with no `schedule` anywhere it still reads audience health daily
            if self.scheduler.audiences:
                log.info("scheduled audiences: %s", ", ".join(self.scheduler.audiences))
            self.started = True
            if self.stats.pending:
                log.warning("%d changes accepted before a restart are being flushed", self.stats.pending)
        return self

    def stop(self) -> None:
        """Stop taking changes, let the flusher finish its flush, and close the state file."""
        if self.started:
            self.scheduler.stop()
            self.writer.stop()
            self.flusher.stop()
            if self.commerce is not None:
                self.commerce.stop()
            if self._scheduling.is_alive():
                self._scheduling.join(30)
            self.started = False
        with contextlib.suppress(Exception):  # already closed, or closing after a failed start
            self.log.close()

    def healthy(self) -> bool:
        return self.started and self.writer.alive() and self.flusher.alive()

    def degraded(self) -> list[str]:
        """What keeps failing: the flusher (`DEGRADED_AFTER` flushes in a row) and scheduled audiences."""
        found = [f"scheduled sync of {k}" for k in self.scheduler.degraded(DEGRADED_AFTER)]
        if self.flusher.failed_in_a_row >= DEGRADED_AFTER:
            found.insert(0, f"stream flushes ({self.flusher.failed_in_a_row} failed in a row)")
        if self.commerce is not None and self.commerce.failed_in_a_row >= DEGRADED_AFTER:
            found.append(f"commerce deliveries ({self.commerce.failed_in_a_row} failed in a row)")
        return found

    def status(self) -> str:
        if not self.healthy():
            return "unavailable"
        return "degraded" if self.degraded() else "ok"

    def health(self) -> dict[str, Any]:
        return {
            "status": self.status(),
            "degraded": self.degraded(),
            "scheduled": {
                k: {
                    "last_success": r.last_success,
                    "failures_in_a_row": r.consecutive_failures,
                    "last_error": r.last_error,
                }
                for k, r in self.scheduler.state.items()
            },
            "queue_depth": self.stats.pending,
            "oldest_change_age_seconds": round(self.stats.oldest_age(), 3),
            "flusher": self.flusher.status(),
            "stream_audiences": sorted(self.audiences),
            **({"commerce": self.commerce.status()} if self.commerce is not None else {}),
            "now": time.time(),
        }

    def render_metrics(self) -> str:
        commerce = self.log.commerce_depth()[0] if self.commerce is not None else 0
        return self.metrics.render(
            self.stats.pending, self.stats.oldest_age(), dict(self.flusher.depth_by_audience), commerce_depth=commerce
        )
