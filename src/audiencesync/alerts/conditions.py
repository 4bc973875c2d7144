"""Alert conditions, from the named values the pipeline hands over: a run's report, a health read,
the stream's backlog ages. Each says whether it holds now and, in a sentence of names, counts and
codes (never a member's value, a token or a URL), what it is about."""

from __future__ import annotations

from dataclasses import dataclass

from audiencesync.load.health import FLAGGED, Health
from audiencesync.report import AudienceReport
from audiencesync.state.alerts import Held


@dataclass(frozen=True)
class Condition:
    kind: str
    """One of `settings.alerts.EVENTS`."""
    subject: str
    """What it is about: an audience key, or a Facebook audience id."""
    active: bool
    summary: str
    reference: int | None = None
    """For `matched_drop`: the matched size before the drop, kept while the drop lasts."""


def from_run(rep: AudienceReport) -> list[Condition]:
    """A failed run and a guard refusal hold until the audience's next run goes through."""
    failed = [f"{f.name} ({f.health_warning or f.status})" for f in rep.facebook if f.status == "failed"]
    failed_text = f": {', '.join(failed)}" if failed else ""
    if rep.status == "failed":
        run = f"{rep.name}: the sync failed{failed_text}; `audiencesync status` says why"
    else:
        run = f"{rep.name}: the sync goes through again"
    adds, removes = sum(f.adds for f in rep.facebook), sum(f.removes for f in rep.facebook)
    if rep.status == "refused":
        guard = (
            f"{rep.name}: the guard refused the run ({rep.members:,} members in the source, {removes:,} removals "
            f"and {adds:,} additions planned); run with --force if the change is wanted"
        )
    else:
        guard = f"{rep.name}: the guard no longer refuses the run"
    return [
        Condition("run_failed", rep.key, rep.status == "failed", run),
        Condition("guard_refused", rep.key, rep.status == "refused", guard),
    ]


def from_health(name: str, h: Health, previous: Health | None, held_drop: Held | None, share: float) -> list[Condition]:
    """Integrity flag (operation_status 471 or flagged fields) and a matched-size drop: the matched
    size (Facebook's upper bound) fell by more than `share` from the read before; the drop holds
    until the size is back within the share of that earlier size."""
    found: list[Condition] = []
    if h.problem in (None, "flagged"):
        flagged = h.problem == "flagged" or h.operation_code == FLAGGED or bool(h.flagged_fields)
        fields = ", ".join(h.flagged_fields) or "not named by Facebook"
        summary = (
            f"{name} ({h.fb_id}) is flagged by Facebook's integrity policy (operation_status {FLAGGED}; fields: "
            f"{fields}): Facebook refuses uploads to it"
            if flagged
            else f"{name} ({h.fb_id}) is no longer flagged"
        )
        found.append(Condition("integrity_flag", h.fb_id, flagged, summary))
    if h.problem is None and h.upper is not None:
        if held_drop is not None and held_drop.active and held_drop.reference:
            reference = held_drop.reference
        else:
            reference = previous.upper if previous is not None and previous.problem is None else None
        if reference:
            dropped = h.upper < reference * (1 - share)
            summary = (
                f"{name} ({h.fb_id}): Facebook's matched size fell from about {reference:,} to about {h.upper:,} "
                f"(more than {share:.0%}); we hold {h.members_held:,} members"
                if dropped
                else f"{name} ({h.fb_id}): the matched size is about {h.upper:,} again"
            )
            found.append(Condition("matched_drop", h.fb_id, dropped, summary, reference if dropped else None))
    return found


def from_backlog(ages: dict[str, float], threshold: float) -> list[Condition]:
    """Per stream audience: its oldest unsynced change is older than `threshold` seconds."""
    found = []
    for key, age in sorted(ages.items()):
        late = age > threshold
        summary = (
            f"{key}: the oldest stream change has waited {age:,.0f}s for its sync (more than {threshold:,.0f}s)"
            if late
            else f"{key}: the stream backlog is synced again"
        )
        found.append(Condition("stream_backlog", key, late, summary))
    return found
