"""The Spark engine: extract, match keys and the plan as Spark jobs, for audiences past one machine.

Nothing here imports pyspark at import time; `planner.SparkPlanner` does when a Spark audience
is planned, so the embedded path never loads it (pyspark is the optional extra `spark`).

- `session.py`: the SparkSession from the `spark:` section (`local[N]`, a cluster, or Spark Connect).
- `udf.py`: the match-key stage inside `mapInArrow`, running the embedded planner's own code on
  each Arrow batch (so payloads and row fingerprints are byte-identical to the embedded path).
- `planner.py`: change detection and the set difference as Spark joins on 64-bit fingerprints
  against the Parquet mirror of the ledger (`state/spark_mirror.py`); returns the pipeline's `Plan`.
"""
