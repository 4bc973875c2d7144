"""A Databricks SQL warehouse read as Arrow: the Databricks SQL connector's own Arrow fetch, no Python per row.

The connector (`databricks-sql-connector`, module `databricks.sql`) downloads a query's result as
Arrow (inline or from cloud storage) and hands it out as `pyarrow.Table` chunks through
`cursor.fetchmany_arrow(size)`; DuckDB scans those chunks as they come (`adbc.stage_arrow`), each
column cast to text by DuckDB, the same text the DB-API and ADBC paths give. The connector is an
optional package, imported only when a `type: databricks` source is read. The access token is never
logged and never part of an error (only the error's type, and the query error's masked first line).
"""

from __future__ import annotations

import duckdb

from audiencesync.config import SourceSettings
from audiencesync.extract import adbc
from audiencesync.extract.masking import mask_error


def stage(con: duckdb.DuckDBPyConnection, name: str, table: str, settings: SourceSettings, query: str) -> int:
    """Run `query` on the warehouse into temp table `table`, as Arrow; returns how many rows."""
    sql, connect = adbc.native_client("databricks", name, settings, "the Databricks SQL connector")
    try:
        conn = sql.connect(**connect)
    except Exception as e:  # the connector's errors may quote the host or the token
        raise adbc.ArrowSourceError(f"source {name!r}: connect: cannot connect ({type(e).__name__})") from None
    try:
        cursor = conn.cursor()
        try:
            try:
                cursor.execute(query)
            except Exception as e:
                raise adbc.ArrowSourceError(
                    f"source {name!r}: query: the query failed ({type(e).__name__}: {mask_error(adbc.first_line(e))})"
                ) from None
            reader = adbc.arrow_reader(cursor)
            if reader is None:
                raise adbc.ArrowSourceError(f"source {name!r}: type: this connector's cursor does not fetch Arrow")
            try:
                return adbc.stage_arrow(con, table, reader)
            except duckdb.Error as e:
                raise adbc.ArrowSourceError(f"source {name!r}: reading the result failed: {mask_error(e)}") from None
        finally:
            cursor.close()
    finally:
        conn.close()
