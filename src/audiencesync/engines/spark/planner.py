"""Change detection and the set difference as Spark jobs; the result is the pipeline's own `Plan`.

The embedded planner (`plan/planner.py`) does every step inside DuckDB on one machine. Here the
source is a Spark SQL query or table, and the steps that grow with the audience run on the cluster:

1. *Fingerprints*: one 64-bit fingerprint per member, the sum (mod 2^64) of Spark's `xxhash64` of
   each of its rows (with null flags, so a value moving between columns is a change), summed in
   32-bit halves: Spark 4's ANSI mode makes a plain sum of 64-bit hashes overflow.
2. *What changed*: one full outer join with the members' fingerprints of the last complete run,
   read from the Parquet mirror of the ledger (`state/spark_mirror.py`).
3. *Match keys*: the changed members' rows go through `mapInArrow` (`udf.match_batches`), which
   runs the embedded planner's own match-key stage, so payloads and row fingerprints are the same
   bytes as on the embedded path.
4. *Adds and removes* per Facebook audience: joins on 64-bit row fingerprints against the mirror
   of `st.fb_rows`, no payload carried through a join.

What comes back to the driver is only what this run changes: the changed members' rows and
fingerprints, and the row fingerprints to remove. They become the same DuckDB relations the
embedded planner makes (`Relations`, `TargetPlan`), on the state's connection, so the same
uploader sends them and the same ledger records intents and acknowledgements.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa

from audiencesync.config import AudienceSettings, SparkSettings
from audiencesync.engines.spark import udf
from audiencesync.engines.spark.session import session
from audiencesync.extract.masking import mask_error
from audiencesync.extract.source import SourceError
from audiencesync.plan.planner import (
    BATCH_ROWS,
    Plan,
    PlanError,
    Planner,
    TargetPlan,
    _batched,
    _sql_literal,
    config_fingerprint,
)
from audiencesync.plan.targets import Target
from audiencesync.state import spark_mirror
from audiencesync.state.spark_mirror import unsigned
from audiencesync.state.store import StateStore

_EMPTY_DESIRED = pa.schema(
    [
        ("kind", pa.string()),
        ("pk", pa.string()),
        ("row_fp", pa.int64()),
        ("schema", pa.string()),
        ("payload", pa.list_(pa.string())),
    ]
).empty_table()
log = logging.getLogger(__name__)
KEY_TYPES = ("string", "int", "bigint", "smallint", "tinyint")
"""Primary key types whose text form Spark and DuckDB write alike (the ledger stores it as text)."""


class SparkSource:
    """An audience's rows as a Spark DataFrame: its Spark SQL `query`, or its `table`."""

    def __init__(self, settings: SparkSettings | None, audience: AudienceSettings):
        self.settings = settings or SparkSettings()
        self.audience = audience
        self.spark = session(self.settings)
        self._frame: Any = None

    def frame(self) -> Any:
        if self._frame is None:
            a = self.audience
            try:
                self._frame = self.spark.sql(a.query) if a.query else self.spark.table(str(a.table))
            except Exception as e:  # Spark's AnalysisException and friends
                what = "query" if a.query else f"table {a.table!r}"
                raise SourceError(f"the Spark {what} failed: {type(e).__name__}: {mask_error(str(e))}") from None
        return self._frame

    def columns(self) -> list[str]:
        return list(self.frame().columns)

    def set_aside_counts(self) -> dict[str, int]:
        """Spark reads its own tables; no CSV rows are set aside here."""
        return {}


class SparkPlanner:
    """Plans one configured audience on Spark; `plan()` returns the pipeline's `Plan`.

    Which Facebook audiences the configured one becomes, the column mapping and the per-target
    rules (locks, when to replace whole) are the embedded planner's, called, not copied.
    """

    def __init__(self, store: StateStore, source: SparkSource, audience: AudienceSettings, *, mirror_root: str | Path):
        self.store = store
        self.con = store.con
        self.source = source
        self.audience = audience
        self.mirror_root = mirror_root
        self.embedded = Planner(store, source, audience)  # type: ignore[arg-type]
        self.set_aside: Counter[str] = Counter()
        """Rows without a usable key (or value), per Facebook audience kind."""
        self.timings: dict[str, float] = {}
        """Seconds per step of the last plan (logged; printed by bench/spark.py)."""
        self.plan_dir = spark_mirror.plan_directory(mirror_root, audience.key)
        self.replaced_leftover = False
        """Whether the last plan found the plan files of a run that did not finish (and removed them)."""

    def targets(self) -> list[Target]:
        return self.embedded.targets()

    def plan(self, *, full_refresh: bool = False) -> Plan:
        """The pipeline's `Plan`; a Spark failure (a job that died, a bad column type) is a
        `PlanError` naming Spark's error class and its first line, values masked."""
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        try:
            return self._plan(full_refresh)
        except (PySparkException, Py4JError) as e:
            raise PlanError(f"Spark failed while planning: {type(e).__name__}: {mask_error(str(e))}") from None

    def _plan(self, full_refresh: bool) -> Plan:
        from pyspark import StorageLevel

        a, store = self.audience, self.store
        tlist = self.targets()
        existing = {t.kind: store.facebook_audience(a.key, t.kind) for t in tlist}
        for t in tlist:
            self.embedded._check_lock(t, existing[t.kind])
        plan = Plan(audience=a, mode="mirror" if full_refresh else a.mode, full_refresh=full_refresh)
        for i, t in enumerate(tlist):
            plan.targets.append(self.embedded._target_plan(plan, t, i, existing[t.kind]))
        cfp = config_fingerprint(a)
        if plan.full or store.config_fp(a.key) != cfp or any(e is None for e in existing.values()):
            store.reset_source_cache(a.key, cfp)
        clock = _Clock()
        mirror = spark_mirror.ensure(self.con, a.key, self.mirror_root)
        self.plan_dir, self.replaced_leftover = spark_mirror.fresh_plan_directory(self.mirror_root, a.key)
        if self.replaced_leftover:
            log.warning("audience %s: replaced the plan files of a run that did not finish", a.key)
        clock.lap("mirror rebuilt" if mirror.rebuilt else "mirror checked")
        spark = self.source.spark
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(self.source.settings.max_records_per_batch))
        df = self.source.frame()
        pk = self._key_column(df)
        members = self._fingerprints(df, pk).persist(StorageLevel.MEMORY_AND_DISK)
        delta = None
        try:
            self._count(plan, members)
            clock.lap("fingerprints")
            delta = self._delta(plan, members, mirror).persist(StorageLevel.MEMORY_AND_DISK)
            self._stage_changes(plan, delta)
            clock.lap("what changed")
            rows = None
            if plan.changed:
                rows = self._match(plan, df, pk, delta).persist(StorageLevel.MEMORY_AND_DISK)
            self._side_results(plan, rows)
            clock.lap("match keys")
            self._diff(plan, rows, mirror)
            clock.lap("adds and removes")
            if rows is not None:
                rows.unpersist()
        finally:
            members.unpersist()
            if delta is not None:
                delta.unpersist()
        self.timings = clock.laps
        log.info("spark plan of %s: %s", a.key, ", ".join(f"{k} {v:.1f} s" for k, v in clock.laps.items()))
        return plan

    # -- fingerprints and what changed ----------------------------------------------------------

    def _key_column(self, df: Any) -> str:
        pk = self.audience.primary_key or ""
        types = dict(df.dtypes)
        if pk not in types:
            raise PlanError(f"primary_key: the query has no column {pk!r}")
        if types[pk] not in KEY_TYPES:
            raise PlanError(
                f"primary_key: column {pk!r} is {types[pk]}; the spark engine needs a text or integer key "
                "(cast it in the query)"
            )
        return pk

    def _fingerprints(self, df: Any, pk: str) -> Any:
        """(pk, raw_fp, n): the sum mod 2^64 of the member's row hashes, as a signed long. Spark 4's
        ANSI mode refuses a long sum that overflows, so the 32-bit halves are summed apart (no
        overflow below 2^31 rows a member) and put together with shifts, which wrap as they should."""
        from pyspark.sql import functions as F

        cols = [df[c] for c in df.columns]
        h = F.xxhash64(*cols, *[F.isnull(c) for c in cols])
        keyed = df.select(
            df[pk].cast("string").alias("pk"),
            F.shiftright(h, 32).alias("hi"),
            h.bitwiseAND(F.lit(0xFFFFFFFF)).alias("lo"),
        )
        summed = keyed.groupBy("pk").agg(F.sum("hi").alias("hi"), F.sum("lo").alias("lo"), F.count(F.lit(1)).alias("n"))
        raw = F.expr("shiftleft(hi + shiftright(lo, 32), 32) | (lo & 4294967295)")
        return summed.select("pk", raw.alias("raw_fp"), "n")

    def _count(self, plan: Plan, members: Any) -> None:
        from pyspark.sql import functions as F

        row = members.agg(
            F.coalesce(F.sum("n"), F.lit(0)).alias("rows"),
            F.coalesce(F.sum(F.when(F.col("pk").isNull(), F.col("n"))), F.lit(0)).alias("no_pk"),
            F.count("pk").alias("members"),
        ).collect()[0]
        plan.rows_read, plan.rows_without_pk, plan.members = int(row["rows"]), int(row["no_pk"]), int(row["members"])

    def _delta(self, plan: Plan, members: Any, mirror: spark_mirror.Mirror) -> Any:
        """(pk, raw_fp, gone) for every member whose fingerprint differs from the last complete run's."""
        from pyspark.sql import functions as F

        prev = self._mirrored(mirror, "source_rows").select("pk", "raw_fp")
        if self.store.in_flight(self.audience.key):
            # As the embedded planner: members Facebook holds rows for that the cache does not list.
            held = self._mirrored(mirror, "fb_rows").select("pk").distinct()
            prev = prev.unionByName(held.join(prev, "pk", "left_anti").withColumn("raw_fp", F.lit(0).cast("bigint")))
        cur = members.filter(F.col("pk").isNotNull()).select("pk", F.col("raw_fp").alias("cur_fp"))
        joined = cur.join(prev, "pk", "full_outer")
        return joined.filter(~F.col("cur_fp").eqNullSafe(F.col("raw_fp"))).select(
            "pk", F.col("cur_fp").alias("raw_fp"), F.col("cur_fp").isNull().alias("gone")
        )

    def _mirrored(self, mirror: spark_mirror.Mirror, table: str) -> Any:
        """A mirrored table as the ledger holds it (`spark_mirror.current_sql`, in Spark): the base's
        rows of members no delta touched, and each touched member's rows from its latest delta. The
        deltas are small (compacted past a share of the base), so they are broadcast while they fit."""
        from pyspark.sql import functions as F

        spark = self.source.spark
        base = spark.read.parquet(mirror.base(table))
        if not mirror.deltas:
            return base
        touched = spark.read.parquet(*mirror.delta_files("touched"))
        latest = touched.groupBy("pk").agg(F.max("seq").alias("seq"))
        if mirror.delta_rows <= self.source.settings.broadcast_rows:
            latest = F.broadcast(latest)
        rows = spark.read.parquet(*mirror.delta_files(table)).join(latest, ["pk", "seq"], "left_semi").drop("seq")
        return base.join(latest.select("pk"), "pk", "left_anti").unionByName(rows)

    def _stage_changes(self, plan: Plan, delta: Any) -> None:
        """The member relations, on the state's connection, holding only this run's changes."""
        r, c = plan.relations, self.con
        changes = self._land(delta, "changes")
        c.execute(
            f"CREATE OR REPLACE TEMP TABLE {r.current} AS "
            f"SELECT pk, {unsigned('raw_fp')} AS raw_fp, 1 AS n FROM {changes} WHERE NOT gone"
        )
        c.execute(f"CREATE OR REPLACE TEMP TABLE {r.changed} AS SELECT pk FROM {changes} WHERE NOT gone")
        c.execute(f"CREATE OR REPLACE TEMP TABLE {r.deleted} AS SELECT pk FROM {changes} WHERE gone")
        c.execute(f"CREATE OR REPLACE TEMP TABLE {r.touched} AS {_touched(plan)}")
        moved = f"(SELECT pk FROM {r.touched} UNION SELECT pk FROM {r.changed} UNION SELECT pk FROM {r.deleted})"
        spark_mirror.note_before(c, self.audience.key, moved)  # what the run's mirror delta will replace
        plan.changed = c.execute(f"SELECT count(*) FROM {r.changed}").fetchall()[0][0]
        plan.deleted = c.execute(f"SELECT count(*) FROM {r.deleted}").fetchall()[0][0]

    def _land(self, df: Any, name: str) -> str:
        """`df` written by the executors under the plan directory, for DuckDB to read as a stream
        (SQL to select from): what Spark hands the driver never passes through Python whole."""
        where = self.plan_dir / name
        df.write.mode("overwrite").parquet(str(where))
        files = sorted(where.glob("*.parquet"))
        if files:
            return f"read_parquet([{', '.join(_sql_literal(str(f)) for f in files)}])"
        self.con.register(f"spark_empty_{name}", df.limit(0).toArrow())  # no rows: its columns
        return f"spark_empty_{name}"

    # -- match keys on the executors --------------------------------------------------------------

    def _match(self, plan: Plan, df: Any, pk: str, delta: Any) -> Any:
        from pyspark.sql import functions as F

        e = self.embedded
        needed = sorted({*e._mapping_.values(), pk})
        changed = delta.filter(~F.col("gone")).select(F.col("pk").alias("__pk"))
        if plan.changed <= self.source.settings.broadcast_rows:
            changed = F.broadcast(changed)
        rows = df.select(*[df[c] for c in needed]).join(changed, df[pk].cast("string") == changed["__pk"], "left_semi")
        fn = partial(
            udf.match_batches, audience=self.audience, columns=e._columns, mapping=e._mapping_, targets=e.targets()
        )
        return rows.mapInArrow(fn, udf.SPARK_OUT)

    def _side_results(self, plan: Plan, rows: Any) -> None:
        """One collect of what the UDF reports beside the rows: each batch's counters, and the
        rejected values (pk, key, reason) the embedded planner keeps for the run."""
        from pyspark.sql import functions as F

        c, table = self.con, plan.relations.rejects
        c.execute(f"CREATE OR REPLACE TEMP TABLE {table} (pk VARCHAR, key VARCHAR, reason VARCHAR)")
        if rows is None:
            return
        side = rows.filter(F.col("kind").isin(udf.STATS, udf.REJECT)).select("kind", "pk", "schema", "stats").toArrow()
        c.register("spark_side", side)
        try:
            c.execute(f"INSERT INTO {table} SELECT pk, schema, stats FROM spark_side WHERE kind = ?", [udf.REJECT])
            counters = c.execute("SELECT stats FROM spark_side WHERE kind = ?", [udf.STATS]).fetchall()
        finally:
            c.unregister("spark_side")
        for (text,) in counters:
            found = json.loads(text)
            plan.normalized += found["normalized"]
            plan.empty.update(found["empty"])
            plan.keys_found.update(found["keys_found"])
            for key, reasons in found["invalid"].items():
                plan.invalid[key].update(reasons)
            for kind, _reason, n in found["set_aside"]:
                self.set_aside[kind] += n

    # -- adds and removes per Facebook audience --------------------------------------------------

    def _diff(self, plan: Plan, rows: Any, mirror: spark_mirror.Mirror) -> None:
        """As the embedded `_diff`, for every Facebook audience at once: adds are desired rows
        Facebook does not hold; removes are rows of touched members that no one wants any more,
        checked against the untouched holders of those candidate rows only.

        The held rows (the mirror of `st.fb_rows`, as large as the audiences) stay in Spark and are
        scanned, never shuffled: what they are joined with is this run's changes, sent from the
        driver (broadcast while there are at most `broadcast_rows`). Joins are on (fb_id, row_fp);
        no payload goes through a join. Two scans: held rows that are wanted or are candidates for
        removal, then the untouched holders of the candidates."""
        from pyspark.sql import functions as F

        c = self.con
        targets = [(tp.target.kind, tp.existing.fb_id if tp.existing else "", tp.replace) for tp in plan.targets]
        c.execute("CREATE OR REPLACE TEMP TABLE plan_spark_kinds (kind VARCHAR, fb_id VARCHAR, replace BOOLEAN)")
        c.executemany("INSERT INTO plan_spark_kinds VALUES (?, ?, ?)", [list(t) for t in targets])
        written = self.plan_dir / "desired"
        if rows is not None:
            # Written by the executors, partitioned by Facebook audience kind; never collected.
            desired_rows = rows.filter(~F.col("kind").isin(udf.STATS, udf.REJECT)).drop("stats")
            desired_rows.write.mode("overwrite").partitionBy("kind").parquet(str(written))
        files = sorted(written.glob("kind=*/*.parquet"))
        if files:
            source = (
                f"read_parquet({_sql_literal(str(written / '*' / '*.parquet'))}, hive_partitioning = true, "
                "hive_types = {'kind': VARCHAR})"
            )
        else:
            c.register("spark_desired", _EMPTY_DESIRED)
            source = "spark_desired"
        try:
            c.execute(
                f"""CREATE OR REPLACE TEMP TABLE plan_spark_desired AS
                    SELECT DISTINCT kind, pk, {unsigned("row_fp")} AS row_fp, schema, payload FROM {source}"""
            )
        finally:
            if not files:
                c.unregister("spark_desired")
        diffed = [fb for _, fb, replace in targets if fb and not replace]
        c.execute("CREATE OR REPLACE TEMP TABLE plan_spark_found (fb_id VARCHAR, row_fp UBIGINT, what VARCHAR)")
        if diffed and plan.changed + plan.deleted:
            self._find_held(plan, diffed, mirror)
        c.execute(
            """CREATE OR REPLACE TEMP TABLE plan_spark_desired AS
               SELECT d.*, k.replace OR ($adding AND h.row_fp IS NULL) AS is_add
               FROM plan_spark_desired d JOIN plan_spark_kinds k USING (kind)
               LEFT JOIN (SELECT DISTINCT fb_id, row_fp FROM plan_spark_found WHERE what = 'held') h
                 ON h.fb_id = k.fb_id AND h.row_fp = d.row_fp""",
            {"adding": plan.mode != "delete"},
        )
        c.execute(
            """CREATE OR REPLACE TEMP TABLE plan_spark_removes AS
               SELECT DISTINCT fb_id, row_fp FROM plan_spark_found WHERE what = 'candidate'
               EXCEPT SELECT fb_id, row_fp FROM plan_spark_found WHERE what = 'still held'"""
        )
        for tp in plan.targets:
            self._stage_target(plan, tp)

    def _find_held(self, plan: Plan, diffed: list[str], mirror: spark_mirror.Mirror) -> None:
        """Into `plan_spark_found`: the wanted rows Facebook holds ('held'), the held rows of touched
        members no one wants now ('candidate'), and the candidates an untouched member holds too
        ('still held')."""
        from pyspark.sql import functions as F

        c, spark = self.con, self.source.spark
        few = plan.changed + plan.deleted <= self.source.settings.broadcast_rows
        small = F.broadcast if few else (lambda d: d)
        signed_fp = spark_mirror.signed("row_fp")
        touched = small(spark.createDataFrame(c.sql(f"SELECT pk FROM {plan.relations.touched}").to_arrow_table()))
        wanted = c.sql(
            f"""SELECT DISTINCT k.fb_id, {signed_fp} AS row_fp FROM plan_spark_desired d
                JOIN plan_spark_kinds k USING (kind) WHERE k.fb_id IN ({", ".join(map(_sql_literal, diffed))})"""
        ).to_arrow_table()
        wanted_df = small(spark.createDataFrame(wanted, "fb_id string, row_fp bigint"))
        held = self._mirrored(mirror, "fb_rows").filter(F.col("fb_id").isin(diffed)).select("fb_id", "pk", "row_fp")
        on_fb = held.join(wanted_df, ["fb_id", "row_fp"], "left_semi").select("fb_id", "row_fp", F.lit("held"))
        cand = held.join(touched, "pk", "left_semi").join(wanted_df, ["fb_id", "row_fp"], "left_anti")
        first = on_fb.unionAll(cand.select("fb_id", "row_fp", F.lit("candidate"))).toDF("fb_id", "row_fp", "what")
        self._found(self._land(first, "found_held"))
        candidates = c.sql(
            f"SELECT DISTINCT fb_id, {signed_fp} AS row_fp FROM plan_spark_found WHERE what = 'candidate'"
        ).to_arrow_table()
        if candidates.num_rows:
            cand_df = small(spark.createDataFrame(candidates, "fb_id string, row_fp bigint"))
            still = held.join(touched, "pk", "left_anti").join(cand_df, ["fb_id", "row_fp"], "left_semi")
            self._found(self._land(still.select("fb_id", "row_fp", F.lit("still held").alias("what")), "found_still"))

    def _found(self, landed: str) -> None:
        self.con.execute(f"INSERT INTO plan_spark_found SELECT fb_id, {unsigned('row_fp')}, what FROM {landed}")

    def _stage_target(self, plan: Plan, tp: TargetPlan) -> None:
        """The target's relations, named and shaped as the embedded planner's, for the uploader."""
        c = self.con
        fb = {"fb": tp.existing.fb_id if tp.existing else ""}
        c.execute(
            f"""CREATE OR REPLACE TEMP TABLE {tp.desired} AS
                SELECT pk, row_fp, schema, payload, is_add FROM plan_spark_desired WHERE kind = ?""",
            [tp.target.kind],
        )
        c.execute(
            f"""CREATE OR REPLACE TEMP TABLE {tp.add_entries} AS
                SELECT pk, row_fp, schema, payload FROM {tp.desired} WHERE is_add"""
        )
        c.execute(
            """CREATE OR REPLACE TEMP TABLE plan_remove_entries AS
               SELECT pk, row_fp, schema, payload FROM st.fb_rows
               WHERE fb_id = $fb AND row_fp IN (SELECT row_fp FROM plan_spark_removes WHERE fb_id = $fb)""",
            fb,
        )
        c.execute(f"ALTER TABLE {tp.desired} DROP COLUMN is_add")
        c.execute(f"CREATE OR REPLACE TEMP TABLE {tp.add_batches} AS {_batched(c, tp.add_entries)}")
        c.execute(f"CREATE OR REPLACE TEMP TABLE {tp.remove_batches} AS {_batched(c, 'plan_remove_entries')}")
        c.execute(
            f"""CREATE OR REPLACE TEMP TABLE {tp.add_entries} AS
                SELECT e.pk, e.row_fp, e.schema, e.payload, a.batch
                FROM {tp.add_entries} e JOIN {tp.add_batches} a USING (row_fp)"""
        )
        self._write_batches(tp)
        tp.adds = c.execute(f"SELECT count(*) FROM {tp.add_batches}").fetchall()[0][0]
        tp.removes = c.execute(f"SELECT count(*) FROM {tp.remove_batches}").fetchall()[0][0]
        tp.rows_without_key = self.set_aside[tp.target.kind]
        if tp.replace and tp.existing is not None:
            tp.removes = c.execute(
                f"SELECT count(DISTINCT row_fp) FROM st.fb_rows "
                f"WHERE fb_id = $fb AND row_fp NOT IN (SELECT row_fp FROM {tp.desired})",
                fb,
            ).fetchall()[0][0]
        if tp.existing is None:
            tp.members = c.execute(f"SELECT count(DISTINCT row_fp) FROM {tp.desired}").fetchall()[0][0]

    def _write_batches(self, tp: TargetPlan) -> None:
        """The target's batches as Parquet, `fb_audience=<id or kind>/op=add|remove/`, sorted by batch
        in row groups of one batch; its relations become views over those files. The uploader then
        reads one batch at a time (`WHERE batch = ?` skips every other row group), so the plan never
        has to be held whole by the driver, and the ledger records intents and acknowledgements from
        the same relations as on the embedded path."""
        c = self.con
        name = tp.existing.fb_id if tp.existing else tp.target.kind
        relations = {
            ("add", "batches"): tp.add_batches,
            ("add", "entries"): tp.add_entries,
            ("remove", "batches"): tp.remove_batches,
        }
        for (op, part), relation in relations.items():
            where = self.plan_dir / f"fb_audience={name}" / f"op={op}"
            where.mkdir(parents=True, exist_ok=True)
            path = _sql_literal(str(where / f"{part}.parquet"))
            c.execute(
                f"COPY (SELECT * FROM {relation} ORDER BY batch) TO {path} "
                f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {BATCH_ROWS})"
            )
            c.execute(f"DROP TABLE {relation}")
            c.execute(f"CREATE TEMP VIEW {relation} AS SELECT * FROM read_parquet({path})")


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._t
        self._t = now


def _touched(plan: Plan) -> str:
    r = plan.relations
    return {
        "mirror": f"SELECT pk FROM {r.changed} UNION SELECT pk FROM {r.deleted}",
        "upsert": f"SELECT pk FROM {r.changed}",
        "delete": f"SELECT pk FROM {r.deleted}",
    }[plan.mode]
