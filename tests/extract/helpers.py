"""Small CSV files and a QuerySource over an in-memory DuckDB, for the extract tests."""

from __future__ import annotations

from pathlib import Path

import duckdb

from audiencesync.config import SourceSettings
from audiencesync.extract.source import BadRowsMode, QuerySource

HEADER = "customer_id,email,phone,dob"
# Distinctive values that must never appear in an error text.
PII = {
    "email": "zelda.quixote.7731@example.org",
    "phone": "+1 415 555 0199",
    "dob": "10/14/1955",
    "name": "Quixotica",
}


def row(i: int) -> str:
    return f"C{i:05d},user{i}@example.com,+1 415 555 {i % 10000:04d},01/02/1960"


def write(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.write_bytes(newline.join(lines).encode() + newline.encode())
    return path


def source(
    path: Path | str, *, bad_rows: BadRowsMode = "fail", options: str = ", all_varchar = true", query: str | None = None
) -> QuerySource:
    con = duckdb.connect()
    sql = query or f"select * from read_csv('{path}'{options})"
    return QuerySource(con, "crm", SourceSettings(type="duckdb"), sql, bad_rows=bad_rows)


def rows(src: QuerySource) -> list[tuple[object, ...]]:
    """The source's rows (`execute` leaves its result behind a `USE`, so it suits statements only)."""
    with src.scope():
        return src.con.execute(f"SELECT * FROM {src.subquery()}").fetchall()
