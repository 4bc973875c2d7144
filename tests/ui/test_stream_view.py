"""The Stream page lists every recent flush, including those that happened while nobody looked."""

from __future__ import annotations

from typing import Any

from audiencesync.stream.metrics import RECENT_FLUSHES, Metrics
from audiencesync.ui.stream import StreamView


class _Runtime:
    """The two things `StreamView` reads of a running `serve`: its metrics and its health."""

    def __init__(self) -> None:
        self.metrics = Metrics()

    def health(self) -> dict[str, Any]:
        keys = ("status", "degraded", "queue_depth", "oldest_change_age_seconds", "flusher")
        return {**dict.fromkeys(keys), "stream_audiences": [], "scheduled": {}}


def test_flushes_between_two_reads_all_show_with_their_outcome():
    rt = _Runtime()
    view = StreamView(rt)
    assert view.snapshot()["flush_durations"] == []
    for seconds, ok in ((0.4, True), (1.2, False), (0.5, True)):
        rt.metrics.flushed(seconds, ok)
    shown = view.snapshot()["flush_durations"]
    assert [(f["seconds"], f["ok"]) for f in shown] == [(0.4, True), (1.2, False), (0.5, True)]


def test_only_the_latest_flushes_are_kept():
    rt = _Runtime()
    for i in range(RECENT_FLUSHES + 5):
        rt.metrics.flushed(float(i), True)
    shown = StreamView(rt).snapshot()["flush_durations"]
    assert len(shown) == RECENT_FLUSHES and shown[0]["seconds"] == 5.0
