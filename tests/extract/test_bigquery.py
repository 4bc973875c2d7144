"""`type: bigquery`: BigQuery read through the client's Arrow record batches.

The client (`google-cloud-bigquery`) is not installed here and BigQuery cannot run here, so
`google.cloud.bigquery` is an in-process fake that implements exactly the documented methods the
reader uses (`bigquery.Client(project=, location=)`, `Client.query(query)` returning a job,
`QueryJob.result()` returning a `RowIterator`, `RowIterator.to_arrow_iterable()` yielding
`pyarrow.RecordBatch`es and `RowIterator.to_arrow()`, `Client.close()`), paging its result from an
Arrow table as the client does. Everything after it is real: DuckDB, the match keys, the uploader
and the emulator over HTTP.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from audiencesync.config import ConfigError, SourceSettings, load_config, parse_config
from audiencesync.extract.source import QuerySource, SourceError
from audiencesync.pipeline import sync

from .test_adbc import COLUMNS, facebook, rows, write_config
from .test_databricks import customers_arrow


class FakeRowIterator:
    def __init__(self, project: FakeProject, table: pa.Table):
        self.project, self.table = project, table

    def to_arrow_iterable(self, bqstorage_client: Any = None, max_queue_size: int = 1) -> Iterator[pa.RecordBatch]:
        for batch in self.table.to_batches(max_chunksize=self.project.page_rows):
            self.project.pages.append(batch.num_rows)
            yield batch

    def to_arrow(self, bqstorage_client: Any = None, create_bqstorage_client: bool = True) -> pa.Table:
        self.project.whole.append(self.table.num_rows)
        return self.table

    def __iter__(self) -> Iterator[Any]:
        raise AssertionError("a row fetch: the reader must take Arrow")


class FakeQueryJob:
    def __init__(self, project: FakeProject, table: pa.Table):
        self.project, self.table = project, table

    def result(self, page_size: int | None = None, timeout: float | None = None) -> FakeRowIterator:
        return FakeRowIterator(self.project, self.table)


class FakeProject:
    """The fake `google.cloud.bigquery` module's state: its tables, what was asked."""

    def __init__(self) -> None:
        self.page_rows = 16
        self.queries: list[str] = []
        self.pages: list[int] = []
        self.whole: list[int] = []
        self.clients: list[dict[str, Any]] = []
        self.closed = 0

    def client(self, project: str | None = None, location: str | None = None, **kw: Any) -> Any:
        if project == "no-credentials":
            raise OSError("Your default credentials were not found; token ya29.secret")
        self.clients.append({"project": project, "location": location})
        me = self

        class Client:
            def query(self, query: str, job_config: Any = None) -> FakeQueryJob:
                if "no_such_table" in query:
                    raise LookupError("404 Not found: Table p:crm.no_such_table was not found near 'user3@example.com'")
                me.queries.append(query)
                table = customers_arrow()
                return FakeQueryJob(me, table.slice(0, 0) if "WHERE FALSE" in query else table)

            def close(self) -> None:
                me.closed += 1

        return Client()


@pytest.fixture
def bq(monkeypatch: pytest.MonkeyPatch) -> FakeProject:
    fake = FakeProject()
    module = types.ModuleType("google.cloud.bigquery")
    module.Client = fake.client  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google.cloud.bigquery", module)
    return fake


def test_a_sync_through_bigquery_sends_what_the_same_rows_through_databricks_send(
    tmp_path: Path, emu: Any, bq: FakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same typed table through BigQuery and through the DuckDB path (an Arrow table in a
    Parquet file): the same members on Facebook."""
    parquet = tmp_path / "customers.parquet"
    import pyarrow.parquet as pq

    pq.write_table(customers_arrow(), parquet)
    path = write_config(
        tmp_path,
        emu,
        {"files": {"type": "duckdb"}, "bq": {"type": "bigquery", "connect": {"project": "acme", "location": "EU"}}},
        [
            {"name": "From Parquet", "source": "files", "query": f"select * from read_parquet('{parquet}')"},
            {"name": "From BigQuery", "source": "bq", "query": "SELECT * FROM crm.customers"},
        ],
    )
    report = sync(load_config(path, env={"META_ACCESS_TOKEN": emu.token}))
    assert [a.status for a in report.audiences] == ["ok", "ok"], [a.error for a in report.audiences]
    from_file, from_bq = report.audiences
    assert from_bq.rows_read == from_file.rows_read == len(rows())
    assert from_bq.keys_found == from_file.keys_found and from_bq.invalid == from_file.invalid
    held = facebook(emu)
    for kind in ("", " (email)"):
        assert len(held[f"From Parquet{kind}"]) > 30
        assert held[f"From BigQuery{kind}"] == held[f"From Parquet{kind}"]
    assert bq.clients == [{"project": "acme", "location": "EU"}]
    assert bq.queries == ["SELECT * FROM crm.customers"] and bq.closed == 1
    assert bq.pages == [16, 16, 8] and not bq.whole  # page by page as Arrow, never the whole result at once


def test_an_empty_result_keeps_its_columns(bq: FakeProject) -> None:
    con = duckdb.connect()
    src = QuerySource(con, "bq", SourceSettings(type="bigquery"), "SELECT * FROM crm.customers WHERE FALSE")
    assert [c.lower() for c in src.columns()] == list(COLUMNS)
    assert con.execute(f"SELECT count(*) FROM {src.subquery()}").fetchall() == [(0,)]


def test_bigquery_errors_name_the_setting_and_hide_values(bq: FakeProject) -> None:
    con = duckdb.connect()
    with pytest.raises(SourceError) as refused:
        QuerySource(con, "bq", SourceSettings(type="bigquery", connect={"project": "no-credentials"}), "SELECT 1")
    assert "source 'bq': connect: cannot create the client (OSError)" in str(refused.value)
    assert "ya29" not in str(refused.value)
    with pytest.raises(SourceError) as failed:
        QuerySource(con, "bq", SourceSettings(type="bigquery"), "SELECT * FROM crm.no_such_table")
    assert "source 'bq': query: the query failed (LookupError" in str(failed.value)
    assert "user3@example.com" not in str(failed.value)
    assert bq.closed == 1  # the client made for the failed query was closed


def test_a_bad_bigquery_config_stops_before_any_call(bq: FakeProject, monkeypatch: pytest.MonkeyPatch) -> None:
    doc: dict[str, Any] = {
        "meta": {"access_token": "t", "ad_account_id": "act_1"},
        "sources": {"bq": {"type": "bigquery", "connect": {"project": "p", "credentials": "x"}}},
        "audiences": [{"name": "A", "source": "bq", "query": "SELECT 1", "customer_file_source": "USER_PROVIDED_ONLY"}],
    }
    with pytest.raises(ConfigError) as refused:
        parse_config(doc, env={})
    assert "sources.bq.connect.credentials: not a bigquery setting" in str(refused.value)
    monkeypatch.setitem(sys.modules, "google.cloud.bigquery", None)  # as if not installed, even where it is
    doc["sources"]["bq"]["connect"] = {"project": "p"}
    with pytest.raises(ConfigError) as missing:
        parse_config(doc, env={})
    assert "sources.bq.type: a bigquery source needs its client: pip install google-cloud-bigquery" in str(
        missing.value
    )
    assert not bq.clients
