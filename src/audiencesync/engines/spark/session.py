"""The SparkSession the engine runs on, from the `spark:` section.

One session per process: `getOrCreate` returns the running one (a notebook's, a test's) as is, if it
is of the kind the master asks for: `sc://host:port` is a Spark Connect session
(`SparkSession.builder.remote`), anything else a classic one. pyspark keeps one kind per process
(a Connect session switches `pyspark.sql.functions` to Connect for the whole process).
The Python workers must run this project's interpreter (`PYSPARK_PYTHON`), or `mapInArrow` would
start a Python without audiencesync.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from audiencesync.extract.source import SourceError
from audiencesync.settings.spark import SPARK_EXTRA, SparkSettings

DEFAULTS: dict[str, str] = {
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
"""Applied unless the `conf:` section sets them; a cluster's users set partitions to its size."""


class SparkUnavailable(SourceError):
    """pyspark is not installed, or the session could not start: the audience fails with this
    sentence and the others go on."""


def session(settings: SparkSettings | None) -> Any:
    """The running SparkSession, or a new one made from the settings."""
    settings = settings or SparkSettings()
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable(f"engine: spark needs pyspark ({SPARK_EXTRA})") from None
    remote = settings.master.startswith("sc://")
    active = SparkSession.getActiveSession()
    if active is not None and _is_connect(active) == remote:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(settings.app_name)
    builder = builder.remote(settings.master) if remote else builder.master(settings.master)
    conf: dict[str, Any] = {**DEFAULTS, **settings.conf}
    conf["spark.sql.execution.arrow.maxRecordsPerBatch"] = str(settings.max_records_per_batch)
    for k, v in conf.items():
        builder = builder.config(k, str(v).lower() if isinstance(v, bool) else str(v))
    try:
        return builder.getOrCreate()
    except Exception as e:  # Py4J and Spark Connect raise their own error types
        raise SparkUnavailable(f"could not start Spark on {settings.master}: {type(e).__name__}: {e}") from None


def _is_connect(spark: Any) -> bool:
    """A Spark Connect session (a client of a server), not a classic one holding a SparkContext."""
    return type(spark).__module__.startswith("pyspark.sql.connect")
