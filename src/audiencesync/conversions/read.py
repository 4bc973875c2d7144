"""Read commerce events from files, DuckDB queries or mParticle batches, as column chunks.

Everything downstream works on one shape, whatever the input: a `Chunk` of columns named as in the
CSV layout of the issue (`event_time`, `product_action`, `order_id`, `currency`, `value`, `products`,
`custom_attributes`, and identity/attribute columns named as the match-key aliases). mParticle
batches are flattened into that shape here, so the mapping has one path to get right, not two.

Tabular files go through DuckDB (its CSV and Parquet readers are fast and streaming); JSON goes
through orjson because DuckDB would widen `custom_attributes` into a struct with every key seen in
the file, inventing null attributes an event never had.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson

from audiencesync.extract import mparticle
from audiencesync.extract.csv_guard import CsvCheckError, guard_csv_reads

CHUNK_ROWS = 50_000
"""Rows per chunk: large enough for the vectorized match keys, small enough to bound memory."""

TABULAR = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}
JSON_SUFFIXES = {".json", ".jsonl", ".ndjson"}
DATABASE_SUFFIXES = {".duckdb", ".db", ".ddb"}



class ReadError(RuntimeError):
    """The input could not be read; the message names the file and the reason, never a value."""


@dataclass
class Chunk:
    """A slice of the input: 1-based input positions and the columns of those rows."""

    rows: list[int]
    columns: dict[str, list[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)


class Source:
    """An input, opened lazily: `chunks()` streams it, `total()` counts it for the progress bar."""

    def __init__(self, path: str | Path | None = None, *, query: str | None = None, chunk_rows: int = CHUNK_ROWS):
        if path is None and not query:
            raise ReadError("give a file to read, or --query")
        self.path = Path(path) if path is not None else None
        self.query = query.strip().rstrip(";") if query else None
        self.chunk_rows = chunk_rows
        if self.path is not None and not self.path.exists():
            raise ReadError(f"{self.path}: no such file")
        self.kind = self._kind()

    def _kind(self) -> str:
        if self.path is None:
            return "query"
        suffixes = [s.lower() for s in self.path.suffixes if s.lower() != ".gz"]
        suffix = suffixes[-1] if suffixes else ""
        if suffix in DATABASE_SUFFIXES:
            if not self.query:
                raise ReadError(f"{self.path}: a DuckDB database file needs --query")
            return "database"
        if self.query:
            return "query"
        if suffix in TABULAR:
            return TABULAR[suffix]
        if suffix in JSON_SUFFIXES:
            return "json"
        raise ReadError(f"{self.path}: unknown file type (use .csv, .parquet, .json, .jsonl, or --query)")

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else "query"

    def chunks(self) -> Iterator[Chunk]:
        if self.kind == "json":
            yield from _json_chunks(self.path, self.chunk_rows)  # type: ignore[arg-type]
            return
        with self._connection() as con:
            sql = _strict(con, self._select(), self.name) if self.kind == "csv" else self._select()
            try:
                reader = con.sql(sql).to_arrow_reader(self.chunk_rows)
            except duckdb.Error as e:
                raise ReadError(f"{self.name}: {_masked(e)}") from None
            first = 1
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                except (duckdb.Error, OSError) as e:
                    raise ReadError(f"{self.name}: {_masked(e)}") from None
                n = batch.num_rows
                yield Chunk(list(range(first, first + n)), batch.to_pydict())
                first += n

    def total(self) -> int | None:
        """The number of input rows, when counting is cheap (DuckDB scans; JSON lines are counted)."""
        if self.kind == "json":
            return _json_total(self.path)  # type: ignore[arg-type]
        with self._connection() as con:
            try:
                sql = _strict(con, self._select(), self.name) if self.kind == "csv" else self._select()
                rows = con.execute(f"SELECT count(*) FROM ({sql})").fetchall()
            except (ReadError, duckdb.Error):
                return None
            return int(rows[0][0]) if rows else None

    def _select(self) -> str:
        if self.kind == "csv":
            return f"SELECT * FROM read_csv({_lit(self.path)}, header = true, all_varchar = true)"
        if self.kind == "parquet":
            return f"SELECT * FROM read_parquet({_lit(self.path)})"
        return f"SELECT * FROM ({self.query})"

    def _connection(self) -> _Connection:
        return _Connection(self)


class _Connection:
    """An in-memory DuckDB with the input in reach of the user's query.

    With `--query`, a data file is exposed as the view `events`; a database file is attached
    read-only and made the default catalog, so unqualified table names resolve in it.
    """

    def __init__(self, source: Source):
        self.source = source
        self.con = duckdb.connect()

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        s = self.source
        try:
            if s.kind == "database":
                self.con.execute(f"ATTACH {_lit(s.path)} AS src (READ_ONLY)")
                self.con.execute("USE src")
            elif s.kind == "query" and s.path is not None:
                inner = Source(s.path, chunk_rows=s.chunk_rows)
                if inner.kind == "json":
                    self.con.execute(f"CREATE VIEW events AS SELECT * FROM read_json_auto({_lit(s.path)})")
                else:
                    self.con.execute(f"CREATE VIEW events AS {_strict(self.con, inner._select(), s.name)}")
        except duckdb.Error as e:
            self.con.close()
            raise ReadError(f"{s.name}: {_masked(e)}") from None
        return self.con

    def __exit__(self, *exc: object) -> None:
        self.con.close()


# -- JSON: flat events or mParticle batches ------------------------------------------------------


def _json_records(path: Path) -> Iterator[Any]:
    """Each top-level JSON value: the lines of JSON Lines, or the elements of one JSON document."""
    with open(path, "rb") as f:
        head = f.read(1 << 16).lstrip()
        f.seek(0)
        if head.startswith(b"[") or _single_document(path, head):
            try:
                doc = orjson.loads(f.read())
            except orjson.JSONDecodeError as e:
                raise ReadError(f"{path}: not valid JSON (line {e.lineno})") from None
            yield from doc if isinstance(doc, list) else [doc]
            return
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError:
                raise ReadError(f"{path}: line {lineno} is not valid JSON") from None


def _single_document(path: Path, head: bytes) -> bool:
    """A `.json` file holding one pretty-printed object rather than one object per line."""
    if path.suffix.lower() != ".json" or not head.startswith(b"{"):
        return False
    first_line = head.split(b"\n", 1)[0].strip()
    try:
        orjson.loads(first_line)
    except orjson.JSONDecodeError:
        return True
    return False


def _json_total(path: Path) -> int | None:
    if path.stat().st_size > 512 * 1024 * 1024:
        return None
    return sum(len(_events_of(r)) for r in _json_records(path))


def _json_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    rows: list[int] = []
    records: list[dict[str, Any]] = []
    n = 0
    for record in _json_records(path):
        for flat in _events_of(record):
            n += 1
            rows.append(n)
            records.append(flat)
            if len(records) >= chunk_rows:
                yield _columns(rows, records)
                rows, records = [], []
    if records:
        yield _columns(rows, records)


def _columns(rows: list[int], records: list[dict[str, Any]]) -> Chunk:
    names: dict[str, None] = {}
    for r in records:
        names.update(dict.fromkeys(r))
    return Chunk(rows, {name: [r.get(name) for r in records] for name in names})


def is_mparticle_batch(record: Any) -> bool:
    return mparticle.is_batch(record)


def _events_of(record: Any) -> list[dict[str, Any]]:
    if is_mparticle_batch(record):
        return flatten_mparticle_batch(record)
    if isinstance(record, dict):
        return [record]
    return [{"_invalid": "not_an_object"}]


def flatten_mparticle_batch(batch: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per event of an mParticle batch, with the batch's identities and attributes on each
    (read by `extract/mparticle.py`, the module the stream door reads batches with too).

    mParticle's Facebook Offline Conversions forwarded commerce events from an unbound custom feed;
    every other event type is kept as a row without a product action, so it is counted as skipped.
    """
    return mparticle.flatten_batch(batch)


# -- helpers -------------------------------------------------------------------------------------


def _strict(con: duckdb.DuckDBPyConnection, sql: str, name: str) -> str:
    """The CSV file given as FILE checked first and its read pinned to the checked dialect
    (`extract/csv_guard.py`, as for audience sources): a ragged row or a broken quote stops the run
    naming the file and line, instead of a sniffer silently reading a different table. (CSV reads a
    user writes inside `--query` are left as written.)"""
    cursor = con.cursor()  # the guard's own statements must not leave a result open on `con`
    try:
        return guard_csv_reads(cursor, sql).query
    except CsvCheckError as e:
        message = str(e).split(" Nothing was read", 1)[0]  # its advice (`bad_rows: skip`) is the audience source's
        raise ReadError(message if name in message else f"{name}: {message}") from None
    finally:
        cursor.close()


def _lit(path: Path | None) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _masked(e: Exception) -> str:
    """DuckDB quotes offending values in its messages; those may be personal data, so they are masked."""
    return re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", str(e).splitlines()[0])[:300]
