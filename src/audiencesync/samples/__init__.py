"""Messy sample customers for the demo, the tests and the benchmarks."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from audiencesync.samples.generator import SCHEMA, generate_customers

SAMPLE_ROWS = 300
SAMPLE_SEED = 2


def customers_csv() -> Path:
    """The bundled `customers.csv` (generate_customers(300, seed=2)), shipped as package data."""
    return Path(str(resources.files(__name__).joinpath("customers.csv")))


def load_customers(path: Path | None = None) -> pa.Table:
    """Read a customers CSV with every column typed as the generator types it (ZIPs stay text)."""
    options = pacsv.ConvertOptions(
        column_types={field.name: field.type for field in SCHEMA},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    return pacsv.read_csv(path or customers_csv(), convert_options=options)


def write_customers_csv(path: Path, rows: int = SAMPLE_ROWS, seed: int = SAMPLE_SEED) -> None:
    pacsv.write_csv(generate_customers(rows, seed), path)


__all__ = ["SAMPLE_ROWS", "SAMPLE_SEED", "customers_csv", "generate_customers", "load_customers", "write_customers_csv"]
