"""The durable queue (the ingest log) and the coalescing of a flush, on files of their own (no HTTP)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from audiencesync.state import StateStore
from audiencesync.state.ingest import IngestLog, queue_path
from audiencesync.stream import flusher
from audiencesync.stream.members import COLUMNS, Change
from audiencesync.stream.queue import QueueFull, QueueStats, QueueWriter, create_tables

from .conftest import sha

A, B = "aud_a", "aud_b"


def change(pk: str, member: bool, audience: str = A, **values: str) -> Change:
    return Change(audience, sha(pk), member, values)


@pytest.fixture
def log(tmp_path: Path):
    q = IngestLog(queue_path(tmp_path / "state.duckdb"), COLUMNS)
    yield q
    q.close()


@pytest.fixture
def store(tmp_path: Path, log: IngestLog):
    s = StateStore(tmp_path / "state.duckdb")
    create_tables(s, log)
    s.log = log  # the tests below reach the queue beside the state, as the flusher does
    yield s
    s.close()


def writer_for(log: IngestLog, max_queue: int = 1000) -> QueueWriter:
    stats = QueueStats(flush_size=10)
    stats.load(log)
    return QueueWriter(log, stats, max_queue=max_queue, flush_after=2, retry_max=60).start()


def apply_changes(store: StateStore, upto: dict[str, int]) -> int:
    return flusher.apply_changes(store, store.log.read_upto(upto))


def clear_queue(store: StateStore) -> None:
    for key, _, _, seq in store.log.waiting():
        store.log.delete_upto(key, seq)


def members(store: StateStore, audience: str = A) -> dict[str, dict[str, str | None]]:
    rows = store.con.execute(
        "SELECT pk, email, phone, first_name FROM st.stream_members WHERE audience_key = ? ORDER BY pk", [audience]
    ).fetchall()
    return {pk: {"email": e, "phone": p, "first_name": f} for pk, e, p, f in rows}


def queue_all(store: StateStore, changes: list[Change]) -> dict[str, int]:
    w = writer_for(store.log)
    w.put_blocking(changes)
    w.stop()
    return {key: seq for key, _, _, seq in store.log.waiting()}


def test_a_committed_change_survives_reopening_the_file(tmp_path: Path):
    path = queue_path(tmp_path / "state.duckdb")
    q = IngestLog(path, COLUMNS)
    w = writer_for(q)
    w.put_blocking([change("u1", True, email=sha("a@b.io"))])
    w.stop()
    q.close()
    again = IngestLog(path, COLUMNS)
    table = again.read_upto({A: 10})
    assert table.select(["seq", "audience_key", "pk", "member", "email"]).to_pylist() == [
        {"seq": 1, "audience_key": A, "pk": sha("u1"), "member": True, "email": sha("a@b.io")}
    ]


def test_a_queue_an_older_version_kept_in_the_state_file_moves_to_the_log(tmp_path: Path, log: IngestLog):
    with StateStore(tmp_path / "state.duckdb") as s:
        values = ", ".join(f"{c} VARCHAR" for c in COLUMNS)
        s.con.execute(
            "CREATE TABLE st.stream_queue (seq BIGINT, accepted_at DOUBLE, audience_key VARCHAR, pk VARCHAR, "
            f"member BOOLEAN, {values})"
        )
        s.con.execute(f"INSERT INTO st.stream_queue (seq, accepted_at, audience_key, pk, member, email) "
                      f"VALUES (7, 1.5, '{A}', 'p', true, '{sha('x')}')")  # fmt: skip
        create_tables(s, log)
        gone = s.con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'stream_queue'").fetchone()
    assert gone == (0,)
    assert log.waiting() == [(A, 1, 1.5, 7)]


def test_a_queue_file_an_older_version_wrote_one_column_per_key_is_moved_to_the_packed_layout(tmp_path: Path):
    path = queue_path(tmp_path / "state.duckdb")
    values = ", ".join(f"{c} TEXT" for c in COLUMNS)
    with sqlite3.connect(path) as con:
        con.execute(
            "CREATE TABLE stream_queue (seq INTEGER PRIMARY KEY, accepted_at REAL NOT NULL, "
            f"audience_key TEXT NOT NULL, pk TEXT NOT NULL, member INTEGER NOT NULL, {values})"
        )
        con.execute(
            "INSERT INTO stream_queue (seq, accepted_at, audience_key, pk, member, email, phone) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [4, 2.5, A, sha("u1"), 1, sha("a@b.io"), sha("15551234567")],
        )
        con.execute("INSERT INTO stream_queue (seq, accepted_at, audience_key, pk, member) VALUES (5, 3.0, ?, ?, 0)",
                    [A, sha("u2")])  # fmt: skip
    q = IngestLog(path, COLUMNS)
    try:
        got = q.read_upto({A: 10}).select(["seq", "pk", "member", "email", "phone", "first_name"]).to_pylist()
        assert got == [
            {"seq": 4, "pk": sha("u1"), "member": True, "email": sha("a@b.io"), "phone": sha("15551234567"),
             "first_name": None},
            {"seq": 5, "pk": sha("u2"), "member": False, "email": None, "phone": None, "first_name": None},
        ]  # fmt: skip
        assert q.max_seq() == 5 and q.waiting() == [(A, 2, 2.5, 5)]
    finally:
        q.close()
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'stream_queue'").fetchone() == (0,)


def test_sequence_numbers_continue_after_a_restart(store):
    queue_all(store, [change("u1", True), change("u2", True)])
    queue_all(store, [change("u3", True)])
    assert store.log.read_upto({A: 100})["seq"].to_pylist() == [1, 2, 3]


def test_the_bound_refuses_before_writing(store):
    w = writer_for(store.log, max_queue=2)
    w.put_blocking([change("u1", True), change("u2", True)])
    with pytest.raises(QueueFull) as e:
        w.put_blocking([change("u3", True)])
    assert e.value.retry_after >= 2
    w.stop()
    assert store.log.depth()[0] == 2


def test_flips_inside_one_flush_coalesce_last_one_wins(store):
    upto = queue_all(
        store,
        [
            change("in-out", True, email=sha("1")),
            change("in-out", False),
            change("out-in", False),
            change("out-in", True, email=sha("2")),
            change("in-out-in", True, email=sha("3")),
            change("in-out-in", False),
            change("in-out-in", True),
            change("in-in", True, email=sha("4")),
            change("in-in", True, phone=sha("5")),
        ],
    )
    touched = apply_changes(store, upto)
    assert touched == 4
    m = members(store)
    assert set(m) == {sha("out-in"), sha("in-out-in"), sha("in-in")}
    assert m[sha("out-in")]["email"] == sha("2")
    assert m[sha("in-out-in")]["email"] is None  # it left: what it held before is forgotten
    assert m[sha("in-in")] == {"email": sha("4"), "phone": sha("5"), "first_name": None}


def test_traits_merge_with_what_the_member_held(store):
    apply_changes(store, queue_all(store, [change("u", True, email=sha("old"), first_name=sha("ann"))]))
    clear_queue(store)
    apply_changes(store, queue_all(store, [change("u", True, email=sha("new"))]))
    assert members(store)[sha("u")] == {"email": sha("new"), "phone": None, "first_name": sha("ann")}


def test_leaving_removes_the_member_and_other_audiences_are_untouched(store):
    apply_changes(store, queue_all(store, [change("u", True), change("u", True, audience=B)]))
    clear_queue(store)
    upto = queue_all(store, [change("u", False)])
    apply_changes(store, upto)
    assert members(store, A) == {} and set(members(store, B)) == {sha("u")}


def test_applying_the_same_changes_twice_gives_the_same_table(store):
    upto = queue_all(
        store,
        [change("a", True, email=sha("1")), change("b", True), change("a", False), change("a", True, phone=sha("2"))],
    )
    apply_changes(store, upto)
    first = members(store)
    apply_changes(store, upto)
    assert members(store) == first


def test_only_changes_up_to_the_snapshot_are_applied(store):
    upto = queue_all(store, [change("a", True)])
    queue_all(store, [change("b", True)])
    apply_changes(store, upto)
    assert set(members(store)) == {sha("a")}
