"""The stream members table and its dirty list (`state/stream_members.py`), on a real state file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa

from audiencesync.state import stream_members as sm
from audiencesync.state.store import StateStore


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def changes(rows: list[tuple[str, bool, dict[str, str]]], audience: str = "aud", first_seq: int = 1) -> pa.Table:
    """Queue rows as the ingest log hands them to a flush."""
    cols: dict[str, list[object]] = {"seq": [], "accepted_at": [], "audience_key": [], "pk": [], "member": []}
    cols |= {c: [] for c in sm.COLUMNS}
    for i, (who, member, values) in enumerate(rows):
        cols["seq"].append(first_seq + i)
        cols["accepted_at"].append(0.0)
        cols["audience_key"].append(audience)
        cols["pk"].append(sha(who))
        cols["member"].append(member)
        for c in sm.COLUMNS:
            cols[c].append(values.get(c))
    return pa.table(cols)


def table_rows(store: StateStore, pks: list[str]) -> list[tuple[object, ...]]:
    return store.con.execute(
        f"SELECT * EXCLUDE (audience_key) FROM {sm.MEMBERS} WHERE pk IN (SELECT unnest(?)) ORDER BY pk", [pks]
    ).fetchall()


def scope_rows(store: StateStore) -> list[tuple[object, ...]]:
    return store.con.execute("SELECT * FROM s_rows ORDER BY pk").fetchall()


def test_a_flush_lists_its_people_dirty_and_the_scope_reads_their_rows_fresh_or_from_the_table(tmp_path: Path):
    path = tmp_path / "state.duckdb"
    with StateStore(path) as store:
        sm.apply_changes(store.con, changes([("ann", True, {"email": sha("a")}), ("bob", True, {"email": sha("b")})]))
        store.con.execute("DELETE FROM st.stream_dirty")  # as after the sync that planned them
        touched = sm.apply_changes(
            store.con,
            changes(
                [("ann", True, {"phone": sha("p")}), ("cy", True, {"email": sha("c")}), ("bob", False, {})], first_seq=3
            ),
        )
        assert touched == 3
        dirty = store.con.execute("SELECT pk FROM st.stream_dirty ORDER BY pk").fetchall()
        assert sorted(r[0] for r in dirty) == sorted(sha(w) for w in ("ann", "bob", "cy"))
        # In the flush's connection the rows come from the flush itself: the same as the table holds.
        assert sm.stage_scope(store.con, "aud", "s_scope", "s_rows") == 3
        assert scope_rows(store) == table_rows(store, [sha("ann"), sha("cy")])
        ann = next(r for r in scope_rows(store) if r[0] == sha("ann"))
        assert ann[1:4] == (None, sha("a"), sha("p"))  # the email given before is kept, the phone added

    with StateStore(path) as store:  # a later connection: dirty since a flush that did not finish
        store.con.execute("INSERT INTO st.source_rows VALUES ('aud', ?, 0)", [sha("dan")])  # stale, not a member
        assert sm.stage_scope(store.con, "aud", "s_scope", "s_rows") == 4
        assert scope_rows(store) == table_rows(store, [sha("ann"), sha("cy")])
        sm.planned(store.con, "aud", "s_scope")
        assert store.con.execute("SELECT count(*) FROM st.stream_dirty").fetchall() == [(0,)]


def test_planned_clears_only_the_planned_people_or_the_whole_audience(tmp_path: Path):
    with StateStore(tmp_path / "state.duckdb") as store:
        sm.apply_changes(store.con, changes([("ann", True, {}), ("bob", True, {})]))
        sm.apply_changes(store.con, changes([("eve", True, {})], audience="other", first_seq=3))
        store.con.execute(f"CREATE TEMP TABLE planned_some AS SELECT '{sha('ann')}' AS pk")
        sm.planned(store.con, "aud", "planned_some")
        left = store.con.execute("SELECT audience_key, pk FROM st.stream_dirty ORDER BY ALL").fetchall()
        assert left == sorted([("aud", sha("bob")), ("other", sha("eve"))])
        sm.planned(store.con, "aud", None)
        assert store.con.execute("SELECT audience_key FROM st.stream_dirty").fetchall() == [("other",)]
