"""The audience sync pipeline: extract → match keys → plan → load → commit → report.

Every door (the CLI, the scheduler, the stream flusher) calls `sync`; none of them copies a stage.
An audience that fails stops with a clear message in its report while the others go on.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from audiencesync.config import AudienceSettings, Config, SourceSettings
from audiencesync.extract.source import QuerySource, SourceError
from audiencesync.load.audiences import ensure_audience
from audiencesync.load.graph import GraphClient, GraphError
from audiencesync.load.uploader import Uploader
from audiencesync.plan.planner import Plan, PlanError, Planner, config_fingerprint
from audiencesync.report import AudienceReport, FacebookReport, RunReport
from audiencesync.state.store import StateStore

log = logging.getLogger(__name__)

ProgressFactory = Callable[[str, int], Callable[[int], None]]


def sync(
    config: Config,
    *,
    audiences: list[str] | None = None,
    dry_run: bool = False,
    full_refresh: bool = False,
    client: GraphClient | None = None,
    store: StateStore | None = None,
    progress: ProgressFactory | None = None,
    after_batch: Callable[[], None] | None = None,
    include_stream: bool = False,
) -> RunReport:
    """Sync the configured audiences (or the named ones) and return what happened.

    Stream audiences are synced by the stream flusher (`include_stream=True`), from the members
    table it keeps in the state; the CLI's `sync` leaves them to it.
    """
    selected = [a for a in config.audiences if not audiences or a.name in audiences or a.key in audiences]
    if audiences and not selected:
        raise PlanError(f"no audience named {audiences[0]!r} in the configuration")
    own_store, own_client = store is None, client is None
    store = store or StateStore(config.state)
    client = client or GraphClient(config.meta)
    report = RunReport(run_id=uuid.uuid4().hex[:12])
    try:
        for a in selected:
            src = config.sources.get(a.source, SourceSettings(type="stream"))
            if src.type == "stream":
                if not include_stream:
                    continue
                a, src = stream_source(a)
            report.audiences.append(
                sync_audience(
                    config,
                    a,
                    src,
                    store,
                    client,
                    dry_run=dry_run,
                    full_refresh=full_refresh,
                    progress=progress,
                    after_batch=after_batch,
                    run_id=report.run_id,
                )
            )
    finally:
        if own_client:
            client.close()
        if own_store:
            store.close()
    return report


STREAM_MEMBERS = "st.stream_members"


def stream_source(a: AudienceSettings) -> tuple[AudienceSettings, SourceSettings]:
    """A stream audience reads the members table the ingester keeps (hashed values only)."""
    key = a.key.replace("'", "''")
    query = f"SELECT * EXCLUDE (audience_key) FROM {STREAM_MEMBERS} WHERE audience_key = '{key}'"
    update = {"query": query, "primary_key": "pk", "external_id": a.external_id or "external_id"}
    return a.model_copy(update=update), SourceSettings(type="duckdb")


def sync_audience(
    config: Config,
    a: AudienceSettings,
    src: SourceSettings,
    store: StateStore,
    client: GraphClient,
    *,
    dry_run: bool = False,
    full_refresh: bool = False,
    progress: ProgressFactory | None = None,
    after_batch: Callable[[], None] | None = None,
    run_id: str = "",
) -> AudienceReport:
    started = datetime.now(UTC).replace(tzinfo=None)
    t0 = time.perf_counter()
    rep = AudienceReport(key=a.key, name=a.name, mode=a.mode, full_refresh=full_refresh, dry_run=dry_run)
    try:
        source = QuerySource(store.con, a.source, src, a.query or "")
        plan = Planner(store, source, a).plan(full_refresh=full_refresh)
        rep.full_refresh = plan.full
        _fill(rep, plan)
        if dry_run:
            rep.status = "dry-run"
            for tp, fr in zip(plan.targets, rep.facebook, strict=True):
                if tp.existing:
                    fr.members = store.member_count(tp.existing.fb_id) + tp.adds - tp.removes
        else:
            rep.status = _load(config, a, plan, rep, store, client, progress, after_batch)
    except (PlanError, SourceError) as e:
        rep.status, rep.error = "failed", str(e)
    rep.duration_s = round(time.perf_counter() - t0, 3)
    if not dry_run:
        from dataclasses import asdict

        store.record_run(run_id, a.key, started, rep.status, asdict(rep))
    return rep


def _fill(rep: AudienceReport, plan: Plan) -> None:
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
            )
        )


def _load(
    config: Config,
    a: AudienceSettings,
    plan: Plan,
    rep: AudienceReport,
    store: StateStore,
    client: GraphClient,
    progress: ProgressFactory | None,
    after_batch: Callable[[], None] | None,
) -> str:
    complete = True
    if not plan.nothing_to_send or plan.full:
        store.set_in_flight(a.key, config_fingerprint(a))
    for tp, fr in zip(plan.targets, rep.facebook, strict=True):
        if tp.existing is None and tp.members < a.min_size:
            fr.status = "waiting"
            fr.message = f"{a.min_size - tp.members:,} more members needed before it is created (min_size {a.min_size})"
            complete = False
            continue
        on_rows = progress(fr.name, tp.adds + tp.removes) if progress else None
        uploader = Uploader(
            client,
            store,
            max_in_flight=config.meta.max_in_flight,
            app_id=config.meta.app_id,
            progress=on_rows,
            after_batch=after_batch,
        )
        try:
            fb_id = ensure_audience(client, store, a, tp.target)
            fr.fb_id = fb_id
            sent = uploader.replace(plan, tp, fb_id) if plan.full else uploader.apply(plan, tp, fb_id)
        except GraphError as e:
            fr.status, fr.message = "failed", e.explain()
            rep.error = f"{fr.name}: {e.explain()}"
            log.error("audience %s stopped: %s", a.key, e.explain())
            return "failed"
        fr.status = "ok"
        fr.batches, fr.num_received, fr.num_invalid_entries = sent.batches, sent.num_received, sent.num_invalid_entries
        fr.members = store.member_count(fb_id)
    if complete:
        _commit_source(store, a)
        return "ok"
    return "waiting"


def _commit_source(store: StateStore, a: AudienceSettings) -> None:
    """Every Facebook audience took its changes: remember the source rows, to skip them next time."""
    c = store.con
    c.execute("BEGIN")
    c.execute("DELETE FROM st.source_rows WHERE audience_key = ? AND pk IN (SELECT pk FROM touched)", [a.key])
    c.execute(
        "INSERT INTO st.source_rows SELECT ?, pk, raw_fp FROM cur "
        "WHERE pk IN (SELECT pk FROM changed) AND pk IN (SELECT pk FROM touched)",
        [a.key],
    )
    c.execute("UPDATE st.audience_state SET last_success = now(), in_flight = false WHERE audience_key = ?", [a.key])
    c.execute("COMMIT")
