"""The match-key stage as a `mapInArrow` function, running in Spark's Python workers.

Each Arrow batch of changed members' rows goes through the embedded planner's own stage
(`Planner._normalize_changed`: `matchkeys.match_table`, then the rows per Facebook audience and
their fingerprints in DuckDB), in a private in-memory DuckDB per task. So a payload and its
`row_fp` (DuckDB's `hash(schema, payload)`) are the same bytes whichever engine made them, and a
ledger written by one engine is read correctly by the other. Only pyarrow, duckdb and audiencesync
are needed on the executors; pyspark is not imported here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import duckdb
import pyarrow as pa

from audiencesync.config import AudienceSettings
from audiencesync.extract.source import quote_ident
from audiencesync.plan.planner import Plan, Planner, Relations
from audiencesync.plan.targets import Target
from audiencesync.state.spark_mirror import signed

STATS = "__stats"
"""The `kind` of the one row per batch that carries its counters (normalized, invalid, ...)."""
REJECT = "__reject"
"""The `kind` of a rejected value's row: its member (`pk`), key (in `schema`) and reason (in `stats`)."""
OUT = pa.schema(
    [
        ("kind", pa.string()),
        ("pk", pa.string()),
        ("row_fp", pa.int64()),
        ("schema", pa.string()),
        ("payload", pa.list_(pa.string())),
        ("stats", pa.string()),
    ]
)
SPARK_OUT = "kind string, pk string, row_fp bigint, schema string, payload array<string>, stats string"


class _BatchSource:
    """The one Arrow batch a task holds, as the planner's source."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def subquery(self) -> str:
        return "__in"

    def batches(self, sql: str, rows_per_batch: int) -> Iterator[pa.Table]:
        yield self.con.sql(sql).to_arrow_table()


class _Store:
    """What the planner's constructor reads from a state store: its connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con


def match_batches(
    batches: Iterator[pa.RecordBatch],
    *,
    audience: AudienceSettings,
    columns: list[str],
    mapping: dict[str, str],
    targets: list[Target],
) -> Iterator[pa.RecordBatch]:
    """Rows (kind, pk, row_fp, schema, payload) of every Facebook audience for each input batch,
    then one `__stats` row with the batch's counters as JSON."""
    con = duckdb.connect()
    con.execute("SET threads = 1")
    planner = Planner(_Store(con), _BatchSource(con), audience)  # type: ignore[arg-type]
    planner.match_threads = 1
    pk = audience.primary_key or ""
    for batch in batches:
        if batch.num_rows == 0:
            continue
        con.register("__in", pa.Table.from_batches([batch]))
        con.execute(f"CREATE OR REPLACE TEMP VIEW __all AS SELECT CAST({quote_ident(pk)} AS VARCHAR) AS pk FROM __in")
        plan = Plan(audience=audience, mode=audience.mode, relations=Relations(changed="__all"), changed=batch.num_rows)
        planner._normalize_changed(plan, columns, mapping, targets)
        rows = con.sql(
            f"""SELECT kind, pk, {signed("row_fp")} AS row_fp, schema, payload, NULL::VARCHAR AS stats
                FROM plan_new_rows
                UNION ALL
                SELECT '{REJECT}', pk, NULL, key, NULL, reason FROM {plan.relations.rejects}"""
        ).to_arrow_table()
        set_aside = con.execute("SELECT kind, reason, sum(n)::BIGINT FROM plan_set_aside GROUP BY ALL").fetchall()
        stats = {
            "normalized": plan.normalized,
            "empty": dict(plan.empty),
            "invalid": {k: dict(v) for k, v in plan.invalid.items() if v},
            "keys_found": dict(plan.keys_found),
            "set_aside": [[kind, reason, int(n)] for kind, reason, n in set_aside],
        }
        con.unregister("__in")
        yield from rows.cast(OUT).to_batches()
        yield pa.RecordBatch.from_pylist(
            [{"kind": STATS, "pk": None, "row_fp": None, "schema": None, "payload": None, "stats": json.dumps(stats)}],
            schema=OUT,
        )
    con.close()
