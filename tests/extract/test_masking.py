"""No value from the data reaches an error text: single quotes, double quotes, bare, or echoed rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb
import pytest

from audiencesync.config import SourceSettings
from audiencesync.extract.masking import mask_error
from audiencesync.extract.source import QuerySource, SourceError

from .helpers import HEADER, PII, source, write

PII_ROW = f"C00002,{PII['email']},{PII['phone']},{PII['dob']}"


def assert_no_pii(text: str) -> None:
    for value in (*PII.values(), "7731", "555 0199", "1955"):
        assert value not in text, text


@pytest.mark.parametrize(
    "bad",
    [
        PII_ROW + f",{PII['name']}",  # too many values
        f"C00002,{PII['email']}",  # too few
        f'C00002,"{PII["email"]},{PII["phone"]},{PII["dob"]}',  # unterminated quote
        f'C00002,"{PII["email"]}"{PII["name"]},{PII["phone"]},{PII["dob"]}',  # text after a quote
    ],
)
@pytest.mark.parametrize("bad_rows", ["fail", "skip"])
def test_bad_row_errors_name_file_and_line_but_no_value(tmp_path: Path, bad: str, bad_rows: str) -> None:
    path = write(tmp_path / "customers.csv", [HEADER, "C00001,a@example.com,+1,x", bad, PII_ROW])
    try:
        src = source(path, bad_rows=bad_rows)  # type: ignore[arg-type]
    except SourceError as e:
        assert "customers.csv, line 3" in str(e)
        assert_no_pii(str(e))
    else:
        assert bad_rows == "skip"
        assert_no_pii(repr(src.set_aside))


def test_a_cast_error_in_the_query_is_masked(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", [HEADER, PII_ROW])
    for expr in ("strptime(dob, '%Y-%m-%d')", "cast(dob as date)", "cast(email as integer)", "phone::bigint"):
        src = source(path, query=f"select {expr} as x, * from read_csv('{path}', all_varchar = true)")
        with pytest.raises(SourceError) as e:  # read through the source, as the planner does
            src.execute(f"CREATE TEMP TABLE t AS SELECT * FROM {src.subquery()}")
        assert_no_pii(str(e.value))


def test_a_typed_read_that_fails_names_the_column_not_the_value(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", ["customer_id,dob", f"C1,{PII['dob']}"])
    with pytest.raises(SourceError) as e:
        source(path, options=", types = {'dob': 'DATE'}, dateformat = '%Y-%m-%d'")
    assert "line 2" in str(e.value) and "'dob'" in str(e.value)
    assert_no_pii(str(e.value))


def test_duckdb_messages_are_masked_in_every_quoting() -> None:
    cases = [
        f'Invalid Input Error: Could not parse string "{PII["dob"]}" according to format specifier "%Y"',
        f"Conversion Error: Could not convert string '{PII['email']}' to INT32",
        "Conversion Error: Type INT64 with value 4155550199 can't be cast to INT32",
        f"Binder Error: no such thing {PII['email']} near +1 (415) 555-0199",
        f"Invalid Input Error: CSV Error on Line: 3\nOriginal Line: {PII_ROW}\n{PII['name']},x\n\n"
        "Expected Number of Columns: 4 Found: 5\n  file = data/customers.csv\n",
    ]
    for text in cases:
        masked = mask_error(text)
        assert "\n" not in masked
        assert_no_pii(masked)
        assert "4155550199" not in masked and "Quixotica" not in masked


def test_masking_keeps_file_line_column_and_reason() -> None:
    masked = mask_error(
        f"Conversion Error: CSV Error on Line: 123456\nOriginal Line: {PII_ROW}\n"
        f'Error when converting column "dob". Could not parse string "{PII["dob"]}"\n'
        "  file = data/2024-01-31 customers.csv\n"
    )
    assert masked.startswith("Conversion Error: CSV Error on Line: 123456")
    assert 'column "dob"' in masked and "data/2024-01-31 customers.csv" in masked
    assert_no_pii(masked)
    assert mask_error('Binder Error: Referenced column "emial" not found') == (
        'Binder Error: Referenced column "emial" not found'
    )
    assert mask_error('IO Error: No files found that match the pattern "data/x.csv"').endswith('"data/x.csv"')


def test_sqlite_errors_are_masked(tmp_path: Path) -> None:
    db = tmp_path / "crm.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE customers (email TEXT)")
    query = f"select * from customers where email = '{PII['email']}' and nope = 1"
    with pytest.raises(SourceError) as e:
        QuerySource(duckdb.connect(), "crm", SourceSettings(type="sqlite", path=str(db)), query)
    assert "nope" in str(e.value)
    assert_no_pii(str(e.value))
