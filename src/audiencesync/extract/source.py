"""Read an audience's members from its source, inside the pipeline's DuckDB connection.

Running the user's query in the same engine that holds the state lets the planner find what
changed with one join instead of pulling every row into Python.
"""

from __future__ import annotations

import importlib
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pyarrow as pa

from audiencesync.config import SourceSettings
from audiencesync.extract import adbc
from audiencesync.extract.csv_guard import BadRow, BadRowsMode, CsvCheckError, guard_csv_reads
from audiencesync.extract.masking import mask_error

__all__ = ["BadRow", "BadRowsMode", "QuerySource", "SourceError", "quote_ident"]


class SourceError(RuntimeError):
    """The source could not be read; the message names the audience and the reason."""


class QuerySource:
    """A SQL query over DuckDB (in memory, reading CSV/Parquet/JSON files, or a database file).

    Every CSV read in the query is checked before anything is read (`csv_guard`): a file that does
    not parse cleanly is a `SourceError` naming the file, the line and why, never a silently
    different table. With `bad_rows="skip"` rows with the wrong number of values (or a value that
    does not convert to a typed column) are set aside instead and the rest is read; `set_aside`
    says which (file, line, reason; never their content) and `set_aside_counts()` how many by reason.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        name: str,
        settings: SourceSettings,
        query: str,
        *,
        bad_rows: BadRowsMode = "fail",
    ):
        self.con = con
        self.name = name
        self.query = query.strip().rstrip(";")
        self.catalog = "memory"
        self.bad_rows: BadRowsMode = bad_rows
        self.set_aside: tuple[BadRow, ...] = ()
        if settings.type in ("sqlite", "dbapi"):
            self.query = f"SELECT * FROM {_stage_from_driver(con, name, settings, self.query)}"
        elif settings.type in ("adbc", "databricks", "bigquery"):
            self.query = f"SELECT * FROM {_stage_from_adbc(con, name, settings, self.query)}"
        elif settings.path:
            self.catalog = "src_" + re.sub(r"\W", "_", name)
            attached = {r[0] for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
            if self.catalog not in attached:
                path = settings.path.replace("'", "''")
                try:
                    con.execute(f"ATTACH '{path}' AS {self.catalog} (READ_ONLY)")
                except duckdb.Error as e:
                    raise SourceError(f"source {name!r}: cannot open {settings.path}: {mask_error(e)}") from None
        if settings.type not in ("sqlite", "dbapi", "adbc", "databricks", "bigquery"):
            self._guard_csv()

    def _guard_csv(self) -> None:
        """Check the query's CSV reads and read through the checked, pinned versions from now on."""
        with self.scope():
            try:
                guarded = guard_csv_reads(self.con, self.query, bad_rows=self.bad_rows)
            except CsvCheckError as e:
                raise SourceError(f"source {self.name!r}: {e}") from None
        self.query, self.set_aside = guarded.query, guarded.set_aside

    def set_aside_counts(self) -> dict[str, int]:
        """Rows set aside by reason code (`too_many_values`, `too_few_values`, ...); empty unless skipping."""
        return dict(Counter(row.reason for row in self.set_aside))

    @contextmanager
    def scope(self) -> Iterator[None]:
        """Unqualified table names in the user's query resolve in the source's own database."""
        self.con.execute(f"USE {self.catalog}")
        try:
            yield
        finally:
            self.con.execute("USE memory")

    def columns(self) -> list[str]:
        with self.scope():
            try:
                return [d[0] for d in self.con.execute(f"DESCRIBE {self.subquery()}").fetchall()]
            except duckdb.Error as e:
                raise SourceError(f"the query failed: {mask_error(e)}") from None

    def subquery(self) -> str:
        return f"({self.query})"

    def execute(self, sql: str, params: list[object] | None = None) -> duckdb.DuckDBPyConnection:
        with self.scope():
            try:
                return self.con.execute(sql, params or [])
            except duckdb.Error as e:
                raise SourceError(f"the query failed: {mask_error(e)}") from None

    def batches(self, sql: str, rows_per_batch: int = 250_000) -> Iterator[pa.Table]:
        """The query's rows in Arrow tables, staged first so the connection stays free between them.

        DuckDB allows one open result per connection, and the caller writes to the state between
        batches; so the rows go to a temp table and each batch is read whole.
        """
        self.execute(f"CREATE OR REPLACE TEMP TABLE __batches AS {sql}")
        total = self.con.execute("SELECT count(*) FROM __batches").fetchall()[0][0]
        try:
            for start in range(0, total, rows_per_batch):
                yield self.con.sql(
                    f"SELECT * FROM __batches WHERE rowid >= {start} AND rowid < {start + rows_per_batch}"
                ).to_arrow_table()
        finally:
            self.con.execute("DROP TABLE IF EXISTS __batches")


def _stage_from_driver(con: duckdb.DuckDBPyConnection, name: str, settings: SourceSettings, query: str) -> str:
    """Run the query through the database's own DB-API driver, once, into a DuckDB temp table: the
    planner then reads it like any other source (twice, and joined with the state)."""
    table = "src_" + re.sub(r"\W", "_", name)
    try:
        driver = importlib.import_module("sqlite3" if settings.type == "sqlite" else str(settings.driver))
    except ImportError:
        raise SourceError(f"source {name!r}: the driver module {settings.driver!r} is not installed") from None
    args = settings.connect if settings.connect is not None else (settings.path or "")
    try:
        conn = driver.connect(**args) if isinstance(args, dict) else driver.connect(args)
    except Exception as e:  # drivers raise their own error types
        raise SourceError(f"source {name!r}: cannot connect ({type(e).__name__})") from None
    try:
        cur = conn.cursor()
        try:
            cur.execute(query)
        except Exception as e:
            raise SourceError(f"source {name!r}: the query failed ({type(e).__name__}: {mask_error(e)})") from None
        reader = adbc.arrow_reader(cur)
        if reader is not None:  # a driver that speaks Arrow (ADBC, Databricks): no Python per row
            try:
                adbc.stage_arrow(con, table, reader)
            except duckdb.Error as e:
                raise SourceError(f"source {name!r}: reading the result failed: {mask_error(e)}") from None
            return table
        columns = [d[0] for d in cur.description]
        con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(f"CREATE TEMP TABLE {table} ({', '.join(f'{quote_ident(c)} VARCHAR' for c in columns)})")
        while rows := cur.fetchmany(50_000):
            chunk = pa.table({c: pa.array([_text(r[i]) for r in rows], pa.string()) for i, c in enumerate(columns)})
            con.register("__chunk", chunk)
            con.execute(f"INSERT INTO {table} SELECT * FROM __chunk")
            con.unregister("__chunk")
    finally:
        conn.close()
    return table


def _stage_from_adbc(con: duckdb.DuckDBPyConnection, name: str, settings: SourceSettings, query: str) -> str:
    """Run the query through the source's ADBC driver (or the Databricks or BigQuery client, which
    return Arrow too), once, as Arrow record batches into a DuckDB temp table (`extract/adbc.py`);
    the planner then reads it like any other source."""
    table = "src_" + re.sub(r"\W", "_", name)
    try:
        if settings.type == "databricks":
            from audiencesync.extract import databricks  # the connector only when asked for

            databricks.stage(con, name, table, settings, query)
        elif settings.type == "bigquery":
            from audiencesync.extract import bigquery

            bigquery.stage(con, name, table, settings, query)
        else:
            adbc.stage_from_adbc(con, name, table, settings, query)
    except adbc.ArrowSourceError as e:
        raise SourceError(str(e)) from None
    return table


def _text(value: object) -> str | None:
    """Every column as text, as `read_csv(all_varchar = true)` gives it: the match keys parse it."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
