"""A plan of only the members a stream flush touched: the same `Plan`, at the cost of the changes.

The full planner fingerprints every member of the source to find the few that changed. A stream
audience does not need to look: the flusher lists every person it writes as dirty
(`state/stream_members.py`), so the targeted plan fingerprints, normalizes and diffs only the
dirty members and those the change cache marks stale. Everything after the scope is the full
planner's own code (the same fingerprints, relations, `TargetPlan`s and diff), so the uploader and
the ledger's intent/outcome rules see no difference, and a cache written by one planner is read by
the other.

It plans the whole audience instead whenever the cache cannot be trusted to speak for the members
outside the scope: a full refresh, a changed configuration (or version), a Facebook audience not
created yet or to be replaced, an open replace session, or a run that did not finish (`in_flight`:
Facebook may hold rows of members the cache does not list).
"""

from __future__ import annotations

from audiencesync.config import AudienceSettings, SourceSettings
from audiencesync.extract.source import QuerySource
from audiencesync.plan.planner import Plan, Planner, config_fingerprint
from audiencesync.state import stream_members
from audiencesync.state.store import StateStore

SCOPE = "plan_scope"
SCOPE_ROWS = "plan_scope_rows"


class TargetedPlanner(Planner):
    """A stream audience's planner: targeted when the change cache allows, else the full plan."""

    def __init__(self, store: StateStore, source: QuerySource, audience: AudienceSettings):
        super().__init__(store, source, audience)
        self._full_source = source
        self._targeted = False

    def plan(self, *, full_refresh: bool = False) -> Plan:
        self._targeted = not full_refresh and self.can_target()
        self.source = self._full_source
        if self._targeted:
            stream_members.stage_scope(self.con, self.audience.key, SCOPE, SCOPE_ROWS)
            self.source = QuerySource(self.con, self.audience.source, SourceSettings(), f"SELECT * FROM {SCOPE_ROWS}")
        try:
            plan = super().plan(full_refresh=full_refresh)
        finally:
            self.source = self._full_source
        if self._targeted:
            plan.scope = SCOPE
            plan.members = plan.rows_read = stream_members.member_count(self.con, self.audience.key)
        return plan

    def can_target(self) -> bool:
        """Whether the change cache speaks for every member outside the dirty ones."""
        a, store = self.audience, self.store
        if store.config_fp(a.key) != config_fingerprint(a) or store.in_flight(a.key):
            return False
        for t in self.targets():
            fb = store.facebook_audience(a.key, t.kind)
            if fb is None or fb.replace_pending or store.ledger.replace_session(fb.fb_id) is not None:
                return False
        return True

    def _stage_prev(self) -> None:
        if not self._targeted:
            super()._stage_prev()
            return
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE plan_prev AS SELECT pk, raw_fp FROM st.source_rows
                WHERE audience_key = ? AND pk IN (SELECT pk FROM {SCOPE})""",
            [self.audience.key],
        )
