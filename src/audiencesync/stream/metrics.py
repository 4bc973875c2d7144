"""The server's counters and gauges, rendered in Prometheus' text exposition format.

Labels are audience keys, reasons and Meta key names only: a metric never carries a person's value.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

RECENT_FLUSHES = 50


@dataclass
class Metrics:
    """Thread-safe counters; gauges (queue depth, oldest age) are read live when rendered."""

    accepted: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    invalid_values: Counter[tuple[str, str]] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    rows_added: Counter[str] = field(default_factory=Counter)
    rows_removed: Counter[str] = field(default_factory=Counter)
    flushes: Counter[str] = field(default_factory=Counter)
    skipped_calls: Counter[str] = field(default_factory=Counter)
    commerce_received: int = 0
    commerce_queued: int = 0
    commerce_forwarded: int = 0
    commerce_skipped: Counter[str] = field(default_factory=Counter)
    commerce_rejected: Counter[str] = field(default_factory=Counter)
    last_flush_seconds: float = 0.0
    recent_flushes: deque[tuple[float, float, bool]] = field(default_factory=lambda: deque(maxlen=RECENT_FLUSHES))
    """(finished at, seconds, ok) of the latest flushes, for the dashboard's Stream page."""
    last_success: float | None = None
    audience_last_success: dict[str, float] = field(default_factory=dict)
    audience_failures: Counter[str] = field(default_factory=Counter)
    audience_sync_seconds: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, counter: str, label: str | tuple[str, str], n: int = 1) -> None:
        with self._lock:
            getattr(self, counter)[label] += n

    def commerce(self, n: int) -> None:
        """Commerce events received, forwarded or not."""
        with self._lock:
            self.commerce_received += n

    def commerce_accepted(self, queued: int, skipped: dict[str, int], rejected: dict[str, int]) -> None:
        """What accepting built: events queued, and those not queued, by reason."""
        with self._lock:
            self.commerce_queued += queued
            self.commerce_skipped.update(skipped)
            self.commerce_rejected.update(rejected)

    def commerce_delivered(self, sent: int, skipped: dict[str, int], rejected: dict[str, int]) -> None:
        """A delivery: events Facebook acknowledged, skipped (e.g. `already_sent`) and rejected, by reason."""
        with self._lock:
            self.commerce_forwarded += sent
            self.commerce_skipped.update(skipped)
            self.commerce_rejected.update(rejected)

    def flushed(self, seconds: float, ok: bool) -> None:
        with self._lock:
            self.last_flush_seconds = seconds
            self.recent_flushes.append((time.time(), seconds, ok))
            self.flushes["ok" if ok else "failed"] += 1
            if ok:
                self.last_success = time.time()

    def audience_synced(self, key: str, seconds: float, ok: bool) -> None:
        """One audience's sync, by the flusher or the scheduler."""
        with self._lock:
            self.audience_sync_seconds[key] = seconds
            if ok:
                self.audience_last_success[key] = time.time()
            else:
                self.audience_failures[key] += 1

    def render(self, depth: int, oldest_age: float, depth_by_audience: dict[str, int], commerce_depth: int = 0) -> str:
        with self._lock:
            lines: list[str] = []
            _family(lines, "queue_depth", "gauge", "Accepted changes not yet synced to Facebook.", {(): depth})
            _family(
                lines,
                "queue_depth_by_audience",
                "gauge",
                "Accepted changes not yet synced, per audience.",
                {(("audience", k),): v for k, v in depth_by_audience.items()},
            )
            _family(lines, "oldest_change_age_seconds", "gauge", "Age of the oldest unsynced change.", {(): oldest_age})
            _family(lines, "accepted_total", "counter", "Membership changes accepted (answered 200).",
                    _by("audience", self.accepted))  # fmt: skip
            _family(lines, "rejected_total", "counter", "Requests refused, by reason.", _by("reason", self.rejected))
            _family(
                lines,
                "invalid_values_total",
                "counter",
                "Trait values dropped as invalid for their key, by key and reason.",
                {(("key", k), ("reason", r)): v for (k, r), v in self.invalid_values.items()},
            )
            _family(lines, "sent_total", "counter", "Changes synced to Facebook (after coalescing), per audience.",
                    _by("audience", self.sent))  # fmt: skip
            _family(lines, "failed_total", "counter", "Changes whose sync failed (kept and retried), per audience.",
                    _by("audience", self.failed))  # fmt: skip
            _family(lines, "facebook_rows_added_total", "counter", "Rows added to Facebook audiences.",
                    _by("audience", self.rows_added))  # fmt: skip
            _family(lines, "facebook_rows_removed_total", "counter", "Rows removed from Facebook audiences.",
                    _by("audience", self.rows_removed))  # fmt: skip
            _family(lines, "flushes_total", "counter", "Flushes, by outcome.", _by("outcome", self.flushes))
            _family(lines, "last_flush_duration_seconds", "gauge", "How long the last flush took.",
                    {(): self.last_flush_seconds})  # fmt: skip
            _family(lines, "skipped_calls_total", "counter",
                    "Calls accepted without a membership or commerce event to use, by reason.",
                    _by("reason", self.skipped_calls))  # fmt: skip
            _family(lines, "commerce_events_received_total", "counter",
                    "Commerce events received (mParticle commerce events, Segment e-commerce tracks).",
                    {(): self.commerce_received})  # fmt: skip
            _family(lines, "commerce_events_queued_total", "counter",
                    "Commerce events built and queued durably for the Conversions API.",
                    {(): self.commerce_queued})  # fmt: skip
            _family(lines, "commerce_events_forwarded_total", "counter",
                    "Commerce events the Conversions API acknowledged.", {(): self.commerce_forwarded})  # fmt: skip
            _family(lines, "commerce_events_skipped_total", "counter",
                    "Commerce events not forwarded on purpose, by reason (e.g. commerce_not_forwarded, action:refund).",
                    _by("reason", self.commerce_skipped))  # fmt: skip
            _family(lines, "commerce_events_rejected_total", "counter",
                    "Commerce events refused as invalid, by reason (locally or by Facebook).",
                    _by("reason", self.commerce_rejected))  # fmt: skip
            _family(lines, "commerce_queue_depth", "gauge", "Commerce events queued, not yet acknowledged.",
                    {(): commerce_depth})  # fmt: skip
            _family(lines, "audience_last_success_timestamp_seconds", "gauge",
                    "Unix time of each audience's last successful sync (stream or scheduled).",
                    {(("audience", k),): v for k, v in self.audience_last_success.items()})  # fmt: skip
            _family(lines, "audience_sync_failures_total", "counter", "Failed syncs, per audience.",
                    _by("audience", self.audience_failures))  # fmt: skip
            _family(lines, "audience_last_sync_duration_seconds", "gauge", "How long each audience's last sync took.",
                    {(("audience", k),): v for k, v in self.audience_sync_seconds.items()})  # fmt: skip
            if self.last_success is not None:
                _family(lines, "last_successful_flush_timestamp_seconds", "gauge",
                        "Unix time of the last flush that synced.", {(): self.last_success})  # fmt: skip
            return "\n".join(lines) + "\n"


PREFIX = "audiencesync_stream_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _by(label: str, counter: Counter[str]) -> dict[tuple[tuple[str, str], ...], float]:
    return {((label, k),): v for k, v in counter.items()}


def _family(
    lines: list[str], name: str, kind: str, help_text: str, samples: dict[tuple[tuple[str, str], ...], float]
) -> None:
    full = PREFIX + name
    lines.append(f"# HELP {full} {help_text}")
    lines.append(f"# TYPE {full} {kind}")
    for labels, value in sorted(samples.items()):
        text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
        lines.append(f"{full}{{{text}}} {_number(value)}" if text else f"{full} {_number(value)}")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
