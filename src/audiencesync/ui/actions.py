"""The dashboard's two buttons, "dry run" and "sync now": one audience through the one pipeline.

A dry run plans and reports without sending (and records nothing); a sync is the same run the CLI's
`sync --audience` makes. One run from the dashboard at a time; a second click while one runs is told
so. The report is shown as numbers and sentences, never a value.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any

from audiencesync.config import Config
from audiencesync.plan.planner import PlanError
from audiencesync.report import AudienceReport, FacebookReport
from audiencesync.state.lease import StateBusy

RUN_WAIT_S = 60.0
"""How long a button waits for the state file while another door holds it."""

AUDIENCE_NUMBERS = ("rows_read", "members", "changed", "removed_from_source", "normalized",
                    "rows_without_primary_key")  # fmt: skip
FACEBOOK_NUMBERS = ("adds", "removes", "members", "num_received", "num_invalid_entries", "rows_without_key")


class Busy(RuntimeError):
    """A run started from the dashboard is still going."""


@dataclass
class RunOutcome:
    audience_key: str
    dry_run: bool
    status: str
    error: str | None
    report: AudienceReport | None

    @property
    def numbers(self) -> dict[str, Any]:
        """The audience's counts: the known ones first, then any other number the report carries."""
        if self.report is None:
            return {}
        return _numbers(self.report, AUDIENCE_NUMBERS, skip={"duration_s"})

    @property
    def invalid(self) -> int:
        return sum(sum(r.values()) for r in (self.report.invalid if self.report else {}).values())

    def facebook(self) -> list[tuple[FacebookReport, dict[str, Any]]]:
        if self.report is None:
            return []
        return [(f, _numbers(f, FACEBOOK_NUMBERS, skip={"batches"})) for f in self.report.facebook]

    def as_dict(self) -> dict[str, Any]:
        return {
            "audience": self.audience_key,
            "dry_run": self.dry_run,
            "status": self.status,
            "error": self.error,
            "report": dataclasses.asdict(self.report) if self.report else None,
        }


def _numbers(obj: Any, known: tuple[str, ...], skip: set[str]) -> dict[str, Any]:
    values = dataclasses.asdict(obj)
    extra = [k for k, v in values.items() if isinstance(v, int) and not isinstance(v, bool) and k not in known]
    return {k: values[k] for k in (*known, *extra) if k in values and k not in skip and values[k] is not None}


class Runner:
    """Runs one audience at a time through `pipeline.sync`."""

    def __init__(self, config: Config):
        self.config = config
        self._lock = threading.Lock()

    def run(self, audience_key: str, *, dry_run: bool) -> RunOutcome:
        from audiencesync.pipeline import sync

        if not self._lock.acquire(blocking=False):
            raise Busy("a run started from the dashboard is still going; wait for it to finish")
        try:
            try:
                report = sync(self.config, audiences=[audience_key], dry_run=dry_run, door="dashboard",
                              wait_s=RUN_WAIT_S)  # fmt: skip
            except (PlanError, StateBusy) as e:
                return RunOutcome(audience_key, dry_run, "failed", str(e), None)
        finally:
            self._lock.release()
        if not report.audiences:
            return RunOutcome(audience_key, dry_run, "skipped", "nothing was run for this audience", None)
        a = report.audiences[0]
        return RunOutcome(audience_key, dry_run, a.status, a.error, a)
