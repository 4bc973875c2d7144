"""The Stream page's numbers, from the running server (`serve`): queue, rates, flushes, refusals.

The server's counters are totals; this keeps a few minutes of samples of them (taken whenever the
page or its JSON is read) to turn them into changes per minute. Recent flush durations are the
server's own (`Metrics.recent_flushes`), so every flush shows, seen or not.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

WINDOW_S = 300.0


class StreamView:
    """Reads a `StreamRuntime`; None under `audiencesync ui`, which has no stream."""

    def __init__(self, runtime: Any | None):
        self.runtime = runtime
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, Any] | None:
        rt = self.runtime
        if rt is None:
            return None
        m = rt.metrics
        now = time.time()
        with m._lock:
            accepted = sum(m.accepted.values())
            rejected = dict(m.rejected)
            flushes = dict(m.flushes)
            last_flush = m.last_flush_seconds
            last_success = m.last_success
            started = m.started
            invalid = {f"{k} {r.replace('_', ' ')}": n for (k, r), n in m.invalid_values.items()}
            syncs = {k: round(v, 3) for k, v in sorted(m.audience_sync_seconds.items())}
            recent = list(m.recent_flushes)
        with self._lock:
            self._samples.append((now, accepted))
            while self._samples and now - self._samples[0][0] > WINDOW_S:
                self._samples.popleft()
            first_t, first_n = self._samples[0]
        span = now - first_t
        per_min = (accepted - first_n) / span * 60 if span >= 5 else (accepted / max(now - started, 1e-9)) * 60
        health = rt.health()
        return {
            "status": health["status"],
            "degraded": health["degraded"],
            "queue_depth": health["queue_depth"],
            "oldest_change_age_seconds": health["oldest_change_age_seconds"],
            "accepted_total": accepted,
            "changes_per_minute": round(per_min, 1),
            "rate_window_seconds": round(span if span >= 5 else now - started, 1),
            "flushes": flushes,
            "last_flush_seconds": round(last_flush, 3),
            "last_successful_flush": last_success,
            "flush_durations": [{"at": t, "seconds": round(s, 3), "ok": ok} for t, s, ok in recent],
            "last_sync_seconds": syncs,
            "refused_by_reason": dict(sorted(rejected.items(), key=lambda kv: -kv[1])),
            "invalid_values": dict(sorted(invalid.items(), key=lambda kv: -kv[1])),
            "flusher": health["flusher"],
            "stream_audiences": health["stream_audiences"],
            "scheduled": health["scheduled"],
        }
