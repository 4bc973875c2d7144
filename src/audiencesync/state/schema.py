"""The state file's tables and their version: the one place that says what the file holds.

Every table lives in the attached catalog `st`. A file written by an older version is upgraded in
place (each step below is idempotent); a file from a newer version is refused rather than guessed.
"""

from __future__ import annotations

import duckdb

SCHEMA_VERSION = "3"

DDL = """
CREATE TABLE IF NOT EXISTS st.meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS st.fb_audiences (
    audience_key VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    fb_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    schema_kind VARCHAR NOT NULL,
    is_value_based BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    replace_pending BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (audience_key, kind)
);
CREATE TABLE IF NOT EXISTS st.audience_state (
    audience_key VARCHAR PRIMARY KEY,
    config_fp VARCHAR NOT NULL,
    last_success TIMESTAMP,
    in_flight BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS st.source_rows (audience_key VARCHAR NOT NULL, pk VARCHAR NOT NULL, raw_fp UBIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS st.fb_rows (
    fb_id VARCHAR NOT NULL, pk VARCHAR NOT NULL, row_fp UBIGINT NOT NULL,
    schema VARCHAR NOT NULL, payload VARCHAR[] NOT NULL
);
CREATE TABLE IF NOT EXISTS st.fb_pending (
    fb_id VARCHAR NOT NULL, op VARCHAR NOT NULL, pk VARCHAR, row_fp UBIGINT NOT NULL,
    schema VARCHAR NOT NULL, payload VARCHAR[] NOT NULL
);
CREATE TABLE IF NOT EXISTS st.replace_sessions (
    fb_id VARCHAR PRIMARY KEY, session_id BIGINT NOT NULL, last_seq BIGINT NOT NULL, started_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS st.conversion_events (
    dataset VARCHAR NOT NULL,
    event_id VARCHAR NOT NULL,
    event_time BIGINT NOT NULL,
    run_id VARCHAR NOT NULL,
    acknowledged_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS st.conversion_runs (
    run_id VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status VARCHAR NOT NULL,
    report JSON
);
CREATE TABLE IF NOT EXISTS st.audience_health (
    fb_id VARCHAR NOT NULL, read_at TIMESTAMP NOT NULL, lower BIGINT, upper BIGINT,
    operation_code INTEGER, delivery_code INTEGER, data_source VARCHAR, time_updated BIGINT,
    members_held BIGINT NOT NULL, flagged_count INTEGER NOT NULL DEFAULT 0, flagged_fields VARCHAR,
    problem VARCHAR, usage_restriction VARCHAR, sac_eligible BOOLEAN
);
CREATE TABLE IF NOT EXISTS st.stream_members (
    audience_key VARCHAR, pk VARCHAR, external_id VARCHAR, email VARCHAR, phone VARCHAR, first_name VARCHAR,
    last_name VARCHAR, first_initial VARCHAR, gender VARCHAR, birth_year VARCHAR, birth_month VARCHAR,
    birth_day VARCHAR, city VARCHAR, state VARCHAR, zip VARCHAR, country VARCHAR, madid VARCHAR
);
CREATE TABLE IF NOT EXISTS st.stream_dirty (audience_key VARCHAR NOT NULL, pk VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS st.rejects (
    run_id VARCHAR NOT NULL, audience_key VARCHAR NOT NULL, rejected_at TIMESTAMP NOT NULL,
    pk VARCHAR NOT NULL, key VARCHAR NOT NULL, reason VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS st.alert_conditions (
    kind VARCHAR NOT NULL, subject VARCHAR NOT NULL, active BOOLEAN NOT NULL, since TIMESTAMP NOT NULL,
    reference BIGINT, PRIMARY KEY (kind, subject)
);
CREATE TABLE IF NOT EXISTS st.alert_deliveries (
    webhook VARCHAR NOT NULL, kind VARCHAR NOT NULL, subject VARCHAR NOT NULL, active BOOLEAN NOT NULL,
    sent_at TIMESTAMP NOT NULL, PRIMARY KEY (webhook, kind, subject)
);
CREATE TABLE IF NOT EXISTS st.runs (
    run_id VARCHAR NOT NULL, audience_key VARCHAR NOT NULL, started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP, status VARCHAR NOT NULL, report JSON
);
"""
"""`fb_pending` holds the rows of batches sent (or about to be) whose outcome is not recorded yet
(op `add`, `remove`, `replace`); `replace_sessions` the open `usersreplace` session of an audience,
so an interrupted replace resumes instead of being refused by Facebook for 90 minutes.
`audience_health` is what Facebook said about an audience after a run's writes (or before them:
`problem` flagged/deleted/unshared): rounded matched bounds, codes, and the members we held then."""


class SchemaError(RuntimeError):
    """The state file was written by a newer version of audiencesync."""


def migrate(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """Create what is missing and record the version; version 1 and 2 files only lack new tables
    (version 3 added the stream members and their dirty list, rejects and alert state)."""
    con.execute(DDL)
    for column, kind in (("usage_restriction", "VARCHAR"), ("sac_eligible", "BOOLEAN")):  # added in version 3
        con.execute(f"ALTER TABLE st.audience_health ADD COLUMN IF NOT EXISTS {column} {kind}")
    row = con.execute("SELECT value FROM st.meta WHERE key = 'schema_version'").fetchone()
    found = row[0] if row else None
    if found not in (None, "1", "2", SCHEMA_VERSION):
        raise SchemaError(f"state file {path} has schema {found}; this version of audiencesync reads {SCHEMA_VERSION}")
    if found != SCHEMA_VERSION:
        con.execute("INSERT OR REPLACE INTO st.meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])
    scheme = f"duckdb-hash:{duckdb.__version__}"
    row = con.execute("SELECT value FROM st.meta WHERE key = 'fp_scheme'").fetchone()
    if row is not None and row[0] != scheme:
        # A DuckDB upgrade may change hash(): recompute row fingerprints, mark every cached member stale.
        con.execute("UPDATE st.fb_rows SET row_fp = hash(schema, payload)")
        con.execute("UPDATE st.fb_pending SET row_fp = hash(schema, payload)")
        con.execute("UPDATE st.source_rows SET raw_fp = 0")
    con.execute("INSERT OR REPLACE INTO st.meta VALUES ('fp_scheme', ?)", [scheme])
