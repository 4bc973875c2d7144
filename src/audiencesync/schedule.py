"""The scheduler door: each audience syncs on its own `schedule`, through the same pipeline."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from croniter import croniter
from rich.console import Console

from audiencesync.config import AudienceSettings, Config, parse_duration

log = logging.getLogger(__name__)


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


def run_forever(config: Config, console: Console, *, max_cycles: int | None = None, tick_s: float = 1.0) -> None:
    from audiencesync.pipeline import sync
    from audiencesync.report import render

    if not any(a.schedule for a in config.audiences):
        console.print("[yellow]no audience has a `schedule`: nothing to run[/yellow]")
        return
    last: dict[str, float] = {}
    cycles = 0
    while max_cycles is None or cycles < max_cycles:
        now = time.time()
        for key in due_now(config, last, now):
            report = sync(config, audiences=[key])
            last[key] = now
            render(report, console)
            cycles += 1
        time.sleep(tick_s)
