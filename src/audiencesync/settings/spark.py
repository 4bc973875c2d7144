"""The `spark:` section: where the Spark engine runs and where it keeps the state it reads.

Only audiences whose source says `engine: spark` use it; the embedded path never reads it.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from audiencesync.settings.common import Section

SPARK_EXTRA = "pip install 'audiencesync[spark]'"
"""How a user gets pyspark: it is an optional extra, never needed by the embedded path."""


class SparkSettings(Section):
    """`master`: `local[2]`, a cluster URL (`spark://…`, `yarn`, `k8s://…`), or Spark Connect
    (`sc://host:15002`). `conf`: Spark settings passed to the session as given. `state_dir`: where
    the Parquet mirror of the acknowledged rows is written for Spark to read; relative paths are
    beside the state file. On a cluster it must be a path every executor reads (HDFS, S3, DBFS)."""

    master: str = "local[2]"
    app_name: str = "audiencesync"
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)
    state_dir: str | None = None
    max_records_per_batch: int = Field(100_000, ge=1_000, le=1_000_000)
    """Rows per Arrow batch handed to the match-key UDF (`spark.sql.execution.arrow.maxRecordsPerBatch`)."""
    broadcast_rows: int = Field(2_000_000, ge=0)
    """Changed members up to this many are broadcast into the joins rather than shuffled."""
    mirror_compact_share: float = Field(0.1, gt=0, le=10)
    """Each run adds its changes to the Parquet mirror as a small delta; when the deltas' rows pass
    this share of the mirror's, the mirror is rewritten whole from the ledger."""

    @field_validator("master")
    @classmethod
    def _master(cls, v: str) -> str:
        v = v.strip()
        known = ("local", "spark://", "yarn", "k8s://", "mesos://", "sc://")
        if not v.startswith(known):
            raise ValueError("not a Spark master URL; use local[N], spark://host:port, yarn, k8s://… or sc://host:port")
        return v

    @field_validator("conf")
    @classmethod
    def _conf(cls, v: dict[str, object]) -> dict[str, object]:
        bad = [k for k in v if not k.startswith("spark.")]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a Spark setting (Spark settings start with 'spark.')")
        return v
