"""What a run did, per audience and per Facebook audience: counts and reasons, never raw values."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


@dataclass
class FacebookReport:
    kind: str
    name: str
    fb_id: str | None = None
    status: str = "pending"
    adds: int = 0
    removes: int = 0
    batches: int = 0
    num_received: int = 0
    num_invalid_entries: int = 0
    members: int = 0
    rows_without_key: int = 0
    message: str | None = None
    matched_lower: int | None = None
    """Facebook's rounded matched size after this run's writes (`approximate_count_*_bound`)."""
    matched_upper: int | None = None
    match_rate_low: float | None = None
    """Matched / the members we hold, as a range from the rounded bounds."""
    match_rate_high: float | None = None
    operation_status: int | None = None
    delivery_status: int | None = None
    health_warning: str | None = None
    members_before: int | None = None
    """Dry run: the rows this Facebook audience holds before the run (`members` is after it)."""


@dataclass
class AudienceReport:
    key: str
    name: str
    status: str = "pending"
    mode: str = "mirror"
    full_refresh: bool = False
    dry_run: bool = False
    rows_read: int = 0
    rows_without_primary_key: int = 0
    rows_set_aside: dict[str, int] = field(default_factory=dict)
    """Source rows that did not parse, by reason (`bad_rows: skip`)."""
    members: int = 0
    changed: int = 0
    removed_from_source: int = 0
    normalized: int = 0
    keys_found: dict[str, int] = field(default_factory=dict)
    empty: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, dict[str, int]] = field(default_factory=dict)
    facebook: list[FacebookReport] = field(default_factory=list)
    duration_s: float = 0.0
    error: str | None = None
    rejected_rows: int = 0
    """Rejected values kept in the state for `audiencesync rejects` (member, key, reason)."""


@dataclass
class RunReport:
    run_id: str
    audiences: list[AudienceReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(a.status in ("ok", "dry-run", "waiting") for a in self.audiences)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def dry_run(self) -> list[DryRunLine]:
        """The plan per Facebook audience, as Census's dry run reports it."""
        return [
            DryRunLine(
                audience=a.name,
                facebook_audience=f.name,
                fb_id=f.fb_id,
                members_before=f.members_before or 0,
                members_after=f.members,
                adds=f.adds,
                removes=f.removes,
                invalid=f.rows_without_key,
                invalid_values=sum(sum(r.values()) for r in a.invalid.values()),
                status=a.status,
            )
            for a in self.audiences
            for f in a.facebook
        ]


@dataclass(frozen=True)
class DryRunLine:
    """One Facebook audience in a dry run. `invalid`: members the plan cannot send to it (no valid
    key for it); `invalid_values`: the configured audience's rejected values, all keys together."""

    audience: str
    facebook_audience: str
    fb_id: str | None
    members_before: int
    members_after: int
    adds: int
    removes: int
    invalid: int
    invalid_values: int
    status: str


def render(report: RunReport, console: Console | None = None) -> None:
    console = console or Console()
    for a in report.audiences:
        title = (
            escape(f"{a.name} [{a.status}]")
            + (" (dry run)" if a.dry_run else "")
            + (" (full refresh)" if a.full_refresh else "")
        )
        console.print(f"\n[bold]{title}[/bold]  mode={a.mode}  {a.duration_s:.2f}s")
        if a.error:
            console.print(f"  [red]{a.error}[/red]")
        console.print(
            f"  rows read {a.rows_read:,}  members {a.members:,}  changed {a.changed:,}  "
            f"left the source {a.removed_from_source:,}  normalized {a.normalized:,}"
            + (f"  without primary key {a.rows_without_primary_key:,}" if a.rows_without_primary_key else "")
        )
        if a.rows_set_aside:
            reasons = ", ".join(f"{n:,} {why.replace('_', ' ')}" for why, n in sorted(a.rows_set_aside.items()))
            console.print(f"  [yellow]rows set aside (did not parse): {reasons}[/yellow]")
        if a.keys_found or a.invalid:
            keys = Table("key", "found", "empty", "invalid", "reasons", box=None, padding=(0, 2))
            for k in sorted(set(a.keys_found) | set(a.invalid) | set(a.empty)):
                reasons = a.invalid.get(k, {})
                keys.add_row(
                    k,
                    f"{a.keys_found.get(k, 0):,}",
                    f"{a.empty.get(k, 0):,}",
                    f"{sum(reasons.values()):,}",
                    ", ".join(f"{r} {n:,}" for r, n in sorted(reasons.items(), key=lambda x: -x[1])),
                )
            console.print(keys)
        if a.dry_run:
            _render_dry_run(a, console)
            continue
        fb = Table(
            "Facebook audience",
            "id",
            "status",
            "adds",
            "removes",
            "received",
            "invalid",
            "members",
            "no key",
            box=None,
            padding=(0, 2),
        )
        for f in a.facebook:
            fb.add_row(
                f.name,
                f.fb_id or "-",
                f.status,
                f"{f.adds:,}",
                f"{f.removes:,}",
                f"{f.num_received:,}",
                f"{f.num_invalid_entries:,}",
                f"{f.members:,}",
                f"{f.rows_without_key:,}",
            )
        console.print(fb)
        for f in a.facebook:
            if f.matched_lower is not None:
                console.print(f"  {f.name}: {health_line(f)}", highlight=False)
        for f in a.facebook:
            if f.message:
                console.print(f"  {f.name}: {f.message}")


def _render_dry_run(a: AudienceReport, console: Console) -> None:
    """A dry run's plan, per Facebook audience: nothing was sent."""
    plan = Table(
        "Facebook audience", "id", "members before", "adds", "removes", "members after", "invalid", box=None
    )
    for f in a.facebook:
        plan.add_row(
            f.name,
            f.fb_id or "(new)",
            f"{f.members_before or 0:,}",
            f"{f.adds:,}",
            f"{f.removes:,}",
            f"{f.members:,}",
            f"{f.rows_without_key:,}",
        )
    console.print(plan)
    console.print("  dry run: nothing was sent; invalid = members without a valid key for that Facebook audience")
    for f in a.facebook:
        if f.message:
            console.print(f"  {f.name}: {f.message}")


def size_range(lower: int | None, upper: int | None) -> str:
    if lower is None or upper is None:
        return "-"
    if lower == upper == 1000:
        return "at most 1,000"  # Facebook's floor: it does not say how many below it
    return f"{lower:,}" if lower == upper else f"{lower:,}–{upper:,}"


def rate_range(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "-"
    return f"{low:.0%}" if round(low, 2) == round(high, 2) else f"{low:.0%}–{high:.0%}"


def health_line(f: FacebookReport) -> str:
    line = (
        f"matched {size_range(f.matched_lower, f.matched_upper)} of {f.members:,} "
        f"(match rate {rate_range(f.match_rate_low, f.match_rate_high)}), "
        f"operation_status {f.operation_status}, delivery_status {f.delivery_status}"
    )
    return line + (f"  [{f.health_warning}]" if f.health_warning else "")


def emit(report: Any, *, as_json: bool, render: Callable[[Any, Console], None], console: Console) -> int:
    """Print a run's report as JSON (for machines) or tables (for people); the exit code says how it went.
    Shared by the CLI doors so every command answers the same way."""
    if as_json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        render(report, console)
    return 0 if report.ok else 1
