"""The dashboard's reads of the state file: counts, names, statuses and report JSON, never a value.

Every function takes the leased connection and returns plain data; the dashboard holds the lease
only for these reads (`ui/data.py`), so a sync or the stream flusher waits milliseconds, not a page.
Key coverage is counted from the payloads Facebook acknowledged (`st.fb_rows`): which cells of a
member's rows are non-empty, per key; the hashes themselves never leave this module's SQL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

STRONG_KEYS = ("EMAIL", "PHONE", "MADID")
"""The keys that identify a person on their own; names, dates and places only help alongside them."""

NOT_KEYS = ("LOOKALIKE_VALUE", "DATA_PROCESSING_OPTIONS", "DATA_PROCESSING_OPTIONS_COUNTRY",
            "DATA_PROCESSING_OPTIONS_STATE")  # fmt: skip
SINGLE_SCHEMAS = {"EMAIL_SHA256": "EMAIL", "PHONE_SHA256": "PHONE", "MOBILE_ADVERTISER_ID": "MADID", "UID": "UID"}


@dataclass(frozen=True)
class FacebookAudienceView:
    """One Facebook audience as the Audiences page shows it: what we hold and Facebook's last word."""

    audience_key: str
    kind: str
    fb_id: str
    name: str
    replace_pending: bool
    members: int
    read_at: datetime | None = None
    lower: int | None = None
    upper: int | None = None
    members_held: int | None = None
    operation_code: int | None = None
    delivery_code: int | None = None
    flagged_fields: tuple[str, ...] = ()
    problem: str | None = None
    pending_rows: int = 0


@dataclass(frozen=True)
class RunView:
    run_id: str
    audience_key: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    report: dict[str, Any]


@dataclass(frozen=True)
class HealthPoint:
    fb_id: str
    read_at: datetime
    lower: int | None
    upper: int | None
    members_held: int


@dataclass(frozen=True)
class Coverage:
    """How many members carry each key in the rows Facebook holds, and how many carry 2+ strong keys."""

    members: int
    by_key: dict[str, int] = field(default_factory=dict)
    strong: dict[int, int] = field(default_factory=dict)
    """Members by how many strong keys they have (0, 1, 2, 3)."""
    phone_only: int = 0
    """Members whose only strong key is a phone."""
    sent_keys: tuple[str, ...] = ()
    """The keys the audience's Facebook audiences carry at all."""

    @property
    def two_or_more_strong(self) -> int:
        return sum(n for k, n in self.strong.items() if k >= 2)


def facebook_audiences(con: duckdb.DuckDBPyConnection) -> list[FacebookAudienceView]:
    """Every Facebook audience in the state with its member count, last health read and unsettled rows."""
    rows = con.execute(
        """WITH held AS (SELECT fb_id, count(DISTINCT row_fp) AS n FROM st.fb_rows GROUP BY fb_id),
                pend AS (SELECT fb_id, count(*) AS n FROM st.fb_pending GROUP BY fb_id),
                last AS (SELECT fb_id, arg_max(COLUMNS(* EXCLUDE (fb_id)), read_at) FROM st.audience_health
                         GROUP BY fb_id)
           SELECT a.audience_key, a.kind, a.fb_id, a.name, a.replace_pending, coalesce(held.n, 0),
                  last.read_at, last.lower, last.upper, last.members_held, last.operation_code,
                  last.delivery_code, last.flagged_fields, last.problem, coalesce(pend.n, 0)
           FROM st.fb_audiences a LEFT JOIN held USING (fb_id) LEFT JOIN pend USING (fb_id)
           LEFT JOIN last USING (fb_id)
           ORDER BY a.audience_key, a.kind = 'multi', a.kind"""
    ).fetchall()
    return [
        FacebookAudienceView(
            audience_key=r[0],
            kind=r[1],
            fb_id=r[2],
            name=r[3],
            replace_pending=bool(r[4]),
            members=int(r[5]),
            read_at=r[6],
            lower=r[7],
            upper=r[8],
            members_held=r[9],
            operation_code=r[10],
            delivery_code=r[11],
            flagged_fields=tuple(r[12].split(",")) if r[12] else (),
            problem=r[13],
            pending_rows=int(r[14]),
        )
        for r in rows
    ]


def _run(row: tuple[Any, ...]) -> RunView:
    return RunView(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]) if row[5] else {})


RUN_COLUMNS = "run_id, audience_key, started_at, finished_at, status, report"


def last_runs(con: duckdb.DuckDBPyConnection) -> dict[str, RunView]:
    """Each audience's latest run (by when it finished), by audience key."""
    rows = con.execute(
        f"""SELECT {RUN_COLUMNS} FROM st.runs
            QUALIFY row_number() OVER (PARTITION BY audience_key ORDER BY finished_at DESC NULLS LAST) = 1"""
    ).fetchall()
    return {r[1]: _run(r) for r in rows}


def runs(con: duckdb.DuckDBPyConnection, audience_key: str, limit: int = 50) -> list[RunView]:
    """An audience's latest runs, newest first."""
    rows = con.execute(
        f"SELECT {RUN_COLUMNS} FROM st.runs WHERE audience_key = ? ORDER BY finished_at DESC NULLS LAST LIMIT ?",
        [audience_key, limit],
    ).fetchall()
    return [_run(r) for r in rows]


def health_series(con: duckdb.DuckDBPyConnection, audience_key: str, limit: int = 500) -> list[HealthPoint]:
    """Facebook's matched bounds and the members we held, per read, oldest first, for the chart."""
    rows = con.execute(
        """SELECT fb_id, read_at, lower, upper, members_held FROM (
               SELECT h.*, row_number() OVER (PARTITION BY h.fb_id ORDER BY h.read_at DESC) AS nth
               FROM st.audience_health h JOIN st.fb_audiences a USING (fb_id)
               WHERE a.audience_key = ? AND h.problem IS NULL)
           WHERE nth <= ? ORDER BY read_at""",
        [audience_key, limit],
    ).fetchall()
    return [HealthPoint(*r) for r in rows]


def coverage(con: duckdb.DuckDBPyConnection, audience_key: str) -> Coverage:
    """Per key, the members whose acknowledged rows carry a non-empty value for it (counts only).

    A member counts once per key however many of the audience's Facebook audiences carry it."""
    singles = " ".join(f"WHEN '{s}' THEN ['{k}']" for s, k in SINGLE_SCHEMAS.items())
    not_keys = ", ".join(f"'{k}'" for k in NOT_KEYS)
    strong = ", ".join(f"'{k}'" for k in STRONG_KEYS)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE dash_cells AS
            WITH rows AS (
                SELECT r.pk, r.payload,
                       CASE r.schema {singles} ELSE from_json(r.schema, '["VARCHAR"]') END AS keys
                FROM st.fb_rows r JOIN st.fb_audiences a USING (fb_id) WHERE a.audience_key = ?),
            cells AS (SELECT pk, unnest(keys) AS key, unnest(payload) AS v FROM rows)
            SELECT DISTINCT pk, key FROM cells WHERE v <> '' AND key NOT IN ({not_keys})""",
        [audience_key],
    )
    try:
        members = con.execute(
            "SELECT count(DISTINCT r.pk) FROM st.fb_rows r JOIN st.fb_audiences a USING (fb_id) "
            "WHERE a.audience_key = ?",
            [audience_key],
        ).fetchone()[0]
        by_key = dict(con.execute("SELECT key, count(*) FROM dash_cells GROUP BY key ORDER BY key").fetchall())
        per_member = f"""SELECT pk, count(*) FILTER (WHERE key IN ({strong})) AS strong,
                                bool_or(key = 'PHONE') AS phone FROM dash_cells GROUP BY pk"""
        strong_counts = dict(
            con.execute(f"SELECT strong, count(*) FROM ({per_member}) GROUP BY strong").fetchall()
        )
        phone_only = con.execute(f"SELECT count(*) FROM ({per_member}) WHERE strong = 1 AND phone").fetchone()[0]
        sent = con.execute(
            f"""SELECT DISTINCT unnest(CASE schema {singles} ELSE from_json(schema, '["VARCHAR"]') END) AS key
                FROM (SELECT DISTINCT r.schema FROM st.fb_rows r JOIN st.fb_audiences a USING (fb_id)
                      WHERE a.audience_key = ?) ORDER BY key""",
            [audience_key],
        ).fetchall()
    finally:
        con.execute("DROP TABLE IF EXISTS dash_cells")
    with_keys = sum(strong_counts.values())
    strong_counts[0] = strong_counts.get(0, 0) + max(0, int(members) - with_keys)
    return Coverage(
        members=int(members),
        by_key={k: int(n) for k, n in by_key.items()},
        strong={int(k): int(n) for k, n in strong_counts.items()},
        phone_only=int(phone_only),
        sent_keys=tuple(k for (k,) in sent if k not in NOT_KEYS),
    )


def conversion_runs(con: duckdb.DuckDBPyConnection, limit: int = 100) -> list[dict[str, Any]]:
    """The latest offline-conversion runs, newest first, with their report JSON parsed."""
    rows = con.execute(
        """SELECT run_id, dataset, started_at, finished_at, status, report FROM st.conversion_runs
           ORDER BY started_at DESC, run_id DESC LIMIT ?""",
        [limit],
    ).fetchall()
    names = ("run_id", "dataset", "started_at", "finished_at", "status", "report")
    return [{**dict(zip(names, r, strict=True)), "report": json.loads(r[5]) if r[5] else {}} for r in rows]


def state_version(con: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """Changes whenever a run or a health read is recorded: the key of the dashboard's caches."""
    return tuple(
        con.execute(
            """SELECT (SELECT max(finished_at) FROM st.runs), (SELECT count(*) FROM st.runs),
                      (SELECT max(read_at) FROM st.audience_health), (SELECT count(*) FROM st.fb_pending)"""
        ).fetchone()
    )
