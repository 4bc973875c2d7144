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
import pyarrow.compute as pc

from audiencesync import __version__, matchkeys
from audiencesync.config import AudienceSettings
from audiencesync.extract.source import QuerySource, SourceError, quote_ident
from audiencesync.plan.targets import IDENTITIES, LDU_CELLS, VALUE_KEY, Target, targets
from audiencesync.state.store import FacebookAudience, StateStore

BATCH_ROWS = 10_000
PLAN_VERSION = "2"


@dataclass(frozen=True)
class Relations:
    """The plan's member-level relations: DuckDB temp tables on the state's connection.

    `current` (pk, raw_fp): one fingerprint per member of the source. `changed` (pk): members whose
    rows are recomputed (new, different, or not trusted in the cache). `deleted` (pk): members the
    state knows that the source no longer has. `touched` (pk): members whose rows this run may
    change on Facebook, given the effective mode.
    """

    current: str = "plan_current"
    changed: str = "plan_changed"
    deleted: str = "plan_deleted"
    touched: str = "plan_touched"
    rejects: str = "plan_rejects"
    """(pk, key, reason): each invalid match-key value of the normalized members; never the value."""


@dataclass
class TargetPlan:
    """The work for one Facebook audience and the relations that hold its rows.

    `desired` (pk, row_fp, schema, payload): the rows the changed members need. `add_batches`
    (row_fp, schema, payload, batch): distinct rows to add, numbered into batches; `add_entries`
    the same with every member that needs each row. `remove_batches`: rows to remove. A target with
    `replace` set is sent whole through a `usersreplace` session instead (its `add_batches` are
    every desired row, and `removes` counts what the replace takes away).
    """

    target: Target
    index: int
    existing: FacebookAudience | None
    replace: bool = False
    adds: int = 0
    removes: int = 0
    members: int = 0
    rows_without_key: int = 0
    warning: str | None = None

    @property
    def desired(self) -> str:
        return f"plan_desired_{self.index}"

    @property
    def add_batches(self) -> str:
        return f"plan_add_{self.index}"

    @property
    def add_entries(self) -> str:
        return f"plan_add_entries_{self.index}"

    @property
    def remove_batches(self) -> str:
        return f"plan_remove_{self.index}"


@dataclass
class Plan:
    """What one run will do for a configured audience: computed before anything is sent.

    `mode` is the effective mode (a full refresh plans as mirror).
    """

    audience: AudienceSettings
    mode: str
    full_refresh: bool = False
    relations: Relations = field(default_factory=Relations)
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
    scope: str | None = None
    """A targeted plan's members (a temp table of pk, `plan/targeted.py`); None: every member."""

    @property
    def full(self) -> bool:
        """Whether any Facebook audience is replaced whole in this run."""
        return any(t.replace for t in self.targets)

    @property
    def nothing_to_send(self) -> bool:
        return all(t.adds == 0 and t.removes == 0 and not t.replace for t in self.targets)


class PlanError(RuntimeError):
    """The audience cannot be planned (bad column, unreadable source); nothing was sent."""


def config_fingerprint(audience: AudienceSettings) -> str:
    """What, if changed, makes every member's rows worth recomputing."""
    relevant = audience.model_dump(exclude={"name", "description", "schedule", "min_size", "guard"})
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
        self.match_threads: int | None = None
        """Threads for `match_table`; None: one per core. A Spark task sets 1 (its executor runs one task per core)."""
        self._targets: list[Target] | None = None
        self._columns: list[str] = []
        self._mapping_: dict[str, str] = {}

    def targets(self) -> list[Target]:
        """The Facebook audiences this configured one becomes, given the source's columns."""
        if self._targets is None:
            self._columns = self.source.columns()
            self._mapping_ = self._mapping(self._columns)
            self._targets = targets(self.audience, set(self._mapping_))
            if not self._targets:
                raise PlanError("the source has no column for any key this audience sends")
        return self._targets

    def plan(self, *, full_refresh: bool = False) -> Plan:
        a = self.audience
        tlist = self.targets()
        existing = {t.kind: self.store.facebook_audience(a.key, t.kind) for t in tlist}
        for t in tlist:
            self._check_lock(t, existing[t.kind])
        plan = Plan(audience=a, mode="mirror" if full_refresh else a.mode, full_refresh=full_refresh)
        for i, t in enumerate(tlist):
            plan.targets.append(self._target_plan(plan, t, i, existing[t.kind]))
        cfp = config_fingerprint(a)
        if plan.full or self.store.config_fp(a.key) != cfp or any(e is None for e in existing.values()):
            self.store.reset_source_cache(a.key, cfp)
        self._stage_current(plan)
        self._stage_changes(plan)
        self._normalize_changed(plan, self._columns, self._mapping_, tlist)
        for tp in plan.targets:
            self._diff(plan, tp)
        return plan

    def _target_plan(self, plan: Plan, t: Target, index: int, fb: FacebookAudience | None) -> TargetPlan:
        """Replace whole when asked, when a replace session is open (it must be finished before
        Facebook takes any other write), or when Facebook may hold rows the state never knew of
        and the mode promises to remove whoever is not in the source."""
        tp = TargetPlan(target=t, index=index, existing=fb)
        if fb is None:
            return tp
        session_open = self.store.ledger.replace_session(fb.fb_id) is not None
        tp.replace = plan.full_refresh or session_open or (fb.replace_pending and plan.mode == "mirror")
        if fb.replace_pending and not tp.replace and plan.mode == "delete":
            tp.warning = (
                "this Facebook audience was found on Facebook without a record of its members in the state; "
                "members who left before cannot be removed in delete mode. Run once with --full-refresh."
            )
        return tp

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
        cur = plan.relations.current
        pk = quote_ident(self.audience.primary_key) if self.audience.primary_key else "hash(*COLUMNS(*))"
        self.source.execute(
            f"""CREATE OR REPLACE TEMP TABLE {cur} AS
                SELECT pk, (sum(fp::HUGEINT) % 18446744073709551616)::UBIGINT AS raw_fp, count(*) AS n
                FROM (SELECT CAST({pk} AS VARCHAR) AS pk, hash(*COLUMNS(*)) AS fp FROM {self.source.subquery()})
                GROUP BY pk"""
        )
        plan.rows_read, plan.rows_without_pk, plan.members = self.con.execute(
            f"SELECT coalesce(sum(n), 0), coalesce(sum(n) FILTER (WHERE pk IS NULL), 0), count(pk) FROM {cur}"
        ).fetchone()
        self.con.execute(f"DELETE FROM {cur} WHERE pk IS NULL")

    def _stage_changes(self, plan: Plan) -> None:
        """Compare with the cache. After a run that did not finish (`in_flight`, set before its
        first send and cleared with the cache's commit), also with every member Facebook holds
        rows for: one that the cache does not list (its add was acknowledged, then the run died)
        is compared as stale, so it is removed if the source no longer has it. Outside that case
        every such member is in the cache by construction, and the 10M-row anti-join is skipped."""
        r = plan.relations
        key = {"key": self.audience.key}
        self._stage_prev()
        if self.store.in_flight(self.audience.key):
            self.con.execute(
                """INSERT INTO plan_prev SELECT DISTINCT pk, 0::UBIGINT FROM st.fb_rows
                   WHERE fb_id IN (SELECT fb_id FROM st.fb_audiences WHERE audience_key = $key)
                     AND pk NOT IN (SELECT pk FROM st.source_rows WHERE audience_key = $key)""",
                key,
            )
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE plan_delta AS
               SELECT coalesce(c.pk, p.pk) AS pk, c.pk IS NULL AS gone
               FROM {r.current} c FULL OUTER JOIN plan_prev p ON c.pk = p.pk
               WHERE c.raw_fp IS DISTINCT FROM p.raw_fp"""
        )
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {r.changed} AS SELECT pk FROM plan_delta WHERE NOT gone")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {r.deleted} AS SELECT pk FROM plan_delta WHERE gone")
        touched = {
            "mirror": f"SELECT pk FROM {r.changed} UNION SELECT pk FROM {r.deleted}",
            "upsert": f"SELECT pk FROM {r.changed}",
            "delete": f"SELECT pk FROM {r.deleted}",
        }[plan.mode]
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {r.touched} AS {touched}")
        plan.changed = self.con.execute(f"SELECT count(*) FROM {r.changed}").fetchone()[0]
        plan.deleted = self.con.execute(f"SELECT count(*) FROM {r.deleted}").fetchone()[0]

    def _stage_prev(self) -> None:
        """`plan_prev` (pk, raw_fp): the change cache's fingerprints the current ones are compared with."""
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE plan_prev AS SELECT pk, raw_fp FROM st.source_rows WHERE audience_key = ?",
            [self.audience.key],
        )

    # -- normalize and hash the changed members -----------------------------------------------

    def _normalize_changed(self, plan: Plan, columns: list[str], mapping: dict[str, str], tlist: list[Target]) -> None:
        a = self.audience
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE plan_new_rows "
            "(kind VARCHAR, pk VARCHAR, row_fp UBIGINT, schema VARCHAR, payload VARCHAR[])"
        )
        self.con.execute("CREATE OR REPLACE TEMP TABLE plan_set_aside (kind VARCHAR, reason VARCHAR, n BIGINT)")
        rejects = plan.relations.rejects
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {rejects} (pk VARCHAR, key VARCHAR, reason VARCHAR)")
        if plan.changed == 0:
            return
        pk = quote_ident(a.primary_key) if a.primary_key else "hash(*COLUMNS(*))"
        needed = sorted(set(mapping.values()))
        select = ", ".join(quote_ident(c) for c in needed)
        sql = (
            f"SELECT CAST({pk} AS VARCHAR) AS __pk, {select} FROM {self.source.subquery()} "
            f"WHERE CAST({pk} AS VARCHAR) IN (SELECT pk FROM {plan.relations.changed})"
        )
        overrides = _matchable({k: v for k, v in mapping.items() if k != "UID"})
        for table in self.source.batches(sql, self.rows_per_batch):
            result = matchkeys.match_table(
                table.drop_columns(["__pk"]),
                columns=overrides,
                default_country=a.default_country,
                allow_zero_value=bool(a.value and a.value.allow_zero),
                date_order=a.date_order,
                threads=self.match_threads,
            )
            plan.normalized += result.rows
            plan.empty.update(result.empty)
            for key, reasons in result.invalid.items():
                plan.invalid[key].update(reasons)
            pks = table["__pk"].take(result.table["_row"])
            self._insert_rejects(plan, pks, result.reasons)
            keyed = result.table.append_column("__pk", pks)
            if "UID" in mapping:
                keyed = keyed.append_column("UID", _facebook_ids(table[mapping["UID"]].take(result.table["_row"])))
            for key in keyed.column_names:
                if key not in ("_row", "__pk"):
                    plan.keys_found[key] += keyed[key].length() - keyed[key].null_count
            self._insert_rows(keyed, tlist)

    def _insert_rejects(self, plan: Plan, pks: pa.ChunkedArray, reasons: dict[str, pa.Array]) -> None:
        """Which members had which key rejected, and why: Arrow filters, one insert per key."""
        for key, reason in reasons.items():
            rejected = pa.table({"pk": pks, "reason": reason}).filter(pc.is_valid(reason))
            self.con.register("rj", rejected)
            try:
                self.con.execute(f"INSERT INTO {plan.relations.rejects} SELECT pk, ?, reason FROM rj", [key])
            finally:
                self.con.unregister("rj")

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
                    f"""INSERT INTO plan_new_rows
                        SELECT ?, __pk, hash(?, [{cells}]), ?, [{cells}] FROM mt WHERE ({ident}) AND {value_ok}""",
                    [t.kind, schema, schema],
                )
                self.con.execute(
                    f"""INSERT INTO plan_set_aside
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
        """Adds: desired rows Facebook does not hold. Removes: rows of touched members that no one
        wants any more, checked against the untouched members only for those few candidate rows
        (not by hashing every row on Facebook)."""
        n, touched = tp.desired, plan.relations.touched
        fb = {"fb": tp.existing.fb_id if tp.existing else ""}
        c = self.con
        c.execute(
            f"CREATE OR REPLACE TEMP TABLE {n} AS "
            "SELECT DISTINCT pk, row_fp, schema, payload FROM plan_new_rows WHERE kind = ?",
            [tp.target.kind],
        )
        tp.rows_without_key = c.execute(
            "SELECT coalesce(sum(n), 0) FROM plan_set_aside WHERE kind = ?", [tp.target.kind]
        ).fetchone()[0]
        # Only the desired rows' fingerprints are looked up: no hash table of every row on Facebook.
        on_fb = f"SELECT row_fp FROM st.fb_rows WHERE fb_id = $fb AND row_fp IN (SELECT row_fp FROM {n})"
        if tp.replace:
            adds, removes = f"SELECT * FROM {n}", f"SELECT * FROM {n} LIMIT 0"
        else:
            adds = f"SELECT * FROM {n} WHERE row_fp NOT IN ({on_fb})" + (" AND false" if plan.mode == "delete" else "")
            # The touched members' rows are found on the narrow columns first, then fetched whole by rowid:
            # filtering while reading schema and payload of every row on Facebook cost 2-4x more at 1M rows.
            c.execute(
                f"""CREATE OR REPLACE TEMP TABLE plan_remove_cand AS
                    WITH found AS MATERIALIZED (
                        SELECT rowid AS rid FROM st.fb_rows
                        WHERE fb_id = $fb AND pk IN (SELECT pk FROM {touched})
                          AND row_fp NOT IN (SELECT row_fp FROM {n}))
                    SELECT pk, row_fp, schema, payload FROM st.fb_rows WHERE rowid IN (SELECT rid FROM found)""",
                fb,
            )
            removes = (
                "SELECT * FROM plan_remove_cand WHERE row_fp NOT IN ("
                "SELECT row_fp FROM st.fb_rows WHERE fb_id = $fb AND row_fp IN (SELECT row_fp FROM plan_remove_cand) "
                f"AND pk NOT IN (SELECT pk FROM {touched}))"
            )
        for entries, table, select in (
            (tp.add_entries, tp.add_batches, adds),
            ("plan_remove_entries", tp.remove_batches, removes),
        ):
            c.execute(f"CREATE OR REPLACE TEMP TABLE {entries} AS {select}", fb if "$fb" in select else [])
            c.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {_batched(c, entries)}")
        c.execute(
            f"""CREATE OR REPLACE TEMP TABLE {tp.add_entries} AS
                SELECT e.pk, e.row_fp, e.schema, e.payload, a.batch
                FROM {tp.add_entries} e JOIN {tp.add_batches} a USING (row_fp)"""
        )
        tp.adds = c.execute(f"SELECT count(*) FROM {tp.add_batches}").fetchone()[0]
        tp.removes = c.execute(f"SELECT count(*) FROM {tp.remove_batches}").fetchone()[0]
        if tp.replace and tp.existing is not None:
            tp.removes = c.execute(
                f"SELECT count(DISTINCT row_fp) FROM st.fb_rows "
                f"WHERE fb_id = $fb AND row_fp NOT IN (SELECT row_fp FROM {n})",
                fb,
            ).fetchone()[0]
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


__all__ = ["IDENTITIES", "Plan", "PlanError", "Planner", "Relations", "SourceError", "TargetPlan", "config_fingerprint"]
