"""BigQuery read as Arrow: the BigQuery client's own record batches, no Python per row.

`google.cloud.bigquery.Client.query(sql)` starts a query job; its `result()` (a `RowIterator`)
gives the rows as `pyarrow.RecordBatch`es through `to_arrow_iterable()` (page by page over the REST
API, or through the BigQuery Storage API's Arrow streams when `google-cloud-bigquery-storage` is
installed and the client chooses it). DuckDB scans the batches as they come (`adbc.stage_arrow`):
the result never exists whole in Python. An empty result yields no batch, so its columns are taken
from `to_arrow()`, which returns an empty table with the result's schema.

Credentials are Google's Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, the
metadata server); `connect:` only passes `project` and `location`. The client is an optional
package, imported only when a `type: bigquery` source is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa

from audiencesync.config import SourceSettings
from audiencesync.extract import adbc
from audiencesync.extract.masking import mask_error


def stage(con: duckdb.DuckDBPyConnection, name: str, table: str, settings: SourceSettings, query: str) -> int:
    """Run `query` in BigQuery into temp table `table`, as Arrow; returns how many rows."""
    bigquery, connect = adbc.native_client("bigquery", name, settings, "the BigQuery client")
    try:
        client = bigquery.Client(**connect)
    except Exception as e:  # missing or unusable credentials, an unknown project
        raise adbc.ArrowSourceError(
            f"source {name!r}: connect: cannot create the client ({type(e).__name__})"
        ) from None
    try:
        try:
            rows = client.query(query).result()
        except Exception as e:
            raise adbc.ArrowSourceError(
                f"source {name!r}: query: the query failed ({type(e).__name__}: {mask_error(adbc.first_line(e))})"
            ) from None
        try:
            return adbc.stage_arrow(con, table, _reader(rows))
        except duckdb.Error as e:
            raise adbc.ArrowSourceError(f"source {name!r}: reading the result failed: {mask_error(e)}") from None
    finally:
        client.close()


def _reader(rows: Any) -> pa.RecordBatchReader:
    """The `RowIterator`'s batches as one reader; its schema from the first batch (or `to_arrow()`
    when there is none)."""
    batches: Iterator[pa.RecordBatch] = iter(rows.to_arrow_iterable())
    first = next(batches, None)
    if first is None:
        empty = rows.to_arrow()
        return pa.RecordBatchReader.from_batches(empty.schema, empty.to_batches())

    def all_batches() -> Iterator[pa.RecordBatch]:
        yield first
        yield from batches

    return pa.RecordBatchReader.from_batches(first.schema, all_batches())
