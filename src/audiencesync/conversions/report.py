"""What a conversions run did: counts and reasons, never a raw value; and the rejects file.

The report answers the questions a person asks after an upload: how many events were read, how many
went to Facebook and how many Facebook says it received, which were skipped on purpose (an action
with no Facebook event, already sent) and which were set aside as wrong (and why).
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from audiencesync.conversions.validate import REASONS

REJECT_FIELDS = ("row", "reason", "event_name", "product_action", "event_time", "order_id")
"""The rejects file's columns: where the row is and why it was refused, with no personal data."""


@dataclass
class ConversionReport:
    run_id: str
    dataset_id: str
    source: str
    dry_run: bool = False
    test_event_code: str | None = None
    status: str = "pending"
    read: int = 0
    sent: int = 0
    events_received: int = 0
    batches: int = 0
    requests: int = 0
    retries: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    user_data: dict[str, int] = field(default_factory=dict)
    invalid_keys: dict[str, dict[str, int]] = field(default_factory=dict)
    ldu: int = 0
    rejects_file: str | None = None
    duration_s: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "dry-run")

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def reject(self, reason: str, n: int = 1) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + n

    def count_keys(self, found: Counter[str], invalid: dict[str, Counter[str]]) -> None:
        for k, n in found.items():
            self.user_data[k] = self.user_data.get(k, 0) + n
        for key, reasons in invalid.items():
            if not reasons:
                continue
            slot = self.invalid_keys.setdefault(key, {})
            for reason, n in reasons.items():
                slot[reason] = slot.get(reason, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RejectsFile:
    """A CSV of set-aside events, created on the first reject so a clean run leaves no empty file."""

    def __init__(self, path: Path):
        self.path = path
        self._file: IO[str] | None = None
        self._writer: Any = None
        self.count = 0

    def write(
        self, row: int | str, reason: str, event: dict[str, Any] | None = None, action: Any = None, order_id: Any = None
    ) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(REJECT_FIELDS)
        ev = event or {}
        cd = ev.get("custom_data") or {}
        self._writer.writerow(
            [
                row,
                reason,
                ev.get("event_name", ""),
                _short(action),
                ev.get("event_time", ""),
                _short(cd.get("order_id", order_id)),
            ]
        )
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def written(self) -> str | None:
        return str(self.path) if self.count else None


def _short(value: Any) -> str:
    return "" if value is None else str(value)[:64]


def render(report: ConversionReport, console: Console) -> None:
    """The human form of the report (the CLI's `--json` prints `to_dict()` instead)."""
    title = f"conversions → dataset {report.dataset_id}" + (" (dry run)" if report.dry_run else "")
    if report.test_event_code:
        title += f" [test_event_code {report.test_event_code}]"
    table = Table(title=title, show_header=False)
    table.add_row("status", _status(report))
    table.add_row("events read", f"{report.read:,}")
    table.add_row("would send" if report.dry_run else "sent", f"{report.sent:,}")
    if not report.dry_run:
        table.add_row("Facebook events_received", f"{report.events_received:,}")
        table.add_row("requests (batches)", f"{report.requests:,} ({report.batches:,})")
    table.add_row("skipped", f"{sum(report.skipped.values()):,}")
    for reason, n in sorted(report.skipped.items()):
        table.add_row(f"  {reason}", f"{n:,}")
    table.add_row("rejected", f"{sum(report.rejected.values()):,}")
    for reason, n in sorted(report.rejected.items()):
        table.add_row(f"  {reason}", f"{n:,}" + (f"  [dim]{REASONS[reason]}[/dim]" if reason in REASONS else ""))
    if report.ldu:
        table.add_row("with Limited Data Use", f"{report.ldu:,}")
    if report.user_data:
        table.add_row("user_data keys", ", ".join(f"{k} {n:,}" for k, n in sorted(report.user_data.items())))
    for key, reasons in sorted(report.invalid_keys.items()):
        table.add_row(f"invalid {key}", ", ".join(f"{r} {n:,}" for r, n in sorted(reasons.items())))
    if report.rejects_file:
        table.add_row("rejects file", report.rejects_file)
    table.add_row("duration", f"{report.duration_s:.1f}s")
    console.print(table)
    if report.error:
        console.print(f"[red]{report.error}[/red]")


def _status(report: ConversionReport) -> str:
    color = "green" if report.ok else "red"
    return f"[{color}]{report.status}[/{color}]"
