"""A `sources:` entry: where an audience's query runs."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any, Literal

from pydantic import Field, model_validator

from audiencesync.settings.common import Section
from audiencesync.settings.errors import problem

STREAM = "stream"
"""The source name of a stream audience: its members arrive through `serve`, not from a query."""


class SourceSettings(Section):
    """Where an audience's query runs: DuckDB (files or a database file), or another database
    through its Python DB-API driver (`sqlite`, or `dbapi` with `driver: psycopg` and `connect:`),
    or as Arrow record batches through an ADBC driver (`adbc` with `driver: adbc_driver_postgresql`
    and `uri: ${PG_URI}`; see `extract/adbc.py`), or through a warehouse client that returns Arrow
    itself (`databricks` with `connect: {server_hostname, http_path, access_token: ${DATABRICKS_TOKEN}}`,
    `bigquery` with `connect: {project, location}` and Google's default credentials)."""

    type: Literal["duckdb", "sqlite", "dbapi", "adbc", "databricks", "bigquery", "stream"] = "duckdb"
    path: str | None = None
    bad_rows: Literal["fail", "skip"] = "fail"
    """A CSV row that does not parse (ragged, unconvertible): stop the audience (`fail`), or set it
    aside, count it in the report and go on (`skip`). A broken quote always stops it."""
    driver: str | None = None
    connect: dict[str, Any] | str | None = Field(None, repr=False)
    uri: str | None = Field(None, repr=False)
    """An `adbc` source's connection URI; it may hold a password, so give it from the environment
    (`uri: ${PG_URI}`): it is never logged or shown in an error."""
    db_kwargs: dict[str, str] = Field(default_factory=dict, repr=False)
    """An `adbc` source's driver options (e.g. Snowflake's `adbc.snowflake.sql.warehouse`)."""
    engine: Literal["duckdb", "spark"] = "duckdb"
    """Where extract, match keys and the plan run: embedded DuckDB, or Apache Spark (the `spark:`
    section; the audience's `query` is Spark SQL, or `table` a table Spark knows)."""

    @model_validator(mode="after")
    def _check(self) -> SourceSettings:
        if self.type == "sqlite" and not self.path:
            raise problem("path", "a sqlite source needs the database file")
        if self.type == "dbapi" and not self.driver:
            raise problem("driver", "a dbapi source needs the driver's module name (e.g. psycopg)")
        if self.type == "adbc":
            adbc_problem = adbc_settings_problem(self.driver, self.uri, self.db_kwargs)
            if adbc_problem:
                raise problem(*adbc_problem)
        elif self.uri is not None or self.db_kwargs:
            raise problem("uri" if self.uri is not None else "db_kwargs", "only an adbc source takes it")
        if self.type in NATIVE_ARROW:
            native_problem = native_settings_problem(self.type, self.connect)
            if native_problem:
                raise problem(*native_problem)
        if self.engine == "spark" and self.type != "duckdb":
            raise problem("engine", f"a {self.type} source runs in the embedded engine; spark reads its own tables")
        if self.engine == "spark" and self.path:
            raise problem("path", "a spark source reads through Spark SQL; name files in the query or a table")
        return self


ADBC_DRIVERS = {
    "adbc_driver_postgresql": "adbc-driver-postgresql",
    "adbc_driver_snowflake": "adbc-driver-snowflake",
    "adbc_driver_bigquery": "adbc-driver-bigquery",
    "adbc_driver_sqlite": "adbc-driver-sqlite",
    "adbc_driver_flightsql": "adbc-driver-flightsql",
}
"""The ADBC drivers' Python packages: module → what `pip install` takes."""


def adbc_settings_problem(driver: str | None, uri: str | None, db_kwargs: dict[str, str]) -> tuple[str, str] | None:
    """(setting, reason) when an adbc source cannot be used; checked when the config is read, so a
    missing driver stops before any call. The driver is looked up, not imported."""
    if not driver:
        known = ", ".join(ADBC_DRIVERS)
        return "driver", f"an adbc source needs the ADBC driver's Python package (one of {known})"
    if driver not in ADBC_DRIVERS:
        return "driver", f"{driver!r} is not an ADBC driver audiencesync knows (one of {', '.join(ADBC_DRIVERS)})"
    if importlib.util.find_spec(driver) is None:
        return "driver", f"the ADBC driver {driver} is not installed (pip install {ADBC_DRIVERS[driver]})"
    if not uri and not db_kwargs:
        return "uri", "an adbc source needs the database's URI (give it from the environment: uri: ${PG_URI})"
    return None


NATIVE_ARROW: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {
    "databricks": ("databricks.sql", "databricks-sql-connector", ("server_hostname", "http_path"), ("access_token",)),
    "bigquery": ("google.cloud.bigquery", "google-cloud-bigquery", (), ("project", "location")),
}
"""Sources whose own client returns Arrow (`extract/databricks.py`, `extract/bigquery.py`): type →
(module, what `pip install` takes, `connect:` keys required, `connect:` keys also allowed)."""


def native_settings_problem(kind: str, connect: dict[str, Any] | str | None) -> tuple[str, str] | None:
    """(setting, reason) when a databricks or bigquery source cannot be used; checked when the config
    is read. The client is looked up, not imported (importing google-cloud-bigquery takes seconds)."""
    module, package, required, optional = NATIVE_ARROW[kind]
    if not _installed(module):
        return "type", f"a {kind} source needs its client: pip install {package}"
    if connect is not None and not isinstance(connect, dict):
        return "connect", f"a {kind} source takes its connection settings as a mapping"
    given = connect or {}
    for key in required:
        if not given.get(key):
            return f"connect.{key}", f"a {kind} source needs it"
    for key in given:
        if key not in required + optional:
            known = ", ".join(required + optional)
            return f"connect.{key}", f"not a {kind} setting audiencesync passes on (one of {known})"
    return None


def _installed(module: str) -> bool:
    if sys.modules.get(module) is not None:  # already imported (or put there by a test's fake)
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package, or a module without a spec
        return False


STREAM_SOURCE = SourceSettings(type="stream")
"""The implicit source of every audience with `source: stream` (see `Config.source_of`)."""
