"""`type: databricks`: a Databricks SQL warehouse read through the connector's Arrow fetch.

The connector (`databricks-sql-connector`) is not installed here and a Databricks workspace cannot
run here, so `databricks.sql` is an in-process fake that implements exactly the documented methods
the reader uses (`sql.connect(server_hostname=, http_path=, access_token=)`, `Connection.cursor()`
and `close()`, `Cursor.execute(operation)`, `fetchmany_arrow(size)`, `fetchall_arrow()`, `close()`),
serving its result from an Arrow table as the connector does. Everything after it is real: DuckDB,
the match keys, the uploader and the emulator over HTTP.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from audiencesync.config import ConfigError, SourceSettings, load_config, parse_config
from audiencesync.extract.source import QuerySource, SourceError
from audiencesync.pipeline import sync

from .test_adbc import COLUMNS, customers_csv, facebook, rows, write_config


class FakeCursor:
    def __init__(self, warehouse: FakeWarehouse):
        self.warehouse = warehouse
        self.result: pa.Table | None = None
        self.at = 0

    def execute(self, operation: str, parameters: dict[str, Any] | None = None) -> FakeCursor:
        if "no_such_table" in operation:
            raise RuntimeError("[TABLE_OR_VIEW_NOT_FOUND] no_such_table; near 'user3@example.com'")
        self.warehouse.queries.append(operation)
        self.result = self.warehouse.table
        return self

    def fetchmany_arrow(self, size: int) -> pa.Table:
        assert self.result is not None
        chunk = self.result.slice(self.at, size)
        self.at += chunk.num_rows
        self.warehouse.fetches.append(chunk.num_rows)
        return chunk

    def fetchall_arrow(self) -> pa.Table:
        assert self.result is not None
        return self.fetchmany_arrow(self.result.num_rows - self.at)

    def fetchall(self) -> list[Any]:
        raise AssertionError("a row fetch: the reader must take Arrow")

    fetchmany = fetchone = fetchall

    def close(self) -> None:
        self.warehouse.closed.append("cursor")


class FakeConnection:
    def __init__(self, warehouse: FakeWarehouse):
        self.warehouse = warehouse

    def cursor(self) -> FakeCursor:
        return FakeCursor(self.warehouse)

    def close(self) -> None:
        self.warehouse.closed.append("connection")


class FakeWarehouse:
    """The fake `databricks.sql` module's state: the table every query returns, what was asked."""

    def __init__(self, table: pa.Table):
        self.table = table
        self.queries: list[str] = []
        self.fetches: list[int] = []
        self.closed: list[str] = []
        self.connected: list[dict[str, Any]] = []

    def connect(self, server_hostname: str, http_path: str, access_token: str | None = None, **kw: Any) -> Any:
        if access_token == "wrong":
            raise PermissionError(f"Invalid access token {access_token} for {server_hostname}")
        self.connected.append({"server_hostname": server_hostname, "http_path": http_path})
        return FakeConnection(self)


def customers_arrow() -> pa.Table:
    """The warehouse's typed table: integers, text with NULLs, a date."""
    data = rows()
    types_ = {"customer_id": pa.int64(), "birthday": pa.date32()}
    return pa.table({c: pa.array([r[c] for r in data], types_.get(c, pa.string())) for c in COLUMNS})


@pytest.fixture
def warehouse(monkeypatch: pytest.MonkeyPatch) -> FakeWarehouse:
    fake = FakeWarehouse(customers_arrow())
    module = types.ModuleType("databricks.sql")
    module.connect = fake.connect  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "databricks.sql", module)
    monkeypatch.setattr("audiencesync.extract.adbc.ARROW_CHUNK_ROWS", 16)
    return fake


AUDIENCE = {"name": "A", "source": "lake", "query": "SELECT 1", "customer_file_source": "USER_PROVIDED_ONLY"}
SOURCE = {
    "type": "databricks",
    "connect": {"server_hostname": "dbc-1.cloud.databricks.com", "http_path": "/sql/1.0/w/1", "access_token": "${DBT}"},
}


def test_a_sync_through_databricks_sends_what_the_same_rows_from_a_csv_send(
    tmp_path: Path, emu: Any, warehouse: FakeWarehouse
) -> None:
    csv_path = customers_csv(tmp_path)
    path = write_config(
        tmp_path,
        emu,
        {"files": {"type": "duckdb"}, "lake": SOURCE},
        [
            {"name": "From CSV", "source": "files", "query": f"select * from read_csv('{csv_path}', all_varchar=true)"},
            {"name": "From Databricks", "source": "lake", "query": "SELECT * FROM main.crm.customers"},
        ],
    )
    cfg = load_config(path, env={"META_ACCESS_TOKEN": emu.token, "DBT": "dapi-secret"})
    report = sync(cfg)
    assert [a.status for a in report.audiences] == ["ok", "ok"], [a.error for a in report.audiences]
    from_csv, from_dbx = report.audiences
    assert from_dbx.rows_read == from_csv.rows_read == 40
    assert from_dbx.keys_found == from_csv.keys_found and from_dbx.invalid == from_csv.invalid
    held = facebook(emu)
    for kind in ("", " (email)"):
        assert len(held[f"From CSV{kind}"]) > 30
        assert held[f"From Databricks{kind}"] == held[f"From CSV{kind}"]
    assert warehouse.queries == ["SELECT * FROM main.crm.customers"]
    assert warehouse.fetches[:3] == [16, 16, 8]  # read in Arrow chunks, never row by row
    assert warehouse.closed == ["cursor", "connection"]


def test_databricks_errors_name_the_setting_and_never_show_the_token(warehouse: FakeWarehouse) -> None:
    import duckdb

    con = duckdb.connect()
    bad = {**SOURCE["connect"], "access_token": "wrong"}  # type: ignore[dict-item]
    with pytest.raises(SourceError) as refused:
        QuerySource(con, "lake", SourceSettings(type="databricks", connect=bad), "SELECT 1")
    assert "source 'lake': connect: cannot connect (PermissionError)" in str(refused.value)
    assert "wrong" not in str(refused.value) and "dbc-1" not in str(refused.value)

    good = SourceSettings(type="databricks", connect={**SOURCE["connect"], "access_token": "t"})  # type: ignore[dict-item]
    with pytest.raises(SourceError) as failed:
        QuerySource(con, "lake", good, "SELECT * FROM no_such_table")
    assert "source 'lake': query: the query failed (RuntimeError" in str(failed.value)
    assert "user3@example.com" not in str(failed.value)
    assert warehouse.closed == ["cursor", "connection"]


@pytest.mark.parametrize(
    ("connect", "setting"),
    [
        ({"http_path": "/sql/1.0/w/1"}, "sources.lake.connect.server_hostname"),
        ({"server_hostname": "h"}, "sources.lake.connect.http_path"),
        ({"server_hostname": "h", "http_path": "p", "pasword": "x"}, "sources.lake.connect.pasword"),
        ("dbc-1", "sources.lake.connect"),
    ],
)
def test_a_bad_databricks_config_stops_before_any_call(warehouse: FakeWarehouse, connect: Any, setting: str) -> None:
    doc = {
        "meta": {"access_token": "t", "ad_account_id": "act_1"},
        "sources": {"lake": {"type": "databricks", "connect": connect}},
        "audiences": [AUDIENCE],
    }
    with pytest.raises(ConfigError) as refused:
        parse_config(doc, env={})
    assert setting in str(refused.value)
    assert not warehouse.connected


def test_without_the_connector_the_config_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "databricks.sql", raising=False)
    monkeypatch.setitem(sys.modules, "databricks", None)  # as if not installed, even where it is
    doc = {
        "meta": {"access_token": "t", "ad_account_id": "act_1"},
        "sources": {"lake": SOURCE},
        "audiences": [AUDIENCE],
    }
    with pytest.raises(ConfigError) as refused:
        parse_config(doc, env={"DBT": "t"})
    assert "sources.lake.type: a databricks source needs its client: pip install databricks-sql-connector" in str(
        refused.value
    )
