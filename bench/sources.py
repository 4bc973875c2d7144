"""Benchmark of warehouse sources: 1M rows from PostgreSQL through ADBC (Arrow) and through DB-API.

A real PostgreSQL server is started for the run (`initdb` + `pg_ctl` into a temporary directory, on
127.0.0.1 with a free port, as `nobody` when run as root; `tests/extract/postgres.py`), and a table
of `--rows` customers (ten text and date columns, as a CRM export has them) is generated inside it.
Each path then reads the whole table the way the pipeline does, into the source's DuckDB temp
table (`QuerySource`, which stages the result once for the planner): `type: adbc` with
`adbc_driver_postgresql` (Arrow record batches scanned by DuckDB) and `type: dbapi` with psycopg 3
(rows fetched in Python, every value turned into text, 50,000 at a time). Each read runs in a
child process of its own, so its peak memory (the child's max RSS, Python and DuckDB together) is
its own; the paths alternate, `--repeat` times each. Prints rows/s and peak memory side by side,
and the machine's load.

Usage: .venv/bin/python bench/sources.py [--rows 1000000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUERY = "SELECT * FROM customers"
PATHS = {
    "adbc": {"type": "adbc", "driver": "adbc_driver_postgresql"},
    "dbapi": {"type": "dbapi", "driver": "psycopg"},
}


def child(path: str, uri: str) -> None:
    """One read, in this process; prints its rows, seconds and peak RSS as JSON."""
    import duckdb

    from audiencesync.config import SourceSettings
    from audiencesync.extract.source import QuerySource

    importlib.import_module(PATHS[path]["driver"])  # imports are not reads: both paths import first
    settings = dict(PATHS[path])
    settings["uri" if path == "adbc" else "connect"] = uri
    con = duckdb.connect(config={"memory_limit": "768MB"})
    t0 = time.perf_counter()
    src = QuerySource(con, "pg", SourceSettings(**settings), QUERY)
    rows = con.execute(f"SELECT count(*) FROM {src.subquery()}").fetchall()[0][0]
    took = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "seconds": took, "peak_mb": peak_mb}))


def load(uri: str, rows: int) -> float:
    import psycopg

    t0 = time.perf_counter()
    with psycopg.connect(uri, autocommit=True) as c:
        c.execute(
            """CREATE TABLE customers AS
               SELECT i AS customer_id, 'user' || i || '@example.com' AS email,
                      '+1 415 555 ' || lpad((i %% 10000)::text, 4, '0') AS phone,
                      (ARRAY['Ann', 'Bob', 'Zoë', 'Łukasz'])[1 + i %% 4] AS first_name,
                      'Smith' || (i %% 97) AS last_name,
                      (ARRAY['Los Angeles', 'São Paulo', 'Zürich'])[1 + i %% 3] AS city, 'CA' AS state,
                      lpad((90000 + i %% 1000)::text, 5, '0') AS zip, 'US' AS country,
                      DATE '1950-01-01' + (i %% 20000) AS birthday
               FROM generate_series(1, %s) AS t(i)""",
            [rows],
        )
        c.execute("ANALYZE customers")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", choices=sorted(PATHS), help=argparse.SUPPRESS)
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.uri)
        return

    sys.path.insert(0, str(ROOT))
    from tests.extract.postgres import PostgresServer, binaries

    found = binaries()
    if found is None:
        raise SystemExit("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"machine before: {uptime}")
    server = PostgresServer(found).start()
    try:
        loaded = load(server.uri, args.rows)
        print(f"PostgreSQL {found.parent.name} on 127.0.0.1:{server.port}: {args.rows:,} rows loaded in {loaded:.1f} s")
        results: dict[str, list[dict[str, float]]] = {p: [] for p in PATHS}
        for _ in range(args.repeat):
            for path in PATHS:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", path, "--uri", server.uri],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=ROOT,
                )
                results[path].append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        server.stop()
    print(f"{'path':<34} {'rows':>10} {'seconds (each run)':>24} {'rows/s (median)':>16} {'peak MB (max)':>14}")
    label = {"adbc": "ADBC (adbc_driver_postgresql)", "dbapi": "DB-API (psycopg 3)"}
    medians = {}
    for path, runs in results.items():
        secs = [r["seconds"] for r in runs]
        medians[path] = statistics.median(secs)
        print(
            f"{label[path]:<34} {int(runs[0]['rows']):>10,} {', '.join(f'{s:.2f}' for s in secs):>24} "
            f"{runs[0]['rows'] / medians[path]:>16,.0f} {max(r['peak_mb'] for r in runs):>14,.0f}"
        )
    print(f"ADBC is {medians['dbapi'] / medians['adbc']:.1f}x the rows/s of DB-API")
    print(f"machine after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(f"({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
