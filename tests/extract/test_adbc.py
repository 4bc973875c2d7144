"""Warehouses through Arrow (issue 15): a PostgreSQL table read by the ADBC driver reaches Facebook
(the emulator, over HTTP) exactly as the same rows from a CSV and through the DB-API fallback
(psycopg 3). Against a real PostgreSQL server the module starts itself (`postgres.py`)."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import httpx
import psycopg
import pyarrow as pa
import pytest
import yaml

from audiencesync.config import Config, ConfigError, SourceSettings, load_config, parse_config
from audiencesync.extract import adbc
from audiencesync.extract import source as source_mod
from audiencesync.extract.source import QuerySource, SourceError
from audiencesync.pipeline import sync

from .postgres import PostgresServer, binaries

COLUMNS = ("customer_id", "email", "phone", "first_name", "last_name", "city", "state", "zip", "country", "birthday")
NAMES = [("Zoë", "Łukasiewicz-Müller", "São Paulo"), ("Ñandú", "Øster", "Zürich"), ("美咲", "佐藤", "東京")]


def rows() -> list[dict[str, Any]]:
    """Clean customers, some with non-ASCII names and cities, some with NULL keys."""
    out = []
    for i in range(1, 41):
        plain = ("Ann" if i % 2 else "Bob", f"Smith{chr(97 + i % 26)}", "LA")
        first, last, city = NAMES[i % 3] if i % 4 == 0 else plain
        out.append(
            {
                "customer_id": i,
                "email": None if i % 7 == 0 else f"User{i}@Example.com ",
                "phone": None if i % 5 == 0 else f"+1 415 555 {i:04d}",
                "first_name": first,
                "last_name": None if i % 9 == 0 else last,
                "city": city,
                "state": "CA",
                "zip": "90001",
                "country": "US",
                "birthday": dt.date(1980 + i % 20, 1 + i % 12, 1 + i % 28),
            }
        )
    return out


def customers_csv(tmp_path: Path) -> Path:
    """`rows()` written as a CSV file, the reference source the warehouse doors are compared with."""
    path = tmp_path / "customers.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows())
    return path


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    found = binaries()
    if found is None:
        pytest.skip("no PostgreSQL binaries under /usr/lib/postgresql/*/bin (initdb, pg_ctl): install postgresql")
    server = PostgresServer(found).start()
    try:
        with psycopg.connect(server.uri, autocommit=True) as c:
            c.execute(
                """CREATE TABLE customers (customer_id integer PRIMARY KEY, email text, phone text, first_name text,
                   last_name text, city text, state text, zip text, country text, birthday date)"""
            )
            with c.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO customers VALUES ({', '.join(['%s'] * len(COLUMNS))})",
                    [tuple(r[k] for k in COLUMNS) for r in rows()],
                )
            c.execute(
                """CREATE TABLE typed AS SELECT * FROM (VALUES
                   (1, 12.50::numeric, 0.1::float8, true, '2024-01-05 10:00:00'::timestamp, 'Zoë'::text, 42::bigint),
                   (2, NULL, NULL, false, NULL, NULL, NULL)) AS t(id, amount, ratio, flag, seen, name, big)"""
            )
        yield server
    finally:
        server.stop()


def write_config(root: Path, emu: Any, sources: dict[str, Any], audiences: list[dict[str, Any]]) -> Path:
    doc = {
        "meta": {
            "graph_url": emu.url,
            "access_token": "${META_ACCESS_TOKEN}",
            "ad_account_id": "act_1234567890",
            "retry": {"base_delay_s": 0.01, "max_delay_s": 0.2, "max_attempts": 3},
        },
        "state": "state.duckdb",
        "guard": {"max_remove_share": 1.0, "allow_empty": True},
        "sources": sources,
        "audiences": [
            {
                "primary_key": "customer_id",
                "customer_file_source": "USER_PROVIDED_ONLY",
                "default_country": "US",
                "min_size": 1,
                "multi_key": True,
                "match_on_attributes": True,
                "forward": ["email"],
                **a,
            }
            for a in audiences
        ],
    }
    path = root / "audiencesync.yml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def config(root: Path, emu: Any, pg: PostgresServer, audiences: list[dict[str, Any]], **env: str) -> Config:
    sources = {
        "files": {"type": "duckdb"},
        "pg": {"type": "adbc", "driver": "adbc_driver_postgresql", "uri": "${PG_URI}"},
        "pg_dbapi": {"type": "dbapi", "driver": "psycopg", "connect": "${PG_URI}"},
    }
    path = write_config(root, emu, sources, audiences)
    return load_config(path, env={"META_ACCESS_TOKEN": emu.token, "PG_URI": pg.uri, **env})


def facebook(emu: Any) -> dict[str, list[dict[str, str]]]:
    """Each emulator audience's members, sorted, by name."""
    out = {}
    for a in httpx.get(f"{emu.url}/_emulator/audiences").json():
        members = httpx.get(f"{emu.url}/_emulator/audiences/{a['id']}/members").json()["members"]
        out[a["name"]] = sorted(members, key=lambda m: sorted(m.items()))
    return out


def test_a_sync_through_adbc_sends_what_the_same_rows_from_a_csv_and_the_dbapi_path_send(
    tmp_path: Path, emu: Any, pg: PostgresServer
) -> None:
    csv_path = customers_csv(tmp_path)
    query = "SELECT " + ", ".join(COLUMNS) + " FROM customers"
    cfg = config(
        tmp_path,
        emu,
        pg,
        [
            {"name": "From CSV", "source": "files", "query": f"select * from read_csv('{csv_path}', all_varchar=true)"},
            {"name": "From ADBC", "source": "pg", "query": query},
            {"name": "From DB-API", "source": "pg_dbapi", "query": query},
        ],
    )
    report = sync(cfg)
    assert [a.status for a in report.audiences] == ["ok", "ok", "ok"], [a.error for a in report.audiences]
    from_csv, from_adbc, from_dbapi = report.audiences
    assert from_adbc.rows_read == from_csv.rows_read == 40
    assert from_adbc.keys_found == from_csv.keys_found == from_dbapi.keys_found
    assert from_adbc.invalid == from_csv.invalid

    held = facebook(emu)
    for kind in ("", " (email)"):
        csv_rows = held[f"From CSV{kind}"]
        assert len(csv_rows) > 30
        assert held[f"From ADBC{kind}"] == csv_rows
        assert held[f"From DB-API{kind}"] == csv_rows
    # NULL emails are set aside, not sent as a hash of "None"; names in other scripts are hashed.
    assert len(held["From ADBC (email)"]) == 40 - len([i for i in range(1, 41) if i % 7 == 0])


def test_adbc_and_dbapi_stage_identical_text_for_typed_columns_and_nulls(pg: PostgresServer) -> None:
    con = duckdb.connect()
    adbc_src = QuerySource(
        con, "pg", SourceSettings(type="adbc", driver="adbc_driver_postgresql", uri=pg.uri), "SELECT * FROM typed"
    )
    via_adbc = con.execute(f"SELECT * FROM {adbc_src.subquery()} ORDER BY id").fetchall()
    dbapi_src = QuerySource(
        con, "pg2", SourceSettings(type="dbapi", driver="psycopg", connect=pg.uri), "SELECT * FROM typed"
    )
    via_dbapi = con.execute(f"SELECT * FROM {dbapi_src.subquery()} ORDER BY id").fetchall()
    assert via_adbc == via_dbapi
    assert via_adbc[0] == ("1", str(Decimal("12.50")), "0.1", "True", "2024-01-05 10:00:00", "Zoë", "42")
    assert via_adbc[1] == ("2", None, None, "False", None, None, None)
    assert {r[1] for r in con.execute(f"DESCRIBE {adbc_src.subquery()}").fetchall()} == {"VARCHAR"}


def test_the_adbc_path_converts_no_value_in_python(pg: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The DB-API fallback turns each value into text in Python (`_text`); Arrow never does."""

    def per_row(value: object) -> str:
        raise AssertionError("a value went through Python")

    monkeypatch.setattr(source_mod, "_text", per_row)
    con = duckdb.connect()
    src = QuerySource(
        con, "pg", SourceSettings(type="adbc", driver="adbc_driver_postgresql", uri=pg.uri), "SELECT * FROM customers"
    )
    assert con.execute(f"SELECT count(*) FROM {src.subquery()}").fetchall() == [(40,)]
    with pytest.raises(AssertionError, match="through Python"):
        QuerySource(con, "pg2", SourceSettings(type="dbapi", driver="psycopg", connect=pg.uri), "SELECT 1 AS x")


def test_errors_name_the_setting_and_never_show_the_uri(pg: PostgresServer) -> None:
    secret_uri = pg.uri.replace("postgres@", "postgres:s3cret-pw@").replace(str(pg.port), "1")
    con = duckdb.connect()
    with pytest.raises(SourceError) as refused:
        QuerySource(con, "pg", SourceSettings(type="adbc", driver="adbc_driver_postgresql", uri=secret_uri), "SELECT 1")
    assert "source 'pg': uri: cannot connect" in str(refused.value)
    assert "s3cret" not in str(refused.value) and "127.0.0.1" not in str(refused.value)

    with pytest.raises(SourceError) as failed:
        QuerySource(
            con,
            "pg",
            SourceSettings(type="adbc", driver="adbc_driver_postgresql", uri=pg.uri),
            "SELECT email FROM customers WHERE email = 'user3@example.com' AND 1/0 = 1",
        )
    assert "source 'pg': query: the query failed" in str(failed.value)
    assert "user3@example.com" not in str(failed.value)

    assert "s3cret" not in repr(SourceSettings(type="adbc", driver="adbc_driver_postgresql", uri=secret_uri))


@pytest.mark.parametrize(
    ("source", "env", "setting"),
    [
        ({"type": "adbc", "uri": "${PG_URI}"}, {"PG_URI": "postgresql://x"}, "sources.pg.driver"),
        ({"type": "adbc", "driver": "adbc_driver_oracle", "uri": "x"}, {}, "sources.pg.driver"),
        ({"type": "adbc", "driver": "adbc_driver_postgresql"}, {}, "sources.pg.uri"),
        ({"type": "adbc", "driver": "adbc_driver_postgresql", "uri": "${PG_URI}"}, {}, "PG_URI is not set"),
        ({"type": "dbapi", "driver": "psycopg", "uri": "postgresql://x"}, {}, "sources.pg.uri"),
    ],
)
def test_a_bad_adbc_config_stops_before_any_call_naming_the_setting(
    source: dict[str, Any], env: dict[str, str], setting: str
) -> None:
    doc = {
        "meta": {"access_token": "t", "ad_account_id": "act_1"},
        "sources": {"pg": source},
        "audiences": [{"name": "A", "source": "pg", "query": "SELECT 1", "customer_file_source": "USER_PROVIDED_ONLY"}],
    }
    with pytest.raises(ConfigError) as refused:
        parse_config(doc, env=env)
    assert setting in str(refused.value)
    assert "postgresql://x" not in str(refused.value)


class ArrowCursor:
    """A stand-in for the Databricks SQL connector's cursor (not installed here): it hands out the
    result in Arrow chunks through `fetchmany_arrow`, as that connector does. Mocked because the
    connector cannot run without a Databricks workspace."""

    def __init__(self, table: pa.Table):
        self.table, self.at = table, 0

    def fetchmany_arrow(self, size: int) -> pa.Table:
        chunk = self.table.slice(self.at, size)
        self.at += chunk.num_rows
        return chunk

    def fetchall_arrow(self) -> pa.Table:
        return self.fetchmany_arrow(self.table.num_rows)


def test_a_cursor_that_fetches_arrow_in_chunks_is_staged_whole_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adbc, "ARROW_CHUNK_ROWS", 3)
    table = pa.table({"id": pa.array(range(10), pa.int64()), "email": [f"u{i}@example.com" for i in range(9)] + [None]})
    reader = adbc.arrow_reader(ArrowCursor(table))
    assert reader is not None
    con = duckdb.connect()
    assert adbc.stage_arrow(con, "staged", reader) == 10
    rows = con.execute("SELECT id, email FROM staged ORDER BY id::INT").fetchall()
    assert rows[0] == ("0", "u0@example.com") and rows[-1] == ("9", None)
    assert adbc.arrow_reader(object()) is None  # any other DB-API cursor: the row-by-row fallback
