"""Warehouses read as Arrow: an ADBC driver's record batches straight into DuckDB, no Python per row.

ADBC (Arrow Database Connectivity) drivers return a query's result as Arrow record batches: the
PostgreSQL driver reads it with `COPY ... (FORMAT binary)` and decodes it in C, Snowflake and
BigQuery hand over the Arrow their own APIs speak. DuckDB scans the record batch reader as it
arrives, so the rows land in the source's temp table in batches, with each column cast to text
by DuckDB's vectorized casts: the same text the DB-API path (`source._stage_from_driver`, which
turns every value into `str` in Python) and `read_csv(all_varchar = true)` give, which the match
keys then parse. A DB-API driver whose cursor speaks Arrow (an ADBC cursor, the Databricks SQL
connector's `fetchall_arrow`) takes this path too; any other keeps the row-by-row fallback.
`type: adbc` uses the drivers' low-level API (`AdbcDatabase`/`AdbcStatement`), whose import takes
a tenth of a second; their DB-API modules import pandas and polars, 6–16 s on a loaded machine.

The URI may carry a password: it is never logged and never part of an error (only the driver
error's type and its masked first line are).
"""

from __future__ import annotations

import importlib
from typing import Any

import duckdb
import pyarrow as pa

from audiencesync.config import SourceSettings
from audiencesync.extract.masking import mask_error

ARROW_CHUNK_ROWS = 100_000
"""Rows a `fetchmany_arrow` call asks for, for DB-API cursors that fetch Arrow in chunks."""


class ArrowSourceError(RuntimeError):
    """An ADBC source could not be read; the message names the source and the setting."""


def _database(name: str, settings: SourceSettings) -> Any:
    """The configured driver's `AdbcDatabase`, through its low-level API: the drivers' DB-API
    modules import pandas and polars when present, seconds of start-up for nothing here."""
    driver = str(settings.driver)
    try:
        module = importlib.import_module(driver)
    except ImportError:
        raise ArrowSourceError(f"source {name!r}: driver: the ADBC driver {driver} is not installed") from None
    kwargs = dict(settings.db_kwargs) or None
    try:
        return module.connect(settings.uri, db_kwargs=kwargs) if settings.uri else module.connect(db_kwargs=kwargs)
    except Exception as e:  # drivers raise their own error types; their text may hold the URI
        raise ArrowSourceError(f"source {name!r}: uri: cannot connect ({type(e).__name__})") from None


def arrow_reader(cursor: Any) -> pa.RecordBatchReader | None:
    """The executed cursor's result as Arrow record batches, if the driver gives Arrow; else None."""
    if hasattr(cursor, "fetch_record_batch"):  # ADBC
        return cursor.fetch_record_batch()
    if hasattr(cursor, "fetchmany_arrow") and hasattr(cursor, "fetchall_arrow"):  # Databricks SQL connector
        first = cursor.fetchmany_arrow(ARROW_CHUNK_ROWS)

        def chunks() -> Any:
            table = first
            while table.num_rows:
                yield from table.to_batches()
                table = cursor.fetchmany_arrow(ARROW_CHUNK_ROWS)

        return pa.RecordBatchReader.from_batches(first.schema, chunks())
    return None


def stage_arrow(con: duckdb.DuckDBPyConnection, table: str, reader: pa.RecordBatchReader) -> int:
    """Scan `reader` into temp table `table`, every column as text (NULL stays NULL); returns rows.
    DuckDB consumes the batches as they come: the result never exists whole in Python."""
    names = reader.schema.names
    cols = ", ".join(f"{_text_sql(reader.schema.field(i).type, _quote(n))} AS {_quote(n)}" for i, n in enumerate(names))
    con.register("__arrow_source", reader)
    try:
        con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(f"CREATE TEMP TABLE {table} AS SELECT {cols} FROM __arrow_source")
    finally:
        con.unregister("__arrow_source")
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def stage_from_adbc(con: duckdb.DuckDBPyConnection, name: str, table: str, settings: SourceSettings, query: str) -> int:
    """Run `query` through the source's ADBC driver into temp table `table`; returns how many rows."""
    import adbc_driver_manager

    db = _database(name, settings)
    try:
        try:
            conn = adbc_driver_manager.AdbcConnection(db)
        except Exception as e:
            raise ArrowSourceError(f"source {name!r}: uri: cannot connect ({type(e).__name__})") from None
        try:
            stmt = adbc_driver_manager.AdbcStatement(conn)
            try:
                stmt.set_sql_query(query)
                stream, _ = stmt.execute_query()
                return stage_arrow(con, table, pa.RecordBatchReader.from_stream(stream))
            except duckdb.Error as e:
                raise ArrowSourceError(f"source {name!r}: reading the result failed: {mask_error(e)}") from None
            except Exception as e:
                raise ArrowSourceError(
                    f"source {name!r}: query: the query failed ({type(e).__name__}: {mask_error(first_line(e))})"
                ) from None
            finally:
                stmt.close()
        finally:
            conn.close()
    finally:
        db.close()


def _text_sql(kind: pa.DataType, col: str) -> str:
    """A column as the text the DB-API path gives (`str(value)` in Python) for the common types."""
    if pa.types.is_boolean(kind):
        return f"CASE WHEN {col} IS NULL THEN NULL WHEN {col} THEN 'True' ELSE 'False' END"
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return f"decode({col})"
    return f"CAST({col} AS VARCHAR)"


def native_client(kind: str, name: str, settings: SourceSettings, client: str) -> tuple[Any, dict[str, Any]]:
    """The client module of a `databricks` or `bigquery` source (imported only when such a source
    runs) and its `connect:` settings; an error naming the package when it is missing."""
    from audiencesync.settings.source import NATIVE_ARROW

    module, package, _, _ = NATIVE_ARROW[kind]
    try:
        found = importlib.import_module(module)
    except ImportError:
        raise ArrowSourceError(f"source {name!r}: type: {client} is not installed (pip install {package})") from None
    return found, dict(settings.connect) if isinstance(settings.connect, dict) else {}


def first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else ""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
