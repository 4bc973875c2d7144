"""The Parquet mirror of one audience's acknowledged state, written for the Spark engine to read.

The DuckDB ledger (`state/ledger.py`) stays the only truth: the mirror is a copy of two of its
facts for one configured audience, `st.source_rows` (pk, raw_fp) and the `st.fb_rows` of its
Facebook audiences (fb_id, pk, row_fp), without payloads (Spark joins on 64-bit fingerprints; the
few payloads a removal needs are read back from the ledger). Fingerprints are stored as signed
BIGINT because Spark has no unsigned 64-bit type.

A manifest beside the files records a checksum of the ledger rows it was made from (counts and
order-free sums of hashes). `ensure` compares it with the ledger before every Spark plan and
rebuilds the mirror when they differ: a lost or stale mirror (a crash between a commit and the
refresh, a run by the embedded engine, a deleted directory) is found and rebuilt, never trusted.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from audiencesync.settings.spark import SparkSettings

TWO_64 = "18446744073709551616::HUGEINT"
MANIFEST = "manifest.json"


def signed(col: str) -> str:
    """SQL: a UBIGINT fingerprint as the BIGINT with the same 64 bits (Spark's `long`)."""
    return (
        f"CAST(CASE WHEN {col} >= 9223372036854775808 THEN {col}::HUGEINT - {TWO_64} ELSE {col}::HUGEINT END AS BIGINT)"
    )


def unsigned(col: str) -> str:
    """SQL: a BIGINT from Spark back to the ledger's UBIGINT fingerprint (the same 64 bits)."""
    return f"CAST(({col}::HUGEINT + {TWO_64}) % {TWO_64} AS UBIGINT)"


@dataclass(frozen=True)
class Checksum:
    """What the mirror was made from; equal checksums mean the mirror holds the ledger's rows."""

    source_rows: int
    source_sum: str
    fb_rows: int
    fb_sum: str


@dataclass(frozen=True)
class Mirror:
    """Where Spark reads one audience's acknowledged state."""

    source_rows: str
    fb_rows: str
    rebuilt: bool


def root(state: str, settings: SparkSettings | None) -> Path:
    """Where the mirrors live: `spark.state_dir` (relative: beside the state file), else `<state>.spark`."""
    if settings is None or settings.state_dir is None:
        return Path(f"{state}.spark")
    p = Path(settings.state_dir)
    return p if p.is_absolute() else Path(state).parent / p


def directory(root: str | Path, audience_key: str) -> Path:
    return Path(root) / re.sub(r"[^A-Za-z0-9_.-]", "_", audience_key)


def checksum(con: duckdb.DuckDBPyConnection, audience_key: str) -> Checksum:
    src = con.execute(
        "SELECT count(*), coalesce(sum(hash(pk, raw_fp)::HUGEINT), 0) FROM st.source_rows WHERE audience_key = ?",
        [audience_key],
    ).fetchall()[0]
    fb = con.execute(
        """SELECT count(*), coalesce(sum(hash(fb_id, pk, row_fp)::HUGEINT), 0) FROM st.fb_rows
           WHERE fb_id IN (SELECT fb_id FROM st.fb_audiences WHERE audience_key = ?)""",
        [audience_key],
    ).fetchall()[0]
    return Checksum(int(src[0]), str(src[1]), int(fb[0]), str(fb[1]))


def ensure(con: duckdb.DuckDBPyConnection, audience_key: str, root: str | Path) -> Mirror:
    """The mirror of this audience's ledger rows, rebuilt first if it does not match them."""
    where = directory(root, audience_key)
    now = checksum(con, audience_key)
    if _manifest(where) != now:
        _rebuild(con, audience_key, where, now)
        return Mirror(str(where / "source_rows"), str(where / "fb_rows"), rebuilt=True)
    return Mirror(str(where / "source_rows"), str(where / "fb_rows"), rebuilt=False)


def refresh(con: duckdb.DuckDBPyConnection, audience_key: str, root: str | Path) -> bool:
    """After a run's commits: bring the mirror in step with the ledger. True if it was rewritten."""
    return ensure(con, audience_key, root).rebuilt


def _manifest(where: Path) -> Checksum | None:
    try:
        return Checksum(**json.loads((where / MANIFEST).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _rebuild(con: duckdb.DuckDBPyConnection, audience_key: str, where: Path, made_from: Checksum) -> None:
    """Write both tables to fresh directories, swap them in, and write the manifest last: a crash
    half-way leaves no manifest, so the next `ensure` rebuilds."""
    where.mkdir(parents=True, exist_ok=True)
    (where / MANIFEST).unlink(missing_ok=True)
    key = audience_key.replace("'", "''")
    queries = {
        "source_rows": f"SELECT pk, {signed('raw_fp')} AS raw_fp FROM st.source_rows WHERE audience_key = '{key}'",
        "fb_rows": f"""SELECT fb_id, pk, {signed("row_fp")} AS row_fp FROM st.fb_rows
                      WHERE fb_id IN (SELECT fb_id FROM st.fb_audiences WHERE audience_key = '{key}')""",
    }
    for name, sql in queries.items():
        fresh, final = where / f"{name}.new", where / name
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir()
        path = str(fresh / "part-0.parquet").replace("'", "''")
        con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet, COMPRESSION zstd)")
        shutil.rmtree(final, ignore_errors=True)
        fresh.rename(final)
    (where / MANIFEST).write_text(json.dumps(asdict(made_from)))
