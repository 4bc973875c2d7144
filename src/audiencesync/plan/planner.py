"""Compare the source with what Facebook holds (the state) and plan adds and removes.

The expensive part of a sync is normalizing and hashing, so the planner first finds which members
changed at all, by a 64-bit fingerprint of each raw source row joined against the fingerprints of
the last successful run, all inside DuckDB. Only changed members are normalized and hashed; their
new rows are diffed against the committed rows of each Facebook audience.

Facebook holds a *set* of rows per audience, and two members may share a row (the same email), so
adds are rows not yet on Facebook and removes are rows no remaining member still needs.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from audiencesync import __version__, matchkeys
from audiencesync.config import AudienceSettings
from audiencesync.extract.source import QuerySource, SourceError, quote_ident
from audiencesync.plan.targets import IDENTITIES, LDU_CELLS, VALUE_KEY, Target, targets
from audiencesync.state.store import FacebookAudience, StateStore

BATCH_ROWS = 10_000
PLAN_VERSION = "1"


@dataclass
class TargetPlan:
    """The work for one Facebook audience; its rows wait in temp tables `add_<i>`, `rem_<i>`."""

    target: Target
    index: int
    existing: FacebookAudience | None
    adds: int = 0
    removes: int = 0
    members: int = 0
    rows_without_key: int = 0
    problem: str | None = None

    @property
    def tables(self) -> tuple[str, str, str]:
        i = self.index
        return f"n_{i}", f"add_{i}", f"rem_{i}"


@dataclass
class Plan:
    audience: AudienceSettings
    full: bool
    rows_read: int = 0
    rows_without_pk: int = 0
    members: int = 0
    changed: int = 0
    deleted: int = 0
    normalized: int = 0
    keys_found: Counter[str] = field(default_factory=Counter)
    empty: Counter[str] = field(default_factory=Counter)
    invalid: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    targets: list[TargetPlan] = field(default_factory=list)

    @property
    def nothing_to_send(self) -> bool:
        return all(t.adds == 0 and t.removes == 0 for t in self.targets)


class PlanError(RuntimeError):
    """The audience cannot be planned (bad column, unreadable source); nothing was sent."""


def config_fingerprint(audience: AudienceSettings) -> str:
    """What, if changed, makes every member's rows worth recomputing."""
    relevant = audience.model_dump(exclude={"name", "description", "schedule", "min_size"})
    relevant["_versions"] = [PLAN_VERSION, __version__]
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Planner:
    def __init__(
        self, store: StateStore, source: QuerySource, audience: AudienceSettings, *, rows_per_batch: int = 250_000
    ):
        self.store = store
        self.con: duckdb.DuckDBPyConnection = store.con
        self.source = source
        self.audience = audience
        self.rows_per_batch = rows_per_batch

    def plan(self, *, full_refresh: bool = False) -> Plan:
        a = self.audience
        columns = self.source.columns()
        mapping = self._mapping(columns)
        tlist = targets(a, set(mapping))
        if not tlist:
            raise PlanError("the source has no column for any key this audience sends")
        existing = {t.kind: self.store.facebook_audience(a.key, t.kind) for t in tlist}
        for t in tlist:
            self._check_lock(t, existing[t.kind])
        cfp = config_fingerprint(a)
        full = full_refresh or any(e is not None and e.replace_pending for e in existing.values())
        if full or self.store.config_fp(a.key) != cfp or any(e is None for e in existing.values()):
            self.store.reset_source_cache(a.key, cfp)
        plan = Plan(audience=a, full=full)
        self._stage_current(plan)
        self._stage_changes(plan)
        self._normalize_changed(plan, columns, mapping, tlist)
        for i, t in enumerate(tlist):
            tp = TargetPlan(target=t, index=i, existing=existing[t.kind])
            self._diff(plan, tp)
            plan.targets.append(tp)
        return plan

    # -- which columns feed which keys --------------------------------------------------------

    def _overrides(self) -> dict[str, str]:
        a = self.audience
        cols = {k.upper(): v for k, v in a.columns.items()}
        if a.external_id:
            cols["EXTERN_ID"] = a.external_id
        if a.value:
            cols[VALUE_KEY] = a.value.column
        return cols

    def _mapping(self, columns: list[str]) -> dict[str, str]:
        a = self.audience
        overrides = self._overrides()
        for key, col in overrides.items():
            if col not in columns:
                raise PlanError(f"columns.{key}: the query has no column {col!r}")
        if a.primary_key and a.primary_key not in columns:
            raise PlanError(f"primary_key: the query has no column {a.primary_key!r}")
        explicit: dict[str, str | None] = dict(_matchable(overrides))
        if "EXTERN_ID" not in explicit:
            explicit["EXTERN_ID"] = None
        mapping = matchkeys.resolve_columns(columns, explicit)
        uid = overrides.get("UID") or next((c for c in columns if c.lower() in ("facebook_id", "fb_id", "fbid")), None)
        if uid:
            mapping["UID"] = uid
        return mapping

    def _check_lock(self, t: Target, fb: FacebookAudience | None) -> None:
        if fb is None:
            return
        if fb.is_value_based != t.value_based:
            raise PlanError(
                f"{fb.name}: the Facebook audience {fb.fb_id} was created "
                f"{'with' if fb.is_value_based else 'without'} values; Facebook cannot switch it. "
                "Give the audience a new `key` to create a new one."
            )
        if (fb.schema_kind == "multi") != t.multi:
            raise PlanError(f"{fb.name}: the Facebook audience {fb.fb_id} takes {fb.schema_kind}-key rows only")

    # -- what changed since the last successful run -------------------------------------------

    def _stage_current(self, plan: Plan) -> None:
        """One fingerprint per member: the sum of its rows' fingerprints, so a member with several
        source rows is still one comparison, whatever order the rows come in."""
        pk = quote_ident(self.audience.primary_key) if self.audience.primary_key else "hash(*COLUMNS(*))"
        self.source.execute(
            f"""CREATE OR REPLACE TEMP TABLE cur AS
                SELECT pk, (sum(fp::HUGEINT) % 18446744073709551616)::UBIGINT AS raw_fp, count(*) AS n
                FROM (SELECT CAST({pk} AS VARCHAR) AS pk, hash(*COLUMNS(*)) AS fp FROM {self.source.subquery()})
                GROUP BY pk"""
        )
        plan.rows_read, plan.rows_without_pk, plan.members = self.con.execute(
            "SELECT coalesce(sum(n), 0), coalesce(sum(n) FILTER (WHERE pk IS NULL), 0), count(pk) FROM cur"
        ).fetchone()
        self.con.execute("DELETE FROM cur WHERE pk IS NULL")

    def _stage_changes(self, plan: Plan) -> None:
        key = self.audience.key
        self.con.execute(
            """CREATE OR REPLACE TEMP TABLE prev AS SELECT pk, raw_fp FROM st.source_rows WHERE audience_key = ?""",
            [key],
        )
        if self.store.in_flight(key):
            # An interrupted run may have put members on Facebook that the cache never recorded.
            self.con.execute(
                """INSERT INTO prev
                   SELECT DISTINCT pk, 0::UBIGINT FROM st.fb_rows
                   WHERE fb_id IN (SELECT fb_id FROM st.fb_audiences WHERE audience_key = $key)
                     AND pk NOT IN (SELECT pk FROM st.source_rows WHERE audience_key = $key)""",
                {"key": key},
            )
        self.con.execute(
            """CREATE OR REPLACE TEMP TABLE delta AS
               SELECT coalesce(c.pk, p.pk) AS pk, c.pk IS NULL AS gone
               FROM cur c FULL OUTER JOIN prev p ON c.pk = p.pk
               WHERE c.raw_fp IS DISTINCT FROM p.raw_fp"""
        )
        self.con.execute("CREATE OR REPLACE TEMP TABLE changed AS SELECT pk FROM delta WHERE NOT gone")
        self.con.execute("CREATE OR REPLACE TEMP TABLE deleted AS SELECT pk FROM delta WHERE gone")
        touched = {
            "mirror": "changed UNION SELECT pk FROM deleted",
            "upsert": "changed",
            "delete": "deleted",
        }[self.audience.mode]
        if plan.full:
            touched = "changed UNION SELECT pk FROM deleted"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE touched AS SELECT pk FROM {touched}")
        plan.changed = self.con.execute("SELECT count(*) FROM changed").fetchone()[0]
        plan.deleted = self.con.execute("SELECT count(*) FROM deleted").fetchone()[0]

    # -- normalize and hash the changed members -----------------------------------------------

    def _normalize_changed(self, plan: Plan, columns: list[str], mapping: dict[str, str], tlist: list[Target]) -> None:
        a = self.audience
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE new_rows "
            "(kind VARCHAR, pk VARCHAR, row_fp UBIGINT, schema VARCHAR, payload VARCHAR[])"
        )
        self.con.execute("CREATE OR REPLACE TEMP TABLE set_aside (kind VARCHAR, reason VARCHAR, n BIGINT)")
        if plan.changed == 0:
            return
        pk = quote_ident(a.primary_key) if a.primary_key else "hash(*COLUMNS(*))"
        needed = sorted(set(mapping.values()))
        select = ", ".join(quote_ident(c) for c in needed)
        sql = (
            f"SELECT CAST({pk} AS VARCHAR) AS __pk, {select} FROM {self.source.subquery()} "
            f"WHERE CAST({pk} AS VARCHAR) IN (SELECT pk FROM changed)"
        )
        overrides = _matchable({k: v for k, v in mapping.items() if k != "UID"})
        for table in self.source.batches(sql, self.rows_per_batch):
            result = matchkeys.match_table(
                table.drop_columns(["__pk"]),
                columns=overrides,
                default_country=a.default_country,
                allow_zero_value=bool(a.value and a.value.allow_zero),
                date_order=a.date_order,
            )
            plan.normalized += result.rows
            plan.empty.update(result.empty)
            for key, reasons in result.invalid.items():
                plan.invalid[key].update(reasons)
            keyed = result.table.append_column("__pk", table["__pk"].take(result.table["_row"]))
            if "UID" in mapping:
                keyed = keyed.append_column("UID", _facebook_ids(table[mapping["UID"]].take(result.table["_row"])))
            for key in keyed.column_names:
                if key not in ("_row", "__pk"):
                    plan.keys_found[key] += keyed[key].length() - keyed[key].null_count
            self._insert_rows(keyed, tlist)

    def _insert_rows(self, keyed: pa.Table, tlist: list[Target]) -> None:
        self.con.register("mt", keyed)
        try:
            present = set(keyed.column_names)
            for t in tlist:
                keys = [k for k in t.keys if k in present or k in LDU_CELLS]
                if not any(k in present for k in keys):
                    continue
                cells = ", ".join(self._cell(k) for k in keys)
                ident = " OR ".join(f"{quote_ident(k)} IS NOT NULL" for k in t.required_any if k in present) or "false"
                value_ok = f"{VALUE_KEY} IS NOT NULL" if t.value_based and VALUE_KEY in present else "true"
                schema = t.schema_text
                self.con.execute(
                    f"""INSERT INTO new_rows
                        SELECT ?, __pk, hash(?, [{cells}]), ?, [{cells}] FROM mt WHERE ({ident}) AND {value_ok}""",
                    [t.kind, schema, schema],
                )
                self.con.execute(
                    f"""INSERT INTO set_aside
                        SELECT ?, CASE WHEN NOT ({ident}) THEN 'no_usable_key' ELSE 'no_value' END, count(*)
                        FROM mt WHERE NOT (({ident}) AND {value_ok}) GROUP BY ALL""",
                    [t.kind],
                )
        finally:
            self.con.unregister("mt")

    def _cell(self, key: str) -> str:
        """The SQL for one key's value in a row: '' where empty, as Facebook wants unknown keys."""
        if key in LDU_CELLS:
            return f"'{LDU_CELLS[key]}'"
        value = f"CAST({quote_ident(key)} AS VARCHAR)"
        if key == "EXTERN_ID" and self.audience.hash_external_id:
            value = f"sha256({value})"  # Meta allows hashed external ids; then always hashed (spec §2.6)
        return f"coalesce({value}, '')"

    # -- the diff against Facebook's committed rows -------------------------------------------

    def _diff(self, plan: Plan, tp: TargetPlan) -> None:
        n, add, rem = tp.tables
        fb_id = tp.existing.fb_id if tp.existing else ""
        mode = "mirror" if plan.full else self.audience.mode
        c = self.con
        c.execute(
            f"CREATE OR REPLACE TEMP TABLE {n} AS "
            "SELECT DISTINCT pk, row_fp, schema, payload FROM new_rows WHERE kind = ?",
            [tp.target.kind],
        )
        tp.rows_without_key = c.execute(
            "SELECT coalesce(sum(n), 0) FROM set_aside WHERE kind = ?", [tp.target.kind]
        ).fetchone()[0]
        on_fb = "SELECT row_fp FROM st.fb_rows WHERE fb_id = $fb"
        if plan.full:
            adds, removes = f"SELECT * FROM {n}", f"SELECT * FROM {n} LIMIT 0"
        else:
            adds = f"SELECT * FROM {n} WHERE row_fp NOT IN ({on_fb})" + (" AND false" if mode == "delete" else "")
            # Rows of touched members that no one wants any more, checked against the untouched
            # members only for those few candidate rows (not by hashing every row on Facebook).
            c.execute(
                f"""CREATE OR REPLACE TEMP TABLE {rem}_cand AS
                    SELECT pk, row_fp, schema, payload FROM st.fb_rows
                    WHERE fb_id = $fb AND pk IN (SELECT pk FROM touched) AND row_fp NOT IN (SELECT row_fp FROM {n})""",
                {"fb": fb_id},
            )
            removes = (
                f"SELECT * FROM {rem}_cand WHERE row_fp NOT IN ("
                f"SELECT row_fp FROM st.fb_rows WHERE fb_id = $fb AND row_fp IN (SELECT row_fp FROM {rem}_cand) "
                "AND pk NOT IN (SELECT pk FROM touched))"
            )
        for table, select in ((add, adds), (rem, removes)):
            c.execute(
                f"CREATE OR REPLACE TEMP TABLE {table}_entries AS {select}", {"fb": fb_id} if "$fb" in select else []
            )
            c.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {_batched(c, f'{table}_entries')}")
        c.execute(
            f"""CREATE OR REPLACE TEMP TABLE {add}_entries AS
                SELECT e.pk, e.row_fp, e.schema, e.payload, a.batch FROM {add}_entries e JOIN {add} a USING (row_fp)"""
        )
        tp.adds = c.execute(f"SELECT count(*) FROM {add}").fetchone()[0]
        tp.removes = c.execute(f"SELECT count(*) FROM {rem}").fetchone()[0]
        if tp.existing is None:
            tp.members = c.execute(f"SELECT count(DISTINCT row_fp) FROM {n}").fetchone()[0]


def _batched(c: duckdb.DuckDBPyConnection, entries: str) -> str:
    """One row per distinct row_fp (entries of several members may share it), in batches of at most
    BATCH_ROWS rows of one schema.

    Numbered from the entries' rowid, not by a window function or a sort: those hold a whole
    partition of payloads in memory, and a first sync of ten million members must fit in a bounded
    budget. Dedupe by rowid rather than by aggregating the payload lists, for the same reason.
    """
    schemas = [r[0] for r in c.execute(f"SELECT DISTINCT schema FROM {entries} ORDER BY schema").fetchall()]
    rank = " ".join(f"WHEN {_sql_literal(s)} THEN {i}" for i, s in enumerate(schemas)) or "WHEN NULL THEN 0"
    return f"""
        SELECT row_fp, schema, payload, (CASE schema {rank} END) * 100000000 + rowid // {BATCH_ROWS} AS batch
        FROM {entries}
        WHERE rowid IN (SELECT min(rowid) FROM {entries} GROUP BY row_fp)"""


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_KEY_NAMES = frozenset(spec.name for spec in matchkeys.KEYS)


def _matchable(overrides: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in overrides.items() if k in _KEY_NAMES}


def _facebook_ids(col: pa.ChunkedArray) -> pa.Array:
    """App-scoped Facebook user ids are sent plain; anything but digits is not one."""
    values = [None if v is None else str(v).strip() for v in col.to_pylist()]
    return pa.array([v if v and v.isdigit() else None for v in values], pa.string())


__all__ = ["IDENTITIES", "Plan", "PlanError", "Planner", "SourceError", "TargetPlan", "config_fingerprint"]
