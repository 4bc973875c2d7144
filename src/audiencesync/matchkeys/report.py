"""What a match run would send, summarized for people: the demo's table and its data.

Everything here is counts and reason codes: a report can be printed, logged or attached to an issue
without carrying anyone's personal data.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table

from audiencesync.matchkeys.vectorized import MatchResult


@dataclass(frozen=True, slots=True)
class KeyCoverage:
    """One key: where it came from and what became of its values.

    `coverage` is the share of output rows that send a value for the key.
    """

    key: str
    column: str
    sent: int
    empty: int
    invalid: int
    coverage: float
    reasons: dict[str, int]


@dataclass(frozen=True, slots=True)
class CoverageReport:
    rows: int
    output_rows: int
    keys: tuple[KeyCoverage, ...]

    @property
    def invalid_by_reason(self) -> list[tuple[str, str, int]]:
        """(key, reason, count), most frequent first."""
        found = [(cov.key, reason, count) for cov in self.keys for reason, count in cov.reasons.items()]
        return sorted(found, key=lambda item: (-item[2], item[0], item[1]))


def coverage_report(result: MatchResult) -> CoverageReport:
    output_rows = result.table.num_rows
    keys = []
    for key, column in result.mapping.items():
        values = result.table.column(key)
        sent = len(values) - values.null_count
        reasons = dict(sorted(result.invalid.get(key, {}).items(), key=lambda item: (-item[1], item[0])))
        keys.append(
            KeyCoverage(
                key=key,
                column=column,
                sent=sent,
                empty=result.empty.get(key, 0),
                invalid=sum(reasons.values()),
                coverage=sent / output_rows if output_rows else 0.0,
                reasons=reasons,
            )
        )
    return CoverageReport(rows=result.rows, output_rows=output_rows, keys=tuple(keys))


def describe_match(result: MatchResult | CoverageReport) -> Table:
    """A rich table: one line per key found, with coverage and the invalid values by reason."""
    report = result if isinstance(result, CoverageReport) else coverage_report(result)
    title = f"Match keys for {report.rows:,} source rows"
    if report.output_rows != report.rows:
        title += f" ({report.output_rows:,} output rows)"
    table = Table(title=title, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("source column")
    table.add_column("sent", justify="right")
    table.add_column("empty", justify="right")
    table.add_column("invalid", justify="right")
    table.add_column("coverage", justify="right")
    table.add_column("invalid by reason")
    for cov in report.keys:
        style = "green" if cov.coverage >= 0.9 else "yellow" if cov.coverage >= 0.6 else "red"
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in cov.reasons.items())
        table.add_row(
            cov.key,
            cov.column,
            f"{cov.sent:,}",
            f"{cov.empty:,}",
            f"{cov.invalid:,}",
            f"[{style}]{cov.coverage:.1%}[/{style}]",
            reasons or "-",
        )
    return table
