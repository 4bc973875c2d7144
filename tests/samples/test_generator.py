"""The seeded messy customers: deterministic, messy in the promised ways, bundled as CSV."""

from __future__ import annotations

import math

import pyarrow.compute as pc

from audiencesync.samples import SAMPLE_ROWS, customers_csv, generate_customers, load_customers
from audiencesync.samples.generator import SCHEMA


def _plain(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in rows]


def test_same_seed_same_table_other_seed_other_table() -> None:
    assert _plain(generate_customers(300, seed=7).to_pylist()) == _plain(generate_customers(300, seed=7).to_pylist())
    assert _plain(generate_customers(300, seed=7).to_pylist()) != _plain(generate_customers(300, seed=8).to_pylist())


def test_schema_and_size() -> None:
    table = generate_customers(123)
    assert table.num_rows == 123
    assert table.schema == SCHEMA


def test_the_mess_is_there() -> None:
    table = generate_customers(5000, seed=0)
    phones = table.column("phone").to_pylist()
    emails = [e for e in table.column("email").to_pylist() if e]
    assert any(p and p.startswith("+44 (0)") for p in phones)
    assert any(p and p.startswith("00 ") for p in phones)
    assert any(p and p.endswith(".0") for p in phones)
    assert any(len(e) == 64 for e in emails)
    assert any(e != e.strip() or e != e.lower() for e in emails)
    zips = [z for z in table.column("zip").to_pylist() if z]
    assert any("-" in z and len(z) == 10 for z in zips)
    assert any(z.isdigit() and len(z) in (3, 4) for z in zips)
    assert {"N.Y.", "New York"} <= set(table.column("state").to_pylist())
    assert "Köln" in set(table.column("city").to_pylist())
    assert "00000000-0000-0000-0000-000000000000" in set(table.column("madid").to_pylist())
    assert pc.count_distinct(table.column("country")).as_py() > 20


def test_bundled_csv_is_the_generated_sample() -> None:
    path = customers_csv()
    assert path.is_file()
    table = load_customers(path)
    assert table.num_rows == SAMPLE_ROWS
    assert table.schema == SCHEMA
