"""The scheduler door: each audience syncs on its own `schedule`, through the same pipeline.

It runs in `audiencesync run` and inside `audiencesync serve`. Nothing a sync meets stops it: a
failed audience (a bad token, an outage past the retries, a state file in use for too long) is
logged, counted for `/health` and `/metrics`, and tried again after a back-off that never exceeds
its own schedule, while the other audiences keep their times.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import croniter

from audiencesync.config import AudienceSettings, Config, parse_duration
from audiencesync.report import RunReport

log = logging.getLogger(__name__)

RETRY_START_S = 30.0
HEALTH_CHECK_S = 60.0
"""How often the scheduler looks for Facebook audiences whose health read is due (`health.read_every`)."""
HEALTH_WAIT_S = 5.0
"""A health read is no one's urgent work: it gives the state file up to a busier door and comes back."""
SCHEDULER_WAIT_S = 120.0
"""How long a scheduled sync waits for the state file before it counts as a conflict."""


def next_due(audience: AudienceSettings, after: float) -> float | None:
    """Unix time of the audience's next run after `after`; None when it has no schedule."""
    if not audience.schedule:
        return None
    every = parse_duration(audience.schedule)
    if every is not None:
        return after + every
    return croniter(audience.schedule, datetime.fromtimestamp(after, UTC)).get_next(float)


def due_now(config: Config, last: dict[str, float], now: float) -> list[str]:
    """Audiences whose next run (after their last one, or after start-up) has come."""
    due = []
    for a in config.audiences:
        when = next_due(a, last.setdefault(a.key, now if a.schedule and parse_duration(a.schedule) is None else 0.0))
        if when is not None and when <= now:
            due.append(a.key)
    return due


@dataclass
class AudienceRuns:
    """What `/health` and `/metrics` say about one scheduled audience."""

    runs: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_success: float | None = None
    last_duration_s: float = 0.0
    last_error: str | None = None
    retry_at: float = 0.0


SyncFn = Callable[..., RunReport]


class Scheduler:
    def __init__(
        self,
        config: Config,
        *,
        sync: SyncFn | None = None,
        on_report: Callable[[RunReport], None] | None = None,
        wait_s: float = SCHEDULER_WAIT_S,
    ):
        from audiencesync.pipeline import sync as pipeline_sync

        self.config = config
        self._sync = sync or pipeline_sync
        self.on_report = on_report or (lambda report: None)
        self.wait_s = wait_s
        self.last: dict[str, float] = {}
        self.state: dict[str, AudienceRuns] = {a.key: AudienceRuns() for a in config.audiences if a.schedule}
        self._stop = threading.Event()
        self._health_next = 0.0
        self.health_reads = 0

    @property
    def audiences(self) -> list[str]:
        return sorted(self.state)

    def tick(self, now: float | None = None) -> None:
        """Run every audience that is due (and not backing off), one after the other."""
        now = time.time() if now is None else now
        due = set(due_now(self.config, self.last, now))
        retry = {k for k, r in self.state.items() if r.consecutive_failures and r.retry_at <= now}
        for key in sorted(due | retry):
            self._run_one(key, self.state[key])
        if now >= self._health_next:
            self._health_next = now + HEALTH_CHECK_S
            self.read_health()

    def read_health(self) -> int:
        """Read back every managed audience whose last read is older than `health.read_every`, even
        when no sync of it is due: Facebook's side changes with nobody touching ours. Kept as history
        (and seen by the alerts). Never raises; how many were read."""
        from audiencesync.load.graph import GraphClient
        from audiencesync.pipeline import due_for_read, read_health_due
        from audiencesync.state.lease import StateBusy, lease

        try:
            with lease(self.config.state, door="scheduler (health)", wait_s=min(self.wait_s, HEALTH_WAIT_S)) as store:
                if not due_for_read(self.config, store):
                    return 0
                with GraphClient(self.config.meta) as client:
                    read = read_health_due(self.config, store, client)
        except StateBusy:
            log.info("the scheduled health read waits: the state file is in use; tried again in %.0fs", HEALTH_CHECK_S)
            return 0
        except Exception:  # like a sync, a failed read must not stop the scheduler
            log.exception("the scheduled health read failed; it is tried again in %.0fs", HEALTH_CHECK_S)
            return 0
        self.health_reads += read
        return read

    def run_now(self, key: str) -> None:
        self._run_one(key, self.state[key])

    def _run_one(self, key: str, runs: AudienceRuns) -> None:
        started = time.time()
        runs.runs += 1
        error: str | None
        try:
            report = self._sync(self.config, audiences=[key], door="scheduler", wait_s=self.wait_s, on_wait=log.info)
            self.on_report(report)
            bad = [a for a in report.audiences if a.status not in ("ok", "waiting")]
            error = f"{bad[0].status}: {bad[0].error}" if bad else None
        except Exception as exc:  # a scheduler that dies stops every audience: log and go on
            log.exception("scheduled sync of %s raised", key)
            error = f"{type(exc).__name__}: {exc}"
        runs.last_duration_s = time.time() - started
        self.last[key] = started
        if error is None:
            runs.consecutive_failures, runs.last_error, runs.retry_at = 0, None, 0.0
            runs.last_success = time.time()
            return
        runs.failures += 1
        runs.consecutive_failures += 1
        runs.last_error = error
        runs.retry_at = time.time() + self._backoff(key, runs.consecutive_failures)
        log.error("scheduled sync of %s failed (%d in a row): %s", key, runs.consecutive_failures, error)

    def _interval(self, key: str, at: float) -> float:
        a = self.config.audience(key)
        when = next_due(a, at)
        return max(1.0, (when or at) - at)

    def _backoff(self, key: str, failures: int) -> float:
        """Sooner than the schedule while the cause may be passing, never later than it."""
        interval = self._interval(key, time.time())
        return min(interval, RETRY_START_S * 2 ** (failures - 1))

    def run_forever(self, *, tick_s: float = 1.0, max_ticks: int | None = None) -> None:
        ticks = 0
        while not self._stop.is_set() and (max_ticks is None or ticks < max_ticks):
            self.tick()
            ticks += 1
            self._stop.wait(tick_s)

    def stop(self) -> None:
        self._stop.set()

    def degraded(self, after: int = 3) -> list[str]:
        """Scheduled audiences that failed `after` times in a row."""
        return sorted(k for k, r in self.state.items() if r.consecutive_failures >= after)


def run_forever(config: Config, console: object, *, max_cycles: int | None = None, tick_s: float = 1.0) -> None:
    """`audiencesync run`: the scheduler in the foreground, printing each run's report."""
    from rich.console import Console

    from audiencesync.report import render

    out = console if isinstance(console, Console) else Console()
    scheduler = Scheduler(config, on_report=lambda report: render(report, out))
    if not scheduler.audiences:
        out.print("[yellow]no audience has a `schedule`: nothing to run[/yellow]")
        return
    scheduler.run_forever(tick_s=tick_s, max_ticks=max_cycles)
