"""The Parquet mirror of one audience's acknowledged state, written for the Spark engine to read.

The DuckDB ledger (`state/ledger.py`) stays the only truth: the mirror is a copy of two of its
facts for one configured audience, `st.source_rows` (pk, raw_fp) and the `st.fb_rows` of its
Facebook audiences (fb_id, pk, row_fp), without payloads (Spark joins on 64-bit fingerprints; the
few payloads a removal needs are read back from the ledger). Fingerprints are stored as signed
BIGINT because Spark has no unsigned 64-bit type.

Layout, per audience: `base/source_rows/` and `base/fb_rows/` (the whole state when the mirror was
last rebuilt), then one small `deltas/seq=N/` per completed run: the members the run touched
(`touched.parquet`: pk, seq) and those members' rows in the ledger after the run
(`source_rows.parquet`, `fb_rows.parquet`, with the seq). A member's rows are those of its latest
delta if any delta touched it, else the base's: so a run writes what it changed, not the whole
10M-row mirror. When the deltas' rows pass `compact_share` of the base, the mirror is rebuilt from
the ledger (compaction is a rebuild: the ledger is the truth, so nothing is merged from Parquet).

A manifest beside the files records the run sequence, the deltas it includes, and a checksum of the
rows the mirror holds (counts and order-free sums of hashes), computed from the mirror's own files
after every write. `ensure` compares it with the same checksum of the ledger before every Spark plan
and rebuilds the mirror when they differ: a lost or stale mirror (a crash between a commit and the
refresh, a run by the embedded engine, a deleted directory, a delta never recorded) is found and
rebuilt, never trusted. Delta directories past the manifest's sequence (a crash between writing a
delta and its manifest) are never read and are removed.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from audiencesync.settings.spark import SparkSettings

TWO_64 = "18446744073709551616::HUGEINT"
MANIFEST = "manifest.json"
TABLES = ("source_rows", "fb_rows")
KEYS = {"source_rows": "pk, raw_fp", "fb_rows": "fb_id, pk, row_fp"}
"""Each mirrored table's columns, in order."""


def signed(col: str) -> str:
    """SQL: a UBIGINT fingerprint as the BIGINT with the same 64 bits (Spark's `long`)."""
    return (
        f"CAST(CASE WHEN {col} >= 9223372036854775808 THEN {col}::HUGEINT - {TWO_64} ELSE {col}::HUGEINT END AS BIGINT)"
    )


def unsigned(col: str) -> str:
    """SQL: a BIGINT from Spark back to the ledger's UBIGINT fingerprint (the same 64 bits)."""
    return f"CAST(({col}::HUGEINT + {TWO_64}) % {TWO_64} AS UBIGINT)"


@dataclass(frozen=True)
class Checksum:
    """What the rows are; equal checksums mean the mirror holds the ledger's rows."""

    source_rows: int
    source_sum: str
    fb_rows: int
    fb_sum: str


@dataclass(frozen=True)
class Manifest:
    checksum: Checksum
    seq: int = 0
    """The last run whose delta the mirror includes (0: only the base)."""
    deltas: list[int] = field(default_factory=list)
    base_rows: int = 0
    delta_rows: int = 0
    files: dict[str, int] = field(default_factory=dict)
    """Every file the mirror reads and its size: a missing or truncated one makes `ensure` rebuild."""


@dataclass(frozen=True)
class Mirror:
    """Where Spark reads one audience's acknowledged state: the base, and the deltas after it."""

    where: str
    deltas: tuple[str, ...]
    seq: int
    rebuilt: bool
    delta_rows: int = 0

    def base(self, table: str) -> str:
        return str(Path(self.where) / "base" / table)

    def delta_files(self, name: str) -> list[str]:
        """`touched`, `source_rows` or `fb_rows` of every delta the mirror includes, oldest first."""
        return [str(Path(d) / f"{name}.parquet") for d in self.deltas]


def root(state: str, settings: SparkSettings | None) -> Path:
    """Where the mirrors live: `spark.state_dir` (relative: beside the state file), else `<state>.spark`."""
    if settings is None or settings.state_dir is None:
        return Path(f"{state}.spark")
    p = Path(settings.state_dir)
    return p if p.is_absolute() else Path(state).parent / p


def directory(root: str | Path, audience_key: str) -> Path:
    return Path(root) / re.sub(r"[^A-Za-z0-9_.-]", "_", audience_key)


def plan_directory(root: str | Path, audience_key: str) -> Path:
    """Where a run's plan is written (`desired/kind=…/` by Spark's executors, then
    `fb_audience=…/op=add|remove/` in upload batches): one per audience, since one run at a time
    holds an audience's lease. It outlives a run only when the run did not finish."""
    return directory(root, audience_key) / "plan"


def fresh_plan_directory(root: str | Path, audience_key: str) -> tuple[Path, bool]:
    """An empty plan directory, and whether a leftover one (a run that crashed or failed before all
    its batches were acknowledged) was found and removed. Its files are never uploaded: what that
    run may have sent is in the ledger's intents, which the next run settles before planning."""
    where = plan_directory(root, audience_key)
    leftover = where.exists()
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    return where, leftover


def drop_plan(root: str | Path, audience_key: str) -> None:
    """After the run's batches are all acknowledged and committed: its plan files are done."""
    shutil.rmtree(plan_directory(root, audience_key), ignore_errors=True)


def drop_plan_views(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the views a Spark plan left over its Parquet batches (`plan_add_0`, ...), before the
    next audience is planned on the same connection: the planners make their relations under the
    same names as temp tables, which a view of that name would block."""
    views = con.execute(
        "SELECT view_name FROM duckdb_views() WHERE temporary AND starts_with(view_name, 'plan_')"
    ).fetchall()
    for (name,) in views:
        con.execute(f'DROP VIEW IF EXISTS "{name}"')


def _ledger_sql(table: str, audience_key: str) -> str:
    """The audience's rows of a ledger table, fingerprints unsigned as the ledger keeps them."""
    key = audience_key.replace("'", "''")
    if table == "source_rows":
        return f"SELECT pk, raw_fp FROM st.source_rows WHERE audience_key = '{key}'"
    return f"""SELECT fb_id, pk, row_fp FROM st.fb_rows
               WHERE fb_id IN (SELECT fb_id FROM st.fb_audiences WHERE audience_key = '{key}')"""


def _sums(con: duckdb.DuckDBPyConnection, sql: dict[str, str]) -> Checksum:
    src = con.execute(
        f"SELECT count(*), coalesce(sum(hash(pk, raw_fp)::HUGEINT), 0) FROM ({sql['source_rows']})"
    ).fetchall()[0]
    fb = con.execute(
        f"SELECT count(*), coalesce(sum(hash(fb_id, pk, row_fp)::HUGEINT), 0) FROM ({sql['fb_rows']})"
    ).fetchall()[0]
    return Checksum(int(src[0]), str(src[1]), int(fb[0]), str(fb[1]))


def checksum(con: duckdb.DuckDBPyConnection, audience_key: str) -> Checksum:
    """The ledger's checksum of the audience's rows."""
    return _sums(con, {t: _ledger_sql(t, audience_key) for t in TABLES})


def mirror_checksum(con: duckdb.DuckDBPyConnection, mirror: Mirror) -> Checksum:
    """The same checksum, of the rows the mirror's files hold (base and deltas applied)."""
    return _signed_sums(con, {table: current_sql(mirror, table) for table in TABLES})


def _signed_sums(con: duckdb.DuckDBPyConnection, rows: dict[str, str]) -> Checksum:
    """The ledger's checksum of mirror rows (`rows[table]`, SQL of rows with signed fingerprints)."""
    sql = {}
    for table, source in rows.items():
        fp = "raw_fp" if table == "source_rows" else "row_fp"
        cols = KEYS[table].replace(fp, f"{unsigned(fp)} AS {fp}")
        sql[table] = f"SELECT {cols} FROM ({source})"
    return _sums(con, sql)


def current_sql(mirror: Mirror, table: str) -> str:
    """DuckDB SQL for the rows the mirror holds now (signed fingerprints): the base's rows of members
    no delta touched, and each touched member's rows from its latest delta."""
    base = f"SELECT {KEYS[table]} FROM read_parquet({_quote(mirror.base(table) + '/*.parquet')})"
    if not mirror.deltas:
        return base
    latest = f"SELECT pk, max(seq) AS seq FROM read_parquet({_list(mirror.delta_files('touched'))}) GROUP BY pk"
    return f"""SELECT {KEYS[table]} FROM ({base}) b WHERE NOT EXISTS (SELECT 1 FROM ({latest}) l WHERE l.pk = b.pk)
               UNION ALL
               SELECT {", ".join(f"d.{c.strip()}" for c in KEYS[table].split(","))}
               FROM read_parquet({_list(mirror.delta_files(table))}) d JOIN ({latest}) l USING (pk, seq)"""


BEFORE = "spark_mirror_before"
"""Temp table: the ledger's checksum of the members a plan is about to change, taken before any
upload (`note_before`), so `refresh` can tell what the mirror holds after a delta by arithmetic."""


def note_before(con: duckdb.DuckDBPyConnection, audience_key: str, touched: str) -> None:
    """Called by the Spark planner once it knows the run's members (`touched`, a relation), before
    anything is sent: the ledger's sums over those members' rows. The mirror was checked equal to
    the ledger when the plan started, so these are also the sums of the mirror rows a delta replaces."""
    sql = {t: f"SELECT * FROM ({_ledger_sql(t, audience_key)}) WHERE pk IN (SELECT pk FROM {touched})" for t in TABLES}
    sums = _sums(con, sql)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {BEFORE} (audience_key VARCHAR, sums VARCHAR)")
    con.execute(f"INSERT INTO {BEFORE} VALUES (?, ?)", [audience_key, json.dumps(asdict(sums))])


def _before(con: duckdb.DuckDBPyConnection, audience_key: str) -> Checksum | None:
    try:
        found = con.execute(f"SELECT sums FROM {BEFORE} WHERE audience_key = ?", [audience_key]).fetchall()
    except duckdb.CatalogException:
        return None
    return Checksum(**json.loads(found[0][0])) if found else None


def _patched(old: Checksum, before: Checksum, delta: Checksum) -> Checksum:
    """The mirror's checksum after replacing the touched members' rows (`before`) with `delta`'s."""
    return Checksum(
        old.source_rows - before.source_rows + delta.source_rows,
        str(int(old.source_sum) - int(before.source_sum) + int(delta.source_sum)),
        old.fb_rows - before.fb_rows + delta.fb_rows,
        str(int(old.fb_sum) - int(before.fb_sum) + int(delta.fb_sum)),
    )


def ensure(con: duckdb.DuckDBPyConnection, audience_key: str, root: str | Path) -> Mirror:
    """The mirror of this audience's ledger rows, rebuilt first if it does not match them."""
    where = directory(root, audience_key)
    found = _manifest(where)
    if found is None or found.checksum != checksum(con, audience_key) or not _files_intact(where, found):
        return _rebuild(con, audience_key, where)
    _drop_strays(where, found)
    return _mirror(where, found, rebuilt=False)


def refresh(
    con: duckdb.DuckDBPyConnection,
    audience_key: str,
    root: str | Path,
    *,
    touched: str | None = None,
    settings: SparkSettings | None = None,
) -> bool:
    """After a run's commits: bring the mirror in step with the ledger. With the run's `touched`
    members (a relation on `con`), as a delta holding only their rows; past the compaction share, or
    when the mirror before the run was not the ledger's (its checksum says), by a rebuild. Every
    delta is checked: the mirror's checksum after it must be the ledger's, else the mirror is
    rebuilt. That checksum is the manifest's minus the touched members' sums noted before the upload
    (`note_before`) plus the delta's; without a note, it is read back from the mirror's files.
    True if it was rebuilt."""
    where = directory(root, audience_key)
    found = _manifest(where)
    share = (settings or SparkSettings()).mirror_compact_share
    now = checksum(con, audience_key)
    if found is not None and found.checksum == now:
        return False
    if touched is None or found is None:
        return _rebuild(con, audience_key, where, now).rebuilt
    seq = found.seq + 1
    rows = _write_delta(con, audience_key, where, seq, touched)
    delta_rows = found.delta_rows + rows
    if delta_rows > share * max(found.base_rows, 1):
        return _rebuild(con, audience_key, where, now).rebuilt
    deltas = [*found.deltas, seq]
    candidate = _mirror(where, Manifest(now, seq, deltas, found.base_rows, delta_rows), rebuilt=False)
    before = _before(con, audience_key)
    if before is not None:  # by arithmetic: no read-back of the whole mirror
        holds = _patched(found.checksum, before, _delta_sums(con, _delta_dir(where, seq)))
    else:
        holds = mirror_checksum(con, candidate)
    con.execute(f"DROP TABLE IF EXISTS {BEFORE}")
    if holds != now:
        return _rebuild(con, audience_key, where, now).rebuilt
    _write_manifest(where, Manifest(now, seq, deltas, found.base_rows, delta_rows))
    return False


def rebuild(con: duckdb.DuckDBPyConnection, audience_key: str, root: str | Path) -> Mirror:
    """The mirror rewritten whole from the ledger, whatever its manifest says."""
    return _rebuild(con, audience_key, directory(root, audience_key))


def _delta_sums(con: duckdb.DuckDBPyConnection, delta: Path) -> Checksum:
    files = {table: _quote(str(delta / f"{table}.parquet")) for table in TABLES}
    return _signed_sums(con, {table: f"SELECT * FROM read_parquet({path})" for table, path in files.items()})


def _mirror(where: Path, m: Manifest, *, rebuilt: bool) -> Mirror:
    deltas = tuple(str(_delta_dir(where, s)) for s in m.deltas)
    return Mirror(str(where), deltas, m.seq, rebuilt, m.delta_rows)


def _delta_dir(where: Path, seq: int) -> Path:
    return where / "deltas" / f"seq={seq:08d}"


def _manifest(where: Path) -> Manifest | None:
    try:
        raw = json.loads((where / MANIFEST).read_text())
        return Manifest(Checksum(**raw.pop("checksum")), **raw)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _files_intact(where: Path, m: Manifest) -> bool:
    return bool(m.files) and all(
        (where / name).is_file() and (where / name).stat().st_size == size for name, size in m.files.items()
    )


def _write_manifest(where: Path, m: Manifest) -> None:
    """Written to a temp file and renamed: a reader sees the old manifest or the new, whole. It lists
    the files of the base and of its deltas, with their sizes."""
    dirs = [where / "base" / t for t in TABLES] + [_delta_dir(where, s) for s in m.deltas]
    files = {str(f.relative_to(where)): f.stat().st_size for d in dirs for f in sorted(d.glob("*.parquet"))}
    m = Manifest(m.checksum, m.seq, m.deltas, m.base_rows, m.delta_rows, files)
    tmp = where / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps(asdict(m)))
    tmp.replace(where / MANIFEST)


def _drop_strays(where: Path, m: Manifest) -> None:
    """Delta directories the manifest does not list: a crash between a delta and its manifest."""
    listed = {_delta_dir(where, s).name for s in m.deltas}
    deltas = where / "deltas"
    if deltas.is_dir():
        for d in deltas.iterdir():
            if d.name not in listed:
                shutil.rmtree(d, ignore_errors=True)


def _write_delta(con: duckdb.DuckDBPyConnection, audience_key: str, where: Path, seq: int, touched: str) -> int:
    """The touched members, and their rows in the ledger now, as `deltas/seq=N/`; returns its rows."""
    final = _delta_dir(where, seq)
    fresh = final.with_name(final.name + ".new")
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.rmtree(final, ignore_errors=True)
    fresh.mkdir(parents=True)
    queries = {"touched": f"SELECT DISTINCT pk, {seq}::BIGINT AS seq FROM {touched} WHERE pk IS NOT NULL"}
    for table in TABLES:
        fp = "raw_fp" if table == "source_rows" else "row_fp"
        cols = KEYS[table].replace(fp, f"{signed(fp)} AS {fp}")
        queries[table] = f"""SELECT {cols}, {seq}::BIGINT AS seq FROM ({_ledger_sql(table, audience_key)})
                             WHERE pk IN (SELECT pk FROM {touched})"""
    rows = 0
    for name, sql in queries.items():
        path = str(fresh / f"{name}.parquet").replace("'", "''")
        con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet, COMPRESSION zstd)")
        if name != "touched":
            rows += con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0]
    fresh.rename(final)
    return rows


def _rebuild(con: duckdb.DuckDBPyConnection, audience_key: str, where: Path, now: Checksum | None = None) -> Mirror:
    """Write both tables whole to fresh directories, swap them in, drop the deltas, and write the
    manifest last: a crash half-way leaves no manifest, so the next `ensure` rebuilds."""
    where.mkdir(parents=True, exist_ok=True)
    (where / MANIFEST).unlink(missing_ok=True)
    shutil.rmtree(where / "deltas", ignore_errors=True)
    for stale in TABLES:  # the layout before deltas: the tables beside the manifest
        shutil.rmtree(where / stale, ignore_errors=True)
    now = now or checksum(con, audience_key)
    (where / "base").mkdir(exist_ok=True)
    for table in TABLES:
        fp = "raw_fp" if table == "source_rows" else "row_fp"
        cols = KEYS[table].replace(fp, f"{signed(fp)} AS {fp}")
        fresh, final = where / "base" / f"{table}.new", where / "base" / table
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir()
        path = str(fresh / "part-0.parquet").replace("'", "''")
        sql = f"SELECT {cols} FROM ({_ledger_sql(table, audience_key)})"
        con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet, COMPRESSION zstd)")
        shutil.rmtree(final, ignore_errors=True)
        fresh.rename(final)
    manifest = Manifest(now, 0, [], now.source_rows + now.fb_rows, 0)
    _write_manifest(where, manifest)
    return _mirror(where, manifest, rebuilt=True)


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def _list(paths: list[str]) -> str:
    return "[" + ", ".join(map(_quote, paths)) + "]"
