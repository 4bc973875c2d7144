"""A stream flush plans only the people it touched (issue 15): the same plan as a whole-audience
plan, at the cost of the changes. Against the emulator over HTTP, with the flusher as `serve`
runs it (its thread not started: each test flushes when it wants) and the real queue file.

Speed itself is measured in `bench/stream.py --members`; here the promise is structural: the
flush fingerprints only the touched people (not the audience), its adds and removes are exactly
those of a full plan of the same state, and Facebook ends up holding what the members table says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from audiencesync import matchkeys, pipeline
from audiencesync.config import Config
from audiencesync.extract.source import QuerySource
from audiencesync.load.graph import GraphClient
from audiencesync.plan.planner import Plan, Planner
from audiencesync.plan.targeted import TargetedPlanner
from audiencesync.report import RunReport
from audiencesync.state import stream_members
from audiencesync.state.ingest import IngestLog, queue_path
from audiencesync.state.store import StateStore
from audiencesync.stream.flusher import Flusher
from audiencesync.stream.members import COLUMNS, Person, changes_for
from audiencesync.stream.metrics import Metrics
from audiencesync.stream.queue import QueueStats, QueueWriter

from .conftest import KEY, StreamProject, stream_audience

NAME = "Ordered in the last 30 days"
SEEDED = 1_500


class Door:
    """The stream door without HTTP: changes hashed as `serve` hashes them, queued durably, flushed."""

    def __init__(self, config: Config):
        self.config = config
        self.client = GraphClient(config.meta)
        self.log = IngestLog(queue_path(config.state), COLUMNS)
        self.stats = QueueStats(flush_size=10_000)
        self.writer = QueueWriter(self.log, self.stats, max_queue=100_000, flush_after=1, retry_max=5).start()
        self.seen: list[dict[str, Any]] = []
        assert config.serve is not None
        self.flusher = Flusher(
            config, config.serve, self.log, self.stats, Metrics(), client=self.client, sync=self.sync
        )

    def close(self) -> None:
        self.writer.stop()
        self.client.close()
        self.log.close()

    def sync(self, config: Config, **kw: Any) -> RunReport:
        """The flusher's sync; before it, the same state is planned whole and targeted (nothing is
        sent by planning) and the two plans are kept for the test to compare."""
        store: StateStore = kw["store"]
        a, src = pipeline.stream_source(config.audiences[0])
        source = QuerySource(store.con, a.source, src, a.query or "")
        full = _sent_rows(Planner(store, source, a).plan(), store)
        targeted_plan = TargetedPlanner(store, source, a).plan()
        targeted = _sent_rows(targeted_plan, store)
        report = pipeline.sync(config, **kw)
        fingerprinted = store.con.execute("SELECT count(*) FROM plan_current").fetchall()[0][0]
        # The cache the targeted plan committed is the full planner's own: it finds nothing changed.
        after = Planner(store, source, a).plan().changed if report.audiences[0].status == "ok" else None
        self.seen.append(
            {
                "full": full,
                "targeted": targeted,
                "scope": targeted_plan.scope,
                "fingerprinted": fingerprinted,
                "changed_after": after,
            }
        )
        return report

    def send(self, people: list[tuple[str, bool, dict[str, str]]]) -> None:
        changes = []
        for user, member, traits in people:
            found, _ = changes_for(Person(user_id=user, traits=traits), {KEY: member}, {KEY: None})
            changes += found
        self.writer.put_blocking(changes)

    def flush(self) -> None:
        outcome = self.flusher.flush(self.flusher.waiting())
        assert not outcome.kept, outcome.errors


def _sent_rows(plan: Plan, store: StateStore) -> dict[str, tuple[list[Any], list[Any]]]:
    """Per Facebook audience: the sorted payloads the plan adds and removes."""
    out = {}
    for tp in plan.targets:
        adds = store.con.execute(f"SELECT payload FROM {tp.add_batches} ORDER BY payload").fetchall()
        removes = store.con.execute(f"SELECT payload FROM {tp.remove_batches} ORDER BY payload").fetchall()
        out[tp.target.kind] = (adds, removes)
    return out


def _seed(config: Config, n: int) -> None:
    """`n` members as the stream door writes them, synced whole by the first (full) plan."""
    with StateStore(config.state) as store:
        store.con.execute(
            """INSERT INTO st.stream_members (audience_key, pk, external_id, email)
               SELECT ?, sha256('user:seed-' || i), 'seed-' || i, sha256('seed-' || i || '@example.com')
               FROM range(?) t(i)""",
            [KEY, n],
        )
        report = pipeline.sync(config, include_stream=True, store=store)
        assert report.audiences[0].status == "ok", report.audiences[0].error
        assert store.con.execute("SELECT count(*) FROM st.stream_dirty").fetchall()[0][0] == 0


def _emails(emu: Any, name: str = NAME) -> set[str]:
    found = [a for a in httpx.get(f"{emu.url}/_emulator/audiences").json() if a["name"] == name]
    body = httpx.get(f"{emu.url}/_emulator/audiences/{found[0]['id']}/members").json()
    return {m["EMAIL"] for m in body["members"]}


def _email(address: str) -> str:
    return str(matchkeys.match_value("EMAIL", address))


@pytest.fixture
def door(project: StreamProject) -> Any:
    config = project.config(audiences=[stream_audience(forward=["email"])])  # single-key rows can be shared
    _seed(config, SEEDED)
    d = Door(config)
    yield d
    d.close()


def test_a_flush_fingerprints_only_the_people_it_touched(door: Door, emu: Any) -> None:
    joining = [(f"new-{i}", True, {"email": f"new-{i}@example.com"}) for i in range(20)]
    leaving = [(f"seed-{i}", False, {}) for i in range(10)]
    door.send(joining + leaving)
    door.flush()

    seen = door.seen[-1]
    assert seen["scope"] == "plan_scope"
    assert seen["fingerprinted"] == 20  # the joiners still in the audience; never the 1,500 others
    assert seen["targeted"] == seen["full"]
    assert seen["changed_after"] == 0
    for kind in ("multi", "email"):
        adds, removes = seen["targeted"][kind]
        assert (len(adds), len(removes)) == (20, 10)
    want = {_email(f"seed-{i}@example.com") for i in range(10, SEEDED)} | {
        _email(f"new-{i}@example.com") for i in range(20)
    }
    assert _emails(emu) == want


def test_changes_of_email_returns_and_shared_emails_plan_as_a_full_plan_would(door: Door, emu: Any) -> None:
    """Two people sharing an email, one of them leaving; people changing email; people who left
    coming back: each flush's targeted adds and removes equal the whole-audience plan's."""
    steps = [
        [("seed-1", True, {"email": "seed-2@example.com"}), ("seed-3", True, {"email": "changed-3@example.com"})],
        [("seed-2", False, {}), ("seed-4", False, {}), ("seed-5", True, {"email": "seed-6@example.com"})],
        [("seed-4", True, {"email": "seed-4@example.com"}), ("seed-6", False, {}), ("seed-1", False, {})],
        [("seed-2", True, {"email": "back-2@example.com"}), ("seed-5", True, {"email": "seed-5@example.com"})],
    ]
    for step in steps:
        door.send(step)
        door.flush()
        seen = door.seen[-1]
        assert seen["scope"] == "plan_scope"
        assert seen["targeted"] == seen["full"]
        assert seen["changed_after"] == 0
    gone = {"seed-1", "seed-6"}
    emails = {f"seed-{i}": f"seed-{i}@example.com" for i in range(SEEDED)}
    emails |= {"seed-3": "changed-3@example.com", "seed-2": "back-2@example.com"}
    want = {_email(e) for user, e in emails.items() if user not in gone}
    assert _emails(emu) == want
    assert _emails(emu, f"{NAME} (email)") == want  # the shared email went when its last holder left


def test_a_failed_flush_keeps_its_people_dirty_and_the_next_one_converges(door: Door, emu: Any) -> None:
    door.send([(f"new-{i}", True, {"email": f"new-{i}@example.com"}) for i in range(5)])
    refuse = {"method": "POST", "path": r"/users$", "count": 10, "error": {"code": 200, "message": "Permissions error"}}
    httpx.post(f"{emu.url}/_emulator/faults", json=refuse).raise_for_status()
    outcome = door.flusher.flush(door.flusher.waiting())
    assert outcome.kept
    with StateStore(door.config.state) as store:
        dirty = store.con.execute("SELECT count(*) FROM st.stream_dirty WHERE audience_key = ?", [KEY]).fetchall()
        assert dirty[0][0] == 5
    httpx.delete(f"{emu.url}/_emulator/faults").raise_for_status()
    door.flusher._backoff.clear()
    door.flush()
    assert door.seen[-1]["targeted"] == door.seen[-1]["full"]
    assert {_email(f"new-{i}@example.com") for i in range(5)} <= _emails(emu)
    with StateStore(door.config.state) as store:
        assert store.con.execute("SELECT count(*) FROM st.stream_dirty").fetchall()[0][0] == 0


def test_the_members_table_belongs_to_the_state_schema(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.duckdb") as store:
        cols = [r[0] for r in store.con.execute("DESCRIBE st.stream_members").fetchall()]
        assert cols == ["audience_key", "pk", *COLUMNS]
        assert stream_members.COLUMNS == COLUMNS
        assert store.con.execute("SELECT count(*) FROM st.stream_dirty").fetchall()[0][0] == 0
