"""The emulator's injectable clock.

Why: Facebook's rules are full of time windows (90-minute upload sessions,
7/62-day CAPI event windows, version expiry, hourly rate budgets). Tests must
cross those windows without sleeping, so every rule reads time from one
``Clock`` that runs with the wall clock but can be moved forward or set.
"""

from __future__ import annotations

import threading
import time


class Clock:
    """Wall-clock time plus an adjustable offset (seconds since the epoch, float)."""

    def __init__(self, now: float | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0 if now is None else now - time.time()

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._offset += seconds
        return self.now()

    def set(self, now: float) -> float:
        with self._lock:
            self._offset = now - time.time()
        return self.now()

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0

    @property
    def offset(self) -> float:
        return self._offset
