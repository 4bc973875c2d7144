"""What each page shows, read from the state file under a short lease and shaped for the templates.

The lease is held only for the reads (`state/dashboard.py`), and with a short wait: when a sync
holds the state file longer than that, the page shows the last reading with a line saying who holds
it, rather than keeping the browser (or the sync) waiting. Key coverage, the one read that scans the
rows, is kept until a run or a health read changes the state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from audiencesync.config import AudienceSettings, Config
from audiencesync.load.health import FLAGGED, LOW_MATCH_RATE, Health
from audiencesync.state import dashboard as reads
from audiencesync.state.lease import StateBusy, current_holder, lease
from audiencesync.state.store import StateStore
from audiencesync.ui.insights import invalid_totals, suggestions

T = TypeVar("T")

READ_WAIT_S = 3.0
"""How long a page waits for the state file before showing its last reading."""

OPERATION_NAMES = {
    0: "not available", 100: "expiring", 200: "normal", 400: "warning", 410: "no upload yet",
    411: "low match rate", 412: "many invalid entries", 414: "replace in progress", 415: "replace failed",
    441: "populating", 450: "out of date", 470: "account inactive", 471: "flagged", 500: "error",
}  # fmt: skip
"""Facebook's `operation_status` codes (spec §2.2), for the Audiences page."""
DELIVERY_NAMES = {200: "ready", 300: "too small"}


def epoch(t: datetime | None) -> float | None:
    """State timestamps are naive UTC."""
    return t.replace(tzinfo=UTC).timestamp() if t else None


@dataclass
class Reading:
    """A value read from the state, and whether it is an older reading because the file was busy."""

    value: Any
    read_at: float
    busy: str | None = None


@dataclass
class FacebookRow:
    view: reads.FacebookAudienceView

    @property
    def match_rate(self) -> tuple[float | None, float | None]:
        """The same range `status` shows (`Health.match_rate`: Facebook's 1,000 floor means "at most")."""
        v = self.view
        return Health(fb_id=v.fb_id, lower=v.lower, upper=v.upper, members_held=v.members_held or 0).match_rate

    @property
    def warnings(self) -> list[str]:
        v, found = self.view, []
        if v.problem:
            found.append({"deleted": "deleted on Facebook", "unshared": "no longer shared with us"}.get(
                v.problem, v.problem))  # fmt: skip
        if v.operation_code == FLAGGED or v.flagged_fields:
            found.append("flagged" + (f" ({', '.join(v.flagged_fields)})" if v.flagged_fields else ""))
        if v.operation_code == 100:
            found.append("expiring: unused in ad sets for 2 years; Facebook deletes it after 90 more days")
        high = self.match_rate[1]
        if v.operation_code == 411 or (high is not None and high < LOW_MATCH_RATE):
            found.append("low match rate")
        if v.pending_rows:
            found.append(f"{v.pending_rows:,} rows sent without a recorded answer: re-sent next run")
        if v.replace_pending:
            found.append("contents unknown to this state: replaced by the next mirror run")
        return found


@dataclass
class AudienceRow:
    """A configured audience on the Audiences page."""

    settings: AudienceSettings | None
    key: str
    name: str
    stream: bool
    facebook: list[FacebookRow] = field(default_factory=list)
    last_run: reads.RunView | None = None

    @property
    def warnings(self) -> list[str]:
        found = []
        run = self.last_run
        if self.settings is None:
            found.append("no longer in the config: `audiencesync audiences delete` deletes its Facebook audiences")
        if run is not None:
            if run.status == "refused":
                found.append("the guard refused the last run: " + (run.report.get("error") or ""))
            elif run.status == "waiting":
                found.append("waiting for min_size: " + (run.report.get("error") or "too few members yet"))
            elif run.status in ("failed", "interrupted"):
                found.append(f"last run {run.status}: " + (run.report.get("error") or ""))
        elif self.settings is not None and not self.stream:
            found.append("never synced")
        return found


def version_warnings(config: Config) -> list[str]:
    """The API versions the config names that Meta stops serving soon (or already has)."""
    try:
        from audiencesync.settings.versions import meta_warnings
    except ImportError:  # a release without the versions table
        return []
    return meta_warnings(config.meta.api_version, getattr(config.meta, "capi_version", None))


def fb_errors(report: dict[str, Any]) -> list[str]:
    """A run's errors as sentences: the audience's own and each Facebook audience's message."""
    found = [report["error"]] if report.get("error") else []
    return found + [f"{f['name']}: {f['message']}" for f in report.get("facebook") or [] if f.get("message")]


class DashboardData:
    """Leased reads of one state file, with the last reading of each kept for busy moments."""

    def __init__(self, config: Config, *, wait_s: float = READ_WAIT_S):
        self.config = config
        self.wait_s = wait_s
        self._last: dict[str, Reading] = {}
        self._coverage: dict[str, tuple[tuple[Any, ...], reads.Coverage]] = {}
        self._lock = threading.Lock()

    def _read(self, name: str, fn: Callable[[StateStore], T]) -> Reading:
        try:
            with lease(self.config.state, door="dashboard", wait_s=self.wait_s) as store:
                reading = Reading(fn(store), time.time())
        except StateBusy:
            held = current_holder(self.config.state)
            who = held.describe() if held else "another process"
            busy = f"the state file is in use by {who}"
            with self._lock:
                last = self._last.get(name)
            if last is None:
                raise
            return Reading(last.value, last.read_at, busy)
        with self._lock:
            self._last[name] = reading
        return reading

    # -- the pages -------------------------------------------------------------------------------

    def audiences(self) -> Reading:
        def read(store: StateStore) -> list[AudienceRow]:
            fbs = reads.facebook_audiences(store.con)
            last = reads.last_runs(store.con)
            rows: dict[str, AudienceRow] = {}
            for a in self.config.audiences:
                stream = self.config.source_of(a).type == "stream"
                rows[a.key] = AudienceRow(a, a.key, a.name, stream, last_run=last.get(a.key))
            for fb in fbs:
                row = rows.setdefault(fb.audience_key, AudienceRow(None, fb.audience_key, fb.audience_key, False,
                                                                   last_run=last.get(fb.audience_key)))  # fmt: skip
                row.facebook.append(FacebookRow(fb))
            return list(rows.values())

        return self._read("audiences", read)

    def audience(self, key: str) -> Reading:
        settings = next((a for a in self.config.audiences if a.key == key), None)

        def read(store: StateStore) -> dict[str, Any]:
            version = reads.state_version(store.con)
            with self._lock:
                cached = self._coverage.get(key)
            if cached and cached[0] == version:
                cov = cached[1]
            else:
                cov = reads.coverage(store.con, key)
                with self._lock:
                    self._coverage[key] = (version, cov)
            fbs = [FacebookRow(f) for f in reads.facebook_audiences(store.con) if f.audience_key == key]
            return {
                "facebook": fbs,
                "runs": reads.runs(store.con, key, limit=50),
                "series": reads.health_series(store.con, key),
                "coverage": cov,
            }

        reading = self._read(f"audience:{key}", read)
        page = dict(reading.value)
        reports = [r.report for r in page["runs"]]
        page["settings"] = settings
        page["invalid"] = invalid_totals(reports[:10])
        page["invalid_runs"] = min(10, len(reports))
        page["suggestions"] = suggestions(settings, page["coverage"], reports) if settings else []
        page["chart"] = chart_data(page["facebook"], page["series"])
        return Reading(page, reading.read_at, reading.busy)

    def conversions(self) -> Reading:
        return self._read("conversions", lambda store: reads.conversion_runs(store.con))


def chart_data(fbs: list[FacebookRow], series: list[reads.HealthPoint]) -> list[dict[str, Any]]:
    """One chart per Facebook audience: members held and Facebook's matched bounds, by read time."""
    out = []
    for fb in fbs:
        points = [p for p in series if p.fb_id == fb.view.fb_id]
        out.append(
            {
                "fb_id": fb.view.fb_id,
                "name": fb.view.name,
                "t": [epoch(p.read_at) for p in points],
                "members": [p.members_held for p in points],
                "lower": [p.lower for p in points],
                "upper": [p.upper for p in points],
            }
        )
    return out


def conversion_summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per dataset: runs, events sent and received, rejected by reason (summed over the runs shown)."""
    by: dict[str, dict[str, Any]] = {}
    for r in runs:
        rep = r["report"] or {}
        d = by.setdefault(r["dataset"], {"dataset": r["dataset"], "runs": 0, "sent": 0, "received": 0,
                                         "rejected": {}, "last": r})  # fmt: skip
        d["runs"] += 1
        d["sent"] += int(rep.get("sent") or 0)
        d["received"] += int(rep.get("events_received") or 0)
        for reason, n in (rep.get("rejected") or {}).items():
            d["rejected"][reason] = d["rejected"].get(reason, 0) + int(n)
    return list(by.values())
