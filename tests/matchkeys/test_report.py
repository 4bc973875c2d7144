"""The demo's coverage data and its rich rendering carry counts and codes, never values."""

from __future__ import annotations

import pyarrow as pa
from rich.console import Console

from audiencesync.matchkeys import coverage_report, describe_match, match_table


def _result():
    table = pa.table(
        {
            "email": ["secret.person@example.com", "alice@", None, "b@c.de"],
            "gender": ["F", "other", "m", "x"],
        }
    )
    return match_table(table)


def test_coverage_report_counts() -> None:
    report = coverage_report(_result())
    assert report.rows == report.output_rows == 4
    email, gender = report.keys
    assert (email.key, email.column, email.sent, email.empty, email.invalid) == ("EMAIL", "email", 2, 1, 1)
    assert email.coverage == 0.5
    assert gender.reasons == {"unknown_gender": 2}
    assert report.invalid_by_reason[0] == ("GEN", "unknown_gender", 2)


def test_describe_match_renders_without_values() -> None:
    console = Console(width=200, record=True)
    console.print(describe_match(_result()))
    text = console.export_text()
    assert "EMAIL" in text and "unknown_gender 2" in text and "50.0%" in text
    assert "secret.person" not in text and "alice@" not in text
