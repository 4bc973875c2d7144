"""Everything a running server holds, built from the config and started/stopped as one.

Each thread gets its own handle on the state file (DuckDB connections are per thread): the queue
writer one, the flusher another. HTTP handlers never touch DuckDB; they talk to the writer.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from audiencesync.config import Config
from audiencesync.load.graph import GraphClient
from audiencesync.state.store import StateStore
from audiencesync.stream.flusher import Flusher, SyncFn
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
        if not self.audiences:
            log.warning("no audience has `source: stream`; membership calls will be refused")
        self.metrics = Metrics()
        self.parser = Parser(self.audiences, self.settings)
        self.store = StateStore(config.state)
        create_tables(self.store)
        self.stats = QueueStats(flush_size=self.settings.flush_size)
        self.stats.load(self.store)
        self.writer = QueueWriter(
            StateStore.sharing(self.store),
            self.stats,
            max_queue=self.settings.max_queue,
            flush_after=self.settings.flush_after,
            retry_max=self.settings.retry_after_max,
        )
        extra: dict[str, Any] = {"sync": sync} if sync is not None else {}
        self.flusher = Flusher(
            config, self.settings, StateStore.sharing(self.store), self.stats, self.metrics, client=client, **extra
        )
        self.started = False

    def start(self) -> StreamRuntime:
        if not self.started:
            self.writer.start()
            self.flusher.start()
            self.started = True
            if self.stats.pending:
                log.warning("%d changes accepted before a restart are being flushed", self.stats.pending)
        return self

    def stop(self) -> None:
        """Stop taking changes, let the flusher finish its flush, and close the state file."""
        if self.started:
            self.writer.stop()
            self.flusher.stop()
            self.started = False
        for handle in (self.writer.store, self.flusher.store, self.store):
            with contextlib.suppress(Exception):  # already closed, or closing after a failed start
                handle.close()

    def healthy(self) -> bool:
        return self.started and self.writer.alive() and self.flusher.alive()

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy() else "unavailable",
            "queue_depth": self.stats.pending,
            "oldest_change_age_seconds": round(self.stats.oldest_age(), 3),
            "flusher": self.flusher.status(),
            "stream_audiences": sorted(self.audiences),
            "now": time.time(),
        }

    def render_metrics(self) -> str:
        return self.metrics.render(self.stats.pending, self.stats.oldest_age(), dict(self.flusher.depth_by_audience))
