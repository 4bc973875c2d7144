"""`bad_rows="skip"`: rows with the wrong shape are set aside and counted, the rest is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiencesync.extract.csv_guard import BadRow
from audiencesync.extract.source import SourceError

from .helpers import HEADER, row, rows, source, write


def test_ragged_rows_are_set_aside_counted_and_the_rest_is_read(tmp_path: Path) -> None:
    lines = [HEADER, row(1), row(2) + ",EXTRA", row(3), "C00004,short@example.com", row(5)]
    path = write(tmp_path / "customers.csv", lines)
    src = source(path, bad_rows="skip")
    assert [r[0] for r in rows(src)] == ["C00001", "C00003", "C00005"]
    assert src.set_aside == (
        BadRow(str(path), 3, "too_many_values", "5 values where the header has 4"),
        BadRow(str(path), 5, "too_few_values", "2 values where the header has 4"),
    )
    assert src.set_aside_counts() == {"too_many_values": 1, "too_few_values": 1}


def test_set_aside_rows_are_counted_once_per_read_of_the_query(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", [HEADER, row(1), row(2) + ",EXTRA"])
    src = source(path, bad_rows="skip")
    for _ in range(3):  # the planner reads the query several times
        assert len(rows(src)) == 1
    assert len(src.set_aside) == 1


def test_a_value_that_does_not_convert_is_set_aside_with_its_column(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", ["customer_id,ltv", "1,10", "2,lots", "3,30"])
    src = source(path, bad_rows="skip", options=", types = {'ltv': 'INTEGER'}")
    assert rows(src) == [(1, 10), (3, 30)]
    assert src.set_aside == (
        BadRow(str(path), 3, "not_convertible", "the value in column 'ltv' does not convert to the column's type"),
    )


def test_a_clean_file_sets_nothing_aside_and_is_read_without_ignore_errors(tmp_path: Path) -> None:
    src = source(write(tmp_path / "customers.csv", [HEADER, row(1)]), bad_rows="skip")
    assert src.set_aside == () and src.set_aside_counts() == {}
    assert "ignore_errors" not in src.query


def test_an_unterminated_quote_is_never_set_aside(tmp_path: Path) -> None:
    lines = [HEADER, row(1), 'C00002,"user2@example.com,+1,x', row(3), row(4)]
    with pytest.raises(SourceError, match=r"line 3: .*unterminated quote.*never set aside"):
        source(write(tmp_path / "customers.csv", lines), bad_rows="skip")


def test_an_unterminated_quote_beyond_the_sniffers_sample_is_never_set_aside(tmp_path: Path) -> None:
    lines = [HEADER, *(row(i) for i in range(22_000)), 'C99999,"x@example.com,+1,x', row(1)]
    with pytest.raises(SourceError, match=r"line 22002: .*never set aside"):
        source(write(tmp_path / "customers.csv", lines), bad_rows="skip")


def test_bad_rows_in_a_file_with_mixed_line_endings_are_an_error(tmp_path: Path) -> None:
    """DuckDB reads such a file only non-strictly, which would cut a long row short, not skip it."""
    path = tmp_path / "customers.csv"
    path.write_bytes(f"{HEADER}\r\n{row(1)}\n{row(2)},EXTRA\r\n{row(3)}\n".encode())
    with pytest.raises(SourceError, match=r"line 3: 5 values.*line endings mixed"):
        source(path, bad_rows="skip")


def test_mixed_line_endings_without_bad_rows_read_in_skip_mode(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(f"{HEADER}\r\n{row(1)}\n{row(2)}\r\n".encode())
    src = source(path, bad_rows="skip")
    assert len(rows(src)) == 2 and src.set_aside == ()
