"""The audience sync pipeline: extract → match keys → plan → load → commit → report.

Every door (the CLI, the scheduler, the stream flusher) calls `sync`; none of them copies a stage.
An audience that fails stops with a clear message in its report while the others go on.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime

import duckdb

from audiencesync import alerts
from audiencesync.config import AudienceSettings, Config, SourceSettings
from audiencesync.extract.source import QuerySource, SourceError
from audiencesync.load import health as health_mod
from audiencesync.load.audiences import adopt_audiences, ensure_audience
from audiencesync.load.graph import GraphClient, GraphError
from audiencesync.load.uploader import Sent, Uploader
from audiencesync.plan import planner as planner_mod
from audiencesync.plan.guard import refusal
from audiencesync.plan.planner import Plan, PlanError, Planner, config_fingerprint
from audiencesync.plan.targeted import TargetedPlanner
from audiencesync.report import AudienceReport, FacebookReport, RunReport
from audiencesync.state import health as health_state
from audiencesync.state import rejects as rejects_state
from audiencesync.state import spark_mirror, stream_members
from audiencesync.state.lease import DEFAULT_WAIT_S, lease
from audiencesync.state.store import FacebookAudience, StateStore

log = logging.getLogger(__name__)

ProgressFactory = Callable[[str, int], Callable[[int], None]]


def sync(
    config: Config,
    *,
    audiences: list[str] | None = None,
    dry_run: bool = False,
    full_refresh: bool = False,
    force: bool = False,
    client: GraphClient | None = None,
    store: StateStore | None = None,
    progress: ProgressFactory | None = None,
    after_batch: Callable[[], None] | None = None,
    include_stream: bool = False,
    door: str = "sync",
    wait_s: float = DEFAULT_WAIT_S,
    on_wait: Callable[[str], None] | None = None,
    recreate: bool = False,
) -> RunReport:
    """Sync the configured audiences (or the named ones) and return what happened.

    Stream audiences are synced by the stream flusher (`include_stream=True`), from the members
    table it keeps in the state; the CLI's `sync` leaves them to it. `force` lets this run past
    the guard (an empty source, or more of an audience removed than `guard.max_remove_share`).
    Without a `store`, the state file is leased per audience (`state/lease.py`), so other doors
    (the stream flusher above all) get their turn between two audiences; `wait_s` bounds the wait.
    Ctrl-C raises `Interrupted` with the report so far, after recording the run as interrupted.
    `recreate`: a Facebook audience deleted (or expired) on Facebook is forgotten and created anew;
    without it such an audience stops with a sentence and nothing is created behind the user's back.
    """
    selected = [a for a in config.audiences if not audiences or a.name in audiences or a.key in audiences]
    if audiences and not selected:
        raise PlanError(f"no audience named {audiences[0]!r} in the configuration")
    own_client = client is None
    client = client or GraphClient(config.meta)
    report = RunReport(run_id=uuid.uuid4().hex[:12])
    try:
        for a in selected:
            src = config.source_of(a)
            guarded = not force
            if src.type == "stream":
                if not include_stream:
                    continue
                a, src = stream_source(a)
                guarded = False  # explicit leave calls, not an export that can break: nothing to guard
            with _state(config, store, door, wait_s, on_wait) as held:
                try:
                    rep = sync_audience(
                        config,
                        a,
                        src,
                        held,
                        client,
                        dry_run=dry_run,
                        full_refresh=full_refresh,
                        force=not guarded,
                        progress=progress,
                        after_batch=after_batch,
                        run_id=report.run_id,
                        recreate=recreate,
                    )
                except Interrupted as e:
                    report.audiences.append(e.audience)
                    e.report = report
                    raise
                if not dry_run:
                    alerts.after_run(config.alerts, held.con, rep)
            report.audiences.append(rep)
    finally:
        if own_client:
            client.close()
    return report


@contextlib.contextmanager
def _state(
    config: Config, store: StateStore | None, door: str, wait_s: float, on_wait: Callable[[str], None] | None
) -> Iterator[StateStore]:
    if store is not None:
        yield store
        return
    with lease(config.state, door=door, wait_s=wait_s, on_wait=on_wait) as held:
        yield held


def stream_source(a: AudienceSettings) -> tuple[AudienceSettings, SourceSettings]:
    """A stream audience reads the members table the ingester keeps (hashed values only)."""
    query = stream_members.source_query(a.key)
    update = {"query": query, "primary_key": "pk", "external_id": a.external_id or "external_id"}
    return a.model_copy(update=update), SourceSettings(type="duckdb")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a sync: what Facebook acknowledged is recorded; `report` says what was done
    (the interrupted audience last)."""

    def __init__(self, audience: AudienceReport):
        super().__init__("interrupted")
        self.audience = audience
        self.report = RunReport(run_id="", audiences=[audience])


def sync_audience(
    config: Config,
    a: AudienceSettings,
    src: SourceSettings,
    store: StateStore,
    client: GraphClient,
    *,
    dry_run: bool = False,
    full_refresh: bool = False,
    force: bool = False,
    progress: ProgressFactory | None = None,
    after_batch: Callable[[], None] | None = None,
    run_id: str = "",
    recreate: bool = False,
) -> AudienceReport:
    started = datetime.now(UTC).replace(tzinfo=None)
    t0 = time.perf_counter()
    rep = AudienceReport(key=a.key, name=a.name, mode=a.mode, full_refresh=full_refresh, dry_run=dry_run)
    acked = [0]

    def counted() -> None:
        acked[0] += 1
        if after_batch:
            after_batch()

    run = _Run(config, a, src, store, client, rep, progress, counted, force=force, recreate=recreate)
    run.run_id = run_id
    try:
        run.go(dry_run=dry_run, full_refresh=full_refresh)
    except (PlanError, SourceError) as e:
        rep.status, rep.error = "failed", str(e)
    except (KeyboardInterrupt, duckdb.InterruptException, RuntimeError) as e:
        if isinstance(e, RuntimeError) and str(e) != "Query interrupted":
            raise  # DuckDB turns a Ctrl-C during a query into this RuntimeError; anything else is a bug
        with contextlib.suppress(duckdb.Error):
            store.con.execute("ROLLBACK")  # in case Ctrl-C landed inside a statement's transaction
        rep.status = "interrupted"
        rep.error = (
            f"interrupted (Ctrl-C) after Facebook acknowledged {acked[0]:,} batches; they are recorded, "
            "and the next run resumes from there"
        )
        _record(store, run_id, a, started, rep, t0)
        raise Interrupted(rep) from None
    if not dry_run:
        _record(store, run_id, a, started, rep, t0)
    rep.duration_s = round(time.perf_counter() - t0, 3)
    return rep


def _record(
    store: StateStore, run_id: str, a: AudienceSettings, started: datetime, rep: AudienceReport, t0: float
) -> None:
    rep.duration_s = round(time.perf_counter() - t0, 3)
    store.record_run(run_id, a.key, started, rep.status, asdict(rep))


class _Run:
    """One configured audience's run: settle what an earlier run left unknown, plan, guard, load."""

    def __init__(
        self,
        config: Config,
        a: AudienceSettings,
        src: SourceSettings,
        store: StateStore,
        client: GraphClient,
        rep: AudienceReport,
        progress: ProgressFactory | None,
        after_batch: Callable[[], None],
        *,
        force: bool,
        recreate: bool = False,
    ):
        self.config, self.a, self.src, self.store, self.client = config, a, src, store, client
        self.rep, self.progress, self.after_batch, self.force = rep, progress, after_batch, force
        self.recreate = recreate
        self.checked: set[str] = set()
        """Facebook ids read before their first write this run (`_preflight`)."""
        self.terms_checked = False
        self.notes: dict[str, str] = {}
        """Per kind: what the read before the first write found that does not stop the audience."""
        self.run_id = ""

    def uploader(self, on_rows: Callable[[int], None] | None = None) -> Uploader:
        return Uploader(
            self.client,
            self.store,
            max_in_flight=self.config.meta.max_in_flight,
            app_id=self.config.meta.app_id,
            progress=on_rows,
            after_batch=self.after_batch,
        )

    def go(self, *, dry_run: bool, full_refresh: bool) -> None:
        a, rep = self.a, self.rep
        source = self._source()
        self.stream = self.config.source_of(a).type == "stream"
        planner = TargetedPlanner(self.store, source, a) if self.stream else self._planner(source)
        targets = planner.targets()
        self.value_based = any(t.value_based for t in targets)
        if not dry_run:
            try:
                adopt_audiences(self.client, self.store, a, targets)
                pending = [fb for fb in self.store.facebook_audiences(a.key) if self._has_pending(fb.fb_id)]
                if pending and self._preflight(pending):
                    return
                self._recover()
            except GraphError as e:
                rep.status, rep.error = "failed", e.explain()
                return
        plan = planner.plan(full_refresh=full_refresh)
        _fill(rep, plan)
        rep.rows_set_aside = source.set_aside_counts()
        if dry_run:
            self._dry_run_sizes(plan)
        else:
            self._keep_rejects(plan)
        refused = None if self.force else refusal(plan, self.config.guard_for(a), self.store.member_count)
        if refused:
            rep.status, rep.error = "refused", refused
            log.error("audience %s refused: %s", a.key, refused)
            return
        if dry_run:
            rep.status = "dry-run"
            return
        if not plan.nothing_to_send:
            writing = [tp.existing for tp in plan.targets if tp.existing and (tp.adds or tp.removes or tp.replace)]
            forgotten = len(self.store.facebook_audiences(a.key))
            if self._preflight(writing, terms=True):
                return
            if len(self.store.facebook_audiences(a.key)) != forgotten:
                # `--recreate` forgot an audience Facebook deleted: plan it again as one to create.
                rep.facebook.clear()
                plan = self._planner(source).plan(full_refresh=full_refresh)
                _fill(rep, plan)
        self._annotate()
        rep.status, leftover = self._load(plan)
        if rep.status == "ok" and leftover:
            # A resumed or ended replace left rows of unknown outcome: settle them, then plan again.
            try:
                self._recover()
            except GraphError as e:
                rep.status, rep.error = "failed", e.explain()
                return
            self.rep.facebook.clear()
            plan = self._planner(source).plan()
            _fill(rep, plan)
            rep.full_refresh = full_refresh
            self._annotate()
            rep.status, _ = self._load(plan)
        self._read_back(plan)

    def _source(self) -> QuerySource:
        if self.src.engine == "spark":
            from audiencesync.engines.spark.planner import SparkSource  # pyspark only when asked for

            return SparkSource(self.config.spark, self.a)  # type: ignore[return-value]
        return QuerySource(self.store.con, self.a.source, self.src, self.a.query or "", bad_rows=self.src.bad_rows)

    def _planner(self, source: QuerySource) -> Planner:
        """The one place the engine is chosen: both return the same `Plan` for `_load`."""
        spark_mirror.drop_plan_views(self.store.con)  # an earlier Spark plan's views over its Parquet batches
        if self.src.engine == "spark":
            from audiencesync.engines.spark.planner import SparkPlanner

            root = spark_mirror.root(self.config.state, self.config.spark)
            return SparkPlanner(self.store, source, self.a, mirror_root=root)  # type: ignore[arg-type,return-value]
        return Planner(self.store, source, self.a)

    # -- audience health (spec §2.2): before the first write, and after the writes ---------------

    def _has_pending(self, fb_id: str) -> bool:
        return any(self.store.ledger.pending_count(fb_id, op) for op in ("add", "remove", "replace"))

    def _preflight(self, fbs: list[FacebookAudience], *, terms: bool = False) -> bool:
        """Read what can make a write pointless before the first one: the ad account's terms, and
        each existing audience's operation_status (flagged, deleted, no longer shared). True: stop
        this audience (its report says why). A read that fails is logged and the run goes on."""
        a, rep = self.a, self.rep
        if not self.terms_checked and (terms or fbs):
            self.terms_checked = True
            try:
                missing = health_mod.missing_terms(self.client, value_based=self.value_based)
            except GraphError as e:
                log.warning("could not read the ad account's terms (%s); going on", e.explain())
                missing = None
            if missing:
                rep.status, rep.error = "failed", missing
                log.error("audience %s stopped: %s", a.key, missing)
                return True
        for fb in fbs:
            if fb.fb_id in self.checked:
                continue
            self.checked.add(fb.fb_id)
            try:
                found = health_mod.preflight(self.client, fb.name, fb.fb_id)
            except GraphError as e:
                log.warning("could not read the status of %s (%s): %s; going on", fb.name, fb.fb_id, e.explain())
                continue
            if found.problem == "deleted" and self.recreate:
                self._record_health(health_mod.Health(fb.fb_id, problem="deleted"), fb.name)
                self.store.forget_facebook_audience(a.key, fb.kind)
                self.notes[fb.kind] = (
                    f"the earlier audience {fb.fb_id} was deleted on Facebook; --recreate: a new one was created "
                    "(point your ad sets at it)"
                )
                log.warning("audience %s: %s was deleted on Facebook; creating a new one", a.key, fb.fb_id)
                continue
            if found.problem:
                self._record_health(
                    health_mod.Health(
                        fb.fb_id,
                        problem=found.problem,
                        flagged_fields=found.flagged_fields,
                        operation_code=health_mod.FLAGGED if found.problem == "flagged" else None,
                        members_held=self.store.member_count(fb.fb_id),
                    ),
                    fb.name,
                )
                rep.status, rep.error = "failed", found.message
                for fr in rep.facebook:
                    if fr.fb_id == fb.fb_id:
                        fr.status, fr.message, fr.health_warning = "failed", found.message, found.problem
                log.error("audience %s stopped: %s", a.key, found.message)
                return True
            if found.note:
                self.notes[fb.kind] = found.note
        return False

    def _annotate(self) -> None:
        for fr in self.rep.facebook:
            note = self.notes.get(fr.kind)
            if note:
                fr.message = f"{fr.message}; {note}" if fr.message else note

    def _read_back(self, plan: Plan) -> None:
        """After the writes: Facebook's rounded matched size, statuses and flags, kept as history
        and put on the report. A Facebook audience nothing was sent to is read only when its last
        read is older than `health.read_every`. A failed read is a warning, never a failed run."""
        for tp, fr in zip(plan.targets, self.rep.facebook, strict=True):
            if not fr.fb_id or fr.status == "waiting":
                continue
            if not (tp.adds or tp.removes or tp.replace) and not read_due(self.store, fr.fb_id, self.config):
                continue
            try:
                held = fr.members if fr.status == "ok" else self.store.member_count(fr.fb_id)  # counted after the load
                h = health_mod.read_health(self.client, fr.fb_id, held)
            except GraphError as e:
                log.warning("could not read back %s (%s): %s", fr.name, fr.fb_id, e.explain())
                continue
            except (AttributeError, TypeError, ValueError) as e:
                log.warning("could not read back %s (%s): unexpected answer (%s)", fr.name, fr.fb_id, e)
                continue
            self._record_health(h, fr.name)
            fr.matched_lower, fr.matched_upper = h.lower, h.upper
            fr.match_rate_low, fr.match_rate_high = h.match_rate
            fr.operation_status, fr.delivery_status = h.operation_code, h.delivery_code
            fr.health_warning = h.warning

    def _record_health(self, h: health_mod.Health, name: str) -> None:
        record_health(self.config, self.store, h, name)

    def _dry_run_sizes(self, plan: Plan) -> None:
        """What Census's dry run shows per Facebook audience: members (rows) before and after."""
        for tp, fr in zip(plan.targets, self.rep.facebook, strict=True):
            before = self.store.member_count(tp.existing.fb_id) if tp.existing else 0
            fr.members_before = before
            fr.members = tp.adds if tp.replace else before + tp.adds - tp.removes

    def _keep_rejects(self, plan: Plan) -> None:
        """The members whose values this plan rejected, by key and reason, under this run; and the
        rejects older than `rejects.retention_days` go."""
        try:
            rejects_state.prune(self.store.con, self.config.rejects.retention_days)
            self.rep.rejected_rows = rejects_state.record(
                self.store.con, self.run_id, self.a.key, plan.relations.rejects
            )
        except duckdb.Error as e:
            log.warning("could not keep the rejected rows of %s: %s", self.a.key, e)

    def _recover(self) -> None:
        """Batches an earlier run sent without recording the answer are re-sent before planning."""
        for fb in self.store.facebook_audiences(self.a.key):
            self.uploader().recover(self.a.key, fb.fb_id, planner_mod.BATCH_ROWS)

    def _load(self, plan: Plan) -> tuple[str, int]:
        a, rep, store = self.a, self.rep, self.store
        complete, leftover = True, 0
        if not plan.nothing_to_send:
            store.ledger.begin_changes(a.key, config_fingerprint(a), plan.relations.touched)
        for tp, fr in zip(plan.targets, rep.facebook, strict=True):
            if tp.existing is None and tp.members < a.min_size:
                fr.status = "waiting"
                fr.message = (
                    f"{a.min_size - tp.members:,} more members needed before it is created (min_size {a.min_size})"
                )
                complete = False
                continue
            uploader = self.uploader(self.progress(fr.name, tp.adds + tp.removes) if self.progress else None)
            try:
                fb_id = ensure_audience(self.client, store, a, tp.target)
                fr.fb_id = fb_id
                if tp.replace:
                    replaced = uploader.replace(plan, tp, fb_id)
                    leftover += replaced.leftover
                    sent: Sent = replaced
                else:
                    sent = uploader.apply(plan, tp, fb_id)
            except GraphError as e:
                fr.status, fr.message = "failed", e.explain()
                rep.error = f"{fr.name}: {e.explain()}"
                log.error("audience %s stopped: %s", a.key, e.explain())
                if e.subcode == health_mod.FLAGGED_WRITE_SUBCODE and fr.fb_id:
                    fr.health_warning = "flagged"
                    held = store.member_count(fr.fb_id)
                    flagged = health_mod.Health(fr.fb_id, operation_code=health_mod.FLAGGED, members_held=held)
                    flagged.problem = "flagged"
                    self._record_health(flagged, fr.name)
                return "failed", 0
            fr.status = "ok"
            fr.message = fr.message or tp.warning
            fr.batches, fr.num_received, fr.num_invalid_entries = (
                sent.batches,
                sent.num_received,
                sent.num_invalid_entries,
            )
            fr.members = store.member_count(fb_id)
        if not complete:
            return "waiting", 0
        if leftover:
            return "ok", leftover  # the cache stays stale: the second pass plans every member again
        r = plan.relations
        store.ledger.commit_source(a.key, current=r.current, changed=r.changed, deleted=r.deleted, touched=r.touched)
        if self.src.engine == "spark":
            moved = f"(SELECT pk FROM {r.touched} UNION SELECT pk FROM {r.changed} UNION SELECT pk FROM {r.deleted})"
            root = spark_mirror.root(self.config.state, self.config.spark)
            spark_mirror.refresh(store.con, a.key, root, touched=moved, settings=self.config.spark)
            spark_mirror.drop_plan(root, a.key)
        if self.stream:
            stream_members.planned(store.con, a.key, plan.scope)
        return "ok", leftover


def read_due(store: StateStore, fb_id: str, config: Config, now: datetime | None = None) -> bool:
    """Whether a Facebook audience's last health read is older than `health.read_every` (or missing)."""
    last = health_state.last(store.con, fb_id)
    now = now or datetime.now(UTC).replace(tzinfo=None)
    return last is None or (now - last[0]).total_seconds() >= config.health.read_every


def record_health(config: Config, store: StateStore, h: health_mod.Health, name: str) -> None:
    """Keep a health read in the history, then tell the alerts what changed since the read before."""
    try:
        before = health_state.last(store.con, h.fb_id)
        health_state.record(store.con, h)
    except duckdb.Error as e:
        log.warning("could not record the health of %s: %s", h.fb_id, e)
        return
    alerts.after_health_read(config.alerts, store.con, name, h, before[1] if before else None)


def due_for_read(config: Config, store: StateStore) -> list[FacebookAudience]:
    """The managed Facebook audiences (of configured audiences) whose health read is due."""
    configured = {a.key for a in config.audiences}
    return [
        fb for fb in store.facebook_audiences() if fb.audience_key in configured and read_due(store, fb.fb_id, config)
    ]


def read_health_due(config: Config, store: StateStore, client: GraphClient) -> int:
    """The scheduled read (`run` and `serve`): every managed Facebook audience of a configured
    audience whose last read is older than `health.read_every`; how many were read."""
    read = 0
    for fb in due_for_read(config, store):
        try:
            h = health_mod.read_health(client, fb.fb_id, store.member_count(fb.fb_id))
        except GraphError as e:
            log.warning("could not read back %s (%s): %s", fb.name, fb.fb_id, e.explain())
            continue
        record_health(config, store, h, fb.name)
        read += 1
    return read


def _fill(rep: AudienceReport, plan: Plan) -> None:
    rep.full_refresh = plan.full
    rep.rows_read, rep.rows_without_primary_key = plan.rows_read, plan.rows_without_pk
    rep.members, rep.changed, rep.removed_from_source = plan.members, plan.changed, plan.deleted
    rep.normalized = plan.normalized
    rep.keys_found = dict(plan.keys_found)
    rep.empty = dict(plan.empty)
    rep.invalid = {k: dict(v) for k, v in plan.invalid.items() if v}
    for tp in plan.targets:
        rep.facebook.append(
            FacebookReport(
                kind=tp.target.kind,
                name=tp.existing.name if tp.existing else tp.target.name,
                fb_id=tp.existing.fb_id if tp.existing else None,
                adds=tp.adds,
                removes=tp.removes,
                members=tp.members,
                rows_without_key=tp.rows_without_key,
                message=tp.warning,
            )
        )
