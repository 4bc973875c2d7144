"""Reading every input shape into the same columns: CSV, Parquet, JSONL, DuckDB queries, mParticle batches."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audiencesync.conversions.read import ReadError, Source, flatten_mparticle_batch

ROWS = [
    {"event_time": "1760000000", "product_action": "purchase", "order_id": "A1", "email": "a@example.com"},
    {"event_time": "1760000001", "product_action": "refund", "order_id": "A2", "email": "b@example.com"},
    {"event_time": "1760000002", "product_action": "view_detail", "order_id": "A3", "email": "c@example.com"},
]


def collect(source: Source) -> tuple[list[int], dict[str, list[object]]]:
    rows: list[int] = []
    cols: dict[str, list[object]] = {}
    for chunk in source.chunks():
        rows += chunk.rows
        for k, v in chunk.columns.items():
            cols.setdefault(k, []).extend(v)
    return rows, cols


def write_csv(path: Path) -> Path:
    lines = [",".join(ROWS[0])] + [",".join(r.values()) for r in ROWS]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_is_read_as_text_in_chunks_with_row_numbers(tmp_path: Path) -> None:
    src = Source(write_csv(tmp_path / "sales.csv"), chunk_rows=2)
    assert [len(c) for c in src.chunks()] == [2, 1]
    rows, cols = collect(src)
    assert rows == [1, 2, 3]
    assert cols["order_id"] == ["A1", "A2", "A3"]
    assert cols["event_time"] == ["1760000000", "1760000001", "1760000002"]
    assert src.total() == 3


def test_parquet_keeps_nested_products(tmp_path: Path) -> None:
    path = tmp_path / "sales.parquet"
    table = pa.table(
        {
            "order_id": ["A1"],
            "products": [[{"id": "P", "price": 2.5, "quantity": 2}]],
            "custom_attributes": ['{"store": "S1"}'],
        }
    )
    pq.write_table(table, path)
    _, cols = collect(Source(path))
    assert cols["products"] == [[{"id": "P", "price": 2.5, "quantity": 2}]]


def test_jsonl_flat_events_keep_their_own_attributes(tmp_path: Path) -> None:
    path = tmp_path / "sales.jsonl"
    path.write_text(
        "\n".join(json.dumps(r) for r in [{"order_id": "A1", "custom_attributes": {"a": 1}}, {"order_id": "A2"}])
    )
    rows, cols = collect(Source(path))
    assert rows == [1, 2]
    assert cols["custom_attributes"] == [{"a": 1}, None]


def test_query_over_a_file_sees_it_as_events(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "sales.csv")
    src = Source(path, query="select * from events where product_action <> 'refund'")
    _, cols = collect(src)
    assert cols["order_id"] == ["A1", "A3"]
    assert src.total() == 2


def test_query_over_a_duckdb_database(tmp_path: Path) -> None:
    db = tmp_path / "shop.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table sales as select * from (values ('A1', 'purchase')) t(order_id, product_action)")
    con.close()
    _, cols = collect(Source(db, query="select * from sales"))
    assert cols["order_id"] == ["A1"]


def test_query_alone(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "sales.csv")
    _, cols = collect(Source(query=f"select order_id from read_csv('{path}', all_varchar = true)"))
    assert cols == {"order_id": ["A1", "A2", "A3"]}


@pytest.mark.parametrize(
    ("name", "query", "message"),
    [
        ("missing.csv", None, "no such file"),
        ("shop.duckdb", None, "needs --query"),
        ("sales.xlsx", None, "unknown file type"),
    ],
)
def test_unreadable_inputs_are_named(tmp_path: Path, name: str, query: str | None, message: str) -> None:
    path = tmp_path / name
    if name != "missing.csv":
        path.write_text("x")
    with pytest.raises(ReadError, match=message):
        Source(path, query=query)


def test_a_failing_query_masks_quoted_values(tmp_path: Path) -> None:
    src = Source(query="select * from read_csv('secret@example.com.csv')")
    with pytest.raises(ReadError) as e:
        list(src.chunks())
    assert "secret@example.com" not in str(e.value)


BATCH = {
    "environment": "production",
    "user_identities": {
        "email": "Ann@Example.com", "customer_id": "C-1", "other": "f" * 64, "mobile_number": "+14155550100",
    },
    "user_attributes": {"$FirstName": "Ann", "$LastName": "Lee", "$Gender": "female", "$City": "San Francisco",
                        "$State": "CA", "$Zip": "94103", "$Country": "US", "tier": "gold"},
    "device_info": {"ios_advertising_id": "AEBE52E7-03EE-455A-B3C4-E57283966239"},
    "events": [
        {
            "event_type": "commerce_event",
            "data": {
                "timestamp_unixtime_ms": 1760000000123,
                "currency_code": "USD",
                "custom_attributes": {"store": "SF-01"},
                "product_action": {
                    "action": "purchase",
                    "transaction_id": "T-1",
                    "total_amount": 42.0,
                    "products": [{"id": "P1", "name": "Mug", "price": 21.0, "quantity": 2}],
                },
            },
        },
        {"event_type": "custom_event", "data": {"event_name": "hello", "custom_event_type": "other"}},
    ],
}  # fmt: skip


def test_mparticle_batches_are_flattened_one_row_per_event() -> None:
    rows = flatten_mparticle_batch(BATCH)
    assert len(rows) == 2
    purchase = rows[0]
    assert purchase["event_time"] == 1760000000.123
    assert purchase["product_action"] == "purchase"
    assert purchase["order_id"] == "T-1"
    assert purchase["value"] == 42.0
    assert purchase["currency"] == "USD"
    assert purchase["products"] == [{"id": "P1", "name": "Mug", "price": 21.0, "quantity": 2}]
    assert purchase["custom_attributes"] == {"store": "SF-01"}
    assert purchase["email"] == "Ann@Example.com"
    assert purchase["other"] == "f" * 64
    assert purchase["customer_id"] == "C-1"
    assert purchase["phone"] == "+14155550100"
    assert purchase["idfa"] == "AEBE52E7-03EE-455A-B3C4-E57283966239"
    assert (purchase["first_name"], purchase["last_name"], purchase["gender"]) == ("Ann", "Lee", "female")
    assert (purchase["city"], purchase["state"], purchase["zip"], purchase["country"]) == (
        "San Francisco",
        "CA",
        "94103",
        "US",
    )
    assert "tier" not in purchase
    assert rows[1]["event_type"] == "custom_event" and "product_action" not in rows[1]


@pytest.mark.parametrize("layout", ["jsonl", "array", "single"])
def test_mparticle_files_in_every_layout(tmp_path: Path, layout: str) -> None:
    path = tmp_path / ("batches.jsonl" if layout == "jsonl" else "batches.json")
    if layout == "jsonl":
        path.write_bytes(orjson.dumps(BATCH) + b"\n" + orjson.dumps(BATCH) + b"\n")
        expected = 4
    elif layout == "array":
        path.write_bytes(orjson.dumps([BATCH, BATCH, BATCH]))
        expected = 6
    else:
        path.write_text(json.dumps(BATCH, indent=2))
        expected = 2
    src = Source(path)
    rows, cols = collect(src)
    assert rows == list(range(1, expected + 1))
    assert src.total() == expected
    assert cols["order_id"][0] == "T-1"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("1700000000,purchase,O1,a@b.io\n1700000000,purchase,O2,b@b.io,x\n", "line 3: 5 values where the header has 4"),
        ('1700000000,purchase,"O1,a@b.io\n1700000000,purchase,O2,b@b.io\n', "line 2: a quoted value is never closed"),
    ],
)
def test_csv_reads_are_strict_and_name_the_line(tmp_path: Path, body: str, message: str) -> None:
    """A ragged row or a broken quote stops the read (as `extract/csv_guard.py` does for audiences),
    for a file and for a query over it: no sniffer silently reads a different table."""
    path = tmp_path / "sales.csv"
    path.write_text("event_time,product_action,order_id,email\n" + body)
    for src in (Source(path), Source(path, query="select * from events")):
        with pytest.raises(ReadError, match=message) as e:
            list(src.chunks())
        assert "b@b.io" not in str(e.value) and "a@b.io" not in str(e.value)
