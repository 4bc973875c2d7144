"""A `sources:` entry: where an audience's query runs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from audiencesync.settings.common import Section
from audiencesync.settings.errors import problem

STREAM = "stream"
"""The source name of a stream audience: its members arrive through `serve`, not from a query."""


class SourceSettings(Section):
    """Where an audience's query runs: DuckDB (files or a database file), or another database
    through its Python DB-API driver (`sqlite`, or `dbapi` with `driver: psycopg` and `connect:`)."""

    type: Literal["duckdb", "sqlite", "dbapi", "stream"] = "duckdb"
    path: str | None = None
    bad_rows: Literal["fail", "skip"] = "fail"
    """A CSV row that does not parse (ragged, unconvertible): stop the audience (`fail`), or set it
    aside, count it in the report and go on (`skip`). A broken quote always stops it."""
    driver: str | None = None
    connect: dict[str, Any] | str | None = Field(None, repr=False)

    @model_validator(mode="after")
    def _check(self) -> SourceSettings:
        if self.type == "sqlite" and not self.path:
            raise problem("path", "a sqlite source needs the database file")
        if self.type == "dbapi" and not self.driver:
            raise problem("driver", "a dbapi source needs the driver's module name (e.g. psycopg)")
        return self


STREAM_SOURCE = SourceSettings(type="stream")
"""The implicit source of every audience with `source: stream` (see `Config.source_of`)."""
